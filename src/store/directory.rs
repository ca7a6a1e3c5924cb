//! The directory load: what the planner compares a feed with.

use crate::domain::Directory;

use super::{Result, Store};

/// The directory.
impl Store {
    /// The directory the planner compares a feed with: the organisation's rows, and the
    /// accounts whose email is among `emails` (lower-cased), which a record may link.
    pub async fn load_directory(
        &self,
        organisation_id: i64,
        emails: &[String],
    ) -> Result<Directory> {
        dispatch!(self, directory::load_directory(organisation_id, emails))
    }
}
