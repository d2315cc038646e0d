#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The module map in `src/lib.rs` is a promise: this test keeps it true. It reads the map (the
//! modules in the order they are named, each with the bracketed list of the modules it uses)
//! and every module's source, and checks that
//! - every `pub mod` of the crate is on the map, once;
//! - each module's `crate::` paths (outside comments and test code) name exactly the modules in
//!   its bracket;
//! - each of those comes before it on the map (a lower floor, or earlier on the same floor), so
//!   no two modules import each other.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// `(module, the modules its bracket names)`, in map order.
fn map() -> Vec<(String, BTreeSet<String>)> {
    let lib = std::fs::read_to_string(Path::new(ROOT).join("src/lib.rs")).unwrap();
    let text: String = lib
        .lines()
        .filter_map(|l| l.strip_prefix("//!"))
        .skip_while(|l| !l.contains("# Map of the modules"))
        .take_while(|l| !l.contains("# Example"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut starts: Vec<(usize, String)> = Vec::new();
    let mut rest = text.as_str();
    let mut offset = 0;
    while let Some(i) = rest.find("[`") {
        let after = &rest[i + 2..];
        let end = after.find("`]").unwrap();
        starts.push((offset + i, after[..end].to_string()));
        offset += i + 2 + end + 2;
        rest = &text[offset..];
    }
    let mut out = Vec::new();
    for (k, (at, name)) in starts.iter().enumerate() {
        let until = starts.get(k + 1).map_or(text.len(), |(n, _)| *n);
        let span = &text[*at + name.len() + 4..until];
        // The last bracket of the span that is not a link is the module's list.
        let open = span
            .rfind('[')
            .unwrap_or_else(|| panic!("{name}: no [uses] list"));
        let close = open + span[open..].find(']').unwrap();
        let list = &span[open + 1..close];
        let uses = list
            .split(',')
            .map(|s| s.split_whitespace().collect::<String>())
            .filter(|s| !s.is_empty() && s != "-")
            .collect();
        out.push((name.clone(), uses));
    }
    out
}

fn sources(module: &str) -> Vec<PathBuf> {
    let file = Path::new(ROOT).join(format!("src/{module}.rs"));
    let dir = Path::new(ROOT).join(format!("src/{module}"));
    let mut out = Vec::new();
    if file.exists() {
        out.push(file);
    }
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out
}

/// The crate modules a module's code names, outside comments and its `#[cfg(test)]` tail.
fn uses(module: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for path in sources(module) {
        let src = std::fs::read_to_string(&path).unwrap();
        for line in src.lines().take_while(|l| !l.starts_with("#[cfg(test)]")) {
            if line.trim_start().starts_with("//") {
                continue;
            }
            let mut rest = line;
            while let Some(i) = rest.find("crate::") {
                let name: String = rest[i + 7..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                rest = &rest[i + 7..];
                // `random_u64` is a function of the crate root, not a module.
                if name != module && name != "random_u64" {
                    out.insert(name);
                }
            }
        }
    }
    out
}

#[test]
fn the_module_map_names_every_module_once() {
    let lib = std::fs::read_to_string(Path::new(ROOT).join("src/lib.rs")).unwrap();
    let declared: BTreeSet<String> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("pub mod "))
        .map(|l| l.trim_end_matches(';').to_string())
        .collect();
    let map = map();
    let on_map: Vec<&String> = map.iter().map(|(m, _)| m).collect();
    let unique: BTreeSet<String> = on_map.iter().map(|m| m.to_string()).collect();
    assert_eq!(
        unique.len(),
        on_map.len(),
        "a module is on the map twice: {on_map:?}"
    );
    assert_eq!(unique, declared, "the map and `pub mod` differ");
}

#[test]
fn each_module_uses_what_the_map_says_and_only_modules_below_it() {
    let map = map();
    let mut below: BTreeSet<String> = BTreeSet::new();
    for (module, listed) in &map {
        let actual = uses(module);
        assert_eq!(
            &actual, listed,
            "{module}: the map lists {listed:?}, the code uses {actual:?}"
        );
        let above: Vec<&String> = actual.difference(&below).collect();
        assert!(
            above.is_empty(),
            "{module} uses {above:?}, which the map puts above it"
        );
        below.insert(module.clone());
    }
}
