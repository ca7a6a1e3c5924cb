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
//!
//! The engine is split by concern: `definition` is the format and its checks, `auth` the
//! credentials and the token cache, `paging` the walk over pages and its stop rules, `client`
//! one request with retry, backoff, pacing and the size cap, `redact` how URLs and texts are
//! shown without credentials, and `raw` the raw dumps. This module binds a definition to an
//! instance ([`HttpSource`]) and runs a fetch: lookup tables, then the people.

mod auth;
mod builtin;
mod checks;
mod client;
mod definition;
mod expand;
mod paging;
mod raw;
mod redact;
mod settings;

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use futures_util::{StreamExt, TryStreamExt};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tokio::sync::Mutex;
use tokio::time::Instant;

pub use builtin::BUILT_IN;

pub use definition::{
    AssertionSpec, Auth, CapabilitySpec, Definition, ExpandSpec, IncrementalSpec, Limits,
    LookupSpec, Method, Pagination, ParamPlace, RecordsSpec, RequestSpec,
};
pub use paging::link_next;
pub use settings::{
    DefinitionError, DefinitionLocation, HttpSettings, IncrementalSettings, ResolvedDefinition,
};

use raw::create_private_dir;

use super::mapping::{FieldMap, JsonPath, Lookups, MappingError, scalar_text};
use crate::domain::{HrRecord, Step};

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
    /// Said once: the mapping error is the message, not a cause below it.
    #[error(transparent)]
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
    /// Told of every page of people read.
    pub progress: crate::domain::Progress,
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

/// One endpoint being read: the people, or a lookup table.
#[derive(Clone)]
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
    /// Where a rotated secret (`auth.rotated_secret`) is kept between fetches, if anywhere.
    keeper: Option<std::sync::Arc<dyn CredentialKeeper>>,
    /// The newest value of the rotated secret this source knows, once it knows one.
    rotated: Mutex<Option<SecretString>>,
}

/// Keeps a rotated secret between fetches (and processes): the store of a connector, in
/// production. Values come and go sealed (see [`crate::secret::seal`]).
pub trait CredentialKeeper: Send + Sync {
    /// The sealed value kept under `name`, if any.
    fn kept<'a>(&'a self, name: &'a str) -> SendFuture<'a, Result<Option<String>, String>>;
    /// Keeps a sealed value under `name`, replacing the one before.
    fn keep<'a>(&'a self, name: &'a str, sealed: String) -> SendFuture<'a, Result<(), String>>;
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
        let fields = definition
            .fields
            .bind(&|name: &str| {
                variables
                    .get(name)
                    .or_else(|| definition.defaults.get(name))
                    .cloned()
            })
            .map_err(setup)?;
        let client = client::build_client(&definition.limits)
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
            keeper: None,
            rotated: Mutex::new(None),
        })
    }

    pub fn definition(&self) -> &Definition {
        &self.definition
    }

    /// The source keeping its rotated secret (`auth.rotated_secret`) with `keeper`.
    pub fn with_keeper(mut self, keeper: std::sync::Arc<dyn CredentialKeeper>) -> HttpSource {
        self.keeper = Some(keeper);
        self
    }

    /// Whether the definition's auth replaces a secret at every exchange.
    pub fn rotates_a_secret(&self) -> bool {
        matches!(
            self.definition.auth,
            Auth::Token {
                rotated_secret: Some(_),
                ..
            }
        )
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
                // A rotated secret's newest value comes in `extra` under its own name.
                Some(secret) => extra
                    .get(name)
                    .cloned()
                    .or_else(|| {
                        self.secrets
                            .get(secret)
                            .map(|s| s.expose_secret().to_string())
                    })
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
        let (pages, total) = if def.expand.is_empty() {
            self.walk(&endpoint, options, |page, items| {
                let source_name = format!("{} page {page}", def.name);
                for (i, item) in items.iter().enumerate() {
                    records.push(fields.record(item, &source_name, i + 1, &lookups)?);
                }
                options.progress.report(Step::Fetched {
                    source: &def.name,
                    pages: page,
                    records: records.len(),
                });
                Ok(())
            })
            .await?
        } else {
            // Each person needs requests of their own: the pages are kept, then each person
            // is expanded and read, page by page.
            let mut kept: Vec<(u32, Vec<Value>)> = Vec::new();
            let walked = self
                .walk(&endpoint, options, |page, items| {
                    kept.push((page, items.to_vec()));
                    Ok(())
                })
                .await?;
            for (page, items) in kept {
                let source_name = format!("{} page {page}", def.name);
                let items = self.expand_all(items, &source_name, options).await?;
                for (i, item) in items.iter().enumerate() {
                    records.push(fields.record(item, &source_name, i + 1, &lookups)?);
                }
                options.progress.report(Step::Fetched {
                    source: &def.name,
                    pages: page,
                    records: records.len(),
                });
            }
            walked
        };
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

    /// Whether the system says it can answer incremental requests, where the definition says
    /// how to ask (`[incremental] capability`); `None` when it does not.
    pub async fn incremental_supported(&self) -> Result<Option<bool>, FetchError> {
        let Some(capability) = self
            .definition
            .incremental
            .as_ref()
            .and_then(|i| i.capability.as_ref())
        else {
            return Ok(None);
        };
        let request = RequestSpec {
            method: Method::Get,
            url: capability.url.clone(),
            query: BTreeMap::new(),
            headers: self.definition.request.headers.clone(),
            body: None,
        };
        let (pagination, records) = (Pagination::None, RecordsSpec::default());
        let ep = Endpoint::new("capability".to_string(), &request, &pagination, &records);
        let url = self
            .render(&request.url, &BTreeMap::new())
            .map_err(|message| self.setup(message))?;
        let page = self
            .get_page(&ep, &url, &[], 1, &FetchOptions::default())
            .await?;
        let said = capability.path.select(&page.body).and_then(scalar_text);
        Ok(Some(
            said.is_some_and(|t| t.trim().eq_ignore_ascii_case("true")),
        ))
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
        let walked = self
            .walk(&endpoint, options, |_, items| {
                for item in items {
                    let text = |p: &JsonPath| p.select(item).and_then(scalar_text);
                    if let (Some(k), Some(v)) = (text(&spec.key), text(&spec.value)) {
                        table.insert(k, v);
                    }
                }
                Ok(())
            })
            .await;
        match walked {
            Ok(_) => Ok((name.to_string(), table)),
            // An optional table the tenant cannot read (an endpoint in beta, or not enabled
            // for it): the values stay as the system gave them.
            Err(FetchError::Status { status, .. })
                if spec.optional && matches!(status, 403 | 404) =>
            {
                tracing::warn!(
                    lookup = name,
                    status,
                    "The lookup table is not available; its values stay as the system gives them"
                );
                Ok((name.to_string(), BTreeMap::new()))
            }
            Err(e) => Err(e),
        }
    }

    /// A setup error of this source: a template that cannot be filled, a request that cannot be built.
    fn setup(&self, message: String) -> FetchError {
        FetchError::Setup {
            system: self.definition.name.clone(),
            message,
        }
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
        // An id the system gives in other letters (an email as the key) is found too, where
        // it stands for one person only.
        let mut by_folded: BTreeMap<String, Option<crate::domain::EmployeeId>> = BTreeMap::new();
        for (id, employee) in &by_system_id {
            by_folded
                .entry(id.to_lowercase())
                .and_modify(|e| *e = None)
                .or_insert_with(|| Some(employee.clone()));
        }
        for r in records.iter_mut() {
            r.manager_id = r.manager_id.take().and_then(|m| {
                by_system_id
                    .get(m.as_str())
                    .cloned()
                    .or_else(|| by_folded.get(&m.as_str().to_lowercase()).cloned().flatten())
            });
        }
    }
}

/// A boxed future that is `Send`. Futures made in a closure for a stream combinator are boxed
/// as this, so the compiler proves them `Send` where they are made; without it, the fetch as a
/// whole cannot be shown `Send` and cannot run on a spawned task.
pub type SendFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
