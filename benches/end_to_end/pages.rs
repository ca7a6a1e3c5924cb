//! The admin pages and the accounts API on a large organisation: after a first sync of the
//! largest size (whose run holds about three changes per person), `hrsync serve` on that
//! database answers the accounts page (first and a far page, sorted, searched), the run's
//! page and a far page of one of its kinds, the runs page, the teams page (first and a far
//! page), a person's page and the accounts API; each is asked for a few times and the median and slowest answer are printed with the
//! size of the answer, beside the target of 500 ms and 1 MB.

use std::fmt::Write as _;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};

use super::{Backend, Databases, MailTo, Organisation, sync, write_config_with};

/// The admin token of the bench's daemon (only its SHA-256 is configured).
const TOKEN: &str = "bench-admin-token-0123456789abcdef";
/// How many times each page is asked for.
const TIMES: usize = 5;

/// One page's answers.
pub struct PageFigure {
    pub backend: &'static str,
    pub people: usize,
    pub changes: i64,
    pub path: String,
    pub median: Duration,
    pub slowest: Duration,
    pub bytes: usize,
}

/// `hrsync serve` as a child process, killed when dropped.
struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A first sync of `people`, then the pages asked of `serve` on that database.
pub fn pages(
    backend: &Backend,
    people: usize,
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<Vec<PageFigure>> {
    let dir = tempfile::tempdir()?;
    let feed = dir.path().join("feed.csv");
    std::fs::write(&feed, Organisation::generate(people).csv())?;
    let databases = Databases::create(backend, dir.path())?;
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let server = format!(
        "\n[server]\nlisten = \"127.0.0.1:{port}\"\nadmin_token_sha256 = \"{}\"\ncookie_secure = false\n",
        sha256_hex(TOKEN)
    );
    write_config_with(
        dir.path(),
        &databases.hrsync_url,
        &feed,
        &MailTo::Files,
        &server,
    )?;
    sync(dir.path())?;
    let served = serve(dir.path())?;
    let base = format!("http://127.0.0.1:{port}");
    let figures = rt.block_on(ask_all(backend, people, &base));
    drop(served);
    // `HRSYNC_BENCH_KEEP=1` keeps the database and its configuration, for a closer look at
    // the queries (`EXPLAIN`); the bench then says where they are.
    if std::env::var_os("HRSYNC_BENCH_KEEP").is_some() {
        let kept = dir.keep();
        eprintln!(
            "kept {} ({})",
            kept.join("hrsync.toml").display(),
            databases.hrsync_url
        );
        return figures;
    }
    databases.drop_all()?;
    figures
}

fn sha256_hex(text: &str) -> String {
    hrsync::secret::sha256_hex(text)
}

fn serve(dir: &Path) -> anyhow::Result<Served> {
    let child = Command::new(env!("CARGO_BIN_EXE_hrsync"))
        .args([
            "--config",
            &dir.join("hrsync.toml").display().to_string(),
            "serve",
        ])
        .current_dir(dir)
        .env("HRSYNC_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting hrsync serve")?;
    Ok(Served(child))
}

async fn ask_all(backend: &Backend, people: usize, base: &str) -> anyhow::Result<Vec<PageFigure>> {
    let client = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..400 {
        if client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ensure!(ready, "hrsync serve did not come up");
    let runs: serde_json::Value = client
        .get(format!("{base}/api/runs"))
        .bearer_auth(TOKEN)
        .send()
        .await?
        .json()
        .await?;
    let run = &runs[0];
    let run_id = run["run_id"].as_i64().context("a run")?;
    let changes: i64 = run["counts"]
        .as_object()
        .context("counts")?
        .values()
        .filter_map(serde_json::Value::as_i64)
        .sum();
    let invites = run["counts"]["invite"].as_i64().unwrap_or(0);
    let far_kind_page = (invites / 100).max(1);
    let answer = client
        .get(format!("{base}/api/accounts?per_page=1&page=500"))
        .bearer_auth(TOKEN)
        .send()
        .await?;
    let total: usize = answer
        .headers()
        .get("x-total-count")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .context("X-Total-Count")?;
    let accounts: serde_json::Value = answer.json().await?;
    let someone = accounts[0]["email"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    // The last full page of 100.
    let far_page = (total / 100).max(1);
    let person = client
        .get(format!("{base}/accounts?q={someone}"))
        .bearer_auth(TOKEN)
        .send()
        .await?
        .text()
        .await?;
    let person_link = person
        .split("href=\"/people/")
        .skip(1)
        .find(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
        .and_then(|rest| rest.split('"').next())
        .map(|rest| format!("/people/{}", rest.replace("&amp;", "&")))
        .context("a person's link on the accounts page")?;
    let paths = [
        "/accounts".to_string(),
        format!("/accounts?page={far_page}"),
        "/accounts?sort=name&dir=desc".to_string(),
        "/accounts?q=example&status=invited".to_string(),
        "/api/accounts".to_string(),
        format!("/api/accounts?page={}&per_page=100", far_page),
        format!("/runs/{run_id}"),
        format!("/runs/{run_id}?kind=invite&page={far_kind_page}"),
        "/runs".to_string(),
        "/teams?org=bench".to_string(),
        "/teams?org=bench&page=40".to_string(),
        person_link,
    ];
    let mut figures = Vec::new();
    for path in paths {
        let mut times = Vec::new();
        let mut bytes = 0;
        for _ in 0..TIMES {
            let started = Instant::now();
            let response = client
                .get(format!("{base}{path}"))
                .bearer_auth(TOKEN)
                .send()
                .await?;
            ensure!(
                response.status().is_success(),
                "{path} answered {}",
                response.status()
            );
            bytes = response.bytes().await?.len();
            times.push(started.elapsed());
        }
        times.sort();
        figures.push(PageFigure {
            backend: backend.name(),
            people,
            changes,
            path,
            median: times[times.len() / 2],
            slowest: times[times.len() - 1],
            bytes,
        });
    }
    Ok(figures)
}

/// The pages' answers as a Markdown table.
pub fn table(figures: &[PageFigure]) -> String {
    let mut out = String::from(
        "| backend | people | run's changes | page | median ms | slowest ms | KiB | within 500 ms and 1 MiB |\n|---|---:|---:|---|---:|---:|---:|---|\n",
    );
    for f in figures {
        let ok = f.slowest <= Duration::from_millis(500) && f.bytes <= 1024 * 1024;
        let _ = writeln!(
            out,
            "| {} | {} | {} | `{}` | {} | {} | {:.0} | {} |",
            f.backend,
            f.people,
            f.changes,
            f.path,
            f.median.as_millis(),
            f.slowest.as_millis(),
            f.bytes as f64 / 1024.0,
            if ok { "yes" } else { "no" }
        );
    }
    out
}
