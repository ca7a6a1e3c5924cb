//! `hrsync accounts …`, `hrsync teams …` and `hrsync roles …`: administration by hand beside
//! the sync, each action attributed to the admin who ran it (`--by`, else `HRSYNC_ADMIN`,
//! else the login name) and kept in the audit trail.
//!
//! The rules live in the store (`Store::add_person` and its siblings) and in
//! `planner::locks`; this module parses the arguments, names the organisation (the only one,
//! when `--org` is left out) and prints what happened, as text or JSON.

use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;

use super::ExitCode;
use super::usage::{known_organisation, only_organisation, organisation_of_person};
use crate::domain::{Actor, Email, TeamKey, Via};
use crate::planner::{Field, locks};
use crate::report;
use crate::store::{MembershipAction, NewPerson, TeamRole};
use crate::sync::App;

/// The output of an administration command.
#[derive(Clone, Copy, Debug, Default, ValueEnum)]
pub enum Format {
    /// Sentences and tables for people.
    #[default]
    Text,
    /// JSON for programs.
    Json,
}

/// Who runs the command, and where.
#[derive(Debug, Args)]
pub struct Common {
    /// The organisation (its key in the configuration); needed when there is more than one.
    #[arg(long)]
    org: Option<String>,
    /// The admin's name for the audit trail; default: the `HRSYNC_ADMIN` variable, else the
    /// login name.
    #[arg(long, env = "HRSYNC_ADMIN")]
    by: Option<String>,
    /// How to write what happened to stdout.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

#[derive(Debug, Subcommand)]
pub enum AccountsCommand {
    /// Add a person by hand: an account (or a link to the existing one with that address)
    /// and a membership no connector manages. The activation email goes out now unless
    /// `--no-invite`; `invite resend` sends it later.
    Add(AddArgs),
    /// Change fields HR does not own: `--set FIELD=VALUE`, `--clear FIELD`. Fields: email,
    /// first_name, last_name, display_name, job_title, location, employment_type. A field a
    /// connector keeps from HR is refused, naming the connector.
    Edit(EditArgs),
    /// Suspend a membership: the person cannot log in through it until the suspension is
    /// lifted. A sync does not lift it; an HR leaver still deactivates it.
    Suspend {
        /// The person's email address.
        email: String,
        #[command(flatten)]
        common: Common,
    },
    /// Lift a suspension.
    Unsuspend {
        /// The person's email address.
        email: String,
        #[command(flatten)]
        common: Common,
    },
    /// Remove a membership made by hand from the organisation, with its teams and roles
    /// there (the account stays). A membership a connector manages ends only through HR.
    Remove {
        /// The person's email address.
        email: String,
        #[command(flatten)]
        common: Common,
    },
    /// What was done to a person by hand, oldest first: who, when, what.
    History {
        /// The person's email address.
        email: String,
        /// How to write the history to stdout.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
}

/// The arguments of `accounts add`.
#[derive(Debug, Args)]
pub struct AddArgs {
    /// The person's email address: a new account, or the existing account with it.
    email: String,
    /// The first name.
    #[arg(long)]
    first_name: Option<String>,
    /// The last name.
    #[arg(long)]
    last_name: Option<String>,
    /// Default: the first and last name.
    #[arg(long)]
    display_name: Option<String>,
    /// The job title in this organisation.
    #[arg(long)]
    job_title: Option<String>,
    /// Where the person works in this organisation.
    #[arg(long)]
    location: Option<String>,
    /// Such as `vast` or `oproep`: the organisation's own words.
    #[arg(long)]
    employment_type: Option<String>,
    /// A role to grant by hand (repeat for more); `admin` is the admin right.
    #[arg(long = "role")]
    roles: Vec<String>,
    /// A team (by key) to join as a member (repeat for more).
    #[arg(long = "team")]
    teams: Vec<String>,
    /// Create the account without sending the activation email yet.
    #[arg(long)]
    no_invite: bool,
    #[command(flatten)]
    common: Common,
}

/// The arguments of `accounts edit`.
#[derive(Debug, Args)]
pub struct EditArgs {
    /// The person's email address (as it is now).
    email: String,
    /// FIELD=VALUE (repeat for more).
    #[arg(long = "set")]
    set: Vec<String>,
    /// A field to empty (repeat for more).
    #[arg(long = "clear")]
    clear: Vec<String>,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Subcommand)]
pub enum TeamsCommand {
    /// The organisation's teams with their members and coaches.
    List {
        #[command(flatten)]
        common: Common,
    },
    /// Create a team by hand.
    Create {
        /// The team's key (unique in the organisation).
        key: String,
        /// The name shown; default: the key.
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Add a person to a team as a member, by hand.
    AddMember {
        /// The team's key.
        key: String,
        /// The person's email address.
        email: String,
        #[command(flatten)]
        common: Common,
    },
    /// Make a person coach of a team, by hand (the coach assignment wins over membership).
    AddCoach {
        /// The team's key.
        key: String,
        /// The person's email address.
        email: String,
        #[command(flatten)]
        common: Common,
    },
    /// Remove a member added by hand.
    RemoveMember {
        /// The team's key.
        key: String,
        /// The person's email address.
        email: String,
        #[command(flatten)]
        common: Common,
    },
    /// Remove a coach added by hand.
    RemoveCoach {
        /// The team's key.
        key: String,
        /// The person's email address.
        email: String,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Debug, Subcommand)]
pub enum RolesCommand {
    /// The organisation's roles, with how many hold each by rule and by hand.
    List {
        #[command(flatten)]
        common: Common,
    },
    /// Grant a role by hand (`admin` is the admin right); a sync never revokes it.
    Grant {
        /// The person's email address.
        email: String,
        /// The role's name (`admin`: the admin right).
        role: String,
        #[command(flatten)]
        common: Common,
    },
    /// Revoke a role granted by hand; one a connector's rule grants is refused.
    Revoke {
        /// The person's email address.
        email: String,
        /// The role's name (`admin`: the admin right).
        role: String,
        #[command(flatten)]
        common: Common,
    },
}

/// The admin running the command line.
pub(super) fn actor(by: Option<&str>) -> anyhow::Result<Actor> {
    let name = by
        .map(str::to_string)
        .or_else(|| std::env::var("USER").ok())
        .or_else(|| std::env::var("LOGNAME").ok())
        .or_else(os_user)
        .and_then(|n| crate::domain::non_empty(&n))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "who is acting? Name yourself with --by NAME (or HRSYNC_ADMIN) for the audit trail"
            )
        })?;
    Ok(Actor::new(&name, Via::Cli))
}

/// The process's user, as `uid N`, where the system says (Linux), for a shell without `USER`
/// (a container, a cron job).
fn os_user() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?;
    Some(format!("uid {uid}"))
}

/// The organisation of an action on `person`: named, the only one, or the only one the
/// person is a member of; stored, so its row exists.
async fn organisation_for(app: &App, common: &Common, person: &Email) -> anyhow::Result<String> {
    let slug = organisation_of_person(app, common.org.as_deref(), person).await?;
    app.organisation(&slug).await?;
    Ok(slug)
}

/// The organisation named, or the only one; stored, so its row exists.
async fn organisation(app: &App, common: &Common) -> anyhow::Result<String> {
    let slug = match &common.org {
        Some(org) => {
            known_organisation(&app.config, org)?;
            org.clone()
        }
        None => only_organisation(&app.config)?,
    };
    app.organisation(&slug).await?;
    Ok(slug)
}

fn email(text: &str) -> anyhow::Result<Email> {
    Email::parse(text).map_err(|e| anyhow::anyhow!("`{text}`: {e}"))
}

fn team_key(text: &str) -> anyhow::Result<TeamKey> {
    TeamKey::parse(text).ok_or_else(|| anyhow::anyhow!("a team key cannot be empty"))
}

/// A value given on the command line, on one line; `None` when nothing is left.
fn value(text: Option<&str>) -> Option<String> {
    text.and_then(crate::domain::non_empty)
}

/// Prints the outcome of a change: a sentence, or JSON with `changed` and the sentence.
fn done(format: Format, changed: bool, sentence: &str) {
    match format {
        Format::Text => outln!("{sentence}"),
        Format::Json => outln!("{}", json!({ "changed": changed, "message": sentence })),
    }
}

pub async fn accounts(app: &App, command: AccountsCommand) -> anyhow::Result<ExitCode> {
    match command {
        AccountsCommand::Add(args) => add(app, args).await?,
        AccountsCommand::Edit(args) => edit(app, args).await?,
        AccountsCommand::Suspend { email, common } => {
            membership(app, MembershipAction::Suspend, &email, &common).await?
        }
        AccountsCommand::Unsuspend { email, common } => {
            membership(app, MembershipAction::LiftSuspension, &email, &common).await?
        }
        AccountsCommand::Remove { email, common } => {
            membership(app, MembershipAction::Remove, &email, &common).await?
        }
        AccountsCommand::History {
            email: address,
            format,
        } => {
            let person = email(&address)?;
            let Some(account) = app.store.account_id(&person).await? else {
                anyhow::bail!("there is no account with the address `{person}`");
            };
            let events = app.store.audit_of_account(account).await?;
            match format {
                Format::Text => out!("{}", report::audit_table(&events)),
                Format::Json => outln!("{}", report::audit_json(&events)),
            }
        }
    }
    Ok(ExitCode::Success)
}

/// `accounts add`.
async fn add(app: &App, a: AddArgs) -> anyhow::Result<()> {
    let org = organisation(app, &a.common).await?;
    let person = NewPerson {
        organisation: org.clone(),
        email: email(&a.email)?,
        first_name: value(a.first_name.as_deref()),
        last_name: value(a.last_name.as_deref()),
        display_name: value(a.display_name.as_deref()),
        job_title: value(a.job_title.as_deref()),
        location: value(a.location.as_deref()),
        employment_type: value(a.employment_type.as_deref()),
        roles: a.roles.iter().filter_map(|r| value(Some(r))).collect(),
        teams: a
            .teams
            .iter()
            .map(|t| team_key(t))
            .collect::<Result<_, _>>()?,
        send_invite: !a.no_invite,
    };
    let added = app
        .store
        .add_person(&person, &actor(a.common.by.as_deref())?, chrono::Utc::now())
        .await?;
    let how = if added.linked {
        "Linked the existing account of"
    } else {
        "Added"
    };
    let mail = match added.mail {
        Some("activation") => "; the activation email is queued",
        Some(_) => "; a notice that they were added is queued",
        None => "; no email was sent (`invite resend` sends the activation email)",
    };
    let sentence = format!(
        "{how} {} to {org} as {}{mail}.",
        person.email,
        added.state.as_str()
    );
    match a.common.format {
        Format::Text => outln!("{sentence}"),
        Format::Json => outln!(
            "{}",
            json!({
                "changed": true,
                "account_id": added.account_id,
                "linked": added.linked,
                "state": added.state.as_str(),
                "mail": added.mail,
                "message": sentence,
            })
        ),
    }
    if added.mail.is_some() {
        let drained = app.drain_outbox().await?;
        app.progress.report(crate::domain::Step::Done);
        errln!("{}", super::mail_summary(app, &drained));
    }
    Ok(())
}

/// `accounts edit`.
async fn edit(app: &App, a: EditArgs) -> anyhow::Result<()> {
    let person = email(&a.email)?;
    let org = organisation_for(app, &a.common, &person).await?;
    let mut edits = Vec::new();
    for pair in &a.set {
        let (name, text) = pair.split_once('=').ok_or_else(|| {
            anyhow::anyhow!("`--set {pair}`: write FIELD=VALUE, such as job_title=Nurse")
        })?;
        edits.push((field(name)?, value(Some(text))));
    }
    for name in &a.clear {
        edits.push((field(name)?, None));
    }
    if edits.is_empty() {
        return Err(super::UsageError(
            "nothing to change: give --set FIELD=VALUE or --clear FIELD".to_string(),
        )
        .into());
    }
    let owners = app.config.field_owners();
    let who = actor(a.common.by.as_deref())?;
    let edited = app
        .store
        .edit_person(&org, &person, &edits, &owners, &who, chrono::Utc::now())
        .await?;
    match a.common.format {
        Format::Text if edited.is_empty() => {
            outln!("Nothing changed: {person} has those values already.")
        }
        Format::Text => {
            for e in &edited {
                outln!(
                    "{}: {} → {}",
                    e.field.as_str(),
                    e.old.as_deref().unwrap_or("(empty)"),
                    e.new.as_deref().unwrap_or("(empty)")
                );
            }
        }
        Format::Json => {
            let fields: Vec<_> = edited
                .iter()
                .map(|e| json!({ "field": e.field.as_str(), "old": e.old, "new": e.new }))
                .collect();
            outln!(
                "{}",
                json!({ "changed": !edited.is_empty(), "fields": fields })
            );
        }
    }
    if edited.iter().any(|e| e.field == Field::Email) {
        let drained = app.drain_outbox().await?;
        app.progress.report(crate::domain::Step::Done);
        errln!("{}", super::mail_summary(app, &drained));
    }
    Ok(())
}

/// `accounts suspend`, `unsuspend` and `remove`.
async fn membership(
    app: &App,
    action: MembershipAction,
    address: &str,
    common: &Common,
) -> anyhow::Result<()> {
    let person = email(address)?;
    let org = organisation_for(app, common, &person).await?;
    let who = actor(common.by.as_deref())?;
    let changed = app
        .store
        .change_membership(&org, &person, action, &who, chrono::Utc::now())
        .await?;
    let sentence = match (action, changed) {
        (MembershipAction::Suspend, true) => format!(
            "Suspended {person} in {org}: they cannot log in through it until the suspension is lifted."
        ),
        (MembershipAction::Suspend, false) => format!("{person} is suspended in {org} already."),
        (MembershipAction::LiftSuspension, true) => {
            format!("Lifted the suspension of {person} in {org}.")
        }
        (MembershipAction::LiftSuspension, false) => format!("{person} is not suspended in {org}."),
        (MembershipAction::Remove, _) => format!(
            "Removed {person} from {org}, with their teams and roles there; the account stays."
        ),
    };
    done(common.format, changed, &sentence);
    Ok(())
}

fn field(name: &str) -> anyhow::Result<Field> {
    Field::parse(name.trim())
        .filter(|f| locks::EDITABLE.contains(f))
        .ok_or_else(|| {
            let known: Vec<&str> = locks::EDITABLE.iter().map(|f| f.as_str()).collect();
            anyhow::anyhow!("no field `{name}` to edit; fields: {}", known.join(", "))
        })
}

pub async fn teams(app: &App, command: TeamsCommand) -> anyhow::Result<ExitCode> {
    let now = chrono::Utc::now();
    let (key, address, role, adding, common) = match command {
        TeamsCommand::List { common } => {
            let org = organisation(app, &common).await?;
            let teams = app.store.list_teams(&org).await?;
            match common.format {
                Format::Text => out!("{}", report::teams_table(&teams)),
                Format::Json => outln!("{}", report::teams_json(&teams)),
            }
            return Ok(ExitCode::Success);
        }
        TeamsCommand::Create { key, name, common } => {
            let org = organisation(app, &common).await?;
            let key = team_key(&key)?;
            let name = value(name.as_deref()).unwrap_or_else(|| key.to_string());
            app.store
                .create_team(&org, &key, &name, &actor(common.by.as_deref())?, now)
                .await?;
            done(
                common.format,
                true,
                &format!("Created team `{key}` ({name}) in {org}."),
            );
            return Ok(ExitCode::Success);
        }
        TeamsCommand::AddMember { key, email, common } => {
            (key, email, TeamRole::Member, true, common)
        }
        TeamsCommand::AddCoach { key, email, common } => {
            (key, email, TeamRole::Coach, true, common)
        }
        TeamsCommand::RemoveMember { key, email, common } => {
            (key, email, TeamRole::Member, false, common)
        }
        TeamsCommand::RemoveCoach { key, email, common } => {
            (key, email, TeamRole::Coach, false, common)
        }
    };
    let person = email(&address)?;
    let org = organisation_for(app, &common, &person).await?;
    let key = team_key(&key)?;
    let who = actor(common.by.as_deref())?;
    let role_name = role.as_str();
    let (changed, sentence) = if adding {
        let changed = app
            .store
            .add_team_link(&org, &key, &person, role, &who, now)
            .await?;
        let sentence = if changed {
            format!("Made {person} {role_name} of team `{key}` in {org}.")
        } else {
            format!("{person} is {role_name} of team `{key}` already.")
        };
        (changed, sentence)
    } else {
        let changed = app
            .store
            .remove_team_link(&org, &key, &person, role, &who, now)
            .await?;
        let sentence = if changed {
            format!("{person} is no longer {role_name} of team `{key}` in {org}.")
        } else {
            format!("{person} is not {role_name} of team `{key}`.")
        };
        (changed, sentence)
    };
    done(common.format, changed, &sentence);
    Ok(ExitCode::Success)
}

/// `roles grant` and `roles revoke`.
async fn change_role(
    app: &App,
    address: &str,
    role: &str,
    grant: bool,
    common: &Common,
) -> anyhow::Result<()> {
    let person = email(address)?;
    let org = organisation_for(app, common, &person).await?;
    let role = value(Some(role)).ok_or_else(|| anyhow::anyhow!("a role needs a name"))?;
    let who = actor(common.by.as_deref())?;
    let changed = app
        .store
        .change_role(&org, &person, &role, grant, &who, chrono::Utc::now())
        .await?;
    let sentence = match (grant, changed) {
        (true, true) => {
            format!("Granted role `{role}` to {person} in {org}, by hand: no sync revokes it.")
        }
        (true, false) => format!("{person} holds role `{role}` in {org} already."),
        (false, true) => format!("Revoked role `{role}` of {person} in {org}."),
        (false, false) => format!("{person} does not hold role `{role}` in {org}."),
    };
    done(common.format, changed, &sentence);
    Ok(())
}

pub async fn roles(app: &App, command: RolesCommand) -> anyhow::Result<ExitCode> {
    match command {
        RolesCommand::List { common } => {
            let org = organisation(app, &common).await?;
            let roles = app.store.list_roles(&org).await?;
            match common.format {
                Format::Text => out!("{}", report::roles_table(&roles)),
                Format::Json => outln!("{}", report::roles_json(&roles)),
            }
        }
        RolesCommand::Grant {
            email: address,
            role,
            common,
        } => change_role(app, &address, &role, true, &common).await?,
        RolesCommand::Revoke {
            email: address,
            role,
            common,
        } => change_role(app, &address, &role, false, &common).await?,
    }
    Ok(ExitCode::Success)
}

/// `invite resend`: a new activation email, sent at once; the earlier link stops working.
pub async fn resend_invite(
    app: &App,
    email: &str,
    org: Option<String>,
    by: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let email = Email::parse(email).map_err(|e| anyhow::anyhow!("{e}"))?;
    let org = organisation_of_person(app, org.as_deref(), &email).await?;
    app.store
        .queue_activation_resend(&org, email.key(), chrono::Utc::now())
        .await?;
    let actor = actor(by)?;
    let entry = crate::store::AuditEntry {
        organisation: Some(&org),
        email: Some(&email),
        ..crate::store::AuditEntry::new(&actor, crate::domain::AuditAction::InviteResend)
    };
    app.store.record_audit(&entry, chrono::Utc::now()).await?;
    let drained = app.drain_outbox().await?;
    app.progress.report(crate::domain::Step::Done);
    outln!(
        "A new activation email for {email} in {org} was queued; the earlier link no longer works."
    );
    errln!("{}", super::mail_summary(app, &drained));
    Ok(ExitCode::Success)
}

/// `audit`: the trail, oldest first, as a table, JSON or CSV.
pub async fn audit(
    app: &App,
    after: i64,
    limit: i64,
    format: super::TableFormat,
) -> anyhow::Result<ExitCode> {
    let events = app
        .store
        .audit_trail(after, limit.clamp(1, 100_000))
        .await?;
    match format {
        super::TableFormat::Table => out!("{}", report::audit_table(&events)),
        super::TableFormat::Json => outln!("{}", report::audit_json(&events)),
        super::TableFormat::Csv => out!("{}", report::audit_csv(&events)?),
    }
    Ok(ExitCode::Success)
}

/// `users`: the accounts the filter selects, in the format asked for; a JSON or CSV export of
/// them is kept in the audit trail.
pub async fn users(
    app: &App,
    filter: &crate::store::UserFilter,
    format: super::TableFormat,
) -> anyhow::Result<ExitCode> {
    let users = app.store.list_users(filter).await?;
    let kind = match format {
        super::TableFormat::Table => {
            out!("{}", report::users_table(&users));
            None
        }
        super::TableFormat::Json => {
            outln!("{}", report::users_json(&users));
            Some("json")
        }
        super::TableFormat::Csv => {
            out!("{}", report::users_csv(&users)?);
            Some("csv")
        }
    };
    if let Some(kind) = kind {
        let who = actor(None)?;
        let rows = users.len().to_string();
        let entry = crate::store::AuditEntry {
            organisation: filter.organisation.as_deref(),
            subject: Some(kind),
            new_value: Some(&rows),
            ..crate::store::AuditEntry::new(&who, crate::domain::AuditAction::Export)
        };
        app.store.record_audit(&entry, chrono::Utc::now()).await?;
    }
    Ok(ExitCode::Success)
}

/// Notes the runs a command line started in the audit trail, under the user running it (when
/// one can be named; a run is never refused for want of a name).
pub async fn note_runs(
    app: &App,
    outcomes: &[crate::sync::RunOutcome],
    mode: crate::domain::RunMode,
) {
    let Ok(who) = actor(None) else {
        return;
    };
    for outcome in outcomes {
        let s = &outcome.report.summary;
        let entry = crate::store::AuditEntry {
            organisation: Some(&s.organisation),
            run_id: Some(s.id),
            subject: Some(&s.connector),
            new_value: Some(mode.as_str()),
            ..crate::store::AuditEntry::new(&who, crate::domain::AuditAction::RunStart)
        };
        if let Err(e) = app.store.record_audit(&entry, chrono::Utc::now()).await {
            tracing::warn!(error = %e, "Could not note the run in the audit trail");
        }
    }
}
