use anyhow::{Context, bail};
use berth_image::config::ImageConfig;
use berth_runtime::{HostConfig, SpecInputs};

use crate::cli::Spec;

/// A busybox-like image: the standard PATH and `sh`.
const DEFAULT_IMAGE: &str = r#"{
  "architecture": "amd64",
  "os": "linux",
  "config": {
    "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
    "Cmd": ["sh"]
  },
  "rootfs": {"type": "layers", "diff_ids": []}
}"#;

/// Writes Docker's default spec for a busybox-like image, with `rootfs` as its root,
/// into `<bundle>/config.json`; like runc, it refuses to overwrite one.
pub fn spec(args: &Spec) -> anyhow::Result<()> {
    let path = args.bundle.join("config.json");
    if path.exists() {
        bail!("file {} exists; remove it first", path.display());
    }
    let spec = default_spec("rootfs")?;
    let json = serde_json::to_string_pretty(&spec)?;
    std::fs::write(&path, json + "\n").with_context(|| format!("write {}", path.display()))
}

/// Docker's defaults for a busybox-like image whose root is `rootfs`, on this host.
pub fn default_spec(rootfs: &str) -> anyhow::Result<libcontainer::oci_spec::runtime::Spec> {
    let image: ImageConfig = serde_json::from_str(DEFAULT_IMAGE).context("default image")?;
    let host = HostConfig::default();
    let mut inputs = SpecInputs::new(&image, &host, rootfs);
    inputs.facts = berth_runtime::detect_host_facts();
    berth_runtime::generate(&inputs).context("generate spec")
}
