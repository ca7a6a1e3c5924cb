//! Roles granted by hand, and teams made by hand with members and coaches added by hand.

use chrono::{DateTime, Utc};
use sqlx::{Pool, QueryBuilder};

use super::super::Db;
use super::super::common::{Tx, begin_write, push_binds};
use super::{about, audit, organisation_id, person};
use crate::domain::{Actor, AuditAction, Email, TeamKey};
use crate::store::{
    AuditEntry, Doing, Result, RoleListing, StoreError, TeamListing, TeamPerson, TeamRole,
};

/// The role's id, made if the organisation has no role of that name yet.
async fn role_id(tx: &mut Tx<'_>, org_id: i64, role: &str) -> Result<i64> {
    sqlx::query(
        "INSERT INTO roles (organisation_id, name) VALUES ($1, $2) \
         ON CONFLICT (organisation_id, name) DO NOTHING",
    )
    .bind(org_id)
    .bind(role)
    .execute(&mut **tx)
    .await
    .doing("making the role")?;
    sqlx::query_scalar("SELECT id FROM roles WHERE organisation_id = $1 AND name = $2")
        .bind(org_id)
        .bind(role)
        .fetch_one(&mut **tx)
        .await
        .doing("finding the role")
}

/// Grants a role by hand; `false` when the account holds it already (by hand or by rule).
pub(super) async fn grant_in(
    tx: &mut Tx<'_>,
    org_id: i64,
    account_id: i64,
    role: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    let role = role_id(tx, org_id, role).await?;
    let done = sqlx::query(
        "INSERT INTO role_grants (role_id, account_id, connector_id, created_at) \
         VALUES ($1, $2, NULL, $3) ON CONFLICT (role_id, account_id) DO NOTHING",
    )
    .bind(role)
    .bind(account_id)
    .bind(now)
    .execute(&mut **tx)
    .await
    .doing("granting the role")?;
    Ok(done.rows_affected() > 0)
}

pub(in crate::store) async fn grant_role(
    pool: &Pool<Db>,
    org: &str,
    email: &Email,
    role: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<bool> {
    let mut tx = begin_write(pool, "starting a transaction").await?;
    let p = person(&mut tx, org, email).await?;
    if p.is_deactivated() {
        return Err(StoreError::Refused(format!(
            "`{email}` is deactivated in `{org}`; roles are granted to live members"
        )));
    }
    if !grant_in(&mut tx, p.org_id, p.account_id, role, now).await? {
        return Ok(false);
    }
    let entry = AuditEntry {
        subject: Some(role),
        ..about(actor, AuditAction::RoleGrant, org, email)
    };
    audit(&mut tx, &entry, Some(p.org_id), Some(p.account_id), now).await?;
    tx.commit().await.doing("committing the grant")?;
    Ok(true)
}

pub(in crate::store) async fn revoke_role(
    pool: &Pool<Db>,
    org: &str,
    email: &Email,
    role: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<bool> {
    let mut tx = begin_write(pool, "starting a transaction").await?;
    let p = person(&mut tx, org, email).await?;
    let grant: Option<(i64, Option<String>)> = sqlx::query_as(
        "SELECT g.role_id, g.connector_id FROM role_grants g JOIN roles r ON r.id = g.role_id \
         WHERE r.organisation_id = $1 AND r.name = $2 AND g.account_id = $3",
    )
    .bind(p.org_id)
    .bind(role)
    .bind(p.account_id)
    .fetch_optional(&mut *tx)
    .await
    .doing("finding the grant")?;
    let role_id = match grant {
        None => return Ok(false),
        Some((_, Some(connector))) => {
            return Err(StoreError::Refused(format!(
                "role `{role}` is granted by a rule of connector `{connector}`; revoked by hand it \
                 would come back at the next sync: change the HR data or the rule"
            )));
        }
        Some((id, None)) => id,
    };
    sqlx::query("DELETE FROM role_grants WHERE role_id = $1 AND account_id = $2")
        .bind(role_id)
        .bind(p.account_id)
        .execute(&mut *tx)
        .await
        .doing("revoking the role")?;
    let entry = AuditEntry {
        subject: Some(role),
        ..about(actor, AuditAction::RoleRevoke, org, email)
    };
    audit(&mut tx, &entry, Some(p.org_id), Some(p.account_id), now).await?;
    tx.commit().await.doing("committing the revocation")?;
    Ok(true)
}

pub(in crate::store) async fn list_roles(pool: &Pool<Db>, org: &str) -> Result<Vec<RoleListing>> {
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT r.name, \
         COUNT(CASE WHEN m.id IS NOT NULL AND g.connector_id IS NOT NULL THEN 1 END) AS by_rule, \
         COUNT(CASE WHEN m.id IS NOT NULL AND g.connector_id IS NULL THEN 1 END) AS by_hand \
         FROM roles r JOIN organisations o ON o.id = r.organisation_id \
         LEFT JOIN role_grants g ON g.role_id = r.id \
         LEFT JOIN memberships m ON m.account_id = g.account_id \
         AND m.organisation_id = r.organisation_id AND m.state <> 'deactivated' \
         WHERE o.slug = $1 GROUP BY r.name ORDER BY r.name",
    )
    .bind(org)
    .fetch_all(pool)
    .await
    .doing("listing roles")?;
    Ok(rows
        .into_iter()
        .map(|(name, by_rule, by_hand)| RoleListing {
            name,
            by_rule,
            by_hand,
        })
        .collect())
}

pub(in crate::store) async fn create_team(
    pool: &Pool<Db>,
    org: &str,
    key: &TeamKey,
    name: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<i64> {
    let mut tx = begin_write(pool, "starting a transaction").await?;
    let org_id = organisation_id(&mut tx, org).await?;
    let existing: Option<Option<String>> = sqlx::query_scalar(
        "SELECT connector_id FROM teams WHERE organisation_id = $1 AND key = $2 LIMIT 1",
    )
    .bind(org_id)
    .bind(key.as_str())
    .fetch_optional(&mut *tx)
    .await
    .doing("finding the team")?;
    if let Some(connector) = existing {
        let by = match connector {
            Some(c) => format!("made by connector `{c}`"),
            None => "made by hand".to_string(),
        };
        return Err(StoreError::Refused(format!(
            "`{org}` has a team `{key}` already ({by})"
        )));
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO teams (organisation_id, connector_id, key, name, created_at) \
         VALUES ($1, NULL, $2, $3, $4) RETURNING id",
    )
    .bind(org_id)
    .bind(key.as_str())
    .bind(name)
    .bind(now)
    .fetch_one(&mut *tx)
    .await
    .doing("creating the team")?;
    let entry = AuditEntry {
        organisation: Some(org),
        subject: Some(key.as_str()),
        new_value: Some(name),
        ..AuditEntry::new(actor, AuditAction::TeamCreate)
    };
    audit(&mut tx, &entry, Some(org_id), None, now).await?;
    tx.commit().await.doing("committing the team")?;
    Ok(id)
}

/// The one team of the organisation with that key.
pub(super) async fn team_by_key(
    tx: &mut Tx<'_>,
    org_id: i64,
    org: &str,
    key: &TeamKey,
) -> Result<i64> {
    let teams: Vec<(i64, Option<String>)> = sqlx::query_as(
        "SELECT id, connector_id FROM teams WHERE organisation_id = $1 AND key = $2",
    )
    .bind(org_id)
    .bind(key.as_str())
    .fetch_all(&mut **tx)
    .await
    .doing("finding the team")?;
    match teams.as_slice() {
        [] => Err(StoreError::NotFound(format!("`{org}` has no team `{key}`"))),
        [(id, _)] => Ok(*id),
        several => {
            let by: Vec<String> = several
                .iter()
                .map(|(_, c)| c.clone().unwrap_or_else(|| "by hand".to_string()))
                .collect();
            Err(StoreError::Refused(format!(
                "`{org}` has {} teams with the key `{key}` (made by {}); name one by its connector's data",
                several.len(),
                by.join(", ")
            )))
        }
    }
}

/// The table of a role's links, and of the other role's.
fn link_tables(role: TeamRole) -> (&'static str, &'static str) {
    match role {
        TeamRole::Member => ("team_members", "team_coaches"),
        TeamRole::Coach => ("team_coaches", "team_members"),
    }
}

/// Who made an existing link: `None` when there is none, `Some(None)` by hand.
async fn link_of(
    tx: &mut Tx<'_>,
    table: &str,
    team: i64,
    account: i64,
) -> Result<Option<Option<String>>> {
    sqlx::query_scalar(&format!(
        "SELECT connector_id FROM {table} WHERE team_id = $1 AND account_id = $2"
    ))
    .bind(team)
    .bind(account)
    .fetch_optional(&mut **tx)
    .await
    .doing("finding the team link")
}

/// Writes a link by hand (after the member/coach rule is checked).
pub(super) async fn link_in(
    tx: &mut Tx<'_>,
    team: i64,
    account: i64,
    role: TeamRole,
    now: DateTime<Utc>,
) -> Result<()> {
    let (table, other) = link_tables(role);
    if role == TeamRole::Member && link_of(tx, other, team, account).await?.is_some() {
        return Err(StoreError::Refused(
            "the person coaches this team; a person is never both member and coach of one team, \
             and the coach assignment wins"
                .to_string(),
        ));
    }
    sqlx::query(&format!(
        "INSERT INTO {table} (team_id, account_id, connector_id, created_at) \
         VALUES ($1, $2, NULL, $3) ON CONFLICT (team_id, account_id) DO NOTHING"
    ))
    .bind(team)
    .bind(account)
    .bind(now)
    .execute(&mut **tx)
    .await
    .doing("adding to the team")?;
    Ok(())
}

pub(in crate::store) async fn add_team_link(
    pool: &Pool<Db>,
    org: &str,
    key: &TeamKey,
    email: &Email,
    role: TeamRole,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<bool> {
    let mut tx = begin_write(pool, "starting a transaction").await?;
    let p = person(&mut tx, org, email).await?;
    if p.is_deactivated() {
        return Err(StoreError::Refused(format!(
            "`{email}` is deactivated in `{org}`, and deactivated people are in no team"
        )));
    }
    let team = team_by_key(&mut tx, p.org_id, org, key).await?;
    let (table, other) = link_tables(role);
    if link_of(&mut tx, table, team, p.account_id).await?.is_some() {
        return Ok(false);
    }
    if role == TeamRole::Coach && link_of(&mut tx, other, team, p.account_id).await?.is_some() {
        // The coach assignment wins, as a sync decides it: the member link ends now, whoever
        // made it, rather than at the next sync.
        sqlx::query("DELETE FROM team_members WHERE team_id = $1 AND account_id = $2")
            .bind(team)
            .bind(p.account_id)
            .execute(&mut *tx)
            .await
            .doing("ending the member link")?;
        let entry = AuditEntry {
            subject: Some(key.as_str()),
            new_value: Some("coach of the team, so no longer its member"),
            ..about(actor, AuditAction::TeamMemberRemove, org, email)
        };
        audit(&mut tx, &entry, Some(p.org_id), Some(p.account_id), now).await?;
    }
    link_in(&mut tx, team, p.account_id, role, now).await?;
    let action = match role {
        TeamRole::Member => AuditAction::TeamMemberAdd,
        TeamRole::Coach => AuditAction::TeamCoachAdd,
    };
    let entry = AuditEntry {
        subject: Some(key.as_str()),
        ..about(actor, action, org, email)
    };
    audit(&mut tx, &entry, Some(p.org_id), Some(p.account_id), now).await?;
    tx.commit().await.doing("committing the team link")?;
    Ok(true)
}

pub(in crate::store) async fn remove_team_link(
    pool: &Pool<Db>,
    org: &str,
    key: &TeamKey,
    email: &Email,
    role: TeamRole,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<bool> {
    let mut tx = begin_write(pool, "starting a transaction").await?;
    let p = person(&mut tx, org, email).await?;
    let team = team_by_key(&mut tx, p.org_id, org, key).await?;
    let (table, _) = link_tables(role);
    match link_of(&mut tx, table, team, p.account_id).await? {
        None => return Ok(false),
        Some(Some(connector)) => {
            return Err(StoreError::Refused(format!(
                "`{email}` is {} of team `{key}` through connector `{connector}`, from HR data; \
                 HR decides it",
                role.as_str()
            )));
        }
        Some(None) => {}
    }
    sqlx::query(&format!(
        "DELETE FROM {table} WHERE team_id = $1 AND account_id = $2"
    ))
    .bind(team)
    .bind(p.account_id)
    .execute(&mut *tx)
    .await
    .doing("removing from the team")?;
    let action = match role {
        TeamRole::Member => AuditAction::TeamMemberRemove,
        TeamRole::Coach => AuditAction::TeamCoachRemove,
    };
    let entry = AuditEntry {
        subject: Some(key.as_str()),
        ..about(actor, action, org, email)
    };
    audit(&mut tx, &entry, Some(p.org_id), Some(p.account_id), now).await?;
    tx.commit().await.doing("committing the team link")?;
    Ok(true)
}

/// A live member or coach of one of the organisation's teams.
#[derive(sqlx::FromRow)]
struct LinkRow {
    team_id: i64,
    account_id: i64,
    email: String,
    display_name: Option<String>,
    connector_id: Option<String>,
}

/// The organisation's teams in key order with their live members and coaches; with a
/// `window` (offset, limit) only those teams, and only their links are read.
pub(in crate::store) async fn list_teams(
    pool: &Pool<Db>,
    org: &str,
    window: Option<(i64, i64)>,
) -> Result<Vec<TeamListing>> {
    let mut qb = QueryBuilder::<Db>::new(
        "SELECT t.id, t.key, t.name, t.connector_id FROM teams t \
         JOIN organisations o ON o.id = t.organisation_id WHERE o.slug = ",
    );
    qb.push_bind(org).push(" ORDER BY t.key, t.id");
    if let Some((offset, limit)) = window {
        qb.push(" LIMIT ")
            .push_bind(limit)
            .push(" OFFSET ")
            .push_bind(offset);
    }
    let teams: Vec<(i64, String, String, Option<String>)> = qb
        .build_query_as()
        .fetch_all(pool)
        .await
        .doing("listing teams")?;
    if teams.is_empty() {
        return Ok(Vec::new());
    }
    let mut listed: Vec<TeamListing> = teams
        .into_iter()
        .map(|(id, key, name, connector)| TeamListing {
            id,
            key,
            name,
            connector,
            members: Vec::new(),
            coaches: Vec::new(),
        })
        .collect();
    let position: std::collections::HashMap<i64, usize> =
        listed.iter().enumerate().map(|(i, t)| (t.id, i)).collect();
    for role in [TeamRole::Member, TeamRole::Coach] {
        let (table, _) = link_tables(role);
        let mut qb = QueryBuilder::<Db>::new(format!(
            "SELECT l.team_id, a.id AS account_id, a.email, a.display_name, l.connector_id \
             FROM {table} l JOIN teams t ON t.id = l.team_id \
             JOIN accounts a ON a.id = l.account_id \
             JOIN memberships m ON m.account_id = a.id AND m.organisation_id = t.organisation_id \
             WHERE m.state <> 'deactivated'"
        ));
        if window.is_some() {
            // The page's teams are the organisation's already. Named by id alone, they are
            // where the database starts; with the organisation's slug beside them SQLite
            // started from the organisation's 96,000 memberships (1.2 s a page).
            qb.push(" AND l.team_id IN (");
            push_binds(&mut qb, listed.iter().map(|t| t.id));
            qb.push(")");
        } else {
            qb.push(" AND t.organisation_id = (SELECT o.id FROM organisations o WHERE o.slug = ")
                .push_bind(org)
                .push(")");
        }
        // Not ordered here: each team's people are sorted below, in the team's own few.
        let rows: Vec<LinkRow> = qb
            .build_query_as()
            .fetch_all(pool)
            .await
            .doing("listing team members and coaches")?;
        for row in rows {
            let Some(team) = position.get(&row.team_id).and_then(|&i| listed.get_mut(i)) else {
                continue;
            };
            let person = TeamPerson {
                account_id: row.account_id,
                email: row.email,
                display_name: row.display_name,
                connector: row.connector_id,
            };
            match role {
                TeamRole::Member => team.members.push(person),
                TeamRole::Coach => team.coaches.push(person),
            }
        }
    }
    for team in &mut listed {
        for people in [&mut team.members, &mut team.coaches] {
            people.sort_by_cached_key(|p| p.email.to_lowercase());
        }
    }
    Ok(listed)
}
