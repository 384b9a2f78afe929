//! Records the git commit the client was built from (`berth -v`, `berth version`), and
//! links the client as a position-dependent executable: with ~30 000 relative
//! relocations, a PIE client spends a third of its start-up in the dynamic loader
//! (measured: `berth --version` 4.1 → 3.4 ms). The client is short-lived and unprivileged
//! work, so the address-space randomisation of its own text is not worth that; the
//! daemon, the shim and the runtime stay PIE.

use std::path::Path;
use std::process::Command;

fn main() {
    let git = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.git");
    for p in ["HEAD", "refs/heads"] {
        let path = git.join(p);
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
    // A static build (crt-static) is a static PIE, which has no dynamic loader to skip.
    let static_crt = std::env::var("CARGO_CFG_TARGET_FEATURE")
        .is_ok_and(|features| features.split(',').any(|f| f == "crt-static"));
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") && !static_crt {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
    let commit = Command::new("git")
        .args(["rev-parse", "--short=7", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|c| !c.is_empty());
    if let Some(c) = commit {
        println!("cargo:rustc-env=BERTH_GIT_COMMIT={c}");
    }
}
