//! The outbox: emails queued in the transaction that decided them, sent after commit by the
//! worker in `mail::outbox`, each claimed with a lease so that concurrent workers do not send
//! one twice.

use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};

use super::{Result, Store};

/// The outbox kind of the admins' digest of a run (`mail_outbox.kind`).
pub const DIGEST_KIND: &str = "digest";

/// An email waiting in the outbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxMail {
    pub id: i64,
    pub organisation_id: i64,
    pub organisation_name: String,
    /// The organisation's key, which picks its sender (`mail_from`).
    pub organisation_slug: String,
    pub locale: String,
    /// The organisation's IANA time zone, for times a mail shows.
    pub time_zone: String,
    pub account_id: Option<i64>,
    /// The run that queued the mail (none for a resend).
    pub run_id: Option<i64>,
    pub kind: String,
    pub recipient: String,
    pub recipient_name: Option<String>,
    pub old_email: Option<String>,
    pub new_email: Option<String>,
    pub attempts: i32,
    /// Until when this worker's claim reserves the mail; also the claim's mark, so a worker
    /// can tell whether the mail is still its own ([`Store::renew_claim`]).
    pub claimed_until: DateTime<Utc>,
    /// When the mail was queued.
    pub created_at: DateTime<Utc>,
}

/// The outbox at a glance.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutboxStats {
    pub pending: i64,
    pub failing: i64,
    pub sent: i64,
    /// Mails refused for good (not tried again).
    pub undeliverable: i64,
    /// When the oldest email still waiting was queued.
    pub oldest_pending: Option<DateTime<Utc>>,
}

/// The outbox.
impl Store {
    /// Emails that are due, oldest first, claimed so that no other worker sends them while
    /// this one is busy (`FOR UPDATE SKIP LOCKED` on PostgreSQL).
    pub async fn claim_due_mail(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        limit: i64,
    ) -> Result<Vec<OutboxMail>> {
        dispatch!(self, outbox::claim_due_mail(now, lease, limit))
    }

    /// Extends this worker's claim on a mail to `until`, just before sending it: false when the
    /// claim ran out and another worker has claimed the mail since (or it was sent), so it
    /// must not be sent here.
    pub async fn renew_claim(&self, mail: &OutboxMail, until: DateTime<Utc>) -> Result<bool> {
        let renewed = self
            .renew_claims(&[mail.id], mail.claimed_until, until)
            .await?;
        Ok(!renewed.is_empty())
    }

    /// [`Store::renew_claim`] for mails claimed together (so with one `claimed_until`), in one
    /// statement per 500: the ids whose claim was renewed; the others are no longer this
    /// worker's to send.
    pub async fn renew_claims(
        &self,
        ids: &[i64],
        claimed_until: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<i64>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let until = until.trunc_subsecs(6);
        dispatch!(self, outbox::renew_claims(ids, claimed_until, until))
    }

    /// Cancels a queued email that no longer applies; `reason` is kept as its last error.
    pub async fn cancel_mail(&self, id: i64, reason: &str, now: DateTime<Utc>) -> Result<()> {
        dispatch!(self, outbox::cancel_mail(id, reason, now))
    }

    /// Hands emails this worker claimed (until `claimed_until`) back unsent: due again at
    /// `now`, for any worker. One another worker has claimed since is left alone.
    pub async fn release_mail(
        &self,
        ids: &[i64],
        claimed_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        dispatch!(self, outbox::release_mail(ids, claimed_until, now))
    }

    pub async fn mark_mail_sent(&self, id: i64, now: DateTime<Utc>) -> Result<()> {
        self.mark_mails_sent(&[id], now).await
    }

    /// Marks mails sent, in one statement per 500.
    pub async fn mark_mails_sent(&self, ids: &[i64], now: DateTime<Utc>) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        dispatch!(self, outbox::mark_mails_sent(ids, now))
    }

    pub async fn mark_mail_failed(
        &self,
        id: i64,
        error: &str,
        retry_at: DateTime<Utc>,
    ) -> Result<()> {
        dispatch!(self, outbox::mark_mail_failed(id, error, retry_at))
    }

    /// Marks a mail failed for good (the server refused it with a 5xx answer, or it cannot be
    /// built): it is not tried again, and the account and the run's digest show the reason.
    pub async fn mark_mail_undeliverable(
        &self,
        id: i64,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        dispatch!(self, outbox::mark_mail_undeliverable(id, error, now))
    }

    /// The mails a run queued that were refused for good: (recipient, error), in queue order.
    pub async fn undeliverable_mail_of_run(&self, run_id: i64) -> Result<Vec<(String, String)>> {
        dispatch!(self, outbox::undeliverable_mail_of_run(run_id))
    }

    pub async fn outbox_stats(&self) -> Result<OutboxStats> {
        dispatch!(self, outbox::outbox_stats())
    }

    /// Queues a new activation email for the account with this email in the organisation.
    /// The earlier link stops working when the new one is issued.
    pub async fn queue_activation_resend(
        &self,
        organisation_slug: &str,
        email_key: &str,
        now: DateTime<Utc>,
    ) -> Result<i64> {
        dispatch!(
            self,
            outbox::queue_activation_resend(organisation_slug, email_key, now)
        )
    }
}
