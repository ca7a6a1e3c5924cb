//! The last phase of the applier: the outbox rows the run queued, and the run's report (its
//! changes, its end, the connector's last good feed and, for an incremental connector, the
//! feed it keeps), in the same transaction as everything the run changed.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use sqlx::QueryBuilder;

use super::super::common::{CHUNK, Tx, corrupt, get, push_binds};
use super::super::feed::{forget_feed, keep_feed, record_good_feed};
use super::super::runs::{Ending, ended_elsewhere, finish, insert_changes};
use super::super::{Db, copy_csv};
use crate::planner::{Notice, Plan};
use crate::store::{ApplyRun, Doing, Result};

/// Phase 6, the outbox and the report. Returns how many mails were queued.
pub(super) async fn outbox_and_report(
    tx: &mut Tx<'_>,
    run: &ApplyRun<'_>,
    plan: &Plan,
    queued: &[Queued],
) -> Result<usize> {
    let (run_id, connector, now) = (run.run_id, run.connector, run.now);
    let started = std::time::Instant::now();
    let mails = queue_mails(tx, run.organisation.id, run_id, queued, now).await?;
    tracing::debug!(
        ms = started.elapsed().as_millis() as u64,
        mails,
        "Apply: mails queued"
    );
    let started = std::time::Instant::now();
    // An approved run was stored with its planned changes when it was held; what was applied
    // replaces them (planning again gave the same changes, with fresh reasons).
    sqlx::query("DELETE FROM sync_changes WHERE run_id = $1")
        .bind(run_id)
        .execute(&mut **tx)
        .await
        .doing("replacing the held run's changes")?;
    insert_changes(tx, run_id, &plan.changes).await?;
    tracing::debug!(
        ms = started.elapsed().as_millis() as u64,
        changes = plan.changes.len(),
        "Apply: changes recorded"
    );
    let ending = Ending {
        status: run.status,
        records_fetched: run.records_fetched,
        errors: &[],
        digest_to: run.digest_to,
        now,
    };
    if !finish(tx, run_id, ending).await? {
        return Err(ended_elsewhere(run_id));
    }
    record_good_feed(
        tx,
        connector,
        run_id,
        run.records_fetched,
        run.missing_email,
        now,
    )
    .await?;
    match &run.feed {
        Some(feed) => keep_feed(tx, connector, feed).await?,
        // A connector that read everything this time keeps no records: should it fetch
        // incrementally again later, it starts from a full fetch, not from what it knew then.
        None => forget_feed(tx, connector).await?,
    }
    Ok(mails)
}

/// An email the applier queues; recipients of account mails are read after every account
/// write, so an activation goes to the address the account has at the end of the run.
pub(super) struct Queued {
    pub(super) account: i64,
    pub(super) kind: &'static str,
    pub(super) recipient: Option<String>,
    pub(super) old_email: Option<String>,
    pub(super) new_email: Option<String>,
}

pub(super) fn queue_notice(queued: &mut Vec<Queued>, account: i64, notice: Notice) {
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

/// How many queued mails are written at a time, each batch with its recipients read just
/// before it: a first sync queues one mail per person, and no map of every recipient is held.
const MAIL_BATCH: usize = 5_000;

async fn queue_mails(
    tx: &mut Tx<'_>,
    org: i64,
    run_id: i64,
    queued: &[Queued],
    now: DateTime<Utc>,
) -> Result<usize> {
    for batch in queued.chunks(MAIL_BATCH) {
        let people = recipients(tx, batch).await?;
        let to = batch
            .iter()
            .map(|q| {
                let (email, name) = people.get(&q.account).ok_or_else(|| {
                    corrupt(format!("no account {} for a queued email", q.account))
                })?;
                Ok((q.recipient.as_deref().unwrap_or(email), name.as_deref()))
            })
            .collect::<Result<Vec<_>>>()?;
        write_mails(tx, org, run_id, batch, &to, now).await?;
    }
    Ok(queued.len())
}

/// The current address and name of every account the mails go to, read in batches.
async fn recipients(
    tx: &mut Tx<'_>,
    queued: &[Queued],
) -> Result<HashMap<i64, (String, Option<String>)>> {
    let ids: BTreeSet<i64> = queued.iter().map(|q| q.account).collect();
    let ids: Vec<i64> = ids.into_iter().collect();
    let mut people = HashMap::with_capacity(ids.len());
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
    Ok(people)
}

/// Writes queued mails, each `to` its recipient's address and name.
async fn write_mails(
    tx: &mut Tx<'_>,
    org: i64,
    run_id: i64,
    queued: &[Queued],
    to: &[(&str, Option<&str>)],
    now: DateTime<Utc>,
) -> Result<()> {
    let copied = copy_csv(
        tx,
        "mail_outbox (organisation_id, account_id, run_id, kind, recipient, recipient_name, \
         old_email, new_email, created_at, attempts, next_attempt_at)",
        queued.len(),
        |csv, n| {
            if let (Some(q), Some((recipient, name))) = (queued.get(n), to.get(n)) {
                csv.number(Some(org))
                    .number(Some(q.account))
                    .number(Some(run_id))
                    .text(Some(q.kind))
                    .text(Some(recipient))
                    .text(*name)
                    .text(q.old_email.as_deref())
                    .text(q.new_email.as_deref())
                    .time(now)
                    .number(Some(0))
                    .time(now);
            }
        },
    )
    .await
    .doing("queueing emails")?;
    if copied {
        return Ok(());
    }
    let rows: Vec<_> = queued.iter().zip(to).collect();
    for chunk in rows.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Db>::new(
            "INSERT INTO mail_outbox (organisation_id, account_id, run_id, kind, recipient, \
             recipient_name, old_email, new_email, created_at, attempts, next_attempt_at) ",
        );
        qb.push_values(chunk, |mut b, (q, (recipient, name))| {
            b.push_bind(org)
                .push_bind(q.account)
                .push_bind(run_id)
                .push_bind(q.kind)
                .push_bind(*recipient)
                .push_bind(*name)
                .push_bind(q.old_email.as_deref())
                .push_bind(q.new_email.as_deref())
                .push_bind(now)
                .push_bind(0i32)
                .push_bind(now);
        });
        qb.build()
            .execute(&mut **tx)
            .await
            .doing("queueing emails")?;
    }
    Ok(())
}
