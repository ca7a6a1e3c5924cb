//! The domain: parsed, normalised values that every other layer shares.
//!
//! Nothing here does I/O. Connectors turn raw HR data into [`HrRecord`]s, the store turns rows
//! into a [`Directory`] snapshot, and the planner compares the two. Values are parsed once, at
//! the edge, through the `parse` constructors below, so the layers further in never see a raw
//! email address or an untrimmed employee id.

mod audit;
mod code;
mod directory;
mod ids;
mod progress;
mod record;
mod run;
mod text;

pub use audit::{Actor, AuditAction, AuditEvent, CONFIGURED_ADMIN, Via};
pub use code::Code;
pub use directory::{
    Account, AccountId, Directory, Grant, Membership, MembershipId, MembershipState, Team, TeamId,
    TeamLink,
};
pub use ids::{ConnectorId, Email, EmailError, EmployeeId, TeamKey};
pub use progress::{Progress, Step};
pub use record::{Department, HrRecord, MAX_KEY_BYTES};
pub use run::{
    ChangeLine, FetchKind, RunError, RunMode, RunReport, RunStatus, RunSummary, Trigger,
};
pub use text::{attribute, is_single_line, non_empty, single_line};
