//! Where the configuration file and the facts cache live (per-OS folders come from `dirs`).

use std::path::PathBuf;

/// Environment variable naming the configuration file, overriding the default location.
pub const CONFIG_ENV: &str = "PY4CL2_CFFI_CONFIG";
/// Environment variable naming the folder of the facts cache, overriding the default.
pub const CACHE_ENV: &str = "PY4CL2_CFFI_CACHE_DIR";

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The configuration file: `$PY4CL2_CFFI_CONFIG`, else `<config dir>/py4cl2-cffi/config.toml`
/// (`~/.config` on Linux, `~/Library/Application Support` on macOS). It may not exist.
pub fn config_path() -> PathBuf {
    env_path(CONFIG_ENV).unwrap_or_else(|| {
        dirs::config_dir()
            .unwrap_or_else(|| PathBuf::from("."))
            .join("py4cl2-cffi")
            .join("config.toml")
    })
}

/// The facts cache file: `$PY4CL2_CFFI_CACHE_DIR/facts.json`, else
/// `<cache dir>/py4cl2-cffi/facts.json`; `None` when there is no cache folder at all.
pub fn cache_path() -> Option<PathBuf> {
    env_path(CACHE_ENV)
        .or_else(|| dirs::cache_dir().map(|d| d.join("py4cl2-cffi")))
        .map(|d| d.join("facts.json"))
}
