//! Admin sign-in: a bearer token whose SHA-256 is configured, sent as `Authorization: Bearer`
//! by API clients; and for the pages, a session started by signing in with that token, kept in
//! a secure, HTTP-only cookie.
//!
//! Only the token's hash is configured, so the configuration (and anyone who reads it) cannot
//! sign in; the comparison takes the same time whatever the token, and the token is never
//! logged. The cookie never holds the token: it holds a random session id (256 bits), of which
//! the database keeps only the SHA-256. A session ends [`SESSION_LIFETIME`] after sign-in,
//! after [`SESSION_IDLE`] without use, or when the admin signs out, which revokes it on the
//! server, so a copied cookie stops working too.
//!
//! A cookie goes along with every request the browser makes to the site, whoever's page asks
//! for it; so a request that is signed in by the cookie and changes something must also come
//! from this origin ([`cross_origin_form`]). Only a valid bearer token, which a browser never
//! adds by itself, exempts a request from that check.

use std::time::Duration;

use aws_lc_rs::digest;
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::{HeaderMap, HeaderValue, Method};
use chrono::{DateTime, Utc};

use crate::config::ServerSettings;
use crate::store::AdminSession;

/// The cookie the pages keep the session id in.
pub const COOKIE_NAME: &str = "hrsync_admin";

/// How long a session lasts at most, however often it is used: a working day.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);
/// How long a session may go unused before it ends.
pub const SESSION_IDLE: Duration = Duration::from_secs(30 * 60);
/// How stale a session's `last_seen_at` may get before a request writes it again: the idle
/// timeout needs minute precision, not a database write per request.
pub const SESSION_TOUCH_EVERY: Duration = Duration::from_secs(60);

pub use crate::domain::CONFIGURED_ADMIN;

/// The configured admin token hash, if one is configured. Named admins (`hrsync admins add`)
/// have tokens of their own, kept in the database.
#[derive(Clone)]
pub struct AdminToken {
    hash: Option<[u8; 32]>,
}

impl AdminToken {
    /// Reads `server.admin_token_sha256`, which may be left out when named admins sign in
    /// instead (`serve` checks that someone can).
    pub fn from_settings(server: &ServerSettings) -> anyhow::Result<AdminToken> {
        match server.admin_token_sha256.as_deref() {
            Some(hex) => AdminToken::from_hex(hex),
            None => Ok(AdminToken { hash: None }),
        }
    }

    /// Whether a token is configured.
    pub fn is_configured(&self) -> bool {
        self.hash.is_some()
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
        Ok(AdminToken { hash: Some(hash) })
    }

    /// The hash of a token, as configured: 64 hex digits.
    pub fn hash_hex(token: &str) -> String {
        crate::secret::sha256_hex(token)
    }

    /// Whether `token` is the configured admin token, compared in constant time.
    pub fn accepts(&self, token: &str) -> bool {
        let Some(hash) = &self.hash else {
            return false;
        };
        let given = digest::digest(&digest::SHA256, token.as_bytes());
        given
            .as_ref()
            .iter()
            .zip(hash.iter())
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
    }

    /// Whether the request carries the admin token as `Authorization: Bearer`. Any other
    /// authorization (a reverse proxy's Basic credentials, which the browser resends by
    /// itself) says nothing about who asked.
    pub fn admits_bearer(&self, headers: &HeaderMap) -> bool {
        bearer(headers).is_some_and(|token| self.accepts(token))
    }
}

/// The bearer token of `Authorization: Bearer <token>` (the scheme in any case, RFC 9110
/// §11.1), if the request has one.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The session id in the sign-in cookie, if there is one that looks like an id (64 hex
/// digits); anything else is not worth a database lookup.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value.trim())
        .filter(|value| value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Whether the request has a sign-in cookie at all, good or not (to clear a stale one).
pub fn has_cookie(headers: &HeaderMap) -> bool {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .any(|(name, value)| name == COOKIE_NAME && !value.is_empty())
}

/// A new session id: 256 random bits, hex. Only its [`session_hash`] is stored.
pub fn new_session_id() -> anyhow::Result<String> {
    crate::secret::random_token().map_err(|_| anyhow::anyhow!("no randomness available"))
}

/// The form a session id is stored in: its SHA-256, hex.
pub fn session_hash(id: &str) -> String {
    AdminToken::hash_hex(id)
}

/// What a stored session is worth at a moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionCheck {
    /// Good; `touch` when its `last_seen_at` should be written again.
    Valid { touch: bool },
    /// Past its absolute end.
    Expired,
    /// Unused for longer than the idle timeout.
    Idle,
    /// Signed out.
    Revoked,
}

/// How long sessions last; [`SessionPolicy::default`] is the documented one.
#[derive(Clone, Copy, Debug)]
pub struct SessionPolicy {
    pub lifetime: Duration,
    pub idle: Duration,
    pub touch_every: Duration,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        SessionPolicy {
            lifetime: SESSION_LIFETIME,
            idle: SESSION_IDLE,
            touch_every: SESSION_TOUCH_EVERY,
        }
    }
}

impl SessionPolicy {
    /// When a session started at `now` ends at the latest.
    pub fn expires_at(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + chrono_duration(self.lifetime)
    }

    /// Sessions last seen at or before this are idle at `now`.
    pub fn idle_since(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now - chrono_duration(self.idle)
    }

    /// Whether `session` may be used at `now`.
    pub fn check(&self, session: &AdminSession, now: DateTime<Utc>) -> SessionCheck {
        if session.revoked_at.is_some() {
            SessionCheck::Revoked
        } else if session.expires_at <= now {
            SessionCheck::Expired
        } else if session.last_seen_at <= self.idle_since(now) {
            SessionCheck::Idle
        } else {
            SessionCheck::Valid {
                touch: now - session.last_seen_at >= chrono_duration(self.touch_every),
            }
        }
    }
}

fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// Whether a request that changes something comes from another site or origin. Call it for
/// every request that is not signed in by a valid bearer token. `SameSite=Strict` keeps the
/// cookie from other *sites*, but a page on a sibling subdomain (or another port of localhost)
/// is the same site; the browser's `Sec-Fetch-Site`, or else its `Origin` against `Host`,
/// tells those apart. Reads (GET, HEAD) change nothing. Other headers (an `Authorization:
/// Basic` a proxy asked for, say) do not matter: the browser sends those along by itself.
pub fn cross_origin_form(method: &Method, headers: &HeaderMap) -> bool {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
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

/// The `Set-Cookie` value that keeps session `id`; it lasts as long as a session can.
pub fn sign_in_cookie(id: &str, secure: bool) -> String {
    format!(
        "{COOKIE_NAME}={id}; Path=/; HttpOnly; SameSite=Strict{}; Max-Age={}",
        if secure { "; Secure" } else { "" },
        SESSION_LIFETIME.as_secs()
    )
}

/// The `Set-Cookie` value that forgets the session cookie.
pub fn sign_out_cookie(secure: bool) -> String {
    format!(
        "{COOKIE_NAME}=; Path=/; HttpOnly; SameSite=Strict{}; Max-Age=0",
        if secure { "; Secure" } else { "" }
    )
}

/// A new admin token (256 random bits, hex) for `hrsync admin-token`.
pub fn new_admin_token() -> anyhow::Result<String> {
    new_session_id()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn a_form_from_another_origin_is_refused_and_a_same_origin_one_is_not() {
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
        // Reads change nothing.
        assert!(!cross_origin_form(
            &Method::GET,
            &headers(&[("sec-fetch-site", "cross-site")])
        ));
    }

    #[test]
    fn an_authorization_header_does_not_make_a_cross_origin_form_acceptable() {
        // A proxy's Basic credentials, or any bearer at all: the browser sends them by itself,
        // so only the caller (after checking the bearer) may skip this check.
        for authorization in ["Basic YWRtaW46YWRtaW4=", "Bearer not-checked-here"] {
            assert!(cross_origin_form(
                &Method::POST,
                &headers(&[
                    ("authorization", authorization),
                    ("sec-fetch-site", "same-site")
                ])
            ));
        }
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
    fn only_a_bearer_authorization_presents_the_token() {
        assert!(token().admits_bearer(&headers(&[("authorization", "Bearer s3cret-admin")])));
        assert!(token().admits_bearer(&headers(&[("authorization", "bearer s3cret-admin")])));
        assert!(!token().admits_bearer(&headers(&[("authorization", "Basic s3cret-admin")])));
        assert!(!token().admits_bearer(&headers(&[("authorization", "Bearer wrong")])));
        // The cookie holds a session id now, never the token.
        assert!(!token().admits_bearer(&headers(&[("cookie", "hrsync_admin=s3cret-admin")])));
    }

    #[test]
    fn the_session_cookie_is_read_only_when_it_looks_like_a_session_id() {
        let id = "ab".repeat(32);
        let mut map = HeaderMap::new();
        map.insert(
            COOKIE,
            HeaderValue::from_str(&format!("theme=dark; hrsync_admin={id}")).unwrap(),
        );
        assert_eq!(session_cookie(&map), Some(id.as_str()));
        assert_eq!(
            session_cookie(&headers(&[("cookie", "hrsync_admin=s3cret-admin")])),
            None
        );
        assert!(has_cookie(&headers(&[(
            "cookie",
            "hrsync_admin=s3cret-admin"
        )])));
        assert!(!has_cookie(&headers(&[("cookie", "theme=dark")])));
    }

    #[test]
    fn session_ids_are_256_random_bits_and_only_their_hash_is_kept() {
        let a = new_session_id().unwrap();
        let b = new_session_id().unwrap();
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert_ne!(session_hash(&a), a);
        assert_eq!(session_hash(&a).len(), 64);
    }

    fn session(started_minutes_ago: i64, seen_minutes_ago: i64) -> (AdminSession, DateTime<Utc>) {
        let now = Utc::now();
        let created = now - chrono::Duration::minutes(started_minutes_ago);
        let session = AdminSession {
            created_at: created,
            last_seen_at: now - chrono::Duration::minutes(seen_minutes_ago),
            expires_at: SessionPolicy::default().expires_at(created),
            revoked_at: None,
            admin_name: None,
        };
        (session, now)
    }

    #[test]
    fn a_session_ends_when_idle_expired_or_revoked_and_is_touched_at_most_once_a_minute() {
        let policy = SessionPolicy::default();

        let (fresh, now) = session(5, 0);
        let (seen_earlier, _) = session(5, 2);
        let (idle, _) = session(60, 31);
        let (expired, _) = session(12 * 60 + 1, 0);
        let (mut revoked, _) = session(5, 0);
        revoked.revoked_at = Some(now);

        assert_eq!(
            policy.check(&fresh, now),
            SessionCheck::Valid { touch: false }
        );
        assert_eq!(
            policy.check(&seen_earlier, now),
            SessionCheck::Valid { touch: true }
        );
        assert_eq!(policy.check(&idle, now), SessionCheck::Idle);
        assert_eq!(policy.check(&expired, now), SessionCheck::Expired);
        assert_eq!(policy.check(&revoked, now), SessionCheck::Revoked);
    }

    #[test]
    fn a_hash_that_is_not_a_sha256_is_refused() {
        assert!(AdminToken::from_hex("abc").is_err());
        assert!(AdminToken::from_hex(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn the_sign_in_cookie_is_http_only_strict_secure_and_lasts_a_session() {
        let cookie = sign_in_cookie("t", true);
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
        assert!(cookie.contains("; Secure"));
        assert!(cookie.contains("Max-Age=43200"), "{cookie}");
    }
}
