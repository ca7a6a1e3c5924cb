//! The SQL of activation tokens: revoking a person's unused links, issuing a token when its
//! email is sent (or cancelling the email when it no longer applies), and using one.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use sqlx::{Pool, QueryBuilder};

use super::Db;
use super::common::{CHUNK, Tx, begin_write, get, push_binds};
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

/// An activation mail of a batch, with the hash of the token its link will carry.
type TokenFor<'a> = (&'a OutboxMail, &'a str);

/// The account and membership an activation mail is checked against.
struct Invitee {
    email_norm: String,
    activated: bool,
    /// The membership's state in each organisation the account belongs to.
    states: Vec<(i64, String)>,
}

/// Issues the tokens of a batch of activation mails in one transaction; for each mail, in
/// order, `None` when its token was stored, or why it was cancelled instead. A mail still
/// applies only while the person is invited, has not activated, and still has the address it
/// goes to; when one batch holds two activation mails to the same person in one organisation,
/// the later one is sent and the earlier one cancelled, so only one link is mailed.
pub(in crate::store) async fn issue_activation_tokens(
    pool: &Pool<Db>,
    batch: &[TokenFor<'_>],
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<Vec<Option<String>>> {
    let mut tx = begin_write(pool, "starting a transaction").await?;
    let invitees = read_invitees(&mut tx, batch).await?;
    let mut outcome: Vec<Option<String>> = Vec::with_capacity(batch.len());
    let mut later: HashSet<(i64, i64)> = HashSet::new();
    // Walked newest first, so the latest mail to a person is the one that is sent.
    for item in batch.iter().rev() {
        let mail = item.0;
        let reason = match mail.account_id {
            None => Some("the email names no account".to_string()),
            Some(account) => why_not(invitees.get(&account), mail).or_else(|| {
                // Only a later mail that is sent replaces this one.
                (!later.insert((account, mail.organisation_id)))
                    .then(|| "a later activation email to this person replaces it".to_string())
            }),
        };
        outcome.push(reason);
    }
    outcome.reverse();
    let mut issued: BTreeMap<i64, Vec<i64>> = Default::default();
    for (item, reason) in batch.iter().zip(&outcome) {
        match (reason, item.0.account_id) {
            (Some(reason), _) => cancel_row(&mut tx, item.0.id, reason, now).await?,
            (None, Some(account)) => issued
                .entry(item.0.organisation_id)
                .or_default()
                .push(account),
            (None, None) => {}
        }
    }
    for (org, accounts) in &issued {
        revoke_tokens(&mut tx, accounts, *org, now).await?;
    }
    let to_store: Vec<&TokenFor<'_>> = batch
        .iter()
        .zip(&outcome)
        .filter(|(_, reason)| reason.is_none())
        .map(|(item, _)| item)
        .collect();
    for chunk in to_store.chunks(CHUNK / 6) {
        let mut qb = QueryBuilder::<Db>::new(
            "INSERT INTO activation_tokens (account_id, organisation_id, token_hash, email, \
             created_at, expires_at) ",
        );
        qb.push_values(chunk, |mut row, item| {
            row.push_bind(item.0.account_id)
                .push_bind(item.0.organisation_id)
                .push_bind(item.1)
                .push_bind(item.0.recipient.as_str())
                .push_bind(now)
                .push_bind(expires_at);
        });
        qb.build()
            .execute(&mut *tx)
            .await
            .doing("storing activation tokens")?;
    }
    tx.commit().await.doing("committing activation tokens")?;
    Ok(outcome)
}

/// The accounts of a batch's mails, with their memberships.
async fn read_invitees(tx: &mut Tx<'_>, batch: &[TokenFor<'_>]) -> Result<HashMap<i64, Invitee>> {
    let accounts: BTreeSet<i64> = batch.iter().filter_map(|item| item.0.account_id).collect();
    let accounts: Vec<i64> = accounts.into_iter().collect();
    let mut invitees = HashMap::with_capacity(accounts.len());
    for chunk in accounts.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Db>::new(
            "SELECT a.id, a.email_norm, a.activated_at, m.organisation_id, m.state \
             FROM accounts a LEFT JOIN memberships m ON m.account_id = a.id WHERE a.id IN (",
        );
        push_binds(&mut qb, chunk.iter().copied());
        qb.push(")");
        let rows = qb
            .build()
            .fetch_all(&mut **tx)
            .await
            .doing("checking activation emails still apply")?;
        for row in &rows {
            let id: i64 = get(row, "id")?;
            let activated: Option<DateTime<Utc>> = get(row, "activated_at")?;
            let invitee = match invitees.entry(id) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(e) => e.insert(Invitee {
                    email_norm: get(row, "email_norm")?,
                    activated: activated.is_some(),
                    states: Vec::new(),
                }),
            };
            let org: Option<i64> = get(row, "organisation_id")?;
            let state: Option<String> = get(row, "state")?;
            if let (Some(org), Some(state)) = (org, state) {
                invitee.states.push((org, state));
            }
        }
    }
    Ok(invitees)
}

/// Why a queued activation mail no longer applies, if it does not.
fn why_not(invitee: Option<&Invitee>, mail: &OutboxMail) -> Option<String> {
    let Some(invitee) = invitee else {
        return Some("the account no longer exists".to_string());
    };
    let state = invitee
        .states
        .iter()
        .find(|(org, _)| *org == mail.organisation_id)
        .map(|(_, state)| state.as_str());
    if invitee.activated {
        Some("the account was activated meanwhile".to_string())
    } else if state != Some("invited") {
        Some(format!(
            "the membership is {} now, not invited",
            state.unwrap_or("gone")
        ))
    } else if invitee.email_norm != mail.recipient.to_lowercase() {
        Some("the account has another email address now".to_string())
    } else {
        None
    }
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
