//! The shim's modules form layers: no module uses, directly or through others, a module that
//! uses it. This test reads shim/src/*.rs (no Python needed), collects each module's
//! `crate::<module>` references (paths and `use crate::{…}` groups, comments skipped) and fails
//! with the cycle printed, each edge with the file and line that makes it. It also fails when a
//! module uses one its `//! May depend on:` line does not name, so that line stays true.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// An edge `from → to` and where it is made (`file:line`).
type Edges = BTreeMap<String, BTreeMap<String, String>>;

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The modules of the crate (file stems of src/*.rs but lib) and their sources.
fn modules() -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(src_dir()).expect("shim/src is readable") {
        let p = entry.expect("directory entry").path();
        if p.extension().is_some_and(|x| x == "rs") {
            let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
            if stem != "lib" {
                let text = std::fs::read_to_string(&p).expect("source is readable");
                out.insert(stem.to_string(), text);
            }
        }
    }
    out
}

/// The identifier at the start of `s`.
fn ident(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The top-level names of a `use crate::{…}` group starting right after its `{`: for
/// `gil::{self, enter}, values::P4sValue}` that is `gil`, `values`.
fn group_heads(s: &str) -> Vec<&str> {
    let mut heads = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                heads.push(ident(s[start..i].trim_start()));
                return heads;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                heads.push(ident(s[start..i].trim_start()));
                start = i + 1;
            }
            _ => {}
        }
    }
    heads
}

/// Every `from → to` edge between modules, with the first place that makes it.
fn edges(mods: &BTreeMap<String, String>) -> Edges {
    let mut out: Edges = BTreeMap::new();
    for (from, text) in mods {
        let code: String = text
            .lines()
            .map(|l| {
                if l.trim_start().starts_with("//") {
                    ""
                } else {
                    l
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        let mut add = |to: &str, pos: usize| {
            if mods.contains_key(to) && to != from {
                let line = code[..pos].matches('\n').count() + 1;
                out.entry(from.clone())
                    .or_default()
                    .entry(to.to_string())
                    .or_insert_with(|| format!("shim/src/{from}.rs:{line}"));
            }
        };
        for (pos, _) in code.match_indices("crate::") {
            let rest = &code[pos + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                for head in group_heads(group) {
                    add(head, pos);
                }
            } else {
                add(ident(rest), pos);
            }
        }
    }
    out
}

/// A cycle of `edges`, as the list of its modules with the first one repeated at the end.
fn find_cycle(edges: &Edges) -> Option<Vec<String>> {
    fn visit(
        m: &str,
        edges: &Edges,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match state.get(m) {
            Some(2) => return None,
            Some(1) => {
                let i = path.iter().position(|p| p == m).unwrap_or(0);
                let mut cycle = path[i..].to_vec();
                cycle.push(m.to_string());
                return Some(cycle);
            }
            _ => {}
        }
        state.insert(m.to_string(), 1);
        path.push(m.to_string());
        for to in edges.get(m).into_iter().flat_map(|t| t.keys()) {
            if let Some(c) = visit(to, edges, state, path) {
                return Some(c);
            }
        }
        path.pop();
        state.insert(m.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for m in edges.keys() {
        if let Some(c) = visit(m, edges, &mut state, &mut Vec::new()) {
            return Some(c);
        }
    }
    None
}

#[test]
fn the_modules_use_each_other_without_cycles() {
    let mods = modules();
    let edges = edges(&mods);
    // The reader must see the edges that certainly exist, or it checks nothing.
    for (from, to) in [("call", "values"), ("values", "gil"), ("gil", "last_error")] {
        assert!(
            edges.get(from).is_some_and(|t| t.contains_key(to)),
            "the reader missed the edge {from} → {to}: fix module_layers.rs"
        );
    }
    if let Some(cycle) = find_cycle(&edges) {
        let steps: Vec<String> = cycle
            .windows(2)
            .map(|w| format!("  {} → {}  ({})", w[0], w[1], edges[&w[0]][&w[1]]))
            .collect();
        panic!(
            "the shim's modules use each other in a circle: {}\n{}\nmove the shared part into \
             a module below both (see the layers in shim/src/lib.rs)",
            cycle.join(" → "),
            steps.join("\n")
        );
    }
}

#[test]
fn each_module_says_what_it_may_depend_on() {
    let mods = modules();
    let edges = edges(&mods);
    let mut wrong = Vec::new();
    for (m, text) in &mods {
        let doc: String = text
            .lines()
            .take_while(|l| l.starts_with("//!"))
            .map(|l| l.trim_start_matches("//!").trim())
            .collect::<Vec<_>>()
            .join(" ");
        let Some((_, rest)) = doc.split_once("May depend on:") else {
            wrong.push(format!(
                "shim/src/{m}.rs: its //! doc has no `May depend on:` line"
            ));
            continue;
        };
        let listed: BTreeSet<&str> = rest
            .split('.')
            .next()
            .unwrap_or("")
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .filter(|w| mods.contains_key(*w))
            .collect();
        for (to, at) in edges.get(m).into_iter().flatten() {
            if !listed.contains(to.as_str()) {
                wrong.push(format!(
                    "{at}: {m} uses {to}, which its `May depend on:` line does not name"
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
