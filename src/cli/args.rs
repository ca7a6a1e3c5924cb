//! The command line's grammar and its help: every command and argument, what each means,
//! examples for the commands people type most, and the exit codes. `--help` is the reference
//! an operator reads first; README.md says the same at more length.

use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Parser, Subcommand, ValueEnum};

use super::{manage, principals};
use crate::config;

/// The exit codes, as `hrsync --help` lists them.
const EXIT_CODES: &str = "\
Exit codes:
  0   success (a dry run that plans changes succeeds too)
  1   error: a run failed, the configuration or a file is wrong, the database or the HR
      system cannot be reached, a mail could not be sent
  2   usage: an unknown command, option or value (the message names the allowed ones)
  3   a run was held for an admin's review: nothing was applied; `hrsync approve RUN_ID`
  75  the connector is running already, here or on another replica: try again later

Reports go to stdout, progress and logs to stderr (HRSYNC_LOG=info for more).";

#[derive(Debug, Parser)]
#[command(
    name = "hrsync",
    version,
    about = "Keeps the user directory in step with the HR system",
    after_help = EXIT_CODES
)]
pub struct Cli {
    /// The configuration file.
    #[arg(long, global = true, env = "HRSYNC_CONFIG", default_value = config::DEFAULT_PATH)]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ReportFormat {
    /// The counts and the first lines of each kind, for people.
    Text,
    /// Every line, in the documented JSON shape.
    Json,
    /// Every change line, one per row.
    Csv,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum RunFormat {
    /// The counts and the first lines of each kind, for people.
    Text,
    /// Every line, in the documented JSON shape (no progress is drawn).
    Json,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum FetchFormat {
    /// One line per record.
    Table,
    /// The normalised records as a JSON array.
    Json,
    /// No records: only the raw pages (with --raw) and a count.
    None,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum TableFormat {
    /// Columns for people.
    Table,
    /// An array of objects.
    Json,
    /// One row per line, with a header.
    Csv,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the configuration and every file it names; list every problem.
    Check {
        /// Also fetch the first page of each http connector and show what it gives: the
        /// count, and one normalised record with its personal fields masked.
        #[arg(long)]
        connect: bool,
    },
    /// Fetch one connector's records without planning: for checking a mapping and capturing
    /// fixtures. Writes nothing to the database.
    Fetch {
        /// The connector's id in the configuration (an `http` connector).
        connector: String,
        /// Also write every page as received to this directory, credentials redacted.
        #[arg(long)]
        raw: Option<PathBuf>,
        /// Ask only for what changed since this moment (RFC 3339), where the definition can.
        #[arg(long)]
        since: Option<chrono::DateTime<chrono::FixedOffset>>,
        /// How to write the records to stdout.
        #[arg(long, value_enum, default_value = "table")]
        format: FetchFormat,
    },
    /// Dry run: plan every connector (or one) and store the run, changing nothing else.
    #[command(after_help = PLAN_EXAMPLES)]
    Plan {
        /// Only this connector (its id in the configuration); default: every one, in the
        /// order of their ids.
        #[arg(long)]
        connector: Option<String>,
        /// Plan as of the end of this day (YYYY-MM-DD) in the organisation's time zone:
        /// who will have started or left by then. Default: now.
        #[arg(long)]
        as_of: Option<NaiveDate>,
        /// How to write the report to stdout.
        #[arg(long, value_enum, default_value = "text")]
        format: RunFormat,
        /// Text: every change line, not only the first of each kind.
        #[arg(long)]
        all: bool,
    },
    /// Sync every connector (or one): plan, apply, then send the queued email.
    #[command(after_help = SYNC_EXAMPLES)]
    Sync {
        /// Only this connector (its id in the configuration); default: every one, in the
        /// order of their ids.
        #[arg(long)]
        connector: Option<String>,
        /// Incremental connectors read their whole feed this time.
        #[arg(long)]
        full: bool,
        /// Sync as of the end of this day (YYYY-MM-DD) in the organisation's time zone.
        /// Default: now.
        #[arg(long)]
        as_of: Option<NaiveDate>,
        /// How to write the report to stdout.
        #[arg(long, value_enum, default_value = "text")]
        format: RunFormat,
        /// Queue the emails but send none now: `serve`'s mail worker, `mail send`, or the
        /// next `sync` sends them.
        #[arg(long)]
        no_send: bool,
        /// Text: every change line, not only the first of each kind.
        #[arg(long)]
        all: bool,
    },
    /// List recent runs, newest first.
    Runs {
        /// How many runs to list.
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// Show one run's report.
    #[command(after_help = REPORT_EXAMPLES)]
    Report {
        /// The run's number, as `runs`, `plan` and `sync` print it.
        run_id: i64,
        /// How to write the report to stdout.
        #[arg(long, value_enum, default_value = "text")]
        format: ReportFormat,
        /// Text: every change line, not only the first of each kind.
        #[arg(long)]
        all: bool,
    },
    /// Apply a held run, if planning again yields the same changes.
    #[command(after_help = APPROVE_EXAMPLES)]
    Approve {
        /// The held run's number, as the run's report and `runs` print it.
        run_id: i64,
        /// The admin's name for the audit trail; default: the `HRSYNC_ADMIN` variable, else
        /// the login name.
        #[arg(long, env = "HRSYNC_ADMIN")]
        by: Option<String>,
    },
    /// List accounts with their memberships.
    Users {
        /// Only this organisation (its key in the configuration).
        #[arg(long)]
        org: Option<String>,
        /// invited, active, suspended or deactivated.
        #[arg(long, value_parser = ["invited", "active", "suspended", "deactivated"])]
        status: Option<String>,
        /// Text to look for in email, name or employee id.
        #[arg(long)]
        search: Option<String>,
        /// Only people holding this role.
        #[arg(long)]
        role: Option<String>,
        /// Only members and coaches of the team with this key.
        #[arg(long)]
        team: Option<String>,
        /// How to write the list to stdout.
        #[arg(long, value_enum, default_value = "table")]
        format: TableFormat,
    },
    /// Add people by hand, edit what HR does not own, suspend, remove, and read a person's
    /// history of actions by hand.
    Accounts {
        #[command(subcommand)]
        action: manage::AccountsCommand,
    },
    /// Teams made by hand, and members and coaches added by hand.
    Teams {
        #[command(subcommand)]
        action: manage::TeamsCommand,
    },
    /// Roles and admin rights granted by hand.
    Roles {
        #[command(subcommand)]
        action: manage::RolesCommand,
    },
    /// The audit trail: every action by hand (who, through what, when, what), oldest first.
    Audit {
        /// Entries after this id (the last one of an earlier read).
        #[arg(long, default_value_t = 0)]
        after: i64,
        /// How many entries to read at most.
        #[arg(long, default_value_t = 1000)]
        limit: i64,
        /// How to write the entries to stdout.
        #[arg(long, value_enum, default_value = "table")]
        format: TableFormat,
    },
    /// Named admins, each with a token of their own for the pages and the admin API.
    Admins {
        #[command(subcommand)]
        action: principals::PrincipalCommand,
    },
    /// Service tokens for the product that owns the log-in: the service API only.
    ServiceTokens {
        #[command(subcommand)]
        action: principals::PrincipalCommand,
    },
    /// Activation emails.
    Invite {
        #[command(subcommand)]
        action: InviteCommand,
    },
    /// The email outbox: what is queued, and sending it now.
    Mail {
        #[command(subcommand)]
        action: MailCommand,
    },
    /// Create or update the database schema.
    Migrate,
    /// Run as a daemon: connectors on their schedules, the mail worker, and the admin API and
    /// pages on `server.listen`, until SIGTERM or SIGINT.
    Serve,
    /// Make a new admin token: prints the token (give it to admins) and the hash to put in
    /// `server.admin_token_sha256`.
    AdminToken,
}

#[derive(Debug, Subcommand)]
pub enum InviteCommand {
    /// Send a new activation email; the earlier link stops working.
    Resend {
        /// The person's email address.
        email: String,
        /// The organisation; needed only when the person is a member of more than one.
        #[arg(long)]
        org: Option<String>,
        /// The admin's name for the audit trail; default: the `HRSYNC_ADMIN` variable, else
        /// the login name.
        #[arg(long, env = "HRSYNC_ADMIN")]
        by: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum MailCommand {
    /// Send every email that is due now (what `sync` does after its runs); failed ones stay
    /// queued for a later try.
    Send,
    /// Count the outbox: waiting, failing, sent and refused for good.
    Status,
}

const PLAN_EXAMPLES: &str = "\
Examples:
  hrsync plan                          every connector, as of now
  hrsync plan --connector zonnehof_hr  one connector
  hrsync plan --as-of 2028-04-01       who will have started or left by then
  hrsync plan --format json | jq .     every line, for a program

A dry run stores the run and its report, and writes nothing else: no account, no mail.";

const SYNC_EXAMPLES: &str = "\
Examples:
  hrsync sync                          plan, apply and send the mail, every connector
  hrsync sync --connector zonnehof_hr --no-send
  hrsync sync --all                    every change line in the report

A run the safety limits hold exits 3 and applies nothing; its report names the reason and
the command that applies it (`hrsync approve RUN_ID`).";

const REPORT_EXAMPLES: &str = "\
Examples:
  hrsync runs                          find the run's number
  hrsync report 24                     counts and the first lines of each kind
  hrsync report 24 --all               every line
  hrsync report 24 --format csv > run-24.csv";

const APPROVE_EXAMPLES: &str = "\
Examples:
  hrsync report 24 --all               read what the held run would apply
  hrsync approve 24 --by \"Mira Admin\"

The run is planned again first; if HR's data changed since, nothing is applied and the
differences are listed: run `hrsync sync` again and review the new held run.";
