//! The `http` source kind: a declarative connector definition, and the engine that runs it.
//!
//! A definition (one TOML file per HR system in `connectors/`) says how to authenticate, what
//! to request, how the system pages, where the list of people is in a response, and how each
//! field is read ([`FieldMap`]). Values in the request may use the connector instance's
//! variables (`{subdomain}`) and secrets (`{secret:api_key}`); secrets come from environment
//! variables and never appear in errors or logs. A fetch is all or nothing: every page is read
//! (retrying timeouts, connection errors, 429 and 5xx with exponential backoff and jitter, and
//! honouring `Retry-After`), or the fetch fails and the run deactivates nobody.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::mapping::{FieldMap, JsonPath, MappingError};
use crate::domain::HrRecord;

/// A connector definition, as written in `connectors/<system>.toml`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    /// The HR system's name, for messages.
    pub name: String,
    /// Where its API documentation is.
    pub docs: Option<String>,
    /// Variables every instance must set, e.g. `subdomain`.
    #[serde(default)]
    pub variables: Vec<String>,
    /// Values of variables an instance may leave out, e.g. `base_url` of a cloud service.
    #[serde(default)]
    pub defaults: BTreeMap<String, String>,
    /// Secrets every instance must name an environment variable for, e.g. `api_key`.
    #[serde(default)]
    pub secrets: Vec<String>,
    pub auth: Auth,
    pub request: RequestSpec,
    #[serde(default)]
    pub pagination: Pagination,
    pub records: RecordsSpec,
    pub fields: FieldMap,
    /// When the manager field holds the system's own id of the manager (SCIM `id`, Personio
    /// and HiBob ids) rather than the employee id: the attribute that holds each person's own
    /// system id. After every page is read, managers are looked up through it.
    pub manager_by_attribute: Option<String>,
    #[serde(default)]
    pub limits: Limits,
}

/// How requests authenticate. Every text may use `{variable}` and `{secret:name}`.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Auth {
    None,
    /// HTTP basic; an API key as the user name is `username = "{secret:api_key}"`.
    Basic {
        username: String,
        password: String,
    },
    /// `Authorization: Bearer <token>`.
    Bearer {
        token: String,
    },
    /// Any header, e.g. `X-API-Key`.
    Header {
        name: String,
        value: String,
    },
    /// A token from a token endpoint (OAuth2 client credentials, or a vendor's own such as
    /// Personio's `/auth`), cached until it expires, then sent in a header.
    Token {
        url: String,
        #[serde(default = "post")]
        method: Method,
        /// A JSON body, e.g. `{ client_id = "{secret:client_id}", … }`.
        body: Option<Value>,
        /// A form body, e.g. OAuth2's `grant_type = "client_credentials"`.
        #[serde(default)]
        form: BTreeMap<String, String>,
        /// Where the token is in the answer: `access_token`, `data.token`.
        token_path: JsonPath,
        /// Where its lifetime in seconds is, if the answer says.
        expires_in_path: Option<JsonPath>,
        #[serde(default = "authorization")]
        header: String,
        /// The header's value; `{token}` is the token.
        #[serde(default = "bearer_token")]
        value: String,
    },
}

fn post() -> Method {
    Method::Post
}
fn authorization() -> String {
    "Authorization".to_string()
}
fn bearer_token() -> String {
    "Bearer {token}".to_string()
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    #[default]
    Get,
    Post,
}

/// The request for the first page.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestSpec {
    #[serde(default)]
    pub method: Method,
    pub url: String,
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A JSON body, for search endpoints that take a POST.
    pub body: Option<Value>,
}

/// How the system pages, and when the last page has come.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Pagination {
    /// One response holds everybody.
    #[default]
    None,
    /// `offset`/`limit` query parameters; a page with fewer records than `limit` is the last.
    Offset {
        offset_param: String,
        limit_param: String,
        limit: u32,
    },
    /// A page number and size; a page with fewer records than `size` is the last.
    Page {
        page_param: String,
        size_param: Option<String>,
        size: u32,
        #[serde(default = "one")]
        first: u32,
    },
    /// The next page's full URL is in the response body at `path`; none means the last page.
    NextLink { path: JsonPath },
    /// SCIM 2.0: `startIndex` and `count`, until `totalResults` records were read.
    Scim {
        #[serde(default = "scim_count")]
        count: u32,
    },
}

fn one() -> u32 {
    1
}
fn scim_count() -> u32 {
    100
}

/// Where the list of people is in a response.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordsSpec {
    /// The path to the array; empty when the response is the array.
    #[serde(default = "root")]
    pub path: JsonPath,
    /// A response without the list means an empty page (some systems leave the key out
    /// when there are no rows); otherwise a missing list is an error.
    #[serde(default)]
    pub missing_is_empty: bool,
}

fn root() -> JsonPath {
    JsonPath::parse("").unwrap_or_else(|_| unreachable!("the empty path parses"))
}

/// Limits that keep a fetch bounded and polite.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// At most this many requests per minute (Personio allows 300, HiBob 50).
    pub requests_per_minute: Option<u32>,
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    #[serde(default = "default_max_pages")]
    pub max_pages: u32,
    #[serde(default = "default_max_bytes")]
    pub max_response_bytes: u64,
    /// Retries of one request before the fetch fails.
    #[serde(default = "default_retries")]
    pub retries: usize,
    /// The first retry's delay; it doubles, with jitter, up to 60 seconds.
    #[serde(default = "default_retry_ms")]
    pub retry_after_ms: u64,
}

fn default_timeout() -> u64 {
    30
}
fn default_max_pages() -> u32 {
    10_000
}
fn default_max_bytes() -> u64 {
    64 * 1024 * 1024
}
fn default_retries() -> usize {
    6
}
fn default_retry_ms() -> u64 {
    500
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            requests_per_minute: None,
            timeout_seconds: default_timeout(),
            max_pages: default_max_pages(),
            max_response_bytes: default_max_bytes(),
            retries: default_retries(),
            retry_after_ms: default_retry_ms(),
        }
    }
}

impl Definition {
    /// Reads a definition file; the error names the file and what is wrong.
    pub fn load(path: &Path) -> Result<Definition, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        Definition::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses a definition and checks its field map.
    pub fn parse(text: &str) -> Result<Definition, String> {
        let definition: Definition = toml::from_str(text).map_err(|e| e.to_string())?;
        let problems: Vec<String> = definition
            .fields
            .problems()
            .into_iter()
            .map(|(field, message)| format!("fields.{field}: {message}"))
            .collect();
        if problems.is_empty() {
            Ok(definition)
        } else {
            Err(problems.join("; "))
        }
    }
}

/// Why a fetch failed. No variant carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{system}: {message}")]
    Setup { system: String, message: String },
    #[error("{system}, page {page}: {url} answered {status}: {body}")]
    Status {
        system: String,
        page: u32,
        url: String,
        status: u16,
        body: String,
    },
    #[error("{system}, page {page}: {url}: {message}")]
    Transport {
        system: String,
        page: u32,
        url: String,
        message: String,
    },
    #[error("{system}, page {page}: {message}")]
    Response {
        system: String,
        page: u32,
        message: String,
    },
    #[error("{0}")]
    Record(#[from] MappingError),
}

/// One failed attempt at a request, and whether trying again may help.
#[derive(Debug)]
struct Attempt {
    error: FetchError,
    retryable: bool,
    retry_after: Option<Duration>,
}

/// A definition bound to one connector instance's variables and secrets.
pub struct HttpSource {
    definition: Definition,
    variables: BTreeMap<String, String>,
    secrets: BTreeMap<String, SecretString>,
    client: reqwest::Client,
    last_request: Mutex<Option<Instant>>,
    /// The token of `Auth::Token`, and when it stops being good.
    token: Mutex<Option<(SecretString, Option<Instant>)>>,
}

impl HttpSource {
    pub fn new(
        definition: Definition,
        variables: BTreeMap<String, String>,
        secrets: BTreeMap<String, SecretString>,
    ) -> Result<HttpSource, FetchError> {
        let setup = |message: String| FetchError::Setup {
            system: definition.name.clone(),
            message,
        };
        for v in &definition.variables {
            if !variables.contains_key(v) {
                return Err(setup(format!("the variable `{v}` is not set")));
            }
        }
        for s in &definition.secrets {
            if !secrets.contains_key(s) {
                return Err(setup(format!("the secret `{s}` is not set")));
            }
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(definition.limits.timeout_seconds))
            .user_agent(concat!("hrsync/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| setup(format!("cannot build the HTTP client: {e}")))?;
        Ok(HttpSource {
            definition,
            variables,
            secrets,
            client,
            last_request: Mutex::new(None),
            token: Mutex::new(None),
        })
    }

    /// Fills `{variable}` and `{secret:name}` in a text.
    fn render(&self, template: &str) -> Result<String, String> {
        let mut out = String::new();
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| format!("a `{{` is not closed in `{template}`"))?;
            let name = &rest[open + 1..open + close];
            let value = match name.strip_prefix("secret:") {
                Some(secret) => self
                    .secrets
                    .get(secret)
                    .map(|s| s.expose_secret().to_string())
                    .ok_or_else(|| format!("no secret `{secret}`"))?,
                None => self
                    .variables
                    .get(name)
                    .or_else(|| self.definition.defaults.get(name))
                    .cloned()
                    .ok_or_else(|| format!("no variable `{name}`"))?,
            };
            out.push_str(&value);
            rest = &rest[open + close + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn render_json(&self, value: &Value) -> Result<Value, String> {
        Ok(match value {
            Value::String(s) => Value::String(self.render(s)?),
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|v| self.render_json(v))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), self.render_json(v)?)))
                    .collect::<Result<_, String>>()?,
            ),
            other => other.clone(),
        })
    }

    /// Every record of every page, or the first error.
    pub async fn fetch(&self) -> Result<Vec<HrRecord>, FetchError> {
        let def = &self.definition;
        let system = def.name.clone();
        let setup = |message: String| FetchError::Setup {
            system: system.clone(),
            message,
        };
        let base_url = self.render(&def.request.url).map_err(setup)?;
        let mut records = Vec::new();
        let mut page: u32 = 1;
        let mut next_url: Option<String> = None;
        loop {
            if page > def.limits.max_pages {
                return Err(FetchError::Response {
                    system,
                    page,
                    message: format!(
                        "more than {} pages; raise limits.max_pages if this is right",
                        def.limits.max_pages
                    ),
                });
            }
            let url = next_url.clone().unwrap_or_else(|| base_url.clone());
            let mut query: Vec<(String, String)> = Vec::new();
            if next_url.is_none() {
                for (k, v) in &def.request.query {
                    query.push((k.clone(), self.render(v).map_err(setup)?));
                }
                let done = records.len() as u64;
                match &def.pagination {
                    Pagination::None | Pagination::NextLink { .. } => {}
                    Pagination::Offset {
                        offset_param,
                        limit_param,
                        limit,
                    } => {
                        query.push((offset_param.clone(), done.to_string()));
                        query.push((limit_param.clone(), limit.to_string()));
                    }
                    Pagination::Page {
                        page_param,
                        size_param,
                        size,
                        first,
                    } => {
                        query.push((page_param.clone(), (first + page - 1).to_string()));
                        if let Some(p) = size_param {
                            query.push((p.clone(), size.to_string()));
                        }
                    }
                    Pagination::Scim { count } => {
                        query.push(("startIndex".to_string(), (done + 1).to_string()));
                        query.push(("count".to_string(), count.to_string()));
                    }
                }
            }
            let body = self.get_page(&url, &query, page).await?;
            let items = match def.records.path.select(&body) {
                Some(Value::Array(items)) => items.as_slice(),
                None if def.records.missing_is_empty => &[],
                _ => {
                    return Err(FetchError::Response {
                        system,
                        page,
                        message: format!(
                            "no list of people at `{}` in the response",
                            def.records.path
                        ),
                    });
                }
            };
            let source_name = format!("{} page {page}", def.name);
            for (i, item) in items.iter().enumerate() {
                records.push(def.fields.record(item, &source_name, i + 1)?);
            }
            let more = match &def.pagination {
                Pagination::None => false,
                Pagination::Offset { limit, .. } => {
                    items.len() as u32 >= *limit && !items.is_empty()
                }
                Pagination::Page { size, .. } => items.len() as u32 >= *size && !items.is_empty(),
                Pagination::NextLink { path } => {
                    next_url = path
                        .select(&body)
                        .and_then(Value::as_str)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string);
                    next_url.is_some()
                }
                Pagination::Scim { .. } => {
                    let total = body.get("totalResults").and_then(Value::as_u64);
                    match total {
                        Some(total) => !items.is_empty() && (records.len() as u64) < total,
                        None => {
                            return Err(FetchError::Response {
                                system,
                                page,
                                message: "a SCIM ListResponse without totalResults".to_string(),
                            });
                        }
                    }
                }
            };
            if !more {
                self.resolve_managers(&mut records);
                return Ok(records);
            }
            page += 1;
        }
    }

    /// Replaces system ids in the manager field with the managers' employee ids, where the
    /// definition says the system refers to managers by its own id. A manager who is not in
    /// the feed is no manager here.
    fn resolve_managers(&self, records: &mut [HrRecord]) {
        let Some(attribute) = &self.definition.manager_by_attribute else {
            return;
        };
        let by_system_id: BTreeMap<String, crate::domain::EmployeeId> = records
            .iter()
            .filter_map(|r| {
                r.attributes
                    .get(attribute)
                    .map(|id| (id.clone(), r.employee_id.clone()))
            })
            .collect();
        for r in records.iter_mut() {
            r.manager_id = r
                .manager_id
                .take()
                .and_then(|m| by_system_id.get(m.as_str()).cloned());
        }
    }

    /// One page, retried on timeouts, connection errors, 429 and 5xx.
    async fn get_page(
        &self,
        url: &str,
        query: &[(String, String)],
        page: u32,
    ) -> Result<Value, FetchError> {
        let limits = &self.definition.limits;
        let backoff = ExponentialBuilder::default()
            .with_jitter()
            .with_min_delay(Duration::from_millis(limits.retry_after_ms))
            .with_max_delay(Duration::from_secs(60))
            .with_max_times(limits.retries);
        let attempt = || self.try_page(url, query, page);
        attempt
            .retry(backoff)
            .when(|a: &Attempt| a.retryable)
            .adjust(|a: &Attempt, planned| planned.map(|d| a.retry_after.unwrap_or(d)))
            .notify(|a: &Attempt, delay| {
                tracing::warn!(page, delay_ms = delay.as_millis() as u64, error = %a.error, "Request failed; retrying");
            })
            .await
            .map_err(|a| a.error)
    }

    async fn try_page(
        &self,
        url: &str,
        query: &[(String, String)],
        page: u32,
    ) -> Result<Value, Attempt> {
        let def = &self.definition;
        let fail = |error: FetchError, retryable: bool| Attempt {
            error,
            retryable,
            retry_after: None,
        };
        let setup = |message: String| {
            fail(
                FetchError::Setup {
                    system: def.name.clone(),
                    message,
                },
                false,
            )
        };
        self.pace().await;
        let mut request = match def.request.method {
            Method::Get => self.client.get(url),
            Method::Post => self.client.post(url),
        }
        .query(query);
        if !def
            .request
            .headers
            .keys()
            .any(|k| k.eq_ignore_ascii_case("accept"))
        {
            request = request.header("Accept", "application/json");
        }
        for (name, value) in &def.request.headers {
            request = request.header(name.as_str(), self.render(value).map_err(setup)?);
        }
        if let Some(body) = &def.request.body {
            request = request
                .header("Content-Type", "application/json")
                .body(self.render_json(body).map_err(setup)?.to_string());
        }
        request = match &def.auth {
            Auth::None => request,
            Auth::Basic { username, password } => request.basic_auth(
                self.render(username).map_err(setup)?,
                Some(self.render(password).map_err(setup)?),
            ),
            Auth::Bearer { token } => request.bearer_auth(self.render(token).map_err(setup)?),
            Auth::Header { name, value } => {
                request.header(name.as_str(), self.render(value).map_err(setup)?)
            }
            Auth::Token { header, value, .. } => {
                let token = self.token(page).await?;
                // `{token}` is not a variable: render the text around it, then put it in.
                let parts = value
                    .split("{token}")
                    .map(|part| self.render(part))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(setup)?;
                request.header(header.as_str(), parts.join(token.expose_secret()))
            }
        };
        let shown = shown_url(url);
        let transport = |message: String| FetchError::Transport {
            system: def.name.clone(),
            page,
            url: shown.clone(),
            message,
        };
        let mut response = request.send().await.map_err(|e| {
            let retryable = e.is_timeout() || e.is_connect() || e.is_request();
            fail(transport(without_url(&e)), retryable)
        })?;
        let status = response.status();
        let mut bytes: Vec<u8> = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| fail(transport(without_url(&e)), true))?
        {
            bytes.extend_from_slice(&chunk);
            if bytes.len() as u64 > def.limits.max_response_bytes {
                return Err(fail(
                    FetchError::Response {
                        system: def.name.clone(),
                        page,
                        message: format!(
                            "the response is larger than {} bytes (limits.max_response_bytes)",
                            def.limits.max_response_bytes
                        ),
                    },
                    false,
                ));
            }
        }
        if !status.is_success() {
            let retry_after = response
                .headers()
                .get("Retry-After")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let retryable = status.as_u16() == 429 || status.is_server_error();
            let body: String = String::from_utf8_lossy(&bytes).chars().take(200).collect();
            return Err(Attempt {
                error: FetchError::Status {
                    system: def.name.clone(),
                    page,
                    url: shown,
                    status: status.as_u16(),
                    body,
                },
                retryable,
                retry_after,
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| {
            fail(
                FetchError::Response {
                    system: def.name.clone(),
                    page,
                    message: format!("the response is not JSON: {e}"),
                },
                false,
            )
        })
    }

    /// The cached token, or a new one from the token endpoint. Its answer is never shown in
    /// an error: it may hold the token.
    async fn token(&self, page: u32) -> Result<SecretString, Attempt> {
        let Auth::Token {
            url,
            method,
            body,
            form,
            token_path,
            expires_in_path,
            ..
        } = &self.definition.auth
        else {
            unreachable!("only called for token auth");
        };
        let mut cached = self.token.lock().await;
        if let Some((token, until)) = cached.as_ref()
            && until.is_none_or(|until| Instant::now() < until)
        {
            return Ok(token.clone());
        }
        let name = &self.definition.name;
        let fail = |message: String, retryable: bool| Attempt {
            error: FetchError::Response {
                system: name.clone(),
                page,
                message,
            },
            retryable,
            retry_after: None,
        };
        let url = self.render(url).map_err(|m| fail(m, false))?;
        let mut request = match method {
            Method::Get => self.client.get(&url),
            Method::Post => self.client.post(&url),
        }
        .header("Accept", "application/json");
        if let Some(body) = body {
            request = request.header("Content-Type", "application/json").body(
                self.render_json(body)
                    .map_err(|m| fail(m, false))?
                    .to_string(),
            );
        }
        if !form.is_empty() {
            let form: Vec<(String, String)> = form
                .iter()
                .map(|(k, v)| Ok((k.clone(), self.render(v)?)))
                .collect::<Result<_, String>>()
                .map_err(|m| fail(m, false))?;
            request = request.form(&form);
        }
        let shown = shown_url(&url);
        let response = request.send().await.map_err(|e| {
            fail(
                format!("the token request to {shown} failed: {}", without_url(&e)),
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
        let bytes = response.bytes().await.map_err(|e| {
            fail(
                format!(
                    "the token answer from {shown} broke off: {}",
                    without_url(&e)
                ),
                true,
            )
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
        // Renewed a minute before it runs out.
        let until = expires_in_path
            .as_ref()
            .and_then(|p| p.select(&answer))
            .and_then(Value::as_u64)
            .map(|seconds| Instant::now() + Duration::from_secs(seconds.saturating_sub(60)));
        let token = SecretString::from(token.to_string());
        *cached = Some((token.clone(), until));
        Ok(token)
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

/// A URL as it may be shown: without its query string, which may carry keys.
fn shown_url(url: &str) -> String {
    url.split_once('?')
        .map(|(base, _)| base)
        .unwrap_or(url)
        .to_string()
}

/// A reqwest error's text without the URL it may carry (with its query string).
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), &shown_url(url.as_str()));
    }
    text
}
