//! The test environment: a fresh database (SQLite file or PostgreSQL database), a temporary
//! folder with a configuration and an HR export the test can rewrite, and the app built on them.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::NaiveDate;
use hrsync::config;
use hrsync::domain::{RunMode, RunReport, Trigger};
use hrsync::sync::{App, AsOf};

pub use crate::smtp::{ReceivedMail, SmtpSink};

#[derive(Clone, Debug)]
pub enum Backend {
    Sqlite,
    /// An administrative URL; each test creates its own database there.
    Postgres(String),
}

impl Backend {
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Drops the test's PostgreSQL database at the end.
pub struct Cleanup {
    admin_url: Option<String>,
    database: String,
}

impl Cleanup {
    pub async fn run(self) {
        if let Some(url) = self.admin_url {
            use sqlx::Connection;
            if let Ok(mut conn) = sqlx::PgConnection::connect(&url).await {
                let _ = sqlx::query(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    self.database
                ))
                .execute(&mut conn)
                .await;
            }
        }
    }
}

pub struct TestEnv {
    pub backend: Backend,
    pub dir: tempfile::TempDir,
    pub database_url: String,
    database: String,
    /// Extra TOML appended to the connector's table, e.g. thresholds.
    pub connector_extra: String,
    /// The mail transport's TOML; file by default.
    pub mail_toml: String,
    /// TOML appended to the configuration, e.g. a second connector.
    pub extra_toml: String,
    /// Extra settings of the `zorg` organisation, e.g. `digest_to`.
    pub org_extra: String,
}

/// The CSV header of the test feed, in the documented default layout.
pub const HEADER: &str = "employee_id,email,first_name,last_name,department_code,department,manager_id,job_title,start_date,end_date,status,big_number";

impl TestEnv {
    pub async fn new(backend: Backend) -> anyhow::Result<TestEnv> {
        let dir = tempfile::tempdir()?;
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let database = format!("hrsync_test_{}_{n}", std::process::id());
        let database_url = match &backend {
            Backend::Sqlite => format!("sqlite://{}", dir.path().join("test.db").display()),
            Backend::Postgres(admin) => {
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(admin).await.map_err(|e| {
                    anyhow::anyhow!("cannot reach PostgreSQL at HRSYNC_TEST_POSTGRES_URL: {e}")
                })?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {database}"))
                    .execute(&mut conn)
                    .await?;
                sqlx::query(&format!("CREATE DATABASE {database}"))
                    .execute(&mut conn)
                    .await?;
                replace_database(admin, &database)
            }
        };
        let mail_toml = format!(
            "transport = \"file\"\ndir = \"{}\"\n",
            dir.path().join("outbox").display()
        );
        Ok(TestEnv {
            backend,
            dir,
            database_url,
            database,
            connector_extra: String::new(),
            mail_toml,
            extra_toml: String::new(),
            org_extra: String::new(),
        })
    }

    pub fn cleanup_handle(&self) -> Cleanup {
        Cleanup {
            admin_url: match &self.backend {
                Backend::Postgres(url) => Some(url.clone()),
                Backend::Sqlite => None,
            },
            database: self.database.clone(),
        }
    }

    pub fn feed_path(&self) -> PathBuf {
        self.dir.path().join("feed.csv")
    }

    /// Writes the HR export: one CSV line per person after the header.
    pub fn write_feed(&self, rows: &[&str]) {
        self.write_feed_to(&self.feed_path(), rows);
    }

    /// Writes an HR export to another file, for a second connector.
    pub fn write_feed_to(&self, path: &Path, rows: &[&str]) {
        let mut text = String::from(HEADER);
        text.push('\n');
        for r in rows {
            text.push_str(r);
            text.push('\n');
        }
        std::fs::write(path, text).expect("writing the feed");
    }

    /// Configures a second CSV connector for another organisation and returns the path of
    /// its export.
    pub fn add_second_connector(&mut self, id: &str, organisation: &str) -> PathBuf {
        let path = self.dir.path().join(format!("{id}.csv"));
        self.extra_toml = format!(
            "[connectors.{id}]\norganisation = \"{organisation}\"\nkind = \"csv\"\n\n\
             [connectors.{id}.csv]\npath = \"{}\"\nattributes = [\"big_number\"]\n",
            path.display()
        );
        path
    }

    /// Runs another connector once, applying, as of the end of `date`.
    pub async fn sync_connector(
        &self,
        app: &App,
        connector: &str,
        date: &str,
    ) -> anyhow::Result<RunReport> {
        let date: NaiveDate = date.parse()?;
        Ok(app
            .run_once(
                connector,
                RunMode::Apply,
                Trigger::Command,
                AsOf::EndOfDay(date),
            )
            .await?
            .report)
    }

    /// Writes the configuration and builds the app on it.
    pub async fn app(&self) -> anyhow::Result<App> {
        let path = self.dir.path().join("hrsync.toml");
        std::fs::write(&path, self.config_toml())?;
        let loaded = config::load_checked(&path)?;
        App::build(loaded).await
    }

    pub fn config_toml(&self) -> String {
        format!(
            r#"
[database]
url = "{db}"
max_connections = 3

[mail]
from = "Zonnehof Zorg <no-reply@zonnehof.example>"
activation_url = "https://app.example.org/activate?token={{token}}"
token_valid_days = 14
{mail}

[organisations.zorg]
name = "Zonnehof Zorg"
time_zone = "Europe/Amsterdam"
locale = "en"
{org_extra}

[organisations.other]
name = "Other Organisation"
time_zone = "Europe/Amsterdam"
locale = "nl"

[connectors.hr]
organisation = "zorg"
kind = "csv"
{extra}

[connectors.hr.status_map]
active = ["active"]
inactive = ["inactive"]

[[connectors.hr.roles]]
role = "employee"

[[connectors.hr.roles]]
role = "nurse"
job_title = ["*nurse"]
require = ["big_number"]

[connectors.hr.csv]
path = "{feed}"
attributes = ["big_number"]

{extra_toml}
"#,
            db = self.database_url,
            mail = self.mail_toml,
            extra = self.connector_extra,
            feed = self.feed_path().display(),
            extra_toml = self.extra_toml,
            org_extra = self.org_extra,
        )
    }

    /// Runs the connector once, applying, as of the end of `date`.
    pub async fn sync(&self, app: &App, date: &str) -> anyhow::Result<RunReport> {
        let date: NaiveDate = date.parse()?;
        Ok(app
            .run_once("hr", RunMode::Apply, Trigger::Command, AsOf::EndOfDay(date))
            .await?
            .report)
    }

    /// Plans the connector once (a dry run), as of the end of `date`.
    pub async fn plan(&self, app: &App, date: &str) -> anyhow::Result<RunReport> {
        let date: NaiveDate = date.parse()?;
        Ok(app
            .run_once("hr", RunMode::Plan, Trigger::Command, AsOf::EndOfDay(date))
            .await?
            .report)
    }

    /// Runs one SQL statement directly, as the product's own screens would: for arranging
    /// local edits that hrsync must then overwrite or leave alone.
    pub async fn sql(&self, statement: &str) -> anyhow::Result<()> {
        use sqlx::Connection;
        match self.backend {
            Backend::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&self.database_url).await?;
                sqlx::query(statement).execute(&mut c).await?;
            }
            Backend::Postgres(_) => {
                let mut c = sqlx::PgConnection::connect(&self.database_url).await?;
                sqlx::query(statement).execute(&mut c).await?;
            }
        }
        Ok(())
    }

    /// Counts rows with one SQL query, for asserting that nothing was deleted.
    pub async fn count(&self, query: &str) -> anyhow::Result<i64> {
        use sqlx::Connection;
        Ok(match self.backend {
            Backend::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&self.database_url).await?;
                sqlx::query_scalar(query).fetch_one(&mut c).await?
            }
            Backend::Postgres(_) => {
                let mut c = sqlx::PgConnection::connect(&self.database_url).await?;
                sqlx::query_scalar(query).fetch_one(&mut c).await?
            }
        })
    }

    pub fn outbox_dir(&self) -> PathBuf {
        self.dir.path().join("outbox")
    }
}

fn replace_database(url: &str, database: &str) -> String {
    match url.rfind('/') {
        Some(i) if i > url.find("://").map(|s| s + 2).unwrap_or(0) => {
            let (base, rest) = url.split_at(i);
            let query = rest.find('?').map(|q| &rest[q..]).unwrap_or("");
            format!("{base}/{database}{query}")
        }
        _ => format!("{}/{database}", url.trim_end_matches('/')),
    }
}

/// The `.eml` files the file transport wrote, oldest first, as parsed mails.
pub fn eml_files(dir: &Path) -> Vec<ReceivedMail> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .map(|e| {
            let modified = e.metadata().and_then(|m| m.modified()).ok();
            (
                modified,
                std::fs::read_to_string(e.path()).unwrap_or_default(),
            )
        })
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|(_, data)| ReceivedMail {
            from: String::new(),
            to: Vec::new(),
            data,
        })
        .collect()
}

/// The mails addressed to `to`, by their `To` header.
pub fn mails_to<'m>(mails: &'m [ReceivedMail], to: &str) -> Vec<&'m ReceivedMail> {
    mails
        .iter()
        .filter(|m| m.header("To").is_some_and(|h| h.contains(to)) || m.to.iter().any(|t| t == to))
        .collect()
}

/// The activation token in a mail's plain text part.
pub fn token_in(mail: &ReceivedMail) -> Option<String> {
    let text = mail.text()?;
    let at = text.find("token=")? + "token=".len();
    Some(
        text[at..]
            .chars()
            .take_while(|c| c.is_ascii_hexdigit())
            .collect(),
    )
}

/// Counts a report's lines of one kind.
pub fn count(report: &RunReport, kind: &str) -> usize {
    report.changes.iter().filter(|c| c.kind == kind).count()
}

/// The report's actionable lines (everything but scheduled, quarantine and conflict).
pub fn actionable(report: &RunReport) -> Vec<String> {
    report
        .changes
        .iter()
        .filter(|c| !matches!(c.kind.as_str(), "scheduled" | "quarantine" | "conflict"))
        .map(|c| format!("{} {:?} {:?} {:?}", c.kind, c.employee_id, c.field, c.new))
        .collect()
}

/// `n` people in one department (`S01`, `person1@zorg.example`, …), each with an email.
pub fn staff(n: usize) -> Vec<String> {
    (1..=n)
        .map(|i| {
            format!(
                "S{i:02},person{i}@zorg.example,P{i},Staff,CARE,Care,,Helper,2020-01-01,,active,"
            )
        })
        .collect()
}

/// The lines of a feed as the `write_feed` rows.
pub fn rows(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}
