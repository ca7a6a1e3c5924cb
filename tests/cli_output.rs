//! The command line as an operator meets it, running the binary: a dry run told in the future
//! tense with a closing line, a held run naming the command that applies it, `--all`, a reader
//! that goes away (`| head`), usage errors that name the allowed values, colour only where it
//! belongs, connection errors that say what failed, and help that documents every argument.

// A test stops at the first thing that is not as expected.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "support/checkout.rs"]
mod checkout;

use std::io::Read as _;
use std::process::{Command, Output, Stdio};

use clap::CommandFactory as _;

/// A folder with the bundled configuration and example exports.
struct Checkout(tempfile::TempDir);

impl Checkout {
    fn new() -> Checkout {
        Checkout(checkout::config_copy())
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_hrsync"));
        command
            .args(args)
            .current_dir(self.0.path())
            .env_remove("HRSYNC_CONFIG")
            .env_remove("HRSYNC__DATABASE__URL")
            .env_remove("NO_COLOR")
            .env_remove("CLICOLOR_FORCE")
            .env_remove("HRSYNC_LOG")
            .env_remove("HRSYNC_LOG_FORMAT");
        command
    }

    fn hrsync(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("running hrsync")
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_dry_run_speaks_in_the_future_tense_and_ends_saying_nothing_was_applied() {
    // Arrange
    let repo = Checkout::new();

    // Act
    let plan = repo.hrsync(&["plan", "--connector", "zonnehof_hr"]);

    // Assert
    let text = stdout(&plan);
    assert_eq!(plan.status.code(), Some(0), "{}", stderr(&plan));
    assert!(text.contains("dry run (command) · succeeded"), "{text}");
    assert!(text.contains("\ninvite (26) · will be invited"), "{text}");
    assert!(!text.contains("account created"), "{text}");
    let last = text.trim_end().lines().last().unwrap();
    assert!(
        last.starts_with("Plan: 26 to invite, 21 team joins,")
            && last.contains("; 1 scheduled, 2 quarantined.")
            && last.ends_with("Nothing was applied (dry run); `hrsync sync` applies it."),
        "{last}"
    );
}

#[test]
fn an_applied_run_speaks_in_the_past_tense_and_a_rerun_says_there_is_nothing_to_do() {
    // Arrange
    let repo = Checkout::new();

    // Act
    let first = repo.hrsync(&["sync", "--connector", "zonnehof_hr"]);
    let again = repo.hrsync(&["sync", "--connector", "zonnehof_hr"]);

    // Assert
    let text = stdout(&first);
    assert!(text.contains("\ninvite (26) · invited"), "{text}");
    assert!(
        text.trim_end()
            .lines()
            .last()
            .unwrap()
            .starts_with("Applied: 26 invited, 21 team joins,"),
        "{text}"
    );
    let text = stdout(&again);
    let last = text.trim_end().lines().last().unwrap();
    assert!(
        last.starts_with("No changes: HR and the directory agree; there is nothing to do.")
            && last.contains("The 1 scheduled, 2 quarantined lines are listed at every run")
            && last.contains("they are not pending work"),
        "{last}"
    );
    assert!(
        stderr(&first).contains("Runs are kept in sqlite://data/hrsync.db")
            && stderr(&first).contains("Mail: 26 sent (as .eml files in data/outbox), 0 failed."),
        "{}",
        stderr(&first)
    );
}

#[test]
fn a_held_run_names_its_reason_and_the_command_that_applies_it() {
    // Arrange: a first sync, then an export that lost most of its people.
    let repo = Checkout::new();
    repo.hrsync(&["sync", "--connector", "zonnehof_hr"]);
    let export = repo.0.path().join("config/examples/zonnehof-export.csv");
    let whole = std::fs::read_to_string(&export).unwrap();
    let kept: Vec<&str> = whole.lines().take(4).collect();
    std::fs::write(&export, kept.join("\n") + "\n").unwrap();

    // Act
    let held = repo.hrsync(&["sync", "--connector", "zonnehof_hr"]);

    // Assert
    let text = stdout(&held);
    assert_eq!(held.status.code(), Some(3), "{text}{}", stderr(&held));
    let run_id = text
        .strip_prefix("Run ")
        .and_then(|rest| rest.split(' ').next())
        .unwrap();
    assert!(text.contains("· held\n"), "{text}");
    assert!(
        text.contains("\nHR202: the feed has 3 records") && text.contains("\nHR201: "),
        "the reasons it is held: {text}"
    );
    assert!(text.contains("\ndeactivate ("), "{text}");
    assert!(text.contains("will be deactivated"), "{text}");
    let last = text.trim_end().lines().last().unwrap();
    assert!(
        last.starts_with("Held: ")
            && last.contains("Nothing was applied.")
            && last.contains(&format!("`hrsync approve {run_id}`")),
        "{last}"
    );
}

#[test]
fn the_text_report_shows_the_first_lines_of_a_kind_and_all_shows_every_line() {
    // Arrange: the zonnehof run grants 37 roles, more than the 20 shown of a kind.
    let repo = Checkout::new();

    // Act
    let short = repo.hrsync(&["plan", "--connector", "zonnehof_hr"]);
    let all = repo.hrsync(&["plan", "--connector", "zonnehof_hr", "--all"]);

    // Assert
    let short = stdout(&short);
    let all = stdout(&all);
    let grants = |text: &str| {
        text.split("\nrole_grant (37)")
            .nth(1)
            .unwrap()
            .split("\n\n")
            .next()
            .unwrap()
            .lines()
            .filter(|l| l.starts_with("  ZH"))
            .count()
    };
    assert_eq!(grants(&short), 20, "{short}");
    assert!(short.contains("… and 17 more; `hrsync report"), "{short}");
    assert_eq!(grants(&all), 37, "{all}");
    assert!(!all.contains("… and"), "{all}");
    assert!(all.trim_end().lines().last().unwrap().starts_with("Plan: "));
}

#[test]
fn a_reader_that_went_away_ends_the_command_quietly() {
    // Arrange: stdout and stderr into one pipe whose reading end is already closed, as in
    // `hrsync sync 2>&1 | head -0`.
    let repo = Checkout::new();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);

    // Act: with logs at info level too, which go to the same closed pipe.
    let status = repo
        .command(&["sync"])
        .env("HRSYNC_LOG", "info")
        .stdout(writer.try_clone().unwrap())
        .stderr(writer)
        .status()
        .unwrap();
    let report = repo.hrsync(&["report", "2", "--all"]);

    // Assert: no panic (101), and the sync itself was done.
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert_eq!(report.status.code(), Some(0), "{}", stderr(&report));
    assert!(stdout(&report).contains("Applied: 25 invited"));
}

#[test]
fn a_reader_that_stops_reading_midway_ends_the_command_quietly() {
    // Arrange: a report far longer than a pipe holds (64 KiB): 2,000 more people at De Kring,
    // and a reader that takes 16 bytes of it.
    let repo = Checkout::new();
    let export = repo.0.path().join("config/examples/dekring-export.csv");
    let mut feed = std::fs::read_to_string(&export).unwrap();
    for n in 0..2000 {
        feed.push_str(&format!(
            "DKX{n:04},p{n:04}@dekring.example,Pim,Jansen {n},Pim Jansen {n},KDV,\
             Kinderdagverblijf,De Kring Oost,DK01,Pedagogisch medewerker,vast,2020-01-01,,active\n"
        ));
    }
    std::fs::write(&export, feed).unwrap();
    let synced = repo.hrsync(&["sync", "--connector", "dekring_hr", "--no-send"]);
    assert_eq!(synced.status.code(), Some(0), "{}", stderr(&synced));
    let mut command = repo.command(&["report", "1", "--format", "json"]);
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // Act
    let mut first = [0u8; 16];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    let mut errors = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut errors)
        .unwrap();
    let status = child.wait().unwrap();

    // Assert
    assert_eq!(status.code(), Some(0), "{errors}");
    assert!(errors.is_empty(), "{errors}");
}

#[test]
fn an_unknown_status_or_organisation_is_a_usage_error_naming_the_allowed_values() {
    // Arrange
    let repo = Checkout::new();

    // Act
    let status = repo.hrsync(&["users", "--status", "bogus"]);
    let org = repo.hrsync(&["users", "--org", "nope"]);
    let connector = repo.hrsync(&["plan", "--connector", "nope"]);

    // Assert
    assert_eq!(status.status.code(), Some(2));
    assert!(
        stderr(&status).contains("invited, active, suspended, deactivated"),
        "{}",
        stderr(&status)
    );
    assert_eq!(org.status.code(), Some(2));
    assert!(
        stderr(&org).contains("`nope` is not an organisation")
            && stderr(&org).contains("dekring, zonnehof"),
        "{}",
        stderr(&org)
    );
    assert_eq!(connector.status.code(), Some(2));
    assert!(
        stderr(&connector).contains("dekring_hr, zonnehof_hr"),
        "{}",
        stderr(&connector)
    );
    assert!(stdout(&status).is_empty() && stdout(&org).is_empty());
}

#[test]
fn an_invitation_is_resent_in_the_persons_only_organisation_without_naming_it() {
    // Arrange: two organisations; Jesse is in one, Anouk in both.
    let repo = Checkout::new();
    repo.hrsync(&["sync"]);

    // Act
    let jesse = repo.hrsync(&["invite", "resend", "jesse.obrien@dekring.example"]);
    let anouk = repo.hrsync(&["invite", "resend", "anouk.visser@mail.example"]);

    // Assert
    assert_eq!(jesse.status.code(), Some(0), "{}", stderr(&jesse));
    assert!(stdout(&jesse).contains("in dekring was queued"));
    assert_eq!(anouk.status.code(), Some(2));
    assert!(
        stderr(&anouk).contains("name one with --org: dekring, zonnehof"),
        "{}",
        stderr(&anouk)
    );
}

#[test]
fn logs_carry_colour_codes_only_when_asked_for_and_never_under_no_color() {
    // Arrange: text logs at info level, to a pipe (not a terminal).
    let repo = Checkout::new();
    let run = |extra: &[(&str, &str)]| {
        let mut command = repo.command(&["plan", "--connector", "dekring_hr"]);
        command
            .env("HRSYNC_LOG", "info")
            .env("HRSYNC_LOG_FORMAT", "text");
        for (key, value) in extra {
            command.env(key, value);
        }
        let output = command.output().unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        stderr(&output)
    };

    // Act
    let piped = run(&[]);
    let forced = run(&[("CLICOLOR_FORCE", "1")]);
    let no_color = run(&[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]);

    // Assert
    assert!(
        piped.contains("INFO") && !piped.contains('\u{1b}'),
        "{piped}"
    );
    assert!(forced.contains('\u{1b}'), "{forced}");
    assert!(
        no_color.contains("INFO") && !no_color.contains('\u{1b}'),
        "{no_color}"
    );
}

#[test]
fn a_database_that_refuses_the_connection_is_named_at_once() {
    // Arrange: nothing listens on port 1.
    let repo = Checkout::new();
    let started = std::time::Instant::now();

    // Act
    let output = repo
        .command(&["runs"])
        .env(
            "HRSYNC__DATABASE__URL",
            "postgres://hrsync@127.0.0.1:1/hrsync",
        )
        .output()
        .unwrap();

    // Assert
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("connection refused by 127.0.0.1:1"),
        "{}",
        stderr(&output)
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "it waited {:?}",
        started.elapsed()
    );
}

#[test]
fn help_describes_every_argument_and_lists_the_exit_codes() {
    // Arrange
    let root = hrsync::cli::Cli::command();
    let mut undocumented = Vec::new();
    let mut stack = vec![(String::from("hrsync"), root.clone())];

    // Act
    while let Some((path, command)) = stack.pop() {
        for arg in command.get_arguments() {
            let id = arg.get_id().as_str();
            if id == "help" || id == "version" {
                continue;
            }
            if arg.get_help().is_none() && arg.get_long_help().is_none() {
                undocumented.push(format!("{path} {id}"));
            }
        }
        for sub in command.get_subcommands() {
            if sub.get_about().is_none() {
                undocumented.push(format!("{path} {}", sub.get_name()));
            }
            stack.push((format!("{path} {}", sub.get_name()), sub.clone()));
        }
    }
    let repo = Checkout::new();
    let help = stdout(&repo.hrsync(&["--help"]));
    let examples: Vec<String> = ["plan", "sync", "approve", "report"]
        .iter()
        .map(|c| stdout(&repo.hrsync(&[c, "--help"])))
        .collect();

    // Assert
    assert!(undocumented.is_empty(), "no help for: {undocumented:?}");
    for code in ["  0 ", "  1 ", "  2 ", "  3 ", "  75 "] {
        assert!(help.contains(code), "exit code {code} in {help}");
    }
    for text in &examples {
        assert!(text.contains("Examples:\n  hrsync "), "{text}");
    }
}
