//! Deployment configuration: layered settings, and a check that reports every problem at once.
//!
//! Settings come from one TOML file (`config/hrsync.toml` by default) with `HRSYNC__SECTION__KEY`
//! environment variables on top. [`load`] reads and deserialises them; [`Settings::check`]
//! then gathers every problem it can find (unknown keys, bad values, missing files, missing
//! secrets, dangling references) so `hrsync check` can list them all, each with where it came
//! from. Secrets are never stored in the file: it names the environment variable that holds
//! each one, and the value is read into a [`SecretString`] only when it is needed.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use chrono_tz::Tz;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::connectors::csv::CsvSettings;
use crate::domain::ConnectorId;
use crate::planner::health::HealthLimits;
use crate::planner::{
    FeedKind, Field, Ownership, Policy, Requirement, RoleRule, StatusMap, TeamSource, Thresholds,
};

/// The prefix of environment variables that override settings: `HRSYNC__DATABASE__URL`.
pub const ENV_PREFIX: &str = "HRSYNC";
/// The configuration file read when no `--config` is given.
pub const DEFAULT_PATH: &str = "config/hrsync.toml";

/// Settings as deserialised. They serialise too, so that a test can walk every field of the
/// effective configuration (`tests/config_check.rs` requires a range for each number).
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub mail: MailSettings,
    #[serde(default)]
    pub organisations: BTreeMap<String, OrganisationSettings>,
    /// Connector instances by id; `sync` runs them in id order.
    #[serde(default)]
    pub connectors: BTreeMap<String, ConnectorSettings>,
    /// The daemon (`hrsync serve`): HTTP listener, admin sign-in, workers, digest email.
    #[serde(default)]
    pub server: ServerSettings,
}

/// Settings of `hrsync serve`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// Where the admin API and pages listen, e.g. `127.0.0.1:8080`.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// The SHA-256 (hex) of the admin token. The token itself is never configured: admins
    /// hold it, and `hrsync admin-token` makes one. Without it, `serve` refuses to start.
    pub admin_token_sha256: Option<String>,
    /// Whether the sign-in cookie is marked `Secure` (sent over HTTPS only). Leave it on
    /// unless the pages are reached over plain HTTP on localhost.
    #[serde(default = "default_true")]
    pub cookie_secure: bool,
    /// How often the mail worker looks for due email when no run has just queued some.
    #[serde(default = "default_mail_poll")]
    pub mail_poll_seconds: u64,
    /// How long a run in progress may take to finish after SIGTERM before it is rolled back.
    #[serde(default = "default_grace")]
    pub shutdown_grace_seconds: u64,
    /// Invited people who have not activated after this many days are counted as stale on
    /// the accounts page.
    #[serde(default = "default_stale_days")]
    pub stale_invite_days: u32,
    /// The address admins reach the pages at, e.g. `https://hrsync.acme.example`: the link
    /// in each digest email. Required when an organisation has `digest_to`.
    pub public_url: Option<String>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            listen: default_listen(),
            admin_token_sha256: None,
            cookie_secure: true,
            mail_poll_seconds: default_mail_poll(),
            shutdown_grace_seconds: default_grace(),
            stale_invite_days: default_stale_days(),
            public_url: None,
        }
    }
}

fn default_listen() -> String {
    "127.0.0.1:8080".to_string()
}
fn default_mail_poll() -> u64 {
    5
}
fn default_grace() -> u64 {
    30
}
fn default_stale_days() -> u32 {
    7
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct DatabaseSettings {
    /// `sqlite://data/hrsync.db` or `postgres://user@host/db`; the scheme picks the backend.
    pub url: String,
    /// The environment variable that holds the PostgreSQL password, so the URL need not.
    pub password_env: Option<String>,
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
}

fn default_max_connections() -> u32 {
    5
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MailTransportKind {
    File,
    Smtp,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct MailSettings {
    /// The sender, e.g. `Zonnehof Zorg <no-reply@zonnehof.example>`.
    pub from: String,
    pub transport: MailTransportKind,
    /// Where the `file` transport writes `.eml` files.
    #[serde(default = "default_mail_dir")]
    pub dir: PathBuf,
    /// `smtp://host:587` (STARTTLS) or `smtps://host:465`; see README.
    pub smtp_url: Option<String>,
    pub smtp_username: Option<String>,
    /// The environment variable that holds the SMTP password.
    pub smtp_password_env: Option<String>,
    /// The activation link; `{token}` is replaced by the token.
    pub activation_url: String,
    #[serde(default = "default_token_days")]
    pub token_valid_days: u32,
}

fn default_mail_dir() -> PathBuf {
    PathBuf::from("data/outbox")
}

fn default_token_days() -> u32 {
    14
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct OrganisationSettings {
    pub name: String,
    /// An IANA time zone such as `Europe/Amsterdam`; HR dates are read in it.
    pub time_zone: String,
    /// `en` or `nl`: the language of the emails.
    #[serde(default = "default_locale")]
    pub locale: String,
    /// Admin addresses that get a digest email after a run that changed, held or failed
    /// something (a held or failed run only when the connector's previous run ended
    /// otherwise, so a run held for days does not mail every tick).
    #[serde(default)]
    pub digest_to: Vec<String>,
}

/// Whether `url` is an absolute http(s) address with a host.
fn is_http_url(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
        && !url.chars().any(char::is_whitespace)
}

fn default_locale() -> String {
    "en".to_string()
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Csv,
    Http,
}

/// Settings of the `http` source kind: which definition, and this instance's values for it.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// The definition: a name (`scim` is `connectors/scim.toml`) or a path to a `.toml` file.
    pub definition: String,
    /// Values of the definition's variables, e.g. `subdomain`.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// For each of the definition's secrets, the environment variable that holds it.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    /// Ask only for the people changed since the last applied run, where the definition can
    /// (its `[incremental]` table); the whole feed is read again now and then.
    pub incremental: Option<IncrementalSettings>,
}

/// When an incremental connector reads its whole feed again, so that people who vanished from
/// the HR system (rather than being ended there) are seen as leavers.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IncrementalSettings {
    /// After this many incremental runs.
    pub full_every_runs: Option<u32>,
    /// When the last full read is this many hours old; 24 when neither is set.
    pub full_every_hours: Option<u32>,
    /// Ask for changes since this many minutes before the last fetch started, for clocks
    /// that differ and changes saved while it ran.
    #[serde(default = "default_overlap")]
    pub overlap_minutes: u32,
}

fn default_overlap() -> u32 {
    5
}

impl IncrementalSettings {
    /// Whether the next fetch reads the whole feed, given where the connector stands.
    pub fn full_due(
        &self,
        watermark: Option<chrono::DateTime<chrono::Utc>>,
        last_full_at: Option<chrono::DateTime<chrono::Utc>>,
        incremental_runs: i64,
        now: chrono::DateTime<chrono::Utc>,
    ) -> bool {
        let (Some(_), Some(last_full)) = (watermark, last_full_at) else {
            return true;
        };
        let hours = match (self.full_every_runs, self.full_every_hours) {
            (None, None) => Some(24),
            (_, hours) => hours,
        };
        let by_runs = self
            .full_every_runs
            .is_some_and(|n| incremental_runs >= i64::from(n));
        let by_age =
            hours.is_some_and(|h| now - last_full >= chrono::Duration::hours(i64::from(h)));
        by_runs || by_age
    }
}

impl HttpSettings {
    /// Where the definition file is.
    pub fn definition_path(&self) -> PathBuf {
        if self.definition.ends_with(".toml") {
            PathBuf::from(&self.definition)
        } else {
            Path::new("connectors").join(format!("{}.toml", self.definition))
        }
    }

    /// The instance's secrets, read from their environment variables.
    pub fn read_secrets(&self) -> anyhow::Result<BTreeMap<String, SecretString>> {
        self.secrets
            .iter()
            .map(|(name, var)| {
                std::env::var(var)
                    .map(|v| (name.clone(), SecretString::from(v)))
                    .map_err(|_| {
                        anyhow::anyhow!(
                            "secret `{name}`: the environment variable `{var}` is not set"
                        )
                    })
            })
            .collect()
    }
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FeedSetting {
    Full,
    Incremental,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ConnectorSettings {
    /// The organisation (a key under `[organisations]`) this connector syncs.
    pub organisation: String,
    pub kind: SourceKind,
    /// Settings of the `csv` source kind. Not serialised: they hold no number, and they are
    /// the csv source's own type.
    #[serde(skip_serializing)]
    pub csv: Option<CsvSettings>,
    /// Settings of the `http` source kind.
    pub http: Option<HttpSettings>,
    #[serde(default = "default_feed")]
    pub feed: FeedSetting,
    /// When `hrsync serve` runs this connector: a cron schedule (5 fields, or 6 with seconds
    /// first) in the organisation's time zone. Without one, it runs only when asked.
    pub schedule: Option<String>,
    #[serde(default = "default_true")]
    pub send_invites: bool,
    #[serde(default)]
    pub invite_days_before_start: u32,
    #[serde(default)]
    pub status_map: Option<StatusMapSettings>,
    /// `department` (default), `location` or `attribute:NAME`.
    #[serde(default = "default_teams_from")]
    pub teams_from: String,
    /// Field name -> `hris`, `local` or `user_after_activation`.
    #[serde(default)]
    pub ownership: BTreeMap<String, String>,
    #[serde(default)]
    pub roles: Vec<RoleRuleSettings>,
    #[serde(default)]
    pub thresholds: ThresholdSettings,
    #[serde(default)]
    pub feed_health: FeedHealthSettings,
}

/// The feed-health gate's limits, compared with the connector's last good feed.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct FeedHealthSettings {
    /// Held when the record count drops by more than this share.
    #[serde(default = "default_max_drop")]
    pub max_drop: f64,
    /// Held when the share of records without a usable email rises by more than this.
    #[serde(default = "default_missing_rise")]
    pub max_missing_email_rise: f64,
    /// … and only when more than this many records are gone.
    #[serde(default = "default_max_drop_count")]
    pub max_drop_count: usize,
    /// … and only when more than this many more records lack a usable email.
    #[serde(default = "default_missing_rise_count")]
    pub max_missing_email_rise_count: usize,
    /// A connector's first feed is held when more than this share would be quarantined.
    #[serde(default = "default_first_feed_max_quarantined")]
    pub first_feed_max_quarantined: f64,
}

fn default_max_drop() -> f64 {
    HealthLimits::default().max_drop
}
fn default_missing_rise() -> f64 {
    HealthLimits::default().max_missing_email_rise
}
fn default_max_drop_count() -> usize {
    HealthLimits::default().max_drop_count
}
fn default_missing_rise_count() -> usize {
    HealthLimits::default().max_missing_email_rise_count
}
fn default_first_feed_max_quarantined() -> f64 {
    HealthLimits::default().first_feed_max_quarantined
}

impl Default for FeedHealthSettings {
    fn default() -> Self {
        FeedHealthSettings {
            max_drop: default_max_drop(),
            max_missing_email_rise: default_missing_rise(),
            max_drop_count: default_max_drop_count(),
            max_missing_email_rise_count: default_missing_rise_count(),
            first_feed_max_quarantined: default_first_feed_max_quarantined(),
        }
    }
}

fn default_feed() -> FeedSetting {
    FeedSetting::Full
}
fn default_true() -> bool {
    true
}
fn default_teams_from() -> String {
    "department".to_string()
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct StatusMapSettings {
    /// Statuses that mean active; left out, the default list (`active`).
    pub active: Option<Vec<String>>,
    /// Statuses that mean inactive; left out, the default list (`inactive`, `terminated`).
    pub inactive: Option<Vec<String>>,
}

impl StatusMapSettings {
    /// The map, each list left out taking its default.
    pub fn to_map(&self) -> StatusMap {
        let default = StatusMap::default();
        StatusMap {
            active: self.active.clone().unwrap_or(default.active),
            inactive: self.inactive.clone().unwrap_or(default.inactive),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct RoleRuleSettings {
    pub role: String,
    #[serde(default)]
    pub job_title: Vec<String>,
    #[serde(default)]
    pub department: Vec<String>,
    #[serde(default)]
    pub employment_type: Vec<String>,
    /// Attributes the role requires; `big_number` must be 11 digits.
    #[serde(default)]
    pub require: Vec<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ThresholdSettings {
    #[serde(default = "default_max_deactivations")]
    pub max_deactivations: usize,
    #[serde(default = "default_ratio")]
    pub max_deactivation_ratio: f64,
    #[serde(default = "default_min_for_ratio")]
    pub min_deactivations_for_ratio: usize,
}

fn default_max_deactivations() -> usize {
    Thresholds::default().max_deactivations
}
fn default_ratio() -> f64 {
    Thresholds::default().max_deactivation_ratio
}
fn default_min_for_ratio() -> usize {
    Thresholds::default().min_deactivations_for_ratio
}

impl Default for ThresholdSettings {
    fn default() -> Self {
        ThresholdSettings {
            max_deactivations: default_max_deactivations(),
            max_deactivation_ratio: default_ratio(),
            min_deactivations_for_ratio: default_min_for_ratio(),
        }
    }
}

/// The allowed range of every numeric setting. `check` refuses a value outside its range, so
/// nothing it accepts can overflow a date or a duration, or ask for an absurd allocation, at
/// run time; `App::build` refuses the same values. The ranges are generous for a production
/// deployment and documented with each key in README's configuration reference.
pub mod bounds {
    use std::fmt;

    /// The values a numeric setting may take, both ends included.
    #[derive(Clone, Copy, Debug, PartialEq)]
    pub enum Range {
        /// Whole numbers (counts, sizes, days, seconds).
        Whole { min: u64, max: u64 },
        /// Shares of a whole, such as 0.10 for 10%. NaN is in no range.
        Share { min: f64, max: f64 },
    }

    /// A setting's value, as [`Range`] compares it.
    #[derive(Clone, Copy, Debug, PartialEq)]
    pub enum Number {
        Whole(u64),
        Share(f64),
    }

    impl Range {
        pub fn admits(&self, value: Number) -> bool {
            match (*self, value) {
                (Range::Whole { min, max }, Number::Whole(v)) => (min..=max).contains(&v),
                (Range::Share { min, max }, Number::Share(v)) => (min..=max).contains(&v),
                // A whole number where a share belongs (or the reverse) is a slip in this
                // module, never an operator's value: refuse rather than guess.
                _ => false,
            }
        }
    }

    impl fmt::Display for Range {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                Range::Whole { min, max } => write!(f, "{min} to {max}"),
                Range::Share { min, max } => write!(f, "{min} to {max}"),
            }
        }
    }

    impl fmt::Display for Number {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                Number::Whole(v) => write!(f, "{v}"),
                Number::Share(v) => write!(f, "{v}"),
            }
        }
    }

    /// A numeric setting and its range.
    #[derive(Clone, Copy, Debug, PartialEq)]
    pub struct Bound {
        /// The dotted key; under `connectors`, `ID` stands for the connector's id.
        pub key: &'static str,
        pub range: Range,
    }

    impl Bound {
        /// The key of this setting in connector `id` (settings outside connectors ignore it).
        pub fn key_for(&self, id: &str) -> String {
            match self.key.strip_prefix("connectors.ID.") {
                Some(rest) => format!("connectors.{id}.{rest}"),
                None => self.key.to_string(),
            }
        }

        /// Whether a dotted key names this setting, for any connector id in place of `ID`.
        pub fn matches(&self, key: &str) -> bool {
            let (mut pattern, mut key) = (self.key.split('.'), key.split('.'));
            loop {
                match (pattern.next(), key.next()) {
                    (None, None) => return true,
                    (Some("ID"), Some(_)) => {}
                    (Some(p), Some(k)) if p == k => {}
                    _ => return false,
                }
            }
        }
    }

    const fn whole(key: &'static str, min: u64, max: u64) -> Bound {
        Bound {
            key,
            range: Range::Whole { min, max },
        }
    }

    const fn share(key: &'static str) -> Bound {
        Bound {
            key,
            range: Range::Share { min: 0.0, max: 1.0 },
        }
    }

    /// The pool reserves room for every connection up front; see `store::MAX_POOL_SIZE`.
    pub const MAX_CONNECTIONS: Bound = whole(
        "database.max_connections",
        1,
        crate::store::MAX_POOL_SIZE as u64,
    );
    /// A year: an activation link older than that is better sent again.
    pub const TOKEN_VALID_DAYS: Bound = whole("mail.token_valid_days", 1, 365);
    /// Up to an hour; the worker is woken after every run as well.
    pub const MAIL_POLL_SECONDS: Bound = whole("server.mail_poll_seconds", 1, 3600);
    /// 0 cuts a run in progress off at once; an hour is longer than any service manager
    /// waits for a stop.
    pub const SHUTDOWN_GRACE_SECONDS: Bound = whole("server.shutdown_grace_seconds", 0, 3600);
    pub const STALE_INVITE_DAYS: Bound = whole("server.stale_invite_days", 1, 365);
    pub const INVITE_DAYS_BEFORE_START: Bound =
        whole("connectors.ID.invite_days_before_start", 0, 365);
    pub const FULL_EVERY_RUNS: Bound =
        whole("connectors.ID.http.incremental.full_every_runs", 1, 10_000);
    /// A year at most, so people who vanished from the HR system are found within one.
    pub const FULL_EVERY_HOURS: Bound =
        whole("connectors.ID.http.incremental.full_every_hours", 1, 8760);
    pub const OVERLAP_MINUTES: Bound =
        whole("connectors.ID.http.incremental.overlap_minutes", 0, 1440);
    /// 0 holds every run that deactivates anyone; a million is more than any organisation.
    pub const MAX_DEACTIVATIONS: Bound =
        whole("connectors.ID.thresholds.max_deactivations", 0, 1_000_000);
    pub const MAX_DEACTIVATION_RATIO: Bound =
        share("connectors.ID.thresholds.max_deactivation_ratio");
    pub const MIN_DEACTIVATIONS_FOR_RATIO: Bound = whole(
        "connectors.ID.thresholds.min_deactivations_for_ratio",
        0,
        1_000_000,
    );
    pub const MAX_DROP: Bound = share("connectors.ID.feed_health.max_drop");
    pub const MAX_MISSING_EMAIL_RISE: Bound =
        share("connectors.ID.feed_health.max_missing_email_rise");
    /// Counts that go with the feed-health shares; a million is more than any organisation.
    pub const MAX_DROP_COUNT: Bound =
        whole("connectors.ID.feed_health.max_drop_count", 0, 1_000_000);
    pub const MAX_MISSING_EMAIL_RISE_COUNT: Bound = whole(
        "connectors.ID.feed_health.max_missing_email_rise_count",
        0,
        1_000_000,
    );
    pub const FIRST_FEED_MAX_QUARANTINED: Bound =
        share("connectors.ID.feed_health.first_feed_max_quarantined");

    /// Every numeric setting of the configuration.
    pub const ALL: &[Bound] = &[
        MAX_CONNECTIONS,
        TOKEN_VALID_DAYS,
        MAIL_POLL_SECONDS,
        SHUTDOWN_GRACE_SECONDS,
        STALE_INVITE_DAYS,
        INVITE_DAYS_BEFORE_START,
        FULL_EVERY_RUNS,
        FULL_EVERY_HOURS,
        OVERLAP_MINUTES,
        MAX_DEACTIVATIONS,
        MAX_DEACTIVATION_RATIO,
        MIN_DEACTIVATIONS_FOR_RATIO,
        MAX_DROP,
        MAX_MISSING_EMAIL_RISE,
        MAX_DROP_COUNT,
        MAX_MISSING_EMAIL_RISE_COUNT,
        FIRST_FEED_MAX_QUARANTINED,
    ];

    /// The range of the setting a dotted key names, if it is a numeric one.
    pub fn of(key: &str) -> Option<Range> {
        ALL.iter().find(|b| b.matches(key)).map(|b| b.range)
    }
}

/// One problem in the configuration, with where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The file or environment variable the value came from.
    pub origin: String,
    /// The dotted key, e.g. `connectors.zonnehof_hr.csv.path`.
    pub key: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.origin, self.message)
        } else {
            write!(f, "{}: {}: {}", self.origin, self.key, self.message)
        }
    }
}

/// Configuration that could not be loaded or does not pass the check.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        writeln!(
            f,
            "the configuration has {n} problem{}:",
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

/// Settings as loaded, with the file they came from (for messages).
#[derive(Clone, Debug)]
pub struct Loaded {
    pub settings: Settings,
    pub path: PathBuf,
}

/// Reads the file and the `HRSYNC__…` environment, and deserialises them. Unknown keys and
/// values of the wrong type are reported here, all unknown keys at once.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    load_with_env(path, std::env::vars())
}

/// [`load`] with an explicit environment, so tests need not change the process's own.
pub fn load_with_env(
    path: &Path,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Loaded, ConfigError> {
    let origin_file = path.display().to_string();
    let file_problem = |message: String| ConfigError {
        problems: vec![Problem {
            origin: origin_file.clone(),
            key: String::new(),
            message,
        }],
    };
    if !path.is_file() {
        return Err(file_problem(
            "the configuration file does not exist".to_string(),
        ));
    }
    let env: BTreeMap<String, String> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with(&format!("{ENV_PREFIX}__")))
        .collect();
    let built = config::Config::builder()
        .add_source(config::File::from(path).format(config::FileFormat::Toml))
        .add_source(
            config::Environment::with_prefix(ENV_PREFIX)
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .source(Some(env.clone().into_iter().collect())),
        )
        .build()
        .map_err(|e| file_problem(e.to_string()))?;

    let origin_of = |key: &str| -> String {
        let var = env_var_for(key);
        if env.keys().any(|k| k.eq_ignore_ascii_case(&var)) {
            format!("environment {var}")
        } else {
            origin_file.clone()
        }
    };

    let mut unknown = Vec::new();
    let mut on_unknown = |path: serde_ignored::Path<'_>| unknown.push(path.to_string());
    let result: Result<Settings, _> =
        serde_path_to_error::deserialize(serde_ignored::Deserializer::new(built, &mut on_unknown));
    // The config crate keeps tables in hash maps; sort so the report is stable.
    unknown.sort();
    let mut problems: Vec<Problem> = unknown
        .into_iter()
        .map(|key| Problem {
            origin: origin_of(&key),
            message: "unknown key".to_string(),
            key,
        })
        .collect();
    match result {
        Ok(settings) if problems.is_empty() => Ok(Loaded {
            settings,
            path: path.to_path_buf(),
        }),
        Ok(_) => Err(ConfigError { problems }),
        Err(e) => {
            let key = e.path().to_string();
            let key = if key == "." { String::new() } else { key };
            let mut message = e.inner().to_string();
            // A number the type cannot hold (a negative count, say) is out of range as well:
            // say which values are.
            if let Some(range) = bounds::of(&key) {
                message.push_str(&format!("; use {range}"));
            }
            problems.push(Problem {
                origin: origin_of(&key),
                message,
                key,
            });
            Err(ConfigError { problems })
        }
    }
}

/// The environment variable that overrides a dotted key: `database.url` is
/// `HRSYNC__DATABASE__URL`.
fn env_var_for(key: &str) -> String {
    format!("{ENV_PREFIX}__{}", key.replace('.', "__").to_uppercase())
}

/// An organisation with its settings parsed.
#[derive(Clone, Debug)]
pub struct Organisation {
    pub slug: String,
    pub name: String,
    pub time_zone: Tz,
    pub locale: String,
}

impl Loaded {
    fn problem(&self, key: impl Into<String>, message: impl Into<String>) -> Problem {
        let key = key.into();
        let var = env_var_for(&key);
        let origin = if std::env::var_os(&var).is_some() {
            format!("environment {var}")
        } else {
            self.path.display().to_string()
        };
        Problem {
            origin,
            key,
            message: message.into(),
        }
    }

    /// Every problem the configuration has, beyond what loading found: values out of range,
    /// unknown time zones, references to organisations that do not exist, source files that
    /// cannot be read, and secrets whose environment variable is not set.
    pub fn check(&self) -> Vec<Problem> {
        let s = &self.settings;
        let mut problems = Vec::new();
        if !(s.database.url.starts_with("sqlite:")
            || s.database.url.starts_with("postgres:")
            || s.database.url.starts_with("postgresql:"))
        {
            problems.push(self.problem("database.url", "must start with sqlite: or postgres:"));
        }
        if let Some(var) = &s.database.password_env
            && std::env::var_os(var).is_none()
        {
            problems.push(self.problem(
                "database.password_env",
                format!("the environment variable `{var}` is not set"),
            ));
        }
        if s.mail.from.parse::<lettre::message::Mailbox>().is_err() {
            problems.push(self.problem(
                "mail.from",
                format!(
                    "`{}` is not a mailbox such as `Name <addr@example.org>`",
                    s.mail.from
                ),
            ));
        }
        if !s.mail.activation_url.contains("{token}") {
            problems.push(self.problem(
                "mail.activation_url",
                "must contain `{token}`, where the activation token goes",
            ));
        }
        let server = &s.server;
        if server.listen.parse::<std::net::SocketAddr>().is_err() {
            problems.push(self.problem(
                "server.listen",
                format!(
                    "`{}` is not an address such as 127.0.0.1:8080",
                    server.listen
                ),
            ));
        }
        if let Some(hash) = &server.admin_token_sha256
            && !(hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            problems.push(self.problem(
                "server.admin_token_sha256",
                "must be the 64 hex digits of a SHA-256; `hrsync admin-token` makes a token and its hash",
            ));
        }
        match &server.public_url {
            Some(url) if !is_http_url(url) => problems.push(self.problem(
                "server.public_url",
                format!("`{url}` is not an http:// or https:// address such as https://hrsync.acme.example"),
            )),
            None if s.organisations.values().any(|o| !o.digest_to.is_empty()) => {
                problems.push(self.problem(
                    "server.public_url",
                    "is required when an organisation has digest_to: each digest links to its run's page",
                ))
            }
            _ => {}
        }
        if s.mail.transport == MailTransportKind::Smtp {
            if s.mail.smtp_url.is_none() {
                problems
                    .push(self.problem("mail.smtp_url", "is required when transport = \"smtp\""));
            }
            if let Some(var) = &s.mail.smtp_password_env
                && std::env::var_os(var).is_none()
            {
                problems.push(self.problem(
                    "mail.smtp_password_env",
                    format!("the environment variable `{var}` is not set"),
                ));
            }
            if s.mail.smtp_password_env.is_some() && s.mail.smtp_username.is_none() {
                problems
                    .push(self.problem("mail.smtp_username", "is required with smtp_password_env"));
            }
        }
        if s.organisations.is_empty() {
            problems.push(self.problem("organisations", "no organisation is configured"));
        }
        for (slug, org) in &s.organisations {
            if slug.is_empty()
                || !slug
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                problems.push(self.problem(
                    format!("organisations.{slug}"),
                    "an organisation key may hold only letters, digits, `_` and `-`",
                ));
            }
            if org.time_zone.parse::<Tz>().is_err() {
                problems.push(self.problem(
                    format!("organisations.{slug}.time_zone"),
                    format!(
                        "`{}` is not an IANA time zone such as Europe/Amsterdam",
                        org.time_zone
                    ),
                ));
            }
            if crate::mail::Locale::parse(&org.locale).is_none() {
                problems.push(self.problem(
                    format!("organisations.{slug}.locale"),
                    format!("`{}` is not a supported locale (en, nl)", org.locale),
                ));
            }
            for (i, address) in org.digest_to.iter().enumerate() {
                if address.trim().parse::<lettre::Address>().is_err() {
                    problems.push(self.problem(
                        format!("organisations.{slug}.digest_to[{i}]"),
                        format!("`{address}` is not an email address"),
                    ));
                }
            }
        }
        for (id, c) in &s.connectors {
            let at = |key: &str| format!("connectors.{id}.{key}");
            if !id
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
            {
                problems.push(self.problem(
                    format!("connectors.{id}"),
                    "a connector id may hold only letters, digits, `_` and `-`",
                ));
            }
            if !s.organisations.contains_key(&c.organisation) {
                problems.push(self.problem(
                    at("organisation"),
                    format!("no organisation `{}` under [organisations]", c.organisation),
                ));
            }
            match (c.kind, &c.csv, &c.http) {
                (SourceKind::Csv, None, _) => {
                    problems.push(self.problem(at("csv"), "a csv connector needs a [csv] table"))
                }
                (SourceKind::Csv, Some(csv), _) => {
                    for (key, message) in csv.problems() {
                        problems.push(self.problem(at(&format!("csv.{key}")), message));
                    }
                    if !csv.path.is_file() {
                        problems.push(self.problem(
                            at("csv.path"),
                            format!("`{}` is not a readable file", csv.path.display()),
                        ));
                    }
                }
                (SourceKind::Http, _, None) => problems
                    .push(self.problem(at("http"), "an http connector needs an [http] table")),
                (SourceKind::Http, _, Some(http)) => {
                    match crate::connectors::http::Definition::load(&http.definition_path()) {
                        Err(e) => problems.push(self.problem(at("http.definition"), e)),
                        Ok(def) => {
                            for v in def
                                .variables
                                .iter()
                                .filter(|v| !http.variables.contains_key(*v))
                            {
                                problems.push(self.problem(
                                    at(&format!("http.variables.{v}")),
                                    format!("the definition `{}` needs this variable", def.name),
                                ));
                            }
                            for s in def
                                .secrets
                                .iter()
                                .filter(|s| !http.secrets.contains_key(*s))
                            {
                                problems.push(self.problem(
                                    at(&format!("http.secrets.{s}")),
                                    format!(
                                        "the definition `{}` needs this secret: name the environment variable that holds it",
                                        def.name
                                    ),
                                ));
                            }
                            if http.incremental.is_some()
                                && matches!(c.feed, FeedSetting::Incremental)
                            {
                                problems.push(self.problem(
                                    at("feed"),
                                    "must be \"full\" with http.incremental: the merged feed is whole, and its periodic full fetch must find the people who vanished",
                                ));
                            }
                            if http.incremental.is_some() && def.incremental.is_none() {
                                problems.push(self.problem(
                                    at("http.incremental"),
                                    format!(
                                        "the definition `{}` has no [incremental] table: it does not say how to ask for only what changed",
                                        def.name
                                    ),
                                ));
                            }
                        }
                    }
                    for (name, var) in &http.secrets {
                        if std::env::var_os(var).is_none() {
                            problems.push(self.problem(
                                at(&format!("http.secrets.{name}")),
                                format!("the environment variable `{var}` is not set"),
                            ));
                        }
                    }
                }
            }
            if let Some(map) = c.status_map.as_ref().map(StatusMapSettings::to_map) {
                for s in &map.active {
                    if map.inactive.iter().any(|i| i.eq_ignore_ascii_case(s)) {
                        problems.push(self.problem(
                            at("status_map"),
                            format!("`{s}` is listed as both active and inactive"),
                        ));
                    }
                }
            }
            if let Some(schedule) = &c.schedule {
                match crate::schedule::Schedule::parse(schedule) {
                    Err(e) => problems.push(self.problem(at("schedule"), e)),
                    Ok(parsed) => {
                        // Each field may be in range while the date is not (`0 0 31 4 *`):
                        // the daemon would wait for a tick that never comes, silently.
                        let zone = s
                            .organisations
                            .get(&c.organisation)
                            .and_then(|o| o.time_zone.parse::<Tz>().ok())
                            .unwrap_or(Tz::UTC);
                        if parsed.next_after(chrono::Utc::now(), zone).is_none() {
                            problems.push(self.problem(
                                at("schedule"),
                                format!(
                                    "`{schedule}` never fires: no date matches its day and month"
                                ),
                            ));
                        }
                    }
                }
            }
            if TeamSource::parse(&c.teams_from).is_none() {
                problems.push(self.problem(
                    at("teams_from"),
                    format!(
                        "`{}` is not `department`, `location` or `attribute:NAME`",
                        c.teams_from
                    ),
                ));
            }
            for (field, owner) in &c.ownership {
                if Field::parse(field).is_none() {
                    let known: Vec<&str> = Field::ALL.iter().map(|f| f.as_str()).collect();
                    problems.push(self.problem(
                        at(&format!("ownership.{field}")),
                        format!("unknown field; known fields: {}", known.join(", ")),
                    ));
                }
                if Ownership::parse(owner).is_none() {
                    problems.push(self.problem(
                        at(&format!("ownership.{field}")),
                        format!("`{owner}` is not `hris`, `local` or `user_after_activation`"),
                    ));
                }
            }
            for (i, rule) in c.roles.iter().enumerate() {
                if rule.role.trim().is_empty() {
                    problems
                        .push(self.problem(at(&format!("roles[{i}].role")), "must not be empty"));
                }
                for r in &rule.require {
                    if r.trim().is_empty() {
                        problems.push(self.problem(
                            at(&format!("roles[{i}].require")),
                            "an attribute name must not be empty",
                        ));
                    }
                }
            }
        }
        problems.extend(self.bounds_problems());
        problems
    }

    /// Every numeric setting with its value, and its range in [`bounds`].
    pub fn numbers(&self) -> Vec<(String, bounds::Bound, bounds::Number)> {
        use bounds::Number::{Share, Whole};
        let s = &self.settings;
        let global = |bound: bounds::Bound, value| (bound.key.to_string(), bound, value);
        let mut numbers = vec![
            global(
                bounds::MAX_CONNECTIONS,
                Whole(s.database.max_connections.into()),
            ),
            global(
                bounds::TOKEN_VALID_DAYS,
                Whole(s.mail.token_valid_days.into()),
            ),
            global(bounds::MAIL_POLL_SECONDS, Whole(s.server.mail_poll_seconds)),
            global(
                bounds::SHUTDOWN_GRACE_SECONDS,
                Whole(s.server.shutdown_grace_seconds),
            ),
            global(
                bounds::STALE_INVITE_DAYS,
                Whole(s.server.stale_invite_days.into()),
            ),
        ];
        // usize is at most 64 bits on every target Rust supports; saturate rather than cast.
        let count = |n: usize| Whole(u64::try_from(n).unwrap_or(u64::MAX));
        for (id, c) in &s.connectors {
            let mut of = |bound: bounds::Bound, value| {
                numbers.push((bound.key_for(id), bound, value));
            };
            of(
                bounds::INVITE_DAYS_BEFORE_START,
                Whole(c.invite_days_before_start.into()),
            );
            if let Some(inc) = c.http.as_ref().and_then(|h| h.incremental.as_ref()) {
                if let Some(runs) = inc.full_every_runs {
                    of(bounds::FULL_EVERY_RUNS, Whole(runs.into()));
                }
                if let Some(hours) = inc.full_every_hours {
                    of(bounds::FULL_EVERY_HOURS, Whole(hours.into()));
                }
                of(bounds::OVERLAP_MINUTES, Whole(inc.overlap_minutes.into()));
            }
            let t = &c.thresholds;
            of(bounds::MAX_DEACTIVATIONS, count(t.max_deactivations));
            of(
                bounds::MAX_DEACTIVATION_RATIO,
                Share(t.max_deactivation_ratio),
            );
            of(
                bounds::MIN_DEACTIVATIONS_FOR_RATIO,
                count(t.min_deactivations_for_ratio),
            );
            of(bounds::MAX_DROP, Share(c.feed_health.max_drop));
            of(
                bounds::MAX_MISSING_EMAIL_RISE,
                Share(c.feed_health.max_missing_email_rise),
            );
            of(bounds::MAX_DROP_COUNT, count(c.feed_health.max_drop_count));
            of(
                bounds::MAX_MISSING_EMAIL_RISE_COUNT,
                count(c.feed_health.max_missing_email_rise_count),
            );
            of(
                bounds::FIRST_FEED_MAX_QUARANTINED,
                Share(c.feed_health.first_feed_max_quarantined),
            );
        }
        numbers
    }

    /// The numeric settings outside their range, e.g. `mail.token_valid_days: 100000000 is
    /// out of range; use 1 to 365`. Part of [`Loaded::check`], and what `App::build` refuses
    /// to run with: it reads no file and no environment, so it holds for any caller.
    pub fn bounds_problems(&self) -> Vec<Problem> {
        self.numbers()
            .into_iter()
            .filter(|(_, bound, value)| !bound.range.admits(*value))
            .map(|(key, bound, value)| {
                self.problem(key, format!("{value} is out of range; use {}", bound.range))
            })
            .collect()
    }

    /// The problems of the HR sources themselves, for `hrsync check`: each CSV export is read
    /// as a sync would read it, so a bad header or row shows before a run fails on it. Kept
    /// apart from [`Loaded::check`] so one bad export stops only its own connector's runs.
    pub fn check_sources(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        for (id, c) in &self.settings.connectors {
            if let Some(csv) = &c.csv
                && csv.path.is_file()
                && csv.problems().is_empty()
                && let Err(e) = crate::connectors::csv::read_file(csv)
            {
                problems.push(self.problem(format!("connectors.{id}.csv.path"), e.to_string()));
            }
        }
        problems
    }

    /// A connector instance's settings by id.
    pub fn connector(&self, id: &str) -> anyhow::Result<&ConnectorSettings> {
        self.settings
            .connectors
            .get(id)
            .ok_or_else(|| anyhow::anyhow!("connector `{id}` is not configured"))
    }

    /// The organisation by key, parsed. Call after [`Loaded::check`] passed.
    pub fn organisation(&self, slug: &str) -> anyhow::Result<Organisation> {
        let org = self
            .settings
            .organisations
            .get(slug)
            .ok_or_else(|| anyhow::anyhow!("no organisation `{slug}` in the configuration"))?;
        Ok(Organisation {
            slug: slug.to_string(),
            name: org.name.clone(),
            time_zone: org
                .time_zone
                .parse()
                .map_err(|_| anyhow::anyhow!("unknown time zone `{}`", org.time_zone))?,
            locale: org.locale.clone(),
        })
    }

    /// The planning policy of a connector. Call after [`Loaded::check`] passed.
    pub fn policy(&self, id: &str) -> anyhow::Result<Policy> {
        let c = self
            .settings
            .connectors
            .get(id)
            .ok_or_else(|| anyhow::anyhow!("no connector `{id}` in the configuration"))?;
        let org = self.organisation(&c.organisation)?;
        let connector =
            ConnectorId::parse(id).ok_or_else(|| anyhow::anyhow!("empty connector id"))?;
        let mut policy = Policy::new(connector, org.time_zone);
        policy.feed = match c.feed {
            FeedSetting::Full => FeedKind::Full,
            FeedSetting::Incremental => FeedKind::Incremental,
        };
        policy.send_invites = c.send_invites;
        policy.invite_days_before_start = c.invite_days_before_start;
        if let Some(map) = &c.status_map {
            policy.status_map = map.to_map();
        }
        policy.teams_from = TeamSource::parse(&c.teams_from)
            .ok_or_else(|| anyhow::anyhow!("bad teams_from `{}`", c.teams_from))?;
        for (field, owner) in &c.ownership {
            if let (Some(f), Some(o)) = (Field::parse(field), Ownership::parse(owner)) {
                policy.ownership.insert(f, o);
            }
        }
        policy.roles = c
            .roles
            .iter()
            .map(|r| RoleRule {
                role: r.role.trim().to_string(),
                job_title: r.job_title.clone(),
                department: r.department.clone(),
                employment_type: r.employment_type.clone(),
                require: r
                    .require
                    .iter()
                    .map(|a| Requirement::named(a.trim()))
                    .collect(),
            })
            .collect();
        policy.health = HealthLimits {
            max_drop: c.feed_health.max_drop,
            max_missing_email_rise: c.feed_health.max_missing_email_rise,
            max_drop_count: c.feed_health.max_drop_count,
            max_missing_email_rise_count: c.feed_health.max_missing_email_rise_count,
            first_feed_max_quarantined: c.feed_health.first_feed_max_quarantined,
        };
        policy.thresholds = Thresholds {
            max_deactivations: c.thresholds.max_deactivations,
            max_deactivation_ratio: c.thresholds.max_deactivation_ratio,
            min_deactivations_for_ratio: c.thresholds.min_deactivations_for_ratio,
        };
        Ok(policy)
    }

    /// The database password, read from the environment variable the configuration names.
    pub fn database_password(&self) -> anyhow::Result<Option<SecretString>> {
        secret_from_env(
            "database.password_env",
            &self.settings.database.password_env,
        )
    }

    /// The SMTP password, read from the environment variable the configuration names.
    pub fn smtp_password(&self) -> anyhow::Result<Option<SecretString>> {
        secret_from_env(
            "mail.smtp_password_env",
            &self.settings.mail.smtp_password_env,
        )
    }
}

fn secret_from_env(key: &str, var: &Option<String>) -> anyhow::Result<Option<SecretString>> {
    match var {
        None => Ok(None),
        Some(var) => std::env::var(var)
            .map(|v| Some(SecretString::from(v)))
            .map_err(|_| anyhow::anyhow!("{key}: the environment variable `{var}` is not set")),
    }
}

/// Loads and checks in one go: the configuration every command but `check` starts from.
pub fn load_checked(path: &Path) -> Result<Loaded, ConfigError> {
    let loaded = load(path)?;
    let problems = loaded.check();
    if problems.is_empty() {
        Ok(loaded)
    } else {
        Err(ConfigError { problems })
    }
}
