//! The C ABI is declared once, by the `export!` functions and `pub const P4S_*` constants of
//! shim/src/*.rs; this test reads those sources and the Lisp bindings (lisp/src/*.lisp) and
//! fails on any drift between them. It needs no Python: it only reads files (relative to
//! `CARGO_MANIFEST_DIR`) and asks the compiler for the packed structs' layouts.
//!
//! Checked:
//! - every `define-shim` / `cffi:defcfun` of a `p4s_*` name binds an export, with the same
//!   number of arguments and the same CFFI type for each argument and the result (Rust types
//!   mapped by [`cffi_type`]); a `define-shim` uses only the types ECL's path maps
//!   (`*ecl-shim-types*` in ffi.lisp);
//! - every export has a Lisp binding, except those in [`RUST_ONLY`], each of which a Rust test
//!   or benchmark must call and Lisp must not bind; every binding is called from Lisp;
//! - every export's doc has its `Owns:`, `GIL:` and `Fails:` lines;
//! - every `P4S_*` constant has its Lisp `defconstant` with the same value (names by
//!   [`lisp_constant_name`]), every Lisp constant of ffi.lisp comes from one, and no two
//!   constants of one family (the statuses, the tags, one function's results or flags) share a
//!   value;
//! - the `defcstruct`s' sizes and field offsets match the Rust structs.

use py4cl2_cffi_shim::buffer::P4sBuffer;
use py4cl2_cffi_shim::pyerr::P4sErrorInfo;
use py4cl2_cffi_shim::values::P4sValue;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::mem::{offset_of, size_of};
use std::path::{Path, PathBuf};

/// Exports without a Lisp binding: they exist for the Rust tests (and benchmarks), which use
/// them to look inside the shim. Anything else without a Lisp caller should be removed.
const RUST_ONLY: &[(&str, &str)] = &[
    (
        "p4s_version_info",
        "abi_every_version: the version parts of the running Python",
    ),
    (
        "p4s_pinned_libpython",
        "abi_every_version: which libpython a stop left mapped",
    ),
    (
        "p4s_error_text",
        "tests/common: the kept exception's type, message and traceback",
    ),
    (
        "p4s_decref_queue_length",
        "threads, abi_every_version: the decref queue drains",
    ),
    (
        "p4s_set_from",
        "abi_every_version: building a set from packed values",
    ),
    (
        "p4s_import",
        "abi_every_version: imports json for the calls it makes (Lisp imports through p4s_lookup)",
    ),
    (
        "p4s_getitem",
        "abi_every_version: obj[key] with packed values",
    ),
    ("p4s_setitem", "abi_every_version: obj[key] = value and del"),
    (
        "p4s_len",
        "abi_every_version: len() of the objects it builds",
    ),
    (
        "p4s_call",
        "abi_every_version: a call with objects, not packed values",
    ),
    (
        "p4s_error_lisp_handle",
        "abi_every_version: the handle a LispError carries back",
    ),
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
}

/// The files with the given extension in `dir` (relative to the repository), sorted.
fn files(dir: &str, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(repo().join(dir))
        .unwrap_or_else(|e| panic!("cannot list {dir}: {e}"))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    v.sort();
    v
}

fn short(p: &Path) -> String {
    p.strip_prefix(repo()).unwrap_or(p).display().to_string()
}

fn line_of(text: &str, pos: usize) -> usize {
    text[..pos].matches('\n').count() + 1
}

// ---------------------------------------------------------------------------------------------
// The Rust side

struct Export {
    name: String,
    at: String,
    args: Vec<(String, String)>,
    ret: String,
    doc: Vec<String>,
}

/// Splits `s` at the commas outside parentheses and angle brackets.
fn split_top(s: &str) -> Vec<String> {
    let (mut out, mut cur, mut depth) = (Vec::new(), String::new(), 0i32);
    for c in s.chars() {
        match c {
            '(' | '<' | '[' => depth += 1,
            ')' | '>' | ']' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    out.into_iter()
        .map(|a| a.trim().to_string())
        .filter(|a| !a.is_empty())
        .collect()
}

/// Every `export! { /// doc… fn p4s_…(args) -> ret, on_panic = …, {…} }` of shim/src.
fn exports() -> Vec<Export> {
    let mut out = Vec::new();
    for f in files("shim/src", "rs") {
        let text = read(&f);
        for (pos, _) in text.match_indices("\nexport! {") {
            let at = format!("{}:{}", short(&f), line_of(&text, pos + 1));
            let rest = &text[pos + "\nexport! {".len()..];
            let mut doc = Vec::new();
            let mut sig = String::new();
            for line in rest.lines() {
                let l = line.trim();
                if let Some(d) = l.strip_prefix("///") {
                    doc.push(d.trim().to_string());
                } else if l.starts_with("#[") || l.is_empty() {
                } else {
                    sig.push_str(l);
                    sig.push(' ');
                    if l.contains("on_panic") {
                        break;
                    }
                }
            }
            let sig = sig.split("on_panic").next().unwrap_or_default();
            let sig = sig
                .trim()
                .strip_prefix("fn ")
                .unwrap_or_else(|| panic!("{at}: an export! without `fn` first"));
            let open = sig
                .find('(')
                .unwrap_or_else(|| panic!("{at}: no argument list"));
            let name = sig[..open].trim().to_string();
            let mut depth = 0;
            let close = sig
                .char_indices()
                .skip(open)
                .find(|&(_, c)| {
                    depth += match c {
                        '(' => 1,
                        ')' => -1,
                        _ => 0,
                    };
                    depth == 0
                })
                .map(|(i, _)| i)
                .unwrap_or_else(|| panic!("{at}: unbalanced argument list"));
            let args = split_top(&sig[open + 1..close])
                .into_iter()
                .map(|a| {
                    let (n, t) = a
                        .split_once(':')
                        .unwrap_or_else(|| panic!("{at}: argument `{a}`"));
                    (n.trim().to_string(), t.trim().to_string())
                })
                .collect();
            let ret = sig[close + 1..]
                .trim()
                .strip_prefix("->")
                .unwrap_or_else(|| panic!("{at}: {name} has no `-> type`"))
                .trim()
                .trim_end_matches(',')
                .trim()
                .to_string();
            out.push(Export {
                name,
                at,
                args,
                ret,
                doc,
            });
        }
    }
    out
}

/// The CFFI type for a Rust type of the ABI, or `None` for one the ABI does not use.
fn cffi_type(rust: &str) -> Option<&'static str> {
    let t = rust.trim();
    if t.starts_with("*mut ") || t.starts_with("*const ") || t.starts_with("Option<") {
        return Some(":pointer"); // data pointers, and nullable C function pointers
    }
    Some(match t {
        "()" => ":void",
        "i32" => ":int32",
        "i64" => ":int64",
        "u32" => ":uint32",
        "u64" => ":uint64",
        "f64" => ":double",
        _ => return None,
    })
}

struct RustConst {
    name: String,
    value: i64,
    family: String,
    at: String,
}

/// Every `pub const P4S_…: i32 = N;` of shim/src, with the family its values must be distinct
/// in: the statuses and error codes of lib.rs, the tags of values.rs, else what its doc names
/// before the first colon (`` `p4s_start` ``, `` `p4s_stop` flag ``…).
fn rust_constants() -> Vec<RustConst> {
    let mut out = Vec::new();
    for f in files("shim/src", "rs") {
        let stem = f
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        let text = read(&f);
        let mut doc: Vec<&str> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let l = line.trim();
            if let Some(d) = l.strip_prefix("///") {
                doc.push(d.trim());
                continue;
            }
            if let Some(rest) = l.strip_prefix("pub const P4S_") {
                let at = format!("{}:{}", short(&f), i + 1);
                let (name, rest) = rest.split_once(':').unwrap_or_else(|| panic!("{at}"));
                let value = rest
                    .split_once('=')
                    .map(|(_, v)| v.trim().trim_end_matches(';').trim())
                    .and_then(|v| v.parse::<i64>().ok())
                    .unwrap_or_else(|| panic!("{at}: P4S_{name} is not an integer literal"));
                let family = match stem.as_str() {
                    "lib" => "status".to_string(),
                    "values" => "tag".to_string(),
                    _ => doc
                        .first()
                        .and_then(|d| d.split_once(':'))
                        .map(|(f, _)| f.to_string())
                        .unwrap_or_else(|| {
                            panic!(
                                "{at}: P4S_{name}'s doc must start with its family (`p4s_fn`: …)"
                            )
                        }),
                };
                out.push(RustConst {
                    name: format!("P4S_{name}"),
                    value,
                    family,
                    at,
                });
            }
            doc.clear();
        }
    }
    out
}

/// The Lisp name of a Rust constant: tags are `+tag-…+`, the error codes below -2 are
/// `+code-…+`, `P4S_ERROR` is `+shim-error+`, and the rest keep their name (`P4S_STOPPED_SOFT`:
/// `+stopped-soft+`).
fn lisp_constant_name(c: &RustConst) -> String {
    let base = c
        .name
        .trim_start_matches("P4S_")
        .to_lowercase()
        .replace('_', "-");
    match (c.family.as_str(), c.name.as_str()) {
        (_, "P4S_ERROR") => "+shim-error+".to_string(),
        ("tag", _) => format!("+tag-{base}+"),
        ("status", _) if c.value < -2 => format!("+code-{base}+"),
        _ => format!("+{base}+"),
    }
}

// ---------------------------------------------------------------------------------------------
// The Lisp side: a reader just large enough for the forms that bind the shim

#[derive(Debug, Clone, PartialEq)]
enum Sexp {
    Atom(String),
    Str(String),
    List(Vec<Sexp>),
}

impl Sexp {
    fn atom(&self) -> Option<&str> {
        match self {
            Sexp::Atom(a) => Some(a),
            _ => None,
        }
    }
    fn list(&self) -> Option<&[Sexp]> {
        match self {
            Sexp::List(l) => Some(l),
            _ => None,
        }
    }
}

/// Reads one form from `s` at `*i` (whitespace and `;` comments skipped first).
fn read_form(s: &[u8], i: &mut usize) -> Option<Sexp> {
    loop {
        while *i < s.len() && s[*i].is_ascii_whitespace() {
            *i += 1;
        }
        if *i < s.len() && s[*i] == b';' {
            while *i < s.len() && s[*i] != b'\n' {
                *i += 1;
            }
            continue;
        }
        break;
    }
    match *s.get(*i)? {
        b'(' => {
            *i += 1;
            let mut items = Vec::new();
            loop {
                while *i < s.len() && s[*i].is_ascii_whitespace() {
                    *i += 1;
                }
                if *s.get(*i)? == b')' {
                    *i += 1;
                    return Some(Sexp::List(items));
                }
                items.push(read_form(s, i)?);
            }
        }
        b'"' => {
            *i += 1;
            let start = *i;
            while *s.get(*i)? != b'"' {
                *i += if s[*i] == b'\\' { 2 } else { 1 };
            }
            *i += 1;
            Some(Sexp::Str(
                String::from_utf8_lossy(&s[start..*i - 1]).into_owned(),
            ))
        }
        b')' => None,
        b'\'' => {
            *i += 1;
            let q = read_form(s, i)?;
            Some(Sexp::List(vec![Sexp::Atom("quote".into()), q]))
        }
        _ => {
            let start = *i;
            while *i < s.len() && !s[*i].is_ascii_whitespace() && !b"()\";".contains(&s[*i]) {
                *i += 1;
            }
            Some(Sexp::Atom(
                String::from_utf8_lossy(&s[start..*i]).to_lowercase(),
            ))
        }
    }
}

/// The top-level forms (at the start of a line) of `text` whose head is `head`.
fn forms(text: &str, head: &str) -> Vec<(usize, Sexp)> {
    let needle = format!("\n({head}");
    let text = format!("\n{text}");
    text.match_indices(&needle)
        .filter(|(pos, _)| text[pos + needle.len()..].starts_with(|c: char| c.is_whitespace()))
        .filter_map(|(pos, _)| {
            let mut i = pos + 1;
            read_form(text.as_bytes(), &mut i).map(|f| (line_of(&text, pos + 1) - 1, f))
        })
        .collect()
}

struct Binding {
    c_name: String,
    lisp_name: String,
    at: String,
    ret: String,
    args: Vec<(String, String)>,
    shim: bool,
}

fn typed_args(items: &[Sexp], at: &str) -> Vec<(String, String)> {
    items
        .iter()
        .map(|a| match a.list() {
            Some([Sexp::Atom(n), Sexp::Atom(t)]) => (n.clone(), t.clone()),
            _ => panic!("{at}: argument {a:?} is not (NAME TYPE)"),
        })
        .collect()
}

/// Every `(define-shim LISP "p4s_…" RET (NAME TYPE)…)` and `(cffi:defcfun ("p4s_…" LISP) RET
/// (NAME TYPE)…)` of lisp/src.
fn bindings() -> Vec<Binding> {
    let mut out = Vec::new();
    for f in files("lisp/src", "lisp") {
        let text = read(&f);
        for (line, form) in forms(&text, "define-shim") {
            let at = format!("{}:{line}", short(&f));
            let Some([_, Sexp::Atom(lisp), Sexp::Str(c), Sexp::Atom(ret), args @ ..]) = form.list()
            else {
                panic!("{at}: not (define-shim LISP-NAME \"C-NAME\" RETURN (NAME TYPE)...)");
            };
            let args = typed_args(args, &at);
            out.push(Binding {
                c_name: c.clone(),
                lisp_name: lisp.clone(),
                at,
                ret: ret.clone(),
                args,
                shim: true,
            });
        }
        for (line, form) in forms(&text, "cffi:defcfun") {
            let at = format!("{}:{line}", short(&f));
            let Some([_, Sexp::List(spec), rest @ ..]) = form.list() else {
                continue;
            };
            let [Sexp::Str(c), Sexp::Atom(lisp), ..] = spec.as_slice() else {
                continue;
            };
            if !c.starts_with("p4s_") {
                continue;
            }
            let rest = match rest {
                [Sexp::Atom(r), Sexp::Str(_), a @ ..] => (r, a),
                [Sexp::Atom(r), a @ ..] => (r, a),
                _ => panic!("{at}: no return type"),
            };
            out.push(Binding {
                c_name: c.clone(),
                lisp_name: lisp.clone(),
                at: at.clone(),
                ret: rest.0.clone(),
                args: typed_args(rest.1, &at),
                shim: false,
            });
        }
    }
    out
}

/// The CFFI types ECL's DEFINE-SHIM path maps (`*ecl-shim-types*` in ffi.lisp).
fn ecl_types(ffi: &str) -> BTreeSet<String> {
    let mut i = ffi
        .find("(defparameter *ecl-shim-types*")
        .expect("ffi.lisp has (defparameter *ecl-shim-types* ...)");
    let form = read_form(ffi.as_bytes(), &mut i).expect("*ecl-shim-types* reads");
    let l = form.list().unwrap_or_default();
    let Some([_, Sexp::List(table)]) = l.get(2).and_then(Sexp::list) else {
        panic!("*ecl-shim-types* is not a quoted list");
    };
    table
        .iter()
        .filter_map(|e| {
            e.list()
                .and_then(|e| e.first())
                .and_then(Sexp::atom)
                .map(str::to_string)
        })
        .collect()
}

/// The constants ffi.lisp defines (DEFINE-CONSTANTS pairs and DEFCONSTANTs), with their lines.
fn lisp_constants(ffi: &str) -> BTreeMap<String, (i64, usize)> {
    let mut out = BTreeMap::new();
    let mut add = |name: &Sexp, value: &Sexp, line: usize| {
        if let (Some(n), Some(v)) = (name.atom(), value.atom()) {
            let v = v
                .parse::<i64>()
                .unwrap_or_else(|_| panic!("ffi.lisp:{line}: {n} is {v}"));
            if out.insert(n.to_string(), (v, line)).is_some() {
                panic!("ffi.lisp:{line}: {n} is defined twice");
            }
        }
    };
    for (line, f) in forms(ffi, "define-constants") {
        let items = f.list().unwrap_or_default();
        for pair in items[1..].chunks(2) {
            add(&pair[0], &pair[1], line);
        }
    }
    for (line, f) in forms(ffi, "defconstant") {
        let items = f.list().unwrap_or_default();
        add(&items[1], &items[2], line);
    }
    out
}

/// Whether Lisp `name` is used in `text` other than where it is defined.
fn lisp_uses(text: &str, name: &str) -> usize {
    let edge = |c: Option<char>| c.is_none_or(|c| c.is_whitespace() || "()'`#,:".contains(c));
    let lower = text.to_lowercase();
    lower
        .match_indices(name)
        .filter(|(i, _)| {
            edge(lower[..*i].chars().next_back()) && edge(lower[i + name.len()..].chars().next())
        })
        .filter(|(i, _)| {
            let before = &lower[..*i];
            !before.ends_with("(define-shim ") && !before.ends_with("\" ")
        })
        .count()
}

// ---------------------------------------------------------------------------------------------

#[test]
fn the_lisp_bindings_match_the_exports() {
    let exports = exports();
    let bindings = bindings();
    let ffi = read(&repo().join("lisp/src/ffi.lisp"));
    let ecl = ecl_types(&ffi);
    let mut problems = String::new();
    assert!(
        exports.len() > 40,
        "found only {} exports: the parser is broken",
        exports.len()
    );
    assert!(
        bindings.len() > 40,
        "found only {} bindings: the parser is broken",
        bindings.len()
    );

    let by_name: BTreeMap<&str, &Export> = exports.iter().map(|e| (e.name.as_str(), e)).collect();
    let mut bound = BTreeSet::new();
    for b in &bindings {
        bound.insert(b.c_name.as_str());
        let Some(e) = by_name.get(b.c_name.as_str()) else {
            let _ = writeln!(
                problems,
                "{}: {} binds {}, which the shim does not export",
                b.at, b.lisp_name, b.c_name
            );
            continue;
        };
        let want = |rust: &str| cffi_type(rust).unwrap_or("<a type the ABI does not map>");
        if want(&e.ret) != b.ret {
            let _ = writeln!(
                problems,
                "{}: {} returns {} in Lisp, but {} ({}) returns `{}`, which is {}",
                b.at,
                b.lisp_name,
                b.ret,
                e.name,
                e.at,
                e.ret,
                want(&e.ret)
            );
        }
        if e.args.len() != b.args.len() {
            let _ = writeln!(
                problems,
                "{}: {} takes {} arguments in Lisp, but {} ({}) takes {}: ({})",
                b.at,
                b.lisp_name,
                b.args.len(),
                e.name,
                e.at,
                e.args.len(),
                e.args
                    .iter()
                    .map(|(n, t)| format!("{n}: {t}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        } else {
            for (k, ((ln, lt), (rn, rt))) in b.args.iter().zip(&e.args).enumerate() {
                if want(rt) != lt {
                    let _ = writeln!(
                        problems,
                        "{}: {} argument {} ({ln}) is {lt} in Lisp, but {} ({}) takes `{rn}: {rt}`, which is {}",
                        b.at, b.lisp_name, k + 1, e.name, e.at, want(rt)
                    );
                }
            }
        }
        if b.shim {
            for t in std::iter::once(&b.ret).chain(b.args.iter().map(|(_, t)| t)) {
                if !ecl.contains(t) {
                    let _ = writeln!(
                        problems,
                        "{}: {} uses {t}, which *ecl-shim-types* does not map",
                        b.at, b.lisp_name
                    );
                }
            }
        }
    }

    let rust_only: BTreeMap<&str, &str> = RUST_ONLY.iter().copied().collect();
    let rust_users: String = files("shim/tests", "rs")
        .into_iter()
        .chain(files("shim/tests/common", "rs"))
        .chain(files("bench/src", "rs"))
        .map(|p| read(&p))
        .collect();
    for e in &exports {
        for (_, t) in e
            .args
            .iter()
            .chain(std::iter::once(&(String::new(), e.ret.clone())))
        {
            if cffi_type(t).is_none() {
                let _ = writeln!(
                    problems,
                    "{}: {} uses the type `{t}`, which the ABI does not map to CFFI",
                    e.at, e.name
                );
            }
        }
        match (
            bound.contains(e.name.as_str()),
            rust_only.get(e.name.as_str()),
        ) {
            (false, None) => {
                let _ = writeln!(
                    problems,
                    "{}: {} has no Lisp binding (bind it, remove it, or list it in RUST_ONLY)",
                    e.at, e.name
                );
            }
            (true, Some(_)) => {
                let _ = writeln!(
                    problems,
                    "{}: {} is bound in Lisp but listed in RUST_ONLY",
                    e.at, e.name
                );
            }
            (false, Some(_)) if !rust_users.contains(&format!("{}(", e.name)) => {
                let _ = writeln!(
                    problems,
                    "{}: {} is in RUST_ONLY, but no Rust test or benchmark calls it: remove it",
                    e.at, e.name
                );
            }
            _ => {}
        }
    }
    for name in rust_only.keys() {
        if !by_name.contains_key(name) {
            let _ = writeln!(
                problems,
                "RUST_ONLY lists {name}, which the shim does not export"
            );
        }
    }

    let lisp_text: String = ["lisp/src", "lisp/tests", "bench/lisp"]
        .iter()
        .filter(|d| repo().join(d).is_dir())
        .flat_map(|d| files(d, "lisp"))
        .map(|p| read(&p))
        .collect();
    for b in &bindings {
        if lisp_uses(&lisp_text, &b.lisp_name) == 0 {
            let _ = writeln!(
                problems,
                "{}: {} ({}) is never called from Lisp",
                b.at, b.lisp_name, b.c_name
            );
        }
    }
    assert!(
        problems.is_empty(),
        "the Lisp bindings and the shim's exports disagree:\n{problems}"
    );
}

#[test]
fn every_export_says_who_owns_what_whether_it_needs_the_gil_and_how_it_fails() {
    let mut problems = String::new();
    for e in exports() {
        for key in ["Owns:", "GIL:", "Fails:"] {
            let n = e.doc.iter().filter(|l| l.starts_with(key)).count();
            if n != 1 {
                let _ = writeln!(
                    problems,
                    "{}: {}'s doc has {n} lines starting with `{key}` (want 1)",
                    e.at, e.name
                );
            }
        }
    }
    assert!(
        problems.is_empty(),
        "export docs are incomplete:\n{problems}"
    );
}

#[test]
fn the_lisp_constants_match_the_shims() {
    let ffi = read(&repo().join("lisp/src/ffi.lisp"));
    let lisp = lisp_constants(&ffi);
    let rust = rust_constants();
    let mut problems = String::new();
    assert!(
        rust.len() > 20,
        "found only {} constants: the parser is broken",
        rust.len()
    );

    let mut mirrored = BTreeSet::new();
    let mut families: BTreeMap<(&str, i64), Vec<&str>> = BTreeMap::new();
    for c in &rust {
        families
            .entry((c.family.as_str(), c.value))
            .or_default()
            .push(&c.name);
        let l = lisp_constant_name(c);
        match lisp.get(&l) {
            None => {
                let _ = writeln!(
                    problems,
                    "{}: {} = {} has no Lisp constant {l} in ffi.lisp",
                    c.at, c.name, c.value
                );
            }
            Some(&(v, line)) if v != c.value => {
                let _ = writeln!(
                    problems,
                    "lisp/src/ffi.lisp:{line}: {l} is {v}, but {} ({}) is {}",
                    c.name, c.at, c.value
                );
            }
            _ => {}
        }
        mirrored.insert(l);
    }
    for ((family, value), names) in &families {
        if names.len() > 1 {
            let _ = writeln!(
                problems,
                "{} share the value {value} in the family {family}",
                names.join(" and ")
            );
        }
    }
    // The one Lisp constant with no `P4S_*` counterpart: the packed value's size, checked below.
    mirrored.insert("+value-size+".to_string());
    for (name, (_, line)) in &lisp {
        if !mirrored.contains(name) {
            let _ = writeln!(
                problems,
                "lisp/src/ffi.lisp:{line}: {name} mirrors no P4S_* constant of the shim"
            );
        }
    }
    match lisp.get("+value-size+") {
        Some(&(v, _)) if v == size_of::<P4sValue>() as i64 => {}
        other => {
            let _ = writeln!(
                problems,
                "+value-size+ is {other:?}, P4sValue is {} bytes",
                size_of::<P4sValue>()
            );
        }
    }
    assert!(problems.is_empty(), "the constants disagree:\n{problems}");
}

#[test]
fn the_lisp_structs_match_the_shims() {
    let ffi = read(&repo().join("lisp/src/ffi.lisp"));
    let rust: BTreeMap<&str, (usize, Vec<usize>)> = [
        (
            "p4s-value",
            (
                size_of::<P4sValue>(),
                vec![
                    offset_of!(P4sValue, tag),
                    offset_of!(P4sValue, aux),
                    offset_of!(P4sValue, a),
                    offset_of!(P4sValue, b),
                ],
            ),
        ),
        (
            "p4s-error-info",
            (
                size_of::<P4sErrorInfo>(),
                vec![
                    offset_of!(P4sErrorInfo, type_name),
                    offset_of!(P4sErrorInfo, type_len),
                    offset_of!(P4sErrorInfo, message),
                    offset_of!(P4sErrorInfo, message_len),
                    offset_of!(P4sErrorInfo, traceback),
                    offset_of!(P4sErrorInfo, traceback_len),
                    offset_of!(P4sErrorInfo, lisp_handle),
                ],
            ),
        ),
        (
            "p4s-buffer",
            (
                size_of::<P4sBuffer>(),
                vec![
                    offset_of!(P4sBuffer, data),
                    offset_of!(P4sBuffer, len),
                    offset_of!(P4sBuffer, itemsize),
                    offset_of!(P4sBuffer, ndim),
                    offset_of!(P4sBuffer, readonly),
                    offset_of!(P4sBuffer, format),
                    offset_of!(P4sBuffer, shape),
                    offset_of!(P4sBuffer, strides),
                    offset_of!(P4sBuffer, view),
                ],
            ),
        ),
    ]
    .into_iter()
    .collect();
    let mut problems = String::new();
    let mut seen = BTreeSet::new();
    for (line, f) in forms(&ffi, "cffi:defcstruct") {
        let items = f.list().unwrap_or_default();
        let Some([Sexp::Atom(name), Sexp::Atom(k), Sexp::Atom(size)]) = items[1].list() else {
            panic!("ffi.lisp:{line}: not (cffi:defcstruct (NAME :size N) ...)");
        };
        assert_eq!(k, ":size", "ffi.lisp:{line}");
        let Some((rsize, roffsets)) = rust.get(name.as_str()) else {
            let _ = writeln!(
                problems,
                "ffi.lisp:{line}: {name} has no Rust struct in this test"
            );
            continue;
        };
        seen.insert(name.as_str().to_string());
        if size.parse::<usize>().ok() != Some(*rsize) {
            let _ = writeln!(
                problems,
                "ffi.lisp:{line}: {name} is {size} bytes, the Rust struct {rsize}"
            );
        }
        let offsets: Vec<usize> = items[2..]
            .iter()
            .map(|field| {
                let l = field.list().unwrap_or_default();
                let k = l.iter().position(|x| x.atom() == Some(":offset"));
                k.and_then(|k| l.get(k + 1))
                    .and_then(Sexp::atom)
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| {
                        panic!("ffi.lisp:{line}: field {field:?} of {name} has no :offset")
                    })
            })
            .collect();
        if &offsets != roffsets {
            let _ = writeln!(problems, "ffi.lisp:{line}: {name}'s field offsets are {offsets:?}, the Rust struct's {roffsets:?}");
        }
    }
    for name in rust.keys() {
        if !seen.contains(*name) {
            let _ = writeln!(problems, "ffi.lisp has no (cffi:defcstruct ({name} ...))");
        }
    }
    assert!(problems.is_empty(), "the structs disagree:\n{problems}");
}
