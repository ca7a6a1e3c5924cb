//! The digest: an email to an organisation's admins after a run that changed, held or failed
//! something, with the run's counts per kind, why it was held or failed, and a link to its page.
//!
//! A digest is queued with the end of its run (outbox kind [`crate::store::DIGEST_KIND`]), so
//! it exists exactly when the run's outcome was committed, and it is rendered when it is sent,
//! from the run's stored report, in the organisation's language and time zone. [`is_due`]
//! decides which runs get one: a run that applied changes always does; a held or failed run
//! only when the connector's previous run ended otherwise, so a connector that stays held for
//! days (every later run is held for the same reason) mails its admins once, not every tick.
//!
//! The wording is one askama template per language (`templates/digest.<language>.txt`, one
//! `when` per [`Phrase`]); `templates/digest.txt` and `templates/digest.html` lay it out as the
//! plain-text and the HTML body, the HTML one escaping every phrase and value.

use askama::Template;
use chrono_tz::Tz;
use lettre::Message;
use lettre::message::{Mailbox, MultiPart};

use super::layout::check_link;
use super::{Locale, MailError};
use crate::domain::{RunReport, RunStatus, Trigger};
use crate::planner::ChangeKind;

/// Whether a run that ended as `status`, with `actionable` changes and the error codes
/// `codes`, gets a digest, given how the connector's previous applied run ended (its status
/// and error codes).
pub fn is_due(
    status: RunStatus,
    actionable: usize,
    codes: &[String],
    previous: Option<&(RunStatus, Vec<String>)>,
) -> bool {
    match status {
        RunStatus::Succeeded | RunStatus::Approved => actionable > 0,
        RunStatus::Held | RunStatus::Failed => {
            previous.is_none_or(|(was, was_codes)| *was != status || was_codes != codes)
        }
        RunStatus::Running => false,
    }
}

/// Everything a digest says.
#[derive(Clone, Debug)]
pub struct Digest<'a> {
    pub report: &'a RunReport,
    pub locale: Locale,
    /// The admin's address.
    pub to: &'a str,
    /// The organisation's display name.
    pub organisation: &'a str,
    /// Times are shown in the organisation's time zone.
    pub time_zone: Tz,
    /// The run's page: `{server.public_url}/runs/{id}`.
    pub link: String,
    /// The run's emails that were refused for good: (recipient, error).
    pub undeliverable: &'a [(String, String)],
}

/// The link to a run's page under the pages' public address.
pub fn run_link(public_url: &str, run_id: i64) -> String {
    format!("{}/runs/{run_id}", public_url.trim_end_matches('/'))
}

/// Every phrase of the digest; each language's template writes each one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phrase {
    SubjectApplied,
    SubjectHeld,
    SubjectFailed,
    IntroApplied,
    IntroApproved,
    IntroHeld,
    IntroFailed,
    HeldWhy,
    HeldNext,
    FailedWhy,
    FailedNext,
    NoLines,
    Button,
    LinkFallback,
    Undeliverable,
    Footer,
    TriggerSchedule,
    TriggerCommand,
    TriggerApi,
    /// The label of a change kind in the counts.
    Kind(ChangeKind),
}

/// The values a phrase may name, as text.
struct Words<'a> {
    organisation: &'a str,
    connector: &'a str,
    run: i64,
    /// What started the run, itself a phrase.
    trigger: String,
    started: String,
    count: i64,
}

#[derive(Template)]
#[template(path = "digest.en.txt", config = "src/mail/askama.toml")]
struct English<'a> {
    phrase: Phrase,
    v: &'a Words<'a>,
}

#[derive(Template)]
#[template(path = "digest.nl.txt", config = "src/mail/askama.toml")]
struct Dutch<'a> {
    phrase: Phrase,
    v: &'a Words<'a>,
}

/// One phrase in `locale`, with its values, as plain text.
fn say(locale: Locale, phrase: Phrase, v: &Words<'_>) -> Result<String, askama::Error> {
    match locale {
        Locale::En => English { phrase, v }.render(),
        Locale::Nl => Dutch { phrase, v }.render(),
    }
}

/// The digest as a multipart/alternative message (plain text and HTML saying the same).
pub fn render(digest: &Digest<'_>, from: &Mailbox) -> Result<Message, MailError> {
    let to = super::address(digest.to)?;
    check_link(&digest.link)?;
    let fail = |err: &dyn std::fmt::Display| MailError::Digest {
        run: digest.report.summary.id,
        reason: err.to_string(),
    };
    let Composed {
        subject,
        text,
        html,
    } = compose(digest).map_err(|err| fail(&err))?;
    Message::builder()
        .from(from.clone())
        .to(Mailbox::new(None, to))
        .subject(crate::domain::single_line(&subject))
        .message_id(None)
        .header(super::AutoSubmitted)
        .header(super::ContentLanguage(digest.locale))
        .multipart(MultiPart::alternative_plain_html(text, html))
        .map_err(|err| fail(&err))
}

/// The lines that list a run's undeliverable emails: at most [`MAX_UNDELIVERABLE`], then how
/// many more, each error cut to one short line.
fn undeliverable_lines(mails: &[(String, String)]) -> Vec<String> {
    let mut lines: Vec<String> = mails
        .iter()
        .take(MAX_UNDELIVERABLE)
        .map(|(to, error)| {
            let error: String = crate::domain::single_line(error)
                .chars()
                .take(200)
                .collect();
            format!("{to}: {error}")
        })
        .collect();
    if mails.len() > MAX_UNDELIVERABLE {
        lines.push(format!("… +{}", mails.len() - MAX_UNDELIVERABLE));
    }
    lines
}

/// How many undeliverable emails a digest names one by one.
const MAX_UNDELIVERABLE: usize = 20;

/// A digest's subject and its two bodies.
struct Composed {
    subject: String,
    text: String,
    html: String,
}

fn compose(digest: &Digest<'_>) -> Result<Composed, askama::Error> {
    let s = &digest.report.summary;
    let locale = digest.locale;
    let (subject, intro, why, next) = match s.status {
        RunStatus::Held => (
            Phrase::SubjectHeld,
            Phrase::IntroHeld,
            Some(Phrase::HeldWhy),
            Some(Phrase::HeldNext),
        ),
        RunStatus::Failed => (
            Phrase::SubjectFailed,
            Phrase::IntroFailed,
            Some(Phrase::FailedWhy),
            Some(Phrase::FailedNext),
        ),
        RunStatus::Approved => (Phrase::SubjectApplied, Phrase::IntroApproved, None, None),
        _ => (Phrase::SubjectApplied, Phrase::IntroApplied, None, None),
    };
    let trigger = match s.trigger {
        Trigger::Schedule => Phrase::TriggerSchedule,
        Trigger::Command => Phrase::TriggerCommand,
        Trigger::Api => Phrase::TriggerApi,
    };
    let mut words = Words {
        organisation: digest.organisation,
        connector: &s.connector,
        run: s.id,
        trigger: String::new(),
        started: s
            .started_at
            .with_timezone(&digest.time_zone)
            .format("%Y-%m-%d %H:%M %Z")
            .to_string(),
        count: crate::report::actionable_count(s),
    };
    words.trigger = say(locale, trigger, &words)?;
    let say = |phrase: Phrase| say(locale, phrase, &words);

    // A failed run applied nothing and its planned changes (if any) were not stored.
    let counts = if s.status == RunStatus::Failed {
        None
    } else {
        let mut lines = Vec::new();
        for kind in ChangeKind::ALL {
            if let Some(n) = s.counts.get(kind.as_str()).filter(|n| **n > 0) {
                lines.push((say(Phrase::Kind(kind))?, *n));
            }
        }
        Some(lines)
    };
    let mut lists = Vec::new();
    if let Some(why) = why {
        let reasons = digest
            .report
            .errors
            .iter()
            .map(|e| format!("{}: {}", e.code, e.message))
            .collect();
        lists.push((say(why)?, reasons));
    }
    let undeliverable = undeliverable_lines(digest.undeliverable);
    if !undeliverable.is_empty() {
        lists.push((say(Phrase::Undeliverable)?, undeliverable));
    }
    let subject = say(subject)?;
    let body = Body {
        intro: say(intro)?,
        counts,
        no_lines: say(Phrase::NoLines)?,
        lists,
        next: next.map(say).transpose()?,
        button: say(Phrase::Button)?,
        link_fallback: say(Phrase::LinkFallback)?,
        link: &digest.link,
        footer: say(Phrase::Footer)?,
    };
    Ok(Composed {
        text: TextBody { body: &body }.render()?,
        html: HtmlBody {
            lang: locale.as_str(),
            title: &subject,
            footer: &body.footer,
            body: &body,
        }
        .render()?,
        subject,
    })
}

/// What a digest says, written out in its language, before it is laid out as text or HTML.
struct Body<'a> {
    intro: String,
    /// The counts per kind (label and number), except for a failed run (it applied nothing
    /// and its planned changes, if any, were not stored).
    counts: Option<Vec<(String, i64)>>,
    no_lines: String,
    /// Headed lists: why the run was held or failed, with each reason; the undeliverable
    /// emails.
    lists: Vec<(String, Vec<String>)>,
    next: Option<String>,
    button: String,
    link_fallback: String,
    link: &'a str,
    footer: String,
}

#[derive(Template)]
#[template(path = "digest.txt", config = "src/mail/askama.toml")]
struct TextBody<'a> {
    body: &'a Body<'a>,
}

#[derive(Template)]
#[template(path = "digest.html", config = "src/mail/askama.toml")]
struct HtmlBody<'a> {
    lang: &'a str,
    title: &'a str,
    footer: &'a str,
    body: &'a Body<'a>,
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::domain::{RunError, RunMode, RunSummary};

    fn codes(list: &[&str]) -> Vec<String> {
        list.iter().map(|c| c.to_string()).collect()
    }

    #[test]
    fn an_applied_run_gets_a_digest_only_when_it_changed_something() {
        assert!(is_due(RunStatus::Succeeded, 3, &[], None));
        assert!(is_due(RunStatus::Approved, 1, &[], None));
        assert!(!is_due(RunStatus::Succeeded, 0, &[], None));
        assert!(!is_due(RunStatus::Running, 5, &[], None));
    }

    #[test]
    fn a_held_run_gets_a_digest_when_the_previous_run_was_not_held_for_the_same_reason() {
        let held = codes(&["HR201"]);
        assert!(is_due(RunStatus::Held, 0, &held, None));
        assert!(is_due(
            RunStatus::Held,
            0,
            &held,
            Some(&(RunStatus::Succeeded, vec![]))
        ));
        assert!(is_due(
            RunStatus::Held,
            0,
            &held,
            Some(&(RunStatus::Held, codes(&["HR202"])))
        ));
        assert!(!is_due(
            RunStatus::Held,
            0,
            &held,
            Some(&(RunStatus::Held, held.clone()))
        ));
    }

    #[test]
    fn a_failed_run_gets_a_digest_when_the_failure_is_new() {
        let failed = codes(&["HR102"]);
        assert!(is_due(
            RunStatus::Failed,
            0,
            &failed,
            Some(&(RunStatus::Succeeded, vec![]))
        ));
        assert!(is_due(
            RunStatus::Failed,
            0,
            &failed,
            Some(&(RunStatus::Failed, codes(&["HR103"])))
        ));
        assert!(!is_due(
            RunStatus::Failed,
            0,
            &failed,
            Some(&(RunStatus::Failed, failed.clone()))
        ));
    }

    fn report(status: RunStatus, counts: &[(&str, i64)], errors: &[(&str, &str)]) -> RunReport {
        RunReport {
            summary: RunSummary {
                id: 42,
                organisation: "acme".to_string(),
                connector: "personio".to_string(),
                trigger: Trigger::Schedule,
                mode: RunMode::Apply,
                status,
                as_of: Utc.with_ymd_and_hms(2026, 11, 24, 6, 0, 0).unwrap(),
                started_at: Utc.with_ymd_and_hms(2026, 11, 24, 6, 0, 0).unwrap(),
                finished_at: None,
                records_fetched: 120,
                fetch: None,
                scheduled_for: None,
                counts: counts
                    .iter()
                    .map(|(k, n)| (k.to_string(), *n))
                    .collect::<BTreeMap<_, _>>(),
            },
            changes: Vec::new(),
            errors: errors
                .iter()
                .map(|(code, message)| RunError {
                    code: code.to_string(),
                    message: message.to_string(),
                })
                .collect(),
        }
    }

    fn digest(report: &RunReport, locale: Locale) -> Digest<'_> {
        Digest {
            report,
            locale,
            to: "it@acme.example",
            organisation: "Acme & Co",
            time_zone: chrono_tz::Europe::Amsterdam,
            link: run_link("https://hrsync.acme.example/", report.summary.id),
            undeliverable: &[],
        }
    }

    /// The subject, and the plain text and HTML bodies joined.
    fn rendered(report: &RunReport, locale: Locale) -> (String, String) {
        let composed = compose(&digest(report, locale)).unwrap();
        (
            composed.subject,
            format!("{}\n{}", composed.text, composed.html),
        )
    }

    #[test]
    fn applied_digest_counts_the_changes_and_links_to_the_run() {
        // Arrange
        let report = report(
            RunStatus::Succeeded,
            &[("invite", 3), ("deactivate", 1), ("quarantine", 2)],
            &[],
        );

        // Act
        let (subject, raw) = rendered(&report, Locale::En);

        // Assert
        assert_eq!(subject, "Acme & Co: run 42 of personio applied 4 changes");
        assert!(raw.contains("Invitations"), "{raw}");
        assert!(raw.contains("Records quarantined"), "{raw}");
        assert!(raw.contains("https://hrsync.acme.example/runs/42"), "{raw}");
        assert!(raw.contains("started 2026-11-24 07:00 CET"), "{raw}");
        assert!(
            raw.contains("Acme &amp; Co"),
            "the HTML part escapes: {raw}"
        );
    }

    #[test]
    fn held_digest_in_dutch_says_why_and_escapes_the_reason() {
        // Arrange
        let report = report(
            RunStatus::Held,
            &[("deactivate", 40)],
            &[("HR201", "40 deactivations <over> the limit of 10")],
        );

        // Act
        let (_, raw) = rendered(&report, Locale::Nl);

        // Assert
        assert!(raw.contains("Waarom de run is tegengehouden:"), "{raw}");
        assert!(
            raw.contains("HR201: 40 deactivations <over> the limit"),
            "{raw}"
        );
        assert!(raw.contains("&lt;over&gt;"), "{raw}");
        assert!(raw.contains("Gedeactiveerd"), "{raw}");
        assert!(raw.contains("<html lang=\"nl\">"), "{raw}");
    }

    #[test]
    fn failed_digest_gives_the_error_and_no_counts() {
        let report = report(
            RunStatus::Failed,
            &[],
            &[("HR102", "the HR system answered 503")],
        );

        let (subject, raw) = rendered(&report, Locale::En);

        assert_eq!(subject, "Acme & Co: run 42 of personio failed");
        assert!(raw.contains("HR102: the HR system answered 503"), "{raw}");
        assert!(!raw.contains("No changes."), "{raw}");
    }

    #[test]
    fn a_digest_renders_as_a_message_to_the_admin() {
        let report = report(RunStatus::Succeeded, &[("invite", 1)], &[]);
        let from: Mailbox = "hrsync <hrsync@acme.example>".parse().unwrap();

        let message = render(&digest(&report, Locale::En), &from).unwrap();

        let raw = String::from_utf8(message.formatted()).unwrap();
        assert!(raw.contains("To: it@acme.example"), "{raw}");
        assert!(raw.contains("Auto-Submitted: auto-generated"), "{raw}");
        assert!(raw.contains("multipart/alternative"), "{raw}");
    }

    #[test]
    fn a_digest_with_a_link_that_is_no_http_url_is_refused() {
        let report = report(RunStatus::Succeeded, &[("invite", 1)], &[]);
        let from: Mailbox = "hrsync <hrsync@acme.example>".parse().unwrap();
        let mut bad = digest(&report, Locale::En);
        bad.link = "javascript:alert(1)".to_string();

        assert!(matches!(
            render(&bad, &from),
            Err(MailError::InvalidLink { .. })
        ));
    }
}
