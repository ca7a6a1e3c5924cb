//! The admin pages in a real browser: headless Chromium, driven over WebDriver, against
//! `hrsync serve` as a process. An admin signs in, starts a run and opens it, filters the
//! accounts, selects some and exports them as CSV and Excel. Screenshots of each page are saved
//! under `target/tmp/screenshots/` for people to look at.
//!
//! It needs Chromium and ChromeDriver (Debian's `chromium` and `chromium-driver`):
//! `HRSYNC_TEST_CHROMEDRIVER` names the chromedriver to use (and `HRSYNC_TEST_CHROMIUM` the
//! browser, `/usr/bin/chromium` by default). `.ci/run` installs both and sets it; without it
//! the test says so and does nothing.

// A test stops at the first thing that is not as expected.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "support/daemon.rs"]
mod daemon;
#[path = "support/smtp.rs"]
mod smtp;
#[path = "support/webdriver.rs"]
mod webdriver;

use std::path::{Path, PathBuf};
use std::time::Duration;

use daemon::{Daemon, SCIM_TOKEN_VAR, Setup, free_port, scim_server};
use smtp::SmtpSink;
use webdriver::Browser;
use wiremock::MockServer;

fn screenshots() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots")
}

/// Saves a screenshot and checks it is a PNG of a real page, not an empty one.
async fn snap(browser: &Browser, name: &str) {
    let png = browser.screenshot(&screenshots().join(name)).await;
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{name} is a PNG");
    assert!(
        png.len() > 10_000,
        "{name} shows a page ({} bytes)",
        png.len()
    );
}

/// Reloads the current page (a run's) until `css` matches an element whose text is not
/// `running`.
async fn until_finished(browser: &Browser, css: &str) -> String {
    let url = browser.wait_for_url("/runs/").await;
    for _ in 0..100 {
        browser.goto(&url).await;
        let text = browser.text(&browser.find(css).await).await;
        if text != "running" {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the run did not finish");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium and ChromeDriver: set HRSYNC_TEST_CHROMEDRIVER and run with --include-ignored (.ci/run does)"]
async fn admin_signs_in_runs_a_sync_filters_accounts_and_exports_them_in_chromium() {
    // Arrange: the daemon on a SCIM fixture server (seven people), and a browser.
    let chromedriver = std::env::var("HRSYNC_TEST_CHROMEDRIVER").expect(
        "the browser test was asked to run but HRSYNC_TEST_CHROMEDRIVER is not set: install \
         Debian's chromium and chromium-driver and set HRSYNC_TEST_CHROMEDRIVER=/usr/bin/chromedriver",
    );
    let chromium =
        std::env::var("HRSYNC_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_string());
    let dir = tempfile::tempdir().unwrap();
    let hr = MockServer::start().await;
    scim_server(&hr, Duration::ZERO).await;
    let smtp = SmtpSink::start().await;
    let port = free_port();
    let config = Setup::sqlite(dir.path(), port, &smtp.url(), &hr.uri()).write(dir.path());
    let mira = named_admin(&config, "Mira");
    let daemon = Daemon::start(dir.path(), port);
    daemon.ready().await;
    let base = daemon.base.clone();
    let browser = Browser::start(&chromedriver, &chromium, &dir.path().join("downloads")).await;

    // Act 1: an admin page without signing in leads to the sign-in form.
    browser.goto(&format!("{base}/accounts")).await;
    assert_eq!(browser.title().await, "Sign in · hrsync");
    browser
        .type_into(&browser.find("#token").await, "not-the-token")
        .await;
    browser.click(&browser.find("#sign-in").await).await;
    let refused = browser.text(&browser.find("p.error").await).await;
    browser
        .type_into(&browser.find("#token").await, &mira)
        .await;
    snap(&browser, "01-sign-in.png").await;
    browser.click(&browser.find("#sign-in").await).await;

    // Assert 1: a wrong token is refused; the right one leads back to the page asked for,
    // and the cookie holds a session id, never the token.
    assert_eq!(refused, "That is not an admin token.");
    browser.find("table#accounts").await;
    assert_eq!(browser.url().await, format!("{base}/accounts"));
    let session = browser
        .cookie("hrsync_admin")
        .await
        .expect("a sign-in cookie");
    assert_ne!(session, mira);
    assert_eq!(session.len(), 64, "{session}");

    // Act 2: start a run from the runs page; it opens the run.
    browser.click(&browser.find("#nav-runs").await).await;
    browser.click(&browser.find("#start-run").await).await;
    let held = until_finished(&browser, "#run-status").await;
    let invites = browser.text(&browser.find("#kind-invite").await).await;
    snap(&browser, "02-run-plan.png").await;
    browser.click(&browser.find("#approve").await).await;
    let status = until_finished(&browser, "#run-status").await;
    snap(&browser, "02-run.png").await;

    // Assert 2: the run showed its plan first (held for review, inviting people, grouped by
    // kind); approving it applied that plan.
    assert_eq!(held, "held");
    assert!(invites.starts_with("invite ("), "{invites}");
    assert_eq!(status, "approved");

    // Act 3: the runs table links to the run.
    browser.click(&browser.find("#nav-runs").await).await;
    assert_eq!(browser.find_all("svg#changes-chart").await.len(), 1);
    snap(&browser, "03-runs.png").await;
    let links = browser.find_all("table#runs tbody a").await;
    assert_eq!(links.len(), 1);
    browser.click(&links[0]).await;
    assert_eq!(
        browser.text(&browser.find("#run-status").await).await,
        "approved"
    );

    // Act 4: filter the accounts by text and status.
    browser.click(&browser.find("#nav-accounts").await).await;
    let everyone = browser.find_all("table#accounts tbody tr").await.len();
    browser
        .type_into(&browser.find("#q").await, "janssen")
        .await;
    browser
        .click(&browser.find("#status option[value=invited]").await)
        .await;
    browser.click(&browser.find("#apply-filter").await).await;
    let url = browser.wait_for_url("q=janssen").await;
    snap(&browser, "04-accounts-filtered.png").await;

    // Assert 4: the filter is in the address and only Zoë Janssen is shown.
    assert!(
        url.contains("q=janssen") && url.contains("status=invited"),
        "{url}"
    );
    let rows = browser.find_all("table#accounts tbody tr").await;
    assert_eq!(rows.len(), 1);
    let row = browser.text(&rows[0]).await;
    assert!(
        row.contains("zoe.janssen@thuiszorg-oost.example.org"),
        "{row}"
    );
    assert!(everyone > 1, "more accounts without the filter");

    // Act 5: select two invited accounts and export them, as CSV and as Excel.
    browser
        .goto(&format!("{base}/accounts?status=invited"))
        .await;
    let boxes = browser
        .find_all("table#accounts tbody input[type=checkbox]")
        .await;
    assert!(boxes.len() >= 2);
    browser.click(&boxes[0]).await;
    browser.click(&boxes[1]).await;
    let rows = browser.find_all("table#accounts tbody tr").await;
    let (first, second) = (browser.text(&rows[0]).await, browser.text(&rows[1]).await);
    snap(&browser, "05-accounts-selected.png").await;
    browser.click(&browser.find("#export-csv").await).await;
    let csv = browser.downloaded(".csv", Duration::from_secs(20)).await;
    browser.click(&browser.find("#export-xlsx").await).await;
    let xlsx = browser.downloaded(".xlsx", Duration::from_secs(20)).await;

    // Assert 5: the CSV holds the two selected accounts and nothing else; the Excel file is a
    // workbook (a zip archive).
    let csv = std::fs::read_to_string(csv).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "a header and two accounts:\n{csv}");
    assert!(lines[0].starts_with("organisation,email"), "{csv}");
    let exported: Vec<&str> = lines[1..]
        .iter()
        .map(|line| line.split(',').nth(1).unwrap())
        .collect();
    assert_ne!(exported[0], exported[1]);
    for email in exported {
        assert!(
            first.contains(email) || second.contains(email),
            "{email} is one of the selected rows:\n{first}\n{second}"
        );
    }
    let workbook = std::fs::read(xlsx).unwrap();
    assert!(
        workbook.starts_with(b"PK\x03\x04"),
        "an .xlsx is a zip archive"
    );

    // Act 6: administration by hand, as Mira: add a person, edit a field of theirs, grant
    // admin rights, make a team with them as coach, suspend and lift the suspension; and
    // look at a person HR keeps.
    administration_by_hand(&browser, &base).await;

    // Act 7: sign out; then put the signed-out session's cookie back, as a copy kept
    // elsewhere would be sent.
    browser.click(&browser.find("#sign-out").await).await;
    browser.find("#sign-in").await;
    browser.goto(&format!("{base}/runs")).await;
    let after_sign_out = browser.title().await;
    browser.set_cookie("hrsync_admin", &session).await;
    browser.goto(&format!("{base}/runs")).await;

    // Assert 7: the admin pages ask for the token again, the old cookie included: the
    // session ended on the server.
    assert_eq!(after_sign_out, "Sign in · hrsync");
    assert_eq!(browser.title().await, "Sign in · hrsync");
    assert!(browser.url().await.contains("/signin?next="));
    browser.quit().await;
    eprintln!("screenshots are in {}", screenshots().display());
}

/// Adds a named admin with `hrsync admins add` and returns the token it printed.
fn named_admin(config: &Path, name: &str) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hrsync"))
        .args(["--config", config.to_str().unwrap(), "admins", "add", name])
        .env(SCIM_TOKEN_VAR, "scim-token")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .strip_prefix("token: ")
        .expect("the token")
        .to_string()
}

/// The text of `css` once it satisfies `ok` (a click's page load may still be on its way),
/// or what it was after 10 s.
async fn settled(browser: &Browser, css: &str, ok: impl Fn(&str) -> bool) -> String {
    let mut text = String::new();
    for _ in 0..50 {
        if let Some(now) = browser.text_now(css).await {
            text = now;
            if ok(&text) {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    text
}

/// The texts of the person page's history table, one per row.
async fn history(browser: &Browser) -> Vec<String> {
    let mut rows = Vec::new();
    for row in browser.find_all("table#history tbody tr").await {
        rows.push(browser.text(&row).await);
    }
    rows
}

/// Act and assert 6: administration by hand in the pages, signed in as Mira.
async fn administration_by_hand(browser: &Browser, base: &str) {
    // Add a person by hand, without an activation email.
    browser.click(&browser.find("#nav-add-person").await).await;
    browser
        .type_into(&browser.find("#email").await, "piet.hand@example.org")
        .await;
    browser
        .type_into(&browser.find("#first_name").await, "Piet")
        .await;
    browser
        .type_into(&browser.find("#last_name").await, "Handwerk")
        .await;
    browser
        .type_into(&browser.find("#job_title").await, "Volunteer")
        .await;
    browser.click(&browser.find("#send_invite").await).await;
    snap(browser, "06-add-person.png").await;
    browser.click(&browser.find("#add").await).await;
    browser.wait_for_url("/people/").await;
    let person_page = browser.url().await;

    // A field no connector keeps is open; edit it.
    let job_title = browser.find("#field-job_title").await;
    assert_eq!(browser.attribute(&job_title, "disabled").await, None);
    browser.type_into(&job_title, "Coordinator").await;
    browser.click(&browser.find("#save").await).await;
    let saved = settled(browser, "table#history", |t| t.contains("Coordinator")).await;
    assert!(saved.contains("Volunteer → Coordinator"), "{saved}");

    // Admin rights.
    browser
        .type_into(&browser.find("#grant-role").await, "admin")
        .await;
    browser.click(&browser.find("#grant").await).await;
    let roles = settled(browser, "#roles", |t| t.contains("admin")).await;
    assert!(roles.contains("admin (by hand)"), "{roles}");

    // A team made by hand, with Piet as its coach.
    browser.click(&browser.find("#nav-teams").await).await;
    browser
        .type_into(&browser.find("#new-team-key").await, "night")
        .await;
    browser
        .type_into(&browser.find("#new-team-name").await, "Night shift")
        .await;
    browser.click(&browser.find("#create").await).await;
    settled(browser, "tr#team-night", |t| t.contains("Night shift")).await;
    browser.goto(&person_page).await;
    browser
        .type_into(&browser.find("#team-key").await, "night")
        .await;
    browser
        .click(&browser.find("#team-role option[value=coach]").await)
        .await;
    browser.click(&browser.find("#add-to-team").await).await;
    let teams = settled(browser, "#teams", |t| t.contains("coach of")).await;
    assert!(teams.contains("coach of Night shift"), "{teams}");

    // Suspend, then lift it.
    browser.click(&browser.find("#suspend").await).await;
    let suspended = settled(browser, "#membership-state", |t| t == "suspended").await;
    snap(browser, "07-person-suspended.png").await;
    browser.click(&browser.find("#unsuspend").await).await;
    let lifted = settled(browser, "#membership-state", |t| t == "invited").await;
    assert_eq!(suspended, "suspended");
    assert_eq!(lifted, "invited");

    // The history names Mira for each action.
    let lines = history(browser).await;
    snap(browser, "08-person-history.png").await;
    for action in [
        "added by hand",
        "changed a field `job_title`: Volunteer → Coordinator",
        "granted a role `admin`",
        "made coach of a team `night`",
        "suspended",
        "suspension lifted",
    ] {
        assert!(
            lines
                .iter()
                .any(|l| l.contains("Mira (page)") && l.contains(action)),
            "{action} by Mira in:\n{}",
            lines.join("\n")
        );
    }

    // A person HR keeps: their names are locked, naming the connector.
    browser
        .goto(&format!("{base}/accounts?q=zoe.janssen"))
        .await;
    let link = browser.find("table#accounts tbody a").await;
    browser.click(&link).await;
    browser.wait_for_url("/people/").await;
    let last_name = browser.find("#field-last_name").await;
    assert_eq!(
        browser.attribute(&last_name, "disabled").await.as_deref(),
        Some("true")
    );
    let locks = browser.text(&browser.find("#edit").await).await;
    assert!(locks.contains("connector `scim_hr`"), "{locks}");
    snap(browser, "09-person-hr-locked.png").await;
}
