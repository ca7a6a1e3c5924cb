//! hrsync keeps an organisation's user directory in step with its HR system.
//!
//! Modules are listed in reading order: the domain first, then what feeds the planner, the
//! planner itself, the layers that store, mail and report what it decided, and the daemon
//! that runs it all on schedules and serves the admin pages.

pub mod cli;
pub mod config;
pub mod domain;
pub mod metrics;
pub mod schedule;

pub mod connectors;
pub mod mail;
pub mod planner;
pub mod report;
pub mod server;
pub mod store;
pub mod sync;
