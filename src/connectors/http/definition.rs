//! The definition format of `connectors/<system>.toml`, and the checks a definition passes
//! before any request is made.
//!
//! A definition is data: how to authenticate ([`Auth`]), what to request ([`RequestSpec`]), how
//! the system pages ([`Pagination`]), where the people are ([`RecordsSpec`]), lookup tables,
//! incremental requests and [`Limits`]. [`Definition::parse`] gathers every problem at once
//! (unknown variables, missing lookups, numbers out of range), so an operator fixes a file in
//! one pass instead of one error at a time.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::Value;

use crate::connectors::mapping::{FieldMap, JsonPath};

/// A connector definition, as written in `connectors/<system>.toml`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    /// The HR system's name, for messages.
    pub name: String,
    /// Where its API documentation is.
    pub docs: Option<String>,
    /// Whether the system's member names and enumerated values (`type = "work"`) are
    /// case-insensitive, as SCIM's are (RFC 7643 §2.1): paths then compare without letter case.
    #[serde(default)]
    pub case_insensitive: bool,
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
    /// Requests made for each person, by the member their records are set as (Personio v2's
    /// `employments`); `{record:<path>}` in them is a value of the person.
    #[serde(default)]
    pub expand: BTreeMap<String, ExpandSpec>,
    /// How to ask for only the people changed since a moment, where the system can.
    pub incremental: Option<IncrementalSpec>,
    /// When the manager field holds the system's own id of the manager (SCIM `id`, Personio
    /// and HiBob ids) rather than the employee id: the attribute that holds each person's own
    /// system id. After every page is read, managers are looked up through it.
    pub manager_by_attribute: Option<String>,
    #[serde(default)]
    pub limits: Limits,
}

/// The attribute that keeps a system's own id when an instance reads the employee id from
/// elsewhere (see [`Definition::with_fields`]).
pub const SYSTEM_ID: &str = "system_id";

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
    /// A table some tenants cannot read (an endpoint in beta, or one a tenant has not
    /// enabled): answered with 403 or 404, it is empty and the values stay as the system gave
    /// them, instead of failing the fetch.
    #[serde(default)]
    pub optional: bool,
}

/// A request made for each person, with its own paging and list path.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpandSpec {
    pub request: RequestSpec,
    #[serde(default)]
    pub pagination: Pagination,
    #[serde(default)]
    pub records: RecordsSpec,
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
    /// Where the system says whether it can answer such a request (SCIM's
    /// `/ServiceProviderConfig` and `filter.supported`): `check --connect` asks it and refuses
    /// `http.incremental` unless the answer at `path` is true.
    pub capability: Option<CapabilitySpec>,
}

/// A document of the system that says whether it supports something, and where it says so.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapabilitySpec {
    /// A GET request, with the definition's credentials and request headers.
    pub url: String,
    /// Where the answer is: a JSON `true` (or the text `true`) means supported.
    pub path: JsonPath,
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
#[allow(
    clippy::large_enum_variant,
    reason = "one per definition, read once when it is loaded"
)]
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
        /// Headers of the token request, e.g. an API gateway's subscription key.
        #[serde(default)]
        headers: BTreeMap<String, String>,
        /// A request made first whose answer, as text, is `{assertion}` in the token request:
        /// an OAuth2 SAML bearer assertion (RFC 7522) that the system itself issues, as SAP
        /// SuccessFactors' `/oauth/idp` does.
        assertion: Option<AssertionSpec>,
        /// Where the token is in the answer: `access_token`, `data.token`.
        token_path: JsonPath,
        /// Where its lifetime in seconds is, if the answer says.
        expires_in_path: Option<JsonPath>,
        /// A secret the system replaces at every exchange (an OAuth2 refresh token that is
        /// used once): the newest is kept, sealed, and used instead of the configured one.
        rotated_secret: Option<RotatedSecret>,
        #[serde(default = "authorization")]
        header: String,
        /// The header's value; `{token}` is the token.
        #[serde(default = "bearer_token")]
        value: String,
    },
}

/// A secret the token answer replaces: which one, and where the new value is in the answer.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotatedSecret {
    /// The secret's name, one of the definition's `secrets` (`refresh_token`).
    pub name: String,
    /// Where the new value is in the token answer (`refresh_token`).
    pub path: JsonPath,
}

/// The request whose plain-text answer is the assertion a token request sends.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssertionSpec {
    pub url: String,
    #[serde(default = "post")]
    pub method: Method,
    pub body: Option<Value>,
    #[serde(default)]
    pub form: BTreeMap<String, String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
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

/// Where paging parameters are sent.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ParamPlace {
    #[default]
    Query,
    /// As numbers in the request's JSON body.
    Body,
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
        /// Where the page number and size go: the query string (the default) or, for search
        /// endpoints that take a POST, members of the JSON body (`in = "body"`).
        #[serde(default, rename = "in")]
        place: ParamPlace,
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
    JsonPath::root()
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
    pub(super) fn problems(&self) -> Vec<String> {
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
    pub(super) fn problems(&self, at: &str) -> Vec<String> {
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
        definition.checked()
    }

    /// The definition with a connector instance's field overrides (`[connectors.ID.http.fields]`)
    /// laid over its own fields, checked as the definition's own mappings are.
    ///
    /// A definition whose managers are given by the system's own id, read as the employee id,
    /// still finds them when an instance reads the employee id (and not the manager) from
    /// elsewhere: the system's id is then kept as `attributes.system_id`, and managers are
    /// looked up through it.
    pub fn with_fields(self, overrides: &toml::Table) -> Result<Definition, String> {
        if overrides.is_empty() {
            return Ok(self);
        }
        let mut fields = self
            .fields
            .with_overrides(overrides)
            .map_err(|problems| problems.join("; "))?;
        let mut manager_by_attribute = self.manager_by_attribute.clone();
        // An instance that reads the manager from elsewhere too says what it is itself.
        if overrides.contains_key("employee_id")
            && !overrides.contains_key("manager_id")
            && manager_by_attribute.is_none()
        {
            fields
                .attributes
                .entry(SYSTEM_ID.to_string())
                .or_insert_with(|| self.fields.employee_id.clone());
            manager_by_attribute = Some(SYSTEM_ID.to_string());
        }
        Definition {
            fields,
            manager_by_attribute,
            ..self
        }
        .checked()
    }

    /// The definition with every path reading member names and values without letter case.
    fn folding_case(mut self) -> Definition {
        self.fields = self.fields.folding_case();
        self.records.path = self.records.path.folding_case();
        if let Some(capability) = self
            .incremental
            .as_mut()
            .and_then(|i| i.capability.as_mut())
        {
            capability.path = capability.path.clone().folding_case();
        }
        for lookup in self.lookups.values_mut() {
            lookup.records.path = lookup.records.path.clone().folding_case();
            lookup.key = lookup.key.clone().folding_case();
            lookup.value = lookup.value.clone().folding_case();
        }
        self
    }

    /// The definition with a connector instance's `extend_body` added to its request's JSON
    /// body: lists appended to, tables merged, other values set.
    pub fn with_body_extended(mut self, extend: &toml::Table) -> Result<Definition, String> {
        if extend.is_empty() {
            return Ok(self);
        }
        self.request.body = Some(extended_body(self.request.body.as_ref(), extend)?);
        self.checked()
    }

    /// The definition if its field map, lookups, variables, limits and paging hold together;
    /// else every problem, joined.
    fn checked(self) -> Result<Definition, String> {
        let definition = if self.case_insensitive {
            self.folding_case()
        } else {
            self
        };
        let problems = definition.problems();
        if problems.is_empty() {
            Ok(definition)
        } else {
            Err(problems.join("; "))
        }
    }
}

/// The definition's request body with an instance's `extend_body` added: lists appended to,
/// tables merged, other values set. The request must have a JSON object body.
fn extended_body(
    body: Option<&serde_json::Value>,
    extend: &toml::Table,
) -> Result<serde_json::Value, String> {
    let Some(serde_json::Value::Object(body)) = body else {
        return Err(
            "the definition's request has no JSON object body to extend; remove extend_body"
                .to_string(),
        );
    };
    let extend = serde_json::to_value(extend).map_err(|e| e.to_string())?;
    fn add(into: &mut serde_json::Value, extra: serde_json::Value) {
        use serde_json::Value;
        match (into, extra) {
            (Value::Array(list), Value::Array(more)) => {
                for item in more {
                    if !list.contains(&item) {
                        list.push(item);
                    }
                }
            }
            (Value::Object(map), Value::Object(more)) => {
                for (key, value) in more {
                    match map.get_mut(&key) {
                        Some(existing) => add(existing, value),
                        None => {
                            map.insert(key, value);
                        }
                    }
                }
            }
            (slot, value) => *slot = value,
        }
    }
    let mut out = serde_json::Value::Object(body.clone());
    add(&mut out, extend);
    Ok(out)
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
    fn a_persons_value_is_refused_outside_a_request_per_person() {
        let found = definition(
            "[lookups.depts]\nrequest = { url = \"https://hr.example/d/{record:id}\" }\nkey = \"id\"\nvalue = \"name\"\n",
        );

        assert!(
            found
                .unwrap_err()
                .contains("lookups.depts.request.url: `{record:…}` is a value of a person"),
        );
    }

    #[test]
    fn page_numbers_in_the_body_need_a_post_with_an_object_body() {
        let paging =
            "[pagination]\nkind = \"page\"\npage_param = \"page\"\nsize = 10\nin = \"body\"\n";

        let get = definition(paging);
        let post = Definition::parse(&format!(
            "name = \"T\"\n[auth]\nkind = \"none\"\n[records]\n[request]\nmethod = \"POST\"\nurl = \"https://hr.example/people\"\nbody = {{ fields = [\"id\"] }}\n\
             [fields.employee_id]\npath = \"id\"\n[fields.email]\npath = \"mail\"\n{paging}"
        ));

        assert!(get.unwrap_err().contains("pagination.in"));
        assert!(post.is_ok(), "{:?}", post.err());
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
    fn watermark_is_written_in_the_format_the_system_wants() {
        let since = DateTime::parse_from_rfc3339("2026-11-23T08:15:30+00:00")
            .unwrap()
            .with_timezone(&Utc);
        let spec = |format: &str| IncrementalSpec {
            query: BTreeMap::new(),
            body: None,
            format: format.to_string(),
            capability: None,
        };

        assert_eq!(spec("rfc3339").format_since(since), "2026-11-23T08:15:30Z");
        assert_eq!(spec("unix").format_since(since), "1795421730");
        assert_eq!(
            spec("%Y-%m-%dT%H:%M:%S").format_since(since),
            "2026-11-23T08:15:30"
        );
    }

    #[test]
    fn extend_body_appends_to_lists_merges_tables_and_sets_the_rest() {
        let body = serde_json::json!({"fields": ["root.id", "root.email"], "showInactive": true, "filters": {"a": 1}});
        let extend: toml::Table = toml::from_str(
            "fields = [\"work.custom.nr\", \"root.id\"]\nshowInactive = false\n[filters]\nb = 2\n",
        )
        .unwrap();

        let out = extended_body(Some(&body), &extend).unwrap();

        assert_eq!(
            out,
            serde_json::json!({"fields": ["root.id", "root.email", "work.custom.nr"], "showInactive": false, "filters": {"a": 1, "b": 2}})
        );
    }

    #[test]
    fn extend_body_needs_an_object_body() {
        let extend: toml::Table = toml::from_str("fields = [\"x\"]").unwrap();

        assert!(extended_body(None, &extend).is_err());
        assert!(extended_body(Some(&serde_json::json!([1])), &extend).is_err());
    }
}
