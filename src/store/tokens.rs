//! Activation tokens: issued by the outbox worker when it sends an activation email (only the
//! SHA-256 is stored), and used once to activate an account.

use chrono::{DateTime, Utc};

use super::{OutboxMail, Result, Store};

/// What a token is worth.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenState {
    Valid { account_id: i64, email: String },
    Used,
    Revoked,
    Expired,
    Unknown,
}

/// Activation tokens.
impl Store {
    /// Issues an activation token for an outbox mail: earlier unused tokens of the account in
    /// that organisation are revoked, and only the token's hash is stored. When the mail no
    /// longer applies (the person left, activated, or has another address) it is cancelled
    /// instead, and the reason is returned.
    pub async fn issue_activation_token(
        &self,
        mail: &OutboxMail,
        token_hash: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<Option<String>> {
        let outcome = self
            .issue_activation_tokens(&[(mail, token_hash)], now, expires_at)
            .await?;
        Ok(outcome.into_iter().next().flatten())
    }

    /// [`Store::issue_activation_token`] for a batch of mails, in one transaction: for each
    /// (mail, token hash), in order, `None` when its token was stored or why the mail was
    /// cancelled. Of two activation mails in one batch to the same person in one
    /// organisation, the later is sent and the earlier cancelled.
    pub async fn issue_activation_tokens(
        &self,
        batch: &[(&OutboxMail, &str)],
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<Vec<Option<String>>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        dispatch!(
            self,
            tokens::issue_activation_tokens(batch, now, expires_at)
        )
    }

    /// Token lookup for tests and the activation endpoint: the state of a token by its hash.
    pub async fn token_state(&self, token_hash: &str, now: DateTime<Utc>) -> Result<TokenState> {
        dispatch!(self, tokens::token_state(token_hash, now))
    }

    /// Marks an account activated (and its invited memberships active) with a valid token.
    pub async fn activate(&self, token_hash: &str, now: DateTime<Utc>) -> Result<TokenState> {
        dispatch!(self, tokens::activate(token_hash, now))
    }
}
