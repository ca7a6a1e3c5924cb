//! The SQL of local administration: each action by hand in one transaction, with its entry in
//! the audit trail; and the trail read back.

use chrono::{DateTime, Utc};
use sqlx::Pool;

use super::Db;
use super::common::{Tx, begin_write, connector_of};
use super::tokens::revoke_tokens;
use crate::domain::{Actor, AuditAction, AuditEvent, Email, MembershipState, TeamKey, Via};
use crate::planner::Field;
use crate::planner::locks::{self, FieldOwners};
use crate::store::{
    AuditEntry, DIGEST_KIND, Doing, Edited, NewPerson, PersonAdded, Result, RoleListing,
    StoreError, TeamListing, TeamPerson, TeamRole,
};

/// A person's account and membership of one organisation.
#[derive(sqlx::FromRow)]
struct Person {
    org_id: i64,
    account_id: i64,
    email: String,
    first_name: Option<String>,
    last_name: Option<String>,
    display_name: Option<String>,
    activated_at: Option<DateTime<Utc>>,
    membership_id: i64,
    state: String,
    connector_id: Option<String>,
    job_title: Option<String>,
    location: Option<String>,
    employment_type: Option<String>,
    suspended_at: Option<DateTime<Utc>>,
}

impl Person {
    fn is_deactivated(&self) -> bool {
        self.state == MembershipState::Deactivated.as_str()
    }

    fn value(&self, field: Field) -> Option<&str> {
        match field {
            Field::Email => Some(self.email.as_str()),
            Field::FirstName => self.first_name.as_deref(),
            Field::LastName => self.last_name.as_deref(),
            Field::DisplayName => self.display_name.as_deref(),
            Field::JobTitle => self.job_title.as_deref(),
            Field::Location => self.location.as_deref(),
            Field::EmploymentType => self.employment_type.as_deref(),
            Field::Team | Field::Coach => None,
        }
    }
}

/// The person `email` in organisation `org`, or why there is none.
async fn person(tx: &mut Tx<'_>, org: &str, email: &Email) -> Result<Person> {
    sqlx::query_as(
        "SELECT o.id AS org_id, a.id AS account_id, a.email, a.first_name, a.last_name, \
         a.display_name, a.activated_at, m.id AS membership_id, m.state, m.connector_id, \
         m.job_title, m.location, m.employment_type, m.suspended_at \
         FROM accounts a JOIN memberships m ON m.account_id = a.id \
         JOIN organisations o ON o.id = m.organisation_id \
         WHERE a.email_norm = $1 AND o.slug = $2",
    )
    .bind(email.key())
    .bind(org)
    .fetch_optional(&mut **tx)
    .await
    .doing("finding the person")?
    .ok_or_else(|| {
        StoreError::NotFound(format!(
            "no one with the address `{email}` is a member of organisation `{org}`"
        ))
    })
}

async fn organisation_id(tx: &mut Tx<'_>, org: &str) -> Result<i64> {
    sqlx::query_scalar("SELECT id FROM organisations WHERE slug = $1")
        .bind(org)
        .fetch_optional(&mut **tx)
        .await
        .doing("finding the organisation")?
        .ok_or_else(|| StoreError::NotFound(format!("there is no organisation `{org}`")))
}

/// Writes an entry of the audit trail in the action's transaction.
async fn audit(
    tx: &mut Tx<'_>,
    entry: &AuditEntry<'_>,
    org_id: Option<i64>,
    account_id: Option<i64>,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_events (at, actor, via, action, organisation_id, account_id, run_id, \
         subject, old_value, new_value, email) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(now)
    .bind(entry.actor.name.as_str())
    .bind(entry.actor.via.as_str())
    .bind(entry.action.as_str())
    .bind(org_id)
    .bind(account_id)
    .bind(entry.run_id)
    .bind(entry.subject)
    .bind(entry.old_value)
    .bind(entry.new_value)
    .bind(entry.email.map(|e| e.as_str()))
    .execute(&mut **tx)
    .await
    .doing("writing the audit trail")?;
    Ok(())
}

/// An entry about `person` in `org`.
fn about<'a>(
    actor: &'a Actor,
    action: AuditAction,
    org: &'a str,
    email: &'a Email,
) -> AuditEntry<'a> {
    AuditEntry {
        organisation: Some(org),
        email: Some(email),
        ..AuditEntry::new(actor, action)
    }
}

/// A mail to a person of the organisation, queued in the action's transaction.
struct Mail<'a> {
    org_id: i64,
    account_id: i64,
    kind: &'a str,
    recipient: &'a str,
    name: Option<&'a str>,
    /// The old and the new address, for the notices of an email change.
    change: Option<(&'a str, &'a str)>,
}

/// Queues a mail, sent after commit by the outbox worker.
async fn queue_mail(tx: &mut Tx<'_>, mail: Mail<'_>, now: DateTime<Utc>) -> Result<()> {
    sqlx::query(
        "INSERT INTO mail_outbox (organisation_id, account_id, kind, recipient, recipient_name, \
         old_email, new_email, created_at, attempts, next_attempt_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $8)",
    )
    .bind(mail.org_id)
    .bind(mail.account_id)
    .bind(mail.kind)
    .bind(mail.recipient)
    .bind(mail.name)
    .bind(mail.change.map(|c| c.0))
    .bind(mail.change.map(|c| c.1))
    .bind(now)
    .execute(&mut **tx)
    .await
    .doing("queueing an email")?;
    Ok(())
}

pub(in crate::store) async fn add_person(
    pool: &Pool<Db>,
    p: &NewPerson,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<PersonAdded> {
    let mut tx = begin_write(pool, "starting a transaction").await?;
    let org = p.organisation.as_str();
    let org_id = organisation_id(&mut tx, org).await?;
    let existing: Option<(i64, Option<DateTime<Utc>>)> =
        sqlx::query_as("SELECT id, activated_at FROM accounts WHERE email_norm = $1")
            .bind(p.email.key())
            .fetch_optional(&mut *tx)
            .await
            .doing("finding the account")?;
    let (account_id, linked, activated) = match existing {
        Some((id, activated_at)) => (id, true, activated_at.is_some()),
        None => {
            let display = p.display_name.clone().or_else(|| {
                let names: Vec<&str> = [&p.first_name, &p.last_name]
                    .into_iter()
                    .flatten()
                    .map(String::as_str)
                    .collect();
                (!names.is_empty()).then(|| names.join(" "))
            });
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO accounts (email, email_norm, first_name, last_name, display_name, \
                 created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id",
            )
            .bind(p.email.as_str())
            .bind(p.email.key())
            .bind(p.first_name.as_deref())
            .bind(p.last_name.as_deref())
            .bind(display)
            .bind(now)
            .fetch_one(&mut *tx)
            .await
            .doing("creating the account")?;
            (id, false, false)
        }
    };
    let member: Option<(String, Option<String>)> = sqlx::query_as(
        "SELECT state, connector_id FROM memberships WHERE organisation_id = $1 AND account_id = $2",
    )
    .bind(org_id)
    .bind(account_id)
    .fetch_optional(&mut *tx)
    .await
    .doing("finding the membership")?;
    if let Some((state, connector)) = member {
        let by = match connector {
            Some(c) => format!("managed by connector `{c}`"),
            None => "made by hand".to_string(),
        };
        return Err(StoreError::Refused(format!(
            "`{}` is a member of `{org}` already ({state}, {by})",
            p.email
        )));
    }
    let state = if activated {
        MembershipState::Active
    } else {
        MembershipState::Invited
    };
    sqlx::query(
        "INSERT INTO memberships (organisation_id, account_id, state, connector_id, employee_id, \
         job_title, location, employment_type, created_at, updated_at) \
         VALUES ($1, $2, $3, NULL, NULL, $4, $5, $6, $7, $7)",
    )
    .bind(org_id)
    .bind(account_id)
    .bind(state.as_str())
    .bind(p.job_title.as_deref())
    .bind(p.location.as_deref())
    .bind(p.employment_type.as_deref())
    .bind(now)
    .execute(&mut *tx)
    .await
    .doing("creating the membership")?;
    let action = if linked {
        AuditAction::PersonLink
    } else {
        AuditAction::PersonAdd
    };
    let entry = AuditEntry {
        new_value: Some(state.as_str()),
        ..about(actor, action, org, &p.email)
    };
    audit(&mut tx, &entry, Some(org_id), Some(account_id), now).await?;
    for role in &p.roles {
        grant_in(&mut tx, org_id, account_id, role, now).await?;
        let entry = AuditEntry {
            subject: Some(role),
            ..about(actor, AuditAction::RoleGrant, org, &p.email)
        };
        audit(&mut tx, &entry, Some(org_id), Some(account_id), now).await?;
    }
    for key in &p.teams {
        let team = team_by_key(&mut tx, org_id, org, key).await?;
        link_in(&mut tx, team, account_id, TeamRole::Member, now).await?;
        let entry = AuditEntry {
            subject: Some(key.as_str()),
            ..about(actor, AuditAction::TeamMemberAdd, org, &p.email)
        };
        audit(&mut tx, &entry, Some(org_id), Some(account_id), now).await?;
    }
    let mail = match (p.send_invite, activated) {
        (false, _) => None,
        (true, true) => Some("added_to_organisation"),
        (true, false) => Some("activation"),
    };
    if let Some(kind) = mail {
        let (email, name): (String, Option<String>) =
            sqlx::query_as("SELECT email, display_name FROM accounts WHERE id = $1")
                .bind(account_id)
                .fetch_one(&mut *tx)
                .await
                .doing("reading the account")?;
        let mail = Mail {
            org_id,
            account_id,
            kind,
            recipient: &email,
            name: name.as_deref(),
            change: None,
        };
        queue_mail(&mut tx, mail, now).await?;
    }
    tx.commit().await.doing("committing the new person")?;
    Ok(PersonAdded {
        account_id,
        linked,
        state,
        mail,
    })
}

pub(in crate::store) async fn edit_person(
    pool: &Pool<Db>,
    org: &str,
    email: &Email,
    edits: &[(Field, Option<String>)],
    owners: &FieldOwners,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Vec<Edited>> {
    let mut tx = begin_write(pool, "starting a transaction").await?;
    let p = person(&mut tx, org, email).await?;
    // The account's profile is kept by the connector of its oldest live managed membership,
    // in any organisation (as the planner reads it).
    let profile_owner: Option<Option<String>> = sqlx::query_scalar(
        "SELECT connector_id FROM memberships WHERE account_id = $1 \
         AND connector_id IS NOT NULL AND state <> 'deactivated' ORDER BY id LIMIT 1",
    )
    .bind(p.account_id)
    .fetch_optional(&mut *tx)
    .await
    .doing("finding who keeps the profile")?;
    let profile_owner = connector_of(profile_owner.flatten());
    let membership_owner = connector_of(p.connector_id.clone());
    let activated = p.activated_at.is_some();
    let mut refusals = Vec::new();
    for (field, _) in edits {
        if !locks::EDITABLE.contains(field) {
            refusals.push(format!("`{}` is not a field to edit", field.as_str()));
            continue;
        }
        let keeper = if locks::is_account_field(*field) {
            profile_owner.as_ref()
        } else {
            membership_owner.as_ref()
        };
        let lock = locks::lock(*field, keeper, owners, activated);
        let refusal = match (actor.via, &lock) {
            // The person edits only what they own since activating.
            (Via::Service, locks::Lock::Person) => None,
            (Via::Service, locks::Lock::Open) => Some(format!(
                "`{}` is the organisation's to change, not the person's",
                field.as_str()
            )),
            (_, lock) => lock.reason(*field),
        };
        refusals.extend(refusal);
    }
    if !refusals.is_empty() {
        return Err(StoreError::Refused(refusals.join("; ")));
    }
    let mut edited = Vec::new();
    for (field, value) in edits {
        let old = p.value(*field).map(str::to_string);
        if old == *value {
            continue;
        }
        if *field == Field::Email {
            let new = value
                .as_deref()
                .ok_or_else(|| StoreError::Refused("an account needs an email address".into()))?;
            change_email(&mut tx, &p, new, now).await?;
        } else {
            let (table, id) = if locks::is_account_field(*field) {
                ("accounts", p.account_id)
            } else {
                ("memberships", p.membership_id)
            };
            // The column is the field's own name, from a closed list (`locks::EDITABLE`).
            let sql = format!(
                "UPDATE {table} SET {} = $1, updated_at = $2 WHERE id = $3",
                field.as_str()
            );
            sqlx::query(&sql)
                .bind(value.as_deref())
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await
                .doing("editing a field")?;
        }
        let entry = AuditEntry {
            subject: Some(field.as_str()),
            old_value: old.as_deref(),
            new_value: value.as_deref(),
            ..about(actor, AuditAction::FieldEdit, org, email)
        };
        audit(&mut tx, &entry, Some(p.org_id), Some(p.account_id), now).await?;
        edited.push(Edited {
            field: *field,
            old,
            new: value.clone(),
        });
    }
    tx.commit().await.doing("committing the edit")?;
    Ok(edited)
}

/// Moves the account to a new address, as a sync's email change does: a notice to the old
/// address, and to the new one a notice or, before activation, a new activation email; links
/// sent to the old address stop working. A change of letter case only moves nothing.
async fn change_email(tx: &mut Tx<'_>, p: &Person, new: &str, now: DateTime<Utc>) -> Result<()> {
    let new = Email::parse(new)
        .map_err(|e| StoreError::Refused(format!("`{new}` is no email address: {e}")))?;
    let same_key = Email::parse(&p.email).is_ok_and(|old| old.key() == new.key());
    if !same_key {
        let taken: Option<i64> =
            sqlx::query_scalar("SELECT id FROM accounts WHERE email_norm = $1")
                .bind(new.key())
                .fetch_optional(&mut **tx)
                .await
                .doing("checking the new address")?;
        if taken.is_some() {
            return Err(StoreError::Refused(format!(
                "`{new}` belongs to another account"
            )));
        }
    }
    sqlx::query("UPDATE accounts SET email = $1, email_norm = $2, updated_at = $3 WHERE id = $4")
        .bind(new.as_str())
        .bind(new.key())
        .bind(now)
        .bind(p.account_id)
        .execute(&mut **tx)
        .await
        .doing("changing the address")?;
    if same_key {
        return Ok(());
    }
    revoke_tokens(tx, &[p.account_id], None, now).await?;
    let change = Some((p.email.as_str(), new.as_str()));
    let name = p.display_name.as_deref();
    let to_old = Mail {
        org_id: p.org_id,
        account_id: p.account_id,
        kind: "email_changed_old",
        recipient: &p.email,
        name,
        change,
    };
    queue_mail(tx, to_old, now).await?;
    let (kind, change) = if p.activated_at.is_some() {
        ("email_changed_new", change)
    } else if p.state == MembershipState::Invited.as_str() {
        ("activation", None)
    } else {
        return Ok(());
    };
    let to_new = Mail {
        org_id: p.org_id,
        account_id: p.account_id,
        kind,
        recipient: new.as_str(),
        name,
        change,
    };
    queue_mail(tx, to_new, now).await
}

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
async fn grant_in(
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
async fn team_by_key(tx: &mut Tx<'_>, org_id: i64, org: &str, key: &TeamKey) -> Result<i64> {
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
async fn link_in(
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

pub(in crate::store) async fn list_teams(pool: &Pool<Db>, org: &str) -> Result<Vec<TeamListing>> {
    let teams: Vec<(i64, String, String, Option<String>)> = sqlx::query_as(
        "SELECT t.id, t.key, t.name, t.connector_id FROM teams t \
         JOIN organisations o ON o.id = t.organisation_id WHERE o.slug = $1 ORDER BY t.key, t.id",
    )
    .bind(org)
    .fetch_all(pool)
    .await
    .doing("listing teams")?;
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
        let rows: Vec<LinkRow> = sqlx::query_as(&format!(
            "SELECT l.team_id, a.id AS account_id, a.email, a.display_name, l.connector_id \
             FROM {table} l JOIN teams t ON t.id = l.team_id \
             JOIN organisations o ON o.id = t.organisation_id \
             JOIN accounts a ON a.id = l.account_id \
             JOIN memberships m ON m.account_id = a.id AND m.organisation_id = t.organisation_id \
             WHERE o.slug = $1 AND m.state <> 'deactivated' ORDER BY a.email_norm"
        ))
        .bind(org)
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
    Ok(listed)
}

pub(in crate::store) async fn suspend(
    pool: &Pool<Db>,
    org: &str,
    email: &Email,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<bool> {
    let mut tx = begin_write(pool, "starting a transaction").await?;
    let p = person(&mut tx, org, email).await?;
    if p.is_deactivated() {
        return Err(StoreError::Refused(format!(
            "`{email}` is deactivated in `{org}`; there is nothing to suspend"
        )));
    }
    if p.suspended_at.is_some() {
        return Ok(false);
    }
    sqlx::query(
        "UPDATE memberships SET suspended_at = $1, suspended_by = $2, updated_at = $1 WHERE id = $3",
    )
    .bind(now)
    .bind(actor.name.as_str())
    .bind(p.membership_id)
    .execute(&mut *tx)
    .await
    .doing("suspending the membership")?;
    let entry = about(actor, AuditAction::Suspend, org, email);
    audit(&mut tx, &entry, Some(p.org_id), Some(p.account_id), now).await?;
    tx.commit().await.doing("committing the suspension")?;
    Ok(true)
}

pub(in crate::store) async fn lift_suspension(
    pool: &Pool<Db>,
    org: &str,
    email: &Email,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<bool> {
    let mut tx = begin_write(pool, "starting a transaction").await?;
    let p = person(&mut tx, org, email).await?;
    if p.suspended_at.is_none() {
        return Ok(false);
    }
    sqlx::query(
        "UPDATE memberships SET suspended_at = NULL, suspended_by = NULL, updated_at = $1 \
         WHERE id = $2",
    )
    .bind(now)
    .bind(p.membership_id)
    .execute(&mut *tx)
    .await
    .doing("lifting the suspension")?;
    let entry = about(actor, AuditAction::LiftSuspension, org, email);
    audit(&mut tx, &entry, Some(p.org_id), Some(p.account_id), now).await?;
    tx.commit()
        .await
        .doing("committing the lifted suspension")?;
    Ok(true)
}

pub(in crate::store) async fn remove_membership(
    pool: &Pool<Db>,
    org: &str,
    email: &Email,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<()> {
    let mut tx = begin_write(pool, "starting a transaction").await?;
    let p = person(&mut tx, org, email).await?;
    if let Some(connector) = &p.connector_id {
        return Err(StoreError::Refused(format!(
            "connector `{connector}` manages the membership of `{email}` in `{org}`; it ends only \
             through HR (a leaver is deactivated)"
        )));
    }
    for (sql, doing) in [
        (
            "DELETE FROM team_members WHERE account_id = $1 \
             AND team_id IN (SELECT id FROM teams WHERE organisation_id = $2)",
            "removing team links",
        ),
        (
            "DELETE FROM team_coaches WHERE account_id = $1 \
             AND team_id IN (SELECT id FROM teams WHERE organisation_id = $2)",
            "removing coach links",
        ),
        (
            "DELETE FROM role_grants WHERE account_id = $1 \
             AND role_id IN (SELECT id FROM roles WHERE organisation_id = $2)",
            "removing role grants",
        ),
    ] {
        sqlx::query(sql)
            .bind(p.account_id)
            .bind(p.org_id)
            .execute(&mut *tx)
            .await
            .doing(doing)?;
    }
    revoke_tokens(&mut tx, &[p.account_id], p.org_id, now).await?;
    sqlx::query(
        "UPDATE mail_outbox SET cancelled_at = $1, last_error = 'removed from the organisation by hand' \
         WHERE account_id = $2 AND organisation_id = $3 AND kind <> $4 \
         AND sent_at IS NULL AND cancelled_at IS NULL AND failed_at IS NULL",
    )
    .bind(now)
    .bind(p.account_id)
    .bind(p.org_id)
    .bind(DIGEST_KIND)
    .execute(&mut *tx)
    .await
    .doing("cancelling queued email")?;
    sqlx::query("DELETE FROM memberships WHERE id = $1")
        .bind(p.membership_id)
        .execute(&mut *tx)
        .await
        .doing("removing the membership")?;
    let entry = AuditEntry {
        old_value: Some(p.state.as_str()),
        ..about(actor, AuditAction::Remove, org, email)
    };
    audit(&mut tx, &entry, Some(p.org_id), Some(p.account_id), now).await?;
    tx.commit().await.doing("committing the removal")?;
    Ok(())
}

pub(in crate::store) async fn record_audit(
    pool: &Pool<Db>,
    entry: &AuditEntry<'_>,
    now: DateTime<Utc>,
) -> Result<()> {
    let mut tx = begin_write(pool, "starting a transaction").await?;
    let org_id = match entry.organisation {
        Some(org) => Some(organisation_id(&mut tx, org).await?),
        None => None,
    };
    let account_id: Option<i64> = match entry.email {
        Some(email) => sqlx::query_scalar("SELECT id FROM accounts WHERE email_norm = $1")
            .bind(email.key())
            .fetch_optional(&mut *tx)
            .await
            .doing("finding the account")?,
        None => None,
    };
    audit(&mut tx, entry, org_id, account_id, now).await?;
    tx.commit().await.doing("committing the audit entry")
}

/// An entry of the trail as stored.
#[derive(sqlx::FromRow)]
struct AuditRow {
    id: i64,
    at: DateTime<Utc>,
    actor: String,
    via: String,
    action: String,
    slug: Option<String>,
    account_id: Option<i64>,
    email: Option<String>,
    run_id: Option<i64>,
    subject: Option<String>,
    old_value: Option<String>,
    new_value: Option<String>,
}

impl AuditRow {
    fn into_event(self) -> Result<AuditEvent> {
        let corrupt = |what: &str, text: &str| {
            StoreError::Corrupt(format!("audit entry {} has the {what} `{text}`", self.id))
        };
        Ok(AuditEvent {
            id: self.id,
            at: self.at,
            via: Via::parse(&self.via).ok_or_else(|| corrupt("channel", &self.via))?,
            action: AuditAction::parse(&self.action)
                .ok_or_else(|| corrupt("action", &self.action))?,
            actor: self.actor,
            organisation: self.slug,
            account_id: self.account_id,
            email: self.email,
            run_id: self.run_id,
            subject: self.subject,
            old_value: self.old_value,
            new_value: self.new_value,
        })
    }
}

pub(in crate::store) async fn audit_of_account(
    pool: &Pool<Db>,
    account_id: i64,
) -> Result<Vec<AuditEvent>> {
    let rows: Vec<AuditRow> = sqlx::query_as(
        "SELECT e.id, e.at, e.actor, e.via, e.action, o.slug, e.account_id, e.email, e.run_id, \
         e.subject, e.old_value, e.new_value FROM audit_events e \
         LEFT JOIN organisations o ON o.id = e.organisation_id \
         WHERE e.account_id = $1 ORDER BY e.id",
    )
    .bind(account_id)
    .fetch_all(pool)
    .await
    .doing("reading the audit trail")?;
    rows.into_iter().map(AuditRow::into_event).collect()
}

pub(in crate::store) async fn account_id(pool: &Pool<Db>, email: &Email) -> Result<Option<i64>> {
    sqlx::query_scalar("SELECT id FROM accounts WHERE email_norm = $1")
        .bind(email.key())
        .fetch_optional(pool)
        .await
        .doing("finding the account")
}
