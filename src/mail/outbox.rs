//! The outbox worker: sends the emails that applied runs queued, after their commit.
//!
//! An applied run writes its emails as outbox rows in the same transaction as its changes, so
//! a run that rolls back queues nothing and a run that commits loses nothing. The worker claims
//! due rows (each claim is a lease, so a crashed worker's rows come back), renders and sends
//! them, and marks each one sent, or failed with its error and a later retry time. A mail is
//! never given up: a failing one stays queued with its error for the report and for ops.
//!
//! Activation tokens are made here, at send time, so the token itself is never stored: only
//! its SHA-256 is, and issuing a new one revokes the earlier ones of that person.

use std::time::Duration;

use aws_lc_rs::digest as sha;
use chrono::{DateTime, Utc};
use lettre::message::Mailbox;

use super::{Locale, MailContent, MailKind, Mailer, digest, render};
use crate::store::{DIGEST_KIND, OutboxMail, Store, StoreError};

/// How long a claimed mail is reserved for the worker that claimed it.
const LEASE: Duration = Duration::from_secs(300);
/// How many mails one claim takes. Each mail's claim is renewed just before it is sent, so a
/// slow mail server cannot make a claim run out under the mails still waiting in the batch.
const BATCH: i64 = 10;

/// What the worker needs besides the store.
pub struct OutboxWorker<'a> {
    pub store: &'a Store,
    pub mailer: &'a Mailer,
    pub from: Mailbox,
    /// The activation link with `{token}` where the token goes.
    pub activation_url: String,
    pub token_valid_days: u32,
    /// Where the pages are reached (`server.public_url`), for the link in a digest.
    pub public_url: Option<String>,
}

/// What one pass over the outbox did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Drained {
    pub sent: usize,
    pub failed: usize,
    /// Activation emails that no longer applied when their turn came.
    pub cancelled: usize,
}

impl OutboxWorker<'_> {
    /// Sends every mail that is due now, once each; mails that fail are left for a later pass.
    pub async fn drain(&self) -> Result<Drained, StoreError> {
        self.drain_while(|| true).await
    }

    /// [`OutboxWorker::drain`], asking `keep_going` before each mail: a stopping daemon
    /// finishes the mail in hand and hands the rest of its claim back, due now.
    pub async fn drain_while(&self, keep_going: impl Fn() -> bool) -> Result<Drained, StoreError> {
        let mut drained = Drained::default();
        loop {
            if !keep_going() {
                return Ok(drained);
            }
            let now = Utc::now();
            let batch = self.store.claim_due_mail(now, LEASE, BATCH).await?;
            if batch.is_empty() {
                return Ok(drained);
            }
            for (i, mail) in batch.iter().enumerate() {
                if !keep_going() {
                    // Hand the rest of the claim back, so another worker need not wait for
                    // the lease to end.
                    let rest: Vec<i64> = batch[i..].iter().map(|m| m.id).collect();
                    self.store.release_mail(&rest, Utc::now()).await?;
                    return Ok(drained);
                }
                match self.send_one(mail, Utc::now()).await? {
                    Outcome::Sent => drained.sent += 1,
                    Outcome::Failed => drained.failed += 1,
                    Outcome::Cancelled => drained.cancelled += 1,
                    Outcome::Skipped => {}
                }
            }
        }
    }

    /// Sends one claimed mail and records the outcome. The error is the store's; the mail's
    /// own failure is recorded on its row.
    async fn send_one(&self, mail: &OutboxMail, now: DateTime<Utc>) -> Result<Outcome, StoreError> {
        let lease = chrono::Duration::from_std(LEASE).unwrap_or(chrono::Duration::minutes(5));
        if !self.store.renew_claim(mail, now + lease).await? {
            tracing::info!(mail_id = mail.id, kind = %mail.kind, "Mail skipped: another worker claimed it after this claim ran out");
            return Ok(Outcome::Skipped);
        }
        let outcome = self.deliver(mail, now).await;
        match &outcome {
            Ok(Some(reason)) => {
                tracing::info!(mail_id = mail.id, kind = %mail.kind, %reason, "Mail cancelled");
                return Ok(Outcome::Cancelled);
            }
            Ok(None) => {
                self.store.mark_mail_sent(mail.id, Utc::now()).await?;
                tracing::info!(mail_id = mail.id, kind = %mail.kind, "Mail sent");
            }
            Err(error) => {
                let retry_at = now + retry_delay(mail.attempts + 1);
                self.store
                    .mark_mail_failed(mail.id, error, retry_at)
                    .await?;
                tracing::warn!(
                    mail_id = mail.id,
                    kind = %mail.kind,
                    attempts = mail.attempts + 1,
                    %retry_at,
                    error = %error,
                    "Mail not sent; it stays queued and is retried later"
                );
            }
        }
        Ok(if outcome.is_ok() {
            Outcome::Sent
        } else {
            Outcome::Failed
        })
    }

    /// Renders and sends the mail; `Ok(Some(reason))` when it no longer applies.
    async fn deliver(
        &self,
        mail: &OutboxMail,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, String> {
        if mail.kind == DIGEST_KIND {
            return self.deliver_digest(mail, now).await;
        }
        let kind = MailKind::parse(&mail.kind)
            .ok_or_else(|| format!("unknown mail kind `{}`", mail.kind))?;
        let mut content = MailContent {
            kind,
            locale: Locale::parse(&mail.locale).unwrap_or(Locale::En),
            to: mail.recipient.clone(),
            to_name: mail.recipient_name.clone(),
            organisation: mail.organisation_name.clone(),
            link: None,
            expires_in_days: None,
            old_email: mail.old_email.clone(),
            new_email: mail.new_email.clone(),
        };
        if kind == MailKind::Activation {
            let token = new_token().map_err(|e| e.to_string())?;
            let expires_at = now + chrono::Duration::days(self.token_valid_days.into());
            if let Some(reason) = self
                .store
                .issue_activation_token(mail, &token_hash(&token), now, expires_at)
                .await
                .map_err(|e| e.to_string())?
            {
                return Ok(Some(reason));
            }
            content.link = Some(self.activation_url.replace("{token}", &token));
            content.expires_in_days = Some(self.token_valid_days);
        }
        let message = render(&content, &self.from).map_err(|e| e.to_string())?;
        self.mailer
            .send(message)
            .await
            .map(|()| None)
            .map_err(|e| e.to_string())
    }
}

impl OutboxWorker<'_> {
    /// Renders a run's digest from its stored report, and sends it; `Ok(Some(reason))` when
    /// it no longer applies.
    async fn deliver_digest(
        &self,
        mail: &OutboxMail,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, String> {
        let run_id = mail
            .run_id
            .ok_or_else(|| format!("digest {} names no run", mail.id))?;
        let report = self
            .store
            .run_report(run_id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("the run {run_id} of digest {} is gone", mail.id))?;
        // A held run's digest still waiting (say, the mail server was down) when an admin
        // approved the run: the approval has its own digest, and this one would now say
        // "approved" twice.
        if report.summary.status == crate::domain::RunStatus::Approved
            && report
                .summary
                .finished_at
                .is_some_and(|f| mail.created_at < f)
        {
            let reason = "the held run was approved before its digest went out";
            self.store
                .cancel_mail(mail.id, reason, now)
                .await
                .map_err(|e| e.to_string())?;
            return Ok(Some(reason.to_string()));
        }
        let public_url = self.public_url.as_deref().ok_or(
            "server.public_url is not set, and a digest needs it for the link to the run's page",
        )?;
        let content = digest::Digest {
            report: &report,
            locale: Locale::parse(&mail.locale).unwrap_or(Locale::En),
            to: &mail.recipient,
            organisation: &mail.organisation_name,
            time_zone: mail.time_zone.parse().unwrap_or(chrono_tz::UTC),
            link: digest::run_link(public_url, run_id),
        };
        let message = digest::render(&content, &self.from).map_err(|e| e.to_string())?;
        self.mailer
            .send(message)
            .await
            .map(|()| None)
            .map_err(|e| e.to_string())
    }
}

/// How sending one mail ended.
enum Outcome {
    Sent,
    Failed,
    Cancelled,
    /// No longer this worker's to send.
    Skipped,
}

/// Exponential backoff for failed mails: 1, 2, 4, … minutes, at most six hours.
pub fn retry_delay(attempts: i32) -> chrono::Duration {
    let minutes = 1i64 << attempts.clamp(1, 10).saturating_sub(1);
    chrono::Duration::minutes(minutes.min(360))
}

/// A new activation token: 256 random bits, URL-safe hex.
pub fn new_token() -> Result<String, aws_lc_rs::error::Unspecified> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes)?;
    Ok(hex(&bytes))
}

/// The form a token is stored in: its SHA-256, hex.
pub fn token_hash(token: &str) -> String {
    hex(sha::digest(&sha::SHA256, token.as_bytes()).as_ref())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bits_and_never_repeat() {
        let a = new_token().unwrap();
        let b = new_token().unwrap();
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }

    #[test]
    fn stored_hash_is_not_the_token() {
        let token = new_token().unwrap();
        let hash = token_hash(&token);
        assert_eq!(hash.len(), 64);
        assert_ne!(hash, token);
        assert_eq!(hash, token_hash(&token));
    }

    #[test]
    fn retry_delay_doubles_up_to_six_hours() {
        assert_eq!(retry_delay(1), chrono::Duration::minutes(1));
        assert_eq!(retry_delay(2), chrono::Duration::minutes(2));
        assert_eq!(retry_delay(5), chrono::Duration::minutes(16));
        assert_eq!(retry_delay(40), chrono::Duration::minutes(360));
    }
}
