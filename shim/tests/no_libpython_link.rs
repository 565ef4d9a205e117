//! The built shim does not link libpython: `readelf -d` shows no `NEEDED libpython*` entry, so
//! one build serves every Python and nothing Python-specific is needed to load it.

#[test]
fn the_cdylib_has_no_needed_libpython() {
    // Integration tests live in target/<profile>/deps; the cdylib is built one level up.
    let exe = std::env::current_exe().unwrap();
    let lib = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("libpy4cl2_cffi_shim.so");
    assert!(lib.exists(), "{} not built", lib.display());
    let out = std::process::Command::new("readelf")
        .args(["-d", lib.to_str().unwrap()])
        .output()
        .expect("readelf (binutils) is needed for this test");
    let text = String::from_utf8_lossy(&out.stdout);
    let needed: Vec<&str> = text.lines().filter(|l| l.contains("(NEEDED)")).collect();
    assert!(
        !needed.is_empty(),
        "readelf printed no NEEDED entries at all:\n{text}"
    );
    assert!(
        needed.iter().all(|l| !l.contains("libpython")),
        "the shim links libpython: {needed:?}"
    );
    eprintln!("NEEDED of {}: {needed:?}", lib.display());
}
