//! hrsync keeps an organisation's user directory in step with its HR system.
//!
//! Modules are listed in reading order: the domain first, then what feeds the planner, the
//! planner itself, and the layers that store, mail and report what it decided.

pub mod cli;
pub mod config;
pub mod domain;

pub mod connectors;
pub mod mail;
pub mod planner;
pub mod report;
pub mod store;
pub mod sync;
