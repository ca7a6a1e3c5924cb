//! The SQL of local administration: each action by hand in one transaction, with its entry in
//! the audit trail (`people.rs`: adding, editing, suspending and removing people;
//! `groups.rs`: roles and teams; `trail.rs`: the trail read back). This file holds what they
//! share: finding the person, writing an audit entry, queueing a mail.

mod groups;
mod people;
mod trail;

pub(in crate::store) use groups::{
    add_team_link, create_team, grant_role, list_roles, list_teams, remove_team_link, revoke_role,
};
pub(in crate::store) use people::{
    add_person, edit_person, lift_suspension, remove_membership, suspend,
};
pub(in crate::store) use trail::{
    account_id, audit_of_account, audit_of_run, audit_trail, record_audit,
};

use chrono::{DateTime, Utc};

use super::common::Tx;
use crate::domain::{Actor, AuditAction, Email, MembershipState};
use crate::planner::Field;
use crate::store::{AuditEntry, Doing, Result, StoreError};

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

/// Notes that something of the account changed by hand (a membership, a role, a team link):
/// the service API's directory read by `updated_since` then sees it, a removal included.
async fn touch_account(tx: &mut Tx<'_>, account_id: i64, now: DateTime<Utc>) -> Result<()> {
    sqlx::query("UPDATE accounts SET updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(account_id)
        .execute(&mut **tx)
        .await
        .doing("noting the change of the account")?;
    Ok(())
}

/// Writes an entry of the audit trail in the action's transaction, and for a change of the
/// person's directory rows moves their account's `updated_at`.
async fn audit(
    tx: &mut Tx<'_>,
    entry: &AuditEntry<'_>,
    org_id: Option<i64>,
    account_id: Option<i64>,
    now: DateTime<Utc>,
) -> Result<()> {
    // A change of the person's directory rows shows in the service API's read of what changed.
    let changes_directory = !matches!(
        entry.action,
        AuditAction::InviteResend
            | AuditAction::RunApprove
            | AuditAction::RunStart
            | AuditAction::Export
    );
    if let Some(account) = account_id.filter(|_| changes_directory) {
        touch_account(tx, account, now).await?;
    }
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
