//! Field mapping for declarative connectors: how one JSON object from an HR system's API
//! becomes an [`HrRecord`].
//!
//! A connector definition names, for each record field, where its value is (a [`JsonPath`],
//! with fallbacks) and how to read it (trim, lower-case, sentinels read as empty, booleans,
//! a static value map, a lookup table fetched from another endpoint, date formats). Paths may
//! hold `{variable}`s of the connector instance (a custom field's id), bound once before a
//! fetch. Everything here is pure: definitions are parsed and checked when they are loaded, so
//! a bad path or date format is a configuration error, and a record that cannot be read is an
//! error naming the record and the field.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, NaiveDate};
use serde::Deserialize;
use serde_json::Value;

use crate::domain::{
    Department, Email, EmailError, EmployeeId, HrRecord, TeamKey, attribute, non_empty,
};

/// A path into a JSON value: `work.reportsTo.id`, `emails[type=work].value`, `items[0]`,
/// `"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User".employeeNumber`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonPath {
    text: String,
    steps: Vec<Step>,
    /// Member names and `[key=value]` values compare without letter case (SCIM, RFC 7643
    /// §2.1); an exact member name is still preferred.
    fold_case: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    /// An object member.
    Key(String),
    /// An array element by position.
    Index(usize),
    /// The first array element that is an object whose `key` member equals `value`
    /// (compared as text, so `[primary=true]` matches a JSON `true`).
    Where { key: String, value: String },
    /// The array element whose `key` member is greatest, compared as text (ISO dates and
    /// timestamps sort so): the newest entry of a history list, `[max:createdAt]`.
    Max { key: String },
}

impl JsonPath {
    /// The empty path: the value itself.
    pub fn root() -> JsonPath {
        JsonPath {
            text: String::new(),
            steps: Vec::new(),
            fold_case: false,
        }
    }

    /// Parses a path; an empty path selects the value itself.
    pub fn parse(text: &str) -> Result<JsonPath, String> {
        let mut steps = Vec::new();
        let mut rest = text.trim();
        let bad = |why: &str| format!("bad path `{text}`: {why}");
        loop {
            let mut chars = rest.chars();
            let Some(first) = chars.next() else { break };
            let tail = chars.as_str();
            match first {
                '.' if !steps.is_empty() => rest = tail,
                '"' => {
                    let (key, after) = tail
                        .split_once('"')
                        .ok_or_else(|| bad("a quote is not closed"))?;
                    steps.push(Step::Key(key.to_string()));
                    rest = after;
                }
                '[' => {
                    let (inner, after) = tail
                        .split_once(']')
                        .ok_or_else(|| bad("a `[` is not closed"))?;
                    let inner = inner.trim();
                    if let Some(key) = inner.strip_prefix("max:") {
                        let key = key.trim();
                        if key.is_empty() {
                            return Err(bad("`[max:…]` needs a key"));
                        }
                        steps.push(Step::Max {
                            key: key.to_string(),
                        });
                    } else if let Some((key, value)) = inner.split_once('=') {
                        let key = key.trim();
                        if key.is_empty() {
                            return Err(bad("`[=…]` needs a key"));
                        }
                        steps.push(Step::Where {
                            key: key.to_string(),
                            value: value.trim().trim_matches('"').to_string(),
                        });
                    } else {
                        let n = inner
                            .parse()
                            .map_err(|_| bad("`[…]` holds a position or key=value"))?;
                        steps.push(Step::Index(n));
                    }
                    rest = after;
                }
                _ => {
                    let end = rest.find(['.', '[', '"']).unwrap_or(rest.len());
                    let (key, after) = rest.split_at(end);
                    if key.trim().is_empty() {
                        return Err(bad("an empty name"));
                    }
                    steps.push(Step::Key(key.trim().to_string()));
                    rest = after;
                }
            }
        }
        Ok(JsonPath {
            text: text.trim().to_string(),
            steps,
            fold_case: false,
        })
    }

    /// The path, reading member names and filter values without letter case.
    pub fn folding_case(mut self) -> JsonPath {
        self.fold_case = true;
        self
    }

    /// The value at the path, if there is one (JSON `null` counts as none).
    pub fn select<'v>(&self, value: &'v Value) -> Option<&'v Value> {
        let fold = self.fold_case;
        let mut here = value;
        for step in &self.steps {
            here = match step {
                Step::Key(key) => member(here, key, fold)?,
                Step::Index(n) => here.get(*n)?,
                Step::Max { key } => here
                    .as_array()?
                    .iter()
                    .filter_map(|item| Some((member(item, key, fold).and_then(scalar_text)?, item)))
                    .max_by(|(a, _), (b, _)| later(a, b))
                    .map(|(_, item)| item)?,
                Step::Where { key, value } => here.as_array()?.iter().find(|item| {
                    member(item, key, fold)
                        .and_then(scalar_text)
                        .is_some_and(|v| {
                            v == *value || (fold && v.to_lowercase() == value.to_lowercase())
                        })
                })?,
            };
        }
        (!here.is_null()).then_some(here)
    }
}

impl JsonPath {
    /// The `{name}` placeholders in the path, e.g. `custom.{cost_centre_field}`.
    pub fn placeholders(&self) -> Vec<String> {
        placeholders(&self.text)
    }

    /// The path with its placeholders filled from `lookup`; the path itself when it has none.
    pub fn bind(&self, lookup: &dyn Fn(&str) -> Option<String>) -> Result<JsonPath, String> {
        if !self.text.contains('{') {
            return Ok(self.clone());
        }
        let mut out = self.text.clone();
        for name in self.placeholders() {
            let value = lookup(&name)
                .ok_or_else(|| format!("path `{}`: no variable `{name}`", self.text))?;
            out = out.replace(&format!("{{{name}}}"), &value);
        }
        let mut bound = JsonPath::parse(&out)?;
        bound.fold_case = self.fold_case;
        Ok(bound)
    }
}

/// How two values of a `[max:key]` step compare: as instants where both are RFC 3339
/// timestamps (so `…:00.5Z` is later than `…:00Z`, and offsets count), else as text (ISO
/// dates sort so).
fn later(a: &str, b: &str) -> std::cmp::Ordering {
    match (
        DateTime::parse_from_rfc3339(a),
        DateTime::parse_from_rfc3339(b),
    ) {
        (Ok(a), Ok(b)) => a.cmp(&b),
        _ => a.cmp(b),
    }
}

/// An object's member by name; with `fold_case`, the exact name first, else the first member
/// whose name differs only in letter case.
pub(crate) fn member<'v>(value: &'v Value, key: &str, fold_case: bool) -> Option<&'v Value> {
    let object = value.as_object()?;
    object.get(key).or_else(|| {
        fold_case
            .then(|| {
                object
                    .iter()
                    .find(|(name, _)| name.to_lowercase() == key.to_lowercase())
                    .map(|(_, v)| v)
            })
            .flatten()
    })
}

/// The `{name}` placeholders in a text: a name of letters, digits and `_`.
pub fn placeholders(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        rest = &rest[open + 1..];
        if let Some(close) = rest.find('}') {
            let name = &rest[..close];
            if !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !found.iter().any(|f| f == name)
            {
                found.push(name.to_string());
            }
        }
    }
    found
}

/// Lookup tables by name, each from a value as the system gives it (a department id) to what
/// it stands for (the department's name).
pub type Lookups = BTreeMap<String, BTreeMap<String, String>>;

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for JsonPath {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        JsonPath::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The text of a JSON scalar: strings as they are, numbers and booleans written out.
pub(crate) fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Which part of a `Name (CODE)` text a field takes.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    CodeInParentheses,
    NameBeforeParentheses,
}

impl Part {
    fn take(self, text: &str) -> String {
        let split = text
            .trim_end()
            .strip_suffix(')')
            .and_then(|t| t.rfind('(').map(|open| (&t[..open], &t[open + 1..])));
        match (self, split) {
            (Part::CodeInParentheses, Some((_, code))) => code.trim().to_string(),
            (Part::NameBeforeParentheses, Some((name, _))) => name.trim().to_string(),
            (_, None) => text.to_string(),
        }
    }
}

/// How one record field is read.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    /// Where the value is.
    pub path: Option<JsonPath>,
    /// Where else to look, in order, when `path` gives nothing.
    #[serde(default)]
    pub fallbacks: Vec<JsonPath>,
    /// A fixed value, used when no path gives one.
    pub value: Option<String>,
    /// Paths whose texts are joined with a space, empty ones left out, when `path` and the
    /// fallbacks give nothing: a Dutch surname prefix and surname, `de` + `Vries`.
    #[serde(default)]
    pub join: Vec<JsonPath>,
    /// Lower-case the value.
    #[serde(default)]
    pub lower: bool,
    /// Values read as empty, e.g. `["0000-00-00", "-"]`.
    #[serde(default)]
    pub empty: Vec<String>,
    /// Read `1`/`0`, `t`/`f`, `true`/`false`, `yes`/`no` (and JSON booleans) as `true`/`false`.
    #[serde(default)]
    pub boolean: bool,
    /// Take part of a text such as `Wijkverpleging Noord (WVN)`: `code_in_parentheses` gives
    /// `WVN`, `name_before_parentheses` gives `Wijkverpleging Noord`. A text without
    /// parentheses is taken whole.
    pub part: Option<Part>,
    /// A static value map (status codes, department codes); applied after the steps above.
    #[serde(default)]
    pub map: BTreeMap<String, String>,
    /// What a value missing from `map` becomes; without it, it stays as it is.
    pub map_default: Option<String>,
    /// A lookup table of the definition (`[lookups.<name>]`, fetched from another endpoint of
    /// the same system) that turns the value into what it stands for; applied before `map`.
    pub lookup: Option<String>,
    /// What a value missing from the lookup table becomes; without it, it stays as it is.
    pub lookup_default: Option<String>,
    /// For dates: formats tried in order. chrono `strftime` formats, or `rfc3339` (a
    /// timestamp read as the date in its own offset) or `odata` (`/Date(ms)/`, read in UTC).
    #[serde(default)]
    pub formats: Vec<String>,
}

/// A text trimmed, `None` when empty; the single-line cleaning comes after every reading step.
fn trimmed(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

impl FieldSpec {
    /// Problems that can be found without data: unusable date formats.
    pub fn problems(&self) -> Vec<String> {
        self.formats
            .iter()
            .filter(|f| !matches!(f.as_str(), "rfc3339" | "odata"))
            .filter(|f| {
                // Written from a timestamp with an offset, so formats with `%z` can be probed.
                use std::fmt::Write as _;
                let Ok(probe) = DateTime::parse_from_rfc3339("2024-12-31T00:00:00+01:00") else {
                    return true;
                };
                let mut written = String::new();
                write!(written, "{}", probe.format(f)).is_err()
                    || NaiveDate::parse_from_str(&written, f).ok() != Some(probe.date_naive())
            })
            .map(|f| format!("`{f}` cannot read a full date"))
            .collect()
    }

    /// The spec with the placeholders of its paths filled.
    pub fn bind(&self, lookup: &dyn Fn(&str) -> Option<String>) -> Result<FieldSpec, String> {
        let bind_all = |paths: &[JsonPath]| {
            paths
                .iter()
                .map(|p| p.bind(lookup))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(FieldSpec {
            path: self.path.as_ref().map(|p| p.bind(lookup)).transpose()?,
            fallbacks: bind_all(&self.fallbacks)?,
            join: bind_all(&self.join)?,
            ..self.clone()
        })
    }

    fn fold_case(&mut self) {
        let fold = |p: &mut JsonPath| p.fold_case = true;
        self.path.iter_mut().for_each(fold);
        self.fallbacks.iter_mut().for_each(fold);
        self.join.iter_mut().for_each(fold);
    }

    fn paths(&self) -> impl Iterator<Item = &JsonPath> {
        self.path.iter().chain(&self.fallbacks).chain(&self.join)
    }

    /// The field's text from one record, after every reading step.
    pub fn text(&self, item: &Value, lookups: &Lookups) -> Option<String> {
        let raw = self
            .path
            .iter()
            .chain(&self.fallbacks)
            .filter_map(|p| p.select(item).and_then(scalar_text))
            .find_map(|t| trimmed(&t).filter(|t| !self.empty.iter().any(|e| e == t)))
            .or_else(|| {
                let parts: Vec<String> = self
                    .join
                    .iter()
                    .filter_map(|p| p.select(item).and_then(scalar_text))
                    .filter_map(|t| trimmed(&t))
                    .collect();
                (!parts.is_empty()).then(|| parts.join(" "))
            })
            .or_else(|| self.value.clone())?;
        let mut text = if self.lower { raw.to_lowercase() } else { raw };
        if let Some(part) = self.part {
            text = part.take(&text);
        }
        if self.boolean {
            text = match text.to_lowercase().as_str() {
                "1" | "t" | "true" | "y" | "yes" => "true".to_string(),
                "0" | "f" | "false" | "n" | "no" => "false".to_string(),
                _ => text,
            };
        }
        if let Some(table) = self.lookup.as_ref().and_then(|name| lookups.get(name)) {
            text = match table.get(&text) {
                Some(found) => found.clone(),
                None => self.lookup_default.clone().unwrap_or(text),
            };
        }
        if !self.map.is_empty() {
            text = match self.map.get(&text) {
                Some(mapped) => mapped.clone(),
                None => self.map_default.clone().unwrap_or(text),
            };
        }
        trimmed(&text)
    }

    /// [`FieldSpec::text`] cleaned to a single line, as every record field but the attributes
    /// is (see [`crate::domain::single_line`]).
    pub fn line(&self, item: &Value, lookups: &Lookups) -> Option<String> {
        self.text(item, lookups).and_then(|t| non_empty(&t))
    }

    /// The field as a date; `Err` names the value and the formats tried.
    pub fn date(&self, item: &Value, lookups: &Lookups) -> Result<Option<NaiveDate>, String> {
        let Some(text) = self.text(item, lookups) else {
            return Ok(None);
        };
        let formats: Vec<&str> = if self.formats.is_empty() {
            vec!["%Y-%m-%d", "rfc3339"]
        } else {
            self.formats.iter().map(String::as_str).collect()
        };
        formats
            .iter()
            .find_map(|f| parse_date(&text, f))
            .map(Some)
            .ok_or_else(|| {
                format!(
                    "`{text}` is not a date in any of the formats {}",
                    formats.join(", ")
                )
            })
    }
}

fn parse_date(text: &str, format: &str) -> Option<NaiveDate> {
    match format {
        "rfc3339" => DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|t| t.date_naive()),
        "odata" => {
            // `/Date(1700000000000)/` or `/Date(1700000000000+0000)/`: milliseconds since the
            // epoch; the offset, where given, is informational.
            let inner = text.strip_prefix("/Date(")?.strip_suffix(")/")?;
            let digits_end = inner
                .char_indices()
                .find(|&(i, c)| i > 0 && (c == '+' || c == '-'))
                .map(|(i, _)| i)
                .unwrap_or(inner.len());
            let ms: i64 = inner[..digits_end].parse().ok()?;
            DateTime::from_timestamp_millis(ms).map(|t| t.date_naive())
        }
        _ => NaiveDate::parse_from_str(text, format).ok(),
    }
}

/// How every record field is read; absent fields stay empty.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FieldMap {
    pub employee_id: FieldSpec,
    pub email: FieldSpec,
    #[serde(default)]
    pub first_name: FieldSpec,
    #[serde(default)]
    pub last_name: FieldSpec,
    #[serde(default)]
    pub display_name: FieldSpec,
    #[serde(default)]
    pub department_code: FieldSpec,
    #[serde(default)]
    pub department: FieldSpec,
    #[serde(default)]
    pub location: FieldSpec,
    #[serde(default)]
    pub manager_id: FieldSpec,
    #[serde(default)]
    pub job_title: FieldSpec,
    #[serde(default)]
    pub employment_type: FieldSpec,
    #[serde(default)]
    pub start_date: FieldSpec,
    #[serde(default)]
    pub end_date: FieldSpec,
    #[serde(default)]
    pub status: FieldSpec,
    /// Extra attributes by name, e.g. `big_number`.
    #[serde(default)]
    pub attributes: BTreeMap<String, FieldSpec>,
}

/// The record fields a definition maps, by name, in the order of the record.
pub const FIELD_NAMES: [&str; 14] = [
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

/// A record that could not be read, with where it was.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}, record {index}: {field}: {message}")]
pub struct MappingError {
    /// What the record came from, e.g. `bamboohr page 2`.
    pub source_name: String,
    /// The record's position in its page, from 1.
    pub index: usize,
    pub field: String,
    pub message: String,
}

impl FieldMap {
    /// Every problem of the mapping that can be found without data, as (field, message).
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (name, spec) in self.named() {
            for p in spec.problems() {
                out.push((name.to_string(), p));
            }
        }
        if self.employee_id.path.is_none() && self.employee_id.value.is_none() {
            out.push(("employee_id".to_string(), "needs a path".to_string()));
        }
        out
    }

    /// The field map with the placeholders of its paths filled from `lookup`.
    pub fn bind(&self, lookup: &dyn Fn(&str) -> Option<String>) -> Result<FieldMap, String> {
        let one = |name: &str, spec: &FieldSpec| {
            spec.bind(lookup).map_err(|e| format!("fields.{name}: {e}"))
        };
        Ok(FieldMap {
            employee_id: one("employee_id", &self.employee_id)?,
            email: one("email", &self.email)?,
            first_name: one("first_name", &self.first_name)?,
            last_name: one("last_name", &self.last_name)?,
            display_name: one("display_name", &self.display_name)?,
            department_code: one("department_code", &self.department_code)?,
            department: one("department", &self.department)?,
            location: one("location", &self.location)?,
            manager_id: one("manager_id", &self.manager_id)?,
            job_title: one("job_title", &self.job_title)?,
            employment_type: one("employment_type", &self.employment_type)?,
            start_date: one("start_date", &self.start_date)?,
            end_date: one("end_date", &self.end_date)?,
            status: one("status", &self.status)?,
            attributes: self
                .attributes
                .iter()
                .map(|(name, spec)| Ok((name.clone(), one(&format!("attributes.{name}"), spec)?)))
                .collect::<Result<_, String>>()?,
        })
    }

    /// The map with a connector instance's field overrides laid over it: each field the
    /// table names (`employee_id`, or `attributes.<name>` under `attributes`) is read as the
    /// table says instead, in whole. Every problem is returned at once, each naming its field
    /// (`fields.employe_id: not a field; …`).
    pub fn with_overrides(&self, overrides: &toml::Table) -> Result<FieldMap, Vec<String>> {
        let mut map = self.clone();
        let mut problems = Vec::new();
        let spec = |at: &str, value: &toml::Value| -> Result<FieldSpec, String> {
            value
                .clone()
                .try_into::<FieldSpec>()
                .map_err(|e| format!("fields.{at}: {}", e.to_string().trim()))
        };
        for (name, value) in overrides {
            if name == "attributes" {
                let Some(table) = value.as_table() else {
                    problems.push(
                        "fields.attributes: a table of attributes, e.g. [fields.attributes.cost_centre]"
                            .to_string(),
                    );
                    continue;
                };
                for (attribute, value) in table {
                    match spec(&format!("attributes.{attribute}"), value) {
                        Ok(s) => {
                            map.attributes.insert(attribute.clone(), s);
                        }
                        Err(e) => problems.push(e),
                    }
                }
                continue;
            }
            let Some(slot) = map.field_mut(name) else {
                problems.push(format!(
                    "fields.{name}: not a field; the fields are {}, or attributes.<name>",
                    FIELD_NAMES.join(", ")
                ));
                continue;
            };
            match spec(name, value) {
                Ok(s) => *slot = s,
                Err(e) => problems.push(e),
            }
        }
        for (field, message) in map.problems() {
            let problem = format!("fields.{field}: {message}");
            if !problems.contains(&problem) {
                problems.push(problem);
            }
        }
        if problems.is_empty() {
            Ok(map)
        } else {
            Err(problems)
        }
    }

    /// The map with every path reading member names and filter values without letter case.
    pub fn folding_case(mut self) -> FieldMap {
        for name in FIELD_NAMES {
            if let Some(spec) = self.field_mut(name) {
                spec.fold_case();
            }
        }
        for spec in self.attributes.values_mut() {
            spec.fold_case();
        }
        self
    }

    fn field_mut(&mut self, name: &str) -> Option<&mut FieldSpec> {
        Some(match name {
            "employee_id" => &mut self.employee_id,
            "email" => &mut self.email,
            "first_name" => &mut self.first_name,
            "last_name" => &mut self.last_name,
            "display_name" => &mut self.display_name,
            "department_code" => &mut self.department_code,
            "department" => &mut self.department,
            "location" => &mut self.location,
            "manager_id" => &mut self.manager_id,
            "job_title" => &mut self.job_title,
            "employment_type" => &mut self.employment_type,
            "start_date" => &mut self.start_date,
            "end_date" => &mut self.end_date,
            "status" => &mut self.status,
            _ => return None,
        })
    }

    /// Every `{name}` placeholder in the map's paths, with the field it is in.
    pub fn placeholders(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (field, spec) in self.named() {
            for path in spec.paths() {
                for name in path.placeholders() {
                    out.push((field.clone(), name));
                }
            }
        }
        out
    }

    /// Every lookup table the map uses, with the field that uses it.
    pub fn lookups(&self) -> Vec<(String, String)> {
        self.named()
            .into_iter()
            .filter_map(|(field, spec)| spec.lookup.clone().map(|l| (field, l)))
            .collect()
    }

    fn named(&self) -> Vec<(String, &FieldSpec)> {
        let mut all = vec![
            ("employee_id".to_string(), &self.employee_id),
            ("email".to_string(), &self.email),
            ("first_name".to_string(), &self.first_name),
            ("last_name".to_string(), &self.last_name),
            ("display_name".to_string(), &self.display_name),
            ("department_code".to_string(), &self.department_code),
            ("department".to_string(), &self.department),
            ("location".to_string(), &self.location),
            ("manager_id".to_string(), &self.manager_id),
            ("job_title".to_string(), &self.job_title),
            ("employment_type".to_string(), &self.employment_type),
            ("start_date".to_string(), &self.start_date),
            ("end_date".to_string(), &self.end_date),
            ("status".to_string(), &self.status),
        ];
        for (name, spec) in &self.attributes {
            all.push((format!("attributes.{name}"), spec));
        }
        all
    }

    /// Reads one record. A record without an employee id, or with a date that cannot be
    /// read, is an error; a missing or unusable email is kept in the record for the planner
    /// to quarantine.
    pub fn record(
        &self,
        item: &Value,
        source_name: &str,
        index: usize,
        lookups: &Lookups,
    ) -> Result<HrRecord, MappingError> {
        let fail = |field: &str, message: String| MappingError {
            source_name: source_name.to_string(),
            index,
            field: field.to_string(),
            message,
        };
        let employee_id = self
            .employee_id
            .text(item, lookups)
            .and_then(|t| EmployeeId::parse(&t))
            .ok_or_else(|| fail("employee_id", "no employee id".to_string()))?;
        let email = match self.email.text(item, lookups) {
            Some(text) => Email::parse(&text),
            None => Err(EmailError::Missing),
        };
        let mut r = HrRecord::new(employee_id, email);
        r.first_name = self.first_name.line(item, lookups);
        r.last_name = self.last_name.line(item, lookups);
        r.display_name = self.display_name.line(item, lookups);
        let code = self.department_code.line(item, lookups);
        let name = self.department.line(item, lookups);
        r.department = code
            .clone()
            .or_else(|| name.clone())
            .and_then(|k| TeamKey::parse(&k))
            .map(|key| Department {
                name: name.or(code).unwrap_or_else(|| key.to_string()),
                key,
            });
        r.location = self.location.line(item, lookups);
        r.manager_id = self
            .manager_id
            .text(item, lookups)
            .and_then(|t| EmployeeId::parse(&t));
        r.job_title = self.job_title.line(item, lookups);
        r.employment_type = self.employment_type.line(item, lookups);
        r.start_date = self
            .start_date
            .date(item, lookups)
            .map_err(|m| fail("start_date", m))?;
        r.end_date = self
            .end_date
            .date(item, lookups)
            .map_err(|m| fail("end_date", m))?;
        r.status = self.status.line(item, lookups);
        for (name, spec) in &self.attributes {
            if let Some(value) = spec.text(item, lookups).and_then(|t| attribute(&t)) {
                r.attributes.insert(name.clone(), value);
            }
        }
        // An id or key too long for a database index fails here, where the page and record
        // can be named.
        if let Some((field, why)) = r.unstorable_field() {
            return Err(fail(&field, format!("the value {why}")));
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn none() -> Lookups {
        Lookups::new()
    }

    fn path(text: &str) -> JsonPath {
        JsonPath::parse(text).unwrap()
    }

    /// A field spec from JSON text, shaped as a definition file gives it.
    fn spec(json_text: &str) -> FieldSpec {
        serde_json::from_str(json_text).unwrap()
    }

    #[test]
    fn paths_reach_into_objects_arrays_and_quoted_names() {
        let v = json!({
            "work": {"reportsTo": {"id": "M001"}},
            "emails": [{"type": "home", "value": "x@home.example"}, {"type": "work", "value": "zoe@acme.example", "primary": true}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "E002"},
            "list": [10, 20]
        });

        assert_eq!(path("work.reportsTo.id").select(&v), Some(&json!("M001")));
        assert_eq!(
            path("emails[type=work].value").select(&v),
            Some(&json!("zoe@acme.example"))
        );
        assert_eq!(
            path("emails[primary=true].value").select(&v),
            Some(&json!("zoe@acme.example"))
        );
        assert_eq!(path("list[1]").select(&v), Some(&json!(20)));
        assert_eq!(
            path("\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\".employeeNumber")
                .select(&v),
            Some(&json!("E002"))
        );
        assert_eq!(path("work.missing").select(&v), None);
    }

    #[test]
    fn max_step_takes_the_newest_entry_of_a_history_list() {
        let v = json!({"info": [
            {"createdAt": "2024-01-05T10:00:00Z", "title": "Leerling"},
            {"createdAt": "2026-03-01T08:00:00Z", "title": "Verpleegkundige"},
            {"title": "no date"},
            {"createdAt": "2025-06-30T12:00:00Z", "title": "Verzorgende"}
        ]});

        assert_eq!(
            path("info[max:createdAt].title").select(&v),
            Some(&json!("Verpleegkundige"))
        );
        assert_eq!(path("info[max:missing].title").select(&v), None);
        let instants = json!({"info": [
            {"createdAt": "2026-03-01T08:00:00.5Z", "title": "half a second later"},
            {"createdAt": "2026-03-01T08:00:00Z", "title": "first"},
            {"createdAt": "2026-03-01T09:30:00+02:00", "title": "earlier, in another offset"}
        ]});
        assert_eq!(
            path("info[max:createdAt].title").select(&instants),
            Some(&json!("half a second later"))
        );
        assert!(JsonPath::parse("info[max:]").is_err());
    }

    #[test]
    fn case_folding_paths_find_members_and_values_in_any_letter_case() {
        let v = json!({
            "Emails": [{"Type": "Work", "value": "anouk@acme.example"}],
            "emails": [{"type": "home", "value": "x@home.example"}],
            "userName": "anouk"
        });

        assert_eq!(
            path("emails[type=work].value").select(&v),
            None,
            "exact by default"
        );
        let folded = path("emails[type=work].value").folding_case();
        assert_eq!(
            folded.select(&v),
            None,
            "an exact member name (`emails`) is preferred to one in other letters"
        );
        let folded = path("EMAILS[type=WORK].value").folding_case();
        assert_eq!(folded.select(&v), Some(&json!("anouk@acme.example")));
        assert_eq!(
            path("username").folding_case().select(&v),
            Some(&json!("anouk"))
        );
    }

    #[test]
    fn an_instance_override_replaces_a_field_and_adds_attributes() {
        let map: FieldMap = serde_json::from_value(json!({
            "employee_id": {"path": "id"},
            "email": {"path": "mail", "lower": true},
            "job_title": {"path": "title"}
        }))
        .unwrap();
        let overrides: toml::Table = toml::from_str(
            "[email]\npath = \"work.mail\"\n[attributes.employee_number]\npath = \"custom.nr\"\n",
        )
        .unwrap();

        let map = map.with_overrides(&overrides).unwrap();

        let item = json!({"id": "7", "mail": "old@acme.example", "work": {"mail": "Anouk@Acme.example"}, "title": "Nurse", "custom": {"nr": 1042}});
        let record = map.record(&item, "p 1", 1, &none()).unwrap();
        assert_eq!(
            record.email.unwrap().as_str(),
            "Anouk@Acme.example",
            "read as the override says, in whole: the definition's `lower` does not carry over"
        );
        assert_eq!(record.job_title.as_deref(), Some("Nurse"), "others stay");
        assert_eq!(record.attributes["employee_number"], "1042");
    }

    #[test]
    fn an_override_of_an_unknown_field_is_refused_naming_it() {
        let map: FieldMap =
            serde_json::from_value(json!({"employee_id": {"path": "id"}, "email": {"path": "m"}}))
                .unwrap();
        let overrides: toml::Table = toml::from_str(
            "[employe_id]\npath = \"x\"\n[email]\npaht = \"y\"\n[attributes]\ncost = 3\n",
        )
        .unwrap();

        let problems = map.with_overrides(&overrides).unwrap_err();

        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(
            problems[0].starts_with("fields.attributes.cost: "),
            "{problems:?}"
        );
        assert!(problems[1].starts_with("fields.email: "), "{problems:?}");
        assert!(problems[1].contains("paht"), "{problems:?}");
        assert!(
            problems[2].starts_with("fields.employe_id: not a field; the fields are employee_id, "),
            "{problems:?}"
        );
    }

    #[test]
    fn bad_paths_are_refused_when_the_definition_is_loaded() {
        assert!(JsonPath::parse("a[").is_err());
        assert!(JsonPath::parse("a[x]").is_err());
        assert!(JsonPath::parse("\"open").is_err());
    }

    #[test]
    fn fallbacks_sentinels_and_constants_apply_in_order() {
        let s = spec(
            r#"{"path": "end", "fallbacks": ["termination"], "empty": ["0000-00-00"], "value": "none"}"#,
        );

        assert_eq!(
            s.text(
                &json!({"end": "0000-00-00", "termination": "2026-06-30"}),
                &none()
            )
            .as_deref(),
            Some("2026-06-30")
        );
        assert_eq!(
            s.text(&json!({"end": "0000-00-00"}), &none()).as_deref(),
            Some("none")
        );
        assert_eq!(
            s.text(&json!({"end": "  2026-01-01 "}), &none()).as_deref(),
            Some("2026-01-01")
        );
    }

    #[test]
    fn joined_paths_skip_empty_parts() {
        let s = spec(r#"{"join": ["prefix", "surname"]}"#);

        assert_eq!(
            s.text(&json!({"prefix": "de", "surname": "Vries"}), &none())
                .as_deref(),
            Some("de Vries")
        );
        assert_eq!(
            s.text(&json!({"prefix": null, "surname": "Janssen"}), &none())
                .as_deref(),
            Some("Janssen")
        );
    }

    #[test]
    fn name_and_code_are_taken_apart() {
        let code = spec(r#"{"path": "d", "part": "code_in_parentheses"}"#);
        let name = spec(r#"{"path": "d", "part": "name_before_parentheses"}"#);
        let v = json!({"d": "Wijkverpleging Noord (WVN)"});

        assert_eq!(code.text(&v, &none()).as_deref(), Some("WVN"));
        assert_eq!(
            name.text(&v, &none()).as_deref(),
            Some("Wijkverpleging Noord")
        );
        assert_eq!(
            code.text(&json!({"d": "ICT"}), &none()).as_deref(),
            Some("ICT")
        );
    }

    #[test]
    fn booleans_and_value_maps_normalise_statuses() {
        let s = spec(
            r#"{"path": "active", "boolean": true, "map": {"true": "active", "false": "inactive"}}"#,
        );

        for (raw, want) in [
            (json!(true), "active"),
            (json!("0"), "inactive"),
            (json!("t"), "active"),
            (json!("f"), "inactive"),
        ] {
            assert_eq!(
                s.text(&json!({"active": raw}), &none()).as_deref(),
                Some(want)
            );
        }
    }

    #[test]
    fn dates_are_read_in_listed_formats_including_odata_and_offsets() {
        let s = spec(r#"{"path": "d", "formats": ["odata", "rfc3339", "%d/%m/%Y"]}"#);

        assert_eq!(
            s.date(&json!({"d": "/Date(1782777600000)/"}), &none()),
            Ok(NaiveDate::from_ymd_opt(2026, 6, 30))
        );
        assert_eq!(
            s.date(&json!({"d": "/Date(1782777600000+0000)/"}), &none()),
            Ok(NaiveDate::from_ymd_opt(2026, 6, 30))
        );
        assert_eq!(
            s.date(&json!({"d": "2026-06-30T23:30:00+02:00"}), &none()),
            Ok(NaiveDate::from_ymd_opt(2026, 6, 30))
        );
        assert_eq!(
            s.date(&json!({"d": "30/06/2026"}), &none()),
            Ok(NaiveDate::from_ymd_opt(2026, 6, 30))
        );
        assert!(
            s.date(&json!({"d": "June 30"}), &none())
                .unwrap_err()
                .contains("June 30")
        );
        assert_eq!(s.date(&json!({}), &none()), Ok(None));
    }

    #[test]
    fn unusable_date_format_is_a_definition_problem() {
        let s = spec(r#"{"path": "d", "formats": ["%Y-%m"]}"#);
        let with_offset = spec(r#"{"path": "d", "formats": ["%Y-%m-%d%:z"]}"#);

        assert_eq!(s.problems().len(), 1);
        assert_eq!(with_offset.problems(), Vec::<String>::new());
        assert_eq!(
            with_offset.date(&serde_json::json!({"d": "2015-09-01-07:00"}), &none()),
            Ok(NaiveDate::from_ymd_opt(2015, 9, 1))
        );
    }

    #[test]
    fn record_is_read_with_errors_naming_record_and_field() {
        let map: FieldMap = serde_json::from_value(json!({
            "employee_id": {"path": "id"},
            "email": {"path": "mail", "lower": true},
            "first_name": {"path": "name.first"},
            "department_code": {"path": "dept.code"},
            "department": {"path": "dept.name"},
            "manager_id": {"path": "manager"},
            "start_date": {"path": "start"},
            "attributes": {"big_number": {"path": "big"}}
        }))
        .unwrap();

        let ok = map
            .record(&json!({"id": 7, "mail": "Zoe@Acme.example", "name": {"first": "Zoë"}, "dept": {"code": "WVN", "name": "Wijkverpleging Noord"}, "manager": "M001", "start": "2017-02-01", "big": "12345678901"}), "test page 1", 1, &none())
            .unwrap();
        let no_email = map
            .record(
                &json!({"id": "E006", "mail": null}),
                "test page 1",
                2,
                &none(),
            )
            .unwrap();
        let bad = map.record(
            &json!({"id": "E9", "start": "soon"}),
            "test page 2",
            3,
            &none(),
        );
        let no_id = map.record(&json!({"mail": "a@b.nl"}), "test page 2", 4, &none());

        assert_eq!(ok.employee_id.as_str(), "7");
        assert_eq!(ok.email.as_ref().unwrap().as_str(), "zoe@acme.example");
        assert_eq!(ok.first_name.as_deref(), Some("Zoë"));
        assert_eq!(ok.department.as_ref().unwrap().key.as_str(), "WVN");
        assert_eq!(ok.department.as_ref().unwrap().name, "Wijkverpleging Noord");
        assert_eq!(ok.manager_id.as_ref().unwrap().as_str(), "M001");
        assert_eq!(
            ok.attributes.get("big_number").map(String::as_str),
            Some("12345678901")
        );
        assert_eq!(no_email.email, Err(EmailError::Missing));
        assert_eq!(
            bad.unwrap_err().to_string(),
            "test page 2, record 3: start_date: `soon` is not a date in any of the formats %Y-%m-%d, rfc3339"
        );
        assert_eq!(no_id.unwrap_err().field, "employee_id");
    }

    #[test]
    fn lookup_table_turns_ids_into_names_before_the_value_map() {
        let lookups: Lookups = BTreeMap::from([(
            "departments".to_string(),
            BTreeMap::from([
                ("17".to_string(), "Wijkverpleging Noord".to_string()),
                ("18".to_string(), "ICT".to_string()),
            ]),
        )]);
        let name = spec(r#"{"path": "department_id", "lookup": "departments"}"#);
        let unknown_empty =
            spec(r#"{"path": "department_id", "lookup": "departments", "lookup_default": ""}"#);
        let mapped =
            spec(r#"{"path": "department_id", "lookup": "departments", "map": {"ICT": "IT"}}"#);

        assert_eq!(
            name.text(&json!({"department_id": 17}), &lookups)
                .as_deref(),
            Some("Wijkverpleging Noord")
        );
        assert_eq!(
            name.text(&json!({"department_id": 99}), &lookups)
                .as_deref(),
            Some("99")
        );
        assert_eq!(
            unknown_empty.text(&json!({"department_id": 99}), &lookups),
            None
        );
        assert_eq!(
            mapped
                .text(&json!({"department_id": "18"}), &lookups)
                .as_deref(),
            Some("IT")
        );
    }

    #[test]
    fn variables_in_paths_are_bound_before_reading() {
        let map: FieldMap = serde_json::from_str(
            r#"{"employee_id": {"path": "id"}, "email": {"path": "email"},
                "attributes": {"cost_centre": {"path": "custom.{cost_centre_field}.value"}}}"#,
        )
        .unwrap();
        let vars = |name: &str| (name == "cost_centre_field").then(|| "c_4711".to_string());

        let bound = map.bind(&vars).unwrap();
        let record = bound
            .record(
                &json!({"id": "E1", "email": "a@b.nl", "custom": {"c_4711": {"value": "CC-12"}}}),
                "test page 1",
                1,
                &none(),
            )
            .unwrap();

        assert_eq!(
            map.placeholders(),
            vec![(
                "attributes.cost_centre".to_string(),
                "cost_centre_field".to_string()
            )]
        );
        assert_eq!(record.attributes["cost_centre"], "CC-12");
        assert!(
            map.bind(&|_: &str| None)
                .unwrap_err()
                .contains("no variable `cost_centre_field`")
        );
    }

    /// Any JSON value, leaning towards the hostile: texts of any Unicode (control characters,
    /// bidi marks, NUL), huge and odd numbers, nested arrays and objects.
    fn any_json() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let text = prop_oneof![
            any::<String>(),
            "[ \\t\\r\\n\\u{0}\\u{202E}\\u{2028}a-zé@.]{0,40}",
            Just("x".repeat(10_000)),
        ];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            text.prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map("[a-z]{1,4}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        #[test]
        fn any_json_record_gives_a_clean_record_or_an_error_naming_its_field(
            id in any_json(),
            mail in any_json(),
            first in any_json(),
            dept in any_json(),
            start in any_json(),
            note in any_json(),
        ) {
            let map: FieldMap = serde_json::from_value(json!({
                "employee_id": {"path": "id"},
                "email": {"path": "mail"},
                "first_name": {"path": "name.first"},
                "display_name": {"join": ["name.first", "dept"]},
                "department": {"path": "dept", "part": "name_before_parentheses"},
                "manager_id": {"path": "dept"},
                "start_date": {"path": "start", "formats": ["%Y-%m-%d", "rfc3339", "odata"]},
                "status": {"path": "note", "boolean": true},
                "attributes": {"note": {"path": "note"}}
            }))
            .unwrap();
            let item = json!({"id": id, "mail": mail, "name": {"first": first}, "dept": dept, "start": start, "note": note});

            match map.record(&item, "fuzz page 1", 1, &none()) {
                Ok(record) => {
                    let clean = record.clone().normalised();
                    proptest::prop_assert_eq!(&clean, &record, "already clean at the edge");
                    proptest::prop_assert!(record.unstorable_field().is_none());
                }
                Err(error) => {
                    proptest::prop_assert!(error.to_string().starts_with("fuzz page 1, record 1: "));
                }
            }
        }

        #[test]
        fn any_path_text_parses_or_is_refused_naming_the_path(text in "\\PC{0,24}|[a-z.\\[\\]\"=:0-9 ]{0,16}|[a-z]{1,4}\\[max:[a-z]{0,3}\\]") {
            match JsonPath::parse(&text) {
                Ok(path) => proptest::prop_assert_eq!(path.text.as_str(), text.trim()),
                Err(why) => {
                    let named = format!("bad path `{text}`: ");
                    proptest::prop_assert!(why.starts_with(&named), "{why}");
                }
            }
        }
    }
}
