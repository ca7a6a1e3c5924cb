//! Configuration: the default works out of the box, and every problem is reported at once,
//! each with the file (or environment variable) and the key it is about.

use std::path::Path;

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
