//! The outbox worker: sends the emails that applied runs queued, after their commit.
//!
//! An applied run writes its emails as outbox rows in the same transaction as its changes, so
//! a run that rolls back queues nothing and a run that commits loses nothing. The worker claims
//! due rows a hundred at a time (each claim is a lease, so a crashed worker's rows come back, and
//! a claim is renewed before it can run out under mails still waiting), and handles them in
//! groups: the group's activation tokens in one transaction, its mails rendered and sent a few
//! at once (SMTP over a pool of connections), then the sent ones marked in one statement, and
//! each failure recorded with its error. A transient failure (a 4xx answer, a lost connection,
//! a file that could not be written) is retried later with backoff; a permanent one (a 5xx
//! answer, a message that cannot be built) is not tried again, and the account and the run's
//! digest show why. One mail can fail only itself: an error or a panic while it is rendered or
//! sent is recorded on its row, and the worker goes on. A worker that dies between sending a
//! group and marking it sent leaves those mails to be sent again when its lease ends: mail is
//! delivered at least once, never lost.
//!
//! Activation tokens are made here, at send time, so the token itself is never stored: only
//! its SHA-256 is, and issuing a new one revokes the earlier ones of that person.

use std::collections::{HashSet, VecDeque};
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use chrono::{DateTime, SubsecRound as _, Utc};
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt as _, StreamExt as _};
use lettre::message::Mailbox;

use super::{Locale, MailContent, MailError, MailKind, Mailer, digest, render};
use crate::store::{DIGEST_KIND, OutboxMail, Store, StoreError};

/// How long a claimed mail is reserved for the worker that claimed it. Before each group the
/// worker renews its claim on the mails still waiting to a whole lease, and it starts sending
/// a mail only while the send is sure to end before the claim does, so another worker never
/// takes over a mail that is being sent.
const LEASE: Duration = Duration::from_secs(300);
/// The longest one mail may take to render and send (lettre's own limit is 30 seconds per
/// SMTP command); a slower one fails for now and is tried again later.
const SEND_TIMEOUT: Duration = Duration::from_secs(120);
/// What is kept free at the end of a lease beside [`SEND_TIMEOUT`]: the time to record what
/// was sent.
const LEASE_MARGIN: Duration = Duration::from_secs(30);
/// How many mails are handled together: their activation tokens issued in one transaction,
/// sent, then marked sent in one statement. A stopping worker finishes the group in hand.
const GROUP: usize = 100;
/// How many mails one claim takes: a group, so that workers of several replicas share a large
/// outbox group by group.
const CLAIM: i64 = GROUP as i64;
/// How many mails of a group are in flight at once (SMTP sends them over the pool's
/// connections).
const IN_FLIGHT: usize = 8;

/// What the worker needs besides the store.
pub struct OutboxWorker<'a> {
    pub store: &'a Store,
    pub mailer: &'a Mailer,
    /// The sender of mail for an organisation without a sender of its own.
    pub from: Mailbox,
    /// Each organisation's own sender (`organisations.SLUG.mail_from`), by key.
    pub senders: std::collections::HashMap<String, Mailbox>,
    /// The activation link with `{token}` where the token goes.
    pub activation_url: String,
    pub token_valid_days: u32,
    /// Where the pages are reached (`server.public_url`), for the link in a digest.
    pub public_url: Option<String>,
    /// Told after each group of mails how many went out and how many failed.
    pub progress: crate::domain::Progress,
}

/// What one pass over the outbox did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Drained {
    pub sent: usize,
    /// Mails that failed for a passing reason; they stay queued and are retried later.
    pub failed: usize,
    /// Mails refused for good; they are not tried again.
    pub undeliverable: usize,
    /// Activation emails that no longer applied when their turn came.
    pub cancelled: usize,
}

impl OutboxWorker<'_> {
    /// Who a mail is sent from: its organisation's sender, else the global one.
    fn sender(&self, mail: &OutboxMail) -> &Mailbox {
        self.senders
            .get(&mail.organisation_slug)
            .unwrap_or(&self.from)
    }

    /// Sends every mail that is due now, once each; mails that fail are left for a later pass.
    pub async fn drain(&self) -> Result<Drained, StoreError> {
        self.drain_while(|| true).await
    }

    /// [`OutboxWorker::drain`], asking `keep_going` before each group of mails: a stopping
    /// daemon finishes the group in hand (at most [`GROUP`] mails) and hands the rest of its
    /// claim back, due now.
    pub async fn drain_while(&self, keep_going: impl Fn() -> bool) -> Result<Drained, StoreError> {
        let mut drained = Drained::default();
        let lease = chrono::Duration::from_std(LEASE).unwrap_or(chrono::Duration::minutes(5));
        loop {
            if !keep_going() {
                return Ok(drained);
            }
            let claimed = self.store.claim_due_mail(Utc::now(), LEASE, CLAIM).await?;
            let Some(mut claimed_until) = claimed.first().map(|m| m.claimed_until) else {
                return Ok(drained);
            };
            let mut waiting: VecDeque<&OutboxMail> = claimed.iter().collect();
            let mut fresh = true;
            while !waiting.is_empty() {
                if !keep_going() {
                    // Hand the rest of the claim back, so another worker need not wait for
                    // the lease to end.
                    let rest: Vec<i64> = waiting.iter().map(|m| m.id).collect();
                    self.store
                        .release_mail(&rest, claimed_until, Utc::now())
                        .await?;
                    return Ok(drained);
                }
                if !fresh {
                    let until = (Utc::now() + lease).trunc_subsecs(6);
                    let ids: Vec<i64> = waiting.iter().map(|m| m.id).collect();
                    let renewed: HashSet<i64> = self
                        .store
                        .renew_claims(&ids, claimed_until, until)
                        .await?
                        .into_iter()
                        .collect();
                    waiting.retain(|mail| {
                        let mine = renewed.contains(&mail.id);
                        if !mine {
                            tracing::info!(mail_id = mail.id, kind = %mail.kind, "Mail skipped: another worker claimed it after this claim ran out");
                        }
                        mine
                    });
                    claimed_until = until;
                }
                fresh = false;
                let group: Vec<&OutboxMail> = waiting.drain(..GROUP.min(waiting.len())).collect();
                let unsent = self
                    .send_group(&group, send_deadline(claimed_until), &mut drained)
                    .await?;
                // Not started in time: first in line after the claim is renewed.
                for mail in unsent.into_iter().rev() {
                    waiting.push_front(mail);
                }
            }
        }
    }

    /// Sends a group of claimed mails and records each outcome: the group's activation tokens
    /// are issued in one transaction, up to [`IN_FLIGHT`] mails to people are sent at once and
    /// the sent ones marked in one statement, then the group's digests are sent in turn. No
    /// send starts after `deadline`; the mails it leaves are returned. The error is the
    /// store's; a mail's own failure is recorded on its row: a transient one (a 4xx answer, a
    /// lost connection, a send over [`SEND_TIMEOUT`]) is retried with backoff, a permanent one
    /// (a 5xx answer, a message that cannot be built) is not tried again. Nothing one mail
    /// holds can end the worker: a panic while delivering it fails that mail alone.
    async fn send_group<'m>(
        &self,
        group: &[&'m OutboxMail],
        deadline: Instant,
        drained: &mut Drained,
    ) -> Result<Vec<&'m OutboxMail>, StoreError> {
        // People's mail first, a few at once; then the digests one at a time in queue order,
        // so a digest knows which of its run's mails could not be delivered.
        let (digests, mails): (Vec<&OutboxMail>, Vec<&OutboxMail>) =
            group.iter().partition(|mail| mail.kind == DIGEST_KIND);
        let now = Utc::now();
        let mut ready: Vec<(&OutboxMail, Option<String>)> = Vec::with_capacity(mails.len());
        let mut failed: Vec<(&OutboxMail, Failure)> = Vec::new();
        let mut tokens: Vec<(&OutboxMail, String)> = Vec::new();
        for mail in mails {
            if MailKind::parse(&mail.kind) != Some(MailKind::Activation) {
                ready.push((mail, None));
                continue;
            }
            match new_token() {
                Ok(token) => tokens.push((mail, token)),
                Err(e) => failed.push((mail, Failure::transient(e.to_string()))),
            }
        }
        self.issue_tokens(tokens, now, &mut ready, &mut failed, drained)
            .await?;
        let mut unsent = Vec::new();
        let mut waiting = ready.into_iter();
        let mut sending = FuturesUnordered::new();
        let mut delivered = Vec::with_capacity(waiting.len());
        loop {
            while sending.len() < IN_FLIGHT {
                let Some((mail, token)) = waiting.next() else {
                    break;
                };
                if Instant::now() < deadline {
                    sending.push(self.deliver_guarded(mail, token, now));
                } else {
                    // Its token is issued again, and this one revoked, when it is sent.
                    unsent.push(mail);
                }
            }
            match sending.next().await {
                Some(outcome) => delivered.push(outcome),
                None => break,
            }
        }
        self.record(delivered, failed, drained).await?;
        for digest in digests {
            if Instant::now() < deadline {
                let delivered = self.deliver_guarded(digest, None, Utc::now()).await;
                self.record(vec![delivered], Vec::new(), drained).await?;
            } else {
                unsent.push(digest);
            }
        }
        Ok(unsent)
    }

    /// Records what became of delivered mails, and of mails that failed before delivery: the
    /// sent ones marked in one statement, each failure on its row.
    async fn record(
        &self,
        delivered: Vec<(&OutboxMail, Result<Option<String>, Failure>)>,
        mut failed: Vec<(&OutboxMail, Failure)>,
        drained: &mut Drained,
    ) -> Result<(), StoreError> {
        let mut sent: Vec<i64> = Vec::with_capacity(delivered.len());
        for (mail, outcome) in delivered {
            match outcome {
                Ok(None) => {
                    tracing::info!(mail_id = mail.id, kind = %mail.kind, "Mail sent");
                    sent.push(mail.id);
                }
                Ok(Some(reason)) => {
                    tracing::info!(mail_id = mail.id, kind = %mail.kind, %reason, "Mail cancelled");
                    drained.cancelled += 1;
                }
                Err(failure) => failed.push((mail, failure)),
            }
        }
        self.store.mark_mails_sent(&sent, Utc::now()).await?;
        drained.sent += sent.len();
        for (mail, failure) in failed {
            self.record_failure(mail, failure, drained).await?;
        }
        self.progress.report(crate::domain::Step::Mailing {
            sent: drained.sent,
            failed: drained.failed + drained.undeliverable,
        });
        Ok(())
    }

    /// Issues the activation tokens of a group in one transaction: each mail that still
    /// applies is ready to send with its token; one that no longer does was cancelled.
    async fn issue_tokens<'m>(
        &self,
        tokens: Vec<(&'m OutboxMail, String)>,
        now: DateTime<Utc>,
        ready: &mut Vec<(&'m OutboxMail, Option<String>)>,
        failed: &mut Vec<(&'m OutboxMail, Failure)>,
        drained: &mut Drained,
    ) -> Result<(), StoreError> {
        if tokens.is_empty() {
            return Ok(());
        }
        let Some(expires_at) = chrono::Duration::try_days(self.token_valid_days.into())
            .and_then(|valid| now.checked_add_signed(valid))
        else {
            for (mail, _) in tokens {
                failed.push((
                    mail,
                    Failure::permanent(format!(
                        "mail.token_valid_days = {} puts the link's expiry past the calendar",
                        self.token_valid_days
                    )),
                ));
            }
            return Ok(());
        };
        let hashes: Vec<String> = tokens.iter().map(|(_, t)| token_hash(t)).collect();
        let batch: Vec<(&OutboxMail, &str)> = tokens
            .iter()
            .zip(&hashes)
            .map(|((mail, _), hash)| (*mail, hash.as_str()))
            .collect();
        match self
            .store
            .issue_activation_tokens(&batch, now, expires_at)
            .await
        {
            Ok(outcomes) => {
                for ((mail, token), outcome) in tokens.into_iter().zip(outcomes) {
                    match outcome {
                        None => ready.push((mail, Some(token))),
                        Some(reason) => {
                            tracing::info!(mail_id = mail.id, kind = %mail.kind, %reason, "Mail cancelled");
                            drained.cancelled += 1;
                        }
                    }
                }
            }
            Err(e) => {
                let message = e.to_string();
                for (mail, _) in tokens {
                    failed.push((mail, Failure::transient(message.clone())));
                }
            }
        }
        Ok(())
    }

    /// Records a mail that was not sent: refused for good, or queued again with backoff.
    async fn record_failure(
        &self,
        mail: &OutboxMail,
        failure: Failure,
        drained: &mut Drained,
    ) -> Result<(), StoreError> {
        if failure.permanent {
            self.store
                .mark_mail_undeliverable(mail.id, &failure.message, Utc::now())
                .await?;
            tracing::warn!(
                mail_id = mail.id,
                kind = %mail.kind,
                attempts = mail.attempts + 1,
                error = %failure.message,
                "Mail refused for good; it is not tried again"
            );
            drained.undeliverable += 1;
        } else {
            let retry_at = Utc::now() + retry_delay(mail.attempts + 1);
            self.store
                .mark_mail_failed(mail.id, &failure.message, retry_at)
                .await?;
            tracing::warn!(
                mail_id = mail.id,
                kind = %mail.kind,
                attempts = mail.attempts + 1,
                %retry_at,
                error = %failure.message,
                "Mail not sent; it stays queued and is retried later"
            );
            drained.failed += 1;
        }
        Ok(())
    }

    /// [`OutboxWorker::deliver`], with a panic while delivering made a permanent failure of
    /// this mail alone, and a send over [`SEND_TIMEOUT`] a transient one.
    async fn deliver_guarded<'m>(
        &self,
        mail: &'m OutboxMail,
        token: Option<String>,
        now: DateTime<Utc>,
    ) -> (&'m OutboxMail, Result<Option<String>, Failure>) {
        let guarded = AssertUnwindSafe(self.deliver(mail, token.as_deref(), now)).catch_unwind();
        let outcome = match tokio::time::timeout(SEND_TIMEOUT, guarded).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err(Failure::permanent(
                "delivering the mail panicked; it is not tried again",
            )),
            Err(_) => Err(Failure::transient(format!(
                "sending the mail took longer than {} seconds",
                SEND_TIMEOUT.as_secs()
            ))),
        };
        (mail, outcome)
    }

    /// Renders and sends the mail, an activation email with the link of `token`;
    /// `Ok(Some(reason))` when it no longer applies.
    async fn deliver(
        &self,
        mail: &OutboxMail,
        token: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, Failure> {
        if mail.kind == DIGEST_KIND {
            return self.deliver_digest(mail, now).await;
        }
        let kind = MailKind::parse(&mail.kind)
            .ok_or_else(|| Failure::permanent(format!("unknown mail kind `{}`", mail.kind)))?;
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
            let token = token.ok_or_else(|| {
                Failure::transient("no activation token was issued for the email")
            })?;
            content.link = Some(self.activation_url.replace("{token}", token));
            content.expires_in_days = Some(self.token_valid_days);
        }
        let message = render(&content, self.sender(mail)).map_err(Failure::mail)?;
        self.mailer
            .send(message)
            .await
            .map(|()| None)
            .map_err(Failure::mail)
    }
}

/// Why a mail did not go out, and whether trying again later may help.
#[derive(Debug)]
struct Failure {
    message: String,
    /// Sending it again would fail the same way: not tried again.
    permanent: bool,
}

impl Failure {
    fn permanent(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            permanent: true,
        }
    }

    fn transient(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            permanent: false,
        }
    }

    /// A mail error: permanent unless [`MailError::is_transient`].
    fn mail(error: MailError) -> Failure {
        Failure {
            permanent: !error.is_transient(),
            message: error.to_string(),
        }
    }

    /// The store failed while the mail was prepared: the mail itself may be fine.
    fn store(error: StoreError) -> Failure {
        Failure::transient(error.to_string())
    }
}

impl OutboxWorker<'_> {
    /// Renders a run's digest from its stored report, and sends it; `Ok(Some(reason))` when
    /// it no longer applies.
    async fn deliver_digest(
        &self,
        mail: &OutboxMail,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, Failure> {
        let run_id = mail
            .run_id
            .ok_or_else(|| Failure::permanent(format!("digest {} names no run", mail.id)))?;
        // A digest gives the run's counts and reasons, never its lines.
        let report = self
            .store
            .run_report_head(run_id, 0)
            .await
            .map_err(Failure::store)?
            .ok_or_else(|| {
                Failure::permanent(format!("the run {run_id} of digest {} is gone", mail.id))
            })?;
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
                .map_err(Failure::store)?;
            return Ok(Some(reason.to_string()));
        }
        // Retried: setting public_url (and restarting) lets the digest go out.
        let public_url = self.public_url.as_deref().ok_or_else(|| {
            Failure::transient(
                "server.public_url is not set, and a digest needs it for the link to the run's page",
            )
        })?;
        let undeliverable = self
            .store
            .undeliverable_mail_of_run(run_id)
            .await
            .map_err(Failure::store)?;
        let content = digest::Digest {
            report: &report,
            locale: Locale::parse(&mail.locale).unwrap_or(Locale::En),
            to: &mail.recipient,
            organisation: &mail.organisation_name,
            time_zone: mail.time_zone.parse().unwrap_or(chrono_tz::UTC),
            link: digest::run_link(public_url, run_id),
            undeliverable: &undeliverable,
        };
        let message = digest::render(&content, self.sender(mail)).map_err(Failure::mail)?;
        self.mailer
            .send(message)
            .await
            .map(|()| None)
            .map_err(Failure::mail)
    }
}

/// The last moment a send may start and still end, with its record, before the claim does.
fn send_deadline(claimed_until: DateTime<Utc>) -> Instant {
    let left = (claimed_until - Utc::now()).to_std().unwrap_or_default();
    Instant::now() + left.saturating_sub(SEND_TIMEOUT + LEASE_MARGIN)
}

/// Exponential backoff for failed mails: 1, 2, 4, … minutes, at most six hours.
pub fn retry_delay(attempts: i32) -> chrono::Duration {
    let minutes = 1i64 << attempts.clamp(1, 10).saturating_sub(1);
    chrono::Duration::minutes(minutes.min(360))
}

/// A new activation token: 256 random bits, URL-safe hex.
pub fn new_token() -> Result<String, aws_lc_rs::error::Unspecified> {
    crate::secret::random_token()
}

/// The form a token is stored in: its SHA-256, hex.
pub fn token_hash(token: &str) -> String {
    crate::secret::sha256_hex(token)
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
