//! Build script of the shim: on macOS (Apple targets) only, gives the cdylib the install name
//! `@rpath/libpy4cl2_cffi_shim.dylib` instead of the absolute path of the build folder, so that
//! the same file can be moved, packed and loaded from anywhere (and found through an rpath by
//! anything that links it). On every other target it does nothing: the ELF shim needs no
//! soname, and in no case does the shim link libpython.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // The target, not the host: a cross build for macOS gets the flag, a macOS build for
    // another target does not. (rustc itself sets an @rpath install name only with -C rpath.)
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("macos") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-install_name,@rpath/libpy4cl2_cffi_shim.dylib");
    }
}
