//! Interpreter discovery, the TOML configuration file and interpreter selection.
//!
//! This is the first layer of py4cl2-cffi: the loader and the Lisp side read what it records.
//! CONTRACT used by the `loader` crate (keep these signatures stable):
//! - [`Facts`]: what one interpreter says about itself.
//! - [`resolve`]: the facts of the interpreter to start for an optional SPEC, without writing.

mod facts;
pub use facts::Facts;

/// Errors of the config layer. (Skeleton: the full enum lives in `error.rs`.)
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Placeholder until discovery lands.
    #[error("not implemented yet: {0}")]
    Unimplemented(&'static str),
}

/// The facts of the interpreter py4cl2-cffi should start.
///
/// With `Some(spec)`, the interpreter SPEC selects (`3.12`, `>=3.10`, an executable path, a venv or
/// conda folder); with `None`, the one recorded in the configuration file, or if there is none,
/// the first usable `python3` on `PATH`. Nothing is written.
pub fn resolve(spec: Option<&str>) -> Result<Facts, Error> {
    let _ = spec;
    Err(Error::Unimplemented("resolve"))
}
