//! The store's SQL, one module per aggregate, written once for both backends.
//!
//! `store/sqlite.rs` and `store/postgres.rs` each load this folder as their `backend` module,
//! with their own `Db` type and `POSTGRES` constant, so every statement here is compiled once
//! per backend and runs with that backend's native types. Placeholders are `$1`, `$2`, …, which
//! both SQLite and PostgreSQL accept. The public face of each aggregate (its types and `Store`
//! methods) is the file of the same name one folder up.

// The backend this copy is compiled for; the modules below reach them as `super::Db`.
use super::{Db, POSTGRES, copy_csv};

pub(in crate::store) mod admin_sessions;
pub(in crate::store) mod apply;
pub(in crate::store) mod common;
pub(in crate::store) mod credentials;
pub(in crate::store) mod directory;
pub(in crate::store) mod feed;
pub(in crate::store) mod manual;
pub(in crate::store) mod organisations;
pub(in crate::store) mod outbox;
pub(in crate::store) mod person;
pub(in crate::store) mod principals;
pub(in crate::store) mod runs;
pub(in crate::store) mod schedule;
pub(in crate::store) mod service;
pub(in crate::store) mod tokens;
pub(in crate::store) mod users;
