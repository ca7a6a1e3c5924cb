//! The `http` source kind against a real HTTP server (wiremock) speaking each HR system's
//! documented wire format, from the fixtures in `tests/fixtures/`.

// A test stops at the first thing that is not as expected.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use hrsync::connectors::http::{Definition, FetchError, HttpSource, Pagination};
use hrsync::domain::EmailError;
use secrecy::SecretString;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

mod afas;
mod bamboohr;
mod engine;
mod expect;
mod hibob;
mod lifecycle;
mod nmbrs;
mod personio;
mod personio_v2;
mod scim;
mod successfactors;
mod workday;

fn fixture(system: &str, file: &str) -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(system)
        .join(file);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn definition(name: &str) -> Definition {
    Definition::load(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("connectors")
            .join(name),
    )
    .unwrap()
}

fn source(def: Definition, vars: &[(&str, &str)], secrets: &[(&str, &str)]) -> HttpSource {
    let vars: BTreeMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let secrets: BTreeMap<String, SecretString> = secrets
        .iter()
        .map(|(k, v)| (k.to_string(), SecretString::from(v.to_string())))
        .collect();
    HttpSource::new(def, vars, secrets).unwrap()
}
