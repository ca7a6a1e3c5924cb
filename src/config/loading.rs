//! Loading: the TOML file with the `HRSYNC__…` environment on top, deserialised into
//! [`Settings`], and the secrets the settings name, read from the environment only when a
//! caller needs them (so a secret is never held longer, or logged, by accident).

use std::collections::BTreeMap;
use std::path::Path;

use secrecy::SecretString;

use super::{ConfigError, HttpSettings, Loaded, Problem, Settings, bounds};

/// The prefix of environment variables that override settings: `HRSYNC__DATABASE__URL`.
pub const ENV_PREFIX: &str = "HRSYNC";
/// The configuration file read when no `--config` is given.
pub const DEFAULT_PATH: &str = "config/hrsync.toml";

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
        Ok(mut settings) if problems.is_empty() => {
            // Definitions named by an http connector resolve beside the configuration file.
            let dir = path
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .to_path_buf();
            for http in settings
                .connectors
                .values_mut()
                .filter_map(|c| c.http.as_mut())
            {
                http.config_dir = Some(dir.clone());
            }
            Ok(Loaded {
                settings,
                path: path.to_path_buf(),
            })
        }
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
pub(super) fn env_var_for(key: &str) -> String {
    format!("{ENV_PREFIX}__{}", key.replace('.', "__").to_uppercase())
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

impl HttpSettings {
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

impl Loaded {
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
