//! The SQL of named admins (`admins`) and service tokens (`service_tokens`): the same
//! statements on either table.

use chrono::{DateTime, SubsecRound, Utc};
use sqlx::Pool;

use super::Db;
use crate::store::{Doing, Principal, PrincipalKind, Result, StoreError};

fn table(kind: PrincipalKind) -> &'static str {
    match kind {
        PrincipalKind::Admin => "admins",
        PrincipalKind::Service => "service_tokens",
    }
}

pub(in crate::store) async fn add(
    pool: &Pool<Db>,
    kind: PrincipalKind,
    name: &str,
    token_hash: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    if kind == PrincipalKind::Admin && name == crate::domain::CONFIGURED_ADMIN {
        return Err(StoreError::Refused(format!(
            "`{name}` is the name the audit trail gives the configured admin token; pick another"
        )));
    }
    let table = table(kind);
    let done = sqlx::query(&format!(
        "INSERT INTO {table} (name, token_hash, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO NOTHING"
    ))
    .bind(name)
    .bind(token_hash)
    .bind(now.trunc_subsecs(0))
    .execute(pool)
    .await
    .doing("adding a token")?;
    if done.rows_affected() == 0 {
        return Err(StoreError::Refused(format!(
            "there is a {} named `{name}` already (names stay taken after revoking, since the \
             audit trail names them); rotate its token, or pick another name",
            kind.noun()
        )));
    }
    Ok(())
}

pub(in crate::store) async fn rotate(
    pool: &Pool<Db>,
    kind: PrincipalKind,
    name: &str,
    token_hash: &str,
) -> Result<bool> {
    let table = table(kind);
    let done = sqlx::query(&format!(
        "UPDATE {table} SET token_hash = $1 WHERE name = $2 AND revoked_at IS NULL"
    ))
    .bind(token_hash)
    .bind(name)
    .execute(pool)
    .await
    .doing("rotating a token")?;
    if kind == PrincipalKind::Admin && done.rows_affected() > 0 {
        // Sessions started with the old token end with it.
        sqlx::query(
            "UPDATE admin_sessions SET revoked_at = $1 WHERE admin_name = $2 AND revoked_at IS NULL",
        )
        .bind(chrono::Utc::now().trunc_subsecs(0))
        .bind(name)
        .execute(pool)
        .await
        .doing("ending the sessions of the old token")?;
    }
    Ok(done.rows_affected() > 0)
}

pub(in crate::store) async fn revoke(
    pool: &Pool<Db>,
    kind: PrincipalKind,
    name: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    let table = table(kind);
    let done = sqlx::query(&format!(
        "UPDATE {table} SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL"
    ))
    .bind(now.trunc_subsecs(0))
    .bind(name)
    .execute(pool)
    .await
    .doing("revoking a token")?;
    Ok(done.rows_affected() > 0)
}

pub(in crate::store) async fn by_token(
    pool: &Pool<Db>,
    kind: PrincipalKind,
    token_hash: &str,
) -> Result<Option<String>> {
    let table = table(kind);
    sqlx::query_scalar(&format!(
        "SELECT name FROM {table} WHERE token_hash = $1 AND revoked_at IS NULL"
    ))
    .bind(token_hash)
    .fetch_optional(pool)
    .await
    .doing("checking a token")
}

pub(in crate::store) async fn list(pool: &Pool<Db>, kind: PrincipalKind) -> Result<Vec<Principal>> {
    let table = table(kind);
    sqlx::query_as(&format!(
        "SELECT name, created_at, revoked_at FROM {table} ORDER BY name"
    ))
    .fetch_all(pool)
    .await
    .doing("listing tokens")
}
