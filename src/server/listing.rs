//! The API's paged lists besides the accounts: runs, filtered (the filter the runs page shares)
//! and paged by a cursor, and the audit trail as JSON or CSV; each names its next page in a
//! `Link` header (RFC 8288).

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::Daemon;
use super::api::{error, internal, json_text};
use crate::domain::{RunMode, RunStatus, Trigger};
use crate::planner::ChangeKind;
use crate::report;
use crate::store::RunFilter;

type Shared = Arc<Daemon>;

/// The filters of the runs list, shared by `/api/runs` and the runs page; an empty value is
/// no filter.
#[derive(Deserialize, Default, Clone)]
pub(super) struct RunsQuery {
    pub limit: Option<i64>,
    pub connector: Option<String>,
    pub status: Option<String>,
    pub mode: Option<String>,
    pub trigger: Option<String>,
    /// Runs with a change line of this kind.
    pub kind: Option<String>,
    /// YYYY-MM-DD (UTC): runs started on or after that day.
    pub from: Option<String>,
    /// YYYY-MM-DD (UTC): runs started on or before that day.
    pub to: Option<String>,
    /// `newest` (the default) or `oldest` first.
    pub order: Option<String>,
    /// The cursor, newest first: runs older than this id (the last of the page before).
    pub before: Option<i64>,
    /// The cursor, oldest first: runs newer than this id (the last of the page before).
    pub after: Option<i64>,
}

impl RunsQuery {
    /// The filter, or what in it is not understood.
    pub fn filter(&self) -> Result<RunFilter, String> {
        let some = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
        let parse = |name: &str, v: &Option<String>, ok: fn(&str) -> bool| match some(v) {
            Some(text) if !ok(&text) => Err(format!("`{name}` `{text}` is not one of its values")),
            other => Ok(other),
        };
        let day = |name: &str, v: &Option<String>| -> Result<Option<chrono::NaiveDate>, String> {
            some(v)
                .map(|t| {
                    chrono::NaiveDate::parse_from_str(t.trim(), "%Y-%m-%d")
                        .map_err(|_| format!("`{name}` is a date, YYYY-MM-DD"))
                })
                .transpose()
        };
        let midnight = |d: chrono::NaiveDate| d.and_time(chrono::NaiveTime::MIN).and_utc();
        let status = parse("status", &self.status, |t| RunStatus::parse(t).is_some())?;
        let mode = parse("mode", &self.mode, |t| RunMode::parse(t).is_some())?;
        let trigger = parse("trigger", &self.trigger, |t| Trigger::parse(t).is_some())?;
        let kind = parse("kind", &self.kind, |t| ChangeKind::parse(t).is_some())?;
        let order = parse("order", &self.order, |t| matches!(t, "newest" | "oldest"))?;
        Ok(RunFilter {
            connector: some(&self.connector),
            status: status.as_deref().and_then(RunStatus::parse),
            mode: mode.as_deref().and_then(RunMode::parse),
            trigger: trigger.as_deref().and_then(Trigger::parse),
            kind,
            since: day("from", &self.from)?.map(midnight),
            until: day("to", &self.to)?
                .and_then(|d| d.succ_opt())
                .map(midnight),
            oldest_first: order.as_deref() == Some("oldest"),
        })
    }

    /// The cursor of the page asked for, in the order asked for.
    pub fn cursor(&self) -> Option<i64> {
        if self.order.as_deref() == Some("oldest") {
            self.after
        } else {
            self.before
        }
    }

    /// The query string of this filter and order with the cursor `last` (the last id of this
    /// page), for the next page's link.
    pub fn query_string(&self, last: i64) -> String {
        let mut pairs = form_urlencoded::Serializer::new(String::new());
        for (key, value) in [
            ("connector", &self.connector),
            ("status", &self.status),
            ("mode", &self.mode),
            ("trigger", &self.trigger),
            ("kind", &self.kind),
            ("from", &self.from),
            ("to", &self.to),
            ("order", &self.order),
        ] {
            if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
                pairs.append_pair(key, value);
            }
        }
        let cursor = if self.order.as_deref() == Some("oldest") {
            "after"
        } else {
            "before"
        };
        pairs.append_pair(cursor, &last.to_string());
        pairs.finish()
    }
}

/// The newest runs the filter selects (50, up to 1,000), older than `before` when given;
/// `Link` names the next (older) page.
pub(super) async fn list_runs(
    State(daemon): State<Shared>,
    Query(q): Query<RunsQuery>,
) -> Response {
    let limit = q.limit.unwrap_or(50).clamp(1, 1000);
    let filter = match q.filter() {
        Ok(filter) => filter,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    match daemon.app.store.find_runs(&filter, q.cursor(), limit).await {
        Ok(runs) => {
            let mut response = json_text(StatusCode::OK, report::runs_json(&runs));
            if runs.len() as i64 == limit
                && let Some(last) = runs.last()
                && let Ok(link) = HeaderValue::from_str(&format!(
                    "</api/runs?{}&limit={limit}>; rel=\"next\"",
                    q.query_string(last.id)
                ))
            {
                response.headers_mut().insert(header::LINK, link);
            }
            response
        }
        Err(e) => internal(e.into()),
    }
}

#[derive(Deserialize)]
pub(super) struct AuditQuery {
    /// The cursor: entries with an id above this.
    after: Option<i64>,
    limit: Option<i64>,
    /// `json` (default) or `csv`.
    format: Option<String>,
}

/// The audit trail, oldest first (100, up to 1,000 a page), as JSON or CSV; `Link` names the
/// next page.
pub(super) async fn audit_trail(
    State(daemon): State<Shared>,
    Query(q): Query<AuditQuery>,
) -> Response {
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let events = match daemon
        .app
        .store
        .audit_trail(q.after.unwrap_or(0), limit)
        .await
    {
        Ok(events) => events,
        Err(e) => return internal(e.into()),
    };
    let csv = q.format.as_deref() == Some("csv");
    let mut response = if csv {
        match report::audit_csv(&events) {
            Ok(text) => (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
                text,
            )
                .into_response(),
            Err(e) => return internal(e),
        }
    } else {
        json_text(StatusCode::OK, report::audit_json(&events))
    };
    if events.len() as i64 == limit
        && let Some(last) = events.last()
        && let Ok(link) = HeaderValue::from_str(&format!(
            "</api/audit?after={}&limit={limit}&format={}>; rel=\"next\"",
            last.id,
            if csv { "csv" } else { "json" }
        ))
    {
        response.headers_mut().insert(header::LINK, link);
    }
    response
}
