//! One run of a connector at a time across processes: on PostgreSQL an advisory lock keeps a
//! second process out, on SQLite a lock file beside the database. The second process is told
//! the connector is running already and changes nothing; other connectors run; the lock is
//! free once its holder ends or dies.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use hrsync::domain::{RunMode, RunStatus, Trigger};
use hrsync::store::{ConnectorLock, Store};
use hrsync::sync::{AsOf, RunRefused};

use crate::support::TestEnv;

const TODAY: &str = "2026-11-23";

const STAFF: [&str; 2] = [
    "E1,anna@zorg.example,Anna,Aalbers,CARE,Care,,Team lead,2020-01-01,,active,",
    "E2,bert@zorg.example,Bert,Bos,CARE,Care,E1,Nurse,2021-01-01,,active,12345678901",
];

const OTHER_STAFF: [&str; 1] = ["O1,olga@other.example,Olga,Ot,OPS,Ops,,Clerk,2020-01-01,,active,"];

/// Runs the `hrsync` binary, as a second process would, and waits for it.
async fn hrsync(config: &Path, args: &[&str]) -> anyhow::Result<Output> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hrsync"));
    command.arg("--config").arg(config).args(args);
    Ok(tokio::task::spawn_blocking(move || command.output()).await??)
}

/// Takes the connector's lock, trying every 100 ms for at most `limit`: on PostgreSQL a lock
/// whose session went away is freed once the server notices.
async fn lock_within(
    store: &Store,
    connector: &str,
    limit: Duration,
) -> anyhow::Result<ConnectorLock> {
    let started = Instant::now();
    loop {
        if let Some(lock) = store.try_lock_connector(connector).await? {
            return Ok(lock);
        }
        anyhow::ensure!(
            started.elapsed() < limit,
            "the lock of `{connector}` was still taken after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the connector's newest run is `running`, for at most `limit`.
async fn run_in_progress(store: &Store, connector: &str, limit: Duration) -> anyhow::Result<i64> {
    let started = Instant::now();
    loop {
        if let Some(run) = store.list_runs(1, Some(connector)).await?.first()
            && run.status == RunStatus::Running
        {
            return Ok(run.id);
        }
        anyhow::ensure!(
            started.elapsed() < limit,
            "no run of `{connector}` was in progress after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn a_second_process_running_the_same_connector_is_refused_as_running_already(
    mut env: TestEnv,
) -> anyhow::Result<()> {
    // Arrange: two connectors; process A (a store handle of its own) is in a run of `hr`.
    let other_feed = env.add_second_connector("other_hr", "other");
    env.write_feed(&STAFF);
    env.write_feed_to(&other_feed, &OTHER_STAFF);
    let process_a = env.app().await?;
    let process_b = env.app().await?;
    let config = env.dir.path().join("hrsync.toml");
    let held = process_a
        .store
        .try_lock_connector("hr")
        .await?
        .ok_or_else(|| anyhow::anyhow!("the lock of a fresh database is free"))?;

    // Act: B runs `hr` in this process, then the binary runs it as a separate process; B runs
    // the other connector; A's run ends; B runs `hr` again.
    let refused = process_b
        .run_once("hr", RunMode::Apply, Trigger::Command, AsOf::Now)
        .await;
    let refused_binary = hrsync(&config, &["sync", "--connector", "hr"]).await?;
    let runs_of_hr_while_held = process_b.store.list_runs(10, Some("hr")).await?.len();
    let accounts_while_held = env.count("SELECT COUNT(*) FROM accounts").await?;
    let other = env.sync_connector(&process_b, "other_hr", TODAY).await?;
    held.release().await;
    let after = env.sync(&process_b, TODAY).await?;

    // Assert: refused with the error PostgreSQL replicas get, nothing of `hr` written; the
    // other connector was not blocked; once A's run ended, B's run went through.
    let error = refused
        .err()
        .ok_or_else(|| anyhow::anyhow!("B's run was not refused"))?;
    assert!(
        matches!(&error, RunRefused::Busy(c) if c == "hr"),
        "{error:#}"
    );
    assert_eq!(
        error.to_string(),
        "connector `hr` is running already, here or on another replica"
    );
    let stderr = String::from_utf8_lossy(&refused_binary.stderr);
    // A busy connector is worth retrying: EX_TEMPFAIL (it was the general 1 before).
    assert_eq!(refused_binary.status.code(), Some(75), "{stderr}");
    assert!(
        stderr.contains("error: connector `hr` is running already, here or on another replica"),
        "{stderr}"
    );
    assert!(!stderr.contains("UNIQUE"), "{stderr}");
    assert_eq!(runs_of_hr_while_held, 0);
    assert_eq!(accounts_while_held, 0);
    assert_eq!(other.summary.status, RunStatus::Succeeded);
    assert_eq!(after.summary.status, RunStatus::Succeeded);
    assert_eq!(env.count("SELECT COUNT(*) FROM accounts").await?, 3);
    if env.backend.name() == "sqlite" {
        let lock_files = std::fs::read_dir(env.dir.path())?
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("test.db.connector-") && n.ends_with(".lock"))
            .count();
        assert_eq!(
            lock_files, 2,
            "one lock file per connector, beside the database"
        );
    }
    Ok(())
}

/// A definition of an HR API with no secrets, for a server that never answers.
const SILENT_DEFINITION: &str = r#"
name = "Silent HR"
variables = ["base_url"]

[auth]
kind = "none"

[request]
url = "{base_url}/people"

[records]
path = "people"

[fields.employee_id]
path = "id"

[fields.email]
path = "email"

[limits]
retries = 0
timeout_seconds = 120
"#;

pub async fn a_connector_lock_is_free_again_when_the_process_holding_it_dies(
    mut env: TestEnv,
) -> anyhow::Result<()> {
    // Arrange: an HR API that accepts connections and never answers, so a run of it stays
    // in its fetch (holding the connector's lock) until its process is killed.
    let silent = std::net::TcpListener::bind("127.0.0.1:0")?;
    let definition = env.dir.path().join("silent.toml");
    std::fs::write(&definition, SILENT_DEFINITION)?;
    env.extra_toml = format!(
        "[connectors.api]\norganisation = \"other\"\nkind = \"http\"\n\n\
         [connectors.api.http]\ndefinition = \"{}\"\nvariables = {{ base_url = \"http://{}\" }}\n",
        definition.display(),
        silent.local_addr()?
    );
    env.write_feed(&STAFF);
    let app = env.app().await?;
    let config = env.dir.path().join("hrsync.toml");
    let mut child = Command::new(env!("CARGO_BIN_EXE_hrsync"))
        .arg("--config")
        .arg(&config)
        .args(["sync", "--connector", "api"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    // The child records its run after it has taken the lock; wait for that rather than try
    // the lock, which could take it before the child does.
    let store = &app.store;
    let in_progress = run_in_progress(store, "api", Duration::from_secs(60)).await;
    let while_alive = store.try_lock_connector("api").await;

    // Act: kill the child mid-run, as a crash or `kill -9` would.
    child.kill()?;
    child.wait()?;
    let cut_off = in_progress?;
    let while_alive = while_alive?.is_some();
    lock_within(store, "api", Duration::from_secs(20))
        .await?
        .release()
        .await;
    // With the HR API gone, the next run fails its fetch at once; taking the lock, it first
    // ends the run the dead process left behind.
    drop(silent);
    let next = app
        .run_once("api", RunMode::Apply, Trigger::Command, AsOf::Now)
        .await?;

    // Assert: the lock kept this process out while the child lived, and was free once it died;
    // the killed run is ended as cut off (HR104), and the next run ran.
    assert!(!while_alive, "the child's run held the lock");
    let killed = store
        .run_report(cut_off)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the killed run's report"))?;
    assert_eq!(killed.summary.status, RunStatus::Failed);
    assert_eq!(killed.errors[0].code, "HR104", "{:?}", killed.errors);
    assert_eq!(next.status(), RunStatus::Failed);
    assert_eq!(
        next.report.errors[0].code, "HR102",
        "{:?}",
        next.report.errors
    );
    Ok(())
}

pub async fn a_dropped_connector_lock_is_free_again(env: TestEnv) -> anyhow::Result<()> {
    // Arrange: a run cancelled mid-way drops its lock without releasing it.
    env.write_feed(&STAFF);
    let app = env.app().await?;
    let first = app.store.try_lock_connector("hr").await?;
    let while_held = app.store.try_lock_connector("hr").await?;
    let other_connector = app.store.try_lock_connector("other_hr").await?;

    // Act: on PostgreSQL the dropped lock's session closes in the background.
    drop(first);
    let after_drop = lock_within(&app.store, "hr", Duration::from_secs(10)).await;

    // Assert
    assert!(while_held.is_none());
    assert!(
        other_connector.is_some(),
        "another connector is not blocked"
    );
    after_drop?.release().await;
    Ok(())
}

pub async fn an_in_memory_sqlite_database_runs_without_a_lock_file(
    _env: TestEnv,
) -> anyhow::Result<()> {
    // Arrange: an in-memory database, which no other process can open. sqlx names it
    // `file:sqlx-in-memory-N`, which must not become a lock file in the working directory.
    let store = Store::connect("sqlite::memory:", 1).await?;
    store.migrate().await?;

    // Act
    let first = store.try_lock_connector("hr").await?;
    let again = store.try_lock_connector("hr").await?;

    // Assert: the process's own guard (`App::run_if_free`) keeps its runs apart; the store
    // neither refuses nor writes a lock file.
    assert!(first.is_some() && again.is_some());
    let lock_files: Vec<_> = std::fs::read_dir(".")?
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().contains(".connector-"))
        .collect();
    assert!(lock_files.is_empty(), "{lock_files:?}");
    Ok(())
}

pub async fn two_processes_starting_on_a_new_database_migrate_it_in_turn(
    env: TestEnv,
) -> anyhow::Result<()> {
    // Arrange: two store handles (as two processes would open) on a database never migrated.
    let first = Store::connect(&env.database_url, 2).await?;
    let second = Store::connect(&env.database_url, 2).await?;

    // Act: both migrate at once, as two `hrsync sync` started together do.
    let (a, b) = tokio::join!(first.migrate(), second.migrate());

    // Assert: neither trips over the tables the other is creating.
    a?;
    b?;
    assert_eq!(first.list_runs(1, None).await?.len(), 0);
    Ok(())
}
