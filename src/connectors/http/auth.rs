//! Credentials: how a request authenticates, and the token of a token endpoint with its cache.
//!
//! Basic, bearer and header credentials are rendered from the instance's secrets on every
//! request. A token endpoint (OAuth2 client credentials, or a vendor's own such as Personio's
//! `/auth`) is asked once and its token cached until a minute before it runs out; a cached token
//! the system refuses with 401 is forgotten, so the page is asked for again with a new one.
//! Every token received is remembered for redaction: its answer is never shown in an error or a
//! dump, because it holds the token.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::RequestBuilder;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tokio::time::Instant;

use super::client::{Attempt, BodyError, read_capped};
use super::definition::{Auth, Method};
use super::{Endpoint, FetchError, HttpSource};

impl HttpSource {
    /// Adds the definition's credentials to a request. Also returns the header that carries
    /// them, which raw dumps hide by name, and whether the token came from the cache (a 401
    /// then means it went stale).
    pub(super) async fn authenticate(
        &self,
        request: RequestBuilder,
        ep: &Endpoint<'_>,
        page: u32,
    ) -> Result<(RequestBuilder, Option<&str>, bool), Attempt> {
        let setup = |message: String| Attempt::new(self.setup(message), false);
        let vars = &ep.extra_vars;
        let mut credential_header: Option<&str> = None;
        let mut reused_token = false;
        let request = match &self.definition.auth {
            Auth::None => request,
            Auth::Basic { username, password } => request.basic_auth(
                self.render(username, vars).map_err(setup)?,
                Some(self.render(password, vars).map_err(setup)?),
            ),
            Auth::Bearer { token } => request.bearer_auth(self.render(token, vars).map_err(setup)?),
            Auth::Header { name, value } => {
                credential_header = Some(name);
                request.header(name.as_str(), self.render(value, vars).map_err(setup)?)
            }
            Auth::Token { header, value, .. } => {
                let (token, cached) = self.token(ep, page).await?;
                reused_token = cached;
                credential_header = Some(header);
                // `{token}` is not a variable: render the text around it, then put it in.
                let parts = value
                    .split("{token}")
                    .map(|part| self.render(part, vars))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(setup)?;
                request.header(header.as_str(), parts.join(token.expose_secret()))
            }
        };
        Ok((request, credential_header, reused_token))
    }

    /// The cached token, or a new one from the token endpoint. Also says whether the token
    /// came from the cache.
    async fn token(&self, ep: &Endpoint<'_>, page: u32) -> Result<(SecretString, bool), Attempt> {
        // The cache stays locked while a new token is asked for: pages read at once wait for
        // that one token instead of each asking for its own.
        let mut cached = self.token.lock().await;
        if let Some((token, until)) = cached.as_ref()
            && until.is_none_or(|until| Instant::now() < until)
        {
            return Ok((token.clone(), true));
        }
        let (token, until) = self.new_token(ep, page).await?;
        if let Ok(mut seen) = self.seen_tokens.lock() {
            seen.push(token.clone());
        }
        *cached = Some((token.clone(), until));
        Ok((token, false))
    }

    /// Forgets the cached token, so the next request asks for a new one.
    pub(super) async fn forget_token(&self) {
        *self.token.lock().await = None;
    }

    /// A token from the token endpoint, and when to renew it where the answer says how long
    /// it lasts. Its answer is never shown in an error or a dump: it holds the token.
    async fn new_token(
        &self,
        ep: &Endpoint<'_>,
        page: u32,
    ) -> Result<(SecretString, Option<Instant>), Attempt> {
        let Auth::Token {
            token_path,
            expires_in_path,
            rotated_secret,
            ..
        } = &self.definition.auth
        else {
            let message = "the definition's auth is not `token`".to_string();
            return Err(self.token_failure(ep, page, message, false));
        };
        let fail =
            |message: String, retryable: bool| self.token_failure(ep, page, message, retryable);
        let mut extra = BTreeMap::new();
        if let Some(assertion) = self.assertion(ep, page).await? {
            extra.insert("assertion".to_string(), assertion);
        }
        if let Some(rotated) = rotated_secret
            && let Some(newest) = self
                .newest_rotated(&rotated.name)
                .await
                .map_err(|m| fail(m, false))?
        {
            extra.insert(format!("secret:{}", rotated.name), newest);
        }
        let (request, shown) = self.token_request(&extra).map_err(|m| fail(m, false))?;
        let response = request.send().await.map_err(|e| {
            fail(
                format!(
                    "the token request to {shown} failed: {}",
                    self.error_text(&e)
                ),
                true,
            )
        })?;
        let status = response.status();
        if !status.is_success() {
            let retryable = status.as_u16() == 429 || status.is_server_error();
            return Err(fail(
                format!("the token request to {shown} answered {}", status.as_u16()),
                retryable,
            ));
        }
        let mut response = response;
        let bytes = read_capped(&mut response, self.definition.limits.max_response_bytes)
            .await
            .map_err(|e| match e {
                BodyError::BrokeOff(e) => fail(
                    format!(
                        "the token answer from {shown} broke off: {}",
                        self.error_text(&e)
                    ),
                    true,
                ),
                BodyError::TooLarge => fail(
                    format!(
                        "the token answer from {shown} is larger than limits.max_response_bytes"
                    ),
                    false,
                ),
            })?;
        let answer: Value = serde_json::from_slice(&bytes)
            .map_err(|_| fail(format!("the token answer from {shown} is not JSON"), false))?;
        let token = token_path
            .select(&answer)
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                fail(
                    format!("no token at `{token_path}` in the answer from {shown}"),
                    false,
                )
            })?;
        if let Some(rotated) = rotated_secret
            && let Some(new) = rotated
                .path
                .select(&answer)
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
        {
            self.keep_rotated(&rotated.name, new)
                .await
                .map_err(|m| fail(m, false))?;
        }
        // Renewed a minute before it runs out.
        let until = expires_in_path
            .as_ref()
            .and_then(|p| p.select(&answer))
            .and_then(|v| {
                v.as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            })
            .map(|seconds| Instant::now() + Duration::from_secs(seconds.saturating_sub(60)));
        Ok((SecretString::from(token.to_string()), until))
    }

    /// The newest value of a rotated secret: the one this source last received, else the one
    /// kept (sealed with the configured secret; one sealed with another, from before the
    /// configured secret was changed, is passed over), else `None` for the configured one.
    async fn newest_rotated(&self, name: &str) -> Result<Option<String>, String> {
        if let Some(newest) = self.rotated.lock().await.as_ref() {
            return Ok(Some(newest.expose_secret().to_string()));
        }
        let (Some(keeper), Some(configured)) = (&self.keeper, self.secrets.get(name)) else {
            return Ok(None);
        };
        let kept = keeper
            .kept(name)
            .await
            .map_err(|e| format!("cannot read the kept `{name}`: {e}"))?;
        let opened =
            kept.and_then(|sealed| crate::secret::open_sealed(configured.expose_secret(), &sealed));
        if let Some(value) = &opened
            && let Ok(mut seen) = self.seen_tokens.lock()
        {
            seen.push(SecretString::from(value.clone()));
        }
        Ok(opened)
    }

    /// Keeps the value a token answer gave for a rotated secret: for the rest of this fetch,
    /// and sealed with the keeper for the next. A value that cannot be kept fails the fetch:
    /// the one it replaced may no longer work, and ops must know now, not at the next run.
    async fn keep_rotated(&self, name: &str, value: &str) -> Result<(), String> {
        let secret = SecretString::from(value.to_string());
        if let Ok(mut seen) = self.seen_tokens.lock() {
            seen.push(secret.clone());
        }
        *self.rotated.lock().await = Some(secret);
        let (Some(keeper), Some(configured)) = (&self.keeper, self.secrets.get(name)) else {
            return Ok(());
        };
        let sealed = crate::secret::seal(configured.expose_secret(), value)
            .map_err(|_| format!("cannot seal the new `{name}`"))?;
        keeper.keep(name, sealed).await.map_err(|e| {
            format!("the system replaced `{name}`, but the new one cannot be kept: {e}")
        })
    }

    /// The assertion the token request sends, where the definition asks for one first: the
    /// answer of `[auth.assertion]` as text, trimmed. It is a credential: it is redacted like
    /// a token and never shown.
    async fn assertion(&self, ep: &Endpoint<'_>, page: u32) -> Result<Option<String>, Attempt> {
        let Auth::Token {
            assertion: Some(spec),
            ..
        } = &self.definition.auth
        else {
            return Ok(None);
        };
        let fail =
            |message: String, retryable: bool| self.token_failure(ep, page, message, retryable);
        let none = BTreeMap::new();
        let (request, shown) = self
            .credential_request(
                &spec.url,
                spec.method,
                spec.body.as_ref(),
                &spec.form,
                &spec.headers,
                &none,
            )
            .map_err(|m| fail(m, false))?;
        let mut response = request.send().await.map_err(|e| {
            fail(
                format!(
                    "the assertion request to {shown} failed: {}",
                    self.error_text(&e)
                ),
                true,
            )
        })?;
        let status = response.status();
        if !status.is_success() {
            let retryable = status.as_u16() == 429 || status.is_server_error();
            return Err(fail(
                format!(
                    "the assertion request to {shown} answered {}",
                    status.as_u16()
                ),
                retryable,
            ));
        }
        let bytes = read_capped(&mut response, self.definition.limits.max_response_bytes)
            .await
            .map_err(|_| fail(format!("the assertion answer from {shown} broke off"), true))?;
        let text = String::from_utf8(bytes.to_vec())
            .map(|t| t.trim().to_string())
            .ok()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| fail(format!("the assertion answer from {shown} is empty"), false))?;
        if let Ok(mut seen) = self.seen_tokens.lock() {
            seen.push(SecretString::from(text.clone()));
        }
        Ok(Some(text))
    }

    /// The request to the token endpoint, and its URL as it may be shown; or why it cannot
    /// be made. `extra` holds `{assertion}` where there is one.
    fn token_request(
        &self,
        extra: &BTreeMap<String, String>,
    ) -> Result<(RequestBuilder, String), String> {
        let Auth::Token {
            url,
            method,
            body,
            form,
            headers,
            ..
        } = &self.definition.auth
        else {
            return Err("the definition's auth is not `token`".to_string());
        };
        self.credential_request(url, *method, body.as_ref(), form, headers, extra)
            .map(|(request, shown)| (request.header("Accept", "application/json"), shown))
    }

    /// A request for a credential (a token or an assertion), its templates filled.
    fn credential_request(
        &self,
        url: &str,
        method: Method,
        body: Option<&Value>,
        form: &BTreeMap<String, String>,
        headers: &BTreeMap<String, String>,
        extra: &BTreeMap<String, String>,
    ) -> Result<(RequestBuilder, String), String> {
        let url = self.render(url, extra)?;
        let mut request = match method {
            Method::Get => self.client.get(&url),
            Method::Post => self.client.post(&url),
        };
        for (name, value) in headers {
            request = request.header(name.as_str(), self.render(value, extra)?);
        }
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/json")
                .body(self.render_json(body, extra)?.to_string());
        }
        if !form.is_empty() {
            let form: Vec<(String, String)> = form
                .iter()
                .map(|(k, v)| Ok((k.clone(), self.render(v, extra)?)))
                .collect::<Result<_, String>>()?;
            request = request.form(&form);
        }
        Ok((request, self.shown(&url)))
    }

    /// A failed token request, as a failed attempt at the page that needed the token.
    fn token_failure(
        &self,
        ep: &Endpoint<'_>,
        page: u32,
        message: String,
        retryable: bool,
    ) -> Attempt {
        Attempt::new(
            FetchError::Response {
                system: self.definition.name.clone(),
                what: ep.what.clone(),
                page,
                message,
            },
            retryable,
        )
    }
}
