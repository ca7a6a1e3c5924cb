//! Source kinds: each turns one HR system's data into normalised records, all or nothing.
//!
//! `csv` reads HR export files. `http` runs a declarative connector definition from
//! `connectors/` (auth, request, paging, records) against an HR system's API, and `mapping`
//! is how such a definition reads each field of a JSON record.

pub mod csv;
pub mod http;
pub mod mapping;
