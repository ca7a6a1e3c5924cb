//! The digest: an email to an organisation's admins after a run that changed, held or failed
//! something, with the run's counts per kind, why it was held or failed, and a link to its page.
//!
//! A digest is queued with the end of its run (outbox kind [`crate::store::DIGEST_KIND`]), so
//! it exists exactly when the run's outcome was committed, and it is rendered when it is sent,
//! from the run's stored report, in the organisation's language and time zone. [`is_due`]
//! decides which runs get one: a run that applied changes always does; a held or failed run
//! only when the connector's previous run ended otherwise, so a connector that stays held for
//! days (every later run is held for the same reason) mails its admins once, not every tick.

use chrono_tz::Tz;
use lettre::Message;
use lettre::message::{Mailbox, MultiPart};

use super::layout::{BUTTON, PARAGRAPH, check_link, document, escape_html};
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

/// Every phrase of the digest, in one language. `{run}`, `{connector}`, `{organisation}`,
/// `{trigger}`, `{started}` and `{count}` are filled in.
struct Phrasebook {
    subject_applied: &'static str,
    subject_held: &'static str,
    subject_failed: &'static str,
    intro_applied: &'static str,
    intro_approved: &'static str,
    intro_held: &'static str,
    intro_failed: &'static str,
    held_why: &'static str,
    held_next: &'static str,
    failed_why: &'static str,
    failed_next: &'static str,
    no_lines: &'static str,
    button: &'static str,
    link_fallback: &'static str,
    undeliverable: &'static str,
    footer: &'static str,
    trigger_schedule: &'static str,
    trigger_command: &'static str,
    trigger_api: &'static str,
    /// Labels of the change kinds, in [`ChangeKind::ALL`] order.
    kinds: [&'static str; ChangeKind::ALL.len()],
}

const EN: Phrasebook = Phrasebook {
    subject_applied: "{organisation}: run {run} of {connector} applied {count} changes",
    subject_held: "{organisation}: run {run} of {connector} is held for your review",
    subject_failed: "{organisation}: run {run} of {connector} failed",
    intro_applied: "Run {run} of connector {connector} ({trigger}, started {started}) made \
        these changes to the accounts of {organisation}:",
    intro_approved: "Run {run} of connector {connector} ({trigger}, started {started}) was \
        approved and made these changes to the accounts of {organisation}:",
    intro_held: "Run {run} of connector {connector} ({trigger}, started {started}) was held: \
        nothing was applied to the accounts of {organisation}. It would make these changes:",
    intro_failed: "Run {run} of connector {connector} ({trigger}, started {started}) failed: \
        nothing was applied to the accounts of {organisation}.",
    held_why: "Why it was held:",
    held_next: "Review the changes on the run's page and approve the run there if they are \
        right. Until then, later runs of this connector are held for the same reason.",
    failed_why: "What went wrong:",
    failed_next: "The next run of this connector tries again. If it keeps failing, the run's \
        page and the daemon's log say more.",
    no_lines: "No changes.",
    button: "Open the run",
    link_fallback: "If the button does not work, copy this link into your browser:",
    undeliverable: "These emails of the run could not be delivered, and are not tried again:",
    footer: "You get this email because your address is in digest_to of {organisation} in \
        hrsync's configuration.",
    trigger_schedule: "on its schedule",
    trigger_command: "from the command line",
    trigger_api: "started by an admin",
    kinds: [
        "Invitations",
        "Linked to an existing account",
        "Updates",
        "Email address changes",
        "Deactivations",
        "Reactivations",
        "Added to a team",
        "Removed from a team",
        "Coaches assigned",
        "Coaches removed",
        "Roles granted",
        "Roles revoked",
        "Scheduled for a later date",
        "Records quarantined",
        "Conflicts",
    ],
};

const NL: Phrasebook = Phrasebook {
    subject_applied: "{organisation}: run {run} van {connector} heeft {count} wijzigingen \
        doorgevoerd",
    subject_held: "{organisation}: run {run} van {connector} wacht op je beoordeling",
    subject_failed: "{organisation}: run {run} van {connector} is mislukt",
    intro_applied: "Run {run} van koppeling {connector} ({trigger}, gestart {started}) heeft \
        deze wijzigingen doorgevoerd in de accounts van {organisation}:",
    intro_approved: "Run {run} van koppeling {connector} ({trigger}, gestart {started}) is \
        goedgekeurd en heeft deze wijzigingen doorgevoerd in de accounts van {organisation}:",
    intro_held: "Run {run} van koppeling {connector} ({trigger}, gestart {started}) is \
        tegengehouden: er is niets doorgevoerd in de accounts van {organisation}. Deze \
        wijzigingen zou de run doorvoeren:",
    intro_failed: "Run {run} van koppeling {connector} ({trigger}, gestart {started}) is \
        mislukt: er is niets doorgevoerd in de accounts van {organisation}.",
    held_why: "Waarom de run is tegengehouden:",
    held_next: "Bekijk de wijzigingen op de pagina van de run en keur de run daar goed als ze \
        kloppen. Tot die tijd worden volgende runs van deze koppeling om dezelfde reden \
        tegengehouden.",
    failed_why: "Wat er misging:",
    failed_next: "De volgende run van deze koppeling probeert het opnieuw. Blijft het \
        misgaan? De pagina van de run en het logboek van de daemon vertellen meer.",
    no_lines: "Geen wijzigingen.",
    button: "Run bekijken",
    link_fallback: "Werkt de knop niet? Kopieer dan deze link naar je browser:",
    undeliverable: "Deze e-mails van de run konden niet worden bezorgd en worden niet opnieuw \
                    verstuurd:",
    footer: "Je ontvangt deze e-mail omdat je adres in digest_to van {organisation} staat in \
        de configuratie van hrsync.",
    trigger_schedule: "volgens schema",
    trigger_command: "vanaf de opdrachtregel",
    trigger_api: "gestart door een beheerder",
    kinds: [
        "Uitnodigingen",
        "Gekoppeld aan een bestaand account",
        "Gegevens bijgewerkt",
        "E-mailadres gewijzigd",
        "Gedeactiveerd",
        "Opnieuw geactiveerd",
        "Aan een team toegevoegd",
        "Uit een team gehaald",
        "Coach toegewezen",
        "Coach weggehaald",
        "Rol toegekend",
        "Rol ingetrokken",
        "Gepland voor een latere datum",
        "Records in quarantaine",
        "Conflicten",
    ],
};

/// The digest as a multipart/alternative message (plain text and HTML saying the same).
pub fn render(digest: &Digest<'_>, from: &Mailbox) -> Result<Message, MailError> {
    let to = super::address(digest.to)?;
    check_link(&digest.link)?;
    let Composed {
        subject,
        text,
        html,
    } = compose(digest);
    Message::builder()
        .from(from.clone())
        .to(Mailbox::new(None, to))
        .subject(crate::domain::single_line(&subject))
        .message_id(None)
        .header(super::AutoSubmitted)
        .header(super::ContentLanguage(digest.locale))
        .multipart(MultiPart::alternative_plain_html(text, html))
        .map_err(|err| MailError::Digest {
            run: digest.report.summary.id,
            reason: err.to_string(),
        })
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

fn compose(digest: &Digest<'_>) -> Composed {
    let s = &digest.report.summary;
    let words = match digest.locale {
        Locale::En => &EN,
        Locale::Nl => &NL,
    };
    let (subject, intro, why, next) = match s.status {
        RunStatus::Held => (
            words.subject_held,
            words.intro_held,
            Some(words.held_why),
            Some(words.held_next),
        ),
        RunStatus::Failed => (
            words.subject_failed,
            words.intro_failed,
            Some(words.failed_why),
            Some(words.failed_next),
        ),
        RunStatus::Approved => (words.subject_applied, words.intro_approved, None, None),
        _ => (words.subject_applied, words.intro_applied, None, None),
    };
    let trigger = match s.trigger {
        Trigger::Schedule => words.trigger_schedule,
        Trigger::Command => words.trigger_command,
        Trigger::Api => words.trigger_api,
    };
    let started = s
        .started_at
        .with_timezone(&digest.time_zone)
        .format("%Y-%m-%d %H:%M %Z")
        .to_string();
    let fill = |template: &str| {
        template
            .replace("{organisation}", digest.organisation)
            .replace("{connector}", &s.connector)
            .replace("{run}", &s.id.to_string())
            .replace("{trigger}", trigger)
            .replace("{started}", &started)
            .replace("{count}", &crate::report::actionable_count(s).to_string())
    };
    let lines: Vec<(&str, i64)> = ChangeKind::ALL
        .iter()
        .zip(words.kinds)
        .filter_map(|(kind, label)| s.counts.get(kind.as_str()).map(|n| (label, *n)))
        .filter(|(_, n)| *n > 0)
        .collect();
    // A failed run applied nothing and its planned changes (if any) were not stored.
    let show_counts = s.status != RunStatus::Failed;
    let reasons: Vec<String> = digest
        .report
        .errors
        .iter()
        .map(|e| format!("{}: {}", e.code, e.message))
        .collect();

    let parts = Parts {
        words,
        intro: fill(intro),
        subject: fill(subject),
        footer: fill(words.footer),
        counts: show_counts.then_some(lines),
        why: why.map(|why| (why, reasons)),
        undeliverable: undeliverable_lines(digest.undeliverable),
        next,
        link: &digest.link,
    };
    Composed {
        text: text_body(&parts),
        html: html_body(&parts, digest.locale),
        subject: parts.subject,
    }
}

/// What a digest says, filled in and in its language, before it is written as text or HTML.
struct Parts<'a> {
    words: &'static Phrasebook,
    intro: String,
    subject: String,
    footer: String,
    /// The counts per kind, except for a failed run (it applied nothing and its planned
    /// changes, if any, were not stored).
    counts: Option<Vec<(&'a str, i64)>>,
    /// Why the run was held or failed, with each reason.
    why: Option<(&'static str, Vec<String>)>,
    undeliverable: Vec<String>,
    next: Option<&'static str>,
    link: &'a str,
}

/// The plain-text body.
fn text_body(p: &Parts<'_>) -> String {
    let words = p.words;
    let mut out = p.intro.clone();
    out.push_str("\n\n");
    if let Some(lines) = &p.counts {
        if lines.is_empty() {
            out.push_str(words.no_lines);
            out.push('\n');
        }
        for (label, n) in lines {
            out.push_str(&format!("  {n:>6}  {label}\n"));
        }
        out.push('\n');
    }
    let lists = p
        .why
        .as_ref()
        .map(|(why, reasons)| (*why, reasons))
        .into_iter()
        .chain((!p.undeliverable.is_empty()).then_some((words.undeliverable, &p.undeliverable)));
    for (heading, items) in lists {
        out.push_str(heading);
        out.push('\n');
        for item in items {
            out.push_str(&format!("- {item}\n"));
        }
        out.push('\n');
    }
    if let Some(next) = p.next {
        out.push_str(next);
        out.push_str("\n\n");
    }
    out.push_str(&format!("{}:\n{}\n\n-- \n", words.button, p.link));
    out.push_str(&p.footer);
    out.push('\n');
    out
}

/// The HTML body, in the mails' layout.
fn html_body(p: &Parts<'_>, locale: Locale) -> String {
    let words = p.words;
    let para = |text: &str| format!("<p style=\"{PARAGRAPH}\">{}</p>\n", escape_html(text));
    let mut body = para(&p.intro);
    if let Some(lines) = &p.counts {
        if lines.is_empty() {
            body.push_str(&para(words.no_lines));
        } else {
            body.push_str(
                "<table role=\"presentation\" cellpadding=\"0\" cellspacing=\"0\" \
                 style=\"margin:0 0 16px 0;border-collapse:collapse;\">\n",
            );
            for (label, n) in lines {
                body.push_str(&format!(
                    "<tr><td style=\"padding:4px 16px 4px 0;text-align:right;\
                     font-weight:600;\">{n}</td><td style=\"padding:4px 0;\">{}</td></tr>\n",
                    escape_html(label)
                ));
            }
            body.push_str("</table>\n");
        }
    }
    let lists = p
        .why
        .as_ref()
        .map(|(why, reasons)| (*why, reasons))
        .into_iter()
        .chain((!p.undeliverable.is_empty()).then_some((words.undeliverable, &p.undeliverable)));
    for (heading, items) in lists {
        body.push_str(&para(heading));
        body.push_str("<ul style=\"margin:0 0 16px 0;padding-left:20px;\">\n");
        for item in items {
            body.push_str(&format!("<li>{}</li>\n", escape_html(item)));
        }
        body.push_str("</ul>\n");
    }
    if let Some(next) = p.next {
        body.push_str(&para(next));
    }
    let href = escape_html(p.link);
    body.push_str(&format!(
        "<p style=\"margin:24px 0;\"><a href=\"{href}\" style=\"{BUTTON}\">{}</a></p>\n\
         <p style=\"{PARAGRAPH}font-size:14px;color:#4b5563;\">{}<br>\n\
         <a href=\"{href}\" style=\"color:#1d4ed8;word-break:break-all;\">{href}</a></p>\n",
        escape_html(words.button),
        escape_html(words.link_fallback),
    ));
    document(
        locale,
        &escape_html(&p.subject),
        &body,
        &escape_html(&p.footer),
    )
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
        let composed = compose(&digest(report, locale));
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
