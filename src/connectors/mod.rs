//! Source kinds: each turns one HR system's data into normalised records, all or nothing.
//!
//! `csv` reads HR export files. `mapping` is the field mapping of declarative connector
//! definitions: how a JSON object from an HR system's API becomes a record; the HTTP engine
//! that fetches those objects builds on it.

pub mod csv;
pub mod mapping;
