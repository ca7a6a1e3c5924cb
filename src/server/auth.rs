//! Admin sign-in: a bearer token whose SHA-256 is configured, sent as `Authorization: Bearer`
//! by API clients or kept in a secure, HTTP-only cookie by the pages.
//!
//! Only the hash is configured, so the configuration (and anyone who reads it) cannot sign in;
//! the comparison takes the same time whatever the token, and the token is never logged.

use aws_lc_rs::digest;
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::{HeaderMap, HeaderValue, Method};

use crate::config::ServerSettings;

/// The cookie the pages keep the token in.
pub const COOKIE_NAME: &str = "hrsync_admin";

/// The configured admin token hash.
#[derive(Clone)]
pub struct AdminToken {
    hash: [u8; 32],
}

impl AdminToken {
    /// Reads `server.admin_token_sha256`; `serve` does not start without it.
    pub fn from_settings(server: &ServerSettings) -> anyhow::Result<AdminToken> {
        let hex = server.admin_token_sha256.as_deref().ok_or_else(|| {
            anyhow::anyhow!(
                "server.admin_token_sha256 is not set: the admin API and pages need it. Run `hrsync admin-token` to make a token and its hash"
            )
        })?;
        AdminToken::from_hex(hex)
    }

    /// From the 64 hex digits of a SHA-256.
    pub fn from_hex(hex: &str) -> anyhow::Result<AdminToken> {
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| {
                hex.get(i..i + 2)
                    .and_then(|b| u8::from_str_radix(b, 16).ok())
            })
            .collect::<Option<_>>()
            .ok_or_else(|| anyhow::anyhow!("server.admin_token_sha256 is not hex"))?;
        let hash: [u8; 32] = bytes.try_into().map_err(|_| {
            anyhow::anyhow!("server.admin_token_sha256 must be 64 hex digits (a SHA-256)")
        })?;
        Ok(AdminToken { hash })
    }

    /// The hash of a token, as configured: 64 hex digits.
    pub fn hash_hex(token: &str) -> String {
        digest::digest(&digest::SHA256, token.as_bytes())
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Whether `token` is the admin token, compared in constant time.
    pub fn accepts(&self, token: &str) -> bool {
        let given = digest::digest(&digest::SHA256, token.as_bytes());
        given
            .as_ref()
            .iter()
            .zip(self.hash.iter())
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
    }

    /// Whether the request carries the admin token, as a bearer token or in the cookie.
    pub fn admits(&self, headers: &HeaderMap) -> bool {
        presented(headers).is_some_and(|token| self.accepts(&token))
    }
}

/// Whether a request that changes something, signed in only by the cookie, comes from another
/// site or origin. `SameSite=Strict` keeps the cookie from other *sites*, but a page on a
/// sibling subdomain (or another port of localhost) is the same site; the browser's
/// `Sec-Fetch-Site`, or else its `Origin` against `Host`, tells those apart. A request with a
/// bearer token is not a browser's form, and reads (GET, HEAD) change nothing.
pub fn cross_origin_form(method: &Method, headers: &HeaderMap) -> bool {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
        || headers.contains_key(AUTHORIZATION)
    {
        return false;
    }
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    if let Some(site) = text("sec-fetch-site") {
        return !matches!(site, "same-origin" | "none");
    }
    match (text("origin"), text("host")) {
        (Some(origin), Some(host)) => {
            let authority = origin
                .split_once("://")
                .map(|(_, rest)| rest)
                .unwrap_or(origin);
            !authority.eq_ignore_ascii_case(host)
        }
        (Some(_), None) => true,
        // No header says where it came from: not a modern browser's cross-origin form.
        (None, _) => false,
    }
}

/// The token a request presents: the bearer token, else the sign-in cookie.
fn presented(headers: &HeaderMap) -> Option<String> {
    if let Some(bearer) = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return Some(bearer.trim().to_string());
    }
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value.to_string())
}

/// The `Set-Cookie` value that signs in with `token`.
pub fn sign_in_cookie(token: &str, secure: bool) -> String {
    format!(
        "{COOKIE_NAME}={token}; Path=/; HttpOnly; SameSite=Strict{}; Max-Age=43200",
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that signs out.
pub fn sign_out_cookie(secure: bool) -> String {
    format!(
        "{COOKIE_NAME}=; Path=/; HttpOnly; SameSite=Strict{}; Max-Age=0",
        if secure { "; Secure" } else { "" }
    )
}

/// A new admin token (256 random bits, hex) for `hrsync admin-token`.
pub fn new_admin_token() -> anyhow::Result<String> {
    crate::mail::outbox::new_token().map_err(|_| anyhow::anyhow!("no randomness available"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn a_cookie_form_from_another_origin_is_refused_and_a_same_origin_one_is_not() {
        let post = Method::POST;
        // A sibling subdomain is the same site, so the cookie goes along; the browser says
        // the origin differs.
        assert!(cross_origin_form(
            &post,
            &headers(&[("sec-fetch-site", "same-site")])
        ));
        assert!(cross_origin_form(
            &post,
            &headers(&[
                ("origin", "https://intranet.acme.example"),
                ("host", "hrsync.acme.example")
            ])
        ));
        assert!(!cross_origin_form(
            &post,
            &headers(&[("sec-fetch-site", "same-origin")])
        ));
        assert!(!cross_origin_form(
            &post,
            &headers(&[
                ("origin", "https://hrsync.acme.example"),
                ("host", "hrsync.acme.example")
            ])
        ));
        // Reads, and API clients with a bearer token, are not forms.
        assert!(!cross_origin_form(
            &Method::GET,
            &headers(&[("sec-fetch-site", "cross-site")])
        ));
        assert!(!cross_origin_form(
            &post,
            &headers(&[
                ("authorization", "Bearer x"),
                ("sec-fetch-site", "cross-site")
            ])
        ));
    }

    fn token() -> AdminToken {
        AdminToken::from_hex(&AdminToken::hash_hex("s3cret-admin")).unwrap()
    }

    #[test]
    fn the_configured_token_is_accepted_and_others_are_not() {
        assert!(token().accepts("s3cret-admin"));
        assert!(!token().accepts("s3cret-admiN"));
        assert!(!token().accepts(""));
    }

    #[test]
    fn a_request_may_present_the_token_as_bearer_or_in_the_cookie() {
        let mut bearer = HeaderMap::new();
        bearer.insert(
            AUTHORIZATION,
            HeaderValue::from_static("Bearer s3cret-admin"),
        );
        let mut cookie = HeaderMap::new();
        cookie.insert(
            COOKIE,
            HeaderValue::from_static("theme=dark; hrsync_admin=s3cret-admin"),
        );

        assert!(token().admits(&bearer));
        assert!(token().admits(&cookie));
        assert!(!token().admits(&HeaderMap::new()));
    }

    #[test]
    fn a_hash_that_is_not_a_sha256_is_refused() {
        assert!(AdminToken::from_hex("abc").is_err());
        assert!(AdminToken::from_hex(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn the_sign_in_cookie_is_http_only_strict_and_secure() {
        let cookie = sign_in_cookie("t", true);
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
        assert!(cookie.contains("; Secure"));
    }
}
