//! Email: the messages hrsync sends to employees and to admins, and the transports that
//! deliver them.
//!
//! Four kinds of mail go to employees (an activation invite, an "added to organisation"
//! notice, and the two notices of an email change), each in English and Dutch. [`render`]
//! turns a [`MailContent`] into a complete `multipart/alternative` message with a plain-text
//! and an HTML part that say the same thing; the wording lives in `templates`, the layout of
//! both parts in `layout`, each written by askama templates (`templates/`, escaped for HTML by
//! `html`). Admins get a [`digest`] of runs that changed, held or failed
//! something. [`Mailer`] delivers a rendered message over SMTP or writes it as an `.eml` file.
//!
//! Rendering needs nothing but the content (lettre adds the `Date` and a fresh `Message-ID`), so
//! a message can be rendered when it is sent, from what the outbox stored.

pub mod digest;
mod layout;
pub mod outbox;
mod smtp;
mod templates;
mod transport;

use std::fmt;

use lettre::Message;
use lettre::message::header::{Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};

pub use transport::{FileMailer, Mailer, SmtpMailer};

/// The language a mail is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Locale {
    En,
    Nl,
}

impl Locale {
    /// Reads a language tag such as `en`, `NL`, `nl-NL`, `nl_BE` or `en_GB.UTF-8`; only the
    /// primary language counts. Returns `None` for a language we have no templates for.
    pub fn parse(tag: &str) -> Option<Locale> {
        let language = tag.trim().split(['-', '_', '.']).next().unwrap_or_default();
        if language.eq_ignore_ascii_case("en") {
            Some(Locale::En)
        } else if language.eq_ignore_ascii_case("nl") {
            Some(Locale::Nl)
        } else {
            None
        }
    }

    /// The language code: `en` or `nl`.
    pub fn as_str(self) -> &'static str {
        match self {
            Locale::En => "en",
            Locale::Nl => "nl",
        }
    }
}

impl fmt::Display for Locale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which mail to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MailKind {
    /// An invitation with a single-use link that activates a new account.
    Activation,
    /// A person who already has an account was added to another organisation.
    AddedToOrganisation,
    /// Sent to the previous address after an email change.
    EmailChangedOld,
    /// Sent to the new address after an email change.
    EmailChangedNew,
}

impl MailKind {
    /// Every kind, in a fixed order.
    pub const ALL: [MailKind; 4] = [
        MailKind::Activation,
        MailKind::AddedToOrganisation,
        MailKind::EmailChangedOld,
        MailKind::EmailChangedNew,
    ];

    /// The stable name stored in the outbox, e.g. `added_to_organisation`.
    pub fn as_str(self) -> &'static str {
        match self {
            MailKind::Activation => "activation",
            MailKind::AddedToOrganisation => "added_to_organisation",
            MailKind::EmailChangedOld => "email_changed_old",
            MailKind::EmailChangedNew => "email_changed_new",
        }
    }

    /// The inverse of [`MailKind::as_str`]; exact match only.
    pub fn parse(name: &str) -> Option<MailKind> {
        MailKind::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

impl fmt::Display for MailKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything a mail says, before it is rendered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailContent {
    pub kind: MailKind,
    pub locale: Locale,
    /// The recipient's address.
    pub to: String,
    /// The person's display name; the greeting uses it when present.
    pub to_name: Option<String>,
    /// The organisation's display name.
    pub organisation: String,
    /// The activation link (required for [`MailKind::Activation`]); for
    /// [`MailKind::AddedToOrganisation`] an optional sign-in link.
    pub link: Option<String>,
    /// How long the activation link stays valid, if it expires.
    pub expires_in_days: Option<u32>,
    /// The previous address (required for the email-change notices).
    pub old_email: Option<String>,
    /// The new address (required for the email-change notices).
    pub new_email: Option<String>,
}

/// Why a mail could not be rendered or delivered.
///
/// Each message is complete on its own (it includes the underlying cause), so it can be logged
/// or stored as the outbox's last error as it is. No variant ever contains an SMTP password.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("`{address}` is not a valid recipient address: {reason}")]
    InvalidAddress { address: String, reason: String },
    #[error("cannot render the {kind} mail: `{field}` is missing")]
    MissingField { kind: MailKind, field: &'static str },
    #[error("the link `{link}` is not an http:// or https:// URL")]
    InvalidLink { link: String },
    #[error("could not build the {kind} mail: {reason}")]
    Build { kind: MailKind, reason: String },
    #[error("could not build the digest of run {run}: {reason}")]
    Digest { run: i64, reason: String },
    #[error("invalid SMTP URL `{url}`: {reason}")]
    InvalidSmtpUrl { url: String, reason: String },
    #[error("could not create the mail folder `{}`: {source}", path.display())]
    MailDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("could not deliver the mail through {server}: {cause}")]
    Smtp {
        /// The server's URL, without any password.
        server: String,
        cause: lettre::transport::smtp::Error,
    },
    #[error("could not connect to {server}: {cause}")]
    SmtpConnect {
        /// The server's URL, without any password.
        server: String,
        cause: std::io::Error,
    },
    #[error("could not write the mail into `{}`: {cause}", dir.display())]
    File {
        dir: std::path::PathBuf,
        cause: lettre::transport::file::Error,
    },
}

impl MailError {
    /// Whether sending the same mail again later may succeed: a network failure, a timeout or a
    /// 4xx answer from the SMTP server, or a file that could not be written. A mail that cannot
    /// be rendered, or that the server refused for this message (550 to 556: no such mailbox,
    /// not accepted, rejected as spam), will fail again. Other 5xx answers (535 authentication
    /// failed, 530, 500 to 504), and a 55x whose enhanced code blames the sender's address,
    /// the mail system or authentication, are about the server or hrsync's settings, not this
    /// message: once ops fix them, every mail goes out, so they count as transient.
    pub fn is_transient(&self) -> bool {
        match self {
            MailError::Smtp { cause, .. } => !refuses_the_message(cause),
            MailError::SmtpConnect { .. } | MailError::File { .. } | MailError::MailDir { .. } => {
                true
            }
            MailError::InvalidAddress { .. }
            | MailError::MissingField { .. }
            | MailError::InvalidLink { .. }
            | MailError::Build { .. }
            | MailError::Digest { .. }
            | MailError::InvalidSmtpUrl { .. } => false,
        }
    }
}

/// Whether an SMTP error is the server's refusal of this one message: a permanent 550 to 556
/// (RFC 5321: no such mailbox, not accepted, rejected), unless its enhanced status code
/// (RFC 3463) says the trouble is the sender's address (X.1.7, X.1.8), the mail system or the
/// network (X.3.x, X.4.x) or authentication (X.7.0, X.7.8): those hit every mail alike, and
/// once ops mend them every mail goes out, so they are retried instead.
fn refuses_the_message(error: &lettre::transport::smtp::Error) -> bool {
    let code = error
        .status()
        .and_then(|code| code.to_string().parse::<u16>().ok());
    let per_message = error.is_permanent() && code.is_some_and(|c| (550..=556).contains(&c));
    per_message && !enhanced_status(&error.to_string()).is_some_and(about_the_server)
}

/// The first enhanced status code (`5.1.1`) in an SMTP error's text: class, subject, detail.
fn enhanced_status(text: &str) -> Option<(u16, u16, u16)> {
    text.split(|c: char| c.is_whitespace() || matches!(c, ':' | ',' | '(' | ')' | '[' | ']'))
        .find_map(|word| {
            let mut parts = word.split('.');
            let mut number = || parts.next().and_then(|p| p.parse::<u16>().ok());
            let status = (number()?, number()?, number()?);
            (parts.next().is_none() && matches!(status.0, 2 | 4 | 5)).then_some(status)
        })
}

/// Whether an enhanced status names a cause outside the message and its recipient.
fn about_the_server((_, subject, detail): (u16, u16, u16)) -> bool {
    matches!(
        (subject, detail),
        (1, 7) | (1, 8) | (3, _) | (4, _) | (7, 0) | (7, 8)
    )
}

/// Renders a multipart/alternative message (plain text + HTML, both complete, HTML-escaped
/// values) in the content's locale, from `from` to `content.to`.
///
/// Fails when the recipient address is not valid, when a field the kind needs is missing (the
/// link of an activation mail, either address of an email-change notice, the organisation), or
/// when a link is not an http(s) URL.
pub fn render(content: &MailContent, from: &Mailbox) -> Result<Message, MailError> {
    // Whatever a value holds, rendering fails this one message and never the caller: a bug
    // in a library's header encoding must not take the mail worker down with it.
    std::panic::catch_unwind(|| render_unguarded(content, from)).unwrap_or_else(|_| {
        Err(MailError::Build {
            kind: content.kind,
            reason: "rendering the message panicked".to_string(),
        })
    })
}

fn render_unguarded(content: &MailContent, from: &Mailbox) -> Result<Message, MailError> {
    let recipient = recipient(content)?;
    let values = layout::Values::from_content(content)?;
    let letter = templates::letter(content.kind, &values);
    let layout::Rendered {
        subject,
        text,
        html,
    } = layout::render(&letter, &values, content.locale).map_err(|err| MailError::Build {
        kind: content.kind,
        reason: err.to_string(),
    })?;

    Message::builder()
        .from(from.clone())
        .to(recipient)
        .subject(crate::domain::single_line(&subject))
        .message_id(None)
        .header(AutoSubmitted)
        .header(ContentLanguage(content.locale))
        .multipart(MultiPart::alternative_plain_html(text, html))
        .map_err(|err| MailError::Build {
            kind: content.kind,
            reason: err.to_string(),
        })
}

/// A recipient's address, trimmed and checked.
fn address(text: &str) -> Result<lettre::Address, MailError> {
    let address = text.trim();
    address
        .parse::<lettre::Address>()
        .map_err(|err| MailError::InvalidAddress {
            address: address.to_string(),
            reason: err.to_string(),
        })
}

fn recipient(content: &MailContent) -> Result<Mailbox, MailError> {
    let parsed = address(&content.to)?;
    // A header holds one line: a name with a line break (from a hand-made account, say)
    // would otherwise break the `To` header.
    let name = content
        .to_name
        .as_deref()
        .and_then(crate::domain::non_empty);
    Ok(Mailbox::new(name, parsed))
}

/// `Auto-Submitted: auto-generated` (RFC 3834), so that out-of-office replies and other
/// auto-responders leave these mails alone.
#[derive(Clone)]
struct AutoSubmitted;

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(AutoSubmitted)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-generated".to_string())
    }
}

/// `Content-Language` (RFC 3282), which lets mail clients offer the right spelling checker and
/// translation.
#[derive(Clone)]
struct ContentLanguage(Locale);

impl Header for ContentLanguage {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Content-Language")
    }

    fn parse(text: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Locale::parse(text)
            .map(ContentLanguage)
            .ok_or_else(|| format!("unsupported language `{text}`").into())
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.as_str().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from() -> Mailbox {
        "Acme HR <hr@acme.example>".parse().unwrap()
    }

    fn activation(locale: Locale) -> MailContent {
        MailContent {
            kind: MailKind::Activation,
            locale,
            to: "jan.jansen@example.org".to_string(),
            to_name: Some("Jan Jansen".to_string()),
            organisation: "Zorggroep Noord".to_string(),
            link: Some("https://id.example.org/activate?token=abc123&org=7".to_string()),
            expires_in_days: Some(7),
            old_email: None,
            new_email: None,
        }
    }

    fn email_change(kind: MailKind, locale: Locale) -> MailContent {
        MailContent {
            kind,
            to: if kind == MailKind::EmailChangedOld {
                "jan@old.example".to_string()
            } else {
                "jan@new.example".to_string()
            },
            link: None,
            expires_in_days: None,
            old_email: Some("jan@old.example".to_string()),
            new_email: Some("jan@new.example".to_string()),
            ..activation(locale)
        }
    }

    fn every_content() -> Vec<MailContent> {
        let mut all = Vec::new();
        for locale in [Locale::En, Locale::Nl] {
            all.push(activation(locale));
            all.push(MailContent {
                kind: MailKind::AddedToOrganisation,
                expires_in_days: None,
                ..activation(locale)
            });
            all.push(email_change(MailKind::EmailChangedOld, locale));
            all.push(email_change(MailKind::EmailChangedNew, locale));
        }
        all
    }

    /// The plain-text and HTML parts, as the layout produced them (before transfer encoding).
    fn parts(content: &MailContent) -> (String, String, String) {
        let values = layout::Values::from_content(content).unwrap();
        let letter = templates::letter(content.kind, &values);
        let mail = layout::render(&letter, &values, content.locale).unwrap();
        (mail.subject, mail.text, mail.html)
    }

    #[test]
    fn mailer_and_errors_can_cross_threads() {
        fn send_sync<T: Send + Sync + 'static>() {}

        send_sync::<Mailer>();
        send_sync::<MailError>();
        send_sync::<MailContent>();
    }

    #[test]
    fn locale_is_read_from_language_tags() {
        let cases = [
            ("en", Some(Locale::En)),
            ("EN", Some(Locale::En)),
            ("en-GB", Some(Locale::En)),
            ("nl", Some(Locale::Nl)),
            (" nl-NL ", Some(Locale::Nl)),
            ("nl_BE.UTF-8", Some(Locale::Nl)),
            ("de", None),
            ("", None),
            ("english", None),
        ];

        for (tag, expected) in cases {
            assert_eq!(Locale::parse(tag), expected, "tag {tag:?}");
        }
    }

    #[test]
    fn mail_kind_names_round_trip() {
        for kind in MailKind::ALL {
            assert_eq!(MailKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(MailKind::parse("Activation"), None);
        assert_eq!(
            MailKind::AddedToOrganisation.as_str(),
            "added_to_organisation"
        );
    }

    #[test]
    fn activation_mail_in_dutch_carries_the_link_in_text_and_html() {
        let content = activation(Locale::Nl);

        let (subject, text, html) = parts(&content);

        assert_eq!(subject, "Je bent uitgenodigd voor Zorggroep Noord");
        assert!(text.starts_with("Hallo Jan Jansen,"), "{text}");
        assert!(text.contains("https://id.example.org/activate?token=abc123&org=7"));
        assert!(text.contains("7 dagen geldig"), "{text}");
        assert!(html.contains(r#"href="https://id.example.org/activate?token=abc123&amp;org=7""#));
        assert!(html.contains(r#"<html lang="nl">"#));
        assert!(html.contains("Account activeren"));
    }

    #[test]
    fn activation_mail_in_english_says_how_long_the_link_is_valid() {
        let content = activation(Locale::En);

        let (subject, text, html) = parts(&content);

        assert_eq!(subject, "You're invited to Zorggroep Noord");
        assert!(text.starts_with("Hello Jan Jansen,"), "{text}");
        assert!(text.contains("valid for 7 days"), "{text}");
        assert!(html.contains("valid for 7 days"), "{html}");
        assert!(text.contains("did not expect"), "{text}");
    }

    #[test]
    fn a_link_valid_for_one_day_is_written_in_the_singular() {
        let en = MailContent {
            expires_in_days: Some(1),
            ..activation(Locale::En)
        };
        let nl = MailContent {
            expires_in_days: Some(1),
            ..activation(Locale::Nl)
        };

        let (_, en_text, _) = parts(&en);
        let (_, nl_text, _) = parts(&nl);

        assert!(en_text.contains("valid for 1 day "), "{en_text}");
        assert!(nl_text.contains("1 dag geldig"), "{nl_text}");
    }

    #[test]
    fn activation_mail_without_expiry_still_says_the_link_works_once() {
        let content = MailContent {
            expires_in_days: None,
            ..activation(Locale::En)
        };

        let (_, text, _) = parts(&content);

        assert!(text.contains("can be used only once"), "{text}");
        assert!(!text.contains("valid for"), "{text}");
    }

    #[test]
    fn greeting_without_a_name_is_neutral() {
        let content = MailContent {
            to_name: Some("  ".to_string()),
            ..activation(Locale::Nl)
        };

        let (_, text, html) = parts(&content);

        assert!(text.starts_with("Hallo,\n"), "{text}");
        assert!(html.contains(">Hallo,</p>"), "{html}");
    }

    #[test]
    fn names_are_html_escaped() {
        let content = MailContent {
            to_name: Some("<script>alert('x')</script> & Co".to_string()),
            organisation: "Smith & \"Sons\" <Care>".to_string(),
            ..activation(Locale::En)
        };

        let (_, text, html) = parts(&content);

        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; Co"));
        assert!(html.contains("Smith &amp; &quot;Sons&quot; &lt;Care&gt;"));
        assert!(text.contains("<script>alert('x')</script> & Co"), "{text}");
    }

    #[test]
    fn email_addresses_are_html_escaped_in_the_change_notices() {
        let content = MailContent {
            old_email: Some("\"a<b>\"@old.example".to_string()),
            ..email_change(MailKind::EmailChangedNew, Locale::En)
        };

        let (_, _, html) = parts(&content);

        assert!(
            html.contains("&quot;a&lt;b&gt;&quot;@old.example"),
            "{html}"
        );
        assert!(!html.contains("a<b>"), "{html}");
    }

    #[test]
    fn notice_to_the_old_address_names_the_new_one() {
        let content = email_change(MailKind::EmailChangedOld, Locale::En);

        let (subject, text, html) = parts(&content);

        assert_eq!(
            subject,
            "Your sign-in address for Zorggroep Noord has been changed"
        );
        assert!(text.contains("to jan@new.example"), "{text}");
        assert!(text.contains("contact your HR department"), "{text}");
        assert!(html.contains("jan@new.example"));
    }

    #[test]
    fn notice_to_the_new_address_names_the_old_one_in_dutch() {
        let content = email_change(MailKind::EmailChangedNew, Locale::Nl);

        let (subject, text, html) = parts(&content);

        assert_eq!(subject, "Dit is nu je inlogadres voor Zorggroep Noord");
        assert!(text.contains("je vorige adres, jan@old.example"), "{text}");
        assert!(html.contains("jan@old.example"));
    }

    #[test]
    fn added_to_organisation_notice_offers_the_sign_in_link_only_when_given() {
        let with_link = MailContent {
            kind: MailKind::AddedToOrganisation,
            link: Some("https://id.example.org/login".to_string()),
            ..activation(Locale::En)
        };
        let without_link = MailContent {
            link: None,
            ..with_link.clone()
        };

        let (subject, text, html) = parts(&with_link);
        let (_, bare_text, bare_html) = parts(&without_link);

        assert_eq!(subject, "You now have access to Zorggroep Noord");
        assert!(text.contains("jan.jansen@example.org"), "{text}");
        assert!(text.contains("https://id.example.org/login"));
        assert!(html.contains(r#"href="https://id.example.org/login""#));
        assert!(!bare_text.contains("https://"), "{bare_text}");
        assert!(!bare_html.contains("<a "), "{bare_html}");
    }

    #[test]
    fn every_template_fills_all_its_placeholders() {
        for content in every_content() {
            let (subject, text, html) = parts(&content);

            for (part, rendered) in [("subject", &subject), ("text", &text), ("html", &html)] {
                for name in layout::PLACEHOLDERS {
                    let placeholder = format!("{{{name}}}");
                    assert!(
                        !rendered.contains(&placeholder),
                        "{} {} {part} keeps {placeholder}: {rendered}",
                        content.kind,
                        content.locale,
                    );
                }
            }
            assert!(text.contains("Zorggroep Noord"), "{text}");
        }
    }

    #[test]
    fn html_part_is_a_complete_document() {
        for content in every_content() {
            let (subject, _, html) = parts(&content);

            assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
            let title = html
                .split_once("<title>")
                .and_then(|(_, rest)| rest.split_once("</title>"))
                .map(|(title, _)| title.replace("&#39;", "'"));
            assert_eq!(title.as_deref(), Some(subject.as_str()), "{html}");
            assert!(html.trim_end().ends_with("</html>"), "{html}");
        }
    }

    #[test]
    fn rendered_message_is_multipart_alternative_with_both_parts() {
        let content = activation(Locale::En);

        let message = render(&content, &from()).unwrap();
        let raw = String::from_utf8(message.formatted()).unwrap();

        assert!(raw.contains("Content-Type: multipart/alternative"), "{raw}");
        assert!(
            raw.contains("Content-Type: text/plain; charset=utf-8"),
            "{raw}"
        );
        assert!(
            raw.contains("Content-Type: text/html; charset=utf-8"),
            "{raw}"
        );
        assert!(raw.contains("Auto-Submitted: auto-generated"), "{raw}");
        assert!(raw.contains("Message-ID: <"), "{raw}");
        assert!(raw.contains("Content-Language: en"), "{raw}");
        assert!(
            raw.contains("To: \"Jan Jansen\" <jan.jansen@example.org>"),
            "{raw}"
        );
        assert!(raw.contains("From: \"Acme HR\" <hr@acme.example>"), "{raw}");
        let envelope = message.envelope();
        assert_eq!(envelope.to().len(), 1);
        assert_eq!(envelope.to()[0].to_string(), "jan.jansen@example.org");
    }

    #[test]
    fn activation_mail_without_a_link_is_refused() {
        let content = MailContent {
            link: None,
            ..activation(Locale::En)
        };

        let err = render(&content, &from()).unwrap_err();

        assert!(
            matches!(err, MailError::MissingField { field: "link", .. }),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            "cannot render the activation mail: `link` is missing"
        );
    }

    #[test]
    fn email_change_notice_without_the_new_address_is_refused() {
        let content = MailContent {
            new_email: None,
            ..email_change(MailKind::EmailChangedOld, Locale::En)
        };

        let err = render(&content, &from()).unwrap_err();

        assert!(matches!(
            err,
            MailError::MissingField {
                field: "new_email",
                ..
            }
        ));
    }

    #[test]
    fn a_link_that_is_not_http_is_refused() {
        let content = MailContent {
            link: Some("javascript:alert(1)".to_string()),
            ..activation(Locale::En)
        };

        let err = render(&content, &from()).unwrap_err();

        assert!(matches!(err, MailError::InvalidLink { .. }), "{err}");
    }

    #[test]
    fn an_invalid_recipient_address_is_refused_with_the_address_named() {
        let content = MailContent {
            to: "not an address".to_string(),
            ..activation(Locale::En)
        };

        let err = render(&content, &from()).unwrap_err();

        assert!(matches!(err, MailError::InvalidAddress { .. }), "{err}");
        assert!(err.to_string().contains("`not an address`"), "{err}");
        assert!(!err.is_transient());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(128))]

        #[test]
        fn any_name_renders_a_message_whose_headers_stay_single_lines(
            name in proptest::prop_oneof![
                proptest::prelude::any::<String>(),
                "[ \t\r\n\x00\x0b\x1b\u{85}\u{200F}\u{202E}\u{2028}\u{2066}\"<>,;:@a-zé]{0,40}",
                proptest::strategy::Just("Ann\r\nBcc: evil@example.org".to_string()),
                proptest::strategy::Just("W".repeat(5_000)),
            ],
            organisation in proptest::prelude::any::<String>(),
        ) {
            for kind in [MailKind::Activation, MailKind::EmailChangedOld, MailKind::AddedToOrganisation] {
                let mut content = email_change(kind, Locale::Nl);
                content.link = Some("https://app.example.org/activate?token=abc".to_string());
                content.to_name = Some(name.clone());
                content.organisation = organisation.clone();

                let message = match render(&content, &from()) {
                    Ok(message) => message,
                    Err(MailError::Build { reason, .. }) => {
                        proptest::prop_assert!(!reason.contains("panicked"), "{}", reason);
                        continue;
                    }
                    Err(other) => {
                        proptest::prop_assert!(!other.to_string().is_empty());
                        continue;
                    }
                };
                let raw = String::from_utf8_lossy(&message.formatted()).into_owned();
                let head = raw.split("\r\n\r\n").next().unwrap_or_default();
                for line in head.split("\r\n") {
                    proptest::prop_assert!(!line.contains('\n') && !line.contains('\r'), "{:?}", line);
                    proptest::prop_assert!(!line.starts_with("Bcc:"), "{:?}", line);
                }
                proptest::prop_assert!(head.contains("To: "), "{}", head);
            }
        }
    }

    #[test]
    fn enhanced_status_codes_are_read_from_the_servers_answer() {
        assert_eq!(
            enhanced_status("permanent error (550): 5.1.1 No such user here"),
            Some((5, 1, 1))
        );
        assert_eq!(
            enhanced_status("(554) 5.7.1 Sender refused"),
            Some((5, 7, 1))
        );
        assert_eq!(enhanced_status("550 Mailbox unavailable, v1.2"), None);
        assert!(about_the_server((5, 1, 8)));
        assert!(about_the_server((5, 7, 0)));
        assert!(!about_the_server((5, 1, 1)));
        assert!(!about_the_server((5, 7, 1)));
    }
}
