//! hrsync keeps an organisation's user directory in step with its HR system.
//!
//! The layers, bottom up: the domain; the leaf utilities `schedule` and `metrics`; the pure
//! planner; the sources (`connectors`); the `store`; `report` and `mail`; `config`; one run
//! (`sync`); the daemon (`server`) and the command line (`cli`). ARCHITECTURE.md's code map
//! gives that order, and `tests/layering.rs` fails when a module uses one above it in the
//! stack. (rustfmt sorts the list below.)

pub mod cli;
pub mod config;
pub mod domain;
pub mod html;
pub mod metrics;
pub mod schedule;
pub mod secret;

pub mod connectors;
pub mod mail;
pub mod planner;
pub mod report;
pub mod server;
pub mod store;
pub mod sync;
