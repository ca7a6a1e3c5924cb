//! README.md against the code: the table of stable codes lists every code the runs use, with
//! the meaning and the outcome the code gives it, and no other.

// A test stops at the first thing that is not as expected.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use hrsync::domain::Code;

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap()
}

#[test]
fn readme_lists_every_stable_code_with_its_meaning_and_no_other() {
    let readme = readme();

    let rows: Vec<&str> = readme
        .lines()
        .filter(|line| line.starts_with("| `HR"))
        .collect();

    let expected: Vec<String> = Code::ALL
        .iter()
        .map(|code| {
            let run = if code.holds() { "held" } else { "failed" };
            format!("| `{code}` | {run} | {} |", code.meaning())
        })
        .collect();
    assert_eq!(rows, expected);
}
