//! The guest's PID 1, `berth-init`, must be a static binary: the initramfs has no libc.
//!
//! How it is built (without touching the workspace-wide flags): a separate target dir so
//! the static build never invalidates the normal one,
//! ```sh
//! RUSTFLAGS='-C target-feature=+crt-static' CARGO_TARGET_DIR=target/guest \
//!     cargo build -p berth-init --target x86_64-unknown-linux-gnu
//! # → target/guest/x86_64-unknown-linux-gnu/debug/berth-init
//! ```
//! With an explicit `--target`, RUSTFLAGS apply to the target only, so build scripts and
//! proc-macros still build normally. [`build_init`] runs exactly that; [`find_init`] looks
//! for an existing binary.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, IoContext, Result};
use crate::util;

/// The target the guest init is built for.
pub const INIT_TARGET: &str = "x86_64-unknown-linux-gnu";
/// The environment variable naming a prebuilt `berth-init`.
pub const INIT_ENV: &str = "BERTH_INIT";

/// Finds a static `berth-init`: `explicit`, else `$BERTH_INIT`, else `berth-init` next to
/// the running executable (where packages and scripts/build-static.sh install it beside
/// `berthd`; a dynamically linked one there, as a plain `cargo build` leaves, is passed
/// over).
pub fn find_init(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        check_static(p)?;
        return Ok(p.to_path_buf());
    }
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = std::env::var_os(INIT_ENV) {
        candidates.push(PathBuf::from(p));
    }
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        candidates.push(dir.join("berth-init"));
    }
    let mut passed_over = Vec::new();
    for c in &candidates {
        if c.is_file() {
            match check_static(c) {
                Ok(()) => return Ok(c.clone()),
                Err(e) => passed_over.push(e.to_string()),
            }
        }
    }
    if !passed_over.is_empty() {
        return Err(Error::Init(format!(
            "no usable berth-init ({}); build a static one with scripts/build-static.sh",
            passed_over.join("; ")
        )));
    }
    Err(Error::Init(format!(
        "no static berth-init binary (looked at {}); build one with scripts/build-static.sh \
         (or pass its path with --vm-init, or set {INIT_ENV})",
        candidates
            .iter()
            .map(|c| c.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )))
}

/// Builds `berth-init` statically from the workspace at `workspace` into `target_dir`
/// (`<workspace>/target/guest` is a good choice) and returns the binary's path.
/// Uses `$CARGO` if set (as it is under `cargo test`), else `cargo`.
pub fn build_init(workspace: &Path, target_dir: &Path, release: bool) -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .args([
            "build",
            "--quiet",
            "-p",
            "berth-init",
            "--target",
            INIT_TARGET,
        ])
        .env("CARGO_TARGET_DIR", target_dir)
        // CARGO_ENCODED_RUSTFLAGS wins over RUSTFLAGS: set it, so an outer cargo's flags
        // (or a RUSTFLAGS in the environment) cannot make the binary dynamic.
        .env("CARGO_ENCODED_RUSTFLAGS", "-Ctarget-feature=+crt-static")
        .env_remove("RUSTFLAGS");
    if release {
        cmd.arg("--release");
    }
    util::run(&mut cmd)?;
    let bin = target_dir
        .join(INIT_TARGET)
        .join(if release { "release" } else { "debug" })
        .join("berth-init");
    check_static(&bin)?;
    Ok(bin)
}

/// Fails unless `path` is a 64-bit ELF executable without an interpreter (`PT_INTERP`).
pub fn check_static(path: &Path) -> Result<()> {
    let data = fs::read(path).at("read", path)?;
    let bad = |why: &str| Err(Error::Init(format!("{}: {why}", path.display())));
    if data.len() < 64 || &data[..4] != b"\x7fELF" || data[4] != 2 || data[5] != 1 {
        return bad("not a 64-bit little-endian ELF file");
    }
    let u16_at = |o: usize| u16::from_le_bytes([data[o], data[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(data[32..40].try_into().expect("8 bytes")) as usize;
    let (phentsize, phnum) = (u16_at(54), u16_at(56));
    for i in 0..phnum {
        let off = phoff + i * phentsize;
        let Some(ph) = data.get(off..off + 4) else {
            return bad("truncated program headers");
        };
        if u32::from_le_bytes(ph.try_into().expect("4 bytes")) == 3 {
            return bad("dynamically linked (has an ELF interpreter); build it with crt-static");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_check() {
        // Test binaries are dynamic (no crt-static in the normal build).
        let me = std::env::current_exe().unwrap();
        let err = check_static(&me).unwrap_err().to_string();
        assert!(err.contains("dynamically linked"), "{err}");
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("x");
        fs::write(&f, b"#!/bin/sh\n").unwrap();
        assert!(check_static(&f).is_err());
        assert!(find_init(Some(&d.path().join("missing"))).is_err());
    }
}
