//! Builds the static `--init` binary (init/init.c) with the system C compiler, so the
//! daemon can install it without any other package.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=init/init.c");
    let out =
        PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("docker-init");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&cc)
        .args(["-static", "-Os", "-s", "-Wall", "-o"])
        .arg(&out)
        .arg("init/init.c")
        .status()
        .unwrap_or_else(|e| panic!("run {cc}: {e} (install build-essential)"));
    assert!(
        status.success(),
        "{cc} failed to build init/init.c (static glibc: libc6-dev)"
    );
}
