//! macOS `Python.framework/Versions/X.Y` layouts, recognised from paths alone so the logic
//! works (and is tested) on any OS.

use std::path::{Component, Path, PathBuf};

use super::Candidate;
use crate::Kind;

/// One version folder of a Python framework: `<dir>/Python.framework/Versions/3.12`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The `Python.framework` (or Apple's `Python3.framework`) folder.
    pub framework: PathBuf,
    /// `X.Y`, as in the version folder's name.
    pub version: String,
    /// The version folder, which is the interpreter's `sys.base_prefix`.
    pub root: PathBuf,
}

fn is_framework_name(name: &str) -> bool {
    name == "Python.framework" || name == "Python3.framework"
}

/// Whether `name` is a `X.Y` version folder name.
fn is_version_name(name: &str) -> bool {
    let mut parts = name.split('.');
    let ok =
        |p: Option<&str>| p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    ok(parts.next()) && ok(parts.next()) && parts.next().is_none()
}

impl Layout {
    /// The layout that `path` (the version folder itself or anything inside it, such as
    /// `Versions/3.12/bin/python3.12`) belongs to. `Versions/Current` is followed to the
    /// version it points to. Purely lexical apart from that.
    pub fn from_path(path: &Path) -> Option<Layout> {
        let comps: Vec<Component<'_>> = path.components().collect();
        for i in 0..comps.len().saturating_sub(2) {
            let name = comps[i].as_os_str().to_str().unwrap_or("");
            if !is_framework_name(name) || comps[i + 1].as_os_str() != "Versions" {
                continue;
            }
            let framework: PathBuf = comps[..=i].iter().collect();
            let version_name = comps[i + 2].as_os_str().to_str()?;
            let version = if version_name == "Current" {
                let target = std::fs::read_link(framework.join("Versions").join("Current")).ok()?;
                target.file_name()?.to_str()?.to_string()
            } else {
                version_name.to_string()
            };
            if !is_version_name(&version) {
                return None;
            }
            let root = framework.join("Versions").join(&version);
            return Some(Layout {
                framework,
                version,
                root,
            });
        }
        None
    }

    /// The interpreter: `bin/pythonX.Y`, else `bin/python3`, if one exists.
    pub fn executable(&self) -> Option<PathBuf> {
        let bin = self.root.join("bin");
        [format!("python{}", self.version), "python3".to_string()]
            .into_iter()
            .map(|n| bin.join(n))
            .find(|p| p.is_file())
    }

    /// The shared libpython: the framework library `Versions/X.Y/Python` (what
    /// `PYTHONFRAMEWORKPREFIX/LDLIBRARY` names), else `lib/libpythonX.Y.dylib`, if one exists.
    pub fn libpython(&self) -> Option<PathBuf> {
        let framework_lib = self
            .framework
            .file_stem()
            .map(|stem| self.root.join(stem))
            .unwrap_or_else(|| self.root.join("Python"));
        [
            framework_lib,
            self.root
                .join("lib")
                .join(format!("libpython{}.dylib", self.version)),
        ]
        .into_iter()
        .find(|p| p.is_file())
    }

    /// The C headers folder: `include/pythonX.Y`.
    pub fn include_dir(&self) -> PathBuf {
        self.root
            .join("include")
            .join(format!("python{}", self.version))
    }

    /// What `pythonX.Y-config --includes` prints for this layout (include and platinclude
    /// are the same folder in a framework build).
    pub fn includes(&self) -> String {
        let d = self.include_dir();
        format!("-I{} -I{}", d.display(), d.display())
    }
}

/// Every version folder of a framework folder (`Versions/Current` is skipped, being a link
/// to one of the others), in name order.
pub fn versions(framework: &Path) -> Vec<Layout> {
    let Ok(entries) = std::fs::read_dir(framework.join("Versions")) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| is_version_name(n))
        .collect();
    names.sort_by_key(|n| super::version_key(n));
    names
        .into_iter()
        .filter_map(|n| Layout::from_path(&framework.join("Versions").join(n)))
        .collect()
}

/// Where macOS installs put Python frameworks (python.org, Homebrew, Xcode's tools).
pub fn default_frameworks(home: Option<&Path>) -> Vec<PathBuf> {
    let mut dirs = vec![
        PathBuf::from("/Library/Frameworks/Python.framework"),
        PathBuf::from("/opt/homebrew/Frameworks/Python.framework"),
        PathBuf::from("/usr/local/Frameworks/Python.framework"),
        PathBuf::from("/Library/Developer/CommandLineTools/Library/Frameworks/Python3.framework"),
        PathBuf::from(
            "/Applications/Xcode.app/Contents/Developer/Library/Frameworks/Python3.framework",
        ),
    ];
    if let Some(home) = home {
        dirs.push(home.join("Library/Frameworks/Python.framework"));
    }
    dirs
}

/// The interpreters of the given framework folders.
pub(crate) fn candidates(frameworks: &[PathBuf]) -> Vec<Candidate> {
    frameworks
        .iter()
        .flat_map(|f| versions(f))
        .filter_map(|l| l.executable())
        .map(|p| Candidate::new(p, Kind::Framework))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake `Python.framework` tree with one version.
    fn fake_tree(base: &Path, lib_as_dylib: bool) -> PathBuf {
        let fw = base.join("Library/Frameworks/Python.framework");
        let root = fw.join("Versions/3.12");
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::create_dir_all(root.join("include/python3.12")).unwrap();
        std::fs::write(root.join("bin/python3.12"), b"#!/bin/sh\n").unwrap();
        if lib_as_dylib {
            std::fs::create_dir_all(root.join("lib")).unwrap();
            std::fs::write(root.join("lib/libpython3.12.dylib"), b"").unwrap();
        } else {
            std::fs::write(root.join("Python"), b"").unwrap();
        }
        #[cfg(unix)]
        std::os::unix::fs::symlink("3.12", fw.join("Versions/Current")).unwrap();
        fw
    }

    #[test]
    fn classifies_paths_inside_a_framework() {
        let dir = tempfile::tempdir().unwrap();
        let fw = fake_tree(dir.path(), false);
        let root = fw.join("Versions/3.12");
        let exe = root.join("bin/python3.12");

        let layout = Layout::from_path(&exe).expect("a framework path");
        assert_eq!(layout.framework, fw);
        assert_eq!(layout.version, "3.12");
        assert_eq!(layout.root, root);
        assert_eq!(Layout::from_path(&root), Some(layout.clone()));
        #[cfg(unix)]
        assert_eq!(
            Layout::from_path(&fw.join("Versions/Current/bin/python3")),
            Some(layout.clone())
        );

        assert_eq!(layout.executable(), Some(exe));
        assert_eq!(layout.libpython(), Some(root.join("Python")));
        assert_eq!(layout.include_dir(), root.join("include/python3.12"));
        let inc = root.join("include/python3.12");
        assert_eq!(
            layout.includes(),
            format!("-I{} -I{}", inc.display(), inc.display())
        );
        assert_eq!(versions(&fw), vec![layout]);
        assert_eq!(candidates(&[fw]).len(), 1);
    }

    #[test]
    fn libpython_as_dylib() {
        let dir = tempfile::tempdir().unwrap();
        let fw = fake_tree(dir.path(), true);
        let layout = Layout::from_path(&fw.join("Versions/3.12")).unwrap();
        assert_eq!(
            layout.libpython(),
            Some(fw.join("Versions/3.12/lib/libpython3.12.dylib"))
        );
    }

    #[test]
    fn other_paths_are_not_frameworks() {
        for p in [
            "/usr/bin/python3",
            "/Library/Frameworks/Python.framework",
            "/Library/Frameworks/Python.framework/Versions",
            "/Library/Frameworks/Python.framework/Versions/latest/bin/python3",
            "/Library/Frameworks/Tcl.framework/Versions/8.6",
        ] {
            assert_eq!(Layout::from_path(Path::new(p)), None, "{p}");
        }
        assert!(Layout::from_path(Path::new(
            "/Library/Developer/CommandLineTools/Library/Frameworks/Python3.framework/Versions/3.9/bin/python3"
        ))
        .is_some());
    }
}
