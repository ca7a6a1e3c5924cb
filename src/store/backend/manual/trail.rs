//! Entries of the audit trail for actions that change no directory row, and the trail read
//! back.

use chrono::{DateTime, Utc};
use sqlx::Pool;

use super::super::Db;
use super::super::common::begin_write;
use super::{audit, organisation_id};
use crate::domain::{AuditAction, AuditEvent, Email, Via};
use crate::store::{AuditEntry, Doing, Result, StoreError};

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

/// Entries of the trail, oldest first, where `condition` (on `e`, binding `$1`, and `$2` when
/// `limit` is given) holds.
async fn read_trail(
    pool: &Pool<Db>,
    condition: &str,
    value: i64,
    limit: Option<i64>,
) -> Result<Vec<AuditEvent>> {
    let mut sql = format!(
        "SELECT e.id, e.at, e.actor, e.via, e.action, o.slug, e.account_id, e.email, e.run_id, \
         e.subject, e.old_value, e.new_value FROM audit_events e \
         LEFT JOIN organisations o ON o.id = e.organisation_id WHERE {condition} ORDER BY e.id"
    );
    if limit.is_some() {
        sql.push_str(" LIMIT $2");
    }
    let mut query = sqlx::query_as::<_, AuditRow>(&sql).bind(value);
    if let Some(limit) = limit {
        query = query.bind(limit);
    }
    let rows = query
        .fetch_all(pool)
        .await
        .doing("reading the audit trail")?;
    rows.into_iter().map(AuditRow::into_event).collect()
}

pub(in crate::store) async fn audit_trail(
    pool: &Pool<Db>,
    after: i64,
    limit: i64,
) -> Result<Vec<AuditEvent>> {
    read_trail(pool, "e.id > $1", after, Some(limit)).await
}

pub(in crate::store) async fn audit_of_run(
    pool: &Pool<Db>,
    run_id: i64,
) -> Result<Vec<AuditEvent>> {
    read_trail(pool, "e.run_id = $1", run_id, None).await
}

pub(in crate::store) async fn audit_of_account(
    pool: &Pool<Db>,
    account_id: i64,
) -> Result<Vec<AuditEvent>> {
    read_trail(pool, "e.account_id = $1", account_id, None).await
}

pub(in crate::store) async fn account_id(pool: &Pool<Db>, email: &Email) -> Result<Option<i64>> {
    sqlx::query_scalar("SELECT id FROM accounts WHERE email_norm = $1")
        .bind(email.key())
        .fetch_optional(pool)
        .await
        .doing("finding the account")
}
