//! The end-to-end benchmark: what `hrsync sync` costs on a CSV export, beside the floor of the
//! same rows loaded and read back by the database's own bulk tools, in the same run.
//!
//! For each backend (SQLite in a temporary folder; PostgreSQL on the server that
//! `HRSYNC_BENCH_POSTGRES_URL` names, in databases created for the run and dropped after it)
//! and each size, it writes a generated organisation as a CSV export in the default layout and
//! measures:
//!
//! - the **floor**: the export bulk-loaded into a table of its columns (`sqlite3 .import`,
//!   `psql \copy`) and read back whole (`SELECT *`), through the database's own command-line
//!   tools;
//! - **hrsync**: the release binary's `sync --no-send` on that export, the report it prints
//!   included (sent to a pipe that is drained), for a first sync into an empty database, a
//!   re-sync with no changes and a re-sync with 1% churn (0.5% joiners, 0.25% leavers, 0.25%
//!   department moves). The email is queued, not sent: draining the outbox is its own figure.
//!
//! Each (backend, size) is measured `--runs` times (3 by default), each time from a fresh
//! database; the median time is printed beside the median of its floor (the load for a first
//! sync, the read for a re-sync) with the ratio, hrsync's fastest and slowest time, and the
//! highest peak memory of the `hrsync` process (its VmHWM, read while it runs).
//!
//! A second table (see `figures.rs`) holds what has no database floor, measured once at the
//! largest size: `hrsync mail send` draining a first sync's invitations to `.eml` files and to
//! an SMTP server on this machine (beside the targets of 60 and 120 seconds for 100,000), and
//! `hrsync fetch` reading the people from a SCIM server on this machine, beside the raw
//! download of the same pages.
//!
//! A third table (see `pages.rs`) holds the admin pages and the accounts API answering on the
//! largest size after its first sync (a run of about three changes per person): each page's
//! median and slowest answer and its size, beside the target of 500 ms and 1 MiB.
//!
//! Run it with `cargo bench --bench end_to_end`, narrowed with `-- --sizes 10000,100000`,
//! `-- --backend sqlite` (or `postgres`), `-- --runs 5` and `-- --only table` (or `figures`,
//! or `pages`).

// A benchmark stops at the first thing that is not as expected.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod figures;
mod pages;

use std::fmt::Write as _;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};

/// The allocator hrsync's binary uses, so that the driver's read below is measured as hrsync
/// would do it.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const POSTGRES_ENV: &str = "HRSYNC_BENCH_POSTGRES_URL";
const DEFAULT_SIZES: [usize; 2] = [10_000, 100_000];
const COLUMNS: [&str; 14] = [
    "employee_id",
    "email",
    "first_name",
    "last_name",
    "display_name",
    "department_code",
    "department",
    "location",
    "manager_id",
    "job_title",
    "employment_type",
    "start_date",
    "end_date",
    "status",
];

fn main() -> ExitCode {
    match run(&std::env::args().skip(1).collect::<Vec<_>>()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Clone, Debug)]
enum Backend {
    Sqlite,
    Postgres(String),
}

impl Backend {
    fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }
}

/// One line of the table.
struct Row {
    backend: &'static str,
    people: usize,
    scenario: &'static str,
    /// hrsync's times, one per repetition.
    hrsync: Vec<Duration>,
    floor_name: &'static str,
    /// The floor's times, one per repetition.
    floor: Vec<Duration>,
    /// The same read through sqlx, hrsync's database driver (re-syncs only), one per repetition.
    driver: Vec<Duration>,
    /// The highest peak of the repetitions.
    peak_mib: f64,
}

/// The median of some times (the upper one of an even count).
fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted.get(sorted.len() / 2).copied().unwrap_or_default()
}

fn run(args: &[String]) -> anyhow::Result<()> {
    let mut sizes = DEFAULT_SIZES.to_vec();
    let mut only: Option<String> = None;
    let mut runs = 3usize;
    let mut part_only: Option<String> = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--sizes" => {
                sizes = it
                    .next()
                    .context("--sizes needs a list such as 10000,100000")?
                    .split(',')
                    .map(|s| s.trim().parse::<usize>())
                    .collect::<Result<_, _>>()
                    .context("--sizes: whole numbers separated by commas")?;
            }
            "--backend" => only = Some(it.next().context("--backend needs a name")?.clone()),
            "--only" => {
                let part = it
                    .next()
                    .context("--only needs `table`, `figures` or `pages`")?;
                ensure!(
                    ["table", "figures", "pages"].contains(&part.as_str()),
                    "--only: `table`, `figures` or `pages`, not `{part}`"
                );
                part_only = Some(part.clone());
            }
            "--runs" => {
                runs = it
                    .next()
                    .context("--runs needs a number")?
                    .parse::<usize>()
                    .context("--runs: a whole number")?
                    .max(1);
            }
            // `cargo bench` passes `--bench`; other harness flags mean nothing here.
            _ => {}
        }
    }
    let mut backends = vec![Backend::Sqlite];
    match std::env::var(POSTGRES_ENV).ok().filter(|u| !u.is_empty()) {
        Some(url) => backends.push(Backend::Postgres(url)),
        None => eprintln!("{POSTGRES_ENV} is not set: PostgreSQL is skipped"),
    }
    backends.retain(|b| only.as_deref().is_none_or(|o| o == b.name()));
    let wants = |part: &str| part_only.as_deref().is_none_or(|p| p == part);
    if wants("table") {
        let mut rows = Vec::new();
        for backend in &backends {
            for &people in &sizes {
                eprintln!("{} · {people} people", backend.name());
                let mut measured: Vec<Row> = Vec::new();
                for _ in 0..runs {
                    let once = measure(backend, people)?;
                    if measured.is_empty() {
                        measured = once;
                        continue;
                    }
                    for (row, more) in measured.iter_mut().zip(once) {
                        row.hrsync.extend(more.hrsync);
                        row.floor.extend(more.floor);
                        row.driver.extend(more.driver);
                        row.peak_mib = row.peak_mib.max(more.peak_mib);
                    }
                }
                rows.extend(measured);
            }
        }
        println!("{}", table(&rows));
    }
    if wants("figures") {
        let people = sizes.iter().copied().max().unwrap_or(100_000);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let mut extra = Vec::new();
        for backend in &backends {
            eprintln!("{} · mail drain of {people} people", backend.name());
            extra.extend(figures::mail(backend, people, &rt)?);
        }
        eprintln!("SCIM fetch of {people} people");
        extra.push(figures::http(people, &rt)?);
        println!("{}", figures::table(&extra));
    }
    if wants("pages") {
        let people = sizes.iter().copied().max().unwrap_or(100_000);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let mut answered = Vec::new();
        for backend in &backends {
            eprintln!("{} · pages on {people} people", backend.name());
            answered.extend(pages::pages(backend, people, &rt)?);
        }
        println!("{}", pages::table(&answered));
    }
    Ok(())
}

fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| backend | people | scenario | hrsync ms | min–max | floor | floor ms | ratio | sqlx read ms | peak MiB |\n|---|---:|---|---:|---:|---|---:|---:|---:|---:|\n",
    );
    for r in rows {
        let (hrsync, floor) = (median(&r.hrsync), median(&r.floor));
        let ratio = hrsync.as_secs_f64() / floor.as_secs_f64().max(1e-6);
        let low = r.hrsync.iter().min().copied().unwrap_or_default();
        let high = r.hrsync.iter().max().copied().unwrap_or_default();
        let driver = if r.driver.is_empty() {
            "–".to_string()
        } else {
            median(&r.driver).as_millis().to_string()
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {}–{} | {} | {} | {ratio:.1}× | {driver} | {:.0} |",
            r.backend,
            r.people,
            r.scenario,
            hrsync.as_millis(),
            low.as_millis(),
            high.as_millis(),
            r.floor_name,
            floor.as_millis(),
            r.peak_mib
        );
    }
    out
}

/// The floor and the three hrsync scenarios for one backend and size.
fn measure(backend: &Backend, people: usize) -> anyhow::Result<Vec<Row>> {
    let dir = tempfile::tempdir()?;
    let feed = dir.path().join("feed.csv");
    let org = Organisation::generate(people);
    std::fs::write(&feed, org.csv())?;
    let databases = Databases::create(backend, dir.path())?;
    let (load, read) = databases.floor(&feed)?;
    let driver = databases.driver_read()?;
    write_config(dir.path(), &databases.hrsync_url, &feed)?;

    let first = sync(dir.path())?;
    let again = sync(dir.path())?;
    std::fs::write(&feed, org.churned().csv())?;
    let churn = sync(dir.path())?;
    databases.drop_all()?;

    let row = |scenario, (hrsync, peak_mib): (Duration, f64), floor_name, floor, driver| Row {
        backend: backend.name(),
        people,
        scenario,
        hrsync: vec![hrsync],
        floor_name,
        floor: vec![floor],
        driver,
        peak_mib,
    };
    Ok(vec![
        row("first sync", first, "bulk load", load, Vec::new()),
        row("re-sync, no changes", again, "read all", read, vec![driver]),
        row("re-sync, 1% churn", churn, "read all", read, vec![driver]),
    ])
}

/// The databases of one measurement: hrsync's own, and the floor's table.
struct Databases {
    backend: Backend,
    hrsync_url: String,
    floor_sqlite: PathBuf,
    /// PostgreSQL: the server's URL for administration, and the databases made for the run.
    created: Vec<String>,
}

impl Databases {
    fn create(backend: &Backend, dir: &Path) -> anyhow::Result<Databases> {
        match backend {
            Backend::Sqlite => Ok(Databases {
                backend: backend.clone(),
                hrsync_url: format!("sqlite://{}", dir.join("hrsync.db").display()),
                floor_sqlite: dir.join("floor.db"),
                created: Vec::new(),
            }),
            Backend::Postgres(url) => {
                let stamp = format!("{}_{}", std::process::id(), dir_stamp(dir));
                let names = vec![
                    format!("hrsync_bench_{stamp}"),
                    format!("hrsync_floor_{stamp}"),
                ];
                for name in &names {
                    psql(url, &format!("CREATE DATABASE {name}"))?;
                }
                Ok(Databases {
                    backend: backend.clone(),
                    hrsync_url: with_database(url, &names[0])?,
                    floor_sqlite: PathBuf::new(),
                    created: names,
                })
            }
        }
    }

    /// The time to bulk-load the export into a table of its columns, and to read it back.
    fn floor(&self, feed: &Path) -> anyhow::Result<(Duration, Duration)> {
        let columns: Vec<String> = COLUMNS.iter().map(|c| format!("{c} TEXT")).collect();
        let create = format!("CREATE TABLE people ({})", columns.join(", "));
        match &self.backend {
            Backend::Sqlite => {
                let db = self.floor_sqlite.display().to_string();
                let load = timed(|| {
                    run_with_input(
                        Command::new("sqlite3").arg(&db),
                        &format!(
                            "{create};\n.mode csv\n.import --skip 1 {} people\n",
                            feed.display()
                        ),
                    )
                })?;
                let read = timed(|| {
                    run_quiet(Command::new("sqlite3").args([&db, "SELECT * FROM people"]))
                })?;
                Ok((load, read))
            }
            Backend::Postgres(url) => {
                let floor = with_database(url, &self.created[1])?;
                psql(&floor, &create)?;
                let copy = format!(
                    "\\copy people FROM '{}' WITH (FORMAT csv, HEADER true)",
                    feed.display()
                );
                let load = timed(|| psql(&floor, &copy))?;
                let read = timed(|| {
                    run_quiet(Command::new("psql").args([
                        floor.as_str(),
                        "-X",
                        "-q",
                        "-v",
                        "ON_ERROR_STOP=1",
                        // Unaligned rows only: psql's cheapest way to write them out.
                        "-A",
                        "-t",
                        "-c",
                        "SELECT * FROM people",
                    ]))
                })?;
                Ok((load, read))
            }
        }
    }

    /// The time to read the floor's table back whole through sqlx, the driver hrsync uses:
    /// every row decoded into its text columns, as hrsync decodes the directory.
    fn driver_read(&self) -> anyhow::Result<Duration> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async {
            match &self.backend {
                Backend::Sqlite => {
                    // The row buffer hrsync's store asks for.
                    let options = sqlx::sqlite::SqliteConnectOptions::new()
                        .filename(&self.floor_sqlite)
                        .row_buffer_size(1024);
                    let pool = sqlx::SqlitePool::connect_with(options).await?;
                    let took = read_all(sqlx::query("SELECT * FROM people").fetch(&pool)).await;
                    pool.close().await;
                    took
                }
                Backend::Postgres(url) => {
                    let pool =
                        sqlx::PgPool::connect(&with_database(url, &self.created[1])?).await?;
                    let took = read_all(sqlx::query("SELECT * FROM people").fetch(&pool)).await;
                    pool.close().await;
                    took
                }
            }
        })
    }

    fn drop_all(&self) -> anyhow::Result<()> {
        if let Backend::Postgres(url) = &self.backend {
            for name in &self.created {
                psql(url, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))?;
            }
        }
        Ok(())
    }
}

/// Reads rows to the end, decoding every column as text; the time it took.
async fn read_all<R>(
    mut rows: futures_util::stream::BoxStream<'_, Result<R, sqlx::Error>>,
) -> anyhow::Result<Duration>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    use futures_util::TryStreamExt as _;
    let started = Instant::now();
    let mut cells = 0usize;
    while let Some(row) = rows.try_next().await? {
        for i in 0..COLUMNS.len() {
            cells += usize::from(row.try_get::<Option<String>, _>(i)?.is_some());
        }
    }
    ensure!(cells > 0, "the floor's table read back empty");
    Ok(started.elapsed())
}

/// A short stamp that tells the temporary folders of one run apart.
fn dir_stamp(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect()
}

/// The server URL with another database name.
fn with_database(url: &str, name: &str) -> anyhow::Result<String> {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let slash = base
        .rfind('/')
        .filter(|&i| i > "postgres://".len())
        .context("HRSYNC_BENCH_POSTGRES_URL must end in a database name")?;
    let mut out = format!("{}/{name}", &base[..slash]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    Ok(out)
}

fn psql(url: &str, statement: &str) -> anyhow::Result<()> {
    run_quiet(Command::new("psql").args([
        url,
        "-X",
        "-q",
        "-v",
        "ON_ERROR_STOP=1",
        "-c",
        statement,
    ]))
}

fn timed(f: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<Duration> {
    let started = Instant::now();
    f()?;
    Ok(started.elapsed())
}

/// Runs a command with its output discarded; fails with its stderr.
fn run_quiet(command: &mut Command) -> anyhow::Result<()> {
    let out = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("running {command:?}"))?;
    ensure!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

fn run_with_input(command: &mut Command, input: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {command:?}"))?;
    child
        .stdin
        .take()
        .context("no stdin")?
        .write_all(input.as_bytes())?;
    let out = child.wait_with_output()?;
    ensure!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// Where the bench configuration sends mail.
enum MailTo {
    /// `.eml` files in the `outbox` folder beside the configuration.
    Files,
    /// An SMTP server at this URL.
    Smtp(String),
}

fn write_config(dir: &Path, database_url: &str, feed: &Path) -> anyhow::Result<()> {
    write_config_with(dir, database_url, feed, &MailTo::Files, "")
}

/// The bench configuration, mailing to `mail`, with `more` (say, another connector) appended.
fn write_config_with(
    dir: &Path,
    database_url: &str,
    feed: &Path,
    mail: &MailTo,
    more: &str,
) -> anyhow::Result<()> {
    let transport = match mail {
        MailTo::Files => format!(
            "transport = \"file\"\ndir = \"{}\"",
            dir.join("outbox").display()
        ),
        MailTo::Smtp(url) => format!("transport = \"smtp\"\nsmtp_url = \"{url}\""),
    };
    let config = format!(
        r#"[database]
url = "{database_url}"
max_connections = 5

[mail]
from = "HR <hr@bench.example>"
{transport}
activation_url = "https://app.bench.example/activate?token={{token}}"

[organisations.bench]
name = "Bench Zorg"
time_zone = "Europe/Amsterdam"

[connectors.bench_hr]
organisation = "bench"
kind = "csv"
feed = "full"
teams_from = "department"

[connectors.bench_hr.csv]
path = "{feed}"

[connectors.bench_hr.thresholds]
max_deactivations = 1000000
max_deactivation_ratio = 1.0

[[connectors.bench_hr.roles]]
role = "medewerker"

[[connectors.bench_hr.roles]]
role = "leidinggevende"
job_title = ["Teamleider*", "Directeur*"]
{more}"#,
        feed = feed.display(),
    );
    std::fs::write(dir.join("hrsync.toml"), config)?;
    Ok(())
}

/// `hrsync sync --no-send` on the bench configuration: its wall time and peak memory (MiB).
/// The report it prints is read from a pipe and dropped, as a terminal or log would take it.
fn sync(dir: &Path) -> anyhow::Result<(Duration, f64)> {
    let ran = hrsync(dir, &["sync", "--no-send", "--as-of", "2026-12-05"], &[])?;
    ensure!(ran.printed > 0, "hrsync printed no report");
    Ok((ran.elapsed, ran.peak_mib))
}

/// What one hrsync command took.
struct Ran {
    elapsed: Duration,
    /// Peak resident memory, MiB.
    peak_mib: f64,
    /// Bytes written to stdout (read from a pipe and dropped).
    printed: usize,
    stderr: String,
}

/// Runs the release binary with the bench configuration of `dir` and `args`, timing it and
/// reading its peak memory while it runs; fails when it does not exit 0.
fn hrsync(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<Ran> {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_hrsync"))
        .args(["--config", &dir.join("hrsync.toml").display().to_string()])
        .args(args)
        .current_dir(dir)
        .env("HRSYNC_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting hrsync")?;
    let status = format!("/proc/{}/status", child.id());
    let mut stdout = child.stdout.take().context("no stdout")?;
    let drain = std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = stdout.read_to_end(&mut sink);
        sink.len()
    });
    let mut stderr_pipe = child.stderr.take().context("no stderr")?;
    let stderr_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr_pipe.read_to_string(&mut text);
        text
    });
    let mut peak_kib = 0u64;
    let exit = loop {
        if let Some(kib) = vm_hwm_kib(&status) {
            peak_kib = peak_kib.max(kib);
        }
        if let Some(exit) = child.try_wait()? {
            break exit;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = started.elapsed();
    let printed = drain.join().unwrap_or(0);
    let stderr = stderr_reader.join().unwrap_or_default();
    if !exit.success() {
        bail!("hrsync {} failed ({exit}): {stderr}", args.join(" "));
    }
    Ok(Ran {
        elapsed,
        peak_mib: peak_kib as f64 / 1024.0,
        printed,
        stderr,
    })
}

/// The process's peak resident memory so far, in KiB.
fn vm_hwm_kib(status: &str) -> Option<u64> {
    std::fs::read_to_string(status)
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// A generated organisation: departments of 25 with a head, a director per ten departments,
/// a board member at the top; non-ASCII names; a few future starters and leavers.
#[derive(Clone)]
struct Organisation {
    people: Vec<Person>,
    next_id: usize,
}

#[derive(Clone)]
struct Person {
    id: usize,
    first: &'static str,
    last: &'static str,
    department: usize,
    manager: Option<usize>,
    title: &'static str,
    contract: &'static str,
    start: String,
    end: Option<&'static str>,
}

const FIRST: [&str; 12] = [
    "Anouk", "Daan", "Zoë", "Søren", "Fatima", "Bram", "Inês", "Lars", "Noor", "Chloë", "Mehmet",
    "Eva",
];
const LAST: [&str; 10] = [
    "de Vries",
    "Janssen",
    "El Amrani",
    "Ångström",
    "van Dijk",
    "Çelik",
    "Bakker",
    "Núñez",
    "Visser",
    "Smit",
];
const TITLES: [&str; 5] = [
    "Wijkverpleegkundige",
    "Verzorgende IG",
    "Helpende",
    "Planner",
    "Verpleegkundige",
];

impl Organisation {
    fn generate(size: usize) -> Organisation {
        let people = (0..size).map(|n| Organisation::person(n, size)).collect();
        Organisation {
            people,
            next_id: size,
        }
    }

    fn person(n: usize, size: usize) -> Person {
        let department = n / 25;
        let head = department * 25;
        let director_department = (department / 10) * 10;
        let manager = match n {
            0 => None,
            _ if n == head && department == director_department => Some(0),
            _ if n == head => Some(director_department * 25),
            _ => Some(head),
        };
        let title = if n == 0 {
            "Bestuurder"
        } else if n == head && department == director_department {
            "Directeur Zorg"
        } else if n == head {
            "Teamleider"
        } else {
            TITLES[n % TITLES.len()]
        };
        // About 2% start after the as-of date, 2% left before it.
        let start = if n % 50 == 7 && n < size {
            "2027-03-01".to_string()
        } else {
            format!("{}-{:02}-01", 2010 + n % 15, 1 + n % 12)
        };
        Person {
            id: n,
            first: FIRST[n % FIRST.len()],
            last: LAST[(n / 7) % LAST.len()],
            department,
            manager,
            title,
            contract: if n.is_multiple_of(3) {
                "tijdelijk"
            } else {
                "vast"
            },
            start,
            end: (n % 50 == 13).then_some("2026-06-30"),
        }
    }

    /// 0.5% joiners, 0.25% leavers, 0.25% department moves.
    fn churned(&self) -> Organisation {
        let mut org = self.clone();
        let size = org.people.len();
        let step = |share: usize| (size / share).max(1);
        for p in org.people.iter_mut().skip(3).step_by(step(400)) {
            if p.end.is_none() && p.manager.is_some() {
                p.end = Some("2026-11-30");
            }
        }
        for p in org.people.iter_mut().skip(5).step_by(step(400)) {
            if p.manager != Some(p.department * 25) {
                continue;
            }
            p.department = (p.department + 1) % (size / 25).max(1);
            p.manager = Some(p.department * 25);
        }
        for _ in 0..(size / 200).max(1) {
            let n = org.next_id;
            org.next_id += 1;
            let mut joiner = Organisation::person(n, n + 1);
            joiner.department = n % (size / 25).max(1);
            joiner.manager = Some(joiner.department * 25);
            joiner.title = "Helpende";
            joiner.start = "2026-11-01".to_string();
            org.people.push(joiner);
        }
        org
    }

    fn csv(&self) -> String {
        let mut out = COLUMNS.join(",");
        out.push('\n');
        for p in &self.people {
            let email = format!(
                "{}.{}.{}@bench.example",
                ascii(p.first),
                ascii(p.last).replace(' ', ""),
                p.id
            );
            let manager = p.manager.map(|m| format!("E{m:06}")).unwrap_or_default();
            let _ = writeln!(
                out,
                "E{id:06},{email},{first},{last},{first} {last},D{dep:04},Afdeling {dep},Locatie {loc},{manager},{title},{contract},{start},{end},active",
                id = p.id,
                first = p.first,
                last = p.last,
                dep = p.department,
                loc = p.department % 40,
                title = p.title,
                contract = p.contract,
                start = p.start,
                end = p.end.unwrap_or_default(),
            );
        }
        out
    }
}

/// A name as the local part of an email: lower-case ASCII.
fn ascii(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            'ë' | 'é' | 'ê' => 'e',
            'ø' | 'ö' => 'o',
            'Å' | 'å' => 'a',
            'ñ' => 'n',
            'Ç' | 'ç' => 'c',
            'ú' => 'u',
            c => c.to_ascii_lowercase(),
        })
        .filter(|c| c.is_ascii())
        .collect()
}
