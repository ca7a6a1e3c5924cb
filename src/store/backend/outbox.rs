//! The SQL of the outbox: claiming due mail (with `FOR UPDATE SKIP LOCKED` on PostgreSQL),
//! renewing and releasing claims a batch at a time, recording each mail's outcome, and queueing an activation
//! again by hand.

use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use sqlx::{Pool, QueryBuilder};

use super::common::{CHUNK, begin_write, get, push_binds};
use super::tokens::revoke_tokens;
use super::{Db, POSTGRES};
use crate::store::{DIGEST_KIND, Doing, OutboxMail, OutboxStats, Result, StoreError};

/// A claimed mail as read with its organisation.
#[derive(sqlx::FromRow)]
struct OutboxRow {
    id: i64,
    organisation_id: i64,
    organisation_name: String,
    organisation_slug: String,
    locale: String,
    time_zone: String,
    account_id: Option<i64>,
    run_id: Option<i64>,
    kind: String,
    recipient: String,
    recipient_name: Option<String>,
    old_email: Option<String>,
    new_email: Option<String>,
    attempts: i32,
    created_at: DateTime<Utc>,
}

impl OutboxRow {
    fn claimed_until(self, claimed_until: DateTime<Utc>) -> OutboxMail {
        OutboxMail {
            id: self.id,
            organisation_id: self.organisation_id,
            organisation_name: self.organisation_name,
            organisation_slug: self.organisation_slug,
            locale: self.locale,
            time_zone: self.time_zone,
            account_id: self.account_id,
            run_id: self.run_id,
            kind: self.kind,
            recipient: self.recipient,
            recipient_name: self.recipient_name,
            old_email: self.old_email,
            new_email: self.new_email,
            attempts: self.attempts,
            claimed_until,
            created_at: self.created_at,
        }
    }
}

pub(in crate::store) async fn claim_due_mail(
    pool: &Pool<Db>,
    now: DateTime<Utc>,
    lease: Duration,
    limit: i64,
) -> Result<Vec<OutboxMail>> {
    // A claim pushes the row's next attempt past the lease: other workers skip it, and if this
    // worker dies the row becomes due again when the lease ends.
    // Whole microseconds, as PostgreSQL stores them: the value is the claim's mark, compared
    // again by `renew_claim`.
    let lease_until = (now
        + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::minutes(5)))
    .trunc_subsecs(6);
    let lock = if POSTGRES {
        " FOR UPDATE SKIP LOCKED"
    } else {
        ""
    };
    let rows = sqlx::query(&format!(
        "UPDATE mail_outbox SET next_attempt_at = $1 WHERE id IN (\
         SELECT id FROM mail_outbox WHERE sent_at IS NULL AND cancelled_at IS NULL AND failed_at IS NULL AND next_attempt_at <= $2 \
         ORDER BY id LIMIT $3{lock}) RETURNING id"
    ))
    .bind(lease_until)
    .bind(now)
    .bind(limit)
    .fetch_all(pool)
    .await
    .doing("claiming due emails")?;
    let ids: Vec<i64> = rows.iter().map(|r| get(r, "id")).collect::<Result<_>>()?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut qb = QueryBuilder::<Db>::new(
        "SELECT m.id, m.organisation_id, o.name AS organisation_name, o.slug AS organisation_slug, o.locale, o.time_zone, \
         m.account_id, m.run_id, m.kind, m.recipient, m.recipient_name, m.old_email, m.new_email, \
         m.attempts, m.created_at \
         FROM mail_outbox m JOIN organisations o ON o.id = m.organisation_id WHERE m.id IN (",
    );
    push_binds(&mut qb, ids.iter().copied());
    qb.push(") ORDER BY m.id");
    let rows: Vec<OutboxRow> = qb
        .build_query_as()
        .fetch_all(pool)
        .await
        .doing("reading claimed emails")?;
    Ok(rows
        .into_iter()
        .map(|row| row.claimed_until(lease_until))
        .collect())
}

pub(in crate::store) async fn cancel_mail(
    pool: &Pool<Db>,
    id: i64,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    let mut conn = pool.acquire().await.doing("taking a connection")?;
    cancel_row(&mut conn, id, reason, now).await
}

/// Marks a queued email cancelled, with why as its last error.
pub(super) async fn cancel_row(
    conn: &mut <Db as sqlx::Database>::Connection,
    id: i64,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query("UPDATE mail_outbox SET cancelled_at = $1, last_error = $2 WHERE id = $3")
        .bind(now)
        .bind(format!("cancelled: {reason}"))
        .bind(id)
        .execute(conn)
        .await
        .doing("cancelling an email")?;
    Ok(())
}

pub(in crate::store) async fn renew_claims(
    pool: &Pool<Db>,
    ids: &[i64],
    claimed_until: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Vec<i64>> {
    let mut renewed = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Db>::new("UPDATE mail_outbox SET next_attempt_at = ");
        qb.push_bind(until)
            .push(" WHERE next_attempt_at = ")
            .push_bind(claimed_until)
            .push(
                " AND sent_at IS NULL AND cancelled_at IS NULL AND failed_at IS NULL AND id IN (",
            );
        push_binds(&mut qb, chunk.iter().copied());
        qb.push(") RETURNING id");
        let rows = qb
            .build()
            .fetch_all(pool)
            .await
            .doing("renewing the claim on emails")?;
        for row in &rows {
            renewed.push(get(row, "id")?);
        }
    }
    Ok(renewed)
}

pub(in crate::store) async fn release_mail(
    pool: &Pool<Db>,
    ids: &[i64],
    claimed_until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<()> {
    for chunk in ids.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Db>::new("UPDATE mail_outbox SET next_attempt_at = ");
        qb.push_bind(now)
            .push(" WHERE next_attempt_at = ")
            .push_bind(claimed_until)
            .push(
                " AND sent_at IS NULL AND cancelled_at IS NULL AND failed_at IS NULL AND id IN (",
            );
        push_binds(&mut qb, chunk.iter().copied());
        qb.push(")");
        qb.build()
            .execute(pool)
            .await
            .doing("handing claimed emails back")?;
    }
    Ok(())
}

pub(in crate::store) async fn mark_mails_sent(
    pool: &Pool<Db>,
    ids: &[i64],
    now: DateTime<Utc>,
) -> Result<()> {
    for chunk in ids.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Db>::new("UPDATE mail_outbox SET sent_at = ");
        qb.push_bind(now)
            .push(", attempts = attempts + 1, last_error = NULL WHERE id IN (");
        push_binds(&mut qb, chunk.iter().copied());
        qb.push(")");
        qb.build()
            .execute(pool)
            .await
            .doing("marking emails sent")?;
    }
    Ok(())
}

pub(in crate::store) async fn mark_mail_failed(
    pool: &Pool<Db>,
    id: i64,
    error: &str,
    retry_at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "UPDATE mail_outbox SET attempts = attempts + 1, last_error = $1, next_attempt_at = $2 \
         WHERE id = $3",
    )
    .bind(error)
    .bind(retry_at)
    .bind(id)
    .execute(pool)
    .await
    .doing("recording a failed email")?;
    Ok(())
}

pub(in crate::store) async fn mark_mail_undeliverable(
    pool: &Pool<Db>,
    id: i64,
    error: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "UPDATE mail_outbox SET attempts = attempts + 1, last_error = $1, failed_at = $2 \
         WHERE id = $3",
    )
    .bind(error)
    .bind(now)
    .bind(id)
    .execute(pool)
    .await
    .doing("recording an undeliverable email")?;
    Ok(())
}

pub(in crate::store) async fn undeliverable_mail_of_run(
    pool: &Pool<Db>,
    run_id: i64,
) -> Result<Vec<(String, String)>> {
    let rows = sqlx::query(
        "SELECT recipient, last_error FROM mail_outbox \
         WHERE run_id = $1 AND failed_at IS NOT NULL AND kind <> $2 ORDER BY id",
    )
    .bind(run_id)
    .bind(DIGEST_KIND)
    .fetch_all(pool)
    .await
    .doing("reading a run's undeliverable emails")?;
    rows.iter()
        .map(|row| {
            let error: Option<String> = get(row, "last_error")?;
            Ok((get(row, "recipient")?, error.unwrap_or_default()))
        })
        .collect()
}

pub(in crate::store) async fn outbox_stats(pool: &Pool<Db>) -> Result<OutboxStats> {
    let row = sqlx::query(
        "SELECT \
         COALESCE(SUM(CASE WHEN sent_at IS NULL AND cancelled_at IS NULL AND failed_at IS NULL THEN 1 ELSE 0 END), 0) AS pending, \
         COALESCE(SUM(CASE WHEN sent_at IS NULL AND cancelled_at IS NULL AND failed_at IS NULL AND last_error IS NOT NULL THEN 1 ELSE 0 END), 0) AS failing, \
         COALESCE(SUM(CASE WHEN sent_at IS NOT NULL THEN 1 ELSE 0 END), 0) AS sent, \
         COALESCE(SUM(CASE WHEN failed_at IS NOT NULL THEN 1 ELSE 0 END), 0) AS undeliverable \
         FROM mail_outbox",
    )
    .fetch_one(pool)
    .await
    .doing("counting the outbox")?;
    let oldest = sqlx::query(
        "SELECT created_at FROM mail_outbox WHERE sent_at IS NULL AND cancelled_at IS NULL AND failed_at IS NULL \
         ORDER BY id LIMIT 1",
    )
    .fetch_optional(pool)
    .await
    .doing("finding the oldest queued email")?;
    Ok(OutboxStats {
        pending: get(&row, "pending")?,
        failing: get(&row, "failing")?,
        sent: get(&row, "sent")?,
        undeliverable: get(&row, "undeliverable")?,
        oldest_pending: oldest.map(|r| get(&r, "created_at")).transpose()?,
    })
}

pub(in crate::store) async fn queue_activation_resend(
    pool: &Pool<Db>,
    organisation_slug: &str,
    email_key: &str,
    now: DateTime<Utc>,
) -> Result<i64> {
    let mut tx = begin_write(pool, "starting a transaction").await?;
    let row = sqlx::query(
        "SELECT a.id AS account_id, a.email, a.display_name, a.activated_at, m.state, \
         o.id AS organisation_id FROM accounts a \
         JOIN memberships m ON m.account_id = a.id \
         JOIN organisations o ON o.id = m.organisation_id \
         WHERE a.email_norm = $1 AND o.slug = $2",
    )
    .bind(email_key)
    .bind(organisation_slug)
    .fetch_optional(&mut *tx)
    .await
    .doing("finding the account")?
    .ok_or_else(|| {
        StoreError::NotFound(format!(
            "no account `{email_key}` in organisation `{organisation_slug}`"
        ))
    })?;
    let state: String = get(&row, "state")?;
    let activated: Option<DateTime<Utc>> = get(&row, "activated_at")?;
    if activated.is_some() {
        return Err(StoreError::NotFound(format!(
            "`{email_key}` has already activated the account; there is nothing to resend"
        )));
    }
    if state != "invited" {
        return Err(StoreError::NotFound(format!(
            "the membership of `{email_key}` in `{organisation_slug}` is {state}, not invited"
        )));
    }
    let account: i64 = get(&row, "account_id")?;
    let org: i64 = get(&row, "organisation_id")?;
    revoke_tokens(&mut tx, &[account], org, now).await?;
    let id: i64 = sqlx::query(
        "INSERT INTO mail_outbox (organisation_id, account_id, kind, recipient, recipient_name, \
         created_at, attempts, next_attempt_at) VALUES ($1, $2, 'activation', $3, $4, $5, 0, $5) \
         RETURNING id",
    )
    .bind(org)
    .bind(account)
    .bind(get::<String>(&row, "email")?)
    .bind(get::<Option<String>>(&row, "display_name")?)
    .bind(now)
    .fetch_one(&mut *tx)
    .await
    .doing("queueing the activation email")
    .and_then(|row| get(&row, "id"))?;
    tx.commit().await.doing("committing the resend")?;
    Ok(id)
}
