//! The layering ARCHITECTURE.md's code map states, kept by a test: each module of the crate
//! may use the modules listed above it there, never one listed below it. The order is read
//! from the code map itself, and the uses from every `crate::` path in each module's files,
//! so a change to either that breaks the rule fails here instead of waiting for a reviewer.

// A test stops at the first thing that is not as expected.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The crate's modules in the code map's order: `src/domain/` gives `domain`, `src/schedule.rs`
/// gives `schedule`; `src/main.rs` and entries outside `src/` are not modules of the library.
fn code_map_order() -> Vec<String> {
    let text = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let map = text
        .split("## Code map")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("ARCHITECTURE.md has a code map section");
    map.lines()
        .filter_map(|line| line.strip_prefix("- `src/"))
        .filter_map(|rest| rest.split('`').next())
        .map(|path| {
            path.trim_end_matches('/')
                .trim_end_matches(".rs")
                .to_string()
        })
        .filter(|name| name != "main" && name != "lib")
        .collect()
}

/// Every `.rs` file of a module: its folder, or its single file.
fn files_of(module: &str) -> Vec<PathBuf> {
    let folder = root().join("src").join(module);
    if folder.is_dir() {
        let mut files = Vec::new();
        let mut stack = vec![folder];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    files.push(path);
                }
            }
        }
        files
    } else {
        vec![root().join("src").join(format!("{module}.rs"))]
    }
}

/// The top-level modules a file names through `crate::…` (or `crate::{a, b::C}`, over as many
/// lines as it takes), with the line that names each.
fn uses_in(file: &Path) -> Vec<(String, usize)> {
    let text = std::fs::read_to_string(file).unwrap();
    // Comments out, lines kept, so a line number can be given.
    let code: String = text
        .lines()
        .map(|line| line.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    let line_of = |at: usize| code[..at].matches('\n').count() + 1;
    let ident = |text: &str| -> String {
        text.trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut uses = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // The top-level items of the group, up to its closing brace.
            let (mut depth, mut item_start) = (0usize, 0usize);
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        uses.push((ident(&group[item_start..i]), line_of(at)));
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        uses.push((ident(&group[item_start..i]), line_of(at)));
                        item_start = i + 1;
                    }
                    _ => {}
                }
            }
        } else {
            uses.push((ident(rest), line_of(at)));
        }
    }
    uses.retain(|(name, _)| !name.is_empty());
    uses
}

#[test]
fn the_code_map_names_every_module_of_the_library_once() {
    let order = code_map_order();
    let lib = std::fs::read_to_string(root().join("src/lib.rs")).unwrap();

    let declared: Vec<String> = lib
        .lines()
        .filter_map(|line| line.trim().strip_prefix("pub mod "))
        .map(|rest| rest.trim_end_matches(';').to_string())
        .collect();

    let mut sorted = order.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        sorted.len(),
        order.len(),
        "a module listed twice: {order:?}"
    );
    let mut declared_sorted = declared.clone();
    declared_sorted.sort();
    assert_eq!(sorted, declared_sorted);
}

#[test]
fn no_module_uses_one_listed_below_it_in_the_code_map() {
    let order = code_map_order();
    let rank: BTreeMap<&str, usize> = order
        .iter()
        .enumerate()
        .map(|(i, name)| (name.as_str(), i))
        .collect();

    let mut breaks = Vec::new();
    for (i, module) in order.iter().enumerate() {
        for file in files_of(module) {
            for (used, line) in uses_in(&file) {
                match rank.get(used.as_str()) {
                    Some(&j) if j <= i => {}
                    Some(_) => breaks.push(format!(
                        "{}:{line}: `{module}` uses `{used}`, which the code map lists below it",
                        file.strip_prefix(root()).unwrap().display()
                    )),
                    None => breaks.push(format!(
                        "{}:{line}: `{module}` uses `crate::{used}`, which the code map does not list",
                        file.strip_prefix(root()).unwrap().display()
                    )),
                }
            }
        }
    }

    assert!(breaks.is_empty(), "{}", breaks.join("\n"));
}

#[test]
fn the_planner_depends_on_the_domain_alone() {
    let uses: Vec<String> = files_of("planner")
        .iter()
        .flat_map(|file| uses_in(file))
        .map(|(used, _)| used)
        .filter(|used| used != "planner" && used != "domain")
        .collect();

    assert!(uses.is_empty(), "{uses:?}");
}
