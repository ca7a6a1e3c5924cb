//! Administration by hand beside the sync: each action an admin takes, and the next sync
//! respecting it ("Local administration").

use chrono::Utc;
use hrsync::domain::{Actor, AuditAction, Email, RunStatus, Via};
use hrsync::planner::Field;
use hrsync::store::{NewPerson, StoreError, TeamRole, UserFilter};
use hrsync::sync::App;

use crate::support::{TestEnv, actionable, count};
use crate::sync_runs::BASE;

const TODAY: &str = "2026-11-23";

fn admin() -> Actor {
    Actor::new("Mira Admin", Via::Page)
}

fn email(text: &str) -> Email {
    Email::parse(text).unwrap()
}

fn person(address: &str) -> NewPerson {
    NewPerson {
        organisation: "zorg".to_string(),
        email: email(address),
        first_name: Some("Gerda".to_string()),
        last_name: Some("Groen".to_string()),
        display_name: None,
        job_title: Some("Volunteer".to_string()),
        location: None,
        employment_type: None,
        roles: vec!["volunteer".to_string()],
        teams: Vec::new(),
        send_invite: true,
    }
}

/// The status `users` lists for one address in `zorg`.
async fn status(app: &App, address: &str) -> anyhow::Result<String> {
    let filter = UserFilter {
        organisation: Some("zorg".to_string()),
        search: Some(address.to_string()),
        ..UserFilter::default()
    };
    let rows = app.store.list_users(&filter).await?;
    Ok(rows
        .into_iter()
        .find(|r| r.email == address)
        .map(|r| r.status)
        .unwrap_or_default())
}

fn is_refused<T: std::fmt::Debug>(result: Result<T, StoreError>, mentioning: &str) -> bool {
    match result {
        Err(StoreError::Refused(message)) => message.contains(mentioning),
        other => {
            eprintln!("expected a refusal mentioning `{mentioning}`, got {other:?}");
            false
        }
    }
}

pub async fn a_person_added_by_hand_is_taken_over_when_an_hr_record_names_them(
    env: TestEnv,
) -> anyhow::Result<()> {
    // Arrange: Bert is added by hand before HR lists him.
    env.write_feed(&BASE);
    let app = env.app().await?;
    app.organisation("zorg").await?;
    let added = app
        .store
        .add_person(&person("Bert@Zorg.example"), &admin(), Utc::now())
        .await?;

    // Act
    let report = env.sync(&app, TODAY).await?;

    // Assert
    assert!(!added.linked, "a new account");
    assert_eq!(report.summary.status, RunStatus::Succeeded);
    assert_eq!(
        env.count("SELECT COUNT(*) FROM accounts WHERE email_norm = 'bert@zorg.example'")
            .await?,
        1,
        "one account per person"
    );
    assert_eq!(
        env.count(
            "SELECT COUNT(*) FROM memberships m JOIN accounts a ON a.id = m.account_id \
             WHERE a.email_norm = 'bert@zorg.example' AND m.connector_id = 'hr'"
        )
        .await?,
        1,
        "the connector manages the membership from now on"
    );
    let line = report
        .changes
        .iter()
        .find(|c| c.email.as_deref() == Some("bert@zorg.example"))
        .map(|c| c.reason.clone())
        .unwrap_or_default();
    assert!(line.contains("by hand"), "{line}");
    assert_eq!(
        env.count(
            "SELECT COUNT(*) FROM role_grants g JOIN roles r ON r.id = g.role_id \
             WHERE r.name = 'volunteer' AND g.connector_id IS NULL"
        )
        .await?,
        1,
        "the role granted by hand stays"
    );
    let trail = app.store.audit_of_account(added.account_id).await?;
    assert_eq!(trail[0].action, AuditAction::PersonAdd);
    assert_eq!(trail[0].actor, "Mira Admin");
    assert_eq!(trail[0].via, Via::Page);
    Ok(())
}

pub async fn an_existing_account_added_by_hand_is_linked_not_created_again(
    env: TestEnv,
) -> anyhow::Result<()> {
    // Arrange: Anna is synced into `zorg`; an admin adds her to `other` by hand.
    env.write_feed(&BASE);
    let app = env.app().await?;
    env.sync(&app, TODAY).await?;
    app.organisation("other").await?;
    let mut anna = person("anna@zorg.example");
    anna.organisation = "other".to_string();

    // Act
    let added = app.store.add_person(&anna, &admin(), Utc::now()).await?;
    let again = app.store.add_person(&anna, &admin(), Utc::now()).await;

    // Assert
    assert!(added.linked);
    assert_eq!(added.mail, Some("activation"), "Anna has not activated yet");
    assert_eq!(
        env.count("SELECT COUNT(*) FROM accounts WHERE email_norm = 'anna@zorg.example'")
            .await?,
        1
    );
    assert!(is_refused(again, "a member of `other` already"));
    Ok(())
}

pub async fn an_admin_edit_of_an_hr_owned_field_is_refused_and_a_local_one_survives_syncs(
    mut env: TestEnv,
) -> anyhow::Result<()> {
    // Arrange: this connector leaves job titles to the organisation after creation.
    env.connector_extra = "ownership = { job_title = \"local\" }".to_string();
    env.write_feed(&BASE);
    let app = env.app().await?;
    env.sync(&app, TODAY).await?;
    let owners = app.config.field_owners();
    let bert = email("bert@zorg.example");

    // Act
    let hr_owned = app
        .store
        .edit_person(
            "zorg",
            &bert,
            &[(Field::LastName, Some("Boschma".to_string()))],
            &owners,
            &admin(),
            Utc::now(),
        )
        .await;
    let local = app
        .store
        .edit_person(
            "zorg",
            &bert,
            &[(Field::JobTitle, Some("Senior nurse".to_string()))],
            &owners,
            &admin(),
            Utc::now(),
        )
        .await?;
    let next = env.sync(&app, TODAY).await?;

    // Assert
    assert!(is_refused(hr_owned, "connector `hr`"));
    assert_eq!(
        env.count("SELECT COUNT(*) FROM accounts WHERE last_name = 'Bos'")
            .await?,
        1,
        "the refused edit changed nothing"
    );
    assert_eq!(local.len(), 1);
    assert_eq!(local[0].old.as_deref(), Some("Nurse"));
    assert_eq!(actionable(&next), Vec::<String>::new());
    assert_eq!(
        env.count("SELECT COUNT(*) FROM memberships WHERE job_title = 'Senior nurse'")
            .await?,
        1,
        "a local field edited by hand survives the sync"
    );
    Ok(())
}

pub async fn a_role_granted_by_hand_is_kept_across_syncs_and_a_rules_role_cannot_be_revoked(
    env: TestEnv,
) -> anyhow::Result<()> {
    // Arrange
    env.write_feed(&BASE);
    let app = env.app().await?;
    env.sync(&app, TODAY).await?;
    let bert = email("bert@zorg.example");

    // Act
    let granted = app
        .store
        .grant_role("zorg", &bert, "admin", &admin(), Utc::now())
        .await?;
    let first = env.sync(&app, TODAY).await?;
    let second = env.sync(&app, TODAY).await?;
    let rule_role = app
        .store
        .revoke_role("zorg", &bert, "employee", &admin(), Utc::now())
        .await;

    // Assert
    assert!(granted);
    assert_eq!(count(&first, "role_revoke"), 0);
    assert_eq!(count(&second, "role_revoke"), 0);
    assert_eq!(
        env.count(
            "SELECT COUNT(*) FROM role_grants g JOIN roles r ON r.id = g.role_id \
             WHERE r.name = 'admin' AND g.connector_id IS NULL"
        )
        .await?,
        1,
        "the admin right granted by hand is kept"
    );
    assert!(is_refused(rule_role, "rule of connector `hr`"));
    assert!(
        app.store
            .revoke_role("zorg", &bert, "admin", &admin(), Utc::now())
            .await?
    );
    Ok(())
}

pub async fn a_suspension_is_kept_across_a_sync_and_ended_by_an_hr_leaver(
    env: TestEnv,
) -> anyhow::Result<()> {
    // Arrange
    env.write_feed(&BASE);
    let app = env.app().await?;
    env.sync(&app, TODAY).await?;
    let bert = email("bert@zorg.example");

    // Act
    app.store
        .suspend("zorg", &bert, &admin(), Utc::now())
        .await?;
    let kept = env.sync(&app, TODAY).await?;
    let status_after_sync = status(&app, "bert@zorg.example").await?;
    let leaving: Vec<String> = BASE
        .iter()
        .map(|row| {
            if row.starts_with("E2,") {
                row.replace(",active,", ",inactive,")
            } else {
                row.to_string()
            }
        })
        .collect();
    env.write_feed(&leaving.iter().map(String::as_str).collect::<Vec<_>>());
    let left = env.sync(&app, TODAY).await?;

    // Assert
    assert_eq!(actionable(&kept), Vec::<String>::new());
    assert_eq!(status_after_sync, "suspended", "a sync does not lift it");
    assert_eq!(count(&left, "deactivate"), 1);
    assert_eq!(status(&app, "bert@zorg.example").await?, "deactivated");
    assert_eq!(
        env.count("SELECT COUNT(*) FROM memberships WHERE suspended_at IS NOT NULL")
            .await?,
        0,
        "the deactivation ended the suspension"
    );
    Ok(())
}

pub async fn a_team_made_by_hand_keeps_its_coach_and_members_and_nobody_is_both(
    env: TestEnv,
) -> anyhow::Result<()> {
    // Arrange
    env.write_feed(&BASE);
    let app = env.app().await?;
    env.sync(&app, TODAY).await?;
    let key = hrsync::domain::TeamKey::parse("night").unwrap();
    let (anna, bert) = (email("anna@zorg.example"), email("bert@zorg.example"));
    let now = Utc::now();

    // Act
    app.store
        .create_team("zorg", &key, "Night shift", &admin(), now)
        .await?;
    app.store
        .add_team_link("zorg", &key, &bert, TeamRole::Member, &admin(), now)
        .await?;
    app.store
        .add_team_link("zorg", &key, &anna, TeamRole::Member, &admin(), now)
        .await?;
    app.store
        .add_team_link("zorg", &key, &anna, TeamRole::Coach, &admin(), now)
        .await?;
    let member_of_coached = app
        .store
        .add_team_link("zorg", &key, &anna, TeamRole::Member, &admin(), now)
        .await;
    let twice = app
        .store
        .create_team("zorg", &key, "Night", &admin(), now)
        .await;
    let next = env.sync(&app, TODAY).await?;
    let teams = app.store.list_teams("zorg").await?;

    // Assert
    assert!(is_refused(member_of_coached, "never both"));
    assert!(is_refused(twice, "has a team `night` already"));
    assert_eq!(actionable(&next), Vec::<String>::new());
    let night = teams.iter().find(|t| t.key == "night").unwrap();
    assert_eq!(night.connector, None);
    let members: Vec<&str> = night.members.iter().map(|p| p.email.as_str()).collect();
    let coaches: Vec<&str> = night.coaches.iter().map(|p| p.email.as_str()).collect();
    assert_eq!(members, ["bert@zorg.example"], "the coach is no member");
    assert_eq!(coaches, ["anna@zorg.example"]);
    let care = teams.iter().find(|t| t.key == "CARE").unwrap();
    let removing_hr_link = app
        .store
        .remove_team_link(
            "zorg",
            &hrsync::domain::TeamKey::parse(&care.key).unwrap(),
            &bert,
            TeamRole::Member,
            &admin(),
            now,
        )
        .await;
    assert!(is_refused(removing_hr_link, "HR decides"));
    Ok(())
}

pub async fn only_a_membership_made_by_hand_can_be_removed(env: TestEnv) -> anyhow::Result<()> {
    // Arrange
    env.write_feed(&BASE);
    let app = env.app().await?;
    env.sync(&app, TODAY).await?;
    let mut gerda = person("gerda@zorg.example");
    gerda.send_invite = false;
    let added = app.store.add_person(&gerda, &admin(), Utc::now()).await?;

    // Act
    let hr_managed = app
        .store
        .remove_membership("zorg", &email("bert@zorg.example"), &admin(), Utc::now())
        .await;
    app.store
        .remove_membership("zorg", &gerda.email, &admin(), Utc::now())
        .await?;
    let next = env.sync(&app, TODAY).await?;

    // Assert
    assert_eq!(added.mail, None, "no activation email was asked for");
    assert!(is_refused(hr_managed, "ends only through HR"));
    assert_eq!(
        env.count(&format!(
            "SELECT COUNT(*) FROM memberships WHERE account_id = {}",
            added.account_id
        ))
        .await?,
        0
    );
    assert_eq!(
        env.count(&format!(
            "SELECT COUNT(*) FROM accounts WHERE id = {}",
            added.account_id
        ))
        .await?,
        1,
        "the account stays"
    );
    assert_eq!(actionable(&next), Vec::<String>::new());
    let trail = app.store.audit_of_account(added.account_id).await?;
    let actions: Vec<AuditAction> = trail.iter().map(|e| e.action).collect();
    assert_eq!(
        actions,
        [
            AuditAction::PersonAdd,
            AuditAction::RoleGrant,
            AuditAction::Remove
        ]
    );
    Ok(())
}

pub async fn the_directory_reads_in_pages_and_a_sign_in_is_recorded_for_who_can_log_in(
    env: TestEnv,
) -> anyhow::Result<()> {
    // Arrange: Bert activated and is then suspended; Anna activated.
    env.write_feed(&BASE);
    let app = env.app().await?;
    env.sync(&app, TODAY).await?;
    env.sql("UPDATE accounts SET activated_at = '2026-11-24T10:00:00Z'")
        .await?;
    env.sql("UPDATE memberships SET state = 'active'").await?;
    let bert = email("bert@zorg.example");
    app.store
        .suspend("zorg", &bert, &admin(), Utc::now())
        .await?;
    let before = Utc::now();

    // Act
    let anna = app
        .store
        .record_sign_in(&email("anna@zorg.example"), Utc::now())
        .await?;
    let suspended = app.store.record_sign_in(&bert, Utc::now()).await?;
    let stranger = app
        .store
        .record_sign_in(&email("nobody@zorg.example"), Utc::now())
        .await?;
    let mut pages = Vec::new();
    let mut after = 0;
    loop {
        let query = hrsync::store::DirectoryQuery {
            after,
            limit: 2,
            updated_since: None,
        };
        let page = app.store.directory_page(&query).await?;
        pages.push(page.accounts.len());
        let next = page.next_after;
        if let Some(bert_row) = page
            .accounts
            .iter()
            .find(|a| a.email == "bert@zorg.example")
        {
            assert!(bert_row.memberships[0].suspended);
            assert!(!bert_row.memberships[0].can_log_in);
            assert!(
                bert_row
                    .roles
                    .iter()
                    .any(|r| r.role == "nurse" && !r.by_hand)
            );
            assert!(
                bert_row
                    .teams
                    .iter()
                    .any(|t| t.key == "CARE" && t.role == "member")
            );
        }
        match next {
            Some(n) => after = n,
            None => break,
        }
    }
    let since = hrsync::store::DirectoryQuery {
        after: 0,
        limit: 100,
        updated_since: Some(before),
    };
    let changed = app.store.directory_page(&since).await?;

    // Assert
    assert_eq!(anna, Some(true));
    assert_eq!(suspended, Some(false), "a suspended person cannot log in");
    assert_eq!(stranger, None);
    assert_eq!(pages, [2, 1], "three accounts, two to a page");
    let emails: Vec<&str> = changed.accounts.iter().map(|a| a.email.as_str()).collect();
    assert_eq!(
        emails,
        ["anna@zorg.example"],
        "only Anna's sign-in is new since"
    );
    Ok(())
}

pub async fn each_organisation_sends_its_mail_from_its_own_sender(
    mut env: TestEnv,
) -> anyhow::Result<()> {
    // Arrange: `zorg` has a sender of its own; `other` uses the global one.
    env.org_extra = "mail_from = \"Zorg HR <hr@zorg.example>\"".to_string();
    env.write_feed(&BASE);
    let app = env.app().await?;
    app.organisation("other").await?;
    let mut gerda = person("gerda@zorg.example");
    gerda.organisation = "other".to_string();

    // Act
    env.sync(&app, TODAY).await?;
    app.store.add_person(&gerda, &admin(), Utc::now()).await?;
    app.drain_outbox().await?;

    // Assert
    let mails = crate::support::eml_files(&env.outbox_dir());
    let from = |to: &str| {
        crate::support::mails_to(&mails, to)
            .first()
            .and_then(|m| m.header("From"))
            .unwrap_or_default()
    };
    assert!(
        from("anna@zorg.example").contains("hr@zorg.example"),
        "{}",
        from("anna@zorg.example")
    );
    assert!(
        from("gerda@zorg.example").contains("no-reply@zonnehof.example"),
        "{}",
        from("gerda@zorg.example")
    );
    Ok(())
}

pub async fn the_account_list_pages_sorts_filters_and_counts_in_the_database(
    env: TestEnv,
) -> anyhow::Result<()> {
    // Arrange: the base feed (Anna, Bert, Dirk synced), Bert suspended, Gerda added by hand
    // without an invitation, and a team made by hand that Dirk coaches.
    env.write_feed(&BASE);
    let app = env.app().await?;
    env.sync(&app, TODAY).await?;
    let now = Utc::now();
    app.store
        .suspend("zorg", &email("bert@zorg.example"), &admin(), now)
        .await?;
    let mut gerda = person("gerda@zorg.example");
    gerda.send_invite = false;
    app.store.add_person(&gerda, &admin(), now).await?;
    let night = hrsync::domain::TeamKey::parse("night").unwrap();
    app.store
        .create_team("zorg", &night, "Night", &admin(), now)
        .await?;
    app.store
        .add_team_link(
            "zorg",
            &night,
            &email("dirk@zorg.example"),
            TeamRole::Coach,
            &admin(),
            now,
        )
        .await?;
    let everyone = UserFilter::default();
    let page = |n: u32, sort: hrsync::store::UserSort, descending: bool| hrsync::store::UserPage {
        sort,
        descending,
        page: n,
        per_page: 2,
        count: true,
    };

    // Act
    let first = app
        .store
        .list_users_page(&everyone, page(1, hrsync::store::UserSort::Email, false))
        .await?;
    let second = app
        .store
        .list_users_page(&everyone, page(2, hrsync::store::UserSort::Email, false))
        .await?;
    let by_name_desc = app
        .store
        .list_users_page(&everyone, page(1, hrsync::store::UserSort::Name, true))
        .await?;
    let coaches = app
        .store
        .list_users(&UserFilter {
            team: Some("night".to_string()),
            ..UserFilter::default()
        })
        .await?;
    let volunteers = app
        .store
        .list_users(&UserFilter {
            role: Some("volunteer".to_string()),
            ..UserFilter::default()
        })
        .await?;
    let stats = app
        .store
        .user_stats(&everyone, now + chrono::Duration::days(1))
        .await?;

    // Assert
    let emails = |rows: &[hrsync::store::UserRow]| -> Vec<String> {
        rows.iter().map(|r| r.email.clone()).collect()
    };
    assert_eq!(first.total, 4);
    assert_eq!(
        emails(&first.rows),
        ["anna@zorg.example", "bert@zorg.example"]
    );
    assert_eq!(
        emails(&second.rows),
        ["dirk@zorg.example", "gerda@zorg.example"]
    );
    assert_eq!(
        emails(&by_name_desc.rows),
        ["gerda@zorg.example", "dirk@zorg.example"],
        "Gerda Groen, Dirk Dekker, Bert Bos, Anna Aalbers"
    );
    assert_eq!(emails(&coaches), ["dirk@zorg.example"]);
    assert_eq!(coaches[0].coach_of, ["Night"]);
    assert_eq!(emails(&volunteers), ["gerda@zorg.example"]);
    assert_eq!(volunteers[0].invitation, Some("not sent"));
    let bert = first
        .rows
        .iter()
        .find(|r| r.email == "bert@zorg.example")
        .unwrap();
    assert_eq!(bert.status, "suspended");
    assert!(!bert.can_log_in());
    assert_eq!(stats.total, 4);
    assert_eq!(
        stats.by_status,
        [
            ("invited", 3),
            ("active", 0),
            ("suspended", 1),
            ("deactivated", 0)
        ]
    );
    assert_eq!(stats.never_invited, 1, "Gerda");
    assert_eq!(
        stats.stale, 3,
        "every invited person is older than tomorrow's cut-off"
    );
    Ok(())
}

pub async fn a_far_page_of_the_account_list_holds_the_same_rows_read_from_either_end(
    env: TestEnv,
) -> anyhow::Result<()> {
    // Arrange: the base feed and 30 people added by hand, all named alike, so that pages far
    // down the list (read from its other end) must break the ties the same way.
    use hrsync::store::{UserPage, UserSort};
    env.write_feed(&BASE);
    let app = env.app().await?;
    env.sync(&app, TODAY).await?;
    let now = Utc::now();
    for n in 0..30 {
        let mut someone = person(&format!("p{n:02}@zorg.example"));
        someone.send_invite = false;
        app.store.add_person(&someone, &admin(), now).await?;
    }
    // As after a bulk apply: the statistics refreshed (ANALYZE on PostgreSQL).
    app.store.refresh_statistics().await?;
    let filters = [
        UserFilter::default(),
        UserFilter {
            search: Some("p1".to_string()),
            ..UserFilter::default()
        },
    ];
    let sorts = [
        (UserSort::Email, false),
        (UserSort::Email, true),
        (UserSort::Name, true),
        (UserSort::Activated, false),
        (UserSort::Activated, true),
        (UserSort::Status, false),
    ];
    for filter in &filters {
        for (sort, descending) in sorts {
            let page = |n: u32, per_page: u32| UserPage {
                sort,
                descending,
                page: n,
                per_page,
                count: false,
            };
            let whole = app.store.list_users_page(filter, page(1, 500)).await?;
            let expected: Vec<String> = whole.rows.iter().map(|r| r.email.clone()).collect();

            // Act: every page of one, and one past the end.
            let mut paged = Vec::new();
            for n in 1..=u32::try_from(expected.len())? + 1 {
                let one = app.store.list_users_page(filter, page(n, 1)).await?;
                paged.extend(one.rows.into_iter().map(|r| r.email));
            }
            let last_of_three = app
                .store
                .list_users_page(filter, page(u32::try_from(expected.len().div_ceil(3))?, 3))
                .await?;

            // Assert
            assert_eq!(
                paged, expected,
                "{filter:?} by {sort:?}, descending {descending}"
            );
            assert_eq!(
                last_of_three.rows.len(),
                match expected.len() % 3 {
                    0 => 3,
                    rest => rest,
                },
                "the last page holds what is left"
            );
        }
    }
    Ok(())
}

pub async fn the_teams_are_read_a_page_at_a_time_with_only_their_links(
    env: TestEnv,
) -> anyhow::Result<()> {
    // Arrange: the base feed's teams, and three teams made by hand, Dirk coaching one.
    env.write_feed(&BASE);
    let app = env.app().await?;
    env.sync(&app, TODAY).await?;
    let now = Utc::now();
    for key in ["zz-a", "zz-b", "zz-c"] {
        let key = hrsync::domain::TeamKey::parse(key).unwrap();
        app.store
            .create_team("zorg", &key, key.as_str(), &admin(), now)
            .await?;
    }
    let zz_b = hrsync::domain::TeamKey::parse("zz-b").unwrap();
    app.store
        .add_team_link(
            "zorg",
            &zz_b,
            &email("dirk@zorg.example"),
            TeamRole::Coach,
            &admin(),
            now,
        )
        .await?;
    let whole = app.store.list_teams("zorg").await?;

    // Act: pages of two.
    let mut paged = Vec::new();
    for page in 1..=u32::try_from(whole.len().div_ceil(2))? + 1 {
        paged.push(app.store.list_teams_page("zorg", page, 2).await?);
    }

    // Assert
    let keys = |teams: &[hrsync::store::TeamListing]| -> Vec<String> {
        teams.iter().map(|t| t.key.clone()).collect()
    };
    assert_eq!(keys(&paged.concat()), keys(&whole));
    assert!(paged.last().unwrap().is_empty(), "past the last page");
    assert!(paged.iter().all(|p| p.len() <= 2));
    let zz_b_listed = paged
        .concat()
        .into_iter()
        .find(|t| t.key == "zz-b")
        .unwrap();
    assert_eq!(
        zz_b_listed.coaches.len(),
        1,
        "its own links come with the page"
    );
    for (paged_team, whole_team) in paged.concat().iter().zip(&whole) {
        assert_eq!(paged_team.members.len(), whole_team.members.len());
        assert_eq!(paged_team.coaches.len(), whole_team.coaches.len());
    }
    Ok(())
}

pub async fn a_removal_by_hand_shows_in_whats_changed_and_admin_tokens_are_kept_apart(
    env: TestEnv,
) -> anyhow::Result<()> {
    // Arrange: Gerda added by hand with the admin right; a named admin with a session.
    use hrsync::store::PrincipalKind;
    env.write_feed(&BASE);
    let app = env.app().await?;
    env.sync(&app, TODAY).await?;
    let store = &app.store;
    let mut gerda = person("gerda@zorg.example");
    gerda.roles = vec!["admin".to_string()];
    store.add_person(&gerda, &admin(), Utc::now()).await?;
    store
        .add_principal(PrincipalKind::Admin, "Mira", "hash-one", Utc::now())
        .await?;
    let later = Utc::now() + chrono::Duration::hours(1);
    store
        .create_admin_session("mira-session", Some("Mira"), Utc::now(), later)
        .await?;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let before = Utc::now();

    // Act
    store
        .revoke_role("zorg", &gerda.email, "admin", &admin(), Utc::now())
        .await?;
    let changed = store
        .directory_page(&hrsync::store::DirectoryQuery {
            after: 0,
            limit: 100,
            updated_since: Some(before),
        })
        .await?;
    let named_admin = store
        .add_principal(PrincipalKind::Admin, "admin", "hash-two", Utc::now())
        .await;
    store
        .rotate_principal(PrincipalKind::Admin, "Mira", "hash-three")
        .await?;
    let session = store.admin_session("mira-session").await?;

    // Assert
    let emails: Vec<&str> = changed.accounts.iter().map(|a| a.email.as_str()).collect();
    assert_eq!(
        emails,
        ["gerda@zorg.example"],
        "the revoked admin right is a change"
    );
    assert!(changed.accounts[0].roles.iter().all(|r| r.role != "admin"));
    assert!(is_refused(named_admin, "configured admin token"));
    assert!(
        session.is_some_and(|s| s.revoked_at.is_some()),
        "rotating a token ends the sessions it started"
    );
    Ok(())
}
