//! Opens libpython at run time, resolves the C-API table, starts, stops and unloads Python.
#![allow(missing_docs)]

pub mod api;
pub mod ffi_types;

/// Errors of the loader.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A required C-API symbol is not exported by the libpython that was opened.
    #[error("libpython does not export the required symbol `{name}`")]
    MissingSymbol {
        name: &'static str,
        #[source]
        source: libloading::Error,
    },
}
