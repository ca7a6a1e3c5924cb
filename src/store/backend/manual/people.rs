//! Adding a person by hand, editing their fields, suspending and removing their membership.

use chrono::{DateTime, Utc};
use sqlx::Pool;

use super::super::Db;
use super::super::common::{Tx, begin_write, connector_of};
use super::super::tokens::revoke_tokens;
use super::groups::{grant_in, link_in, team_by_key};
use super::{Mail, Person, about, audit, organisation_id, person, queue_mail};
use crate::domain::{Actor, AuditAction, Email, MembershipState, Via};
use crate::planner::Field;
use crate::planner::locks::{self, FieldOwners};
use crate::store::{
    AuditEntry, DIGEST_KIND, Doing, Edited, NewPerson, PersonAdded, Result, StoreError, TeamRole,
};

pub(in crate::store) async fn add_person(
    pool: &Pool<Db>,
    p: &NewPerson,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<PersonAdded> {
    let mut tx = begin_write(pool, "starting a transaction").await?;
    let org = p.organisation.as_str();
    let org_id = organisation_id(&mut tx, org).await?;
    let (account_id, linked, activated) = account_for(&mut tx, p, now).await?;
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
    roles_and_teams(&mut tx, p, (org_id, account_id), actor, now).await?;
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

/// The account with the person's address, or a new one: `(id, linked, activated)`.
async fn account_for(
    tx: &mut Tx<'_>,
    p: &NewPerson,
    now: DateTime<Utc>,
) -> Result<(i64, bool, bool)> {
    let existing: Option<(i64, Option<DateTime<Utc>>)> =
        sqlx::query_as("SELECT id, activated_at FROM accounts WHERE email_norm = $1")
            .bind(p.email.key())
            .fetch_optional(&mut **tx)
            .await
            .doing("finding the account")?;
    if let Some((id, activated_at)) = existing {
        return Ok((id, true, activated_at.is_some()));
    }
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
    .fetch_one(&mut **tx)
    .await
    .doing("creating the account")?;
    Ok((id, false, false))
}

/// The new person's roles and teams, granted and joined by hand, each in the trail.
async fn roles_and_teams(
    tx: &mut Tx<'_>,
    p: &NewPerson,
    (org_id, account_id): (i64, i64),
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<()> {
    let org = p.organisation.as_str();
    for role in &p.roles {
        grant_in(tx, org_id, account_id, role, now).await?;
        let entry = AuditEntry {
            subject: Some(role),
            ..about(actor, AuditAction::RoleGrant, org, &p.email)
        };
        audit(tx, &entry, Some(org_id), Some(account_id), now).await?;
    }
    for key in &p.teams {
        let team = team_by_key(tx, org_id, org, key).await?;
        link_in(tx, team, account_id, TeamRole::Member, now).await?;
        let entry = AuditEntry {
            subject: Some(key.as_str()),
            ..about(actor, AuditAction::TeamMemberAdd, org, &p.email)
        };
        audit(tx, &entry, Some(org_id), Some(account_id), now).await?;
    }
    Ok(())
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
