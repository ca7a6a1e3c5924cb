//! The sync benchmark: how long a run takes and how much memory it needs for organisations of
//! 10,000 and 100,000 people, on SQLite (a fresh file database in a temporary folder) and on
//! PostgreSQL (a fresh database created for the run and dropped after it, on the server that
//! `HRSYNC_BENCH_POSTGRES_URL` names, e.g. `postgres://postgres@127.0.0.1/postgres`; without it
//! PostgreSQL is skipped). It generates a realistic organisation (a board, directors, one
//! department per 25 people with a head, job titles, future starters, contract ends, non-ASCII
//! names, nurses with BIG numbers) and runs three scenarios as a sync run does them (load the
//! directory for the feed's emails → plan → apply): a **first sync** into an empty directory, a
//! **re-sync with no changes** (which must plan no actionable change), and a **re-sync with 1%
//! churn** (0.5% joiners, 0.25% leavers, 0.25% department moves; planning again after it must
//! give no actionable change). Each (backend, size) runs in a child process of its own, so the
//! peak memory (VmHWM, reset before each scenario) is its own; the parent prints a Markdown
//! table. Run it with `cargo bench --bench sync`, narrowed with `-- --sizes 10000` and/or
//! `-- --backend sqlite` (or `postgres`).

// A test stops at the first thing that is not as expected.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use chrono::{DateTime, Days, NaiveDate, NaiveTime, TimeZone, Utc};
use hrsync::domain::{
    ConnectorId, Department, Email, EmployeeId, HrRecord, RunMode, RunStatus, TeamKey, Trigger,
};
use hrsync::planner::{self, ChangeKind, Plan, Policy, Requirement, RoleRule, Thresholds};
use hrsync::store::{ApplyRun, NewRun, OrganisationRow, Store};

/// The environment variable naming the PostgreSQL server to create benchmark databases on.
const POSTGRES_ENV: &str = "HRSYNC_BENCH_POSTGRES_URL";
const DEFAULT_SIZES: [usize; 2] = [10_000, 100_000];
const CONNECTOR: &str = "hr";
/// Marks the lines a child writes to stdout for the parent.
const RESULT_PREFIX: &str = "@@result\t";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = if args.first().map(String::as_str) == Some("--child") {
        child(&args[1..])
    } else {
        parent(&args)
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The parent: options, one child per (backend, size), the table.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    fn parse(text: &str) -> Option<Backend> {
        match text {
            "sqlite" => Some(Backend::Sqlite),
            "postgres" | "postgresql" | "pg" => Some(Backend::Postgres),
            _ => None,
        }
    }
}

struct Options {
    sizes: Vec<usize>,
    backends: Vec<Backend>,
}

/// `--sizes 10000,100000` and `--backend sqlite|postgres|all` (also as `--name=value`); anything
/// else, such as the `--bench` cargo passes, is ignored.
fn parse_options(args: &[String]) -> anyhow::Result<Options> {
    let mut options = Options {
        sizes: DEFAULT_SIZES.to_vec(),
        backends: vec![Backend::Sqlite, Backend::Postgres],
    };
    let mut i = 0;
    while i < args.len() {
        let (name, inline) = match args[i].split_once('=') {
            Some((name, value)) => (name, Some(value.to_string())),
            None => (args[i].as_str(), None),
        };
        if matches!(name, "--sizes" | "--size" | "--backend") {
            let value = match inline {
                Some(value) => value,
                None => {
                    i += 1;
                    args.get(i)
                        .cloned()
                        .with_context(|| format!("{name} needs a value"))?
                }
            };
            if name == "--backend" {
                options.backends = match value.as_str() {
                    "all" => vec![Backend::Sqlite, Backend::Postgres],
                    other => vec![Backend::parse(other).with_context(|| {
                        format!("--backend `{other}`: expected sqlite, postgres or all")
                    })?],
                };
            } else {
                options.sizes = value
                    .split(',')
                    .map(|s| {
                        s.trim().replace('_', "").parse::<usize>().ok().filter(|&n| n >= 100)
                    })
                    .collect::<Option<Vec<_>>>()
                    .with_context(|| {
                        format!("--sizes `{value}`: expected numbers of people (at least 100), comma-separated")
                    })?;
            }
        }
        i += 1;
    }
    Ok(options)
}

/// One line of the table, as a child reports it.
struct Row {
    backend: Backend,
    people: usize,
    scenario: String,
    load_ms: f64,
    plan_ms: f64,
    apply_ms: f64,
    total_ms: f64,
    peak_kib: u64,
    start_kib: u64,
    actionable: usize,
    peak_reset: bool,
}

fn parent(args: &[String]) -> anyhow::Result<()> {
    let options = parse_options(args)?;
    let exe = std::env::current_exe().context("finding the benchmark's own executable")?;
    let postgres_url = std::env::var(POSTGRES_ENV)
        .ok()
        .filter(|url| !url.trim().is_empty());

    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, model)| model.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".to_string());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("hrsync sync benchmark: {cores} cores, CPU {cpu}");

    let mut rows: Vec<Row> = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    for &backend in &options.backends {
        if backend == Backend::Postgres && postgres_url.is_none() {
            println!(
                "PostgreSQL skipped: set {POSTGRES_ENV} to a server URL on which the user may \
                 create databases, e.g. `{POSTGRES_ENV}=postgres://postgres@127.0.0.1/postgres \
                 cargo bench --bench sync`"
            );
            continue;
        }
        for &size in &options.sizes {
            let label = format!("{} with {size} people", backend.name());
            eprintln!("== {label}");
            let database = format!("hrsync_bench_{}_{size}", std::process::id());
            let mut command = Command::new(&exe);
            command
                .arg("--child")
                .arg(backend.name())
                .arg(size.to_string());
            if backend == Backend::Postgres {
                command.arg(&database);
            }
            let output = command
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .output()
                .with_context(|| format!("starting the child for {label}"))?;
            let stdout = String::from_utf8_lossy(&output.stdout);
            for line in stdout.lines() {
                if let Some(fields) = line.strip_prefix(RESULT_PREFIX) {
                    rows.push(parse_row(backend, size, fields)?);
                }
            }
            if !output.status.success() {
                failures.push(format!("{label}: the child failed ({})", output.status));
                if let Some(admin) = &postgres_url
                    && backend == Backend::Postgres
                {
                    // The child drops its database itself unless it crashed.
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?;
                    runtime.block_on(drop_database(admin, &database));
                }
            }
        }
    }

    println!();
    println!(
        "| backend | people | scenario | load ms | plan ms | apply ms | total ms | peak RSS MiB | RSS before MiB | actionable changes |"
    );
    println!("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|");
    let mib = |kib: u64| kib as f64 / 1024.0;
    for r in &rows {
        println!(
            "| {} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0}{} | {:.0} | {} |",
            r.backend.name(),
            r.people,
            r.scenario,
            r.load_ms,
            r.plan_ms,
            r.apply_ms,
            r.total_ms,
            mib(r.peak_kib),
            if r.peak_reset { "" } else { "*" },
            mib(r.start_kib),
            r.actionable,
        );
    }
    if rows.iter().any(|r| !r.peak_reset) {
        println!(
            "\n* the peak could not be reset between scenarios: it is the child's peak so far"
        );
    }
    println!(
        "\nTotal = load + plan + apply (apply includes recording the run's start). Peak RSS is \
         the child's VmHWM, reset before each scenario; RSS before is its VmRSS then."
    );
    if !failures.is_empty() {
        bail!("{}", failures.join("; "));
    }
    Ok(())
}

fn parse_row(backend: Backend, people: usize, fields: &str) -> anyhow::Result<Row> {
    let f: Vec<&str> = fields.split('\t').collect();
    ensure!(
        f.len() == 9,
        "a malformed result line from a child: {fields}"
    );
    let num = |i: usize| -> anyhow::Result<f64> {
        f[i].parse()
            .with_context(|| format!("result field {i} `{}`", f[i]))
    };
    Ok(Row {
        backend,
        people,
        scenario: f[0].to_string(),
        load_ms: num(1)?,
        plan_ms: num(2)?,
        apply_ms: num(3)?,
        total_ms: num(4)?,
        peak_kib: num(5)? as u64,
        start_kib: num(6)? as u64,
        actionable: num(7)? as usize,
        peak_reset: f[8] == "1",
    })
}

// ---------------------------------------------------------------------------------------------
// The child: one backend, one size, three scenarios.

fn child(args: &[String]) -> anyhow::Result<()> {
    let backend = args
        .first()
        .and_then(|b| Backend::parse(b))
        .context("--child needs a backend")?;
    let size: usize = args
        .get(1)
        .and_then(|s| s.parse().ok())
        .context("--child needs a number of people")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let dir = tempfile::tempdir()?;
        match backend {
            Backend::Sqlite => {
                let url = format!("sqlite://{}", dir.path().join("bench.db").display());
                bench(backend, size, &url).await
            }
            Backend::Postgres => {
                let admin = std::env::var(POSTGRES_ENV)
                    .with_context(|| format!("{POSTGRES_ENV} is not set"))?;
                let database = args.get(2).context("--child postgres needs a database")?;
                create_database(&admin, database).await?;
                let result = match with_database(&admin, database) {
                    Ok(url) => bench(backend, size, &url).await,
                    Err(e) => Err(e),
                };
                drop_database(&admin, database).await;
                result
            }
        }
    })
}

async fn create_database(admin: &str, database: &str) -> anyhow::Result<()> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(admin)
        .await
        .with_context(|| format!("connecting to {POSTGRES_ENV}"))?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
        .execute(&mut conn)
        .await?;
    sqlx::query(&format!("CREATE DATABASE {database}"))
        .execute(&mut conn)
        .await
        .with_context(|| format!("creating database {database}"))?;
    conn.close().await?;
    Ok(())
}

async fn drop_database(admin: &str, database: &str) {
    use sqlx::Connection;
    let dropped = async {
        let mut conn = sqlx::PgConnection::connect(admin).await?;
        sqlx::query(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
            .execute(&mut conn)
            .await?;
        conn.close().await
    };
    if let Err(e) = dropped.await {
        eprintln!("warning: could not drop the benchmark database {database}: {e}");
    }
}

/// The server URL with its database replaced by `database`.
fn with_database(url: &str, database: &str) -> anyhow::Result<String> {
    let authority = url
        .find("://")
        .map(|i| i + 3)
        .with_context(|| format!("{POSTGRES_ENV} is not a URL"))?;
    let (base, query) = url.split_at(url.find('?').unwrap_or(url.len()));
    let path = base[authority..]
        .find('/')
        .map_or(base.len(), |i| authority + i);
    Ok(format!("{}/{database}{query}", &base[..path]))
}

/// Sets the process's peak RSS (VmHWM) back to its current RSS; false where the kernel does not
/// allow it.
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// VmHWM and VmRSS in KiB.
fn memory_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

static PEAK_RESET: AtomicBool = AtomicBool::new(true);

/// What one scenario took and what its plan held.
struct Measured {
    load: Duration,
    plan: Duration,
    apply: Duration,
    peak_kib: u64,
    start_kib: u64,
    counts: BTreeMap<ChangeKind, usize>,
    actionable: usize,
    /// A few actionable changes, for messages.
    sample: Vec<String>,
}

impl Measured {
    fn count(&self, kind: ChangeKind) -> usize {
        self.counts.get(&kind).copied().unwrap_or(0)
    }

    fn total(&self) -> Duration {
        self.load + self.plan + self.apply
    }

    fn report(&self, backend: Backend, size: usize, scenario: &str) {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let counts: Vec<String> = self
            .counts
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        eprintln!(
            "[{} {size}] {scenario}: load {:.0} ms, plan {:.0} ms, apply {:.0} ms, total {:.0} ms, \
             peak {:.0} MiB (from {:.0} MiB); {}",
            backend.name(),
            ms(self.load),
            ms(self.plan),
            ms(self.apply),
            ms(self.total()),
            self.peak_kib as f64 / 1024.0,
            self.start_kib as f64 / 1024.0,
            if counts.is_empty() {
                "no changes".to_string()
            } else {
                counts.join(", ")
            }
        );
        println!(
            "{RESULT_PREFIX}{scenario}\t{:.3}\t{:.3}\t{:.3}\t{:.3}\t{}\t{}\t{}\t{}",
            ms(self.load),
            ms(self.plan),
            ms(self.apply),
            ms(self.total()),
            self.peak_kib,
            self.start_kib,
            self.actionable,
            u8::from(PEAK_RESET.load(Ordering::Relaxed)),
        );
    }

    fn from_plan(plan: &Plan) -> (BTreeMap<ChangeKind, usize>, usize, Vec<String>) {
        let mut counts = BTreeMap::new();
        for c in &plan.changes {
            *counts.entry(c.kind()).or_insert(0) += 1;
        }
        let sample = plan
            .actionable()
            .take(5)
            .map(|c| {
                format!(
                    "{} {} {} {:?} → {:?} ({})",
                    c.kind(),
                    c.employee_id.as_ref().map_or("-", |e| e.as_str()),
                    c.field.as_deref().unwrap_or("-"),
                    c.old,
                    c.new,
                    c.reason
                )
            })
            .collect();
        (counts, plan.actionable().count(), sample)
    }
}

/// What every run of the child shares.
struct Bench {
    store: Store,
    organisation: OrganisationRow,
    policy: Policy,
    as_of: DateTime<Utc>,
}

impl Bench {
    /// The email keys of the feed, as a run passes them to `load_directory`.
    fn emails(records: &[HrRecord]) -> Vec<String> {
        records
            .iter()
            .filter_map(|r| r.email.as_ref().ok().map(|e| e.key().to_string()))
            .collect()
    }

    /// One run as `hrsync sync` does it: load, plan, apply; timed per step.
    async fn sync(&self, records: &[HrRecord]) -> anyhow::Result<Measured> {
        let reset = reset_peak();
        if !reset {
            PEAK_RESET.store(false, Ordering::Relaxed);
        }
        let (_, start_kib) = memory_kib();

        let started = Instant::now();
        let emails = Self::emails(records);
        let directory = self
            .store
            .load_directory(self.organisation.id, &emails)
            .await?;
        drop(emails);
        let loaded = Instant::now();
        let plan = planner::plan(records, &directory, &self.policy, self.as_of);
        let planned = Instant::now();
        drop(directory);
        if let Some(hold) = plan.hold() {
            bail!("the run was held ({}): {}", hold.code, hold.message);
        }
        let run_id = self
            .store
            .start_run(&NewRun {
                organisation_id: self.organisation.id,
                connector: CONNECTOR,
                trigger: Trigger::Command,
                mode: RunMode::Apply,
                as_of: self.as_of,
                started_at: Utc::now(),
                scheduled_for: None,
            })
            .await?;
        let run = ApplyRun {
            run_id,
            organisation: &self.organisation,
            connector: CONNECTOR,
            status: RunStatus::Succeeded,
            records_fetched: records.len(),
            missing_email: 0,
            now: Utc::now(),
            feed: None,
            digest_to: &[],
        };
        self.store.apply_plan(&run, &plan).await?;
        let applied = Instant::now();
        let (peak_kib, _) = memory_kib();
        let (counts, actionable, sample) = Measured::from_plan(&plan);
        Ok(Measured {
            load: loaded - started,
            plan: planned - loaded,
            apply: applied - planned,
            peak_kib,
            start_kib,
            counts,
            actionable,
            sample,
        })
    }

    /// Plans without applying or timing, to check that the directory is in step.
    async fn actionable_now(&self, records: &[HrRecord]) -> anyhow::Result<(usize, Vec<String>)> {
        let directory = self
            .store
            .load_directory(self.organisation.id, &Self::emails(records))
            .await?;
        let plan = planner::plan(records, &directory, &self.policy, self.as_of);
        let (_, actionable, sample) = Measured::from_plan(&plan);
        Ok((actionable, sample))
    }
}

fn policy() -> anyhow::Result<Policy> {
    let connector = ConnectorId::parse(CONNECTOR).context("connector id")?;
    let mut policy = Policy::new(connector, chrono_tz::Europe::Amsterdam);
    let rule = |role: &str, job_title: &[&str], require: &[&str]| RoleRule {
        role: role.to_string(),
        job_title: job_title.iter().map(|s| s.to_string()).collect(),
        department: Vec::new(),
        employment_type: Vec::new(),
        require: require.iter().map(|a| Requirement::named(a)).collect(),
    };
    policy.roles = vec![
        rule("employee", &[], &[]),
        rule("nurse", &["*verpleegkundige"], &["big_number"]),
        rule("manager", &["teamleider*", "*directeur", "bestuurder"], &[]),
    ];
    policy.thresholds = Thresholds {
        max_deactivations: usize::MAX,
        ..Thresholds::default()
    };
    Ok(policy)
}

async fn bench(backend: Backend, size: usize, url: &str) -> anyhow::Result<()> {
    let today = NaiveDate::from_ymd_opt(2026, 6, 1).context("date")?;
    let policy = policy()?;
    let noon = today.and_time(NaiveTime::from_hms_opt(12, 0, 0).context("time")?);
    let as_of = policy
        .time_zone
        .from_local_datetime(&noon)
        .single()
        .context("as-of instant")?
        .with_timezone(&Utc);

    let generated = Instant::now();
    let mut org = Organisation::generate(size, today, 0x5eed_0000 + size as u64)?;
    eprintln!(
        "[{} {size}] generated {} records ({} present, {} scheduled, {} departments) in {:.0} ms",
        backend.name(),
        org.records.len(),
        org.present(today),
        org.scheduled(today),
        org.departments.len(),
        generated.elapsed().as_secs_f64() * 1000.0
    );

    let store = Store::connect(url, 4).await?;
    store.migrate().await?;
    let organisation = store
        .upsert_organisation(
            "bench",
            "Zorggroep Bench",
            policy.time_zone.name(),
            "nl",
            Utc::now(),
        )
        .await?;
    let bench = Bench {
        store,
        organisation,
        policy,
        as_of,
    };

    // 1. First sync: everybody present is invited, with teams, coaches and roles.
    let scenario = "first sync";
    let first = bench.sync(&org.records).await?;
    first.report(backend, size, scenario);
    let present = org.present(today);
    ensure!(
        first.count(ChangeKind::Invite) == present,
        "{scenario}: {} invites for {present} present people",
        first.count(ChangeKind::Invite)
    );
    ensure!(
        first.count(ChangeKind::Scheduled) == org.scheduled(today),
        "{scenario}: {} scheduled lines for {} future starters",
        first.count(ChangeKind::Scheduled),
        org.scheduled(today)
    );
    ensure!(
        first.count(ChangeKind::Quarantine) == 0 && first.count(ChangeKind::Conflict) == 0,
        "{scenario}: unexpected quarantines or conflicts"
    );
    ensure!(
        first.count(ChangeKind::CoachAssign) > 0 && first.count(ChangeKind::TeamJoin) > 0,
        "{scenario}: no teams or coaches planned"
    );

    // 2. The same feed again: nothing to do.
    let scenario = "re-sync, no changes";
    let again = bench.sync(&org.records).await?;
    again.report(backend, size, scenario);
    ensure!(
        again.actionable == 0,
        "{scenario}: {} actionable changes, e.g. {:#?}",
        again.actionable,
        again.sample
    );

    // 3. 1% churn: joiners, leavers and department moves.
    let scenario = "re-sync, 1% churn";
    let churn = org.churn(today)?;
    let churned = bench.sync(&org.records).await?;
    churned.report(backend, size, scenario);
    for (kind, expected) in [
        (ChangeKind::Invite, churn.joiners),
        (ChangeKind::Deactivate, churn.leavers),
        (ChangeKind::TeamLeave, churn.moves),
        (ChangeKind::TeamJoin, churn.joiners + churn.moves),
    ] {
        ensure!(
            churned.count(kind) == expected,
            "{scenario}: {} {kind} changes, expected {expected}",
            churned.count(kind)
        );
    }
    let (left, sample) = bench.actionable_now(&org.records).await?;
    ensure!(
        left == 0,
        "{scenario}: planning again after applying gives {left} actionable changes, e.g. {sample:#?}"
    );

    bench.store.close().await;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The generated organisation.

/// A small, fast, deterministic generator (SplitMix64); the benchmark needs repeatable data,
/// not good randomness.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// True with a probability of `per_mille` in a thousand.
    fn chance(&mut self, per_mille: usize) -> bool {
        self.below(1000) < per_mille
    }
}

const FIRST_NAMES: &[&str] = &[
    "Jan", "Anna", "Pieter", "Sanne", "Mohamed", "Fatima", "Daan", "Emma", "Zoë", "Anaïs", "Ömer",
    "José", "Chloë", "Søren", "Łukasz", "Noor", "Thijs", "Ilse", "Björn", "Inés", "Renée",
    "Mehmet", "Eva", "Joris", "Aïcha", "Lotte", "Bram", "Fleur", "Siân", "Dragan", "Kees", "Lieke",
];
const LAST_NAMES: &[&str] = &[
    "de Vries",
    "Jansen",
    "van den Berg",
    "Bakker",
    "Visser",
    "Smit",
    "Meijer",
    "de Boer",
    "Mulder",
    "Yılmaz",
    "Müller",
    "Öztürk",
    "Çelik",
    "Nuñez",
    "Đorđević",
    "Kowalczyk",
    "Søndergaard",
    "van Dijk",
    "Bos",
    "El Amrani",
    "Peeters",
    "Hendriks",
    "Dekker",
    "Brouwer",
    "Žukauskas",
    "García",
    "Lefèvre",
    "Nguyễn",
];
const CITIES: &[&str] = &[
    "Amsterdam",
    "Rotterdam",
    "Utrecht",
    "Groningen",
    "Zwolle",
    "Eindhoven",
    "Maastricht",
    "Den Haag",
    "Leeuwarden",
    "Nijmegen",
    "Tilburg",
    "'s-Hertogenbosch",
];
const DEPARTMENT_KINDS: &[&str] = &[
    "Wijkteam",
    "Afdeling",
    "Zorgteam",
    "Revalidatie",
    "Thuiszorg",
];
/// Staff titles; the first three match the `*verpleegkundige` rule and need a BIG number.
const STAFF_TITLES: &[&str] = &[
    "Verpleegkundige",
    "Wijkverpleegkundige",
    "Praktijkverpleegkundige",
    "Verpleegkundige",
    "Verzorgende IG",
    "Verzorgende IG",
    "Helpende",
    "Fysiotherapeut",
    "Ergotherapeut",
    "Planner",
    "Administratief medewerker",
    "Zorgcoördinator",
    "Begeleider",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Board,
    Director,
    Head,
    Staff,
}

struct Organisation {
    records: Vec<HrRecord>,
    kinds: Vec<Kind>,
    departments: Vec<(Department, &'static str)>,
    /// The employee id of each department's head.
    heads: Vec<EmployeeId>,
    next_number: usize,
    rng: Rng,
}

/// What [`Organisation::churn`] changed.
struct Churn {
    joiners: usize,
    leavers: usize,
    moves: usize,
}

/// The letters of a name that can go in an email address.
fn ascii_fold(name: &str) -> String {
    name.chars()
        .flat_map(char::to_lowercase)
        .filter_map(|c| match c {
            'a'..='z' | '0'..='9' => Some(c),
            'à' | 'á' | 'â' | 'ä' | 'å' => Some('a'),
            'è' | 'é' | 'ê' | 'ë' | 'ễ' => Some('e'),
            'ì' | 'í' | 'î' | 'ï' | 'ı' => Some('i'),
            'ò' | 'ó' | 'ô' | 'ö' | 'ø' => Some('o'),
            'ù' | 'ú' | 'û' | 'ü' => Some('u'),
            'ç' => Some('c'),
            'ł' => Some('l'),
            'ñ' => Some('n'),
            'đ' => Some('d'),
            'ž' => Some('z'),
            _ => None,
        })
        .collect()
}

impl Organisation {
    /// `size` people: a board member, one director per twelve departments, one department per
    /// 25 people, each with a head who reports to a director, and staff who report to the head.
    fn generate(size: usize, today: NaiveDate, seed: u64) -> anyhow::Result<Organisation> {
        let department_count = (size / 25).max(1);
        let director_count = department_count.div_ceil(12);
        let mut org = Organisation {
            records: Vec::with_capacity(size + size / 100),
            kinds: Vec::with_capacity(size + size / 100),
            departments: Vec::with_capacity(department_count + 1),
            heads: Vec::with_capacity(department_count),
            next_number: 1,
            rng: Rng(seed),
        };
        let board = org.department("DIR", "Raad van bestuur en directie".to_string(), "Utrecht")?;
        for d in 0..department_count {
            let kind = *org.rng.pick(DEPARTMENT_KINDS);
            let city = *org.rng.pick(CITIES);
            org.department(
                &format!("D{:05}", d + 1),
                format!("{kind} {city} {}", d + 1),
                city,
            )?;
        }

        let chair = org.person(Kind::Board, board, None, "Bestuurder", today)?;
        let directors: Vec<EmployeeId> = (0..director_count)
            .map(|_| {
                org.person(
                    Kind::Director,
                    board,
                    Some(chair.clone()),
                    "Directeur",
                    today,
                )
            })
            .collect::<anyhow::Result<_>>()?;
        for d in 0..department_count {
            let director = directors[d % director_count].clone();
            let head = org.person(Kind::Head, d + 1, Some(director), "Teamleider", today)?;
            org.heads.push(head);
        }
        let staff = size.saturating_sub(org.records.len());
        for s in 0..staff {
            let d = s % department_count;
            let title = *org.rng.pick(STAFF_TITLES);
            org.person(Kind::Staff, d + 1, Some(org.heads[d].clone()), title, today)?;
        }
        Ok(org)
    }

    fn department(&mut self, key: &str, name: String, city: &'static str) -> anyhow::Result<usize> {
        let key = TeamKey::parse(key).context("team key")?;
        self.departments.push((Department { key, name }, city));
        Ok(self.departments.len() - 1)
    }

    /// Adds a person; staff may start in the future or have an end date. Returns the id.
    fn person(
        &mut self,
        kind: Kind,
        department: usize,
        manager: Option<EmployeeId>,
        title: &str,
        today: NaiveDate,
    ) -> anyhow::Result<EmployeeId> {
        let number = self.next_number;
        self.next_number += 1;
        let rng = &mut self.rng;
        let first = *rng.pick(FIRST_NAMES);
        let last = *rng.pick(LAST_NAMES);
        let employee_id = EmployeeId::parse(&format!("E{number:07}")).context("employee id")?;
        let domain = if rng.chance(50) {
            "Zorggroep-Bench.example"
        } else {
            "zorggroep-bench.example"
        };
        let email = format!(
            "{}.{}.{number}@{domain}",
            ascii_fold(first),
            ascii_fold(last)
        );
        let mut record = HrRecord::new(employee_id.clone(), Email::parse(&email));
        record.first_name = Some(first.to_string());
        record.last_name = Some(last.to_string());
        let (dept, city) = &self.departments[department];
        record.department = Some(dept.clone());
        record.location = Some(city.to_string());
        record.manager_id = manager;
        record.job_title = Some(title.to_string());
        record.employment_type = Some(
            match rng.below(10) {
                0..=6 => "vast",
                7 | 8 => "tijdelijk",
                _ => "oproep",
            }
            .to_string(),
        );
        record.status = Some("active".to_string());
        let days = |n: usize| Days::new(n as u64);
        record.start_date = today.checked_sub_days(days(30 + rng.below(7000)));
        if kind == Kind::Staff {
            match rng.below(1000) {
                // Starts within the next three months.
                0..=29 => record.start_date = today.checked_add_days(days(1 + rng.below(90))),
                // A temporary contract that ends later this year.
                30..=69 => record.end_date = today.checked_add_days(days(30 + rng.below(300))),
                // Left recently; the export still lists them.
                70..=74 => {
                    record.end_date = today.checked_sub_days(days(1 + rng.below(60)));
                    record.status = Some("terminated".to_string());
                }
                _ => {}
            }
        }
        if title.to_lowercase().ends_with("verpleegkundige") {
            let big = 10_000_000_000 + rng.next() % 89_999_999_999;
            record
                .attributes
                .insert("big_number".to_string(), big.to_string());
        }
        record
            .attributes
            .insert("cost_centre".to_string(), format!("KP{}", department % 40));
        self.records.push(record);
        self.kinds.push(kind);
        Ok(employee_id)
    }

    fn is_present(record: &HrRecord, today: NaiveDate) -> bool {
        record.start_date.is_none_or(|d| d <= today) && record.end_date.is_none_or(|d| d > today)
    }

    fn present(&self, today: NaiveDate) -> usize {
        self.records
            .iter()
            .filter(|r| Self::is_present(r, today))
            .count()
    }

    fn scheduled(&self, today: NaiveDate) -> usize {
        self.records
            .iter()
            .filter(|r| r.start_date.is_some_and(|d| d > today))
            .count()
    }

    /// 1% churn of the original size: 0.5% joiners, 0.25% leavers (an end date in the past),
    /// 0.25% department moves. Leavers and movers are present staff, never the same person.
    fn churn(&mut self, today: NaiveDate) -> anyhow::Result<Churn> {
        let size = self.records.len();
        let churn = Churn {
            joiners: size / 200,
            leavers: size / 400,
            moves: size / 400,
        };
        let mut candidates: Vec<usize> = (0..size)
            .filter(|&i| {
                self.kinds[i] == Kind::Staff
                    && self.records[i].end_date.is_none()
                    && Self::is_present(&self.records[i], today)
            })
            .collect();
        let picked = churn.leavers + churn.moves;
        ensure!(candidates.len() >= picked, "too few staff to churn");
        // A partial Fisher-Yates shuffle picks distinct people.
        for i in 0..picked {
            let j = i + self.rng.below(candidates.len() - i);
            candidates.swap(i, j);
        }
        let yesterday = today.pred_opt().context("date")?;
        for &i in &candidates[..churn.leavers] {
            self.records[i].end_date = Some(yesterday);
        }
        let department_count = self.heads.len();
        ensure!(
            department_count > 1,
            "department moves need two departments"
        );
        for &i in &candidates[churn.leavers..picked] {
            let current = self.records[i]
                .department
                .as_ref()
                .and_then(|d| self.departments.iter().position(|(x, _)| x.key == d.key))
                .context("a mover without a department")?;
            // Departments 1..=department_count; never the same one again.
            let step = 1 + self.rng.below(department_count - 1);
            let to = (current - 1 + step) % department_count + 1;
            let record = &mut self.records[i];
            record.department = Some(self.departments[to].0.clone());
            record.location = Some(self.departments[to].1.to_string());
            record.manager_id = Some(self.heads[to - 1].clone());
        }
        for _ in 0..churn.joiners {
            let d = self.rng.below(department_count);
            let title = *self.rng.pick(STAFF_TITLES);
            let head = self.heads[d].clone();
            let id = self.person(Kind::Staff, d + 1, Some(head), title, today)?;
            // Joiners started in the last fortnight, with no end date: they are present.
            let days = Days::new(self.rng.below(14) as u64);
            let record = self.records.last_mut().context("the joiner")?;
            debug_assert_eq!(record.employee_id, id);
            record.start_date = today.checked_sub_days(days);
            record.end_date = None;
            record.status = Some("active".to_string());
        }
        Ok(churn)
    }
}
