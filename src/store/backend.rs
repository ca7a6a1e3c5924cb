// The store's statements, written once and compiled once per backend: `mod sqlite` and
// `mod postgres` in `store/mod.rs` include this file with their own `Db` and `POSTGRES`.
// Placeholders are `$1`, `$2`, … which both SQLite and PostgreSQL accept.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use sqlx::{Pool, QueryBuilder, Row, Transaction};

use crate::domain::{
    Account, AccountId, ChangeLine, Directory, Email, EmployeeId, FetchKind, Grant, HrRecord,
    Membership, MembershipId, MembershipState, RunError, RunMode, RunReport, RunStatus, RunSummary,
    Team, TeamId, TeamKey, TeamLink, Trigger,
};
use crate::planner::{AccountRef, Action, Change, Field, Notice, Plan, TeamRef, Update};

use super::{
    Applied, ApplyRun, DIGEST_KIND, Doing, FeedState, FeedUpdate, MailProblem, NewRun,
    OrganisationRow, OutboxMail, OutboxStats, Result, RunEnd, StoreError, TokenState, UserFilter,
    UserRow, counts_map,
};

type DbRow = <Db as sqlx::Database>::Row;
type Tx<'c> = Transaction<'c, Db>;

/// Rows per multi-row statement: well under both backends' limits on bound parameters.
const CHUNK: usize = 500;

/// Starts a transaction that will write. On SQLite it takes the write lock at once (`BEGIN
/// IMMEDIATE`): a deferred transaction that reads and then writes fails with "database is
/// locked" (`SQLITE_BUSY_SNAPSHOT`) when another connection wrote in between, whatever the busy
/// timeout, while an immediate one waits its turn. The daemon's mail worker, its runs and its
/// HTTP handlers write to one SQLite file at the same time.
async fn begin_write(pool: &Pool<Db>, doing: &'static str) -> Result<Tx<'static>> {
    if POSTGRES {
        pool.begin().await
    } else {
        pool.begin_with("BEGIN IMMEDIATE").await
    }
    .doing(doing)
}

/// Binds every value as a comma-separated list, for `IN (…)`.
fn push_binds<'a, T>(qb: &mut QueryBuilder<'a, Db>, values: impl IntoIterator<Item = T>)
where
    T: 'a + sqlx::Encode<'a, Db> + sqlx::Type<Db>,
{
    let mut list = qb.separated(", ");
    for value in values {
        list.push_bind(value);
    }
}

fn corrupt(what: impl Into<String>) -> StoreError {
    StoreError::Corrupt(what.into())
}

fn get<'r, T>(row: &'r DbRow, column: &str) -> Result<T>
where
    T: sqlx::Decode<'r, Db> + sqlx::Type<Db>,
{
    row.try_get(column).doing("reading a row")
}

pub(super) async fn upsert_organisation(
    pool: &Pool<Db>,
    slug: &str,
    name: &str,
    time_zone: &str,
    locale: &str,
    now: DateTime<Utc>,
) -> Result<OrganisationRow> {
    sqlx::query(
        "INSERT INTO organisations (slug, name, time_zone, locale, created_at) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (slug) DO UPDATE SET name = excluded.name, \
         time_zone = excluded.time_zone, locale = excluded.locale",
    )
    .bind(slug)
    .bind(name)
    .bind(time_zone)
    .bind(locale)
    .bind(now)
    .execute(pool)
    .await
    .doing("saving the organisation")?;
    let row = sqlx::query("SELECT id, slug, name, locale FROM organisations WHERE slug = $1")
        .bind(slug)
        .fetch_one(pool)
        .await
        .doing("reading the organisation")?;
    Ok(OrganisationRow {
        id: get(&row, "id")?,
        slug: get(&row, "slug")?,
        name: get(&row, "name")?,
        locale: get(&row, "locale")?,
    })
}

const ACCOUNT_COLUMNS: &str =
    "a.id, a.email, a.first_name, a.last_name, a.display_name, a.activated_at";

fn account_from(row: &DbRow) -> Result<Account> {
    let email: String = get(row, "email")?;
    Ok(Account {
        id: AccountId(get(row, "id")?),
        email: Email::parse(&email).map_err(|e| corrupt(format!("account email: {e}")))?,
        first_name: get(row, "first_name")?,
        last_name: get(row, "last_name")?,
        display_name: get(row, "display_name")?,
        activated_at: get(row, "activated_at")?,
        profile_owner: None,
        profile_owner_membership: None,
    })
}

fn connector_of(text: Option<String>) -> Option<crate::domain::ConnectorId> {
    text.as_deref().and_then(crate::domain::ConnectorId::parse)
}

pub(super) async fn load_directory(
    pool: &Pool<Db>,
    organisation_id: i64,
    emails: &[String],
) -> Result<Directory> {
    let mut accounts: BTreeMap<i64, Account> = BTreeMap::new();
    let rows = sqlx::query(&format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts a \
         JOIN memberships m ON m.account_id = a.id WHERE m.organisation_id = $1"
    ))
    .bind(organisation_id)
    .fetch_all(pool)
    .await
    .doing("loading the organisation's accounts")?;
    for row in &rows {
        let a = account_from(row)?;
        accounts.insert(a.id.0, a);
    }
    // Each row set is dropped once decoded, so only one is held at a time.
    drop(rows);
    // Only the feed's addresses that are not members already can be new links.
    let known: std::collections::HashSet<&str> = accounts.values().map(|a| a.email.key()).collect();
    let emails: Vec<&str> = emails
        .iter()
        .map(String::as_str)
        .filter(|e| !known.contains(e))
        .collect();
    drop(known);
    let mut by_email_only: Vec<i64> = Vec::new();
    for chunk in emails.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Db>::new(format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts a WHERE a.email_norm IN ("
        ));
        push_binds(&mut qb, chunk.iter().copied());
        qb.push(")");
        let rows = qb
            .build()
            .fetch_all(pool)
            .await
            .doing("loading accounts by email")?;
        for row in &rows {
            let a = account_from(row)?;
            by_email_only.push(a.id.0);
            accounts.insert(a.id.0, a);
        }
    }

    // The connector of each account's oldest live managed membership, in any organisation,
    // keeps the account's profile: one query for the organisation's members, and batches for
    // the few accounts loaded by email only.
    let mut owners: Vec<DbRow> = sqlx::query(
        "SELECT o.id, o.account_id, o.connector_id FROM memberships m \
         JOIN memberships o ON o.account_id = m.account_id \
         WHERE m.organisation_id = $1 AND o.connector_id IS NOT NULL \
         AND o.state <> 'deactivated' ORDER BY o.id DESC",
    )
    .bind(organisation_id)
    .fetch_all(pool)
    .await
    .doing("loading who keeps each account's profile")?;
    for chunk in by_email_only.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Db>::new(
            "SELECT id, account_id, connector_id FROM memberships WHERE connector_id IS NOT NULL \
             AND state <> 'deactivated' AND account_id IN (",
        );
        push_binds(&mut qb, chunk.iter().copied());
        qb.push(") ORDER BY id DESC");
        owners.extend(
            qb.build()
                .fetch_all(pool)
                .await
                .doing("loading who keeps each account's profile")?,
        );
    }
    // Rows come newest first, so the oldest membership's connector is written last.
    for row in &owners {
        let id: i64 = get(row, "account_id")?;
        if let Some(account) = accounts.get_mut(&id) {
            account.profile_owner = connector_of(get(row, "connector_id")?);
            account.profile_owner_membership = Some(MembershipId(get(row, "id")?));
        }
    }
    drop(owners);

    let rows = sqlx::query(
        "SELECT id, account_id, state, connector_id, employee_id, job_title, location, \
         employment_type FROM memberships WHERE organisation_id = $1 ORDER BY id",
    )
    .bind(organisation_id)
    .fetch_all(pool)
    .await
    .doing("loading memberships")?;
    let mut memberships = Vec::with_capacity(rows.len());
    for row in &rows {
        let state: String = get(row, "state")?;
        let employee_id: Option<String> = get(row, "employee_id")?;
        memberships.push(Membership {
            id: MembershipId(get(row, "id")?),
            account_id: AccountId(get(row, "account_id")?),
            state: MembershipState::parse(&state)
                .ok_or_else(|| corrupt(format!("membership state `{state}`")))?,
            connector: connector_of(get(row, "connector_id")?),
            employee_id: employee_id.as_deref().and_then(EmployeeId::parse),
            job_title: get(row, "job_title")?,
            location: get(row, "location")?,
            employment_type: get(row, "employment_type")?,
        });
    }
    drop(rows);

    let rows = sqlx::query(
        "SELECT id, key, name, connector_id FROM teams WHERE organisation_id = $1 ORDER BY id",
    )
    .bind(organisation_id)
    .fetch_all(pool)
    .await
    .doing("loading teams")?;
    let mut teams = Vec::with_capacity(rows.len());
    for row in &rows {
        let key: String = get(row, "key")?;
        teams.push(Team {
            id: TeamId(get(row, "id")?),
            key: TeamKey::parse(&key).ok_or_else(|| corrupt("an empty team key"))?,
            name: get(row, "name")?,
            connector: connector_of(get(row, "connector_id")?),
        });
    }
    drop(rows);

    let links = |rows: Vec<DbRow>| -> Result<Vec<TeamLink>> {
        rows.iter()
            .map(|row| {
                Ok(TeamLink {
                    team_id: TeamId(get(row, "team_id")?),
                    account_id: AccountId(get(row, "account_id")?),
                    connector: connector_of(get(row, "connector_id")?),
                })
            })
            .collect()
    };
    let team_members = links(
        sqlx::query(
            "SELECT l.team_id, l.account_id, l.connector_id FROM team_members l \
             JOIN teams t ON t.id = l.team_id WHERE t.organisation_id = $1",
        )
        .bind(organisation_id)
        .fetch_all(pool)
        .await
        .doing("loading team members")?,
    )?;
    let coaches = links(
        sqlx::query(
            "SELECT l.team_id, l.account_id, l.connector_id FROM team_coaches l \
             JOIN teams t ON t.id = l.team_id WHERE t.organisation_id = $1",
        )
        .bind(organisation_id)
        .fetch_all(pool)
        .await
        .doing("loading coaches")?,
    )?;

    let rows = sqlx::query(
        "SELECT g.account_id, r.name, g.connector_id FROM role_grants g \
         JOIN roles r ON r.id = g.role_id WHERE r.organisation_id = $1",
    )
    .bind(organisation_id)
    .fetch_all(pool)
    .await
    .doing("loading role grants")?;
    let mut grants = Vec::with_capacity(rows.len());
    for row in &rows {
        grants.push(Grant {
            account_id: AccountId(get(row, "account_id")?),
            role: get(row, "name")?,
            connector: connector_of(get(row, "connector_id")?),
        });
    }

    Ok(Directory {
        accounts: accounts.into_values().collect(),
        memberships,
        teams,
        team_members,
        coaches,
        grants,
    })
}

pub(super) async fn start_run(pool: &Pool<Db>, run: &NewRun<'_>) -> Result<i64> {
    let row = sqlx::query(
        "INSERT INTO sync_runs (organisation_id, connector_id, trigger, mode, status, as_of, \
         started_at, scheduled_for) VALUES ($1, $2, $3, $4, 'running', $5, $6, $7) RETURNING id",
    )
    .bind(run.organisation_id)
    .bind(run.connector)
    .bind(run.trigger.as_str())
    .bind(run.mode.as_str())
    .bind(run.as_of)
    .bind(run.started_at)
    .bind(run.scheduled_for)
    .fetch_one(pool)
    .await
    .doing("recording the start of the run")?;
    get(&row, "id")
}

async fn insert_changes(tx: &mut Tx<'_>, run_id: i64, changes: &[Change]) -> Result<()> {
    for (n, chunk) in changes.chunks(CHUNK).enumerate() {
        let mut qb = QueryBuilder::<Db>::new(
            "INSERT INTO sync_changes (run_id, seq, kind, employee_id, email, field, \
             old_value, new_value, reason) ",
        );
        qb.push_values(chunk.iter().enumerate(), |mut b, (i, c)| {
            b.push_bind(run_id)
                .push_bind((n * CHUNK + i) as i32)
                .push_bind(c.kind.as_str())
                .push_bind(c.employee_id.as_ref().map(|e| e.as_str()))
                .push_bind(c.email.as_deref())
                .push_bind(c.field.as_deref())
                .push_bind(c.old.as_deref())
                .push_bind(c.new.as_deref())
                .push_bind(c.reason.as_str());
        });
        qb.build()
            .execute(&mut **tx)
            .await
            .doing("recording the run's changes")?;
    }
    Ok(())
}

/// How a run ends: its status, what it read, why it was held or failed, and who gets a digest.
struct Ending<'a> {
    status: RunStatus,
    records_fetched: usize,
    errors: &'a [RunError],
    digest_to: &'a [String],
    now: DateTime<Utc>,
}

/// Ends a run that is still running (or approves a held one): false, and nothing written, when
/// it is not, because another process ended it first (e.g. as abandoned, while its commit was
/// on its way).
async fn finish(tx: &mut Tx<'_>, run_id: i64, end: Ending<'_>) -> Result<bool> {
    let Ending {
        status,
        records_fetched,
        errors,
        digest_to,
        now,
    } = end;
    let ended = sqlx::query(
        "UPDATE sync_runs SET status = $1, finished_at = $2, records_fetched = $3 WHERE id = $4 \
         AND (status = 'running' OR (status = 'held' AND $1 = 'approved'))",
    )
    .bind(status.as_str())
    .bind(now)
    .bind(records_fetched as i64)
    .bind(run_id)
    .execute(&mut **tx)
    .await
    .doing("recording the end of the run")?
    .rows_affected();
    if ended == 0 {
        return Ok(false);
    }
    for (i, e) in errors.iter().enumerate() {
        sqlx::query("INSERT INTO sync_errors (run_id, seq, code, message) VALUES ($1, $2, $3, $4)")
            .bind(run_id)
            .bind(i as i32)
            .bind(e.code.as_str())
            .bind(e.message.as_str())
            .execute(&mut **tx)
            .await
            .doing("recording the run's errors")?;
    }
    // The admins' digest is queued with the end of the run, so it is sent once the run is
    // committed and never for a run that rolled back. Only applied runs (not dry runs) get one.
    for recipient in digest_to {
        sqlx::query(&format!(
            "INSERT INTO mail_outbox (organisation_id, account_id, run_id, kind, recipient, \
             created_at, attempts, next_attempt_at) \
             SELECT organisation_id, NULL, id, '{DIGEST_KIND}', $1, $2, 0, $2 FROM sync_runs \
             WHERE id = $3 AND mode = 'apply'"
        ))
        .bind(recipient)
        .bind(now)
        .bind(run_id)
        .execute(&mut **tx)
        .await
        .doing("queueing the run's digest")?;
    }
    Ok(true)
}

/// The error of a run that another process ended while it ran; its transaction rolls back.
fn ended_elsewhere(run_id: i64) -> StoreError {
    StoreError::Superseded(format!(
        "run {run_id} was ended by another process while it ran (see its report); nothing of it was applied"
    ))
}

pub(super) async fn end_run(pool: &Pool<Db>, run_id: i64, end: &RunEnd<'_>) -> Result<()> {
    let mut tx = begin_write(pool, "starting a transaction").await?;
    if let Some(plan) = end.plan {
        insert_changes(&mut tx, run_id, &plan.changes).await?;
    }
    finish(
        &mut tx,
        run_id,
        Ending {
            status: end.status,
            records_fetched: end.records_fetched,
            errors: end.errors,
            digest_to: end.digest_to,
            now: end.finished_at,
        },
    )
    .await?
    .then_some(())
    .ok_or_else(|| ended_elsewhere(run_id))?;
    tx.commit().await.doing("committing the run")
}

/// An email the applier queues; recipients of account mails are read after every account
/// write, so an activation goes to the address the account has at the end of the run.
struct Queued {
    account: i64,
    kind: &'static str,
    recipient: Option<String>,
    old_email: Option<String>,
    new_email: Option<String>,
}

fn account_column(field: Field) -> Result<&'static str> {
    match field {
        Field::FirstName => Ok("first_name"),
        Field::LastName => Ok("last_name"),
        Field::DisplayName => Ok("display_name"),
        other => Err(corrupt(format!(
            "`{}` is not an account field",
            other.as_str()
        ))),
    }
}

fn membership_column(field: Field) -> Result<&'static str> {
    match field {
        Field::JobTitle => Ok("job_title"),
        Field::Location => Ok("location"),
        Field::EmploymentType => Ok("employment_type"),
        other => Err(corrupt(format!(
            "`{}` is not a membership field",
            other.as_str()
        ))),
    }
}

/// Resolves the plan's account references once new accounts have ids.
struct Ids {
    new_accounts: HashMap<String, i64>,
    new_teams: HashMap<TeamKey, i64>,
}

impl Ids {
    fn account(&self, r: &AccountRef) -> Result<i64> {
        match r {
            AccountRef::Existing(id) => Ok(id.0),
            AccountRef::New(key) => self.new_accounts.get(key).copied().ok_or_else(|| {
                corrupt(format!(
                    "the plan refers to an account `{key}` it did not create"
                ))
            }),
        }
    }

    fn team(&self, r: &TeamRef) -> Result<i64> {
        match r {
            TeamRef::Existing(id) => Ok(id.0),
            TeamRef::New { key, .. } => self.new_teams.get(key).copied().ok_or_else(|| {
                corrupt(format!(
                    "the plan refers to a team `{key}` it did not create"
                ))
            }),
        }
    }
}

pub(super) async fn apply_plan(
    pool: &Pool<Db>,
    run: &ApplyRun<'_>,
    plan: &Plan,
) -> Result<Applied> {
    let ApplyRun {
        run_id,
        organisation,
        connector,
        status,
        records_fetched,
        missing_email,
        now,
        feed,
        digest_to: _,
    } = *run;
    let mut tx = begin_write(pool, "starting the apply transaction").await?;
    let mut queued: Vec<Queued> = Vec::new();
    let org = organisation.id;
    let actions = || plan.changes.iter().map(|c| &c.action);
    if status == RunStatus::Approved {
        // Only one approval applies a held run, even when two admins approve at once.
        let taken = sqlx::query(
            "UPDATE sync_runs SET approved_at = $1 WHERE id = $2 AND status = 'held' \
             AND approved_at IS NULL",
        )
        .bind(now)
        .bind(run_id)
        .execute(&mut *tx)
        .await
        .doing("approving the held run")?;
        if taken.rows_affected() != 1 {
            return Err(StoreError::NotFound(format!(
                "run {run_id} is no longer held; it was approved or replaced meanwhile"
            )));
        }
    }

    // Phase 1, accounts: email changes (through a temporary key, so that people who swap
    // addresses never collide), field updates, then new accounts.
    let mut moving: Vec<i64> = Vec::new();
    let mut new_emails: Vec<(i64, Option<&str>)> = Vec::new();
    let mut new_keys: Vec<(i64, Option<&str>)> = Vec::new();
    for action in actions() {
        if let Action::EmailChange {
            account,
            old,
            new,
            resend_activation,
        } = action
        {
            moving.push(account.0);
            new_emails.push((account.0, Some(new.as_str())));
            new_keys.push((account.0, Some(new.key())));
            queued.push(Queued {
                account: account.0,
                kind: "email_changed_old",
                recipient: Some(old.to_string()),
                old_email: Some(old.to_string()),
                new_email: Some(new.to_string()),
            });
            let (kind, old_email, new_email) = if *resend_activation {
                ("activation", None, None)
            } else {
                (
                    "email_changed_new",
                    Some(old.to_string()),
                    Some(new.to_string()),
                )
            };
            queued.push(Queued {
                account: account.0,
                kind,
                recipient: Some(new.to_string()),
                old_email,
                new_email,
            });
        }
    }
    for chunk in moving.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Db>::new(
            "UPDATE accounts SET email_norm = '#moving-' || CAST(id AS TEXT) WHERE id IN (",
        );
        push_binds(&mut qb, chunk.iter().copied());
        qb.push(")");
        qb.build()
            .execute(&mut *tx)
            .await
            .doing("changing email addresses")?;
    }
    set_column(&mut tx, "accounts", "email", &new_emails, Some(now)).await?;
    set_column(&mut tx, "accounts", "email_norm", &new_keys, Some(now)).await?;
    // Links sent to an old address stop working, in every organisation, whether or not a
    // new one is sent.
    revoke_tokens(&mut tx, &moving, None, now).await?;

    let mut account_fields: BTreeMap<&'static str, Vec<(i64, Option<&str>)>> = BTreeMap::new();
    let mut membership_fields: BTreeMap<&'static str, Vec<(i64, Option<&str>)>> = BTreeMap::new();
    let mut team_names: Vec<(i64, Option<&str>)> = Vec::new();
    for action in actions() {
        match action {
            Action::Update(Update::Account {
                account,
                field,
                value,
            }) => account_fields
                .entry(account_column(*field)?)
                .or_default()
                .push((account.0, value.as_deref())),
            Action::Update(Update::Membership {
                membership,
                field,
                value,
            }) => membership_fields
                .entry(membership_column(*field)?)
                .or_default()
                .push((membership.0, value.as_deref())),
            Action::Update(Update::EmployeeId { membership, value }) => membership_fields
                .entry("employee_id")
                .or_default()
                .push((membership.0, Some(value.as_str()))),
            Action::Reactivate {
                membership,
                employee_id,
                ..
            } => membership_fields
                .entry("employee_id")
                .or_default()
                .push((membership.0, Some(employee_id.as_str()))),
            Action::Update(Update::TeamName { team, name }) => {
                team_names.push((team.0, Some(name.as_str())))
            }
            _ => {}
        }
    }
    for (column, rows) in &account_fields {
        set_column(&mut tx, "accounts", column, rows, Some(now)).await?;
    }

    let invites: Vec<_> = actions()
        .filter_map(|a| match a {
            Action::Invite {
                account,
                membership,
                notice,
            } => Some((account, membership, notice)),
            _ => None,
        })
        .collect();
    let mut ids = Ids {
        new_accounts: HashMap::new(),
        new_teams: HashMap::new(),
    };
    for chunk in invites.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Db>::new(
            "INSERT INTO accounts (email, email_norm, first_name, last_name, display_name, \
             created_at, updated_at) ",
        );
        qb.push_values(chunk, |mut b, (account, _, _)| {
            b.push_bind(account.email.as_str())
                .push_bind(account.email.key())
                .push_bind(account.first_name.as_deref())
                .push_bind(account.last_name.as_deref())
                .push_bind(account.display_name.as_deref())
                .push_bind(now)
                .push_bind(now);
        });
        qb.push(" RETURNING id, email_norm");
        for row in qb
            .build()
            .fetch_all(&mut *tx)
            .await
            .doing("creating accounts")?
        {
            ids.new_accounts
                .insert(get(&row, "email_norm")?, get(&row, "id")?);
        }
    }

    // Phase 2, memberships: new ones, take-overs of memberships made by hand, reactivations,
    // then field updates.
    struct NewMembership<'p> {
        account: i64,
        state: MembershipState,
        fields: &'p crate::planner::MembershipFields,
    }
    let mut inserts: Vec<NewMembership<'_>> = Vec::new();
    let mut reactivated: BTreeMap<&'static str, Vec<i64>> = BTreeMap::new();
    for action in actions() {
        match action {
            Action::Invite {
                account,
                membership,
                notice,
            } => {
                let id = ids.account(&AccountRef::New(account.email.key().to_string()))?;
                inserts.push(NewMembership {
                    account: id,
                    state: MembershipState::Invited,
                    fields: membership,
                });
                queue_notice(&mut queued, id, *notice);
            }
            Action::Link {
                account,
                existing,
                membership,
                state,
                notice,
            } => {
                match existing {
                    None => inserts.push(NewMembership {
                        account: account.0,
                        state: *state,
                        fields: membership,
                    }),
                    // Rare: a membership made by hand that the connector takes over.
                    Some(m) => {
                        sqlx::query(
                            "UPDATE memberships SET connector_id = $1, employee_id = $2, \
                             state = $3, deactivated_at = NULL, updated_at = $4 WHERE id = $5",
                        )
                        .bind(connector)
                        .bind(membership.employee_id.as_str())
                        .bind(state.as_str())
                        .bind(now)
                        .bind(m.0)
                        .execute(&mut *tx)
                        .await
                        .doing("taking over a membership")?;
                    }
                }
                queue_notice(&mut queued, account.0, *notice);
            }
            Action::Reactivate {
                membership,
                account,
                state,
                notice,
                ..
            } => {
                reactivated
                    .entry(state.as_str())
                    .or_default()
                    .push(membership.0);
                queue_notice(&mut queued, account.0, *notice);
            }
            _ => {}
        }
    }
    for (state, memberships) in &reactivated {
        for chunk in memberships.chunks(CHUNK) {
            let mut qb = QueryBuilder::<Db>::new("UPDATE memberships SET state = ");
            qb.push_bind(*state)
                .push(", deactivated_at = NULL, updated_at = ")
                .push_bind(now)
                .push(" WHERE id IN (");
            push_binds(&mut qb, chunk.iter().copied());
            qb.push(")");
            qb.build()
                .execute(&mut *tx)
                .await
                .doing("reactivating memberships")?;
        }
    }
    for (column, rows) in &membership_fields {
        set_column(&mut tx, "memberships", column, rows, Some(now)).await?;
    }
    for chunk in inserts.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Db>::new(
            "INSERT INTO memberships (organisation_id, account_id, state, connector_id, \
             employee_id, job_title, location, employment_type, created_at, updated_at) ",
        );
        qb.push_values(chunk, |mut b, m| {
            b.push_bind(org)
                .push_bind(m.account)
                .push_bind(m.state.as_str())
                .push_bind(connector)
                .push_bind(m.fields.employee_id.as_str())
                .push_bind(m.fields.job_title.as_deref())
                .push_bind(m.fields.location.as_deref())
                .push_bind(m.fields.employment_type.as_deref())
                .push_bind(now)
                .push_bind(now);
        });
        qb.build()
            .execute(&mut *tx)
            .await
            .doing("creating memberships")?;
    }

    // Phase 3, teams and coaches: new teams, renames, leaves before joins.
    let mut new_teams: BTreeMap<&TeamKey, &str> = BTreeMap::new();
    for action in actions() {
        if let Action::TeamJoin {
            team: TeamRef::New { key, name },
            ..
        }
        | Action::CoachAssign {
            team: TeamRef::New { key, name },
            ..
        } = action
        {
            new_teams.entry(key).or_insert(name);
        }
    }
    let new_teams: Vec<_> = new_teams.into_iter().collect();
    for chunk in new_teams.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Db>::new(
            "INSERT INTO teams (organisation_id, connector_id, key, name, created_at) ",
        );
        qb.push_values(chunk, |mut b, (key, name)| {
            b.push_bind(org)
                .push_bind(connector)
                .push_bind(key.as_str())
                .push_bind(*name)
                .push_bind(now);
        });
        qb.push(" RETURNING id, key");
        for row in qb
            .build()
            .fetch_all(&mut *tx)
            .await
            .doing("creating teams")?
        {
            let key: String = get(&row, "key")?;
            let key = TeamKey::parse(&key).ok_or_else(|| corrupt("an empty team key"))?;
            ids.new_teams.insert(key, get(&row, "id")?);
        }
    }
    set_column(&mut tx, "teams", "name", &team_names, None).await?;
    let mut leaves: Vec<(i64, i64)> = Vec::new();
    let mut unassigns: Vec<(i64, i64)> = Vec::new();
    let mut joins: Vec<(i64, i64)> = Vec::new();
    let mut coach_joins: Vec<(i64, i64)> = Vec::new();
    for action in actions() {
        match action {
            Action::TeamLeave { account, team } => leaves.push((team.0, account.0)),
            Action::CoachUnassign { account, team } => unassigns.push((team.0, account.0)),
            Action::TeamJoin { account, team } => {
                joins.push((ids.team(team)?, ids.account(account)?))
            }
            Action::CoachAssign { account, team } => {
                coach_joins.push((ids.team(team)?, ids.account(account)?))
            }
            _ => {}
        }
    }
    delete_links(&mut tx, "team_members", "team_id", &leaves, connector).await?;
    delete_links(&mut tx, "team_coaches", "team_id", &unassigns, connector).await?;
    for (table, rows) in [("team_members", &joins), ("team_coaches", &coach_joins)] {
        insert_links(&mut tx, table, "team_id", rows, connector, now).await?;
    }

    // Phase 4, roles: make the roles the grants need, revoke, then grant.
    let mut role_names: BTreeSet<&str> = BTreeSet::new();
    for action in actions() {
        if let Action::RoleGrant { role, .. } = action {
            role_names.insert(role);
        }
    }
    let role_names: Vec<&str> = role_names.into_iter().collect();
    for chunk in role_names.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Db>::new("INSERT INTO roles (organisation_id, name) ");
        qb.push_values(chunk, |mut b, name| {
            b.push_bind(org).push_bind(*name);
        });
        qb.push(" ON CONFLICT (organisation_id, name) DO NOTHING");
        qb.build().execute(&mut *tx).await.doing("creating roles")?;
    }
    let mut role_ids: HashMap<String, i64> = HashMap::new();
    for row in sqlx::query("SELECT id, name FROM roles WHERE organisation_id = $1")
        .bind(org)
        .fetch_all(&mut *tx)
        .await
        .doing("reading roles")?
    {
        role_ids.insert(get(&row, "name")?, get(&row, "id")?);
    }
    let role_id = |name: &str| {
        role_ids
            .get(name)
            .copied()
            .ok_or_else(|| corrupt(format!("role `{name}` does not exist")))
    };
    let mut revokes: Vec<(i64, i64)> = Vec::new();
    let mut grants: Vec<(i64, i64)> = Vec::new();
    for action in actions() {
        match action {
            Action::RoleRevoke { account, role } => {
                if let Some(&rid) = role_ids.get(role.as_str()) {
                    revokes.push((rid, account.0));
                }
            }
            Action::RoleGrant { account, role } => {
                grants.push((role_id(role)?, ids.account(account)?))
            }
            _ => {}
        }
    }
    delete_links(&mut tx, "role_grants", "role_id", &revokes, connector).await?;
    insert_links(&mut tx, "role_grants", "role_id", &grants, connector, now).await?;

    // Phase 5, deactivations: the membership closes and its pending links stop working;
    // nothing is deleted.
    let mut closing: Vec<i64> = Vec::new();
    let mut closing_accounts: Vec<i64> = Vec::new();
    for action in actions() {
        if let Action::Deactivate {
            membership,
            account,
        } = action
        {
            closing.push(membership.0);
            closing_accounts.push(account.0);
        }
    }
    for chunk in closing.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Db>::new(
            "UPDATE memberships SET state = 'deactivated', deactivated_at = ",
        );
        qb.push_bind(now)
            .push(", updated_at = ")
            .push_bind(now)
            .push(" WHERE id IN (");
        push_binds(&mut qb, chunk.iter().copied());
        qb.push(")");
        qb.build()
            .execute(&mut *tx)
            .await
            .doing("deactivating memberships")?;
    }
    revoke_tokens(&mut tx, &closing_accounts, org, now).await?;

    // Phase 6, the outbox and the report, in the same transaction.
    let mails = queue_mails(&mut tx, org, run_id, &queued, now).await?;
    // An approved run was stored with its planned changes when it was held; what was applied
    // replaces them (planning again gave the same changes, with fresh reasons).
    sqlx::query("DELETE FROM sync_changes WHERE run_id = $1")
        .bind(run_id)
        .execute(&mut *tx)
        .await
        .doing("replacing the held run's changes")?;
    insert_changes(&mut tx, run_id, &plan.changes).await?;
    finish(
        &mut tx,
        run_id,
        Ending {
            status,
            records_fetched,
            errors: &[],
            digest_to: run.digest_to,
            now,
        },
    )
    .await?
    .then_some(())
    .ok_or_else(|| ended_elsewhere(run_id))?;
    sqlx::query(
        "INSERT INTO connector_state (connector_id, last_good_run_id, last_good_records, \
         last_good_missing_email, updated_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (connector_id) DO UPDATE SET \
         last_good_run_id = excluded.last_good_run_id, \
         last_good_records = excluded.last_good_records, \
         last_good_missing_email = excluded.last_good_missing_email, \
         updated_at = excluded.updated_at",
    )
    .bind(connector)
    .bind(run_id)
    .bind(records_fetched as i64)
    .bind(missing_email as i64)
    .bind(now)
    .execute(&mut *tx)
    .await
    .doing("recording the connector's last good feed")?;
    match feed {
        Some(feed) => keep_feed(&mut tx, connector, &feed).await?,
        // A connector that read everything this time keeps no records: should it fetch
        // incrementally again later, it starts from a full fetch, not from what it knew then.
        None => forget_feed(&mut tx, connector).await?,
    }
    tx.commit().await.doing("committing the run")?;
    Ok(Applied {
        accounts_created: ids.new_accounts.len(),
        mails_queued: mails,
    })
}

/// Sets one text column of many rows in a few statements:
/// `UPDATE table SET column = CASE id WHEN … THEN … END WHERE id IN (…)`.
/// `table` and `column` are the store's own constants, never input.
async fn set_column(
    tx: &mut Tx<'_>,
    table: &'static str,
    column: &'static str,
    rows: &[(i64, Option<&str>)],
    updated_at: Option<DateTime<Utc>>,
) -> Result<()> {
    for chunk in rows.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Db>::new(format!("UPDATE {table} SET {column} = CASE id"));
        for (id, value) in chunk {
            qb.push(" WHEN ")
                .push_bind(*id)
                .push(" THEN ")
                .push_bind(*value);
        }
        qb.push(" END");
        if let Some(at) = updated_at {
            qb.push(", updated_at = ").push_bind(at);
        }
        qb.push(" WHERE id IN (");
        push_binds(&mut qb, chunk.iter().map(|(id, _)| *id));
        qb.push(")");
        qb.build()
            .execute(&mut **tx)
            .await
            .doing("updating fields")?;
    }
    Ok(())
}

/// Keeps an incremental connector's feed (only the employee ids whose records changed are
/// written) and moves its watermark.
async fn keep_feed(tx: &mut Tx<'_>, connector: &str, feed: &FeedUpdate<'_>) -> Result<()> {
    let rows =
        sqlx::query("SELECT employee_id, records FROM connector_records WHERE connector_id = $1")
            .bind(connector)
            .fetch_all(&mut **tx)
            .await
            .doing("reading the connector's known records")?;
    let mut known: HashMap<String, String> = HashMap::with_capacity(rows.len());
    for row in &rows {
        known.insert(get(row, "employee_id")?, get(row, "records")?);
    }
    let groups = super::snapshot::by_employee(feed.records);
    let mut changed: Vec<(&str, String)> = Vec::new();
    for (employee_id, records) in &groups {
        let text = super::snapshot::encode(records);
        if known.get(*employee_id) != Some(&text) {
            changed.push((employee_id, text));
        }
    }
    let gone: Vec<&String> = known
        .keys()
        .filter(|id| !groups.contains_key(id.as_str()))
        .collect();
    for chunk in changed.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Db>::new(
            "INSERT INTO connector_records (connector_id, employee_id, records) ",
        );
        qb.push_values(chunk, |mut b, (employee_id, text)| {
            b.push_bind(connector)
                .push_bind(*employee_id)
                .push_bind(text.as_str());
        });
        qb.push(
            " ON CONFLICT (connector_id, employee_id) DO UPDATE SET records = excluded.records",
        );
        qb.build()
            .execute(&mut **tx)
            .await
            .doing("keeping the connector's records")?;
    }
    for chunk in gone.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Db>::new("DELETE FROM connector_records WHERE connector_id = ");
        qb.push_bind(connector).push(" AND employee_id IN (");
        push_binds(&mut qb, chunk.iter().map(|s| s.as_str()));
        qb.push(")");
        qb.build()
            .execute(&mut **tx)
            .await
            .doing("forgetting records the feed no longer has")?;
    }
    // The watermark column is text on both backends.
    let watermark = feed.watermark.to_rfc3339();
    let moved = if feed.full {
        sqlx::query(
            "UPDATE connector_state SET watermark = $1, last_full_at = $2, incremental_runs = 0, \
             feed_fingerprint = $3 WHERE connector_id = $4",
        )
        .bind(watermark)
        .bind(feed.watermark)
        .bind(feed.fingerprint)
        .bind(connector)
    } else {
        sqlx::query(
            "UPDATE connector_state SET watermark = $1, incremental_runs = incremental_runs + 1 \
             WHERE connector_id = $2",
        )
        .bind(watermark)
        .bind(connector)
    };
    moved
        .execute(&mut **tx)
        .await
        .doing("moving the connector's watermark")?;
    Ok(())
}

/// Drops what an incremental connector knew, so its next incremental fetch starts in full.
async fn forget_feed(tx: &mut Tx<'_>, connector: &str) -> Result<()> {
    sqlx::query("DELETE FROM connector_records WHERE connector_id = $1")
        .bind(connector)
        .execute(&mut **tx)
        .await
        .doing("forgetting the connector's known records")?;
    sqlx::query(
        "UPDATE connector_state SET watermark = NULL, last_full_at = NULL, incremental_runs = 0, \
         feed_fingerprint = NULL WHERE connector_id = $1 AND watermark IS NOT NULL",
    )
    .bind(connector)
    .execute(&mut **tx)
    .await
    .doing("clearing the connector's watermark")?;
    Ok(())
}

/// Adds team member, coach or role grant rows made by the connector.
async fn insert_links(
    tx: &mut Tx<'_>,
    table: &'static str,
    first: &'static str,
    rows: &[(i64, i64)],
    connector: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    for chunk in rows.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Db>::new(format!(
            "INSERT INTO {table} ({first}, account_id, connector_id, created_at) "
        ));
        qb.push_values(chunk, |mut b, (target, account)| {
            b.push_bind(*target)
                .push_bind(*account)
                .push_bind(connector)
                .push_bind(now);
        });
        qb.build()
            .execute(&mut **tx)
            .await
            .doing("adding team members, coaches and roles")?;
    }
    Ok(())
}

/// Removes team member, coach or role grant rows, only those the connector made.
async fn delete_links(
    tx: &mut Tx<'_>,
    table: &'static str,
    first: &'static str,
    rows: &[(i64, i64)],
    connector: &str,
) -> Result<()> {
    for chunk in rows.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Db>::new(format!("DELETE FROM {table} WHERE connector_id = "));
        qb.push_bind(connector)
            .push(format!(" AND ({first}, account_id) IN (VALUES "));
        let mut list = qb.separated(", ");
        for (target, account) in chunk {
            list.push("(")
                .push_bind_unseparated(*target)
                .push_unseparated(", ")
                .push_bind_unseparated(*account)
                .push_unseparated(")");
        }
        qb.push(")");
        qb.build()
            .execute(&mut **tx)
            .await
            .doing("removing team members, coaches and roles")?;
    }
    Ok(())
}

fn queue_notice(queued: &mut Vec<Queued>, account: i64, notice: Notice) {
    let kind = match notice {
        Notice::None => return,
        Notice::Activation => "activation",
        Notice::AddedToOrganisation => "added_to_organisation",
    };
    queued.push(Queued {
        account,
        kind,
        recipient: None,
        old_email: None,
        new_email: None,
    });
}

/// Revokes the unused activation links of the accounts, in one organisation or in all.
async fn revoke_tokens(
    tx: &mut Tx<'_>,
    accounts: &[i64],
    org: impl Into<Option<i64>>,
    now: DateTime<Utc>,
) -> Result<()> {
    let org = org.into();
    for chunk in accounts.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Db>::new("UPDATE activation_tokens SET revoked_at = ");
        qb.push_bind(now).push(" WHERE");
        if let Some(org) = org {
            qb.push(" organisation_id = ").push_bind(org).push(" AND");
        }
        qb.push(" used_at IS NULL AND revoked_at IS NULL AND account_id IN (");
        push_binds(&mut qb, chunk.iter().copied());
        qb.push(")");
        qb.build()
            .execute(&mut **tx)
            .await
            .doing("revoking activation links")?;
    }
    Ok(())
}

async fn queue_mails(
    tx: &mut Tx<'_>,
    org: i64,
    run_id: i64,
    queued: &[Queued],
    now: DateTime<Utc>,
) -> Result<usize> {
    // Current address and name of every account a mail goes to, read in batches.
    let ids: BTreeSet<i64> = queued.iter().map(|q| q.account).collect();
    let ids: Vec<i64> = ids.into_iter().collect();
    let mut people: HashMap<i64, (String, Option<String>)> = HashMap::new();
    for chunk in ids.chunks(CHUNK) {
        let mut qb =
            QueryBuilder::<Db>::new("SELECT id, email, display_name FROM accounts WHERE id IN (");
        push_binds(&mut qb, chunk.iter().copied());
        qb.push(")");
        for row in qb
            .build()
            .fetch_all(&mut **tx)
            .await
            .doing("reading recipients")?
        {
            people.insert(
                get(&row, "id")?,
                (get(&row, "email")?, get(&row, "display_name")?),
            );
        }
    }
    for chunk in queued.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Db>::new(
            "INSERT INTO mail_outbox (organisation_id, account_id, run_id, kind, recipient, \
             recipient_name, old_email, new_email, created_at, attempts, next_attempt_at) ",
        );
        let mut rows = Vec::with_capacity(chunk.len());
        for q in chunk {
            let (email, name) = people
                .get(&q.account)
                .cloned()
                .ok_or_else(|| corrupt(format!("no account {} for a queued email", q.account)))?;
            rows.push((q, q.recipient.clone().unwrap_or(email), name));
        }
        qb.push_values(rows, |mut b, (q, recipient, name)| {
            b.push_bind(org)
                .push_bind(q.account)
                .push_bind(run_id)
                .push_bind(q.kind)
                .push_bind(recipient)
                .push_bind(name)
                .push_bind(q.old_email.clone())
                .push_bind(q.new_email.clone())
                .push_bind(now)
                .push_bind(0i32)
                .push_bind(now);
        });
        qb.build()
            .execute(&mut **tx)
            .await
            .doing("queueing emails")?;
    }
    Ok(queued.len())
}

const RUN_COLUMNS: &str = "r.id, o.slug, r.connector_id, r.trigger, r.mode, r.status, r.as_of, \
    r.started_at, r.finished_at, r.records_fetched, r.fetch_kind, r.scheduled_for";

fn run_from(row: &DbRow) -> Result<RunSummary> {
    let text = |c: &str| -> Result<String> { get(row, c) };
    let trigger = text("trigger")?;
    let mode = text("mode")?;
    let status = text("status")?;
    Ok(RunSummary {
        id: get(row, "id")?,
        organisation: text("slug")?,
        connector: text("connector_id")?,
        trigger: Trigger::parse(&trigger).ok_or_else(|| corrupt(format!("trigger `{trigger}`")))?,
        mode: RunMode::parse(&mode).ok_or_else(|| corrupt(format!("mode `{mode}`")))?,
        status: RunStatus::parse(&status).ok_or_else(|| corrupt(format!("status `{status}`")))?,
        as_of: get(row, "as_of")?,
        started_at: get(row, "started_at")?,
        finished_at: get(row, "finished_at")?,
        records_fetched: get(row, "records_fetched")?,
        fetch: get::<Option<String>>(row, "fetch_kind")?
            .map(|f| FetchKind::parse(&f).ok_or_else(|| corrupt(format!("fetch `{f}`"))))
            .transpose()?,
        scheduled_for: get(row, "scheduled_for")?,
        counts: BTreeMap::new(),
    })
}

async fn add_counts(pool: &Pool<Db>, runs: &mut [RunSummary]) -> Result<()> {
    for chunk in runs.chunks_mut(CHUNK) {
        let mut qb = QueryBuilder::<Db>::new(
            "SELECT run_id, kind, COUNT(*) AS n FROM sync_changes WHERE run_id IN (",
        );
        push_binds(&mut qb, chunk.iter().map(|r| r.id));
        qb.push(") GROUP BY run_id, kind");
        let rows = qb.build().fetch_all(pool).await.doing("counting changes")?;
        let mut by_run: HashMap<i64, Vec<(String, i64)>> = HashMap::new();
        for row in &rows {
            by_run
                .entry(get(row, "run_id")?)
                .or_default()
                .push((get(row, "kind")?, get(row, "n")?));
        }
        for r in chunk.iter_mut() {
            r.counts = counts_map(by_run.remove(&r.id).unwrap_or_default());
        }
    }
    Ok(())
}

pub(super) async fn list_runs(
    pool: &Pool<Db>,
    limit: i64,
    connector: Option<&str>,
) -> Result<Vec<RunSummary>> {
    let rows = sqlx::query(&format!(
        "SELECT {RUN_COLUMNS} FROM sync_runs r JOIN organisations o ON o.id = r.organisation_id \
         WHERE (CAST($2 AS TEXT) IS NULL OR r.connector_id = $2) ORDER BY r.id DESC LIMIT $1"
    ))
    .bind(limit)
    .bind(connector)
    .fetch_all(pool)
    .await
    .doing("listing runs")?;
    let mut runs = rows.iter().map(run_from).collect::<Result<Vec<_>>>()?;
    add_counts(pool, &mut runs).await?;
    Ok(runs)
}

pub(super) async fn run_report(pool: &Pool<Db>, run_id: i64) -> Result<Option<RunReport>> {
    let Some(row) = sqlx::query(&format!(
        "SELECT {RUN_COLUMNS} FROM sync_runs r JOIN organisations o ON o.id = r.organisation_id \
         WHERE r.id = $1"
    ))
    .bind(run_id)
    .fetch_optional(pool)
    .await
    .doing("reading a run")?
    else {
        return Ok(None);
    };
    let mut summary = [run_from(&row)?];
    add_counts(pool, &mut summary).await?;
    let [summary] = summary;
    let rows = sqlx::query(
        "SELECT kind, employee_id, email, field, old_value, new_value, reason \
         FROM sync_changes WHERE run_id = $1 ORDER BY seq",
    )
    .bind(run_id)
    .fetch_all(pool)
    .await
    .doing("reading a run's changes")?;
    let changes = rows
        .iter()
        .map(|row| {
            Ok(ChangeLine {
                kind: get(row, "kind")?,
                employee_id: get(row, "employee_id")?,
                email: get(row, "email")?,
                field: get(row, "field")?,
                old: get(row, "old_value")?,
                new: get(row, "new_value")?,
                reason: get(row, "reason")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let rows = sqlx::query("SELECT code, message FROM sync_errors WHERE run_id = $1 ORDER BY seq")
        .bind(run_id)
        .fetch_all(pool)
        .await
        .doing("reading a run's errors")?;
    let errors = rows
        .iter()
        .map(|row| {
            Ok(RunError {
                code: get(row, "code")?,
                message: get(row, "message")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(RunReport {
        summary,
        changes,
        errors,
    }))
}

pub(super) async fn claim_due_mail(
    pool: &Pool<Db>,
    now: DateTime<Utc>,
    lease: Duration,
    limit: i64,
) -> Result<Vec<OutboxMail>> {
    // A claim pushes the row's next attempt past the lease: other workers skip it, and if this
    // worker dies the row becomes due again when the lease ends.
    // Whole microseconds, as PostgreSQL stores them: the value is the claim's mark, compared
    // again by `renew_claim`.
    let lease_until = (now
        + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::minutes(5)))
    .trunc_subsecs(6);
    let lock = if POSTGRES {
        " FOR UPDATE SKIP LOCKED"
    } else {
        ""
    };
    let rows = sqlx::query(&format!(
        "UPDATE mail_outbox SET next_attempt_at = $1 WHERE id IN (\
         SELECT id FROM mail_outbox WHERE sent_at IS NULL AND cancelled_at IS NULL AND failed_at IS NULL AND next_attempt_at <= $2 \
         ORDER BY id LIMIT $3{lock}) RETURNING id"
    ))
    .bind(lease_until)
    .bind(now)
    .bind(limit)
    .fetch_all(pool)
    .await
    .doing("claiming due emails")?;
    let ids: Vec<i64> = rows.iter().map(|r| get(r, "id")).collect::<Result<_>>()?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut qb = QueryBuilder::<Db>::new(
        "SELECT m.id, m.organisation_id, o.name AS organisation_name, o.locale, o.time_zone, \
         m.account_id, m.run_id, m.kind, m.recipient, m.recipient_name, m.old_email, m.new_email, \
         m.attempts, m.created_at \
         FROM mail_outbox m JOIN organisations o ON o.id = m.organisation_id WHERE m.id IN (",
    );
    push_binds(&mut qb, ids.iter().copied());
    qb.push(") ORDER BY m.id");
    let rows = qb
        .build()
        .fetch_all(pool)
        .await
        .doing("reading claimed emails")?;
    rows.iter()
        .map(|row| {
            Ok(OutboxMail {
                id: get(row, "id")?,
                organisation_id: get(row, "organisation_id")?,
                organisation_name: get(row, "organisation_name")?,
                locale: get(row, "locale")?,
                time_zone: get(row, "time_zone")?,
                account_id: get(row, "account_id")?,
                run_id: get(row, "run_id")?,
                kind: get(row, "kind")?,
                recipient: get(row, "recipient")?,
                recipient_name: get(row, "recipient_name")?,
                old_email: get(row, "old_email")?,
                new_email: get(row, "new_email")?,
                attempts: get(row, "attempts")?,
                claimed_until: lease_until,
                created_at: get(row, "created_at")?,
            })
        })
        .collect()
}

pub(super) async fn cancel_mail(
    pool: &Pool<Db>,
    id: i64,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    let mut conn = pool.acquire().await.doing("taking a connection")?;
    cancel_row(&mut conn, id, reason, now).await
}

/// Marks a queued email cancelled, with why as its last error.
async fn cancel_row(
    conn: &mut <Db as sqlx::Database>::Connection,
    id: i64,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query("UPDATE mail_outbox SET cancelled_at = $1, last_error = $2 WHERE id = $3")
        .bind(now)
        .bind(format!("cancelled: {reason}"))
        .bind(id)
        .execute(conn)
        .await
        .doing("cancelling an email")?;
    Ok(())
}

pub(super) async fn renew_claim(
    pool: &Pool<Db>,
    id: i64,
    claimed_until: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<bool> {
    let renewed = sqlx::query(
        "UPDATE mail_outbox SET next_attempt_at = $1 WHERE id = $2 AND next_attempt_at = $3 \
         AND sent_at IS NULL AND cancelled_at IS NULL AND failed_at IS NULL",
    )
    .bind(until)
    .bind(id)
    .bind(claimed_until)
    .execute(pool)
    .await
    .doing("renewing the claim on an email")?
    .rows_affected();
    Ok(renewed == 1)
}

pub(super) async fn release_mail(pool: &Pool<Db>, ids: &[i64], now: DateTime<Utc>) -> Result<()> {
    for chunk in ids.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Db>::new("UPDATE mail_outbox SET next_attempt_at = ");
        qb.push_bind(now);
        qb.push(
            " WHERE sent_at IS NULL AND cancelled_at IS NULL AND failed_at IS NULL AND id IN (",
        );
        push_binds(&mut qb, chunk.iter().copied());
        qb.push(")");
        qb.build()
            .execute(pool)
            .await
            .doing("handing claimed emails back")?;
    }
    Ok(())
}

pub(super) async fn issue_activation_token(
    pool: &Pool<Db>,
    mail: &OutboxMail,
    token_hash: &str,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<Option<String>> {
    let account = mail
        .account_id
        .ok_or_else(|| corrupt(format!("activation email {} has no account", mail.id)))?;
    let mut tx = begin_write(pool, "starting a transaction").await?;
    // The mail was queued earlier: it still applies only while the person is invited, has
    // not activated, and still has the address it goes to.
    let row = sqlx::query(
        "SELECT a.email_norm, a.activated_at, m.state FROM accounts a \
         LEFT JOIN memberships m ON m.account_id = a.id AND m.organisation_id = $2 \
         WHERE a.id = $1",
    )
    .bind(account)
    .bind(mail.organisation_id)
    .fetch_optional(&mut *tx)
    .await
    .doing("checking an activation email still applies")?;
    let why_not = match &row {
        None => Some("the account no longer exists".to_string()),
        Some(row) => {
            let email: String = get(row, "email_norm")?;
            let activated: Option<DateTime<Utc>> = get(row, "activated_at")?;
            let state: Option<String> = get(row, "state")?;
            if activated.is_some() {
                Some("the account was activated meanwhile".to_string())
            } else if state.as_deref() != Some("invited") {
                Some(format!(
                    "the membership is {} now, not invited",
                    state.as_deref().unwrap_or("gone")
                ))
            } else if email != mail.recipient.to_lowercase() {
                Some("the account has another email address now".to_string())
            } else {
                None
            }
        }
    };
    if let Some(reason) = why_not {
        cancel_row(&mut tx, mail.id, &reason, now).await?;
        tx.commit().await.doing("committing a cancelled email")?;
        return Ok(Some(reason));
    }
    revoke_tokens(&mut tx, &[account], mail.organisation_id, now).await?;
    sqlx::query(
        "INSERT INTO activation_tokens (account_id, organisation_id, token_hash, email, \
         created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(account)
    .bind(mail.organisation_id)
    .bind(token_hash)
    .bind(mail.recipient.as_str())
    .bind(now)
    .bind(expires_at)
    .execute(&mut *tx)
    .await
    .doing("storing an activation token")?;
    tx.commit().await.doing("committing an activation token")?;
    Ok(None)
}

pub(super) async fn mark_mail_sent(pool: &Pool<Db>, id: i64, now: DateTime<Utc>) -> Result<()> {
    sqlx::query(
        "UPDATE mail_outbox SET sent_at = $1, attempts = attempts + 1, last_error = NULL \
         WHERE id = $2",
    )
    .bind(now)
    .bind(id)
    .execute(pool)
    .await
    .doing("marking an email sent")?;
    Ok(())
}

pub(super) async fn mark_mail_failed(
    pool: &Pool<Db>,
    id: i64,
    error: &str,
    retry_at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "UPDATE mail_outbox SET attempts = attempts + 1, last_error = $1, next_attempt_at = $2 \
         WHERE id = $3",
    )
    .bind(error)
    .bind(retry_at)
    .bind(id)
    .execute(pool)
    .await
    .doing("recording a failed email")?;
    Ok(())
}

pub(super) async fn mark_mail_undeliverable(
    pool: &Pool<Db>,
    id: i64,
    error: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "UPDATE mail_outbox SET attempts = attempts + 1, last_error = $1, failed_at = $2 \
         WHERE id = $3",
    )
    .bind(error)
    .bind(now)
    .bind(id)
    .execute(pool)
    .await
    .doing("recording an undeliverable email")?;
    Ok(())
}

pub(super) async fn undeliverable_mail_of_run(
    pool: &Pool<Db>,
    run_id: i64,
) -> Result<Vec<(String, String)>> {
    let rows = sqlx::query(
        "SELECT recipient, last_error FROM mail_outbox \
         WHERE run_id = $1 AND failed_at IS NOT NULL AND kind <> $2 ORDER BY id",
    )
    .bind(run_id)
    .bind(DIGEST_KIND)
    .fetch_all(pool)
    .await
    .doing("reading a run's undeliverable emails")?;
    rows.iter()
        .map(|row| {
            let error: Option<String> = get(row, "last_error")?;
            Ok((get(row, "recipient")?, error.unwrap_or_default()))
        })
        .collect()
}

pub(super) async fn outbox_stats(pool: &Pool<Db>) -> Result<OutboxStats> {
    let row = sqlx::query(
        "SELECT \
         COALESCE(SUM(CASE WHEN sent_at IS NULL AND cancelled_at IS NULL AND failed_at IS NULL THEN 1 ELSE 0 END), 0) AS pending, \
         COALESCE(SUM(CASE WHEN sent_at IS NULL AND cancelled_at IS NULL AND failed_at IS NULL AND last_error IS NOT NULL THEN 1 ELSE 0 END), 0) AS failing, \
         COALESCE(SUM(CASE WHEN sent_at IS NOT NULL THEN 1 ELSE 0 END), 0) AS sent, \
         COALESCE(SUM(CASE WHEN failed_at IS NOT NULL THEN 1 ELSE 0 END), 0) AS undeliverable \
         FROM mail_outbox",
    )
    .fetch_one(pool)
    .await
    .doing("counting the outbox")?;
    let oldest = sqlx::query(
        "SELECT created_at FROM mail_outbox WHERE sent_at IS NULL AND cancelled_at IS NULL AND failed_at IS NULL \
         ORDER BY id LIMIT 1",
    )
    .fetch_optional(pool)
    .await
    .doing("finding the oldest queued email")?;
    Ok(OutboxStats {
        pending: get(&row, "pending")?,
        failing: get(&row, "failing")?,
        sent: get(&row, "sent")?,
        undeliverable: get(&row, "undeliverable")?,
        oldest_pending: oldest.map(|r| get(&r, "created_at")).transpose()?,
    })
}

pub(super) async fn queue_activation_resend(
    pool: &Pool<Db>,
    organisation_slug: &str,
    email_key: &str,
    now: DateTime<Utc>,
) -> Result<i64> {
    let mut tx = begin_write(pool, "starting a transaction").await?;
    let row = sqlx::query(
        "SELECT a.id AS account_id, a.email, a.display_name, a.activated_at, m.state, \
         o.id AS organisation_id FROM accounts a \
         JOIN memberships m ON m.account_id = a.id \
         JOIN organisations o ON o.id = m.organisation_id \
         WHERE a.email_norm = $1 AND o.slug = $2",
    )
    .bind(email_key)
    .bind(organisation_slug)
    .fetch_optional(&mut *tx)
    .await
    .doing("finding the account")?
    .ok_or_else(|| {
        StoreError::NotFound(format!(
            "no account `{email_key}` in organisation `{organisation_slug}`"
        ))
    })?;
    let state: String = get(&row, "state")?;
    let activated: Option<DateTime<Utc>> = get(&row, "activated_at")?;
    if activated.is_some() {
        return Err(StoreError::NotFound(format!(
            "`{email_key}` has already activated the account; there is nothing to resend"
        )));
    }
    if state != "invited" {
        return Err(StoreError::NotFound(format!(
            "the membership of `{email_key}` in `{organisation_slug}` is {state}, not invited"
        )));
    }
    let account: i64 = get(&row, "account_id")?;
    let org: i64 = get(&row, "organisation_id")?;
    revoke_tokens(&mut tx, &[account], org, now).await?;
    let id: i64 = sqlx::query(
        "INSERT INTO mail_outbox (organisation_id, account_id, kind, recipient, recipient_name, \
         created_at, attempts, next_attempt_at) VALUES ($1, $2, 'activation', $3, $4, $5, 0, $5) \
         RETURNING id",
    )
    .bind(org)
    .bind(account)
    .bind(get::<String>(&row, "email")?)
    .bind(get::<Option<String>>(&row, "display_name")?)
    .bind(now)
    .fetch_one(&mut *tx)
    .await
    .doing("queueing the activation email")
    .and_then(|row| get(&row, "id"))?;
    tx.commit().await.doing("committing the resend")?;
    Ok(id)
}

/// `text` as a `LIKE` pattern matching it literally; a backslash is the `ESCAPE` character.
fn like_literal(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

pub(super) async fn list_users(pool: &Pool<Db>, filter: &UserFilter) -> Result<Vec<UserRow>> {
    let mut qb = QueryBuilder::<Db>::new(
        "SELECT o.slug, o.id AS organisation_id, a.id AS account_id, a.email, a.display_name, \
         m.employee_id, m.state, m.connector_id, m.job_title, m.created_at, a.activated_at \
         FROM memberships m JOIN accounts a ON a.id = m.account_id \
         JOIN organisations o ON o.id = m.organisation_id WHERE 1 = 1",
    );
    if let Some(org) = &filter.organisation {
        qb.push(" AND o.slug = ").push_bind(org.as_str());
    }
    if let Some(status) = &filter.status {
        qb.push(" AND m.state = ").push_bind(status.as_str());
    }
    if let Some(text) = &filter.search {
        // The admin's text is matched literally: `%`, `_` and the escape character itself
        // are escaped, and `ESCAPE` names the same character on both backends.
        let like = format!("%{}%", like_literal(&text.to_lowercase()));
        qb.push(" AND (a.email_norm LIKE ")
            .push_bind(like.clone())
            .push(" ESCAPE '\\' OR LOWER(COALESCE(a.display_name, '')) LIKE ")
            .push_bind(like.clone())
            .push(" ESCAPE '\\' OR LOWER(COALESCE(m.employee_id, '')) LIKE ")
            .push_bind(like)
            .push(" ESCAPE '\\')");
    }
    qb.push(" ORDER BY o.slug, a.email_norm");
    let rows = qb.build().fetch_all(pool).await.doing("listing accounts")?;

    // Teams and roles of the listed people, in a few queries.
    let accounts: BTreeSet<i64> = rows
        .iter()
        .map(|r| get(r, "account_id"))
        .collect::<Result<_>>()?;
    let accounts: Vec<i64> = accounts.into_iter().collect();
    let mut teams: HashMap<(i64, i64), Vec<String>> = HashMap::new();
    let mut roles: HashMap<(i64, i64), Vec<String>> = HashMap::new();
    let mut mail: HashMap<(i64, i64), MailProblem> = HashMap::new();
    for chunk in accounts.chunks(CHUNK) {
        // The person's mail that failed and has not been followed by one of the same kind that
        // went out (a resent activation mends a lost one; an email-change notice does not): the
        // newest such mail per membership (later rows overwrite earlier ones).
        let mut qb = QueryBuilder::<Db>::new(
            "SELECT m.account_id, m.organisation_id, m.kind, m.last_error, m.failed_at \
             FROM mail_outbox m WHERE m.last_error IS NOT NULL AND m.sent_at IS NULL \
             AND m.cancelled_at IS NULL AND m.kind <> ",
        );
        qb.push_bind(DIGEST_KIND);
        qb.push(
            " AND NOT EXISTS (SELECT 1 FROM mail_outbox n WHERE n.account_id = m.account_id \
             AND n.organisation_id = m.organisation_id AND n.kind = m.kind AND n.id > m.id \
             AND n.sent_at IS NOT NULL) \
             AND m.account_id IN (",
        );
        push_binds(&mut qb, chunk.iter().copied());
        qb.push(") ORDER BY m.id");
        for row in qb
            .build()
            .fetch_all(pool)
            .await
            .doing("listing failed emails")?
        {
            let failed_at: Option<DateTime<Utc>> = get(&row, "failed_at")?;
            let error: Option<String> = get(&row, "last_error")?;
            mail.insert(
                (get(&row, "account_id")?, get(&row, "organisation_id")?),
                MailProblem {
                    kind: get(&row, "kind")?,
                    error: error.unwrap_or_default(),
                    undeliverable: failed_at.is_some(),
                },
            );
        }
        for (sql, target) in [
            (
                "SELECT l.account_id, t.organisation_id, t.name FROM team_members l \
              JOIN teams t ON t.id = l.team_id WHERE l.account_id IN (",
                &mut teams,
            ),
            (
                "SELECT g.account_id, r.organisation_id, r.name FROM role_grants g \
              JOIN roles r ON r.id = g.role_id WHERE g.account_id IN (",
                &mut roles,
            ),
        ] {
            let mut qb = QueryBuilder::<Db>::new(sql);
            push_binds(&mut qb, chunk.iter().copied());
            qb.push(") ORDER BY 3");
            for row in qb
                .build()
                .fetch_all(pool)
                .await
                .doing("listing teams and roles")?
            {
                target
                    .entry((get(&row, "account_id")?, get(&row, "organisation_id")?))
                    .or_default()
                    .push(get(&row, "name")?);
            }
        }
    }
    rows.iter()
        .map(|row| {
            let key = (get(row, "account_id")?, get(row, "organisation_id")?);
            Ok(UserRow {
                account_id: key.0,
                organisation: get(row, "slug")?,
                email: get(row, "email")?,
                display_name: get(row, "display_name")?,
                employee_id: get(row, "employee_id")?,
                status: get(row, "state")?,
                connector: get(row, "connector_id")?,
                job_title: get(row, "job_title")?,
                teams: teams.get(&key).cloned().unwrap_or_default(),
                roles: roles.get(&key).cloned().unwrap_or_default(),
                mail_problem: mail.get(&key).cloned(),
                created_at: get(row, "created_at")?,
                activated_at: get(row, "activated_at")?,
            })
        })
        .collect()
}

pub(super) async fn connector_state(
    pool: &Pool<Db>,
    connector: &str,
) -> Result<Option<crate::planner::health::FeedStats>> {
    let row = sqlx::query(
        "SELECT last_good_records, last_good_missing_email FROM connector_state \
         WHERE connector_id = $1",
    )
    .bind(connector)
    .fetch_optional(pool)
    .await
    .doing("reading the connector's state")?;
    let Some(row) = row else {
        return Ok(None);
    };
    let records: Option<i64> = get(&row, "last_good_records")?;
    let missing: Option<i64> = get(&row, "last_good_missing_email")?;
    Ok(records.map(|records| crate::planner::health::FeedStats {
        records: usize::try_from(records).unwrap_or(0),
        missing_email: usize::try_from(missing.unwrap_or(0)).unwrap_or(0),
    }))
}

pub(super) async fn feed_state(pool: &Pool<Db>, connector: &str) -> Result<FeedState> {
    let row = sqlx::query(
        "SELECT watermark, last_full_at, incremental_runs, feed_fingerprint FROM connector_state \
         WHERE connector_id = $1",
    )
    .bind(connector)
    .fetch_optional(pool)
    .await
    .doing("reading the connector's watermark")?;
    let Some(row) = row else {
        return Ok(FeedState::default());
    };
    let watermark: Option<String> = get(&row, "watermark")?;
    let watermark = watermark
        .map(|w| {
            DateTime::parse_from_rfc3339(&w)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| corrupt(format!("the watermark `{w}` of connector `{connector}`")))
        })
        .transpose()?;
    Ok(FeedState {
        watermark,
        last_full_at: get(&row, "last_full_at")?,
        incremental_runs: get(&row, "incremental_runs")?,
        fingerprint: get(&row, "feed_fingerprint")?,
    })
}

pub(super) async fn set_run_fetch(pool: &Pool<Db>, run_id: i64, fetch: FetchKind) -> Result<()> {
    sqlx::query("UPDATE sync_runs SET fetch_kind = $1 WHERE id = $2")
        .bind(fetch.as_str())
        .bind(run_id)
        .execute(pool)
        .await
        .doing("noting how the run fetched")?;
    Ok(())
}

pub(super) async fn feed_snapshot(pool: &Pool<Db>, connector: &str) -> Result<Vec<HrRecord>> {
    let rows = sqlx::query(
        "SELECT records FROM connector_records WHERE connector_id = $1 ORDER BY employee_id",
    )
    .bind(connector)
    .fetch_all(pool)
    .await
    .doing("reading the connector's known records")?;
    let mut records = Vec::with_capacity(rows.len());
    for row in &rows {
        let text: String = get(row, "records")?;
        records.extend(super::snapshot::decode(&text).map_err(corrupt)?);
    }
    Ok(records)
}

async fn read_token(
    executor: impl sqlx::Executor<'_, Database = Db>,
    token_hash: &str,
    now: DateTime<Utc>,
) -> Result<(TokenState, Option<(i64, i64)>)> {
    let Some(row) = sqlx::query(
        "SELECT account_id, organisation_id, email, expires_at, used_at, revoked_at \
         FROM activation_tokens WHERE token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(executor)
    .await
    .doing("reading an activation token")?
    else {
        return Ok((TokenState::Unknown, None));
    };
    let account: i64 = get(&row, "account_id")?;
    let org: i64 = get(&row, "organisation_id")?;
    let expires: DateTime<Utc> = get(&row, "expires_at")?;
    let used: Option<DateTime<Utc>> = get(&row, "used_at")?;
    let revoked: Option<DateTime<Utc>> = get(&row, "revoked_at")?;
    let state = if used.is_some() {
        TokenState::Used
    } else if revoked.is_some() {
        TokenState::Revoked
    } else if expires <= now {
        TokenState::Expired
    } else {
        TokenState::Valid {
            account_id: account,
            email: get(&row, "email")?,
        }
    };
    Ok((state, Some((account, org))))
}

pub(super) async fn token_state(
    pool: &Pool<Db>,
    token_hash: &str,
    now: DateTime<Utc>,
) -> Result<TokenState> {
    Ok(read_token(pool, token_hash, now).await?.0)
}

pub(super) async fn activate(
    pool: &Pool<Db>,
    token_hash: &str,
    now: DateTime<Utc>,
) -> Result<TokenState> {
    let mut tx = begin_write(pool, "starting a transaction").await?;
    let (state, ids) = read_token(&mut *tx, token_hash, now).await?;
    let (TokenState::Valid { .. }, Some((account, _))) = (&state, ids) else {
        return Ok(state);
    };
    // Single use: only the update that finds the token unused wins.
    let used = sqlx::query(
        "UPDATE activation_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL \
         AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(token_hash)
    .execute(&mut *tx)
    .await
    .doing("using an activation token")?;
    if used.rows_affected() != 1 {
        return Ok(TokenState::Used);
    }
    sqlx::query("UPDATE accounts SET activated_at = COALESCE(activated_at, $1), updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(account)
        .execute(&mut *tx)
        .await
        .doing("activating the account")?;
    sqlx::query(
        "UPDATE memberships SET state = 'active', updated_at = $1 \
         WHERE account_id = $2 AND state = 'invited'",
    )
    .bind(now)
    .bind(account)
    .execute(&mut *tx)
    .await
    .doing("activating the membership")?;
    tx.commit().await.doing("committing the activation")?;
    Ok(state)
}

pub(super) async fn ping(pool: &Pool<Db>) -> Result<()> {
    sqlx::query("SELECT 1")
        .execute(pool)
        .await
        .doing("checking the database")?;
    Ok(())
}

pub(super) async fn claim_tick(
    pool: &Pool<Db>,
    connector: &str,
    tick: DateTime<Utc>,
) -> Result<bool> {
    // Atomic on both backends: the row moves forward for one caller only.
    let moved = sqlx::query(
        "INSERT INTO schedule_ticks (connector_id, tick) VALUES ($1, $2) \
         ON CONFLICT (connector_id) DO UPDATE SET tick = excluded.tick \
         WHERE schedule_ticks.tick < excluded.tick",
    )
    .bind(connector)
    .bind(tick)
    .execute(pool)
    .await
    .doing("claiming a schedule tick")?;
    Ok(moved.rows_affected() == 1)
}

pub(super) async fn fail_abandoned_runs(
    pool: &Pool<Db>,
    connector: &str,
    error: &RunError,
    digest_to: &[String],
    now: DateTime<Utc>,
) -> Result<Vec<i64>> {
    let mut tx = begin_write(pool, "starting a transaction").await?;
    let rows = sqlx::query(
        "SELECT id FROM sync_runs WHERE connector_id = $1 AND status = 'running' ORDER BY id",
    )
    .bind(connector)
    .fetch_all(&mut *tx)
    .await
    .doing("finding abandoned runs")?;
    let running: Vec<i64> = rows.iter().map(|r| get(r, "id")).collect::<Result<_>>()?;
    let mut ids = Vec::with_capacity(running.len());
    for id in running {
        // A run whose commit lands meanwhile is not running any more and is left as it ended.
        let ended = finish(
            &mut tx,
            id,
            Ending {
                status: RunStatus::Failed,
                records_fetched: 0,
                errors: std::slice::from_ref(error),
                digest_to,
                now,
            },
        )
        .await?;
        if ended {
            ids.push(id);
        }
    }
    tx.commit().await.doing("ending abandoned runs")?;
    Ok(ids)
}

pub(super) async fn previous_outcome(
    pool: &Pool<Db>,
    connector: &str,
    before: i64,
) -> Result<Option<(RunStatus, Vec<String>)>> {
    let Some(row) = sqlx::query(
        "SELECT id, status FROM sync_runs WHERE connector_id = $1 AND id < $2 \
         AND mode = 'apply' AND status <> 'running' ORDER BY id DESC LIMIT 1",
    )
    .bind(connector)
    .bind(before)
    .fetch_optional(pool)
    .await
    .doing("reading the previous run")?
    else {
        return Ok(None);
    };
    let id: i64 = get(&row, "id")?;
    let status: String = get(&row, "status")?;
    let status = RunStatus::parse(&status)
        .ok_or_else(|| corrupt(format!("run {id} has the unknown status `{status}`")))?;
    let codes = sqlx::query("SELECT code FROM sync_errors WHERE run_id = $1 ORDER BY seq")
        .bind(id)
        .fetch_all(pool)
        .await
        .doing("reading the previous run's errors")?
        .iter()
        .map(|r| get(r, "code"))
        .collect::<Result<Vec<String>>>()?;
    Ok(Some((status, codes)))
}

pub(super) async fn last_runs(pool: &Pool<Db>) -> Result<Vec<RunSummary>> {
    let rows = sqlx::query(&format!(
        "SELECT {RUN_COLUMNS} FROM sync_runs r JOIN organisations o ON o.id = r.organisation_id \
         WHERE r.id IN (SELECT MAX(id) FROM sync_runs GROUP BY connector_id) \
         ORDER BY r.connector_id"
    ))
    .fetch_all(pool)
    .await
    .doing("reading the last run of each connector")?;
    let mut runs = rows.iter().map(run_from).collect::<Result<Vec<_>>>()?;
    add_counts(pool, &mut runs).await?;
    Ok(runs)
}

// ---------------------------------------------------------------------------------------------
// Admin sign-in sessions (`server::auth`). The cookie holds a random session id; only its
// SHA-256 is stored. Whether a session is still good (absolute expiry, idle timeout, signed
// out) is decided by the server from the row; these statements only keep the rows. Times are
// whole seconds, so that SQLite's RFC 3339 text compares in time order in `purge`.

pub(super) async fn create_admin_session(
    pool: &Pool<Db>,
    session_hash: &str,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<()> {
    let now = now.trunc_subsecs(0);
    sqlx::query(
        "INSERT INTO admin_sessions (session_hash, created_at, last_seen_at, expires_at) \
         VALUES ($1, $2, $2, $3)",
    )
    .bind(session_hash)
    .bind(now)
    .bind(expires_at.trunc_subsecs(0))
    .execute(pool)
    .await
    .doing("starting an admin session")?;
    Ok(())
}

pub(super) async fn admin_session(
    pool: &Pool<Db>,
    session_hash: &str,
) -> Result<Option<super::AdminSession>> {
    let Some(row) = sqlx::query(
        "SELECT created_at, last_seen_at, expires_at, revoked_at FROM admin_sessions \
         WHERE session_hash = $1",
    )
    .bind(session_hash)
    .fetch_optional(pool)
    .await
    .doing("reading an admin session")?
    else {
        return Ok(None);
    };
    Ok(Some(super::AdminSession {
        created_at: get(&row, "created_at")?,
        last_seen_at: get(&row, "last_seen_at")?,
        expires_at: get(&row, "expires_at")?,
        revoked_at: get(&row, "revoked_at")?,
    }))
}

pub(super) async fn touch_admin_session(
    pool: &Pool<Db>,
    session_hash: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    // Never backwards: two requests of one session may touch it in either order.
    sqlx::query(
        "UPDATE admin_sessions SET last_seen_at = $1 \
         WHERE session_hash = $2 AND revoked_at IS NULL AND last_seen_at < $1",
    )
    .bind(now.trunc_subsecs(0))
    .bind(session_hash)
    .execute(pool)
    .await
    .doing("noting the use of an admin session")?;
    Ok(())
}

pub(super) async fn revoke_admin_session(
    pool: &Pool<Db>,
    session_hash: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    let revoked = sqlx::query(
        "UPDATE admin_sessions SET revoked_at = $1 \
         WHERE session_hash = $2 AND revoked_at IS NULL",
    )
    .bind(now.trunc_subsecs(0))
    .bind(session_hash)
    .execute(pool)
    .await
    .doing("ending an admin session")?;
    Ok(revoked.rows_affected() == 1)
}

pub(super) async fn purge_admin_sessions(
    pool: &Pool<Db>,
    now: DateTime<Utc>,
    idle_since: DateTime<Utc>,
) -> Result<u64> {
    // A session past its end, idle for too long, or signed out can never be used again; its
    // row only says so, and an unknown cookie is refused just the same.
    let purged = sqlx::query(
        "DELETE FROM admin_sessions \
         WHERE expires_at <= $1 OR last_seen_at <= $2 OR revoked_at IS NOT NULL",
    )
    .bind(now.trunc_subsecs(0))
    .bind(idle_since.trunc_subsecs(0))
    .execute(pool)
    .await
    .doing("purging old admin sessions")?;
    Ok(purged.rows_affected())
}
