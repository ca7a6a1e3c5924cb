//! The SQL of activation tokens: revoking a person's unused links, issuing a token when its
//! email is sent (or cancelling the email when it no longer applies), and using one.

use chrono::{DateTime, Utc};
use sqlx::{Pool, QueryBuilder};

use super::Db;
use super::common::{CHUNK, Tx, begin_write, corrupt, get, push_binds};
use super::outbox::cancel_row;
use crate::store::{Doing, OutboxMail, Result, TokenState};

/// Revokes the unused activation links of the accounts, in one organisation or in all.
pub(super) async fn revoke_tokens(
    tx: &mut Tx<'_>,
    accounts: &[i64],
    org: impl Into<Option<i64>>,
    now: DateTime<Utc>,
) -> Result<()> {
    let org = org.into();
    for chunk in accounts.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Db>::new("UPDATE activation_tokens SET revoked_at = ");
        qb.push_bind(now).push(" WHERE");
        if let Some(org) = org {
            qb.push(" organisation_id = ").push_bind(org).push(" AND");
        }
        qb.push(" used_at IS NULL AND revoked_at IS NULL AND account_id IN (");
        push_binds(&mut qb, chunk.iter().copied());
        qb.push(")");
        qb.build()
            .execute(&mut **tx)
            .await
            .doing("revoking activation links")?;
    }
    Ok(())
}

pub(in crate::store) async fn issue_activation_token(
    pool: &Pool<Db>,
    mail: &OutboxMail,
    token_hash: &str,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<Option<String>> {
    let account = mail
        .account_id
        .ok_or_else(|| corrupt(format!("activation email {} has no account", mail.id)))?;
    let mut tx = begin_write(pool, "starting a transaction").await?;
    // The mail was queued earlier: it still applies only while the person is invited, has
    // not activated, and still has the address it goes to.
    let row = sqlx::query(
        "SELECT a.email_norm, a.activated_at, m.state FROM accounts a \
         LEFT JOIN memberships m ON m.account_id = a.id AND m.organisation_id = $2 \
         WHERE a.id = $1",
    )
    .bind(account)
    .bind(mail.organisation_id)
    .fetch_optional(&mut *tx)
    .await
    .doing("checking an activation email still applies")?;
    let why_not = match &row {
        None => Some("the account no longer exists".to_string()),
        Some(row) => {
            let email: String = get(row, "email_norm")?;
            let activated: Option<DateTime<Utc>> = get(row, "activated_at")?;
            let state: Option<String> = get(row, "state")?;
            if activated.is_some() {
                Some("the account was activated meanwhile".to_string())
            } else if state.as_deref() != Some("invited") {
                Some(format!(
                    "the membership is {} now, not invited",
                    state.as_deref().unwrap_or("gone")
                ))
            } else if email != mail.recipient.to_lowercase() {
                Some("the account has another email address now".to_string())
            } else {
                None
            }
        }
    };
    if let Some(reason) = why_not {
        cancel_row(&mut tx, mail.id, &reason, now).await?;
        tx.commit().await.doing("committing a cancelled email")?;
        return Ok(Some(reason));
    }
    revoke_tokens(&mut tx, &[account], mail.organisation_id, now).await?;
    sqlx::query(
        "INSERT INTO activation_tokens (account_id, organisation_id, token_hash, email, \
         created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(account)
    .bind(mail.organisation_id)
    .bind(token_hash)
    .bind(mail.recipient.as_str())
    .bind(now)
    .bind(expires_at)
    .execute(&mut *tx)
    .await
    .doing("storing an activation token")?;
    tx.commit().await.doing("committing an activation token")?;
    Ok(None)
}

/// An activation token as stored.
#[derive(sqlx::FromRow)]
struct TokenRow {
    account_id: i64,
    organisation_id: i64,
    email: String,
    expires_at: DateTime<Utc>,
    used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

/// A token's state, with its account and organisation when it exists.
async fn read_token(
    executor: impl sqlx::Executor<'_, Database = Db>,
    token_hash: &str,
    now: DateTime<Utc>,
) -> Result<(TokenState, Option<(i64, i64)>)> {
    let Some(row) = sqlx::query_as::<_, TokenRow>(
        "SELECT account_id, organisation_id, email, expires_at, used_at, revoked_at \
         FROM activation_tokens WHERE token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(executor)
    .await
    .doing("reading an activation token")?
    else {
        return Ok((TokenState::Unknown, None));
    };
    let state = if row.used_at.is_some() {
        TokenState::Used
    } else if row.revoked_at.is_some() {
        TokenState::Revoked
    } else if row.expires_at <= now {
        TokenState::Expired
    } else {
        TokenState::Valid {
            account_id: row.account_id,
            email: row.email,
        }
    };
    Ok((state, Some((row.account_id, row.organisation_id))))
}

pub(in crate::store) async fn token_state(
    pool: &Pool<Db>,
    token_hash: &str,
    now: DateTime<Utc>,
) -> Result<TokenState> {
    Ok(read_token(pool, token_hash, now).await?.0)
}

pub(in crate::store) async fn activate(
    pool: &Pool<Db>,
    token_hash: &str,
    now: DateTime<Utc>,
) -> Result<TokenState> {
    let mut tx = begin_write(pool, "starting a transaction").await?;
    let (state, ids) = read_token(&mut *tx, token_hash, now).await?;
    let (TokenState::Valid { .. }, Some((account, _))) = (&state, ids) else {
        return Ok(state);
    };
    // Single use: only the update that finds the token unused wins.
    let used = sqlx::query(
        "UPDATE activation_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL \
         AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(token_hash)
    .execute(&mut *tx)
    .await
    .doing("using an activation token")?;
    if used.rows_affected() != 1 {
        return Ok(TokenState::Used);
    }
    sqlx::query("UPDATE accounts SET activated_at = COALESCE(activated_at, $1), updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(account)
        .execute(&mut *tx)
        .await
        .doing("activating the account")?;
    sqlx::query(
        "UPDATE memberships SET state = 'active', updated_at = $1 \
         WHERE account_id = $2 AND state = 'invited'",
    )
    .bind(now)
    .bind(account)
    .execute(&mut *tx)
    .await
    .doing("activating the membership")?;
    tx.commit().await.doing("committing the activation")?;
    Ok(state)
}
