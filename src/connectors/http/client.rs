//! Requests: one page asked for, paced, retried and read within bounds.
//!
//! A page request is retried on timeouts, connection errors, 429 and 5xx with exponential
//! backoff and jitter, honouring `Retry-After` up to two minutes; requests keep to
//! `limits.requests_per_minute`; an answer larger than `limits.max_response_bytes` fails the
//! fetch; and a redirect is never followed ([`build_client`]), so a 3xx fails the fetch instead
//! of carrying credentials elsewhere.

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use serde_json::Value;
use tokio::time::Instant;

use super::definition::{Limits, Method};
use super::paging::link_next;
use super::{Endpoint, FetchError, FetchOptions, HttpSource};

/// The longest a `Retry-After` is waited for; a system asking for more is asked again sooner,
/// and fails the fetch when the retries run out.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);

/// One failed attempt at a request, and whether trying again may help.
#[derive(Debug)]
pub(super) struct Attempt {
    pub(super) error: FetchError,
    pub(super) retryable: bool,
    pub(super) retry_after: Option<Duration>,
}

impl Attempt {
    pub(super) fn new(error: FetchError, retryable: bool) -> Attempt {
        Attempt {
            error,
            retryable,
            retry_after: None,
        }
    }
}

/// One page as received.
pub(super) struct PageOut {
    pub(super) body: Value,
    /// The `rel="next"` URL of the `Link` header, if any.
    pub(super) link_next: Option<String>,
}

/// An answer as received: its status, headers and body (within the size cap).
struct Received {
    status: reqwest::StatusCode,
    headers: reqwest::header::HeaderMap,
    bytes: Vec<u8>,
}

/// Why an answer's body could not be read whole.
pub(super) enum BodyError {
    /// The connection broke off.
    BrokeOff(reqwest::Error),
    /// It is larger than `limits.max_response_bytes`.
    TooLarge,
}

/// How long connecting to an HR system may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The HTTP client of a source: the definition's timeout, hrsync's user agent, no redirects.
pub(super) fn build_client(limits: &Limits) -> reqwest::Result<reqwest::Client> {
    let timeout = Duration::from_secs(limits.timeout_seconds);
    reqwest::Client::builder()
        .timeout(timeout)
        // A system that does not take the connection is said at once, not after the whole
        // request's timeout (15 minutes for some systems' large pages).
        .connect_timeout(CONNECT_TIMEOUT.min(timeout))
        .user_agent(concat!("hrsync/", env!("CARGO_PKG_VERSION")))
        // A redirect is not followed: reqwest would carry custom credential headers and a
        // token request's body to wherever it points. A 3xx fails the fetch instead.
        .redirect(reqwest::redirect::Policy::none())
        .build()
}

impl HttpSource {
    /// One page, retried on timeouts, connection errors, 429 and 5xx.
    pub(super) async fn get_page(
        &self,
        ep: &Endpoint<'_>,
        url: &str,
        query: &[(String, String)],
        page: u32,
        options: &FetchOptions,
    ) -> Result<PageOut, FetchError> {
        let limits = &self.definition.limits;
        let backoff = ExponentialBuilder::default()
            .with_jitter()
            .with_min_delay(Duration::from_millis(limits.retry_after_ms))
            .with_max_delay(Duration::from_secs(60))
            .with_max_times(limits.retries);
        let attempt = || self.try_page(ep, url, query, page, options);
        attempt
            .retry(backoff)
            .when(|a: &Attempt| a.retryable)
            .adjust(|a: &Attempt, planned| {
                planned.map(|d| a.retry_after.map_or(d, |wait| wait.min(MAX_RETRY_AFTER)))
            })
            .notify(|a: &Attempt, delay| {
                crate::metrics::http_retry(&self.definition.name);
                tracing::warn!(page, what = %ep.what, delay_ms = delay.as_millis() as u64, error = %a.error, "Request failed; retrying");
            })
            .await
            .map_err(|a| a.error)
    }

    /// One attempt at a page: paced, with its credentials, read within the size cap.
    async fn try_page(
        &self,
        ep: &Endpoint<'_>,
        url: &str,
        query: &[(String, String)],
        page: u32,
        options: &FetchOptions,
    ) -> Result<PageOut, Attempt> {
        let def = &self.definition;
        self.pace().await;
        let (request, credential_header, reused_token) =
            self.page_request(ep, url, query, page).await?;
        let shown = self.shown(url);
        let dump_head = options
            .raw_dir
            .as_ref()
            .map(|_| self.describe_request(&request, credential_header));
        let received = self.receive(ep, page, &shown, request).await?;
        if !received.status.is_success() {
            return Err(self.refused(ep, page, shown, &received, reused_token).await);
        }
        let Received {
            status,
            headers,
            bytes,
        } = received;
        // A 200 that is cut short or is a maintenance page is worth another try within the
        // retry budget; a system that never answers JSON fails once the budget is spent.
        let body: Value = serde_json::from_slice(&bytes).map_err(|e| {
            let kind = headers
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(|t| format!(" ({t})"))
                .unwrap_or_default();
            Attempt::new(
                FetchError::Response {
                    system: def.name.clone(),
                    what: ep.what.clone(),
                    page,
                    message: format!("the response{kind} is not JSON: {e}"),
                },
                true,
            )
        })?;
        if let (Some(dir), Some(head)) = (&options.raw_dir, dump_head) {
            self.dump(dir, ep, page, head, (status.as_u16(), &headers, &bytes))
                .map_err(|e| Attempt::new(e, false))?;
        }
        let link_next = headers
            .get_all(reqwest::header::LINK)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(link_next);
        Ok(PageOut { body, link_next })
    }

    /// The request for a page: method, query, headers, the body (with an incremental fetch's
    /// members merged in) and the credentials. Also the header that carries the credentials
    /// and whether a cached token was used, as [`HttpSource::authenticate`] says.
    async fn page_request(
        &self,
        ep: &Endpoint<'_>,
        url: &str,
        query: &[(String, String)],
        page: u32,
    ) -> Result<(reqwest::Request, Option<&str>, bool), Attempt> {
        let setup = |message: String| Attempt::new(self.setup(message), false);
        let vars = &ep.extra_vars;
        let mut request = match ep.request.method {
            Method::Get => self.client.get(url),
            Method::Post => self.client.post(url),
        }
        .query(query);
        if !ep
            .request
            .headers
            .keys()
            .any(|k| k.eq_ignore_ascii_case("accept"))
        {
            request = request.header("Accept", "application/json");
        }
        for (name, value) in &ep.request.headers {
            request = request.header(name.as_str(), self.render(value, vars).map_err(setup)?);
        }
        let body = match (&ep.request.body, &ep.extra_body) {
            (None, None) => None,
            (Some(b), None) | (None, Some(b)) => Some(b.clone()),
            (Some(b), Some(extra)) => Some(merged(b, extra)),
        };
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/json")
                .body(self.render_json(&body, vars).map_err(setup)?.to_string());
        }
        let (request, credential_header, reused_token) =
            self.authenticate(request, ep, page).await?;
        let request = request
            .build()
            .map_err(|e| setup(format!("cannot build the request: {}", self.error_text(&e))))?;
        Ok((request, credential_header, reused_token))
    }

    /// Sends a request and reads the answer, up to `limits.max_response_bytes`.
    async fn receive(
        &self,
        ep: &Endpoint<'_>,
        page: u32,
        shown: &str,
        request: reqwest::Request,
    ) -> Result<Received, Attempt> {
        let def = &self.definition;
        let transport = |message: String| FetchError::Transport {
            system: def.name.clone(),
            what: ep.what.clone(),
            page,
            url: shown.to_string(),
            message,
        };
        let mut response = self.client.execute(request).await.map_err(|e| {
            let retryable = e.is_timeout() || e.is_connect() || e.is_request();
            Attempt::new(transport(self.error_text(&e)), retryable)
        })?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = read_capped(&mut response, def.limits.max_response_bytes)
            .await
            .map_err(|e| match e {
                BodyError::BrokeOff(e) => Attempt::new(transport(self.error_text(&e)), true),
                BodyError::TooLarge => Attempt::new(
                    FetchError::Response {
                        system: def.name.clone(),
                        what: ep.what.clone(),
                        page,
                        message: format!(
                            "the response is larger than {} bytes (limits.max_response_bytes)",
                            def.limits.max_response_bytes
                        ),
                    },
                    false,
                ),
            })?;
        Ok(Received {
            status,
            headers,
            bytes,
        })
    }

    /// The failed attempt an answer other than 2xx makes: worth retrying for 429 and 5xx
    /// (after its `Retry-After`, where it has one), and for a 401 to a cached token. The body
    /// is shown redacted and cut short.
    async fn refused(
        &self,
        ep: &Endpoint<'_>,
        page: u32,
        shown: String,
        received: &Received,
        reused_token: bool,
    ) -> Attempt {
        let status = received.status;
        let retry_after = received
            .headers
            .get("Retry-After")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        // A cached token the system no longer accepts (revoked, or expired early) is
        // dropped and the page asked for once more with a new one.
        let stale_token = status.as_u16() == 401 && reused_token;
        if stale_token {
            self.forget_token().await;
        }
        let retryable = status.as_u16() == 429 || status.is_server_error() || stale_token;
        let body: String = self
            .redact(&String::from_utf8_lossy(&received.bytes))
            .chars()
            .take(200)
            .collect();
        Attempt {
            error: FetchError::Status {
                system: self.definition.name.clone(),
                what: ep.what.clone(),
                page,
                url: shown,
                status: status.as_u16(),
                body,
            },
            retryable,
            retry_after,
        }
    }

    /// Waits so that requests keep to `limits.requests_per_minute`.
    async fn pace(&self) {
        let Some(rpm) = self
            .definition
            .limits
            .requests_per_minute
            .filter(|r| *r > 0)
        else {
            return;
        };
        let gap = Duration::from_secs_f64(60.0 / f64::from(rpm));
        let mut last = self.last_request.lock().await;
        if let Some(at) = *last {
            tokio::time::sleep_until(at + gap).await;
        }
        *last = Some(Instant::now());
    }
}

/// Reads an answer's body chunk by chunk, and stops as soon as it is larger than `max` bytes:
/// a system that sends without end must not fill the memory.
pub(super) async fn read_capped(
    response: &mut reqwest::Response,
    max: u64,
) -> Result<Vec<u8>, BodyError> {
    let mut bytes: Vec<u8> = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::BrokeOff)? {
        bytes.extend_from_slice(&chunk);
        if bytes.len() as u64 > max {
            return Err(BodyError::TooLarge);
        }
    }
    Ok(bytes)
}

/// `base` with the members of `extra` merged in, recursively; `extra` wins.
pub(super) fn merged(base: &Value, extra: &Value) -> Value {
    match (base, extra) {
        (Value::Object(b), Value::Object(e)) => {
            let mut out = b.clone();
            for (k, v) in e {
                let value = match out.get(k) {
                    Some(existing) => merged(existing, v),
                    None => v.clone(),
                };
                out.insert(k.clone(), value);
            }
            Value::Object(out)
        }
        (_, e) => e.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incremental_body_is_merged_into_the_search_body() {
        let base = serde_json::json!({"fields": ["id"], "filters": {"status": "any"}});
        let extra = serde_json::json!({"filters": {"lastChanged": {"value": "{since}"}}});

        assert_eq!(
            merged(&base, &extra),
            serde_json::json!({"fields": ["id"], "filters": {"status": "any", "lastChanged": {"value": "{since}"}}})
        );
    }
}
