//! Transports: deliver a rendered message over SMTP, or write it as an `.eml` file.
//!
//! SMTP goes through lettre's async client: for `smtp://` (plain or STARTTLS) over connections
//! opened and kept here with Nagle's algorithm off (`smtp.rs`, which says why), for `smtps://`
//! through lettre's pool. The pool is built on the first send rather than in [`Mailer::smtp`],
//! because building it spawns a clean-up task and so needs a running tokio runtime; this way a
//! mailer can be made while configuration is read, before the runtime starts. Passwords are handed to lettre (whose `Credentials` never print them) and appear in
//! no log line, `Debug` output or error: URLs are shown with the password replaced by `***`.

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::{AsyncSmtpTransport, AsyncSmtpTransportBuilder};
use lettre::{AsyncFileTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};

use super::MailError;
use super::smtp::{Direct, DirectError};

/// How long to wait for the SMTP server to accept a connection or answer a command.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Where mail goes: an SMTP server, or a folder of `.eml` files.
///
/// Cloning is cheap and clones share one SMTP connection pool.
#[derive(Clone, Debug)]
pub enum Mailer {
    File(FileMailer),
    Smtp(SmtpMailer),
}

/// Writes each message as `<uuid>.eml` into a folder.
#[derive(Clone)]
pub struct FileMailer {
    dir: PathBuf,
    transport: AsyncFileTransport<Tokio1Executor>,
}

/// Sends through an SMTP server, keeping a few connections open.
#[derive(Clone)]
pub struct SmtpMailer {
    inner: Arc<SmtpInner>,
}

struct SmtpInner {
    /// The URL as given, with any password replaced by `***`.
    shown_url: String,
    /// For `smtp://`: connections opened here, with Nagle's algorithm off (`smtp.rs`).
    direct: Option<Direct>,
    /// For `smtps://`: lettre's pool.
    builder: AsyncSmtpTransportBuilder,
    transport: OnceLock<AsyncSmtpTransport<Tokio1Executor>>,
}

impl Mailer {
    /// Writes each message as an `.eml` file into `dir` (created if missing), using lettre's
    /// `AsyncFileTransport`. This is the embedded default: mail can be read without a server.
    pub fn file(dir: impl Into<PathBuf>) -> Result<Mailer, MailError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|source| MailError::MailDir {
            path: dir.clone(),
            source,
        })?;
        let transport = AsyncFileTransport::<Tokio1Executor>::new(&dir);
        Ok(Mailer::File(FileMailer { dir, transport }))
    }

    /// SMTP from a URL, with lettre's `from_url` semantics:
    ///
    /// | URL | connection | default port |
    /// |---|---|---|
    /// | `smtp://host[:port]` | plain TCP, no TLS at all | 25 |
    /// | `smtp://host[:port]?tls=opportunistic` | STARTTLS when the server offers it | 587 |
    /// | `smtp://host[:port]?tls=required` | STARTTLS, fail without it | 587 |
    /// | `smtps://host[:port]` | implicit TLS from the first byte | 465 |
    ///
    /// The URL may carry `user:password@` (percent-encoded) and a `/name` path that is used as
    /// the EHLO name. `credentials`, when given, take precedence over a user and password in
    /// the URL; the password is never logged and never part of an error. Connecting and every
    /// SMTP command time out after 30 seconds.
    pub fn smtp(
        url: &str,
        credentials: Option<(String, SecretString)>,
    ) -> Result<Mailer, MailError> {
        let url = url.trim();
        let shown_url = redact_url(url);
        let secrets: Vec<&str> = credentials
            .iter()
            .map(|(_, password)| password.expose_secret())
            .chain(url_password(url))
            .collect();
        let invalid = |reason: String| MailError::InvalidSmtpUrl {
            url: shown_url.clone(),
            reason: scrub(reason, &secrets),
        };
        if url.is_empty() {
            return Err(invalid("the URL is empty".to_string()));
        }

        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|err| invalid(err.to_string()))?
            .timeout(Some(SMTP_TIMEOUT));
        let has_credentials = credentials.is_some() || url_password(url).is_some();
        let credentials = credentials
            .map(|(user, password)| Credentials::new(user, password.expose_secret().to_string()));
        if let Some(credentials) = &credentials {
            builder = builder.credentials(credentials.clone());
        }
        let direct = Direct::from_url(url, credentials, SMTP_TIMEOUT);
        if has_credentials && sends_in_clear(url) && !is_loopback(url) {
            tracing::warn!(
                server = %shown_url,
                "SMTP credentials will be sent without TLS; use smtps:// or ?tls=required"
            );
        }

        Ok(Mailer::Smtp(SmtpMailer {
            inner: Arc::new(SmtpInner {
                shown_url,
                direct,
                builder,
                transport: OnceLock::new(),
            }),
        }))
    }

    /// Delivers one message. On failure, [`MailError::is_transient`] tells whether trying again
    /// later may help.
    pub async fn send(&self, message: Message) -> Result<(), MailError> {
        match self {
            Mailer::File(file) => {
                let id = file
                    .transport
                    .send(message)
                    .await
                    .map_err(|cause| MailError::File {
                        dir: file.dir.clone(),
                        cause,
                    })?;
                tracing::debug!(file = %file.dir.join(format!("{id}.eml")).display(), "Mail written");
            }
            Mailer::Smtp(smtp) => {
                let server = || smtp.inner.shown_url.clone();
                let response =
                    match &smtp.inner.direct {
                        Some(direct) => direct
                            .send(message.envelope(), &message.formatted())
                            .await
                            .map_err(|e| match e {
                                DirectError::Smtp(cause) => MailError::Smtp {
                                    server: server(),
                                    cause,
                                },
                                DirectError::Connect(cause) => MailError::SmtpConnect {
                                    server: server(),
                                    cause,
                                },
                            })?,
                        None => smtp.transport().send(message).await.map_err(|cause| {
                            MailError::Smtp {
                                server: server(),
                                cause,
                            }
                        })?,
                    };
                tracing::debug!(
                    server = %smtp.inner.shown_url,
                    code = %response.code(),
                    "Mail accepted by SMTP server"
                );
            }
        }
        Ok(())
    }
}

impl SmtpMailer {
    /// The pooled transport, built on first use inside the runtime.
    fn transport(&self) -> &AsyncSmtpTransport<Tokio1Executor> {
        self.inner
            .transport
            .get_or_init(|| self.inner.builder.clone().build())
    }
}

impl fmt::Display for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mailer::File(file) => write!(f, "mail folder {}", file.dir.display()),
            Mailer::Smtp(smtp) => write!(f, "SMTP server {}", smtp.inner.shown_url),
        }
    }
}

impl fmt::Debug for FileMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileMailer")
            .field("dir", &self.dir)
            .finish()
    }
}

impl fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("url", &self.inner.shown_url)
            .finish_non_exhaustive()
    }
}

/// The part of a URL after `scheme://`, or all of it when there is no scheme.
fn after_scheme(url: &str) -> (&str, &str) {
    match url.find("://") {
        Some(at) => url.split_at(at + 3),
        None => ("", url),
    }
}

/// The URL with the password of its user information replaced by `***`
/// ([`crate::secret::url_without_password`]).
fn redact_url(url: &str) -> String {
    crate::secret::url_without_password(url)
}

/// The password written in the URL, if any, as written (possibly percent-encoded).
fn url_password(url: &str) -> Option<&str> {
    let (_, rest) = after_scheme(url);
    let userinfo = &rest[..rest.rfind('@')?];
    let (_, password) = userinfo.split_once(':')?;
    (!password.is_empty()).then_some(password)
}

/// `text` with every occurrence of a secret replaced by `***`.
fn scrub(mut text: String, secrets: &[&str]) -> String {
    for secret in secrets.iter().filter(|secret| !secret.is_empty()) {
        text = text.replace(secret, "***");
    }
    text
}

/// Whether the URL asks for a connection without any TLS (`smtp://` without `?tls=`).
fn sends_in_clear(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    lower.starts_with("smtp://") && !lower.contains("tls=")
}

/// Whether the URL's host is this machine, where a clear-text connection is no risk.
fn is_loopback(url: &str) -> bool {
    let (_, rest) = after_scheme(url);
    let rest = rest.rfind('@').map_or(rest, |at| &rest[at + 1..]);
    let host = if let Some(bracketed) = rest.strip_prefix('[') {
        bracketed.split(']').next().unwrap_or_default()
    } else {
        rest.split([':', '/', '?']).next().unwrap_or_default()
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_url_forms_that_lettre_understands_are_accepted() {
        for url in [
            "smtp://127.0.0.1:2525",
            "smtp://mail.example.org",
            "smtp://mail.example.org?tls=opportunistic",
            "smtp://mail.example.org:587?tls=required",
            "smtps://mail.example.org",
            "smtps://user:pa%40ss@mail.example.org:465/hrsync.example.org",
        ] {
            let mailer = Mailer::smtp(url, None);

            assert!(mailer.is_ok(), "{url}: {:?}", mailer.err());
        }
    }

    #[test]
    fn smtp_mailer_can_be_made_before_the_runtime_starts() {
        let mailer = Mailer::smtp("smtp://127.0.0.1:2525", None).unwrap();

        assert_eq!(mailer.to_string(), "SMTP server smtp://127.0.0.1:2525");
    }

    #[test]
    fn bad_smtp_url_is_named_without_its_password() {
        let url = "smtq://hr:s3cret-pw@mail.example.org";

        let err = Mailer::smtp(url, None).unwrap_err();

        let text = err.to_string();
        assert!(matches!(err, MailError::InvalidSmtpUrl { .. }), "{text}");
        assert!(text.contains("`smtq://hr:***@mail.example.org`"), "{text}");
        assert!(!text.contains("s3cret-pw"), "{text}");
    }

    #[test]
    fn unknown_tls_mode_is_refused() {
        let err = Mailer::smtp("smtp://mail.example.org?tls=sometimes", None).unwrap_err();

        assert!(matches!(err, MailError::InvalidSmtpUrl { .. }), "{err}");
    }

    #[test]
    fn empty_smtp_url_is_refused() {
        let err = Mailer::smtp("  ", None).unwrap_err();

        assert_eq!(err.to_string(), "invalid SMTP URL ``: the URL is empty");
    }

    #[test]
    fn debug_and_display_never_show_the_password() {
        let credentials = Some(("hr".to_string(), SecretString::from("explicit-pw")));
        let mailer = Mailer::smtp("smtps://hr:url-pw@mail.example.org", credentials).unwrap();

        let shown = format!("{mailer} {mailer:?}");

        assert!(!shown.contains("explicit-pw"), "{shown}");
        assert!(!shown.contains("url-pw"), "{shown}");
        assert!(shown.contains("smtps://hr:***@mail.example.org"), "{shown}");
    }

    #[test]
    fn redaction_hides_passwords_with_odd_characters() {
        let cases = [
            ("smtp://u:p@ss/w@host:25", "smtp://u:***@host:25"),
            ("smtp://u@host", "smtp://u@host"),
            ("smtp://host:25", "smtp://host:25"),
            ("u:secret@host", "u:***@host"),
        ];

        for (url, shown) in cases {
            assert_eq!(redact_url(url), shown, "{url}");
        }
    }

    #[test]
    fn loopback_hosts_are_recognised() {
        assert!(is_loopback("smtp://127.0.0.1:2525"));
        assert!(is_loopback("smtp://u:p@localhost"));
        assert!(is_loopback("smtp://[::1]:25"));
        assert!(!is_loopback("smtp://mail.example.org"));
    }

    #[test]
    fn file_mailer_creates_its_folder() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("outbox").join("mail");

        let mailer = Mailer::file(&dir).unwrap();

        assert!(dir.is_dir());
        assert!(mailer.to_string().starts_with("mail folder "));
    }

    #[test]
    fn file_mailer_reports_a_folder_it_cannot_create() {
        let root = tempfile::tempdir().unwrap();
        let blocker = root.path().join("taken");
        std::fs::write(&blocker, "a file, not a folder").unwrap();

        let err = Mailer::file(blocker.join("mail")).unwrap_err();

        assert!(matches!(err, MailError::MailDir { .. }), "{err}");
        assert!(err.to_string().contains("taken"), "{err}");
    }
}
