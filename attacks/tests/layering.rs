//! The crate's layers, lowest first: `world` (what the outside plants and watches), the probe
//! `kit`, the `probes`. A layer uses only the ones below it, so that the world can be read, tested
//! and changed without the probes, and no import cycle runs through the registry. The compiler
//! does not check this within one crate, so this test reads the sources.

use std::fs;
use std::path::{Path, PathBuf};

/// Every .rs file of `rel` (a file, or a file and the directory of the same name).
fn sources(rel: &str) -> Vec<PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = Vec::new();
    let file = src.join(format!("{rel}.rs"));
    if file.is_file() {
        out.push(file);
    }
    let mut dirs = vec![src.join(rel)];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    assert!(!out.is_empty(), "no sources for {rel}");
    out
}

/// What follows each `crate::` in a line's code (its comment left out); `other_crate::` does
/// not count.
fn crate_paths(line: &str) -> Vec<&str> {
    let code = line.split("//").next().unwrap_or("");
    code.match_indices("crate::")
        .filter(|(at, _)| {
            !code[..*at]
                .chars()
                .last()
                .is_some_and(|c| c.is_alphanumeric() || c == '_')
        })
        .map(|(at, m)| &code[at + m.len()..])
        .collect()
}

/// The lines of `rel`'s sources with a `crate::` path that `bad` rejects, as "file:line: text".
fn offending(rel: &str, bad: impl Fn(&str) -> bool) -> Vec<String> {
    let mut found = Vec::new();
    for path in sources(rel) {
        let text = fs::read_to_string(&path).unwrap();
        for (n, line) in text.lines().enumerate() {
            if crate_paths(line).into_iter().any(&bad) {
                found.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
            }
        }
    }
    found
}

#[test]
fn the_world_uses_nothing_above_it() {
    let found = offending("world", |path| !path.starts_with("world"));
    assert!(
        found.is_empty(),
        "world/ reaches above itself:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_kit_never_uses_the_probes() {
    let found = offending("kit", |path| path.starts_with("probes"));
    assert!(
        found.is_empty(),
        "kit/ reaches into the probes:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_check_sees_crate_paths_only() {
    let line = "use crate::probes::x; let y = my_crate::z; // crate::kit";
    assert_eq!(crate_paths(line), vec!["probes::x; let y = my_crate::z; "]);
    assert!(crate_paths("//! [`crate::probes`]").is_empty());
}
