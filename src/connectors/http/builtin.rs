//! The connector definitions shipped with hrsync, compiled into the binary from `connectors/`,
//! so that `definition = "personio"` works wherever hrsync runs, whatever its working directory.
//! A file of the same name in the `connectors/` folder beside the configuration file takes
//! precedence (see `HttpSettings::load_definition`).

/// Each shipped definition: its name (the file name without `.toml`) and its text.
pub const BUILT_IN: &[(&str, &str)] = &[
    ("afas", include_str!("../../../connectors/afas.toml")),
    (
        "afas_classic",
        include_str!("../../../connectors/afas_classic.toml"),
    ),
    (
        "bamboohr",
        include_str!("../../../connectors/bamboohr.toml"),
    ),
    ("hibob", include_str!("../../../connectors/hibob.toml")),
    ("nmbrs", include_str!("../../../connectors/nmbrs.toml")),
    (
        "personio",
        include_str!("../../../connectors/personio.toml"),
    ),
    (
        "personio_v2",
        include_str!("../../../connectors/personio_v2.toml"),
    ),
    ("scim", include_str!("../../../connectors/scim.toml")),
    (
        "successfactors",
        include_str!("../../../connectors/successfactors.toml"),
    ),
    (
        "successfactors_saml",
        include_str!("../../../connectors/successfactors_saml.toml"),
    ),
    ("workday", include_str!("../../../connectors/workday.toml")),
    (
        "workday_basic",
        include_str!("../../../connectors/workday_basic.toml"),
    ),
];

/// The text of the shipped definition with this name.
pub fn text(name: &str) -> Option<&'static str> {
    BUILT_IN
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| *text)
}

/// The names of the shipped definitions, for messages.
pub fn names() -> Vec<&'static str> {
    BUILT_IN.iter().map(|(n, _)| *n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::http::Definition;

    #[test]
    fn every_shipped_definition_loads() {
        for (name, text) in BUILT_IN {
            assert!(
                Definition::parse(text).is_ok(),
                "{name}: {:?}",
                Definition::parse(text).err()
            );
        }
    }

    #[test]
    fn every_file_in_the_connectors_folder_is_built_in() {
        let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("connectors");
        let mut files: Vec<String> = std::fs::read_dir(folder)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter_map(|f| f.strip_suffix(".toml").map(str::to_string))
            .collect();
        files.sort();
        assert_eq!(files, names());
    }
}
