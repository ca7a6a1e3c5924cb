//! A run's feed: the records a connector's source gives, read in full or (for an incremental
//! connector) as what changed merged into the records it last knew, every record cleaned at
//! this one edge whatever the source kind.

use chrono::{DateTime, Utc};

use super::{App, Connector};
use crate::config::{HttpSettings, Loaded, Source};
use crate::connectors::csv;
use crate::connectors::http::{CredentialKeeper, FetchOptions, HttpSource, SendFuture};
use crate::domain::{FetchKind, HrRecord};
use crate::store::FeedUpdate;

/// What a fetch gave a run: the records to plan on and, for an incremental connector, what to
/// keep when the run is applied.
#[derive(Clone, Debug)]
pub struct Feed {
    pub records: Vec<HrRecord>,
    /// For an incremental connector: how this fetch read the feed.
    pub incremental: Option<IncrementalFetch>,
}

/// How an incremental connector's fetch went.
#[derive(Clone, Debug)]
pub struct IncrementalFetch {
    /// When the fetch started: the watermark once the run is applied.
    pub started: DateTime<Utc>,
    pub kind: FetchKind,
    /// The definition and variables the records were mapped with.
    pub fingerprint: String,
}

impl Feed {
    /// Frees the records once the plan is made, unless the store keeps them (an incremental
    /// connector's merged feed, [`Feed::update`]): at 100,000 people they are about 80 MB, the
    /// room that applying a first sync needs (about 45 MB).
    pub(super) fn release_unkept(&mut self) {
        if self.incremental.is_none() {
            self.records = Vec::new();
        }
    }

    pub(super) fn update(&self) -> Option<FeedUpdate<'_>> {
        self.incremental.as_ref().map(|inc| FeedUpdate {
            watermark: inc.started,
            full: inc.kind == FetchKind::Full,
            records: &self.records,
            fingerprint: &inc.fingerprint,
        })
    }
}

impl App {
    /// [`App::fetch_feed`], with every record's text cleaned at this one edge whatever the
    /// source kind ([`HrRecord::normalised`]), so nothing after it meets a control character.
    pub(super) async fn fetch_clean(
        &self,
        cx: &Connector<'_>,
        force_full: bool,
    ) -> anyhow::Result<Feed> {
        let mut feed = self.fetch_feed(cx, force_full).await?;
        feed.records = std::mem::take(&mut feed.records)
            .into_iter()
            .map(HrRecord::normalised)
            .collect();
        if let Some((record, (field, why))) = feed
            .records
            .iter()
            .find_map(|r| r.unstorable_field().map(|f| (r, f)))
        {
            anyhow::bail!(
                "the record of employee `{}` cannot be stored: its field `{field}` {why}",
                crate::domain::single_line(
                    &record
                        .employee_id
                        .as_str()
                        .chars()
                        .take(64)
                        .collect::<String>()
                )
            );
        }
        Ok(feed)
    }

    /// [`App::fetch`], reading an incremental connector's whole feed when `force_full`.
    async fn fetch_feed(&self, cx: &Connector<'_>, force_full: bool) -> anyhow::Result<Feed> {
        let connector = cx.id;
        match cx.source {
            Source::Csv(csv_settings) => {
                let csv_settings = csv_settings.clone();
                let records =
                    tokio::task::spawn_blocking(move || csv::read_file(&csv_settings)).await??;
                Ok(Feed {
                    records,
                    incremental: None,
                })
            }
            Source::Http(http) => {
                let source = build_http(http)?.with_keeper(std::sync::Arc::new(StoreKeeper {
                    store: self.store.clone(),
                    connector: connector.to_string(),
                }));
                let Some(incremental) = &http.incremental else {
                    let fetched = source
                        .fetch_with(&FetchOptions {
                            progress: self.progress.clone(),
                            ..FetchOptions::default()
                        })
                        .await?;
                    return Ok(Feed {
                        records: fetched.records,
                        incremental: None,
                    });
                };
                let started = Utc::now();
                let state = self.store.feed_state(connector).await?;
                let fingerprint = feed_fingerprint(http)?;
                let remapped = state
                    .fingerprint
                    .as_ref()
                    .is_some_and(|kept| *kept != fingerprint);
                if remapped {
                    tracing::info!(
                        "The definition or its variables changed since the records were kept; reading the whole feed"
                    );
                }
                let full = force_full
                    || remapped
                    || incremental.full_due(
                        state.watermark,
                        state.last_full_at,
                        state.incremental_runs,
                        started,
                    );
                let since = state
                    .watermark
                    .filter(|_| !full)
                    .map(|w| w - chrono::Duration::minutes(i64::from(incremental.overlap_minutes)));
                let fetched = source
                    .fetch_with(&FetchOptions {
                        since,
                        progress: self.progress.clone(),
                        ..FetchOptions::default()
                    })
                    .await?;
                let records = if full {
                    tracing::info!(records = fetched.records.len(), "Read the whole feed");
                    fetched.records
                } else {
                    let known = self.store.feed_snapshot(connector).await?;
                    let mut delta = fetched.records;
                    source.resolve_managers(&mut delta, &known);
                    tracing::info!(
                        changed = delta.len(),
                        known = known.len(),
                        since = %since.map(|s| s.to_rfc3339()).unwrap_or_default(),
                        "Read what changed since the watermark"
                    );
                    merge_delta(known, delta)
                };
                Ok(Feed {
                    records,
                    incremental: Some(IncrementalFetch {
                        started,
                        kind: if full {
                            FetchKind::Full
                        } else {
                            FetchKind::Incremental
                        },
                        fingerprint,
                    }),
                })
            }
        }
    }
}

/// The HTTP source of an `http` connector, bound to its variables and secrets read from the
/// environment. Where its definition replaces a secret at every exchange (a rotating refresh
/// token), the database is opened to keep the newest, as a run does: a `fetch` or
/// `check --connect` must not use up the one a run needs.
pub async fn http_source(config: &Loaded, connector: &str) -> anyhow::Result<HttpSource> {
    let source = config
        .connector(connector)?
        .source()
        .map_err(|(key, message)| anyhow::anyhow!("connectors.{connector}.{key}: {message}"))?;
    let source = match source {
        Source::Http(http) => build_http(http)?,
        Source::Csv(_) => anyhow::bail!("connector `{connector}` is not an http connector"),
    };
    if !source.rotates_a_secret() {
        return Ok(source);
    }
    let store = super::open_store(config).await?;
    Ok(source.with_keeper(std::sync::Arc::new(StoreKeeper {
        store,
        connector: connector.to_string(),
    })))
}

/// Keeps a connector's rotated secret in the database.
struct StoreKeeper {
    store: crate::store::Store,
    connector: String,
}

impl CredentialKeeper for StoreKeeper {
    fn kept<'a>(&'a self, name: &'a str) -> SendFuture<'a, Result<Option<String>, String>> {
        Box::pin(async move {
            self.store
                .kept_credential(&self.connector, name)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn keep<'a>(&'a self, name: &'a str, sealed: String) -> SendFuture<'a, Result<(), String>> {
        Box::pin(async move {
            self.store
                .keep_credential(&self.connector, name, &sealed, Utc::now())
                .await
                .map_err(|e| e.to_string())
        })
    }
}

/// The HTTP source of these `[http]` settings: their definition, variables and secrets.
fn build_http(http: &HttpSettings) -> anyhow::Result<HttpSource> {
    let definition = http
        .load_definition()
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .definition;
    Ok(HttpSource::new(
        definition,
        http.variables.clone(),
        http.read_secrets()?,
    )?)
}

/// A digest of what an http connector's records are mapped with: its definition file and the
/// instance's variables. Records kept under another digest are read again in full.
fn feed_fingerprint(http: &crate::config::HttpSettings) -> anyhow::Result<String> {
    let resolved = http.load_definition().map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    context.update(resolved.text.as_bytes());
    for (name, value) in &http.variables {
        context.update(format!("\0{name}={value}").as_bytes());
    }
    if !http.fields.is_empty() {
        context.update(format!("\0fields={}", http.fields).as_bytes());
    }
    if !http.extend_body.is_empty() {
        context.update(format!("\0extend_body={}", http.extend_body).as_bytes());
    }
    Ok(context
        .finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// What an incremental connector knows after a delta: every known record whose employee id
/// the delta does not mention, and the delta's records. People the delta leaves out are
/// unchanged, not gone; the periodic full fetch finds those who vanished.
pub(super) fn merge_delta(known: Vec<HrRecord>, delta: Vec<HrRecord>) -> Vec<HrRecord> {
    let changed: std::collections::HashSet<String> = delta
        .iter()
        .map(|r| r.employee_id.as_str().to_string())
        .collect();
    let mut merged: Vec<HrRecord> = known
        .into_iter()
        .filter(|r| !changed.contains(r.employee_id.as_str()))
        .collect();
    merged.extend(delta);
    merged
}
