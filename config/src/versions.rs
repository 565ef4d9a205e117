//! The CPython versions this build knows, and every place where behaviour depends on the version.
//!
//! The loader and the shim never compare version numbers to pick a code path where they can
//! test for the thing itself (an exported symbol, a `sysconfig` variable): an interpreter
//! newer than any this build knows then gets the newest known behaviour by construction.
//! [`BRANCHES`] lists each such path as data — what changed, from which version, and how the
//! code detects it — so that tests can check the table against every real interpreter of a run
//! (shim/tests/version_data.rs) and a reader can find every branch in one place.
//!
//! A version newer than [`NEWEST_KNOWN`] is accepted: it is treated as the newest known one,
//! and [`warn_once_if_newer`] says so once per process.

use std::sync::atomic::{AtomicBool, Ordering};

/// The oldest CPython the loader supports.
pub const OLDEST: (u64, u64) = (3, 8);

/// The newest CPython this build has been tested with.
pub const NEWEST_KNOWN: (u64, u64) = (3, 15);

/// How the code tells whether an interpreter takes one side of a [`Branch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detect {
    /// libpython exports this symbol (an `Option` field of the loader's C-API table).
    Symbol(&'static str),
    /// The version number itself: only where nothing can be tested for (policies).
    Version,
    /// Nothing in the code branches: the same call is right on both sides.
    None,
}

/// One place where CPython changed under the loader or the shim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Branch {
    /// A short name.
    pub name: &'static str,
    /// The first `(major, minor, patch)` with the new behaviour.
    pub since: (u64, u64, u64),
    /// How the code detects it.
    pub detect: Detect,
    /// Where the branch is and what each side does.
    pub what: &'static str,
}

/// Every version-dependent code path of the loader and the shim, oldest first.
pub const BRANCHES: &[Branch] = &[
    Branch {
        name: "vectorcall-dict",
        since: (3, 9, 0),
        detect: Detect::Symbol("PyObject_VectorcallDict"),
        what:
            "shim vectorcall.rs: keyword calls through PyObject_VectorcallDict; before 3.9 a tuple and \
               a dict through PyObject_Call",
    },
    Branch {
        name: "vectorcall-method",
        since: (3, 9, 0),
        detect: Detect::Symbol("PyObject_VectorcallMethod"),
        what: "shim vectorcall.rs: method calls without a bound-method object; before 3.9 \
               PyObject_GetAttr then a call",
    },
    Branch {
        name: "vectorcall",
        since: (3, 11, 0),
        detect: Detect::Symbol("PyObject_Vectorcall"),
        what: "shim vectorcall.rs: positional calls through the exported PyObject_Vectorcall (an \
               inline function in 3.9 and 3.10, so not resolvable there: those use \
               PyObject_VectorcallDict with no keywords, 3.8 a tuple)",
    },
    Branch {
        name: "finalized-pin-unload-others",
        since: (3, 11, 0),
        detect: Detect::Version,
        what: "loader lifecycle/stop.rs, only after (pystop :finalize t) over a pinning \
               extension (a default stop is then soft, on every version): before 3.11 static \
               type state points into extension modules, so nothing is unloaded; from 3.11 the \
               modules that do not pin are unloaded",
    },
    Branch {
        name: "raised-exception",
        since: (3, 12, 0),
        detect: Detect::Symbol("PyErr_GetRaisedException"),
        what: "shim pyerr.rs: one normalised exception object with its traceback \
               (PyErr_GetRaisedException/SetRaisedException); before 3.12 the \
               PyErr_Fetch/NormalizeException/Restore triple",
    },
    Branch {
        name: "immortal-objects",
        since: (3, 12, 0),
        detect: Detect::None,
        what: "refcounts always go through the Py_IncRef/Py_DecRef functions, never the header \
               macros, so immortal objects (3.12+: None, small ints, interned str) need no branch",
    },
    Branch {
        name: "mimalloc-thread-cleanup",
        since: (3, 13, 0),
        detect: Detect::None,
        what: "loader tsd.rs: 3.13's bundled mimalloc registers a pthread key destructor; the \
               loader deletes keys whose destructor lies in an unmapped libpython, on every \
               version, because it tests the destructor address rather than the version",
    },
    Branch {
        name: "no-reinitialise-over-pin",
        since: (3, 14, 0),
        detect: Detect::Version,
        what: "loader lifecycle/mod.rs reinitialises_over_pin: after a finalisation that left \
               libpython mapped, 3.8-3.13 may initialise the same libpython again (measured); \
               3.14 and 3.15 die with a memory fault, so no start is allowed (newer, unknown \
               versions likewise)",
    },
    Branch {
        name: "c-stack-protection",
        since: (3, 14, 1),
        detect: Detect::Symbol("PyUnstable_ThreadState_SetStackProtection"),
        what: "loader stack.rs (called by the shim's first entry of a thread): 3.14 compares the \
               stack pointer with the thread's pthread stack, and on a Lisp's own stack (SBCL's \
               main thread) deferred every deallocation; the real range is given to Python. \
               Before 3.14 C recursion was counted, not measured; 3.14.0 has the check but \
               not the function, so there objects dropped on SBCL's main thread are never freed",
    },
];

/// The behaviour to use for `major.minor.patch`: itself when known, else the newest known.
pub fn effective(major: u64, minor: u64, patch: u64) -> (u64, u64, u64) {
    if (major, minor) > NEWEST_KNOWN {
        (NEWEST_KNOWN.0, NEWEST_KNOWN.1, u64::MAX)
    } else {
        (major, minor, patch)
    }
}

/// Whether [`Branch`] `b` is on its new side for `version` (newer unknown versions count as
/// the newest known).
pub fn has(b: &Branch, version: &semver::Version) -> bool {
    effective(version.major, version.minor, version.patch) >= b.since
}

/// The warning for a version newer than any this build knows, or `None`.
pub fn newer_than_known(version: &semver::Version) -> Option<String> {
    ((version.major, version.minor) > NEWEST_KNOWN).then(|| {
        format!(
            "Python {}.{} is newer than the newest version this build of py4cl2-cffi was tested \
             with ({}.{}); it is used with {}.{}'s behaviour — report any problem",
            version.major,
            version.minor,
            NEWEST_KNOWN.0,
            NEWEST_KNOWN.1,
            NEWEST_KNOWN.0,
            NEWEST_KNOWN.1
        )
    })
}

static WARNED: AtomicBool = AtomicBool::new(false);

/// Prints [`newer_than_known`]'s warning on stderr, at most once per process. Returns whether
/// it printed.
pub fn warn_once_if_newer(version: &semver::Version) -> bool {
    match newer_than_known(version) {
        Some(text) if !WARNED.swap(true, Ordering::Relaxed) => {
            eprintln!("warning: {text}");
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_ordered_and_within_the_known_range() {
        for w in BRANCHES.windows(2) {
            assert!(
                w[0].since <= w[1].since,
                "{} before {}",
                w[0].name,
                w[1].name
            );
        }
        for b in BRANCHES {
            let xy = (b.since.0, b.since.1);
            assert!(xy > OLDEST && xy <= NEWEST_KNOWN, "{}", b.name);
        }
    }

    fn v(major: u64, minor: u64, patch: u64) -> semver::Version {
        semver::Version::new(major, minor, patch)
    }

    #[test]
    fn each_branch_has_two_sides() {
        for b in BRANCHES {
            let (x, y, z) = b.since;
            let before = if z > 0 {
                v(x, y, z - 1)
            } else {
                v(x, y - 1, 99)
            };
            assert!(!has(b, &before), "{} before {:?}", b.name, b.since);
            assert!(has(b, &v(x, y, z)), "{} at {:?}", b.name, b.since);
        }
    }

    #[test]
    fn an_unknown_newer_minor_gets_the_newest_behaviour_and_one_warning() {
        assert_eq!(effective(3, 12, 1), (3, 12, 1));
        let newest = v(NEWEST_KNOWN.0, NEWEST_KNOWN.1, 0);
        for b in BRANCHES {
            assert!(has(b, &v(3, 16, 0)), "{}: 3.16 takes the new side", b.name);
            assert_eq!(has(b, &v(3, 16, 0)), has(b, &newest), "{}", b.name);
        }
        let v316 = v(3, 16, 0);
        let text = newer_than_known(&v316).unwrap();
        assert!(text.contains("3.16") && text.contains("3.15"), "{text}");
        assert_eq!(newer_than_known(&v(3, 15, 2)), None);
        assert!(!warn_once_if_newer(&v(3, 14, 0)));
        assert!(warn_once_if_newer(&v316));
        assert!(!warn_once_if_newer(&v316), "only once per process");
    }
}
