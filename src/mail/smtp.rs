//! SMTP connections that hrsync opens itself for `smtp://` URLs (plain TCP, or upgraded with
//! STARTTLS), kept open between mails: lettre's own SMTP client on a TCP stream with Nagle's
//! algorithm off.
//!
//! lettre writes a message and the end-of-data mark after it as two writes. With Nagle's
//! algorithm on, which lettre's pool leaves it, the five-byte mark waits until the server
//! acknowledges the message, and servers delay that acknowledgement (40 ms on Linux): once per
//! mail, whatever the server's speed. `smtps://` (TLS from the first byte) needs the TLS
//! stream lettre builds itself, so it keeps lettre's pool and that wait.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;

/// Whether and how the connection is upgraded to TLS (`?tls=` of an `smtp://` URL).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Starttls {
    /// Plain TCP throughout: for a relay on the same machine or network.
    Never,
    /// STARTTLS when the server offers it.
    Opportunistic,
    /// STARTTLS, or no mail.
    Required,
}

/// The SMTP server of an `smtp://` URL, and the connections open to it.
pub(super) struct Direct {
    host: String,
    port: u16,
    starttls: Starttls,
    hello: ClientId,
    credentials: Option<Credentials>,
    timeout: Duration,
    /// Connections free for the next mail, with when each was last used.
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
}

/// Why a mail could not be handed to the server: the SMTP exchange failed (lettre's error,
/// with the server's answer when there is one), or no connection could be opened.
#[derive(Debug)]
pub(super) enum DirectError {
    Smtp(lettre::transport::smtp::Error),
    Connect(std::io::Error),
}

/// A connection unused this long is checked (`NOOP`) before a mail goes over it: the server
/// may have closed it meanwhile.
const CHECK_AFTER: Duration = Duration::from_secs(10);
/// How many connections stay open between mails: as many as the outbox sends at once.
const MAX_IDLE: usize = 8;

impl Direct {
    /// The server of an `smtp://` URL as lettre reads one: the port (25, or 587 with `?tls=`),
    /// `?tls=required` or `opportunistic`, the path as the EHLO name, and `user:password@`
    /// (percent-encoded), which `credentials` replace when given. `None` for another scheme
    /// (`smtps://`), or a URL lettre itself refused.
    pub(super) fn from_url(
        url: &str,
        credentials: Option<Credentials>,
        timeout: Duration,
    ) -> Option<Direct> {
        let url = reqwest::Url::parse(url).ok()?;
        if url.scheme() != "smtp" {
            return None;
        }
        let tls = url
            .query_pairs()
            .find(|(key, _)| key == "tls")
            .map(|(_, value)| value.into_owned());
        let (starttls, default_port) = match tls.as_deref() {
            None => (Starttls::Never, 25),
            Some("required") => (Starttls::Required, 587),
            Some("opportunistic") => (Starttls::Opportunistic, 587),
            Some(_) => return None,
        };
        let host = url.host_str()?.trim_matches(['[', ']']).to_string();
        let hello = match url.path().trim_matches('/') {
            "" => ClientId::default(),
            name => ClientId::Domain(name.to_string()),
        };
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|s| s.into_owned())
        };
        let from_url = match url.password() {
            Some(password) => Some(Credentials::new(
                decode(url.username()).ok()?,
                decode(password).ok()?,
            )),
            None => None,
        };
        Some(Direct {
            port: url.port().unwrap_or(default_port),
            host,
            starttls,
            hello,
            credentials: credentials.or(from_url),
            timeout,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// Sends one message over an open connection, or a new one; the connection is kept for the
    /// next mail unless the exchange broke it.
    pub(super) async fn send(
        &self,
        envelope: &Envelope,
        message: &[u8],
    ) -> Result<lettre::transport::smtp::response::Response, DirectError> {
        let mut connection = match self.reuse().await {
            Some(connection) => connection,
            None => self.connect().await?,
        };
        let sent = connection.send(envelope, message).await;
        if sent.is_ok() && !connection.has_broken() {
            self.keep(connection);
        } else {
            connection.abort().await;
        }
        sent.map_err(DirectError::Smtp)
    }

    /// An idle connection that still answers, if there is one.
    async fn reuse(&self) -> Option<AsyncSmtpConnection> {
        loop {
            let (mut connection, used) = self.idle.lock().ok()?.pop()?;
            if used.elapsed() < CHECK_AFTER || connection.test_connected().await {
                return Some(connection);
            }
            connection.abort().await;
        }
    }

    fn keep(&self, connection: AsyncSmtpConnection) {
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < MAX_IDLE
        {
            idle.push((connection, Instant::now()));
        }
    }

    /// A new connection: TCP with Nagle's algorithm off, the greeting and EHLO, STARTTLS as the
    /// URL asks, then sign-in when there are credentials.
    async fn connect(&self) -> Result<AsyncSmtpConnection, DirectError> {
        let tcp = tokio::time::timeout(
            self.timeout,
            tokio::net::TcpStream::connect((self.host.as_str(), self.port)),
        )
        .await
        .map_err(|_| {
            DirectError::Connect(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no connection within {} seconds", self.timeout.as_secs()),
            ))
        })?
        .map_err(DirectError::Connect)?;
        tcp.set_nodelay(true).map_err(DirectError::Connect)?;
        let mut connection =
            AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello)
                .await
                .map_err(DirectError::Smtp)?;
        let upgrade = match self.starttls {
            Starttls::Never => false,
            Starttls::Opportunistic => connection.can_starttls(),
            Starttls::Required => true,
        };
        if upgrade {
            let tls = TlsParameters::new(self.host.clone()).map_err(DirectError::Smtp)?;
            connection
                .starttls(tls, &self.hello)
                .await
                .map_err(DirectError::Smtp)?;
        }
        if let Some(credentials) = &self.credentials {
            connection
                .auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await
                .map_err(DirectError::Smtp)?;
        }
        Ok(connection)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(30);

    #[test]
    fn smtp_urls_are_read_as_lettre_reads_them() {
        let plain = Direct::from_url("smtp://127.0.0.1:2525", None, T).unwrap();
        let submission = Direct::from_url("smtp://mail.example.org?tls=required", None, T).unwrap();
        let maybe = Direct::from_url("smtp://mail.example.org?tls=opportunistic", None, T).unwrap();
        let named =
            Direct::from_url("smtp://u:p%40ss@mail.example.org/hr.example", None, T).unwrap();

        assert_eq!((plain.port, plain.starttls), (2525, Starttls::Never));
        assert_eq!(
            (submission.port, submission.starttls),
            (587, Starttls::Required)
        );
        assert_eq!(maybe.starttls, Starttls::Opportunistic);
        assert_eq!(named.port, 25);
        assert_eq!(named.hello, ClientId::Domain("hr.example".to_string()));
        assert_eq!(
            named.credentials,
            Some(Credentials::new("u".to_string(), "p@ss".to_string()))
        );
    }

    #[test]
    fn given_credentials_replace_those_in_the_url() {
        let given = Credentials::new("hr".to_string(), "given".to_string());

        let direct =
            Direct::from_url("smtp://u:p@mail.example.org", Some(given.clone()), T).unwrap();

        assert_eq!(direct.credentials, Some(given));
    }

    #[test]
    fn implicit_tls_and_unknown_modes_are_left_to_lettre() {
        assert!(Direct::from_url("smtps://mail.example.org", None, T).is_none());
        assert!(Direct::from_url("smtp://mail.example.org?tls=sometimes", None, T).is_none());
    }
}
