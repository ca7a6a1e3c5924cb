//! The check of `[connectors.ID]`, one function per part of a connector: its identity (id and
//! organisation), its source kind's table (`csv`, or `http` with its definition, variables,
//! secrets and incremental settings), status map, schedule, teams, ownership and roles. Its
//! thresholds and feed-health limits are numbers only, checked with the others in `numbers`.

use chrono_tz::Tz;

use crate::config::{
    ConnectorSettings, FeedSetting, HttpSettings, Loaded, Problem, Source, StatusMapSettings,
};
use crate::connectors::csv::CsvSettings;
use crate::connectors::http::{Definition, DefinitionError};
use crate::planner::{Field, Ownership, TeamSource};

/// Every connector's problems, connector by connector in id order.
pub(super) fn connectors(cfg: &Loaded) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (id, settings) in &cfg.settings.connectors {
        let c = Instance { cfg, id, settings };
        problems.extend(identity(&c));
        problems.extend(source(&c));
        problems.extend(status_map(&c));
        problems.extend(schedule(&c));
        problems.extend(teams_from(&c));
        problems.extend(ownership(&c));
        problems.extend(roles(&c));
    }
    problems
}

/// One connector instance being checked: its problems are keyed under `connectors.ID.`.
struct Instance<'a> {
    cfg: &'a Loaded,
    id: &'a str,
    settings: &'a ConnectorSettings,
}

impl Instance<'_> {
    fn problem(&self, key: &str, message: impl Into<String>) -> Problem {
        self.cfg
            .problem(format!("connectors.{}.{key}", self.id), message)
    }
}

/// An id that is safe in URLs, logs and lock file names, and an organisation that exists.
fn identity(c: &Instance) -> Vec<Problem> {
    let mut problems = Vec::new();
    if !c
        .id
        .chars()
        .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
    {
        problems.push(c.cfg.problem(
            format!("connectors.{}", c.id),
            "a connector id may hold only letters, digits, `_` and `-`",
        ));
    }
    let organisation = &c.settings.organisation;
    if !c.cfg.settings.organisations.contains_key(organisation) {
        problems.push(c.problem(
            "organisation",
            format!("no organisation `{organisation}` under [organisations]"),
        ));
    }
    problems
}

/// The table of the connector's source kind, checked by that kind.
fn source(c: &Instance) -> Vec<Problem> {
    match c.settings.source() {
        Err((key, message)) => vec![c.problem(&key, message)],
        Ok(Source::Csv(csv)) => csv_source(c, csv),
        Ok(Source::Http(http)) => http_source(c, http),
    }
}

/// `[csv]`: the csv source's own settings problems, and a file to read.
fn csv_source(c: &Instance, csv: &CsvSettings) -> Vec<Problem> {
    let mut problems: Vec<Problem> = csv
        .problems()
        .into_iter()
        .map(|(key, message)| c.problem(&format!("csv.{key}"), message))
        .collect();
    if !csv.path.is_file() {
        problems.push(c.problem(
            "csv.path",
            format!("`{}` is not a readable file", csv.path.display()),
        ));
    }
    problems
}

/// `[http]`: a definition that loads and is given what it needs, and every secret's variable
/// set.
fn http_source(c: &Instance, http: &HttpSettings) -> Vec<Problem> {
    let mut problems = match http.load_definition() {
        Err(DefinitionError::Definition(e)) => vec![c.problem("http.definition", e)],
        Err(DefinitionError::Fields(e)) => vec![c.problem("http.fields", e)],
        Err(DefinitionError::ExtendBody(e)) => vec![c.problem("http.extend_body", e)],
        Ok(resolved) => http_definition(c, http, &resolved.definition),
    };
    for (name, var) in &http.secrets {
        if std::env::var_os(var).is_none() {
            problems.push(c.problem(
                &format!("http.secrets.{name}"),
                format!("the environment variable `{var}` is not set"),
            ));
        }
    }
    problems
}

/// What the instance must give the definition it names: every variable and secret it
/// declares, and, for `http.incremental`, a full feed over a definition that can ask for
/// changes.
fn http_definition(c: &Instance, http: &HttpSettings, def: &Definition) -> Vec<Problem> {
    let mut problems = Vec::new();
    for v in def
        .variables
        .iter()
        .filter(|v| !http.variables.contains_key(*v))
    {
        problems.push(c.problem(
            &format!("http.variables.{v}"),
            format!("the definition `{}` needs this variable", def.name),
        ));
    }
    for s in def
        .secrets
        .iter()
        .filter(|s| !http.secrets.contains_key(*s))
    {
        problems.push(c.problem(
            &format!("http.secrets.{s}"),
            format!(
                "the definition `{}` needs this secret: name the environment variable that holds it",
                def.name
            ),
        ));
    }
    if http.incremental.is_some() && matches!(c.settings.feed, FeedSetting::Incremental) {
        problems.push(c.problem(
            "feed",
            "must be \"full\" with http.incremental: the merged feed is whole, and its periodic full fetch must find the people who vanished",
        ));
    }
    if http.incremental.is_some() && def.incremental.is_none() {
        problems.push(c.problem(
            "http.incremental",
            format!(
                "the definition `{}` has no [incremental] table: it does not say how to ask for only what changed",
                def.name
            ),
        ));
    }
    problems
}

/// A status may not mean both active and inactive.
fn status_map(c: &Instance) -> Vec<Problem> {
    let Some(map) = c
        .settings
        .status_map
        .as_ref()
        .map(StatusMapSettings::to_map)
    else {
        return Vec::new();
    };
    map.active
        .iter()
        .filter(|s| map.inactive.iter().any(|i| i.eq_ignore_ascii_case(s)))
        .map(|s| {
            c.problem(
                "status_map",
                format!("`{s}` is listed as both active and inactive"),
            )
        })
        .collect()
}

/// A cron schedule that parses and whose date comes.
fn schedule(c: &Instance) -> Vec<Problem> {
    let Some(schedule) = &c.settings.schedule else {
        return Vec::new();
    };
    let parsed = match crate::schedule::Schedule::parse(schedule) {
        Err(e) => return vec![c.problem("schedule", e)],
        Ok(parsed) => parsed,
    };
    // Each field may be in range while the date is not (`0 0 31 4 *`): the daemon would
    // wait for a tick that never comes, silently.
    let zone = c
        .cfg
        .settings
        .organisations
        .get(&c.settings.organisation)
        .and_then(|o| o.time_zone.parse::<Tz>().ok())
        .unwrap_or(Tz::UTC);
    if parsed.next_after(chrono::Utc::now(), zone).is_none() {
        return vec![c.problem(
            "schedule",
            format!("`{schedule}` never fires: no date matches its day and month"),
        )];
    }
    Vec::new()
}

/// `department`, `location` or `attribute:NAME`.
fn teams_from(c: &Instance) -> Vec<Problem> {
    if TeamSource::parse(&c.settings.teams_from).is_some() {
        return Vec::new();
    }
    vec![c.problem(
        "teams_from",
        format!(
            "`{}` is not `department`, `location` or `attribute:NAME`",
            c.settings.teams_from
        ),
    )]
}

/// Known fields, each with a known owner.
fn ownership(c: &Instance) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (field, owner) in &c.settings.ownership {
        if Field::parse(field).is_none() {
            let known: Vec<&str> = Field::ALL.iter().map(|f| f.as_str()).collect();
            problems.push(c.problem(
                &format!("ownership.{field}"),
                format!("unknown field; known fields: {}", known.join(", ")),
            ));
        }
        if Ownership::parse(owner).is_none() {
            problems.push(c.problem(
                &format!("ownership.{field}"),
                format!("`{owner}` is not `hris`, `local` or `user_after_activation`"),
            ));
        }
    }
    problems
}

/// Each role rule names a role, and every attribute it requires.
fn roles(c: &Instance) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (i, rule) in c.settings.roles.iter().enumerate() {
        if rule.role.trim().is_empty() {
            problems.push(c.problem(&format!("roles[{i}].role"), "must not be empty"));
        }
        for r in &rule.require {
            if r.trim().is_empty() {
                problems.push(c.problem(
                    &format!("roles[{i}].require"),
                    "an attribute name must not be empty",
                ));
            }
        }
    }
    problems
}
