//! Configuration: the default works out of the box, and every problem is reported at once,
//! each with the file (or environment variable) and the key it is about.

// A test stops at the first thing that is not as expected.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;
use std::path::Path;

use hrsync::config::bounds::{self, Bound, Range};
use hrsync::config::{self, Problem};

const VALID: &str = r#"
[database]
url = "sqlite://data/test.db"

[mail]
from = "HR <hr@example.org>"
transport = "file"
activation_url = "https://app.example.org/activate?token={token}"

[organisations.acme]
name = "Acme"
time_zone = "Europe/Amsterdam"

[connectors.acme_hr]
organisation = "acme"
kind = "csv"

[connectors.acme_hr.csv]
path = "config/examples/dekring-export.csv"
"#;

fn write(dir: &Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("hrsync.toml");
    std::fs::write(&path, text).expect("writing the config");
    path
}

fn problems(path: &Path, env: &[(&str, &str)]) -> Vec<Problem> {
    let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
    match config::load_with_env(path, env) {
        Ok(loaded) => loaded.check(),
        Err(e) => e.problems,
    }
}

#[test]
fn bundled_default_configuration_is_valid() {
    let path = Path::new(config::DEFAULT_PATH);

    let found = problems(path, &[]);

    assert_eq!(found, vec![]);
}

#[test]
fn unknown_keys_are_all_reported_with_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let text = VALID
        .replace("[database]\n", "[database]\ncolour = \"blue\"\n")
        .replace("kind = \"csv\"\n", "kind = \"csv\"\nsned_invites = false\n");
    let path = write(dir.path(), &text);

    let found = problems(&path, &[]);

    let keys: Vec<&str> = found.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        vec!["connectors.acme_hr.sned_invites", "database.colour"]
    );
    assert!(found.iter().all(|p| p.message == "unknown key"));
    assert!(
        found[0]
            .to_string()
            .starts_with(&path.display().to_string())
    );
}

#[test]
fn unknown_key_inside_the_csv_table_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), &format!("{VALID}delimeter = \";\"\n"));

    let found = problems(&path, &[]);

    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].key.contains("csv"), "{found:?}");
}

#[test]
fn value_of_the_wrong_type_names_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        &VALID.replace("[database]\n", "[database]\nmax_connections = \"many\"\n"),
    );

    let found = problems(&path, &[]);

    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].key, "database.max_connections");
}

#[test]
fn every_semantic_problem_is_reported_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let text = VALID
        .replace("Europe/Amsterdam", "Europe/Atlantis")
        .replace("config/examples/dekring-export.csv", "no/such/file.csv")
        .replace("organisation = \"acme\"", "organisation = \"acme-typo\"")
        .replace("?token={token}", "");
    let path = write(dir.path(), &text);

    let found = problems(&path, &[]);

    let keys: Vec<&str> = found.iter().map(|p| p.key.as_str()).collect();
    assert!(keys.contains(&"organisations.acme.time_zone"), "{keys:?}");
    assert!(keys.contains(&"connectors.acme_hr.csv.path"), "{keys:?}");
    assert!(
        keys.contains(&"connectors.acme_hr.organisation"),
        "{keys:?}"
    );
    assert!(keys.contains(&"mail.activation_url"), "{keys:?}");
}

#[test]
fn missing_environment_secret_is_reported_by_name_without_a_value() {
    let dir = tempfile::tempdir().unwrap();
    let text = VALID.replace(
        "transport = \"file\"",
        "transport = \"smtp\"\nsmtp_url = \"smtp://mail.example.org?tls=required\"\nsmtp_username = \"hr\"\nsmtp_password_env = \"HRSYNC_TEST_SECRET_THAT_IS_NOT_SET\"",
    );
    let path = write(dir.path(), &text);

    let found = problems(&path, &[]);

    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].key, "mail.smtp_password_env");
    assert!(
        found[0]
            .message
            .contains("HRSYNC_TEST_SECRET_THAT_IS_NOT_SET")
    );
}

#[test]
fn environment_overrides_the_file_and_is_named_as_the_origin() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), VALID);

    let loaded = config::load_with_env(
        &path,
        [(
            "HRSYNC__DATABASE__URL".to_string(),
            "postgres://hrsync@db/hrsync".to_string(),
        )],
    )
    .unwrap();
    let bad = problems(&path, &[("HRSYNC__DATABASE__MAX_CONNECTIONS", "many")]);

    assert_eq!(loaded.settings.database.url, "postgres://hrsync@db/hrsync");
    assert_eq!(bad.len(), 1, "{bad:?}");
    assert_eq!(
        bad[0].origin,
        "environment HRSYNC__DATABASE__MAX_CONNECTIONS"
    );
}

#[test]
fn missing_file_is_a_clear_error() {
    let found = problems(Path::new("no/such/hrsync.toml"), &[]);

    assert_eq!(found.len(), 1);
    assert!(found[0].to_string().contains("no/such/hrsync.toml"));
    assert!(found[0].message.contains("does not exist"));
}

#[test]
fn http_connector_without_its_variables_and_secrets_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{VALID}\n[connectors.acme_scim]\norganisation = \"acme\"\nkind = \"http\"\n\n[connectors.acme_scim.http]\ndefinition = \"{}/connectors/scim.toml\"\nsecrets = {{ token = \"HRSYNC_TEST_UNSET_SCIM_TOKEN\" }}\n",
        env!("CARGO_MANIFEST_DIR")
    );
    let path = write(dir.path(), &text);

    let found = problems(&path, &[]);

    let keys: Vec<&str> = found.iter().map(|p| p.key.as_str()).collect();
    assert!(
        keys.contains(&"connectors.acme_scim.http.variables.base_url"),
        "{keys:?}"
    );
    assert!(
        keys.contains(&"connectors.acme_scim.http.secrets.token"),
        "{keys:?}"
    );
    assert!(
        found
            .iter()
            .any(|p| p.message.contains("HRSYNC_TEST_UNSET_SCIM_TOKEN"))
    );
}

#[test]
fn http_connector_naming_a_missing_definition_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{VALID}\n[connectors.acme_x]\norganisation = \"acme\"\nkind = \"http\"\n\n[connectors.acme_x.http]\ndefinition = \"no-such-system\"\n"
    );
    let path = write(dir.path(), &text);

    let found = problems(&path, &[]);

    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].key, "connectors.acme_x.http.definition");
    assert!(found[0].message.contains("connectors/no-such-system.toml"));
}

#[test]
fn production_example_names_only_secrets_the_environment_must_hold() {
    // Arrange: the example as shipped, with none of its secrets in the environment.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/production.toml");

    // Act
    let found = problems(&path, &[]);

    // Assert: the only problems are the missing secrets it names; schedules, server settings
    // and the Personio definition all check out.
    let keys: Vec<&str> = found.iter().map(|p| p.key.as_str()).collect();
    assert!(
        found
            .iter()
            .all(|p| p.message.contains("environment variable")),
        "{found:#?}"
    );
    assert!(keys.contains(&"database.password_env"), "{keys:?}");
    assert!(
        keys.contains(&"connectors.zonnehof_personio.http.secrets.client_secret"),
        "{keys:?}"
    );
}

#[test]
fn a_malformed_schedule_and_listen_address_are_reported_with_their_keys() {
    let dir = tempfile::tempdir().unwrap();
    let text = VALID.replace(
        "kind = \"csv\"\n",
        "kind = \"csv\"\nschedule = \"61 * * * *\"\n",
    ) + "\n[server]\nlisten = \"localhost\"\nadmin_token_sha256 = \"abc\"\n";
    let path = write(dir.path(), &text);

    let found = problems(&path, &[]);

    let keys: Vec<&str> = found.iter().map(|p| p.key.as_str()).collect();
    assert!(keys.contains(&"connectors.acme_hr.schedule"), "{found:#?}");
    assert!(keys.contains(&"server.listen"), "{found:#?}");
    assert!(keys.contains(&"server.admin_token_sha256"), "{found:#?}");
}

#[test]
fn a_digest_without_a_public_url_or_with_a_bad_address_is_reported() {
    // Arrange: digests for Acme, one address malformed, and no server.public_url.
    let dir = tempfile::tempdir().unwrap();
    let text = VALID.replace(
        "time_zone = \"Europe/Amsterdam\"\n",
        "time_zone = \"Europe/Amsterdam\"\ndigest_to = [\"it@acme.example\", \"not an address\"]\n",
    );
    let path = write(dir.path(), &text);

    // Act
    let found = problems(&path, &[]);

    // Assert
    let keys: Vec<&str> = found.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        vec!["server.public_url", "organisations.acme.digest_to[1]"],
        "{found:#?}"
    );
    let with_url = write(
        dir.path(),
        &(text.replace(", \"not an address\"", "")
            + "\n[server]\npublic_url = \"https://hrsync.acme.example\"\n"),
    );
    assert_eq!(problems(&with_url, &[]), vec![]);
}

#[test]
fn an_organisations_own_sender_must_be_a_mailbox() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let sender = |from: &str| {
        VALID.replace(
            "time_zone = \"Europe/Amsterdam\"\n",
            &format!("time_zone = \"Europe/Amsterdam\"\nmail_from = \"{from}\"\n"),
        )
    };

    // Act
    let bad = problems(&write(dir.path(), &sender("Acme HR hr-at-acme")), &[]);
    let good = problems(
        &write(dir.path(), &sender("Acme HR <hr@acme.example>")),
        &[],
    );

    // Assert
    let keys: Vec<&str> = bad.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, vec!["organisations.acme.mail_from"], "{bad:#?}");
    assert_eq!(good, vec![]);
}

/// A minimal HR API definition that can fetch incrementally, so that a connector may carry
/// `http.incremental` and with it every numeric setting there is.
const DELTA_DEFINITION: &str = r#"
name = "Delta HR"

[auth]
kind = "none"

[request]
url = "https://hr.example.org/people"

[records]
path = "people"

[incremental]
query = { changed_since = "{since}" }

[fields.employee_id]
path = "id"

[fields.email]
path = "email"
"#;

/// [`VALID`] with an incremental http connector `acme_api`, written with its definition.
fn with_every_number(dir: &Path) -> std::path::PathBuf {
    let definition = dir.join("delta.toml");
    std::fs::write(&definition, DELTA_DEFINITION).expect("writing the definition");
    write(
        dir,
        &format!(
            "{VALID}\n[connectors.acme_api]\norganisation = \"acme\"\nkind = \"http\"\n\n\
             [connectors.acme_api.http]\ndefinition = \"{}\"\n\
             incremental = {{ full_every_runs = 10, full_every_hours = 24, overlap_minutes = 5 }}\n",
            definition.display()
        ),
    )
}

/// The key of a numeric setting in [`with_every_number`]'s configuration.
fn instance_key(bound: &Bound) -> String {
    bound.key_for(if bound.key.contains(".http.") {
        "acme_api"
    } else {
        "acme_hr"
    })
}

/// The environment variable that sets a dotted key.
fn env_var(key: &str) -> String {
    format!("HRSYNC__{}", key.replace('.', "__").to_uppercase())
}

/// The problems of [`with_every_number`]'s configuration with one setting set to `value`.
fn problems_with(path: &Path, bound: &Bound, value: &str) -> Vec<Problem> {
    problems(path, &[(&env_var(&instance_key(bound)), value)])
}

/// The values at the ends of a range, and one step outside each.
fn ends_and_outside(range: Range) -> ([String; 2], [String; 2]) {
    match range {
        Range::Whole { min, max } => (
            [min.to_string(), max.to_string()],
            [
                min.checked_sub(1)
                    .map_or("-1".to_string(), |below| below.to_string()),
                (max + 1).to_string(),
            ],
        ),
        Range::Share { min, max } => (
            [min.to_string(), max.to_string()],
            [(min - 0.01).to_string(), (max + 0.01).to_string()],
        ),
    }
}

#[test]
fn every_numeric_setting_has_a_range() {
    // Arrange: every number the settings structs hold, by hand, and a configuration that
    // gives each of them.
    let expected = [
        "database.max_connections",
        "mail.token_valid_days",
        "server.mail_poll_seconds",
        "server.shutdown_grace_seconds",
        "server.stale_invite_days",
        "connectors.ID.invite_days_before_start",
        "connectors.ID.http.incremental.full_every_runs",
        "connectors.ID.http.incremental.full_every_hours",
        "connectors.ID.http.incremental.overlap_minutes",
        "connectors.ID.thresholds.max_deactivations",
        "connectors.ID.thresholds.max_deactivation_ratio",
        "connectors.ID.thresholds.min_deactivations_for_ratio",
        "connectors.ID.feed_health.max_drop",
        "connectors.ID.feed_health.max_missing_email_rise",
        "connectors.ID.feed_health.max_drop_count",
        "connectors.ID.feed_health.max_missing_email_rise_count",
        "connectors.ID.feed_health.first_feed_max_quarantined",
    ];
    let dir = tempfile::tempdir().unwrap();
    let path = with_every_number(dir.path());

    // Act
    let loaded = config::load_with_env(&path, []).unwrap();
    let checked: BTreeSet<String> = loaded
        .numbers()
        .into_iter()
        .map(|(key, _, _)| key)
        .collect();

    // Assert: each has a range, and check looks at each one of every connector.
    let bounded: Vec<&str> = bounds::ALL.iter().map(|b| b.key).collect();
    assert_eq!(bounded, expected);
    let instances: BTreeSet<String> = bounds::ALL
        .iter()
        .flat_map(|b| {
            let mut keys = vec![instance_key(b)];
            if !b.key.contains(".http.") && b.key.starts_with("connectors.") {
                keys.push(b.key_for("acme_api"));
            }
            keys
        })
        .collect();
    assert_eq!(checked, instances);
}

/// The dotted keys of every number in a serialised configuration, with `ID` for connector ids.
fn numeric_keys(value: &serde_json::Value, key: &str, found: &mut BTreeSet<String>) {
    match value {
        serde_json::Value::Number(_) => {
            found.insert(key.to_string());
        }
        serde_json::Value::Array(items) => {
            for item in items {
                numeric_keys(item, key, found);
            }
        }
        serde_json::Value::Object(fields) => {
            for (name, field) in fields {
                let name = if key == "connectors" { "ID" } else { name };
                let key = if key.is_empty() {
                    name.to_string()
                } else {
                    format!("{key}.{name}")
                };
                numeric_keys(field, &key, found);
            }
        }
        _ => {}
    }
}

#[test]
fn every_number_the_settings_structs_hold_has_a_range() {
    // Arrange: a configuration that gives every optional number too.
    let dir = tempfile::tempdir().unwrap();
    let path = with_every_number(dir.path());
    let loaded = config::load_with_env(&path, []).unwrap();

    // Act: every numeric field of the settings as deserialised, whatever a test listed.
    let mut numbers = BTreeSet::new();
    numeric_keys(
        &serde_json::to_value(&loaded.settings).unwrap(),
        "",
        &mut numbers,
    );

    // Assert: a field added without a range fails here.
    let bounded: BTreeSet<String> = bounds::ALL.iter().map(|b| b.key.to_string()).collect();
    assert_eq!(numbers, bounded);
}

#[test]
fn each_numeric_setting_accepts_the_lowest_and_highest_values_of_its_range() {
    let dir = tempfile::tempdir().unwrap();
    let path = with_every_number(dir.path());

    for bound in bounds::ALL {
        for value in ends_and_outside(bound.range).0 {
            // Act
            let found = problems_with(&path, bound, &value);

            // Assert
            assert_eq!(found, vec![], "{} = {value}", instance_key(bound));
        }
    }
}

#[test]
fn each_numeric_setting_refuses_one_step_outside_its_range_naming_the_key_and_the_range() {
    let dir = tempfile::tempdir().unwrap();
    let path = with_every_number(dir.path());

    for bound in bounds::ALL {
        for value in ends_and_outside(bound.range).1 {
            // Act
            let found = problems_with(&path, bound, &value);

            // Assert: one problem, about this key, giving the range; a value the type
            // cannot hold (-1 for a count) is refused by loading, with the range as well.
            let key = instance_key(bound);
            assert_eq!(found.len(), 1, "{key} = {value}: {found:#?}");
            assert_eq!(found[0].key, key);
            let range = format!("use {}", bound.range);
            assert!(found[0].message.ends_with(&range), "{}", found[0]);
            if value != "-1" {
                assert_eq!(
                    found[0].message,
                    format!("{value} is out of range; {range}")
                );
            }
        }
    }
}

#[test]
fn the_values_that_crashed_a_deployment_are_refused_with_key_and_range() {
    // Arrange: activation links valid for 100 million days (the mail worker's date overflowed)
    // and a pool of u32::MAX connections (the process aborted reserving 309 GB).
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        &VALID
            .replace("[database]\n", "[database]\nmax_connections = 4294967295\n")
            .replace(
                "transport = \"file\"\n",
                "transport = \"file\"\ntoken_valid_days = 100000000\n",
            ),
    );

    // Act
    let found = problems(&path, &[]);

    // Assert
    let lines: Vec<String> = found.iter().map(ToString::to_string).collect();
    let file = path.display();
    assert_eq!(
        lines,
        vec![
            format!("{file}: database.max_connections: 4294967295 is out of range; use 1 to 100"),
            format!("{file}: mail.token_valid_days: 100000000 is out of range; use 1 to 365"),
        ]
    );
}

#[test]
fn a_share_that_is_not_a_number_is_refused() {
    // Arrange: TOML can spell NaN and infinity; neither is a share of anything.
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        &VALID.replace(
            "kind = \"csv\"\n",
            "kind = \"csv\"\nthresholds.max_deactivation_ratio = nan\nfeed_health.max_drop = inf\n",
        ),
    );

    // Act
    let found = problems(&path, &[]);

    // Assert
    let lines: Vec<String> = found
        .iter()
        .map(|p| format!("{}: {}", p.key, p.message))
        .collect();
    assert_eq!(
        lines,
        vec![
            "connectors.acme_hr.thresholds.max_deactivation_ratio: NaN is out of range; use 0 to 1",
            "connectors.acme_hr.feed_health.max_drop: inf is out of range; use 0 to 1",
        ]
    );
}

#[test]
fn a_schedule_whose_date_never_comes_is_refused() {
    // Arrange: every field is in range, but there is no 31st of April.
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        &VALID.replace(
            "kind = \"csv\"\n",
            "kind = \"csv\"\nschedule = \"0 6 31 4 *\"\n",
        ),
    );

    // Act
    let found = problems(&path, &[]);

    // Assert
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].key, "connectors.acme_hr.schedule");
    assert!(found[0].message.contains("never fires"), "{}", found[0]);
}

/// A definition like [`DELTA_DEFINITION`] that cannot ask for only what changed.
const FULL_ONLY_DEFINITION: &str = r#"
name = "Full HR"

[auth]
kind = "none"

[request]
url = "https://hr.example.org/people"

[records]
path = "people"

[fields.employee_id]
path = "id"

[fields.email]
path = "email"
"#;

#[test]
fn every_kind_of_problem_is_listed_in_the_order_of_the_sections() {
    // Arrange: one configuration with a problem in every check, so that the list `hrsync check`
    // prints (its order included) is pinned, section by section.
    let dir = tempfile::tempdir().unwrap();
    let full_only = dir.path().join("full-only.toml");
    std::fs::write(&full_only, FULL_ONLY_DEFINITION).unwrap();
    let scim = format!("{}/connectors/scim.toml", env!("CARGO_MANIFEST_DIR"));
    let text = format!(
        r#"
[database]
url = "mysql://db/hrsync"
password_env = "HRSYNC_TEST_UNSET_DB_PASSWORD"

[mail]
from = "not a mailbox"
transport = "smtp"
smtp_password_env = "HRSYNC_TEST_UNSET_SMTP_PASSWORD"
activation_url = "https://app.example.org/activate"
token_valid_days = 0

[server]
listen = "localhost"
admin_token_sha256 = "abc"
public_url = "ftp://hrsync.example.org"

[organisations.acme]
name = "Acme"
time_zone = "Europe/Atlantis"
locale = "fr"
digest_to = ["it@acme.example", "not an address"]

[organisations."bad slug"]
name = "Bad"
time_zone = "UTC"

[connectors."bad id"]
organisation = "nowhere"
kind = "csv"
schedule = "61 * * * *"
teams_from = "floor"
ownership = {{ shoe_size = "hris", email = "boss" }}
status_map = {{ active = ["Active"], inactive = ["active"] }}
roles = [{{ role = " ", require = [""] }}]

[connectors.acme_csv]
organisation = "acme"
kind = "csv"
schedule = "0 6 31 4 *"
csv = {{ path = "no/such/file.csv", delimiter = "|", date_formats = [] }}

[connectors.acme_http]
organisation = "acme"
kind = "http"

[connectors.acme_scim]
organisation = "acme"
kind = "http"
feed = "incremental"
invite_days_before_start = 400

[connectors.acme_scim.http]
definition = "{scim}"
secrets = {{ token = "HRSYNC_TEST_UNSET_SCIM_TOKEN", extra = "HRSYNC_TEST_UNSET_EXTRA" }}
incremental = {{ full_every_runs = 0 }}

[connectors.acme_full]
organisation = "acme"
kind = "http"

[connectors.acme_full.http]
definition = "{full_only}"
incremental = {{}}

[connectors.acme_missing]
organisation = "acme"
kind = "http"
http = {{ definition = "no-such-system" }}
thresholds = {{ max_deactivation_ratio = 2.0 }}
feed_health = {{ max_drop = -0.5 }}
"#,
        full_only = full_only.display(),
    );
    let path = write(dir.path(), &text);

    // Act
    let found = problems(&path, &[]);

    // Assert
    let lines: Vec<String> = found
        .iter()
        .map(|p| format!("{}: {}", p.key, p.message))
        .collect();
    let built_in: Vec<&str> = hrsync::connectors::http::BUILT_IN
        .iter()
        .map(|(name, _)| *name)
        .collect();
    let missing_definition = format!(
        "connectors.acme_missing.http.definition: no definition `no-such-system`: `{}` does not exist and none is built in (built in: {})",
        dir.path().join("connectors/no-such-system.toml").display(),
        built_in.join(", ")
    );
    assert_eq!(
        lines,
        vec![
            "database.url: must start with sqlite: or postgres:",
            "database.password_env: the environment variable `HRSYNC_TEST_UNSET_DB_PASSWORD` is not set",
            "mail.from: `not a mailbox` is not a mailbox such as `Name <addr@example.org>`",
            "mail.activation_url: must contain `{token}`, where the activation token goes",
            "server.listen: `localhost` is not an address such as 127.0.0.1:8080",
            "server.admin_token_sha256: must be the 64 hex digits of a SHA-256; `hrsync admin-token` makes a token and its hash",
            "server.public_url: `ftp://hrsync.example.org` is not an http:// or https:// address such as https://hrsync.acme.example",
            "mail.smtp_url: is required when transport = \"smtp\"",
            "mail.smtp_password_env: the environment variable `HRSYNC_TEST_UNSET_SMTP_PASSWORD` is not set",
            "mail.smtp_username: is required with smtp_password_env",
            "organisations.acme.time_zone: `Europe/Atlantis` is not an IANA time zone such as Europe/Amsterdam",
            "organisations.acme.locale: `fr` is not a supported locale (en, nl)",
            "organisations.acme.digest_to[1]: `not an address` is not an email address",
            "organisations.bad slug: an organisation key may hold only letters, digits, `_` and `-`",
            "connectors.acme_csv.csv.delimiter: `|` is not a supported delimiter: use `,` or `;`",
            "connectors.acme_csv.csv.date_formats: no date formats are given: list at least one, such as \"%Y-%m-%d\"",
            "connectors.acme_csv.csv.path: `no/such/file.csv` is not a readable file",
            "connectors.acme_csv.schedule: `0 6 31 4 *` never fires: no date matches its day and month",
            "connectors.acme_full.http.incremental: the definition `Full HR` has no [incremental] table: it does not say how to ask for only what changed",
            "connectors.acme_http.http: an http connector needs an [http] table",
            missing_definition.as_str(),
            "connectors.acme_scim.http.variables.base_url: the definition `SCIM 2.0` needs this variable",
            "connectors.acme_scim.feed: must be \"full\" with http.incremental: the merged feed is whole, and its periodic full fetch must find the people who vanished",
            "connectors.acme_scim.http.secrets.extra: the environment variable `HRSYNC_TEST_UNSET_EXTRA` is not set",
            "connectors.acme_scim.http.secrets.token: the environment variable `HRSYNC_TEST_UNSET_SCIM_TOKEN` is not set",
            "connectors.bad id: a connector id may hold only letters, digits, `_` and `-`",
            "connectors.bad id.organisation: no organisation `nowhere` under [organisations]",
            "connectors.bad id.csv: a csv connector needs a [csv] table",
            "connectors.bad id.status_map: `Active` is listed as both active and inactive",
            "connectors.bad id.schedule: `61 * * * *` is not a schedule: Component error: Number out of bounds.",
            "connectors.bad id.teams_from: `floor` is not `department`, `location` or `attribute:NAME`",
            "connectors.bad id.ownership.email: `boss` is not `hris`, `local` or `user_after_activation`",
            "connectors.bad id.ownership.shoe_size: unknown field; known fields: email, first_name, last_name, display_name, job_title, location, employment_type, team, coach",
            "connectors.bad id.roles[0].role: must not be empty",
            "connectors.bad id.roles[0].require: an attribute name must not be empty",
            "mail.token_valid_days: 0 is out of range; use 1 to 365",
            "connectors.acme_missing.thresholds.max_deactivation_ratio: 2 is out of range; use 0 to 1",
            "connectors.acme_missing.feed_health.max_drop: -0.5 is out of range; use 0 to 1",
            "connectors.acme_scim.invite_days_before_start: 400 is out of range; use 0 to 365",
            "connectors.acme_scim.http.incremental.full_every_runs: 0 is out of range; use 1 to 10000",
        ],
        "{lines:#?}"
    );
}

#[test]
fn a_csv_connector_with_a_stray_http_table_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("{VALID}\n[connectors.acme_hr.http]\ndefinition = \"scim\"\n");
    let path = write(dir.path(), &text);

    let found = problems(&path, &[]);

    let lines: Vec<String> = found
        .iter()
        .map(|p| format!("{}: {}", p.key, p.message))
        .collect();
    assert!(
        lines.contains(
            &"connectors.acme_hr.http: a csv connector takes no [http] table; remove it, or set kind = \"http\""
                .to_string()
        ),
        "{lines:?}"
    );
}

/// An http connector of the shipped SCIM definition, by name, with `extra` lines in its
/// `[http]` table; the CSV connector's file is given by its full path, so the configuration
/// works from any directory.
fn scim_by_name(extra: &str) -> String {
    let valid = VALID.replace(
        "config/examples/dekring-export.csv",
        &format!(
            "{}/config/examples/dekring-export.csv",
            env!("CARGO_MANIFEST_DIR")
        ),
    );
    format!(
        "{valid}\n[connectors.acme_scim]\norganisation = \"acme\"\nkind = \"http\"\n\n[connectors.acme_scim.http]\ndefinition = \"scim\"\nvariables = {{ base_url = \"https://hr.acme.example/scim/v2\" }}\nsecrets = {{ token = \"PATH\" }}\n{extra}"
    )
}

#[test]
fn check_finds_a_shipped_definition_by_name_from_any_directory() {
    let config_dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let path = write(config_dir.path(), &scim_by_name(""));

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hrsync"))
        .args(["--config", path.to_str().unwrap(), "check"])
        .current_dir(elsewhere.path())
        .output()
        .unwrap();

    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("the configuration is valid"),
        "{stderr}"
    );
}

#[test]
fn a_definition_beside_the_configuration_is_used_before_the_shipped_one() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("connectors")).unwrap();
    let own =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("connectors/scim.toml"))
            .unwrap()
            .replacen("name = ", "name = \"Our SCIM\"\n# was: ", 1);
    std::fs::write(dir.path().join("connectors/scim.toml"), own).unwrap();
    let path = write(dir.path(), &scim_by_name(""));

    let loaded = config::load(&path).unwrap();

    let Ok(config::Source::Http(http)) = loaded.connector("acme_scim").unwrap().source() else {
        panic!("an http connector");
    };
    let resolved = http.load_definition().unwrap();
    assert_eq!(resolved.definition.name, "Our SCIM");
    assert!(
        resolved.origin.ends_with("connectors/scim.toml"),
        "{}",
        resolved.origin
    );
}

#[test]
fn an_instance_field_override_is_checked_like_the_definition() {
    let dir = tempfile::tempdir().unwrap();
    let text = scim_by_name(
        "\n[connectors.acme_scim.http.fields.employe_number]\npath = \"x\"\n\n[connectors.acme_scim.http.fields.attributes.cost_centre]\npath = \"costCenter\"\n",
    );
    let path = write(dir.path(), &text);

    let found = problems(&path, &[]);

    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].key, "connectors.acme_scim.http.fields");
    assert!(
        found[0]
            .message
            .contains("fields.employe_number: not a field; the fields are employee_id"),
        "{}",
        found[0].message
    );
}

#[test]
fn an_instance_field_override_is_read_instead_of_the_definitions_field() {
    let dir = tempfile::tempdir().unwrap();
    let text = scim_by_name(
        "\n[connectors.acme_scim.http.fields.attributes.personnelNumber]\npath = '\"urn:ietf:params:scim:schemas:extension:acme:2.0:User\".personnelNumber'\n\n[connectors.acme_scim.http.fields.job_title]\npath = \"urn:acme:role\"\n",
    );
    let path = write(dir.path(), &text);

    let loaded = config::load(&path).unwrap();

    assert_eq!(loaded.check(), vec![]);
    let Ok(config::Source::Http(http)) = loaded.connector("acme_scim").unwrap().source() else {
        panic!("an http connector");
    };
    let fields = http.load_definition().unwrap().definition.fields;
    assert_eq!(
        fields.attributes["personnelNumber"]
            .path
            .as_ref()
            .unwrap()
            .to_string(),
        "\"urn:ietf:params:scim:schemas:extension:acme:2.0:User\".personnelNumber"
    );
    assert_eq!(
        fields.job_title.path.as_ref().unwrap().to_string(),
        "urn:acme:role",
        "the definition's own `title` is replaced"
    );
    assert!(
        fields.attributes.contains_key("employee_number"),
        "the definition's other fields stay"
    );
}

#[test]
fn extend_body_on_a_definition_without_a_json_body_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        &scim_by_name("extend_body = { fields = [\"x\"] }\n"),
    );

    let found = problems(&path, &[]);

    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].key, "connectors.acme_scim.http.extend_body");
    assert!(
        found[0].message.contains("no JSON object body"),
        "{}",
        found[0].message
    );
}
