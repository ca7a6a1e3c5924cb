//! Redaction: how URLs, error texts, request descriptions and bodies are shown without the
//! credentials they may carry.
//!
//! Secrets come from environment variables and tokens from token endpoints; neither may reach
//! an error, a log line or a raw dump. URLs are shown without their query string (API keys
//! often travel there), every secret value and token received is replaced wherever it
//! appears, and credential headers and credential-like query parameters are hidden by name,
//! whatever they hold.

use secrecy::ExposeSecret;

use super::HttpSource;

/// Header names whose values are credentials, whatever they hold.
const CREDENTIAL_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "api-key",
    "apikey",
    "x-auth-token",
    "x-access-token",
];

/// Parts of query parameter names that mark a credential.
const CREDENTIAL_PARAMS: &[&str] = &["key", "token", "secret", "password", "signature", "sig"];

const REDACTED: &str = "[redacted]";

impl HttpSource {
    /// Every secret value and token received, longest first, for redaction.
    fn secret_values(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .secrets
            .values()
            .map(|s| s.expose_secret().to_string())
            .collect();
        if let Ok(tokens) = self.seen_tokens.lock() {
            all.extend(tokens.iter().map(|t| t.expose_secret().to_string()));
        }
        // A secret of a few characters would blot out half a page; headers holding one are
        // redacted by name all the same.
        all.retain(|s| s.chars().count() >= 4);
        all.sort_by_key(|s| std::cmp::Reverse(s.len()));
        all
    }

    /// A text with every secret value and token replaced by `[redacted]`.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for secret in self.secret_values() {
            out = out.replace(&secret, REDACTED);
        }
        out
    }

    /// A URL as it may be shown: no query string, and no secret in its path either.
    pub(super) fn shown(&self, url: &str) -> String {
        self.redact(&shown_url(url))
    }

    /// A reqwest error's text as it may be shown.
    pub(super) fn error_text(&self, e: &reqwest::Error) -> String {
        self.redact(&without_url(e))
    }

    /// The request line and headers of a request, credentials redacted.
    pub(super) fn describe_request(
        &self,
        request: &reqwest::Request,
        credential: Option<&str>,
    ) -> String {
        let mut url = request.url().clone();
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let lower = k.to_lowercase();
                let hidden =
                    CREDENTIAL_PARAMS.iter().any(|p| lower.contains(p)) || self.redact(&v) != v;
                (
                    k.into_owned(),
                    if hidden {
                        REDACTED.to_string()
                    } else {
                        v.into_owned()
                    },
                )
            })
            .collect();
        if pairs.is_empty() {
            url.set_query(None);
        } else {
            url.query_pairs_mut().clear().extend_pairs(pairs);
        }
        let mut out = format!("{} {}\n", request.method(), url);
        out.push_str(&self.describe_headers(request.headers(), credential));
        out
    }

    /// One `name: value` line per header, with credential headers (by name, by the
    /// definition's own credential header, or by holding a secret) shown as `[redacted]`.
    pub(super) fn describe_headers(
        &self,
        headers: &reqwest::header::HeaderMap,
        credential: Option<&str>,
    ) -> String {
        let mut out = String::new();
        for (name, value) in headers {
            let text = value.to_str().unwrap_or("(not text)");
            let hidden = value.is_sensitive()
                || CREDENTIAL_HEADERS.contains(&name.as_str())
                || credential.is_some_and(|c| c.eq_ignore_ascii_case(name.as_str()))
                || self.redact(text) != text;
            let shown = if hidden { REDACTED } else { text };
            out.push_str(&format!("{name}: {shown}\n"));
        }
        out
    }
}

/// A URL as it may be shown: without its query string, which may carry keys.
fn shown_url(url: &str) -> String {
    url.split_once('?')
        .map(|(base, _)| base)
        .unwrap_or(url)
        .to_string()
}

/// A reqwest error's text without the URL it may carry (with its query string), followed by
/// what failed underneath: reqwest's own text stops at "error sending request".
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), &shown_url(url.as_str()));
    }
    if let Some(cause) = what_failed(e) {
        text.push_str(": ");
        text.push_str(&cause);
    }
    text
}

/// What failed under a request that got no answer, in words: refused, the host name not
/// found, TLS, or no answer in time; with the deepest cause's own text.
fn what_failed(e: &reqwest::Error) -> Option<String> {
    let mut deepest: Option<String> = None;
    let mut refused = false;
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            refused |= io.kind() == std::io::ErrorKind::ConnectionRefused;
        }
        deepest = Some(cause.to_string());
        source = cause.source();
    }
    let detail = deepest.unwrap_or_default();
    let lower = detail.to_lowercase();
    let what = if e.is_timeout() {
        "no answer in time"
    } else if refused || lower.contains("refused") {
        "connection refused"
    } else if ["dns", "lookup", "resolve", "name or service not known"]
        .iter()
        .any(|w| lower.contains(w))
    {
        "the host name was not found"
    } else if ["certificate", "tls", "handshake"]
        .iter()
        .any(|w| lower.contains(w))
    {
        "TLS failed"
    } else if e.is_connect() {
        "cannot connect"
    } else if detail.is_empty() {
        return None;
    } else {
        return Some(detail);
    };
    Some(if detail.is_empty() {
        what.to_string()
    } else {
        format!("{what} ({detail})")
    })
}
