//! The `hrsync` binary as README.md tells people to run it, in a copy of the repository's
//! `config/` folder: the embedded default, exit codes, and the report formats.

// A test stops at the first thing that is not as expected.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "support/checkout.rs"]
mod checkout;

use std::path::PathBuf;
use std::process::{Command, Output};

struct Checkout {
    dir: tempfile::TempDir,
}

impl Checkout {
    /// A folder with the bundled configuration and example exports, and nothing else.
    fn new() -> Checkout {
        Checkout {
            dir: checkout::config_copy(),
        }
    }

    fn hrsync(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_hrsync"))
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("HRSYNC_CONFIG")
            .env_remove("HRSYNC__DATABASE__URL")
            .output()
            .expect("running hrsync")
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(o)))
}

fn actionable(report: &serde_json::Value) -> i64 {
    report["counts"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "scheduled" | "quarantine" | "conflict"))
        .map(|(_, v)| v.as_i64().unwrap())
        .sum()
}

#[test]
fn first_sync_of_the_bundled_example_shows_every_kind_of_change_and_the_second_applies_nothing() {
    let repo = Checkout::new();

    let first = repo.hrsync(&["sync"]);
    let again = repo.hrsync(&["plan", "--format", "json"]);

    assert_eq!(
        first.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let text = stdout(&first);
    for kind in [
        "invite (",
        "link (",
        "team_join (",
        "coach_assign (",
        "role_grant (",
        "scheduled (",
        "quarantine (",
    ] {
        assert!(text.contains(kind), "no `{kind}` in:\n{text}");
    }
    assert!(
        text.contains("Zoë") || text.contains("zoe.janssen"),
        "non-ASCII names survive"
    );
    let emails = std::fs::read_dir(repo.path("data/outbox")).unwrap().count();
    assert_eq!(
        emails, 30,
        "one activation email per invited or linked person"
    );
    assert_eq!(again.status.code(), Some(0));
    let reports = json(&again);
    let reports = reports.as_array().expect("one report per connector");
    assert_eq!(reports.len(), 2);
    for r in reports {
        assert_eq!(actionable(r), 0, "{r:#}");
    }
}

#[test]
fn plan_as_of_a_later_date_invites_the_starter_and_deactivates_the_leaver() {
    let repo = Checkout::new();
    repo.hrsync(&["sync"]);

    let later = repo.hrsync(&[
        "plan",
        "--connector",
        "zonnehof_hr",
        "--as-of",
        "2028-04-01",
        "--format",
        "json",
    ]);

    let report = json(&later);
    let changes = report["changes"].as_array().unwrap();
    let has = |kind: &str, id: &str| {
        changes
            .iter()
            .any(|c| c["kind"] == kind && c["employee_id"] == id)
    };
    assert!(
        has("invite", "ZH020"),
        "the future starter is invited on 2028-04-01"
    );
    assert!(
        has("deactivate", "ZH015"),
        "the leaver's end date 2028-03-31 has passed"
    );
    assert_eq!(report["mode"], "plan");
    assert_eq!(report["status"], "succeeded");
}

#[test]
fn report_is_available_as_text_json_and_csv() {
    let repo = Checkout::new();
    repo.hrsync(&["sync", "--connector", "dekring_hr"]);

    let text = repo.hrsync(&["report", "1"]);
    let as_json = repo.hrsync(&["report", "1", "--format", "json"]);
    let as_csv = repo.hrsync(&["report", "1", "--format", "csv"]);
    let runs = repo.hrsync(&["runs"]);

    assert!(stdout(&text).starts_with("Run 1 · dekring · connector dekring_hr · apply"));
    let r = json(&as_json);
    for key in [
        "run_id",
        "organisation",
        "connector",
        "trigger",
        "mode",
        "status",
        "as_of",
        "started_at",
        "finished_at",
        "records_fetched",
        "counts",
        "changes",
        "errors",
    ] {
        assert!(r.get(key).is_some(), "no `{key}` in the JSON report");
    }
    assert_eq!(r["counts"]["invite"], 4);
    let csv = stdout(&as_csv);
    assert!(csv.starts_with("run_id,kind,employee_id,email,field,old,new,reason\n"));
    assert_eq!(
        csv.lines().count(),
        1 + r["changes"].as_array().unwrap().len()
    );
    assert!(stdout(&runs).contains("dekring_hr"));
}

#[test]
fn mass_deactivation_exits_with_3_and_approve_applies_it() {
    let repo = Checkout::new();
    repo.hrsync(&["sync", "--connector", "zonnehof_hr"]);
    let export = repo.path("config/examples/zonnehof-export.csv");
    let text = std::fs::read_to_string(&export).unwrap();
    let kept: Vec<&str> = text.lines().take(20).collect();
    std::fs::write(&export, kept.join("\n") + "\n").unwrap();

    let held = repo.hrsync(&["sync", "--connector", "zonnehof_hr", "--format", "json"]);
    let run_id = json(&held)["run_id"].as_i64().unwrap();
    let approved = repo.hrsync(&["approve", &run_id.to_string()]);
    let after = repo.hrsync(&["plan", "--connector", "zonnehof_hr", "--format", "json"]);

    assert_eq!(held.status.code(), Some(3), "a held run exits with 3");
    assert_eq!(
        json(&held)["errors"][0]["code"],
        "HR202",
        "an export that lost a third of its people is held by the feed-health gate"
    );
    assert_eq!(
        approved.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&approved.stderr)
    );
    assert!(stdout(&approved).contains("approved"));
    assert_eq!(actionable(&json(&after)), 0);
}

#[test]
fn malformed_export_fails_with_exit_1_and_names_file_and_line() {
    let repo = Checkout::new();
    let export = repo.path("config/examples/dekring-export.csv");
    let mut text = std::fs::read_to_string(&export).unwrap();
    text.push_str("DK05,new@dekring.example,New,Person,,KDV,,,,,,2026-13-01,,active\n");
    std::fs::write(&export, text).unwrap();

    let run = repo.hrsync(&["sync", "--connector", "dekring_hr", "--format", "json"]);
    let users = repo.hrsync(&["users", "--format", "json"]);

    let check = repo.hrsync(&["check"]);

    assert_eq!(run.status.code(), Some(1));
    assert_eq!(check.status.code(), Some(1), "check reads the export too");
    assert!(String::from_utf8_lossy(&check.stderr).contains("dekring-export.csv line 6"));
    let report = json(&run);
    assert_eq!(report["status"], "failed");
    let message = report["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("dekring-export.csv line 6"), "{message}");
    assert_eq!(json(&users), serde_json::json!([]), "nothing applied");
}

#[test]
fn check_lists_every_problem_and_exits_1() {
    let repo = Checkout::new();
    let config = repo.path("config/hrsync.toml");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("[database]\n", "[database]\npool_size = 3\n")
        .replace(
            "time_zone = \"Europe/Amsterdam\"\nlocale = \"nl\"\n\n[organisations.dekring]",
            "time_zone = \"Mars/Olympus\"\nlocale = \"nl\"\n\n[organisations.dekring]",
        );
    std::fs::write(&config, text).unwrap();

    let check = repo.hrsync(&["check"]);
    let sync = repo.hrsync(&["sync"]);

    assert_eq!(check.status.code(), Some(1));
    let errors = String::from_utf8_lossy(&check.stderr);
    assert!(
        errors.contains("config/hrsync.toml: database.pool_size: unknown key"),
        "{errors}"
    );
    assert_eq!(
        sync.status.code(),
        Some(1),
        "nothing runs on a bad configuration"
    );
    assert!(
        !repo.path("data/hrsync.db").exists(),
        "not even the database is created"
    );
}

#[test]
fn users_are_listed_and_an_invite_can_be_resent() {
    let repo = Checkout::new();
    repo.hrsync(&["sync"]);

    let users = repo.hrsync(&[
        "users", "--org", "zonnehof", "--search", "visser", "--format", "csv",
    ]);
    let resend = repo.hrsync(&[
        "invite",
        "resend",
        "ANOUK.VISSER@mail.example",
        "--org",
        "zonnehof",
    ]);

    let csv = stdout(&users);
    assert_eq!(csv.lines().count(), 2, "{csv}");
    assert!(csv.contains("ZH014") && csv.contains("invited"), "{csv}");
    assert_eq!(
        resend.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&resend.stderr)
    );
    assert!(stdout(&resend).contains("earlier link no longer works"));
}

#[test]
fn check_prints_each_exports_record_count() {
    let repo = Checkout::new();

    let out = repo.hrsync(&["check"]);

    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = stdout(&out);
    assert!(
        text.contains("config/examples/dekring-export.csv holds "),
        "{text}"
    );
    assert!(
        text.contains("config/examples/zonnehof-export.csv holds "),
        "{text}"
    );
}

#[test]
fn check_names_the_line_of_an_export_cut_inside_a_quoted_value() {
    let repo = Checkout::new();
    let path = repo.path("config/examples/dekring-export.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    let lines = text.lines().count();
    std::fs::write(&path, format!("{}\"Eng", text)).unwrap();

    let out = repo.hrsync(&["check"]);

    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("dekring-export.csv line {}", lines + 1))
            && err.contains("never closes"),
        "{err}"
    );
}

#[test]
fn sync_with_no_send_queues_the_email_and_the_next_sync_sends_it() {
    let repo = Checkout::new();

    let queued = repo.hrsync(&["sync", "--no-send"]);
    let outbox = repo.path("data/outbox");
    let before = std::fs::read_dir(&outbox).map(|d| d.count()).unwrap_or(0);
    let sent = repo.hrsync(&["sync"]);

    assert_eq!(
        queued.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&queued.stderr)
    );
    assert!(String::from_utf8_lossy(&queued.stderr).contains("queued, not sent"));
    assert_eq!(before, 0, "nothing was sent");
    assert_eq!(sent.status.code(), Some(0));
    assert_eq!(std::fs::read_dir(&outbox).unwrap().count(), 30);
}

#[test]
fn mail_send_sends_what_a_sync_queued_and_mail_status_counts_it() {
    let repo = Checkout::new();
    repo.hrsync(&["sync", "--no-send"]);

    let waiting = repo.hrsync(&["mail", "status"]);
    let sent = repo.hrsync(&["mail", "send"]);
    let after = repo.hrsync(&["mail", "status"]);

    assert_eq!(waiting.status.code(), Some(0));
    assert!(
        stdout(&waiting).contains("waiting:       30\n"),
        "{}",
        stdout(&waiting)
    );
    assert_eq!(sent.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&sent.stderr)
            .contains("Mail: 30 sent (as .eml files in data/outbox), 0 failed."),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    assert_eq!(
        std::fs::read_dir(repo.path("data/outbox")).unwrap().count(),
        30
    );
    assert!(
        stdout(&after).contains("waiting:       0\n"),
        "{}",
        stdout(&after)
    );
    assert!(
        stdout(&after).contains("sent:          30\n"),
        "{}",
        stdout(&after)
    );
}

#[test]
fn a_large_run_shows_the_first_lines_of_each_kind_and_every_line_with_all_json_or_csv() {
    let repo = Checkout::new();
    let synced = repo.hrsync(&["sync", "--connector", "zonnehof_hr", "--no-send"]);

    let whole = json(&repo.hrsync(&["report", "1", "--format", "json"]));
    let all = stdout(&repo.hrsync(&["report", "1", "--all"]));
    let csv = stdout(&repo.hrsync(&["report", "1", "--format", "csv"]));

    // Arrange's check: the example has more invitations than a summary lists.
    let invites: Vec<String> = whole["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == "invite")
        .map(|c| c["employee_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(whole["counts"]["invite"], invites.len());
    assert!(invites.len() > 20, "{}", invites.len());
    let summary = stdout(&synced);
    assert!(
        summary.contains(&format!(
            "… and {} more; `hrsync report 1 --all` lists every line.",
            invites.len() - 20
        )),
        "{summary}"
    );
    let section = |text: &str| -> String {
        let start = text.find("\ninvite (").expect("an invite section");
        let rest = &text[start + 1..];
        rest[..rest.find("\n\n").unwrap_or(rest.len())].to_string()
    };
    let shown = section(&summary);
    assert!(shown.contains(&format!("  {} ", invites[19])), "{shown}");
    assert!(!shown.contains(&format!("  {} ", invites[20])), "{shown}");
    let listed = section(&all);
    for id in &invites {
        assert!(listed.contains(&format!("  {id} ")), "{id} is not in --all");
    }
    assert!(!all.contains("more; `hrsync report"), "{all}");
    let lines: i64 = whole["counts"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_i64().unwrap())
        .sum();
    assert_eq!(whole["changes"].as_array().unwrap().len() as i64, lines);
    assert_eq!(csv.lines().count() as i64, 1 + lines);
}

#[test]
fn an_admin_adds_a_person_by_hand_and_their_history_names_the_admin() {
    let repo = Checkout::new();
    assert!(repo.hrsync(&["sync"]).status.success());
    let hr_person = "annelies.vandenberg@zonnehof.example";
    let by = ["--org", "zonnehof", "--by", "Mira"];

    let added = repo.hrsync(
        &[
            &["accounts", "add", "piet@example.nl", "--first-name", "Piet"][..],
            &["--role", "admin", "--format", "json"],
            &by,
        ]
        .concat(),
    );
    let locked = repo.hrsync(
        &[
            &["accounts", "edit", hr_person, "--set", "last_name=X"][..],
            &by,
        ]
        .concat(),
    );
    let coached = repo.hrsync(&[&["teams", "create", "night"][..], &by].concat());
    let suspended = repo.hrsync(&[&["accounts", "suspend", "piet@example.nl"][..], &by].concat());
    let history = repo.hrsync(&["accounts", "history", "piet@example.nl", "--format", "json"]);
    let listed = repo.hrsync(&["users", "--org", "zonnehof", "--status", "suspended"]);
    let exported = repo.hrsync(&["users", "--org", "zonnehof", "--format", "csv"]);
    let audit_csv = repo.hrsync(&["audit", "--format", "csv"]);
    let bogus = repo.hrsync(&["users", "--status", "bogus"]);

    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    assert_eq!(json(&added)["state"], "invited");
    assert_eq!(json(&added)["mail"], "activation");
    assert_eq!(locked.status.code(), Some(1));
    let refusal = String::from_utf8_lossy(&locked.stderr);
    assert!(refusal.contains("connector `zonnehof_hr`"), "{refusal}");
    assert!(coached.status.success());
    assert!(suspended.status.success());
    let trail = json(&history);
    let actions: Vec<&str> = trail
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["person_add", "role_grant", "suspend"]);
    assert!(
        trail
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["actor"] == "Mira" && e["via"] == "cli")
    );
    assert!(stdout(&listed).contains("piet@example.nl"));
    let csv = stdout(&audit_csv);
    assert!(csv.starts_with("id,at,actor,via,action,"), "{csv}");
    assert!(
        csv.contains(",Mira,cli,person_add,zonnehof,piet@example.nl,"),
        "{csv}"
    );
    assert!(
        csv.contains(",Mira,cli,team_create,zonnehof,,,night,"),
        "{csv}"
    );
    assert!(exported.status.success());
    assert!(
        csv.contains(",run_start,zonnehof,,"),
        "the sync's runs: {csv}"
    );
    assert!(
        csv.contains(",export,zonnehof,,,csv,"),
        "the CSV export: {csv}"
    );
    assert_eq!(
        bogus.status.code(),
        Some(2),
        "an unknown status is a usage error"
    );
    assert!(String::from_utf8_lossy(&bogus.stderr).contains("suspended"));
}
