//! The command line: parses arguments and runs one subcommand against the library.
//!
//! Exit codes: 0 success, 1 error, 2 usage, 3 a run was held, 75 busy (see [`ExitCode`]). Output meant for
//! people or programs goes to stdout; logs go to stderr.

mod output;

use std::path::PathBuf;

use chrono::NaiveDate;

use crate::config::{self, Loaded};
use crate::connectors::http::{DefinitionLocation, FetchOptions};
use crate::domain::{RunMode, RunReport, RunStatus, Trigger};
use crate::report;
use crate::store::UserFilter;
use crate::sync::{App, AsOf, RunOutcome};

/// `print!` to stdout that stops quietly when the reader has gone (`hrsync runs | head`).
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// `println!` to stdout that stops quietly when the reader has gone.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// `eprint!` to stderr that stops quietly when the reader has gone (`hrsync sync 2>&1 | head`).
macro_rules! err {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr().lock(), $($arg)*);
    }};
}

/// `eprintln!` to stderr that stops quietly when the reader has gone.
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

mod args;
mod manage;
mod principals;
mod progress;
mod usage;

pub use args::{
    Cli, Command, FetchFormat, InviteCommand, MailCommand, ReportFormat, RunFormat, TableFormat,
};
pub use usage::UsageError;

/// Process exit codes, documented in README.md.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitCode {
    Success = 0,
    Error = 1,
    /// The command was given wrongly (clap's own errors exit 2 too).
    Usage = 2,
    Held = 3,
    /// The connector is running already, here or on another replica: try again later
    /// (sysexits' `EX_TEMPFAIL`, which schedulers and wrappers know to retry).
    Busy = 75,
}

impl ExitCode {
    /// The exit code of an error: the one place the command line maps a cause to a code. A
    /// busy connector is worth retrying; everything else is an error.
    fn of(error: &anyhow::Error) -> ExitCode {
        let busy = matches!(
            error.downcast_ref::<crate::sync::RunRefused>(),
            Some(crate::sync::RunRefused::Busy(_))
        ) || matches!(
            error.downcast_ref::<crate::sync::ApproveError>(),
            Some(crate::sync::ApproveError::Busy(_))
        );
        if busy {
            ExitCode::Busy
        } else if error.downcast_ref::<UsageError>().is_some() {
            ExitCode::Usage
        } else {
            ExitCode::Error
        }
    }
}

/// How `plan` and `sync` write their reports.
#[derive(Clone, Copy, Debug)]
struct Output {
    format: RunFormat,
    /// Text: every change line, not only the first of each kind.
    all: bool,
}

/// Runs the parsed command and returns the exit code. Errors are printed here, once.
pub async fn run(cli: Cli) -> ExitCode {
    match dispatch(cli).await {
        Ok(code) => code,
        Err(error) => {
            errln!("error: {error:#}");
            ExitCode::of(&error)
        }
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    // `check` must report a configuration that does not load, `admin-token` needs none, and
    // `fetch` must not touch the database: these run before the app (and its store) is built.
    match cli.command {
        Command::Check { connect } => Ok(check(&cli.config, connect).await),
        Command::AdminToken => admin_token(),
        Command::Fetch {
            connector,
            raw,
            since,
            format,
        } => fetch(&cli.config, &connector, raw, since, format).await,
        command => {
            let loaded = config::load_checked(&cli.config)?;
            let app = App::build(loaded).await?;
            with_app(app, command).await
        }
    }
}

/// The commands that work on the database, through the app built from the checked
/// configuration. The store is closed after a command that ends well; on an error the
/// process ends right after printing it.
async fn with_app(mut app: App, command: Command) -> anyhow::Result<ExitCode> {
    // Progress on a terminal for the commands that take a while, unless they write JSON.
    let wants_progress = match &command {
        Command::Plan { format, .. } | Command::Sync { format, .. } => {
            matches!(format, RunFormat::Text)
        }
        Command::Approve { .. }
        | Command::Mail {
            action: MailCommand::Send,
        }
        | Command::Invite { .. } => true,
        _ => false,
    };
    let spinner = progress::Spinner::on_terminal(wants_progress).map(|(spinner, progress)| {
        app.progress = progress;
        spinner
    });
    let result = on_database(app, command).await;
    if let Some(spinner) = spinner {
        spinner.clear();
    }
    result
}

/// [`with_app`]'s work: the command run against the app.
async fn on_database(mut app: App, command: Command) -> anyhow::Result<ExitCode> {
    let code = match command {
        Command::Check { .. } | Command::Fetch { .. } | Command::AdminToken => {
            // `dispatch` runs these without a database; reaching here is a slip in it.
            anyhow::bail!("this command does not use the database")
        }
        Command::Serve => {
            crate::server::serve(app, crate::server::signal()).await?;
            return Ok(ExitCode::Success);
        }
        Command::Migrate => {
            outln!(
                "The database schema is up to date ({}).",
                app.store.backend_name()
            );
            ExitCode::Success
        }
        Command::Plan {
            connector,
            as_of,
            format,
            all,
        } => {
            let output = Output { format, all };
            runs(&app, connector.as_deref(), as_of, output, RunMode::Plan).await?
        }
        Command::Sync {
            connector,
            full,
            as_of,
            format,
            no_send,
            all,
        } => {
            app.force_full_fetch = full;
            let output = Output { format, all };
            sync(&app, connector.as_deref(), as_of, output, !no_send).await?
        }
        Command::Runs { limit } => list_runs(&app, limit).await?,
        Command::Report {
            run_id,
            format,
            all,
        } => show_report(&app, run_id, format, all).await?,
        Command::Approve { run_id, by } => approve(&app, run_id, by.as_deref()).await?,
        Command::Users {
            org,
            status,
            search,
            role,
            team,
            format,
        } => {
            if let Some(org) = &org {
                usage::known_organisation(&app.config, org)?;
            }
            let filter = UserFilter {
                organisation: org,
                status,
                search,
                role,
                team,
            };
            manage::users(&app, &filter, format).await?
        }
        Command::Accounts { action } => manage::accounts(&app, action).await?,
        Command::Teams { action } => manage::teams(&app, action).await?,
        Command::Roles { action } => manage::roles(&app, action).await?,
        Command::Audit {
            after,
            limit,
            format,
        } => manage::audit(&app, after, limit, format).await?,
        Command::Admins { action } => {
            principals::run(&app, crate::store::PrincipalKind::Admin, action).await?
        }
        Command::ServiceTokens { action } => {
            principals::run(&app, crate::store::PrincipalKind::Service, action).await?
        }
        Command::Invite {
            action: InviteCommand::Resend { email, org, by },
        } => manage::resend_invite(&app, &email, org, by.as_deref()).await?,
        Command::Mail {
            action: MailCommand::Send,
        } => {
            let drained = send_due_mail(&app).await?;
            if drained.failed > 0 || drained.undeliverable > 0 {
                ExitCode::Error
            } else {
                ExitCode::Success
            }
        }
        Command::Mail {
            action: MailCommand::Status,
        } => mail_status(&app).await?,
    };
    app.store.close().await;
    Ok(code)
}

/// `admin-token`: a new token for admins, and the hash the configuration holds instead.
fn admin_token() -> anyhow::Result<ExitCode> {
    let token = crate::server::new_admin_token()?;
    outln!("token:  {token}");
    outln!("sha256: {}", crate::server::AdminToken::hash_hex(&token));
    errln!(
        "Keep the token where admins keep passwords; configure only the hash:\n  [server]\n  admin_token_sha256 = \"{}\"",
        crate::server::AdminToken::hash_hex(&token)
    );
    Ok(ExitCode::Success)
}

/// `sync`: every connector (or one) planned and applied, then (with `send`) the mail those
/// runs queued.
async fn sync(
    app: &App,
    connector: Option<&str>,
    as_of: Option<NaiveDate>,
    output: Output,
    send: bool,
) -> anyhow::Result<ExitCode> {
    let code = runs(app, connector, as_of, output, RunMode::Apply).await?;
    if send {
        send_due_mail(app).await?;
    } else {
        errln!(
            "Mail: queued, not sent (--no-send); `mail send`, `serve` or the next `sync` sends it."
        );
    }
    Ok(code)
}

/// `runs`: the recent runs, newest first.
async fn list_runs(app: &App, limit: i64) -> anyhow::Result<ExitCode> {
    out!(
        "{}",
        report::runs_table(&app.store.list_runs(limit, None).await?)
    );
    Ok(ExitCode::Success)
}

/// `report`: one run's report in the format asked for; the text summarises a large run
/// unless `all`, JSON and CSV hold every line.
async fn show_report(
    app: &App,
    run_id: i64,
    format: ReportFormat,
    all: bool,
) -> anyhow::Result<ExitCode> {
    let report = app
        .store
        .run_report_head(run_id, crate::sync::REPORT_HEAD)
        .await?
        .ok_or_else(|| anyhow::anyhow!("there is no run {run_id}"))?;
    match format {
        ReportFormat::Text => output::text(app, &report, all).await?,
        ReportFormat::Json => output::json(app, &[&report]).await?,
        ReportFormat::Csv => output::csv(app, &report).await?,
    }
    Ok(ExitCode::Success)
}

/// `approve`: a held run applied, then the mail it queued.
async fn approve(app: &App, run_id: i64, by: Option<&str>) -> anyhow::Result<ExitCode> {
    let outcome = app.approve(run_id).await?;
    let actor = manage::actor(by)?;
    let entry = crate::store::AuditEntry {
        run_id: Some(run_id),
        ..crate::store::AuditEntry::new(&actor, crate::domain::AuditAction::RunApprove)
    };
    app.store.record_audit(&entry, chrono::Utc::now()).await?;
    app.progress.report(crate::domain::Step::Done);
    out!("{}", report::text(&outcome.report));
    send_due_mail(app).await?;
    Ok(ExitCode::Success)
}

/// `mail status`: the outbox counted.
async fn mail_status(app: &App) -> anyhow::Result<ExitCode> {
    let stats = app.store.outbox_stats().await?;
    outln!("waiting:       {}", stats.pending);
    outln!(
        "  of which failed before and wait for a retry: {}",
        stats.failing
    );
    outln!("sent:          {}", stats.sent);
    outln!("undeliverable: {}", stats.undeliverable);
    if let Some(oldest) = stats.oldest_pending {
        outln!(
            "oldest waiting since {}",
            oldest.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
    }
    Ok(ExitCode::Success)
}

/// Sends the mail that is due and says on stderr what became of it.
async fn send_due_mail(app: &App) -> anyhow::Result<crate::mail::outbox::Drained> {
    let drained = app.drain_outbox().await?;
    app.progress.report(crate::domain::Step::Done);
    errln!("{}", mail_summary(app, &drained));
    Ok(drained)
}

fn mail_summary(app: &App, d: &crate::mail::outbox::Drained) -> String {
    let mail = &app.config.settings.mail;
    let sent = match mail.transport {
        config::MailTransportKind::File if d.sent > 0 => {
            format!(" (as .eml files in {})", mail.dir.display())
        }
        _ => String::new(),
    };
    let mut line = format!("Mail: {} sent{sent}, {} failed", d.sent, d.failed);
    if d.undeliverable > 0 {
        line.push_str(&format!(
            ", {} undeliverable (refused by the mail server; not tried again, see `users`)",
            d.undeliverable
        ));
    }
    if d.cancelled > 0 {
        line.push_str(&format!(
            ", {} cancelled (no longer applicable)",
            d.cancelled
        ));
    }
    if d.failed > 0 {
        line.push_str("; failed mail stays queued and is retried on the next sync");
    }
    line.push('.');
    line
}

async fn check(path: &std::path::Path, connect: bool) -> ExitCode {
    let loaded = match config::load(path) {
        Ok(loaded) => loaded,
        Err(e) => {
            err!("{e}");
            return ExitCode::Error;
        }
    };
    let mut problems = loaded.check();
    let (source_problems, exports) = loaded.check_sources();
    problems.extend(source_problems);
    if !problems.is_empty() {
        let e = config::ConfigError { problems };
        err!("{e}");
        return ExitCode::Error;
    }
    // The exports as a run reads them: how many records, and whether so many lack an email
    // that a connector's first run would be held for it (a column mapped wrong).
    let mut code = ExitCode::Success;
    let mut counts = Vec::new();
    for (id, records) in &exports {
        let Ok(settings) = loaded.connector(id) else {
            continue;
        };
        let Ok(config::Source::Csv(csv)) = settings.source() else {
            continue;
        };
        counts.push(format!(
            "{id}: {} holds {} records.",
            csv.path.display(),
            records.len()
        ));
        let limit = settings.feed_health.first_feed_max_quarantined;
        if let Some(problem) = mostly_without_email(records, limit) {
            errln!("{id}: {}: {problem}", csv.path.display());
            code = ExitCode::Error;
        }
    }
    if code == ExitCode::Success {
        outln!("{}: the configuration is valid.", path.display());
    }
    for line in counts {
        outln!("{line}");
    }
    if !connect {
        return code;
    }
    for (id, settings) in &loaded.settings.connectors {
        if !matches!(settings.source(), Ok(config::Source::Http(_))) {
            continue;
        }
        match connect_first_page(&loaded, id).await {
            Ok(text) => out!("{text}"),
            Err(error) => {
                errln!("{id}: cannot connect: {error:#}");
                code = ExitCode::Error;
            }
        }
    }
    code
}

/// Why a feed looks mapped wrong: more of its records lack a usable email than the share
/// (`feed_health.first_feed_max_quarantined`) for which a connector's first run is held
/// (HR204), so `check` says so before a run does. A tenant where most people really have no
/// email raises that setting, and `check` follows it.
fn mostly_without_email(records: &[crate::domain::HrRecord], limit: f64) -> Option<String> {
    let missing = records.iter().filter(|r| r.email.is_err()).count();
    let share = missing as f64 / records.len().max(1) as f64;
    (share > limit).then(|| {
        format!(
            "{missing} of {} records ({:.0}%) have no usable email, over feed_health.first_feed_max_quarantined ({:.0}%): check which field the email is read from",
            records.len(),
            share * 100.0,
            limit * 100.0
        )
    })
}

/// What the first page of an http connector gives, for `check --connect`.
async fn connect_first_page(loaded: &Loaded, connector: &str) -> anyhow::Result<String> {
    let source = crate::sync::http_source(loaded, connector).await?;
    let fetched = source
        .fetch_with(&FetchOptions {
            first_page_only: true,
            ..FetchOptions::default()
        })
        .await?;
    let limit = loaded
        .connector(connector)?
        .feed_health
        .first_feed_max_quarantined;
    if let Some(problem) = mostly_without_email(&fetched.records, limit) {
        anyhow::bail!(
            "the first page has {} records, but {problem}\n{}",
            fetched.records.len(),
            report::field_counts_text(&fetched.records).trim_end()
        );
    }
    let incremental_asked = matches!(
        loaded.connector(connector)?.source(),
        Ok(config::Source::Http(http)) if http.incremental.is_some()
    );
    let capability = source
        .definition()
        .incremental
        .as_ref()
        .and_then(|i| i.capability.clone());
    if let Some(capability) = capability.filter(|_| incremental_asked)
        && source.incremental_supported().await? == Some(false)
    {
        anyhow::bail!(
            "http.incremental is set, but the system does not say `{}` is true at {}: it cannot answer requests for only what changed; remove http.incremental",
            capability.path,
            capability.url
        );
    }
    let origin = match loaded.connector(connector)?.source() {
        Ok(config::Source::Http(http)) => match http.definition_location() {
            Ok(DefinitionLocation::File(path)) => path.display().to_string(),
            Ok(DefinitionLocation::BuiltIn(name)) => format!("built-in {name}"),
            Err(e) => e,
        },
        _ => String::new(),
    };
    let mut text = format!(
        "{connector} ({}, {origin}): connected; the first page has {} records",
        source.definition().name,
        fetched.records.len()
    );
    if let Some(total) = fetched.total {
        text.push_str(&format!(", of {total} in all"));
    }
    text.push('\n');
    text.push_str(&report::field_counts_text(&fetched.records));
    match fetched.records.first() {
        Some(record) => {
            text.push_str("  the first record, personal fields masked:\n");
            text.push_str(&report::redacted_record(record));
        }
        None => text.push_str("  (no records on the first page)\n"),
    }
    Ok(text)
}

async fn fetch(
    path: &std::path::Path,
    connector: &str,
    raw: Option<PathBuf>,
    since: Option<chrono::DateTime<chrono::FixedOffset>>,
    format: FetchFormat,
) -> anyhow::Result<ExitCode> {
    let loaded = config::load_checked(path)?;
    usage::known_connector(&loaded, Some(connector))?;
    let source = crate::sync::http_source(&loaded, connector).await?;
    let spinner = progress::Spinner::on_terminal(!matches!(format, FetchFormat::Json));
    let fetch_progress = spinner.as_ref().map(|(_, p)| p.clone()).unwrap_or_default();
    let fetched = source
        .fetch_with(&FetchOptions {
            since: since.map(|s| s.with_timezone(&chrono::Utc)),
            first_page_only: false,
            raw_dir: raw.clone(),
            progress: fetch_progress.clone(),
        })
        .await;
    if let Some((spinner, _)) = &spinner {
        spinner.clear();
    }
    let fetched = fetched?;
    let mut records = fetched.records;
    if fetched.incremental {
        source.resolve_managers(&mut records, &[]);
    }
    match format {
        FetchFormat::Table => out!("{}", report::records_table(&records)),
        FetchFormat::Json => outln!("{}", report::records_json(&records)),
        FetchFormat::None => {}
    }
    let mut summary = format!(
        "{connector}: {} records on {} pages",
        records.len(),
        fetched.pages
    );
    if let Some(dir) = raw {
        summary.push_str(&format!("; raw pages in {}", dir.display()));
    }
    errln!("{summary}.");
    err!("{}", report::field_counts_text(&records));
    let limit = loaded
        .connector(connector)?
        .feed_health
        .first_feed_max_quarantined;
    if let Some(problem) = mostly_without_email(&records, limit) {
        errln!("{connector}: {problem}");
        return Ok(ExitCode::Error);
    }
    Ok(ExitCode::Success)
}

async fn runs(
    app: &App,
    connector: Option<&str>,
    as_of: Option<NaiveDate>,
    output: Output,
    mode: RunMode,
) -> anyhow::Result<ExitCode> {
    usage::known_connector(&app.config, connector)?;
    let as_of = as_of.map(AsOf::EndOfDay).unwrap_or(AsOf::Now);
    let mut outcomes: Vec<RunOutcome> = Vec::new();
    for id in app.connector_ids(connector)? {
        outcomes.push(app.run_once(&id, mode, Trigger::Command, as_of).await?);
    }
    manage::note_runs(app, &outcomes, mode).await;
    app.progress.report(crate::domain::Step::Done);
    match output.format {
        RunFormat::Text => {
            for (i, o) in outcomes.iter().enumerate() {
                if i > 0 {
                    outln!();
                }
                output::text(app, &o.report, output.all).await?;
            }
            if !outcomes.is_empty() {
                errln!(
                    "Runs are kept in {}: `hrsync runs` lists them, `hrsync report RUN_ID` shows one.",
                    app.database_shown()
                );
            }
        }
        RunFormat::Json => {
            let reports: Vec<&RunReport> = outcomes.iter().map(|o| &o.report).collect();
            output::json(app, &reports).await?;
        }
    }
    let statuses: Vec<RunStatus> = outcomes.iter().map(RunOutcome::status).collect();
    Ok(if statuses.contains(&RunStatus::Failed) {
        ExitCode::Error
    } else if statuses.contains(&RunStatus::Held) {
        ExitCode::Held
    } else {
        ExitCode::Success
    })
}
