//! Process metrics in the Prometheus text format: counters and a histogram kept in memory,
//! rendered by `GET /metrics`.
//!
//! Counters count what this process did since it started (runs by status, changes by kind,
//! HTTP retries, mails sent and failed), as Prometheus expects of counters: with several
//! replicas, each reports its own and the server sums them. Gauges that describe the shared
//! database (the outbox's depth and age) are read at scrape time and passed to [`render`].
//! Metric names are constants here, so the names are a contract in one place.
//!
//! The `metrics` facade records into one process-wide Prometheus recorder of
//! `metrics-exporter-prometheus` (atomic counters, a histogram with the buckets below), and its
//! renderer writes the text format, escaping label values as the format requires. The recorder is
//! used as a local recorder, never installed as the global one, so nothing else in the process
//! (a library, a test) can record into it or take its place.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusRecorder};

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

/// The process's recorder, with every metric described and the unlabelled counters (and the mail
/// worker's restarts) registered at zero, so dashboards see them before they first count.
static RECORDER: LazyLock<PrometheusRecorder> = LazyLock::new(|| {
    // The builder refuses only an empty bucket list, and `BUCKETS` is a non-empty constant;
    // should it ever refuse, the fetch durations are kept as a summary rather than lost.
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(FETCH_DURATION.to_string()), &BUCKETS)
        .unwrap_or_else(|_| PrometheusBuilder::new())
        .build_recorder();
    metrics::with_local_recorder(&recorder, || {
        describe_counter!(RUNS_TOTAL, "Runs that ended, by connector and status.");
        describe_counter!(CHANGES_TOTAL, "Change lines of ended runs, by kind.");
        describe_counter!(
            HTTP_RETRIES_TOTAL,
            "Requests to HR systems that were retried."
        );
        describe_counter!(MAILS_SENT_TOTAL, "Emails sent.");
        describe_counter!(
            MAILS_FAILED_TOTAL,
            "Email attempts that failed and will be retried."
        );
        describe_counter!(
            TASK_RESTARTS_TOTAL,
            "Daemon tasks restarted after they ended unexpectedly."
        );
        describe_histogram!(FETCH_DURATION, "How long fetches took.");
        counter!(MAILS_SENT_TOTAL).increment(0);
        counter!(MAILS_FAILED_TOTAL).increment(0);
        // The mail worker runs in every daemon: its restarts show as zero from the start.
        counter!(TASK_RESTARTS_TOTAL, "task" => "mail_worker").increment(0);
    });
    recorder
});

/// Records into the process's recorder.
fn record(f: impl FnOnce()) {
    metrics::with_local_recorder(&*RECORDER, f);
}

/// A run ended with this status and these change counts.
pub fn run_ended(connector: &str, status: &str, counts: &BTreeMap<String, i64>) {
    record(|| {
        counter!(RUNS_TOTAL, "connector" => connector.to_string(), "status" => status.to_string())
            .increment(1);
        for (kind, n) in counts {
            counter!(CHANGES_TOTAL, "kind" => kind.clone())
                .increment(u64::try_from(*n).unwrap_or(0));
        }
    });
}

/// A fetch took this many seconds.
pub fn fetch_took(connector: &str, seconds: f64) {
    record(|| histogram!(FETCH_DURATION, "connector" => connector.to_string()).record(seconds));
}

/// A request to an HR system is being retried.
pub fn http_retry(system: &str) {
    record(|| counter!(HTTP_RETRIES_TOTAL, "system" => system.to_string()).increment(1));
}

/// A pass of the mail worker sent and failed this many.
pub fn mails(sent: usize, failed: usize) {
    record(|| {
        counter!(MAILS_SENT_TOTAL).increment(sent as u64);
        counter!(MAILS_FAILED_TOTAL).increment(failed as u64);
    });
}

/// A supervised task of the daemon ended unexpectedly and is restarted.
pub fn task_restarted(task: &str, connector: Option<&str>) {
    record(|| match connector {
        Some(connector) => counter!(
            TASK_RESTARTS_TOTAL,
            "task" => task.to_string(),
            "connector" => connector.to_string()
        )
        .increment(1),
        None => counter!(TASK_RESTARTS_TOTAL, "task" => task.to_string()).increment(1),
    });
}

/// A gauge read at scrape time.
pub struct Gauge {
    pub name: &'static str,
    pub help: &'static str,
    pub value: f64,
}

/// Every metric in the Prometheus text exposition format, with `gauges` read by the caller.
///
/// The gauges go through a recorder of their own, made for this scrape: a gauge the caller could
/// not read this time (the database is down) is left out, instead of showing its last value.
pub fn render(gauges: &[Gauge]) -> String {
    let mut out = RECORDER.handle().render();
    let scrape = PrometheusBuilder::new().build_recorder();
    metrics::with_local_recorder(&scrape, || {
        for g in gauges {
            describe_gauge!(g.name, g.help);
            gauge!(g.name).set(g.value);
        }
    });
    out.push_str(&scrape.handle().render());
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
        http_retry("escape_test \"b\\c");

        let text = render(&[]);

        assert!(
            text.contains("hrsync_http_retries_total{system=\"escape_test \\\"b\\\\c\"} 1"),
            "{text}"
        );
    }
}
