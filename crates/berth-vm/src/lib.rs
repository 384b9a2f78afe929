//! berth's micro-VM backend: the same image run as a virtual machine with berth's own init.
//!
//! The pieces, each usable on its own (every root path is a constructor argument):
//! - [`rootfs`]: the image's merged tree → a cached ext4 image (`mkfs.ext4 -d`), plus a
//!   per-VM copy-on-write qcow2 overlay, so the cached base is never written;
//! - [`initramfs`]: a newc cpio with the static `berth-init` as `/init` and the few kernel
//!   modules the guest needs (virtio-mmio, -blk, -console, -net), cached;
//! - [`kernel`]: finds the guest kernel and its modules, unpacks `vmlinux` from a bzImage
//!   (PVH boot is faster), and can fetch Debian's cloud kernel for tests;
//! - [`init`]: finds or builds the static `berth-init` binary;
//! - [`vmm`]: the [`vmm::Vmm`] trait with a QEMU `microvm` driver and a Firecracker driver;
//! - [`link`]: the host end of the control channel to a guest ([`link::GuestLink`]);
//! - [`protocol`]: the framed host↔guest messages, shared with `berth-init`.
//!
//! See this crate's README.md for the boot sequence and how to measure on a KVM host.
//!
//! Only [`protocol`] is built without the default `host` feature; that is what the guest
//! binary uses. The `vmm` feature alone gives [`vmm`] and [`sandbox`] (what the shim
//! needs to run a VM), `host` everything.

pub mod protocol;

#[cfg(feature = "vmm")]
mod error;
#[cfg(feature = "host")]
pub mod init;
#[cfg(feature = "host")]
pub mod initramfs;
#[cfg(feature = "host")]
pub mod kernel;
#[cfg(feature = "vmm")]
pub mod link;
#[cfg(feature = "host")]
pub mod rootfs;
#[cfg(feature = "vmm")]
pub mod sandbox;
#[cfg(feature = "host")]
mod util;
#[cfg(feature = "vmm")]
pub mod vmm;

#[cfg(feature = "vmm")]
pub use error::{Error, Result};
