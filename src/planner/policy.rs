//! The policy a connector instance plans with: how to read statuses and dates, who owns which
//! field, which roles follow from which HR fields, and when a run is held.
//!
//! The configuration layer builds a [`Policy`] from the deployment settings; the planner only
//! reads it.

use std::collections::BTreeMap;

use chrono_tz::Tz;

use crate::domain::{ConnectorId, HrRecord};

/// Whether a feed lists everybody (absence means a leaver) or only recent changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeedKind {
    Full,
    Incremental,
}

/// Who may change a field after the account exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ownership {
    /// The HR system: local edits are overwritten on the next sync.
    Hris,
    /// HR sets it only when the account or membership is created.
    Local,
    /// HR fills it until the person activates the account; from then on the person owns it.
    UserAfterActivation,
}

impl Ownership {
    pub fn parse(text: &str) -> Option<Ownership> {
        match text {
            "hris" => Some(Ownership::Hris),
            "local" => Some(Ownership::Local),
            "user_after_activation" => Some(Ownership::UserAfterActivation),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Ownership::Hris => "hris",
            Ownership::Local => "local",
            Ownership::UserAfterActivation => "user_after_activation",
        }
    }

    /// Whether HR may overwrite a field of an existing account with this ownership.
    /// The owner that lets HR update less: `local` over `user_after_activation` over `hris`.
    pub fn stricter(self, other: Ownership) -> Ownership {
        let rank = |o: Ownership| match o {
            Ownership::Hris => 0,
            Ownership::UserAfterActivation => 1,
            Ownership::Local => 2,
        };
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }

    pub fn hr_may_update(self, activated: bool) -> bool {
        match self {
            Ownership::Hris => true,
            Ownership::Local => false,
            Ownership::UserAfterActivation => !activated,
        }
    }
}

/// The fields that have an owner. Account fields are shared by every organisation of the
/// person; membership fields are kept per organisation; `team` and `coach` are the team and
/// coach assignments made from the department and the manager.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    Email,
    FirstName,
    LastName,
    DisplayName,
    JobTitle,
    Location,
    EmploymentType,
    Team,
    Coach,
}

impl Field {
    pub const ALL: [Field; 9] = [
        Field::Email,
        Field::FirstName,
        Field::LastName,
        Field::DisplayName,
        Field::JobTitle,
        Field::Location,
        Field::EmploymentType,
        Field::Team,
        Field::Coach,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Field::Email => "email",
            Field::FirstName => "first_name",
            Field::LastName => "last_name",
            Field::DisplayName => "display_name",
            Field::JobTitle => "job_title",
            Field::Location => "location",
            Field::EmploymentType => "employment_type",
            Field::Team => "team",
            Field::Coach => "coach",
        }
    }

    pub fn parse(text: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.as_str() == text)
    }
}

/// How the connector's HR status texts map to active and inactive. Compared without case.
#[derive(Clone, Debug, PartialEq)]
pub struct StatusMap {
    pub active: Vec<String>,
    pub inactive: Vec<String>,
}

/// What a status text means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusMeaning {
    Active,
    Inactive,
    Unknown,
}

impl StatusMap {
    /// A record without a status is active: its dates alone decide.
    pub fn meaning(&self, status: Option<&str>) -> StatusMeaning {
        let Some(status) = status.map(str::trim).filter(|s| !s.is_empty()) else {
            return StatusMeaning::Active;
        };
        let matches = |list: &[String]| list.iter().any(|s| s.eq_ignore_ascii_case(status));
        if matches(&self.inactive) {
            StatusMeaning::Inactive
        } else if matches(&self.active) {
            StatusMeaning::Active
        } else {
            StatusMeaning::Unknown
        }
    }
}

impl Default for StatusMap {
    fn default() -> Self {
        StatusMap {
            active: vec!["active".into()],
            inactive: vec!["inactive".into(), "terminated".into()],
        }
    }
}

/// Where teams come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TeamSource {
    Department,
    Location,
    /// An extra attribute such as `cost_centre`; its value is both the key and the name.
    Attribute(String),
}

impl TeamSource {
    pub fn parse(text: &str) -> Option<TeamSource> {
        match text {
            "department" => Some(TeamSource::Department),
            "location" => Some(TeamSource::Location),
            _ => text
                .strip_prefix("attribute:")
                .filter(|name| !name.is_empty())
                .map(|name| TeamSource::Attribute(name.to_string())),
        }
    }
}

/// An attribute a role requires, with the shape its value must have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    pub attribute: String,
    /// The value must be exactly this many digits (a Dutch BIG number has 11).
    pub digits: Option<usize>,
}

impl Requirement {
    /// A requirement by attribute name; `big_number` knows its shape (11 digits).
    pub fn named(attribute: &str) -> Requirement {
        let digits = (attribute == "big_number").then_some(11);
        Requirement {
            attribute: attribute.to_string(),
            digits,
        }
    }

    /// What the record lacks, phrased to follow "requires", or `None` when it meets it.
    pub fn failure(&self, record: &HrRecord) -> Option<String> {
        let value = record
            .attributes
            .get(&self.attribute)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty());
        match (value, self.digits) {
            (None, _) => Some(format!("`{}`, which is missing", self.attribute)),
            (Some(v), Some(n)) if v.len() != n || !v.bytes().all(|b| b.is_ascii_digit()) => {
                Some(format!("`{}` of {n} digits, not `{v}`", self.attribute))
            }
            _ => None,
        }
    }
}

/// A rule that grants a role. Every condition given must match; a list matches when any of its
/// patterns does. A pattern is compared without case and may end or start with `*`. A rule with
/// no conditions grants its role to everybody the connector syncs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleRule {
    pub role: String,
    pub job_title: Vec<String>,
    pub department: Vec<String>,
    pub employment_type: Vec<String>,
    pub require: Vec<Requirement>,
}

impl RoleRule {
    pub fn matches(&self, record: &HrRecord) -> bool {
        let department = record.department.as_ref();
        condition(&self.job_title, record.job_title.as_deref())
            && condition_any(
                &self.department,
                [
                    department.map(|d| d.key.as_str()),
                    department.map(|d| d.name.as_str()),
                ],
            )
            && condition(&self.employment_type, record.employment_type.as_deref())
    }
}

fn condition(patterns: &[String], value: Option<&str>) -> bool {
    condition_any(patterns, [value])
}

fn condition_any<const N: usize>(patterns: &[String], values: [Option<&str>; N]) -> bool {
    patterns.is_empty()
        || values
            .into_iter()
            .flatten()
            .any(|v| patterns.iter().any(|p| pattern_matches(p, v)))
}

/// Case-insensitive match with an optional `*` at the start and/or the end.
pub fn pattern_matches(pattern: &str, value: &str) -> bool {
    let pattern = pattern.to_lowercase();
    let value = value.trim().to_lowercase();
    match (pattern.strip_prefix('*'), pattern.strip_suffix('*')) {
        (Some(_), Some(_)) if pattern.len() >= 2 => value.contains(&pattern[1..pattern.len() - 1]),
        (Some(rest), None) => value.ends_with(rest),
        (None, Some(rest)) => value.starts_with(rest),
        _ => value == pattern,
    }
}

/// When a run that deactivates people is held for an admin's approval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Thresholds {
    /// Held when the deactivations exceed this many people.
    pub max_deactivations: usize,
    /// Held when the deactivations exceed both `min_deactivations_for_ratio` and this share of
    /// the connector's managed memberships.
    pub max_deactivation_ratio: f64,
    pub min_deactivations_for_ratio: usize,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            max_deactivations: 25,
            max_deactivation_ratio: 0.10,
            min_deactivations_for_ratio: 3,
        }
    }
}

impl Thresholds {
    /// Why `deactivations` out of `managed` memberships is too many, if it is.
    pub fn exceeded(&self, deactivations: usize, managed: usize) -> Option<String> {
        if deactivations > self.max_deactivations {
            return Some(format!(
                "{deactivations} deactivations exceed the limit of {}",
                self.max_deactivations
            ));
        }
        let share = if managed == 0 {
            1.0
        } else {
            deactivations as f64 / managed as f64
        };
        (deactivations > self.min_deactivations_for_ratio && share > self.max_deactivation_ratio)
            .then(|| {
                format!(
                    "{deactivations} deactivations are {:.1}% of {managed} managed memberships, over the limit of {:.1}%",
                    share * 100.0,
                    self.max_deactivation_ratio * 100.0
                )
            })
    }
}

/// Everything the planner needs to know about one connector instance.
#[derive(Clone, Debug)]
pub struct Policy {
    pub connector: ConnectorId,
    pub time_zone: Tz,
    pub feed: FeedKind,
    pub send_invites: bool,
    pub invite_days_before_start: u32,
    pub status_map: StatusMap,
    pub teams_from: TeamSource,
    pub ownership: BTreeMap<Field, Ownership>,
    pub roles: Vec<RoleRule>,
    pub thresholds: Thresholds,
    /// The feed-health gate's limits.
    pub health: super::health::HealthLimits,
}

impl Policy {
    /// A policy with the documented defaults, for the given connector and time zone.
    pub fn new(connector: ConnectorId, time_zone: Tz) -> Policy {
        Policy {
            connector,
            time_zone,
            feed: FeedKind::Full,
            send_invites: true,
            invite_days_before_start: 0,
            status_map: StatusMap::default(),
            teams_from: TeamSource::Department,
            ownership: BTreeMap::new(),
            roles: Vec::new(),
            thresholds: Thresholds::default(),
            health: super::health::HealthLimits::default(),
        }
    }

    /// The owner of a field: as configured, else `hris`.
    pub fn owner(&self, field: Field) -> Ownership {
        self.ownership
            .get(&field)
            .copied()
            .unwrap_or(Ownership::Hris)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_without_case_and_with_wildcards() {
        assert!(pattern_matches("Verpleegkundige", "verpleegkundige"));
        assert!(pattern_matches("*verpleegkundige", "Wijkverpleegkundige"));
        assert!(pattern_matches("verpleeg*", "Verpleegkundige"));
        assert!(pattern_matches("*pleeg*", "Wijkverpleegkundige"));
        assert!(!pattern_matches("verpleegkundige", "Wijkverpleegkundige"));
    }

    #[test]
    fn default_threshold_holds_above_25_or_above_3_and_10_percent() {
        let t = Thresholds::default();
        assert!(t.exceeded(26, 10_000).is_some());
        assert!(t.exceeded(25, 10_000).is_none());
        assert!(t.exceeded(4, 30).is_some());
        assert!(t.exceeded(3, 10).is_none());
        assert!(t.exceeded(4, 40).is_none());
    }

    #[test]
    fn big_number_must_be_eleven_digits() {
        let rule = Requirement::named("big_number");
        let mut record = HrRecord::new(
            crate::domain::EmployeeId::parse("1").unwrap(),
            Err(crate::domain::EmailError::Missing),
        );
        assert!(rule.failure(&record).is_some());
        record
            .attributes
            .insert("big_number".into(), "1234567890".into());
        assert!(rule.failure(&record).is_some());
        record
            .attributes
            .insert("big_number".into(), "12345678901".into());
        assert!(rule.failure(&record).is_none());
    }
}
