//! Source kinds that turn an HR system's data into records.
pub mod csv;
