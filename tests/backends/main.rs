//! Behaviour tests of whole sync runs, run once on SQLite and once on PostgreSQL.
//!
//! This is a test binary with its own small runner (`harness = false`) so that every test runs
//! against both backends. Set `HRSYNC_TEST_POSTGRES_URL` (an administrative URL such as
//! `postgres://postgres@127.0.0.1/postgres`) to run the PostgreSQL half; each test then gets a
//! database of its own, dropped afterwards. Without it the PostgreSQL half is reported as
//! ignored, test by test and in the summary, never as passed; with `--include-ignored` (what
//! `.ci/run` passes) or `--ignored` it is required, and its absence fails the run.
//! Arguments: an optional filter on test names, `--include-ignored`, `--ignored`.

// A test stops at the first thing that is not as expected.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod admin_store;
mod connector_lock;
mod credentials;
mod hostile;
mod listing;
mod manual;
mod settings_in_range;
#[path = "../support/smtp.rs"]
mod smtp;
mod support;
mod sync_runs;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::time::Instant;

use support::{Backend, TestEnv};

type TestFuture = Pin<Box<dyn Future<Output = anyhow::Result<()>>>>;
type TestFn = fn(TestEnv) -> TestFuture;

macro_rules! tests {
    ($($module:ident :: $name:ident),* $(,)?) => {
        vec![$((stringify!($name), (|env| Box::pin($module::$name(env))) as TestFn)),*]
    };
}

fn all_tests() -> Vec<(&'static str, TestFn)> {
    tests![
        sync_runs::example_sync_invites_links_schedules_and_quarantines,
        sync_runs::second_sync_of_the_same_feed_changes_nothing,
        sync_runs::leaver_is_deactivated_and_keeps_data,
        sync_runs::rehire_reactivates_the_same_account,
        sync_runs::email_change_notifies_old_and_new_address,
        sync_runs::email_change_to_a_taken_address_is_a_conflict,
        sync_runs::local_edit_of_hr_owned_field_is_overwritten_and_reported,
        sync_runs::mass_deactivation_is_held_until_approved,
        sync_runs::approval_is_refused_when_the_plan_changed,
        sync_runs::empty_feed_is_held_and_applies_nothing,
        sync_runs::malformed_feed_fails_the_run_and_changes_nothing,
        sync_runs::dry_run_writes_only_the_run_record,
        sync_runs::activation_mail_goes_over_smtp_and_its_link_works_once,
        sync_runs::resend_revokes_the_earlier_link,
        sync_runs::expired_link_is_refused,
        sync_runs::failed_mail_stays_queued_with_its_error_and_is_retried,
        sync_runs::users_can_be_filtered_by_status_and_text,
        sync_runs::moving_department_leaves_team_unassigns_coach_and_revokes_role,
        sync_runs::two_organisations_do_not_overwrite_a_shared_profile_back_and_forth,
        sync_runs::queued_activation_is_cancelled_when_the_person_leaves_first,
        sync_runs::a_resend_queued_beside_the_first_activation_sends_one_link,
        sync_runs::a_later_activation_that_no_longer_applies_does_not_cancel_the_first,
        sync_runs::failure_after_fetch_is_recorded_and_applies_nothing,
        sync_runs::activating_once_activates_every_invited_membership,
        sync_runs::feed_shrinking_by_half_is_held_by_the_health_gate,
        sync_runs::feed_losing_its_email_column_is_held_by_the_health_gate,
        sync_runs::http_connector_syncs_a_scim_server,
        sync_runs::incremental_connector_merges_changes_and_finds_vanished_people_on_full_fetch,
        sync_runs::held_incremental_run_moves_its_watermark_only_when_approved,
        sync_runs::a_changed_definition_makes_the_next_incremental_fetch_full,
        sync_runs::a_schedule_tick_and_a_connector_run_are_taken_by_one_caller_only,
        sync_runs::admins_get_a_digest_when_a_run_changes_holds_or_fails_something,
        sync_runs::a_stopping_mail_worker_hands_its_claim_back_unsent,
        sync_runs::a_mail_whose_claim_ran_out_is_not_sent_by_the_first_claimer,
        sync_runs::a_worker_whose_claim_ran_out_cannot_hand_back_anothers_claim,
        sync_runs::a_held_runs_digest_still_queued_at_approval_gives_way_to_the_approvals,
        hostile::names_with_control_characters_are_mailed_and_stored_on_one_line,
        hostile::a_stray_quote_that_keeps_the_field_count_fails_the_run_at_its_line,
        hostile::an_export_cut_inside_the_last_column_fails_the_run,
        hostile::text_after_a_closing_quote_fails_the_run,
        hostile::one_lost_email_in_a_small_organisation_is_a_quarantine_not_a_hold,
        hostile::two_of_eight_people_leaving_is_applied,
        hostile::a_first_feed_mostly_without_email_is_held,
        hostile::a_run_over_two_limits_lists_both_codes,
        hostile::a_mail_refused_with_550_fails_for_good_and_shows_on_the_account,
        hostile::the_feed_health_counts_are_settings,
        connector_lock::a_second_process_running_the_same_connector_is_refused_as_running_already,
        connector_lock::a_connector_lock_is_free_again_when_the_process_holding_it_dies,
        connector_lock::a_dropped_connector_lock_is_free_again,
        connector_lock::an_in_memory_sqlite_database_runs_without_a_lock_file,
        connector_lock::two_processes_starting_on_a_new_database_migrate_it_in_turn,
        settings_in_range::the_highest_allowed_settings_run_sync_mail_and_serve_without_overflow,
        settings_in_range::settings_out_of_range_are_refused_before_a_pool_is_allocated_or_a_run_starts,
        admin_store::account_search_matches_percent_underscore_and_backslash_literally,
        admin_store::admin_sessions_are_kept_by_hash_touched_forward_revoked_once_and_purged,
        credentials::a_rotated_refresh_token_is_kept_sealed_and_sent_at_the_next_run,
        manual::a_person_added_by_hand_is_taken_over_when_an_hr_record_names_them,
        manual::an_existing_account_added_by_hand_is_linked_not_created_again,
        manual::an_admin_edit_of_an_hr_owned_field_is_refused_and_a_local_one_survives_syncs,
        manual::a_role_granted_by_hand_is_kept_across_syncs_and_a_rules_role_cannot_be_revoked,
        manual::a_suspension_is_kept_across_a_sync_and_ended_by_an_hr_leaver,
        manual::a_team_made_by_hand_keeps_its_coach_and_members_and_nobody_is_both,
        manual::only_a_membership_made_by_hand_can_be_removed,
        manual::the_directory_reads_in_pages_and_a_sign_in_is_recorded_for_who_can_log_in,
        manual::each_organisation_sends_its_mail_from_its_own_sender,
        manual::the_account_list_pages_sorts_filters_and_counts_in_the_database,
        manual::a_far_page_of_the_account_list_holds_the_same_rows_read_from_either_end,
        manual::the_teams_are_read_a_page_at_a_time_with_only_their_links,
        manual::a_removal_by_hand_shows_in_whats_changed_and_admin_tokens_are_kept_apart,
        listing::runs_are_filtered_by_status_mode_trigger_kind_and_date_and_paged_by_cursor_either_way,
        listing::a_runs_changes_of_one_kind_are_read_a_page_at_a_time,
    ]
}

/// The environment variable that holds the test SCIM server's token.
pub const SCIM_TOKEN_VAR: &str = "HRSYNC_TEST_SCIM_TOKEN";

fn main() {
    // SAFETY: set once, before any other thread of this process exists.
    unsafe { std::env::set_var(SCIM_TOKEN_VAR, "scim-token") };
    let args: Vec<String> = std::env::args().skip(1).collect();
    // The filter is the first word that is neither a flag nor the value of one of libtest's
    // flags that take a value (`--test-threads 1`, `--skip NAME`).
    let mut filter: Option<&String> = None;
    let mut words = args.iter();
    while let Some(word) = words.next() {
        if [
            "--test-threads",
            "--skip",
            "--color",
            "--format",
            "--logfile",
            "-Z",
        ]
        .contains(&word.as_str())
        {
            words.next();
        } else if !word.starts_with('-') && filter.is_none() {
            filter = Some(word);
        }
    }
    // As libtest reads them: `--ignored` runs only what would be ignored (here: the
    // PostgreSQL half), `--include-ignored` runs everything.
    let only_ignored = args.iter().any(|a| a == "--ignored");
    let include_ignored = only_ignored || args.iter().any(|a| a == "--include-ignored");
    let postgres = std::env::var("HRSYNC_TEST_POSTGRES_URL")
        .ok()
        .filter(|s| !s.is_empty());
    if include_ignored && postgres.is_none() {
        println!(
            "error: the PostgreSQL half of these tests was asked for (--include-ignored or \
             --ignored) but HRSYNC_TEST_POSTGRES_URL is not set; set it to an administrative URL \
             such as postgres://postgres@127.0.0.1/postgres"
        );
        std::process::exit(101);
    }
    let mut backends = Vec::new();
    if !only_ignored {
        backends.push(Backend::Sqlite);
    }
    if let Some(url) = &postgres {
        backends.push(Backend::Postgres(url.clone()));
    }
    let tests = all_tests();
    let (mut passed, mut failed, mut filtered, mut ignored) = (0usize, Vec::new(), 0usize, 0usize);
    let started = Instant::now();
    if postgres.is_none() {
        for (name, _) in &tests {
            let full = format!("postgres::{name}");
            if filter.is_some_and(|f| !full.contains(f.as_str())) {
                filtered += 1;
                continue;
            }
            println!("test {full} ... ignored, needs PostgreSQL: set HRSYNC_TEST_POSTGRES_URL");
            ignored += 1;
        }
    }
    for backend in &backends {
        for (name, test) in &tests {
            let full = format!("{}::{name}", backend.name());
            if filter.is_some_and(|f| !full.contains(f.as_str())) {
                filtered += 1;
                continue;
            }
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a tokio runtime");
            let backend = backend.clone();
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
                runtime.block_on(async move {
                    let env = TestEnv::new(backend).await?;
                    let cleanup = env.cleanup_handle();
                    let outcome = test(env).await;
                    cleanup.run().await;
                    outcome
                })
            }));
            match result {
                Ok(Ok(())) => {
                    println!("test {full} ... ok");
                    passed += 1;
                }
                Ok(Err(error)) => {
                    println!("test {full} ... FAILED\n    {error:#}");
                    failed.push(full);
                }
                Err(_) => {
                    println!("test {full} ... FAILED (panicked, see above)");
                    failed.push(full);
                }
            }
        }
    }
    println!();
    if postgres.is_none() && ignored > 0 {
        println!(
            "NOTE: {ignored} tests of the PostgreSQL half were ignored: they did not run. Set \
             HRSYNC_TEST_POSTGRES_URL, e.g. HRSYNC_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1/postgres, \
             to run them (`bash .ci/run` does)."
        );
    }
    if !failed.is_empty() {
        println!("failures:");
        for f in &failed {
            println!("    {f}");
        }
    }
    println!(
        "test result: {}. {passed} passed; {} failed; {ignored} ignored; 0 measured; {filtered} filtered out; finished in {:.2}s",
        if failed.is_empty() { "ok" } else { "FAILED" },
        failed.len(),
        started.elapsed().as_secs_f64()
    );
    if !failed.is_empty() {
        std::process::exit(101);
    }
}
