//! The settings as the configuration file spells them: one serde struct per section
//! (`[database]`, `[mail]`, `[server]`, `[organisations.SLUG]`, `[connectors.ID]` and its
//! tables), with the defaults README documents. Nothing here reads a file, the environment or
//! a secret: loading does that, and the check judges the values.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::connectors::csv::CsvSettings;
pub use crate::connectors::http::{HttpSettings, IncrementalSettings};
use crate::planner::health::HealthLimits;
use crate::planner::{StatusMap, Thresholds};

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
    /// The sender of this organisation's mail, `Name <address>`; default: `mail.from`.
    #[serde(default)]
    pub mail_from: Option<String>,
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

impl SourceKind {
    /// The kind as the configuration writes it, which is also the name of its table.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Csv => "csv",
            SourceKind::Http => "http",
        }
    }
}

/// A connector's source as one typed value: the kind with the settings of its table. Every
/// step that depends on the kind matches on this once (`check`, the run's fetch), so a new
/// kind is one more variant here, and the compiler names each place that must handle it.
#[derive(Clone, Copy, Debug)]
pub enum Source<'a> {
    Csv(&'a CsvSettings),
    Http(&'a HttpSettings),
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
    /// The source kind; [`ConnectorSettings::source`] gives it with its table.
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

impl ConnectorSettings {
    /// The source: the kind with its table. `Err` names what is wrong when the kind's table
    /// is missing, or another kind's table is given too (a csv connector with a stray
    /// `[http]` table would otherwise be accepted and the table silently ignored).
    pub fn source(&self) -> Result<Source<'_>, (String, String)> {
        let stray = match self.kind {
            SourceKind::Csv => self.http.as_ref().map(|_| SourceKind::Http),
            SourceKind::Http => self.csv.as_ref().map(|_| SourceKind::Csv),
        };
        if let Some(other) = stray {
            return Err((
                other.as_str().to_string(),
                format!(
                    "a {} connector takes no [{}] table; remove it, or set kind = \"{}\"",
                    self.kind.as_str(),
                    other.as_str(),
                    other.as_str()
                ),
            ));
        }
        match (self.kind, &self.csv, &self.http) {
            (SourceKind::Csv, Some(csv), _) => Ok(Source::Csv(csv)),
            (SourceKind::Http, _, Some(http)) => Ok(Source::Http(http)),
            (SourceKind::Csv, None, _) => Err((
                "csv".to_string(),
                "a csv connector needs a [csv] table".to_string(),
            )),
            (SourceKind::Http, _, None) => Err((
                "http".to_string(),
                "an http connector needs an [http] table".to_string(),
            )),
        }
    }
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
