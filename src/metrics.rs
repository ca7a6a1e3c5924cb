//! Process metrics in the Prometheus text format: counters and a histogram kept in memory,
//! rendered by `GET /metrics`.
//!
//! Counters count what this process did since it started (runs by status, changes by kind,
//! HTTP retries, mails sent and failed), as Prometheus expects of counters: with several
//! replicas, each reports its own and the server sums them. Gauges that describe the shared
//! database (the outbox's depth and age) are read at scrape time and passed to [`render`].
//! Metric names are constants here, so the names are a contract in one place.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{LazyLock, Mutex};

/// Runs that ended, by connector and status.
pub const RUNS_TOTAL: &str = "hrsync_runs_total";
/// Change lines of ended runs, by kind.
pub const CHANGES_TOTAL: &str = "hrsync_changes_total";
/// How long fetches took, by connector.
pub const FETCH_DURATION: &str = "hrsync_fetch_duration_seconds";
/// HTTP requests to HR systems that were retried, by system.
pub const HTTP_RETRIES_TOTAL: &str = "hrsync_http_retries_total";
/// Emails sent and emails whose attempt failed.
pub const MAILS_SENT_TOTAL: &str = "hrsync_mails_sent_total";
pub const MAILS_FAILED_TOTAL: &str = "hrsync_mails_failed_total";
/// Emails waiting in the outbox, and the age of the oldest (database gauges).
pub const OUTBOX_DEPTH: &str = "hrsync_outbox_depth";
pub const OUTBOX_OLDEST_AGE: &str = "hrsync_outbox_oldest_age_seconds";
pub const OUTBOX_UNDELIVERABLE: &str = "hrsync_outbox_undeliverable";
/// Restarts of the daemon's supervised tasks after they ended unexpectedly, by task (and
/// connector, for a scheduler).
pub const TASK_RESTARTS_TOTAL: &str = "hrsync_task_restarts_total";

/// The upper bounds of the fetch duration histogram, in seconds.
const BUCKETS: [f64; 9] = [0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0, 300.0];

type Labels = Vec<(&'static str, String)>;

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
struct Registry {
    counters: BTreeMap<(&'static str, Labels), u64>,
    histograms: BTreeMap<(&'static str, Labels), Histogram>,
}

static REGISTRY: LazyLock<Mutex<Registry>> = LazyLock::new(Mutex::default);

fn with_registry(f: impl FnOnce(&mut Registry)) {
    // A poisoned lock only means another thread panicked mid-update; the counts stay usable.
    let mut registry = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    f(&mut registry);
}

fn add(name: &'static str, labels: Labels, by: u64) {
    with_registry(|r| *r.counters.entry((name, labels)).or_default() += by);
}

/// A run ended with this status and these change counts.
pub fn run_ended(connector: &str, status: &str, counts: &BTreeMap<String, i64>) {
    add(
        RUNS_TOTAL,
        vec![
            ("connector", connector.to_string()),
            ("status", status.to_string()),
        ],
        1,
    );
    for (kind, n) in counts {
        add(
            CHANGES_TOTAL,
            vec![("kind", kind.clone())],
            u64::try_from(*n).unwrap_or(0),
        );
    }
}

/// A fetch took this many seconds.
pub fn fetch_took(connector: &str, seconds: f64) {
    with_registry(|r| {
        let h = r
            .histograms
            .entry((FETCH_DURATION, vec![("connector", connector.to_string())]))
            .or_default();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += seconds;
    });
}

/// A request to an HR system is being retried.
pub fn http_retry(system: &str) {
    add(HTTP_RETRIES_TOTAL, vec![("system", system.to_string())], 1);
}

/// A pass of the mail worker sent and failed this many.
pub fn mails(sent: usize, failed: usize) {
    if sent > 0 {
        add(MAILS_SENT_TOTAL, Vec::new(), sent as u64);
    }
    if failed > 0 {
        add(MAILS_FAILED_TOTAL, Vec::new(), failed as u64);
    }
}

/// A supervised task of the daemon ended unexpectedly and is restarted.
pub fn task_restarted(task: &str, connector: Option<&str>) {
    let mut labels = vec![("task", task.to_string())];
    if let Some(connector) = connector {
        labels.push(("connector", connector.to_string()));
    }
    add(TASK_RESTARTS_TOTAL, labels, 1);
}

/// A gauge read at scrape time.
pub struct Gauge {
    pub name: &'static str,
    pub help: &'static str,
    pub value: f64,
}

fn help(name: &str) -> (&'static str, &'static str) {
    match name {
        RUNS_TOTAL => ("counter", "Runs that ended, by connector and status."),
        CHANGES_TOTAL => ("counter", "Change lines of ended runs, by kind."),
        HTTP_RETRIES_TOTAL => ("counter", "Requests to HR systems that were retried."),
        MAILS_SENT_TOTAL => ("counter", "Emails sent."),
        MAILS_FAILED_TOTAL => ("counter", "Email attempts that failed and will be retried."),
        FETCH_DURATION => ("histogram", "How long fetches took."),
        TASK_RESTARTS_TOTAL => (
            "counter",
            "Daemon tasks restarted after they ended unexpectedly.",
        ),
        _ => ("untyped", ""),
    }
}

fn label_text(labels: &[(&'static str, String)], extra: Option<(&str, String)>) -> String {
    let parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| (*k, v.clone()))
        .chain(extra)
        .map(|(k, v)| {
            let v = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{k}=\"{v}\"")
        })
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

/// Every metric in the Prometheus text exposition format, with `gauges` read by the caller.
pub fn render(gauges: &[Gauge]) -> String {
    let mut out = String::new();
    let registry = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    // Every counter is announced even before it first counts, so dashboards see zero.
    for name in [
        RUNS_TOTAL,
        CHANGES_TOTAL,
        HTTP_RETRIES_TOTAL,
        MAILS_SENT_TOTAL,
        MAILS_FAILED_TOTAL,
        TASK_RESTARTS_TOTAL,
    ] {
        let (kind, text) = help(name);
        let _ = writeln!(out, "# HELP {name} {text}\n# TYPE {name} {kind}");
        let mut any = false;
        for ((n, labels), value) in &registry.counters {
            if *n == name {
                any = true;
                let _ = writeln!(out, "{name}{} {value}", label_text(labels, None));
            }
        }
        if !any && matches!(name, MAILS_SENT_TOTAL | MAILS_FAILED_TOTAL) {
            let _ = writeln!(out, "{name} 0");
        }
        // The mail worker runs in every daemon: its restarts show as zero from the start.
        if name == TASK_RESTARTS_TOTAL
            && !registry.counters.keys().any(|(n, l)| {
                *n == name && l.iter().any(|(k, v)| *k == "task" && v == "mail_worker")
            })
        {
            let _ = writeln!(out, "{name}{{task=\"mail_worker\"}} 0");
        }
    }
    let (kind, text) = help(FETCH_DURATION);
    let _ = writeln!(
        out,
        "# HELP {FETCH_DURATION} {text}\n# TYPE {FETCH_DURATION} {kind}"
    );
    for ((_, labels), h) in &registry.histograms {
        for (i, bound) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{FETCH_DURATION}_bucket{} {}",
                label_text(labels, Some(("le", bound.to_string()))),
                h.counts[i]
            );
        }
        let _ = writeln!(
            out,
            "{FETCH_DURATION}_bucket{} {}",
            label_text(labels, Some(("le", "+Inf".to_string()))),
            h.count
        );
        let _ = writeln!(
            out,
            "{FETCH_DURATION}_sum{} {}",
            label_text(labels, None),
            h.sum
        );
        let _ = writeln!(
            out,
            "{FETCH_DURATION}_count{} {}",
            label_text(labels, None),
            h.count
        );
    }
    drop(registry);
    for g in gauges {
        let _ = writeln!(
            out,
            "# HELP {} {}\n# TYPE {} gauge\n{} {}",
            g.name, g.help, g.name, g.name, g.value
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_histograms_and_gauges_render_in_the_text_format() {
        let counts = BTreeMap::from([("invite".to_string(), 3)]);
        run_ended("render_test", "succeeded", &counts);
        fetch_took("render_test", 0.3);

        let text = render(&[Gauge {
            name: OUTBOX_DEPTH,
            help: "Emails waiting.",
            value: 2.0,
        }]);

        assert!(
            text.contains("hrsync_runs_total{connector=\"render_test\",status=\"succeeded\"} 1")
        );
        assert!(text.contains("hrsync_changes_total{kind=\"invite\"}"));
        assert!(text.contains(
            "hrsync_fetch_duration_seconds_bucket{connector=\"render_test\",le=\"0.25\"} 0"
        ));
        assert!(text.contains(
            "hrsync_fetch_duration_seconds_bucket{connector=\"render_test\",le=\"0.5\"} 1"
        ));
        assert!(text.contains("# TYPE hrsync_outbox_depth gauge\nhrsync_outbox_depth 2"));
        assert!(text.contains("# TYPE hrsync_task_restarts_total counter\n"));
        assert!(text.contains("hrsync_task_restarts_total{task=\"mail_worker\"} 0"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(
            label_text(&[("connector", "a\"b\\c".to_string())], None),
            "{connector=\"a\\\"b\\\\c\"}"
        );
    }
}
