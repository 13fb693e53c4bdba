//! Lays out the release binary's hot code together (see `link/README.md`): the functions an
//! idle and a working lever run, listed in `link/hot-functions.txt`, are given to the linker
//! as a symbol order, so they share a few pages instead of touching pages all over the binary.
//!
//! Only LLD reads a symbol order; Rust links with it by default on x86_64 Linux since 1.90.
//! Elsewhere (another target, an older Rust, a linker chosen by hand) the binary links in
//! the default order: the same program, with more of it resident.

use std::process::Command;

const ORDER: &str = "link/hot-functions.txt";

fn main() {
    println!("cargo:rerun-if-changed={ORDER}");
    println!("cargo:rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    let env = |key: &str| std::env::var(key).unwrap_or_default();
    let release = env("PROFILE") == "release";
    let target = env("TARGET") == "x86_64-unknown-linux-gnu";
    let flags = env("CARGO_ENCODED_RUSTFLAGS");
    let linker_chosen = flags.contains("linker") || flags.contains("fuse-ld");
    if !(release && target && !linker_chosen && links_with_lld(&env("RUSTC"))) {
        return;
    }
    let order = std::path::Path::new(&env("CARGO_MANIFEST_DIR")).join(ORDER);
    if !order.exists() {
        return;
    }
    println!(
        "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
        order.display()
    );
    // The list is made from one build; a function renamed since is simply not placed.
    println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
}

/// Whether this rustc links x86_64 Linux binaries with its own LLD by default (1.90 and later).
fn links_with_lld(rustc: &str) -> bool {
    let Ok(out) = Command::new(rustc).arg("--version").output() else {
        return false;
    };
    // "rustc 1.95.0 (59807616e 2026-04-14)"
    let text = String::from_utf8_lossy(&out.stdout);
    let mut version = text
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .split(['.', '-'])
        .map(|n| n.parse::<u32>().unwrap_or(0));
    let (major, minor) = (version.next().unwrap_or(0), version.next().unwrap_or(0));
    (major, minor) >= (1, 90)
}
