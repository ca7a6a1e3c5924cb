//! The `http` source kind: a declarative connector definition, and the engine that runs it.
//!
//! A definition (one TOML file per HR system in `connectors/`) says how to authenticate, what
//! to request, how the system pages, where the list of people is in a response, and how each
//! field is read ([`FieldMap`]). Values in the request may use the connector instance's
//! variables (`{subdomain}`) and secrets (`{secret:api_key}`); secrets come from environment
//! variables and never appear in errors, logs or raw dumps. Lookup tables (department names by
//! id) come from other endpoints of the same system. A fetch is all or nothing: every page is
//! read (retrying timeouts, connection errors, 429 and 5xx with exponential backoff and jitter,
//! and honouring `Retry-After`; pages whose number is known up front are read a few at a time),
//! or the fetch fails and the run deactivates nobody. An incremental fetch asks only for what
//! changed since a watermark; merging it with what is already known is the caller's work.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use chrono::{DateTime, SecondsFormat, Utc};
use futures_util::{StreamExt, TryStreamExt};
use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::mapping::{FieldMap, JsonPath, Lookups, MappingError, placeholders, scalar_text};
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
    /// Lookup tables fetched from other endpoints before the people, by name; a field uses
    /// one with `lookup = "<name>"`.
    #[serde(default)]
    pub lookups: BTreeMap<String, LookupSpec>,
    /// How to ask for only the people changed since a moment, where the system can.
    pub incremental: Option<IncrementalSpec>,
    /// When the manager field holds the system's own id of the manager (SCIM `id`, Personio
    /// and HiBob ids) rather than the employee id: the attribute that holds each person's own
    /// system id. After every page is read, managers are looked up through it.
    pub manager_by_attribute: Option<String>,
    #[serde(default)]
    pub limits: Limits,
}

/// A lookup table from another endpoint: each record gives a key and the value it stands for.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LookupSpec {
    pub request: RequestSpec,
    #[serde(default)]
    pub pagination: Pagination,
    #[serde(default)]
    pub records: RecordsSpec,
    /// Where each record's key is, e.g. `id`.
    pub key: JsonPath,
    /// Where the value it stands for is, e.g. `name`.
    pub value: JsonPath,
}

/// How an incremental fetch differs from a full one: query parameters (replacing those of the
/// request with the same name) and body members that use `{since}`, the watermark.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncrementalSpec {
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// Merged into the request's JSON body.
    pub body: Option<Value>,
    /// How `{since}` is written: `rfc3339` (`2026-11-23T08:00:00Z`), `unix` (seconds),
    /// `unix_ms`, or a chrono format applied to the UTC time.
    #[serde(default = "rfc3339")]
    pub format: String,
}

fn rfc3339() -> String {
    "rfc3339".to_string()
}

impl IncrementalSpec {
    /// The watermark as the system wants it.
    pub fn format_since(&self, since: DateTime<Utc>) -> String {
        match self.format.as_str() {
            "rfc3339" => since.to_rfc3339_opts(SecondsFormat::Secs, true),
            "unix" => since.timestamp().to_string(),
            "unix_ms" => since.timestamp_millis().to_string(),
            f => since.format(f).to_string(),
        }
    }
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
    /// `offset`/`limit` query parameters; a page with fewer records than `limit` is the last,
    /// or, with `total_path`, the page that brings the count to the total the system gives.
    Offset {
        offset_param: String,
        limit_param: String,
        limit: u32,
        total_path: Option<JsonPath>,
    },
    /// A page number and size; a page with fewer records than `size` is the last, or, with
    /// `total_path`, the page that brings the count to the total the system gives.
    Page {
        page_param: String,
        size_param: Option<String>,
        size: u32,
        #[serde(default = "one")]
        first: u32,
        total_path: Option<JsonPath>,
    },
    /// A cursor from the response body at `path`, sent back as `cursor_param`; no cursor (or
    /// `more_path` saying `false`) means the last page.
    Cursor {
        cursor_param: String,
        path: JsonPath,
        size_param: Option<String>,
        size: Option<u32>,
        more_path: Option<JsonPath>,
    },
    /// The next page's URL is in the response body at `path`; none means the last page.
    NextLink { path: JsonPath },
    /// The next page's URL is in the `Link` header (`<…>; rel="next"`); none means the last.
    LinkHeader,
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

impl Default for RecordsSpec {
    fn default() -> Self {
        RecordsSpec {
            path: root(),
            missing_is_empty: false,
        }
    }
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
    /// At most this many requests at once, where the pages are known up front (a total in
    /// the first page) and for lookup tables.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
}

fn default_concurrency() -> usize {
    4
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

/// A problem when `value` is outside `range`: the key, the value and the range allowed.
fn out_of_range<T>(key: &str, value: T, range: std::ops::RangeInclusive<T>) -> Option<String>
where
    T: PartialOrd + std::fmt::Display,
{
    (!range.contains(&value)).then(|| {
        format!(
            "{key}: {value} is out of range; use {} to {}",
            range.start(),
            range.end()
        )
    })
}

/// The largest page a definition may ask for: no HR API documents more, and a page size is
/// also how many records one response may hold.
const MAX_PAGE_SIZE: u32 = 10_000;

impl Limits {
    /// Every number outside its range, with its key: nothing a definition may say can make a
    /// fetch wait for ever, retry for ever, or size a buffer absurdly.
    fn problems(&self) -> Vec<String> {
        [
            self.requests_per_minute.and_then(|rpm| {
                out_of_range("limits.requests_per_minute", rpm, 1..=100_000)
                    .map(|p| format!("{p} (leave it out for no limit)"))
            }),
            out_of_range("limits.timeout_seconds", self.timeout_seconds, 1..=3_600),
            out_of_range("limits.max_pages", self.max_pages, 1..=1_000_000),
            out_of_range(
                "limits.max_response_bytes",
                self.max_response_bytes,
                1_024..=1 << 30,
            ),
            out_of_range("limits.retries", self.retries, 0..=20),
            out_of_range("limits.retry_after_ms", self.retry_after_ms, 1..=60_000),
            out_of_range("limits.concurrency", self.concurrency, 1..=32),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

impl Pagination {
    /// Page sizes outside 1 to [`MAX_PAGE_SIZE`] (a size of 0 would ask for the same empty
    /// page until `max_pages`), and a first page number other than 0 or 1.
    fn problems(&self, at: &str) -> Vec<String> {
        let size =
            |key: &str, value: u32| out_of_range(&format!("{at}.{key}"), value, 1..=MAX_PAGE_SIZE);
        match self {
            Pagination::Offset { limit, .. } => size("limit", *limit).into_iter().collect(),
            Pagination::Page { size: n, first, .. } => [
                size("size", *n),
                out_of_range(&format!("{at}.first"), *first, 0..=1),
            ]
            .into_iter()
            .flatten()
            .collect(),
            Pagination::Cursor { size: Some(n), .. } => size("size", *n).into_iter().collect(),
            Pagination::Scim { count } => size("count", *count).into_iter().collect(),
            Pagination::None
            | Pagination::Cursor { size: None, .. }
            | Pagination::NextLink { .. }
            | Pagination::LinkHeader => Vec::new(),
        }
    }
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
            concurrency: default_concurrency(),
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

    /// Parses a definition and checks its field map, its lookups and its variables.
    pub fn parse(text: &str) -> Result<Definition, String> {
        let definition: Definition = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut problems: Vec<String> = definition
            .fields
            .problems()
            .into_iter()
            .map(|(field, message)| format!("fields.{field}: {message}"))
            .collect();
        for (field, lookup) in definition.fields.lookups() {
            if !definition.lookups.contains_key(&lookup) {
                problems.push(format!(
                    "fields.{field}: there is no [lookups.{lookup}] for `lookup = \"{lookup}\"`"
                ));
            }
        }
        let known = |name: &str| {
            definition.variables.iter().any(|v| v == name) || definition.defaults.contains_key(name)
        };
        for (field, name) in definition.fields.placeholders() {
            if !known(&name) {
                problems.push(format!(
                    "fields.{field}: `{{{name}}}` is not a variable of the definition (list it in `variables` or `defaults`)"
                ));
            }
        }
        let mut templates: Vec<(String, String)> = Vec::new();
        let mut request_templates = |at: &str, r: &RequestSpec| {
            templates.push((format!("{at}.url"), r.url.clone()));
            for (k, v) in r.query.iter().chain(&r.headers) {
                templates.push((format!("{at}.{k}"), v.clone()));
            }
            if let Some(body) = &r.body {
                templates.push((format!("{at}.body"), body.to_string()));
            }
        };
        request_templates("request", &definition.request);
        for (name, lookup) in &definition.lookups {
            request_templates(&format!("lookups.{name}.request"), &lookup.request);
        }
        for (at, text) in &templates {
            for name in placeholders(text) {
                if !known(&name) && name != "since" {
                    problems.push(format!(
                        "{at}: `{{{name}}}` is not a variable of the definition (list it in `variables` or `defaults`)"
                    ));
                }
            }
        }
        if let Some(inc) = &definition.incremental {
            let mut texts: Vec<String> = inc.query.values().cloned().collect();
            if let Some(body) = &inc.body {
                texts.push(body.to_string());
            }
            if !texts.iter().any(|t| t.contains("{since}")) {
                problems.push(
                    "incremental: no query parameter or body member uses `{since}`".to_string(),
                );
            }
            if inc.body.is_some()
                && !matches!(definition.request.body, None | Some(Value::Object(_)))
            {
                problems.push(
                    "incremental.body: the request's body is not an object to merge it into"
                        .to_string(),
                );
            }
        }
        problems.extend(definition.limits.problems());
        problems.extend(definition.pagination.problems("pagination"));
        for (name, lookup) in &definition.lookups {
            problems.extend(
                lookup
                    .pagination
                    .problems(&format!("lookups.{name}.pagination")),
            );
        }
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
    #[error("{system}, {what} page {page}: {url} answered {status}: {body}")]
    Status {
        system: String,
        what: String,
        page: u32,
        url: String,
        status: u16,
        body: String,
    },
    #[error("{system}, {what} page {page}: {url}: {message}")]
    Transport {
        system: String,
        what: String,
        page: u32,
        url: String,
        message: String,
    },
    #[error("{system}, {what} page {page}: {message}")]
    Response {
        system: String,
        what: String,
        page: u32,
        message: String,
    },
    #[error("{0}")]
    Record(#[from] MappingError),
}

/// What a fetch is asked to do beyond reading every person.
#[derive(Clone, Debug, Default)]
pub struct FetchOptions {
    /// Ask only for the people changed since this moment (the definition's `[incremental]`).
    pub since: Option<DateTime<Utc>>,
    /// Read only the first page of people (lookup tables are still read whole).
    pub first_page_only: bool,
    /// Write every page as received, with credentials redacted, to this directory.
    pub raw_dir: Option<PathBuf>,
}

/// What a fetch read.
#[derive(Clone, Debug)]
pub struct Fetched {
    pub records: Vec<HrRecord>,
    /// Pages of people read.
    pub pages: u32,
    /// The number of people the system says there are, where its first page says.
    pub total: Option<u64>,
    /// Whether only the people changed since a watermark were asked for. The managers of such
    /// records are left as the system gives them, for [`HttpSource::resolve_managers`].
    pub incremental: bool,
}

/// One failed attempt at a request, and whether trying again may help.
#[derive(Debug)]
struct Attempt {
    error: FetchError,
    retryable: bool,
    retry_after: Option<Duration>,
}

/// One endpoint being read: the people, or a lookup table.
struct Endpoint<'a> {
    /// `people` or `lookup departments`, for messages and raw dump file names.
    what: String,
    request: &'a RequestSpec,
    pagination: &'a Pagination,
    records: &'a RecordsSpec,
    /// Replaces the request's query parameters of the same name.
    extra_query: BTreeMap<String, String>,
    /// Merged into the request's body.
    extra_body: Option<Value>,
    /// Values of `{since}` and the like, beside the instance's variables.
    extra_vars: BTreeMap<String, String>,
    first_page_only: bool,
}

impl<'a> Endpoint<'a> {
    /// An endpoint read as its definition says, with nothing added.
    fn new(
        what: String,
        request: &'a RequestSpec,
        pagination: &'a Pagination,
        records: &'a RecordsSpec,
    ) -> Endpoint<'a> {
        Endpoint {
            what,
            request,
            pagination,
            records,
            extra_query: BTreeMap::new(),
            extra_body: None,
            extra_vars: BTreeMap::new(),
            first_page_only: false,
        }
    }
}

/// One page as received.
struct PageOut {
    body: Value,
    /// The `rel="next"` URL of the `Link` header, if any.
    link_next: Option<String>,
}

/// Where the next page is.
enum Next {
    Done,
    /// A page addressed by its number and the records before it (offset, page number or
    /// SCIM startIndex).
    At {
        number: u32,
        offset: u64,
    },
    Cursor(String),
    Url(String),
}

/// A definition bound to one connector instance's variables and secrets.
pub struct HttpSource {
    definition: Definition,
    /// The definition's fields with the instance's variables in their paths.
    fields: FieldMap,
    variables: BTreeMap<String, String>,
    secrets: BTreeMap<String, SecretString>,
    client: reqwest::Client,
    last_request: Mutex<Option<Instant>>,
    /// The token of `Auth::Token`, and when it stops being good.
    token: Mutex<Option<(SecretString, Option<Instant>)>>,
    /// Every token received, so that raw dumps and error texts can redact it.
    seen_tokens: std::sync::Mutex<Vec<SecretString>>,
}

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
        let fields = definition
            .fields
            .bind(&|name: &str| {
                variables
                    .get(name)
                    .or_else(|| definition.defaults.get(name))
                    .cloned()
            })
            .map_err(setup)?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(definition.limits.timeout_seconds))
            .user_agent(concat!("hrsync/", env!("CARGO_PKG_VERSION")))
            // A redirect is not followed: reqwest would carry custom credential headers and
            // a token request's body to wherever it points. A 3xx fails the fetch instead.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| setup(format!("cannot build the HTTP client: {e}")))?;
        Ok(HttpSource {
            fields,
            definition,
            variables,
            secrets,
            client,
            last_request: Mutex::new(None),
            token: Mutex::new(None),
            seen_tokens: std::sync::Mutex::new(Vec::new()),
        })
    }

    pub fn definition(&self) -> &Definition {
        &self.definition
    }

    /// Fills `{variable}`, `{secret:name}` and the `extra` values in a text.
    fn render(&self, template: &str, extra: &BTreeMap<String, String>) -> Result<String, String> {
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
                None => extra
                    .get(name)
                    .or_else(|| self.variables.get(name))
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

    fn render_json(
        &self,
        value: &Value,
        extra: &BTreeMap<String, String>,
    ) -> Result<Value, String> {
        Ok(match value {
            Value::String(s) => Value::String(self.render(s, extra)?),
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|v| self.render_json(v, extra))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), self.render_json(v, extra)?)))
                    .collect::<Result<_, String>>()?,
            ),
            other => other.clone(),
        })
    }

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
    fn shown(&self, url: &str) -> String {
        self.redact(&shown_url(url))
    }

    /// A reqwest error's text as it may be shown.
    fn error_text(&self, e: &reqwest::Error) -> String {
        self.redact(&without_url(e))
    }

    /// Every record of every page, or the first error.
    pub async fn fetch(&self) -> Result<Vec<HrRecord>, FetchError> {
        Ok(self.fetch_with(&FetchOptions::default()).await?.records)
    }

    /// Reads the lookup tables, then the people, as `options` asks.
    pub async fn fetch_with(&self, options: &FetchOptions) -> Result<Fetched, FetchError> {
        let def = &self.definition;
        if let Some(dir) = &options.raw_dir {
            create_private_dir(dir).map_err(|e| FetchError::Setup {
                system: def.name.clone(),
                message: format!("cannot create `{}`: {e}", dir.display()),
            })?;
        }
        let lookups = self.lookups(options).await?;
        let mut endpoint = Endpoint::new(
            "people".to_string(),
            &def.request,
            &def.pagination,
            &def.records,
        );
        endpoint.first_page_only = options.first_page_only;
        let incremental = match (options.since, &def.incremental) {
            (Some(since), Some(inc)) => {
                endpoint
                    .extra_vars
                    .insert("since".to_string(), inc.format_since(since));
                endpoint.extra_query = inc.query.clone();
                endpoint.extra_body = inc.body.clone();
                true
            }
            (Some(_), None) => {
                return Err(FetchError::Setup {
                    system: def.name.clone(),
                    message: "the definition has no [incremental] table, so it cannot fetch only what changed"
                        .to_string(),
                });
            }
            (None, _) => false,
        };
        let mut records = Vec::new();
        let fields = &self.fields;
        let (pages, total) = self
            .walk(&endpoint, options, |page, items| {
                let source_name = format!("{} page {page}", def.name);
                for (i, item) in items.iter().enumerate() {
                    records.push(fields.record(item, &source_name, i + 1, &lookups)?);
                }
                Ok(())
            })
            .await?;
        // A delta's managers may be outside it: the caller resolves them against what it knows.
        if !incremental {
            self.resolve_managers(&mut records, &[]);
        }
        Ok(Fetched {
            records,
            pages,
            total,
            incremental,
        })
    }

    /// Every lookup table of the definition, read a few at a time.
    async fn lookups(&self, options: &FetchOptions) -> Result<Lookups, FetchError> {
        let def = &self.definition;
        // The futures are made up front: a closure kept inside the stream would keep the fetch
        // from being provably `Send`.
        let tables: Vec<SendFuture<'_, _>> = def
            .lookups
            .iter()
            .map(|(name, spec)| -> SendFuture<'_, _> { Box::pin(self.lookup(name, spec, options)) })
            .collect();
        futures_util::stream::iter(tables)
            .buffer_unordered(def.limits.concurrency.max(1))
            .try_collect()
            .await
    }

    /// One lookup table: each record's key and the value it stands for.
    async fn lookup(
        &self,
        name: &str,
        spec: &LookupSpec,
        options: &FetchOptions,
    ) -> Result<(String, BTreeMap<String, String>), FetchError> {
        let endpoint = Endpoint::new(
            format!("lookup {name}"),
            &spec.request,
            &spec.pagination,
            &spec.records,
        );
        let mut table = BTreeMap::new();
        self.walk(&endpoint, options, |_, items| {
            for item in items {
                let text = |p: &JsonPath| p.select(item).and_then(scalar_text);
                if let (Some(k), Some(v)) = (text(&spec.key), text(&spec.value)) {
                    table.insert(k, v);
                }
            }
            Ok(())
        })
        .await?;
        Ok((name.to_string(), table))
    }

    /// Reads every page of one endpoint (or the first, if asked), handing each page's records
    /// to `on_page` in page order. Returns the pages read and the total the system gave.
    async fn walk(
        &self,
        ep: &Endpoint<'_>,
        options: &FetchOptions,
        mut on_page: impl FnMut(u32, &[Value]) -> Result<(), FetchError>,
    ) -> Result<(u32, Option<u64>), FetchError> {
        let def = &self.definition;
        let system = def.name.clone();
        let respond = |page: u32, message: String| FetchError::Response {
            system: system.clone(),
            what: ep.what.clone(),
            page,
            message,
        };
        let base_url = self
            .render(&ep.request.url, &ep.extra_vars)
            .map_err(|m| self.setup(m))?;
        let mut seen_links: std::collections::HashSet<String> = Default::default();
        // The first record of the page before: a system that ignores the paging parameters
        // sends the same page again and again, which must not pass for more people.
        let mut previous_first: Option<Value> = None;
        let mut same_page = |page: u32, items: &[Value]| match items.first() {
            Some(first) if previous_first.as_ref() == Some(first) => Err(respond(
                page,
                "this page starts with the same record as the page before; the system \
                 seems to ignore the paging parameters"
                    .to_string(),
            )),
            first => {
                previous_first = first.cloned();
                Ok(())
            }
        };
        let mut read: u64 = 0;
        let mut total: Option<u64> = None;
        let mut next = Next::At {
            number: 1,
            offset: 0,
        };
        let mut page: u32 = 0;
        loop {
            page += 1;
            if page > def.limits.max_pages {
                return Err(respond(
                    page,
                    format!(
                        "more than {} pages; raise limits.max_pages if this is right",
                        def.limits.max_pages
                    ),
                ));
            }
            let (url, query) = self.address(ep, &base_url, &next, page)?;
            let out = self.get_page(ep, &url, &query, page, options).await?;
            let items = self.items(ep, &out.body, page)?;
            if page == 1 {
                total = self.total(ep.pagination, &out.body);
                if matches!(ep.pagination, Pagination::Scim { .. }) && total.is_none() {
                    return Err(respond(
                        page,
                        "a SCIM ListResponse without totalResults".to_string(),
                    ));
                }
            }
            same_page(page, items)?;
            read += items.len() as u64;
            on_page(page, items)?;
            if ep.first_page_only {
                return Ok((page, total));
            }
            next = self.next(ep, &out, &url, page, items.len(), read, total)?;
            if let Next::Url(link) | Next::Cursor(link) = &next
                && !seen_links.insert(link.clone())
            {
                return Err(respond(
                    page,
                    "the system sent the same next page twice; it would never end".to_string(),
                ));
            }
            // Pages known up front (a total, and a full first page) are read a few at a time.
            if page == 1
                && let (Next::At { .. }, Some(size), Some(total)) =
                    (&next, page_size(ep.pagination), total)
                && read == u64::from(size)
            {
                let last =
                    u32::try_from(total.div_ceil(u64::from(size.max(1)))).unwrap_or(u32::MAX);
                if last > def.limits.max_pages {
                    return Err(respond(
                        page,
                        format!(
                            "{total} records need {last} pages, more than limits.max_pages ({})",
                            def.limits.max_pages
                        ),
                    ));
                }
                let base_url = &base_url;
                let mut pages = futures_util::stream::iter(2..=last)
                    .map(|p| -> SendFuture<'_, _> {
                        Box::pin(async move {
                            let at = Next::At {
                                number: p,
                                offset: u64::from(p - 1) * u64::from(size),
                            };
                            let (url, query) = self.address(ep, base_url, &at, p)?;
                            let out = self.get_page(ep, &url, &query, p, options).await?;
                            Ok::<_, FetchError>((p, out))
                        })
                    })
                    .buffered(def.limits.concurrency.max(1));
                let mut last_len = size as usize;
                while let Some((p, out)) = pages.try_next().await? {
                    let items = self.items(ep, &out.body, p)?;
                    same_page(p, items)?;
                    read += items.len() as u64;
                    last_len = items.len();
                    on_page(p, items)?;
                    page = p;
                }
                // A last page that came back full may mean people were added meanwhile.
                next = if last > 1 && last_len >= size as usize {
                    Next::At {
                        number: last + 1,
                        offset: read,
                    }
                } else {
                    Next::Done
                };
            }
            if let Next::Done = next {
                // A list that ends before the total the system gave is a partial list, and a
                // partial list must deactivate nobody.
                if let Some(total) = total
                    && read < total
                {
                    return Err(respond(
                        page,
                        format!(
                            "the list ended after {read} records, but the system said there are {total}"
                        ),
                    ));
                }
                return Ok((page, total));
            }
        }
    }

    fn setup(&self, message: String) -> FetchError {
        FetchError::Setup {
            system: self.definition.name.clone(),
            message,
        }
    }

    /// The URL and query of a page.
    fn address(
        &self,
        ep: &Endpoint<'_>,
        base_url: &str,
        next: &Next,
        page: u32,
    ) -> Result<(String, Vec<(String, String)>), FetchError> {
        if let Next::Url(url) = next {
            return Ok((url.clone(), Vec::new()));
        }
        let mut query: Vec<(String, String)> = Vec::new();
        for (k, v) in &ep.request.query {
            if !ep.extra_query.contains_key(k) {
                query.push((
                    k.clone(),
                    self.render(v, &ep.extra_vars).map_err(|m| self.setup(m))?,
                ));
            }
        }
        for (k, v) in &ep.extra_query {
            query.push((
                k.clone(),
                self.render(v, &ep.extra_vars).map_err(|m| self.setup(m))?,
            ));
        }
        let (number, offset) = match next {
            Next::At { number, offset } => (*number, *offset),
            _ => (page, 0),
        };
        match ep.pagination {
            Pagination::None | Pagination::NextLink { .. } | Pagination::LinkHeader => {}
            Pagination::Offset {
                offset_param,
                limit_param,
                limit,
                ..
            } => {
                query.push((offset_param.clone(), offset.to_string()));
                query.push((limit_param.clone(), limit.to_string()));
            }
            Pagination::Page {
                page_param,
                size_param,
                size,
                first,
                ..
            } => {
                query.push((page_param.clone(), (first + number - 1).to_string()));
                if let Some(p) = size_param {
                    query.push((p.clone(), size.to_string()));
                }
            }
            Pagination::Cursor {
                cursor_param,
                size_param,
                size,
                ..
            } => {
                if let Next::Cursor(cursor) = next {
                    query.push((cursor_param.clone(), cursor.clone()));
                }
                if let (Some(p), Some(size)) = (size_param, size) {
                    query.push((p.clone(), size.to_string()));
                }
            }
            Pagination::Scim { count } => {
                query.push(("startIndex".to_string(), (offset + 1).to_string()));
                query.push(("count".to_string(), count.to_string()));
            }
        }
        Ok((base_url.to_string(), query))
    }

    /// The records of a page.
    fn items<'v>(
        &self,
        ep: &Endpoint<'_>,
        body: &'v Value,
        page: u32,
    ) -> Result<&'v [Value], FetchError> {
        match ep.records.path.select(body) {
            Some(Value::Array(items)) => Ok(items.as_slice()),
            None if ep.records.missing_is_empty => Ok(&[]),
            _ => Err(FetchError::Response {
                system: self.definition.name.clone(),
                what: ep.what.clone(),
                page,
                message: format!(
                    "no list of records at `{}` in the response",
                    ep.records.path
                ),
            }),
        }
    }

    /// The number of records the system says there are, where the first page says.
    fn total(&self, pagination: &Pagination, body: &Value) -> Option<u64> {
        let path = match pagination {
            Pagination::Scim { .. } => return body.get("totalResults").and_then(Value::as_u64),
            Pagination::Offset { total_path, .. } | Pagination::Page { total_path, .. } => {
                total_path.as_ref()?
            }
            _ => return None,
        };
        path.select(body).and_then(|v| {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        })
    }

    /// Where the page after this one is, or `Done`.
    #[allow(clippy::too_many_arguments)]
    fn next(
        &self,
        ep: &Endpoint<'_>,
        out: &PageOut,
        url: &str,
        page: u32,
        len: usize,
        read: u64,
        total: Option<u64>,
    ) -> Result<Next, FetchError> {
        let more = |full: bool| {
            let more = match total {
                Some(total) => len > 0 && read < total,
                None => len > 0 && full,
            };
            if more {
                Next::At {
                    number: page + 1,
                    offset: read,
                }
            } else {
                Next::Done
            }
        };
        let over = |asked: u32, param: &str| FetchError::Response {
            system: self.definition.name.clone(),
            what: ep.what.clone(),
            page,
            message: format!(
                "the page holds {len} records, more than the {asked} asked for; the system \
                     ignores `{param}`, so a short page cannot be trusted to be the last"
            ),
        };
        Ok(match ep.pagination {
            Pagination::None => Next::Done,
            Pagination::Offset {
                limit, limit_param, ..
            } => {
                if len as u64 > u64::from(*limit) {
                    return Err(over(*limit, limit_param));
                }
                more(len as u64 >= u64::from(*limit))
            }
            Pagination::Page {
                size,
                size_param: Some(size_param),
                ..
            } if len as u64 > u64::from(*size) => return Err(over(*size, size_param)),
            Pagination::Page { size, .. } => more(len as u64 >= u64::from(*size)),
            Pagination::Scim { .. } => {
                let total = out.body.get("totalResults").and_then(Value::as_u64);
                if len > 0 && total.is_some_and(|t| read < t) {
                    Next::At {
                        number: page + 1,
                        offset: read,
                    }
                } else {
                    Next::Done
                }
            }
            Pagination::Cursor {
                path, more_path, ..
            } => {
                let cursor = path
                    .select(&out.body)
                    .and_then(scalar_text)
                    .filter(|c| !c.trim().is_empty());
                let more = match more_path {
                    None => true,
                    Some(p) => match p.select(&out.body).and_then(scalar_text) {
                        Some(v) => matches!(v.to_lowercase().as_str(), "true" | "1"),
                        // Without its "more" flag the page cannot say it was the last.
                        None => {
                            return Err(FetchError::Response {
                                system: self.definition.name.clone(),
                                what: ep.what.clone(),
                                page,
                                message: format!(
                                    "no `{p}` in the response to say whether more pages follow"
                                ),
                            });
                        }
                    },
                };
                match cursor {
                    Some(c) if more => Next::Cursor(c),
                    _ => Next::Done,
                }
            }
            Pagination::NextLink { path } => {
                match path
                    .select(&out.body)
                    .and_then(Value::as_str)
                    .filter(|s| !s.trim().is_empty())
                {
                    Some(link) => Next::Url(self.follow(ep, url, link, page)?),
                    None => Next::Done,
                }
            }
            Pagination::LinkHeader => match &out.link_next {
                Some(link) => Next::Url(self.follow(ep, url, link, page)?),
                None => Next::Done,
            },
        })
    }

    /// A next link made absolute against the page it came from. It must stay on the same
    /// scheme, host and port: credentials are not sent anywhere else.
    fn follow(
        &self,
        ep: &Endpoint<'_>,
        from: &str,
        link: &str,
        page: u32,
    ) -> Result<String, FetchError> {
        let fail = |message: String| FetchError::Response {
            system: self.definition.name.clone(),
            what: ep.what.clone(),
            page,
            message,
        };
        let base =
            Url::parse(from).map_err(|e| fail(format!("bad URL {}: {e}", self.shown(from))))?;
        let next = base
            .join(link.trim())
            .map_err(|e| fail(format!("bad next link {}: {e}", self.shown(link))))?;
        if next.origin() != base.origin() {
            return Err(fail(format!(
                "the next link {} leaves {}; credentials are only sent to the system's own address",
                self.shown(next.as_str()),
                base.origin().ascii_serialization()
            )));
        }
        Ok(next.to_string())
    }

    /// Replaces system ids in the manager field of `records` with the managers' employee ids,
    /// where the definition says the system refers to managers by its own id, looking them up
    /// among `records` and `others` (the records an incremental connector already knows). A
    /// manager who is in neither is no manager here.
    pub fn resolve_managers(&self, records: &mut [HrRecord], others: &[HrRecord]) {
        let Some(attribute) = &self.definition.manager_by_attribute else {
            return;
        };
        let by_system_id: BTreeMap<String, crate::domain::EmployeeId> = others
            .iter()
            .chain(records.iter())
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

    async fn try_page(
        &self,
        ep: &Endpoint<'_>,
        url: &str,
        query: &[(String, String)],
        page: u32,
        options: &FetchOptions,
    ) -> Result<PageOut, Attempt> {
        let def = &self.definition;
        let fail = |error: FetchError, retryable: bool| Attempt {
            error,
            retryable,
            retry_after: None,
        };
        let setup = |message: String| fail(self.setup(message), false);
        let vars = &ep.extra_vars;
        self.pace().await;
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
        let mut credential_header: Option<&str> = None;
        let mut reused_token = false;
        request = match &def.auth {
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
        let request = request
            .build()
            .map_err(|e| setup(format!("cannot build the request: {}", self.error_text(&e))))?;
        let shown = self.shown(url);
        let dump_head = options
            .raw_dir
            .as_ref()
            .map(|_| self.describe_request(&request, credential_header));
        let transport = |message: String| FetchError::Transport {
            system: def.name.clone(),
            what: ep.what.clone(),
            page,
            url: shown.clone(),
            message,
        };
        let mut response = self.client.execute(request).await.map_err(|e| {
            let retryable = e.is_timeout() || e.is_connect() || e.is_request();
            fail(transport(self.error_text(&e)), retryable)
        })?;
        let status = response.status();
        let headers = response.headers().clone();
        let mut bytes: Vec<u8> = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| fail(transport(self.error_text(&e)), true))?
        {
            bytes.extend_from_slice(&chunk);
            if bytes.len() as u64 > def.limits.max_response_bytes {
                return Err(fail(
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
                ));
            }
        }
        if !status.is_success() {
            let retry_after = headers
                .get("Retry-After")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            // A cached token the system no longer accepts (revoked, or expired early) is
            // dropped and the page asked for once more with a new one.
            let stale_token = status.as_u16() == 401 && reused_token;
            if stale_token {
                *self.token.lock().await = None;
            }
            let retryable = status.as_u16() == 429 || status.is_server_error() || stale_token;
            let body: String = self
                .redact(&String::from_utf8_lossy(&bytes))
                .chars()
                .take(200)
                .collect();
            return Err(Attempt {
                error: FetchError::Status {
                    system: def.name.clone(),
                    what: ep.what.clone(),
                    page,
                    url: shown,
                    status: status.as_u16(),
                    body,
                },
                retryable,
                retry_after,
            });
        }
        let body: Value = serde_json::from_slice(&bytes).map_err(|e| {
            fail(
                FetchError::Response {
                    system: def.name.clone(),
                    what: ep.what.clone(),
                    page,
                    message: format!("the response is not JSON: {e}"),
                },
                false,
            )
        })?;
        if let (Some(dir), Some(head)) = (&options.raw_dir, dump_head) {
            self.dump(dir, ep, page, head, status.as_u16(), &headers, &bytes)
                .map_err(|e| fail(e, false))?;
        }
        let link_next = headers
            .get_all(reqwest::header::LINK)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(link_next);
        Ok(PageOut { body, link_next })
    }

    /// The request line and headers of a request, credentials redacted.
    fn describe_request(&self, request: &reqwest::Request, credential: Option<&str>) -> String {
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

    fn describe_headers(
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

    /// Writes a page as received (`<what>-0001.json`) and its exchange (`<what>-0001.http`),
    /// with every credential redacted.
    #[allow(clippy::too_many_arguments)]
    fn dump(
        &self,
        dir: &Path,
        ep: &Endpoint<'_>,
        page: u32,
        head: String,
        status: u16,
        headers: &reqwest::header::HeaderMap,
        bytes: &[u8],
    ) -> Result<(), FetchError> {
        let stem = format!("{}-{page:04}", ep.what.replace(' ', "-"));
        let exchange = format!(
            "{head}\nHTTP {status}\n{}",
            self.describe_headers(headers, None)
        );
        let body = self.redact(&String::from_utf8_lossy(bytes));
        let write = |name: String, text: &str| {
            let path = dir.join(&name);
            write_private(&path, text)
                .map_err(|e| self.setup(format!("cannot write `{}`: {e}", path.display())))
        };
        write(format!("{stem}.http"), &exchange)?;
        write(format!("{stem}.json"), &body)
    }

    /// The cached token, or a new one from the token endpoint. Its answer is never shown in
    /// an error or a dump: it holds the token.
    /// Also says whether the token came from the cache.
    async fn token(&self, ep: &Endpoint<'_>, page: u32) -> Result<(SecretString, bool), Attempt> {
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
            return Ok((token.clone(), true));
        }
        let name = &self.definition.name;
        let fail = |message: String, retryable: bool| Attempt {
            error: FetchError::Response {
                system: name.clone(),
                what: ep.what.clone(),
                page,
                message,
            },
            retryable,
            retry_after: None,
        };
        let none = BTreeMap::new();
        let url = self.render(url, &none).map_err(|m| fail(m, false))?;
        let mut request = match method {
            Method::Get => self.client.get(&url),
            Method::Post => self.client.post(&url),
        }
        .header("Accept", "application/json");
        if let Some(body) = body {
            request = request.header("Content-Type", "application/json").body(
                self.render_json(body, &none)
                    .map_err(|m| fail(m, false))?
                    .to_string(),
            );
        }
        if !form.is_empty() {
            let form: Vec<(String, String)> = form
                .iter()
                .map(|(k, v)| Ok((k.clone(), self.render(v, &none)?)))
                .collect::<Result<_, String>>()
                .map_err(|m| fail(m, false))?;
            request = request.form(&form);
        }
        let shown = self.shown(&url);
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
        let mut bytes: Vec<u8> = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| {
            fail(
                format!(
                    "the token answer from {shown} broke off: {}",
                    self.error_text(&e)
                ),
                true,
            )
        })? {
            bytes.extend_from_slice(&chunk);
            if bytes.len() as u64 > self.definition.limits.max_response_bytes {
                return Err(fail(
                    format!(
                        "the token answer from {shown} is larger than limits.max_response_bytes"
                    ),
                    false,
                ));
            }
        }
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
            .and_then(|v| {
                v.as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            })
            .map(|seconds| Instant::now() + Duration::from_secs(seconds.saturating_sub(60)));
        let token = SecretString::from(token.to_string());
        if let Ok(mut seen) = self.seen_tokens.lock() {
            seen.push(token.clone());
        }
        *cached = Some((token.clone(), until));
        Ok((token, false))
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

/// The page size of a pagination whose pages can be addressed by number.
fn page_size(pagination: &Pagination) -> Option<u32> {
    match pagination {
        Pagination::Offset { limit, .. } => Some(*limit),
        Pagination::Page { size, .. } => Some(*size),
        Pagination::Scim { count } => Some(*count),
        _ => None,
    }
}

/// `base` with the members of `extra` merged in, recursively; `extra` wins.
fn merged(base: &Value, extra: &Value) -> Value {
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

/// The `rel="next"` target of a `Link` header value (RFC 8288), if it has one.
pub fn link_next(header: &str) -> Option<String> {
    let mut rest = header;
    while let Some(open) = rest.find('<') {
        let close = open + rest[open..].find('>')?;
        let target = &rest[open + 1..close];
        let params_end = rest[close..]
            .find('<')
            .map(|i| close + i)
            .unwrap_or(rest.len());
        let params = &rest[close + 1..params_end];
        let is_next = params.split(';').any(|p| {
            let p = p.trim().trim_end_matches(',').trim();
            p.split_once('=').is_some_and(|(k, v)| {
                k.trim().eq_ignore_ascii_case("rel")
                    && v.trim()
                        .trim_matches('"')
                        .split_whitespace()
                        .any(|r| r.eq_ignore_ascii_case("next"))
            })
        });
        if is_next {
            return Some(target.trim().to_string());
        }
        rest = &rest[params_end..];
    }
    None
}

/// A boxed future that is `Send`. Futures made in a closure for a stream combinator are boxed
/// as this, so the compiler proves them `Send` where they are made; without it, the fetch as a
/// whole cannot be shown `Send` and cannot run on a spawned task.
type SendFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Creates a directory for raw dumps that only its owner can read: the pages hold real
/// people's personal data, even with every credential redacted.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Writes a dump file readable by its owner only.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(text.as_bytes())
}

/// The longest a `Retry-After` is waited for; a system asking for more is asked again sooner,
/// and fails the fetch when the retries run out.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);

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

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal definition with `extra` TOML after it.
    fn definition(extra: &str) -> Result<Definition, String> {
        Definition::parse(&format!(
            "name = \"T\"\n[auth]\nkind = \"none\"\n[records]\n[request]\nurl = \"https://hr.example/people\"\n\
             [fields.employee_id]\npath = \"id\"\n[fields.email]\npath = \"mail\"\n{extra}"
        ))
    }

    #[test]
    fn every_number_of_a_definition_at_the_ends_of_its_range_is_accepted() {
        for extra in [
            "[limits]\nrequests_per_minute = 1\ntimeout_seconds = 1\nmax_pages = 1\nmax_response_bytes = 1024\nretries = 0\nretry_after_ms = 1\nconcurrency = 1\n[pagination]\nkind = \"offset\"\noffset_param = \"o\"\nlimit_param = \"l\"\nlimit = 1",
            "[limits]\nrequests_per_minute = 100000\ntimeout_seconds = 3600\nmax_pages = 1000000\nmax_response_bytes = 1073741824\nretries = 20\nretry_after_ms = 60000\nconcurrency = 32\n[pagination]\nkind = \"page\"\npage_param = \"p\"\nsize = 10000\nfirst = 0",
        ] {
            assert!(
                definition(extra).is_ok(),
                "{extra}: {:?}",
                definition(extra).err()
            );
        }
    }

    #[test]
    fn numbers_outside_their_range_are_refused_with_key_and_range() {
        let cases = [
            (
                "[limits]\ntimeout_seconds = 0",
                "limits.timeout_seconds: 0 is out of range; use 1 to 3600",
            ),
            (
                "[limits]\ntimeout_seconds = 18446744073709551615",
                "limits.timeout_seconds",
            ),
            (
                "[limits]\nrequests_per_minute = 0",
                "limits.requests_per_minute: 0 is out of range",
            ),
            (
                "[limits]\nretries = 21",
                "limits.retries: 21 is out of range; use 0 to 20",
            ),
            (
                "[limits]\nconcurrency = 0",
                "limits.concurrency: 0 is out of range; use 1 to 32",
            ),
            (
                "[limits]\nmax_response_bytes = 2147483648",
                "limits.max_response_bytes",
            ),
            (
                "[pagination]\nkind = \"scim\"\ncount = 0",
                "pagination.count: 0 is out of range; use 1 to 10000",
            ),
            (
                "[pagination]\nkind = \"cursor\"\ncursor_param = \"c\"\npath = \"next\"\nsize = 10001",
                "pagination.size: 10001",
            ),
            (
                "[pagination]\nkind = \"page\"\npage_param = \"p\"\nsize = 10\nfirst = 7",
                "pagination.first: 7 is out of range; use 0 to 1",
            ),
        ];
        for (extra, expected) in cases {
            let error = definition(extra).unwrap_err();
            assert!(error.contains(expected), "{extra}: {error}");
        }
    }

    #[test]
    fn link_header_gives_the_next_target_among_others() {
        let header = r#"<https://hr.example/people?page=1>; rel="prev", <https://hr.example/people?page=3>; rel="next", <https://hr.example/people?page=9>; rel="last""#;

        assert_eq!(
            link_next(header).as_deref(),
            Some("https://hr.example/people?page=3")
        );
        assert_eq!(
            link_next(r#"</p?page=2>; rel="next last""#).as_deref(),
            Some("/p?page=2")
        );
        assert_eq!(
            link_next(r#"<https://hr.example/p?page=1>; rel="prev""#),
            None
        );
        assert_eq!(link_next(""), None);
    }

    #[test]
    fn incremental_body_is_merged_into_the_search_body() {
        let base = serde_json::json!({"fields": ["id"], "filters": {"status": "any"}});
        let extra = serde_json::json!({"filters": {"lastChanged": {"value": "{since}"}}});

        assert_eq!(
            merged(&base, &extra),
            serde_json::json!({"fields": ["id"], "filters": {"status": "any", "lastChanged": {"value": "{since}"}}})
        );
    }

    #[test]
    fn watermark_is_written_in_the_format_the_system_wants() {
        let since = DateTime::parse_from_rfc3339("2026-11-23T08:15:30+00:00")
            .unwrap()
            .with_timezone(&Utc);
        let spec = |format: &str| IncrementalSpec {
            query: BTreeMap::new(),
            body: None,
            format: format.to_string(),
        };

        assert_eq!(spec("rfc3339").format_since(since), "2026-11-23T08:15:30Z");
        assert_eq!(spec("unix").format_since(since), "1795421730");
        assert_eq!(
            spec("%Y-%m-%dT%H:%M:%S").format_since(since),
            "2026-11-23T08:15:30"
        );
    }
}
