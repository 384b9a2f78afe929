//! A container's root filesystem as data: `docker cp` (`HEAD`/`GET`/`PUT
//! /containers/{id}/archive`), `docker diff` (`/changes`), `docker export` and `docker
//! commit`.
//!
//! Everything inside the tree is reached through descriptors: paths are resolved with
//! `openat2(RESOLVE_IN_ROOT)` below a descriptor of the merged root, walks descend with
//! `openat(O_NOFOLLOW)`, and extraction goes through the layer code, so symlinks written by
//! the container resolve as they would inside it and never lead to the host.
//!
//! A running container's overlay is already mounted at `<dir>/rootfs`; a stopped one's is
//! mounted for the duration of the request (under the container's operation lock, so a
//! start cannot race with the unmount) and unmounted afterwards.
//!
//! Only the container's own root filesystem is visible this way: binds, volumes and tmpfs
//! mounts exist in the container's mount namespace, not on the host's view of `<dir>/rootfs`,
//! so paths under them show what the image has underneath (usually an empty directory), and
//! a copy into one lands in the root filesystem. dockerd shows the volume's content there.

use std::collections::{HashMap, HashSet};
use std::io::{self, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use base64::Engine as _;
use berth_image::config::{
    ContainerConfig as ImageContainerConfig, History, ImageConfig, MEDIA_OCI_LAYER, RootFs,
};
use berth_image::digest::chain_ids;
use berth_image::store::{LayerFill, NewLayer};
use berth_image::{Digest, ImageStore, Reference, layer};
use bytes::Bytes;
use futures::Stream;
use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, ResolveFlags, Stat, Uid};
use rustix::io::Errno;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use super::cp_view::{CpMount, CpView};
use super::record::{ContainerRecord, Status};
use super::rootfs::{self, Snapshot};
use super::{Container, ContainerService};
use crate::error::{EngineError, Result};
use crate::images::changes::apply_change;

/// A request body as a byte stream.
pub type ByteStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

/// A tar being produced, chunk by chunk.
pub type TarStream = mpsc::Receiver<io::Result<Bytes>>;

/// Go's `os.FileMode` bits, as docker puts them in the path stat.
pub mod go_mode {
    pub const DIR: u32 = 1 << 31;
    pub const SYMLINK: u32 = 1 << 27;
    pub const DEVICE: u32 = 1 << 26;
    pub const NAMED_PIPE: u32 = 1 << 25;
    pub const SOCKET: u32 = 1 << 24;
    pub const SETUID: u32 = 1 << 23;
    pub const SETGID: u32 = 1 << 22;
    pub const CHAR_DEVICE: u32 = 1 << 21;
    pub const STICKY: u32 = 1 << 20;
}

/// `X-Docker-Container-Path-Stat`: what `docker cp` learns about a path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PathStat {
    pub name: String,
    pub size: i64,
    /// Go's `os.FileMode`.
    pub mode: u32,
    /// RFC 3339 with nanoseconds, as Go marshals a `time.Time`.
    pub mtime: String,
    /// The fully resolved target (in the container) when the path is a symlink.
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

impl PathStat {
    /// The header value: base64 (standard) of the JSON.
    pub fn header_value(&self) -> String {
        base64::engine::general_purpose::STANDARD
            .encode(serde_json::to_vec(self).expect("path stat serialises"))
    }
}

/// Options of `PUT /containers/{id}/archive`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExtractOptions {
    /// Refuse to replace a directory by a non-directory and the reverse.
    pub no_overwrite_dir_non_dir: bool,
    /// Own everything extracted by the container's user (`docker cp -a`).
    pub copy_uid_gid: bool,
}

/// `docker diff` kinds.
pub const CHANGE_MODIFY: u8 = 0;
pub const CHANGE_ADD: u8 = 1;
pub const CHANGE_DELETE: u8 = 2;

/// One line of `docker diff`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Change {
    pub path: String,
    pub kind: u8,
}

/// `POST /commit`.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    pub container: String,
    pub repo: Option<String>,
    pub tag: Option<String>,
    pub comment: String,
    pub author: String,
    pub pause: bool,
    /// Dockerfile instructions (`CMD …`), one or more lines each.
    pub changes: Vec<String>,
    /// The request body: a container config, or `None`/`null` for the container's own.
    pub config: Option<Value>,
}

/// The merged root of a container, open for the length of one request. Unmounts it on drop
/// when it was mounted for the request.
struct RootAccess<'a> {
    fd: Option<OwnedFd>,
    mounted: Option<Snapshot>,
    _op: Option<tokio::sync::MutexGuard<'a, ()>>,
}

impl RootAccess<'_> {
    fn fd(&self) -> Result<OwnedFd> {
        self.fd
            .as_ref()
            .expect("the root is open until drop")
            .try_clone()
            .map_err(|e| EngineError::internal(format!("dup root: {e}")))
    }
}

impl Drop for RootAccess<'_> {
    fn drop(&mut self) {
        self.fd = None;
        if let Some(snapshot) = self.mounted.take()
            && let Err(err) = snapshot.unmount()
        {
            tracing::warn!(path = %snapshot.merged.display(), "unmount rootfs: {err}");
        }
    }
}

impl ContainerService {
    /// The overlay of `record`'s image layers and its upper dir (not mounted).
    fn snapshot_of(&self, record: &ContainerRecord, dir: &Path) -> Result<Snapshot> {
        let store = self.images.store();
        let (_, image) = record.image_in(store)?;
        let lower = image.chain_ids.iter().map(|c| store.layer_dir(c)).collect();
        Ok(Snapshot::in_dir(dir, lower))
    }

    /// Opens the merged root of `c`: the running container's mount, or the snapshot mounted
    /// now (and unmounted when the access is dropped) while holding the operation lock.
    async fn root_access<'a>(&self, c: &'a Container) -> Result<RootAccess<'a>> {
        let merged = c.dir.join("rootfs");
        if c.record().state.status.is_live()
            && let Some(fd) = open_mounted(&c.dir, &merged)
        {
            return Ok(RootAccess {
                fd: Some(fd),
                mounted: None,
                _op: None,
            });
        }
        let guard = c.op.lock().await;
        let record = c.record();
        match record.state.status {
            Status::Removing | Status::Dead => {
                return Err(EngineError::conflict(format!(
                    "container {} is being removed",
                    c.id
                )));
            }
            status if status.is_live() => {
                if let Some(fd) = open_mounted(&c.dir, &merged) {
                    return Ok(RootAccess {
                        fd: Some(fd),
                        mounted: None,
                        _op: None,
                    });
                }
            }
            _ => {}
        }
        let snapshot = self.snapshot_of(&record, &c.dir)?;
        let already = rootfs::is_mount_point(&merged).unwrap_or(false);
        snapshot
            .mount(&self.paths.data.join(".empty"), false)
            .map_err(|e| EngineError::internal(e.to_string()))?;
        let mounted = (!already).then_some(snapshot);
        match open_dir_path(&merged) {
            Ok(fd) => Ok(RootAccess {
                fd: Some(fd),
                mounted,
                _op: Some(guard),
            }),
            Err(e) => {
                if let Some(snapshot) = mounted {
                    let _ = snapshot.unmount();
                }
                Err(EngineError::internal(format!(
                    "open {}: {e}",
                    merged.display()
                )))
            }
        }
    }

    /// `HEAD /containers/{id}/archive?path=`.
    pub async fn stat_path(self: &Arc<Self>, name: &str, path: &str) -> Result<PathStat> {
        let c = self.get(name)?;
        refuse_vm(&c)?;
        let access = self.root_access(&c).await?;
        let view = CpView::open(access.fd()?, &c.record().mounts);
        let (p, n) = (path.to_string(), name.to_string());
        let result = tokio::task::spawn_blocking(move || {
            let (tree, loc) = locate_in_view(&view, &p).map_err(|e| file_error(e, &p, &n))?;
            Ok(path_stat(tree, &loc))
        })
        .await?;
        drop(access);
        result
    }

    /// `GET /containers/{id}/archive?path=`: the stat and a tar of the path whose top entry
    /// is the path's base name (the directory's contents for `DIR/.`).
    pub async fn archive_path(
        self: &Arc<Self>,
        name: &str,
        path: &str,
    ) -> Result<(PathStat, TarStream)> {
        let c = self.get(name)?;
        refuse_vm(&c)?;
        let (tx, rx) = mpsc::channel(16);
        let (ready_tx, ready_rx) = oneshot::channel::<Result<PathStat>>();
        let service = self.clone();
        let container = c.clone();
        let (p, n) = (path.to_string(), name.to_string());
        tokio::spawn(async move {
            let access = match service.root_access(&container).await {
                Ok(a) => a,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let view = match access.fd() {
                Ok(fd) => CpView::open(fd, &container.record().mounts),
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let job = tokio::task::spawn_blocking(move || {
                let (tree, loc) = match locate_in_view(&view, &p) {
                    Ok(found) => found,
                    Err(e) => {
                        let _ = ready_tx.send(Err(file_error(e, &p, &n)));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(path_stat(tree, &loc)));
                let writer = io::BufWriter::with_capacity(256 * 1024, ChannelWriter(tx.clone()));
                if let Err(e) = write_resource(tree, &loc, writer) {
                    tracing::warn!(path = %p, "archive: {e}");
                    let _ = tx.blocking_send(Err(e));
                }
            });
            let _ = job.await;
            drop(access);
        });
        let stat = ready_rx
            .await
            .map_err(|_| EngineError::internal("archive task ended early"))??;
        self.event("archive-path", &c.record(), &[]);
        Ok((stat, rx))
    }

    /// `PUT /containers/{id}/archive?path=DIR`: extracts a tar (plain or compressed) into
    /// `DIR`, an existing directory, resolved inside the container.
    ///
    /// Entries are applied with the layer code relative to `DIR`, so a symlink in the tar's
    /// way resolves with `DIR` as its root (dockerd resolves it from the container's root;
    /// both stay inside). Names beginning with `.wh.` are refused: the layer code would
    /// read them as whiteouts.
    pub async fn extract_to_dir(
        self: &Arc<Self>,
        name: &str,
        path: &str,
        opts: ExtractOptions,
        body: ByteStream,
    ) -> Result<()> {
        let c = self.get(name)?;
        refuse_vm(&c)?;
        let record = c.record();
        let access = self.root_access(&c).await?;
        let view = CpView::open(access.fd()?, &record.mounts);
        let reader = tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(body));
        let (p, n) = (path.to_string(), name.to_string());
        let spool = c
            .dir
            .join(format!(".extract-{:016x}", rand::random::<u64>()));
        let result = tokio::task::spawn_blocking(move || {
            let _cleanup = RemoveOnDrop(spool.clone());
            extract_blocking(&view, &p, &n, &record, opts, reader, &spool)
        })
        .await?;
        drop(access);
        result?;
        self.event("extract-to-dir", &c.record(), &[]);
        Ok(())
    }

    /// `GET /containers/{id}/changes`: what the container changed, as `docker diff` lists it
    /// (`None` when nothing, which dockerd sends as `null`).
    pub async fn changes(self: &Arc<Self>, name: &str) -> Result<Option<Vec<Change>>> {
        let c = self.get(name)?;
        refuse_vm(&c)?;
        let snapshot = self.snapshot_of(&c.record(), &c.dir)?;
        let changes = tokio::task::spawn_blocking(move || {
            let lower: Vec<PathBuf> = snapshot.lower.iter().rev().cloned().collect();
            compute_changes(&snapshot.upper, &lower)
        })
        .await?
        .map_err(|e| EngineError::internal(format!("compute changes: {e}")))?;
        Ok((!changes.is_empty()).then_some(changes))
    }

    /// `GET /containers/{id}/export`: a tar of the whole merged root filesystem.
    pub async fn export(self: &Arc<Self>, name: &str) -> Result<TarStream> {
        let c = self.get(name)?;
        refuse_vm(&c)?;
        let (tx, rx) = mpsc::channel(16);
        let (ready_tx, ready_rx) = oneshot::channel::<Result<()>>();
        let service = self.clone();
        let container = c.clone();
        tokio::spawn(async move {
            let access = match service.root_access(&container).await {
                Ok(a) => a,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let root = match access.fd() {
                Ok(fd) => fd,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let _ = ready_tx.send(Ok(()));
            let job = tokio::task::spawn_blocking(move || {
                let writer = io::BufWriter::with_capacity(256 * 1024, ChannelWriter(tx.clone()));
                let mut tar = TarWriter::new(writer, false);
                let result = tar.children(&root, None).and_then(|()| tar.finish());
                if let Err(e) = result {
                    tracing::warn!("export: {e}");
                    let _ = tx.blocking_send(Err(e));
                }
            });
            let _ = job.await;
            drop(access);
        });
        ready_rx
            .await
            .map_err(|_| EngineError::internal("export task ended early"))??;
        self.event("export", &c.record(), &[]);
        Ok(rx)
    }

    /// `POST /commit`: a new image made of the container image's layers plus one layer
    /// holding the container's changes (overlay whiteouts become OCI whiteouts).
    pub async fn commit(self: &Arc<Self>, opts: CommitOptions) -> Result<String> {
        let c = self.get(&opts.container)?;
        refuse_vm(&c)?;
        let record = c.record();
        match record.state.status {
            Status::Dead => {
                return Err(EngineError::conflict(format!(
                    "You cannot commit container {} which is Dead",
                    c.id
                )));
            }
            Status::Removing => {
                return Err(EngineError::conflict(format!(
                    "You cannot commit container {} which is being removed",
                    c.id
                )));
            }
            _ => {}
        }
        let reference = match opts.repo.as_deref().filter(|r| !r.is_empty()) {
            Some(repo) => {
                let text = match opts.tag.as_deref().filter(|t| !t.is_empty()) {
                    Some(tag) => format!("{repo}:{tag}"),
                    None => repo.to_string(),
                };
                let r = Reference::parse_normalized(&text)
                    .map_err(|e| EngineError::invalid(e.to_string()))?;
                if r.digest().is_some() {
                    return Err(EngineError::invalid("cannot commit to digest reference"));
                }
                Some((repo.to_string(), r))
            }
            None => None,
        };
        let config = commit_config(&record, opts.config.as_ref(), &opts.changes)?;
        let paused_here = opts.pause
            && record.state.status == Status::Running
            && self.pause(&c.id, true).await.is_ok();
        let snapshot = self.snapshot_of(&record, &c.dir);
        let store = self.images.store().clone();
        let (rec, author, comment) = (record.clone(), opts.author.clone(), opts.comment.clone());
        let result = match snapshot {
            Ok(snapshot) => tokio::task::spawn_blocking(move || {
                commit_blocking(&store, &snapshot, &rec, config, &author, &comment)
            })
            .await
            .map_err(EngineError::from)
            .and_then(|r| r),
            Err(e) => Err(e),
        };
        if paused_here && let Err(err) = self.pause(&c.id, false).await {
            tracing::warn!(id = %c.id, "unpause after commit: {err}");
        }
        let id = result?;
        let mut image_ref = String::new();
        if let Some((repo, r)) = reference {
            self.images.tag(&id.to_string(), &repo, r.tag())?;
            image_ref = r.familiar();
        }
        self.event(
            "commit",
            &c.record(),
            &[
                ("comment", opts.comment.clone()),
                ("imageID", id.to_string()),
                ("imageRef", image_ref),
            ],
        );
        Ok(id.to_string())
    }
}

/// Opens `merged` if it is the container's mounted overlay (its device differs from the
/// container directory's), so a rootfs unmounted meanwhile is not mistaken for it.
/// A micro-VM's files live in its VM's disk image, which the host does not mount.
fn refuse_vm(c: &super::Container) -> Result<()> {
    if c.record().is_microvm() {
        return Err(EngineError::invalid(format!(
            "container {}: the {} runtime keeps the container's files in its VM's disk; \
             cp, diff, export and commit are not supported for it",
            c.id,
            super::microvm::MICROVM
        )));
    }
    Ok(())
}

fn open_mounted(dir: &Path, merged: &Path) -> Option<OwnedFd> {
    let fd = open_dir_path(merged).ok()?;
    let inner = rustix::fs::fstat(&fd).ok()?;
    let outer = rustix::fs::stat(dir).ok()?;
    (inner.st_dev != outer.st_dev).then_some(fd)
}

fn open_dir_path(path: &Path) -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// "Could not find the file P in container NAME" for a missing path, else a server error.
fn file_error(e: io::Error, path: &str, name: &str) -> EngineError {
    let missing = e.kind() == io::ErrorKind::NotFound
        || matches!(
            e.raw_os_error().map(Errno::from_raw_os_error),
            Some(Errno::NOTDIR | Errno::LOOP)
        );
    if missing {
        EngineError::not_found(format!(
            "Could not find the file {path} in container {name}"
        ))
    } else {
        EngineError::internal(format!("{path}: {e}"))
    }
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

// ---- paths, as Go's `filepath` and docker's archive package treat them ----

const IN_ROOT: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

/// Opens `path` (absolute in the container, or relative to `root`) resolved inside `root`.
fn open_in(root: BorrowedFd<'_>, path: &str, flags: OFlags) -> rustix::io::Result<OwnedFd> {
    let rel = path.trim_start_matches('/');
    let rel = if rel.is_empty() { "." } else { rel };
    let mut result = Err(Errno::AGAIN);
    for _ in 0..16 {
        result = rustix::fs::openat2(root, rel, flags | OFlags::CLOEXEC, Mode::empty(), IN_ROOT);
        if !matches!(result, Err(Errno::AGAIN)) {
            break;
        }
    }
    result
}

/// `filepath.Clean(filepath.Join("/", path))`.
pub(super) fn clean_abs(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

/// docker's `PreserveTrailingDotOrSeparator`: `/x/.` and `/x/` keep their meaning.
fn preserve_trailing(mut cleaned: String, original: &str) -> String {
    if go_base(&cleaned) != "." && go_base(original) == "." {
        if !cleaned.ends_with('/') {
            cleaned.push('/');
        }
        cleaned.push('.');
    }
    if !cleaned.ends_with('/') && original.ends_with('/') {
        cleaned.push('/');
    }
    cleaned
}

/// `filepath.Base`.
fn go_base(path: &str) -> String {
    if path.is_empty() {
        return ".".into();
    }
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return "/".into();
    }
    trimmed.rsplit('/').next().unwrap_or(trimmed).to_string()
}

/// `filepath.Split`: everything up to the last `/`, and the rest.
fn go_split(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(i) => (&path[..=i], &path[i + 1..]),
        None => ("", path),
    }
}

/// A path found in the container: its absolute form, its parent directory (all symlinks
/// followed) and the final component's own (not followed) metadata.
struct Located {
    abs: String,
    /// The path as the client named it in the container (for the entry's name): it
    /// differs from `abs` when the path is in a volume or bind mount.
    shown: String,
    parent: OwnedFd,
    base: String,
    stat: Stat,
}

fn locate(root: BorrowedFd<'_>, path: &str) -> io::Result<Located> {
    let abs = preserve_trailing(clean_abs(path), path);
    let (dir, base) = go_split(&abs);
    let parent = open_in(root, dir, OFlags::PATH | OFlags::DIRECTORY)?;
    let stat = if base.is_empty() || base == "." {
        rustix::fs::fstat(&parent)?
    } else {
        rustix::fs::statat(&parent, base, AtFlags::SYMLINK_NOFOLLOW)?
    };
    Ok(Located {
        base: base.to_string(),
        shown: abs.clone(),
        abs: abs.clone(),
        parent,
        stat,
    })
}

/// Finds `path` in the container's `cp` view (volumes and binds included): the tree it
/// is in, and where.
fn locate_in_view<'v>(view: &'v CpView, path: &str) -> io::Result<(BorrowedFd<'v>, Located)> {
    let abs = preserve_trailing(clean_abs(path), path);
    let plain = clean_abs(path);
    let trailing = &abs[plain.len().min(abs.len())..];
    let placed = view.place(&plain, trailing);
    let mut loc = locate(placed.tree, &placed.inner)?;
    loc.shown = abs;
    Ok((placed.tree, loc))
}

fn path_stat(root: BorrowedFd<'_>, loc: &Located) -> PathStat {
    let mode = go_file_mode(loc.stat.st_mode);
    let link_target = if mode & go_mode::SYMLINK != 0 {
        follow_in_scope(root, &loc.abs)
    } else {
        String::new()
    };
    PathStat {
        name: go_base(&loc.shown),
        size: loc.stat.st_size,
        mode,
        mtime: go_time(loc.stat.st_mtime, loc.stat.st_mtime_nsec as i64),
        link_target,
    }
}

/// Resolves every symlink of `path` inside `root`, as docker's `FollowSymlinkInScope`:
/// components that do not exist are kept as they are.
fn follow_in_scope(root: BorrowedFd<'_>, path: &str) -> String {
    let mut resolved: Vec<String> = Vec::new();
    let mut pending: std::collections::VecDeque<String> =
        path.split('/').map(str::to_string).collect();
    let mut links = 0;
    while let Some(c) = pending.pop_front() {
        match c.as_str() {
            "" | "." => continue,
            ".." => {
                resolved.pop();
                continue;
            }
            _ => {}
        }
        let target = open_in(root, &resolved.join("/"), OFlags::PATH | OFlags::DIRECTORY)
            .ok()
            .and_then(|dir| rustix::fs::readlinkat(&dir, c.as_str(), Vec::new()).ok());
        match target {
            Some(target) if links < 255 => {
                links += 1;
                let target = target.to_string_lossy().into_owned();
                if target.starts_with('/') {
                    resolved.clear();
                }
                for part in target.split('/').rev() {
                    pending.push_front(part.to_string());
                }
            }
            _ => resolved.push(c),
        }
    }
    format!("/{}", resolved.join("/"))
}

/// Go's `os.FileMode` of a `st_mode`.
pub fn go_file_mode(st_mode: u32) -> u32 {
    let mut mode = st_mode & 0o777;
    mode |= match FileType::from_raw_mode(st_mode) {
        FileType::Directory => go_mode::DIR,
        FileType::Symlink => go_mode::SYMLINK,
        FileType::BlockDevice => go_mode::DEVICE,
        FileType::CharacterDevice => go_mode::DEVICE | go_mode::CHAR_DEVICE,
        FileType::Fifo => go_mode::NAMED_PIPE,
        FileType::Socket => go_mode::SOCKET,
        _ => 0,
    };
    if st_mode & 0o4000 != 0 {
        mode |= go_mode::SETUID;
    }
    if st_mode & 0o2000 != 0 {
        mode |= go_mode::SETGID;
    }
    if st_mode & 0o1000 != 0 {
        mode |= go_mode::STICKY;
    }
    mode
}

/// A time as Go's `time.Time` marshals it (RFC 3339, trailing zeros of the fraction cut).
fn go_time(secs: i64, nanos: i64) -> String {
    let nanos = u32::try_from(nanos).unwrap_or(0);
    let t = chrono::DateTime::from_timestamp(secs, nanos).unwrap_or_default();
    let mut s = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

// ---- tar writing ----

/// Writes the tar of `cp` for a located path (docker's `TarResourceRebase`).
fn write_resource(root: BorrowedFd<'_>, loc: &Located, out: impl Write) -> io::Result<()> {
    let mut tar = TarWriter::new(out, false);
    let rebase = go_base(&loc.shown);
    if FileType::from_raw_mode(loc.stat.st_mode) == FileType::Directory {
        let dir = open_in(root, &loc.abs, OFlags::RDONLY | OFlags::DIRECTORY)?;
        let st = rustix::fs::fstat(&dir)?;
        // The root directory is rebased to nothing: its entries become `/bin`, …
        let prefix: &[u8] = if rebase == "/" {
            b""
        } else {
            rebase.as_bytes()
        };
        let mut name = prefix.to_vec();
        name.push(b'/');
        let mut h = header(&st, tar::EntryType::Directory);
        let xattrs = security_xattrs(dir.as_fd());
        tar.append(&mut h, &name, None, &xattrs, io::empty())?;
        tar.children(&dir, Some(prefix))?;
    } else {
        tar.add(loc.parent.as_fd(), loc.base.as_bytes(), rebase.as_bytes())?;
    }
    tar.finish()
}

/// Builds tars from directory descriptors: Go's `archive.TarWithOptions` (PAX where
/// needed, hardlinks recorded once, mtimes in whole seconds, `security.capability` kept).
struct TarWriter<W: Write> {
    tar: tar::Builder<W>,
    /// First name of each multiply-linked inode.
    seen: HashMap<(u64, u64), Vec<u8>>,
    /// Overlay upper dir mode: 0:0 character devices become `.wh.NAME` and opaque
    /// directories get a `.wh..wh..opq` entry.
    overlay: bool,
    entries: u64,
}

impl<W: Write> TarWriter<W> {
    fn new(out: W, overlay: bool) -> Self {
        TarWriter {
            tar: tar::Builder::new(out),
            seen: HashMap::new(),
            overlay,
            entries: 0,
        }
    }

    fn finish(self) -> io::Result<()> {
        self.tar.into_inner()?.flush()
    }

    /// Appends the entries of `dir` (sorted by name), each as `prefix/NAME`, or `NAME`
    /// with no prefix; directories recursively.
    fn children(&mut self, dir: &OwnedFd, prefix: Option<&[u8]>) -> io::Result<()> {
        for name in sorted_names(dir)? {
            let tar_name = match prefix {
                Some(p) => [p, b"/", &name].concat(),
                None => name.clone(),
            };
            self.add(dir.as_fd(), &name, &tar_name)?;
        }
        Ok(())
    }

    /// Appends `dir/name` as `tar_name` (without a trailing slash), not following it.
    fn add(&mut self, dir: BorrowedFd<'_>, name: &[u8], tar_name: &[u8]) -> io::Result<()> {
        let st = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            // Gone since the listing.
            Err(Errno::NOENT) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let file_type = FileType::from_raw_mode(st.st_mode);
        if self.overlay && self.is_mount_point(dir, name, tar_name, &st) {
            return Ok(());
        }
        if file_type != FileType::Directory && st.st_nlink > 1 {
            let key = (st.st_dev as u64, st.st_ino as u64);
            if let Some(first) = self.seen.get(&key).cloned() {
                let mut h = header(&st, tar::EntryType::Link);
                return self.append(&mut h, tar_name, Some(&first), &[], io::empty());
            }
            self.seen.insert(key, tar_name.to_vec());
        }
        match file_type {
            FileType::Directory => {
                let sub = rustix::fs::openat(
                    dir,
                    name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                let st = rustix::fs::fstat(&sub)?;
                let mut h = header(&st, tar::EntryType::Directory);
                let xattrs = security_xattrs(sub.as_fd());
                let dir_name = [tar_name, b"/"].concat();
                self.append(&mut h, &dir_name, None, &xattrs, io::empty())?;
                if self.overlay && is_opaque(sub.as_fd()) {
                    let mut h = whiteout_header(&st);
                    let name = [tar_name, b"/.wh..wh..opq"].concat();
                    self.append(&mut h, &name, None, &[], io::empty())?;
                }
                self.children(&sub, Some(tar_name))
            }
            FileType::RegularFile => {
                let file = rustix::fs::openat(
                    dir,
                    name,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                let st = rustix::fs::fstat(&file)?;
                let xattrs = security_xattrs(file.as_fd());
                let size = st.st_size as u64;
                let mut h = header(&st, tar::EntryType::Regular);
                h.set_size(size);
                // A file that shrinks meanwhile is padded, one that grows cut: the header
                // already gave its size.
                let data = std::fs::File::from(file)
                    .take(size)
                    .chain(io::repeat(0))
                    .take(size);
                self.append(&mut h, tar_name, None, &xattrs, data)
            }
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(dir, name, Vec::new())?;
                let mut h = header(&st, tar::EntryType::Symlink);
                self.append(&mut h, tar_name, Some(target.as_bytes()), &[], io::empty())
            }
            FileType::CharacterDevice if self.overlay && st.st_rdev == 0 => {
                let (parent, base) = match tar_name.iter().rposition(|&b| b == b'/') {
                    Some(i) => (&tar_name[..=i], &tar_name[i + 1..]),
                    None => (&b""[..], tar_name),
                };
                let name = [parent, b".wh.", base].concat();
                let mut h = whiteout_header(&st);
                self.append(&mut h, &name, None, &[], io::empty())
            }
            FileType::CharacterDevice | FileType::BlockDevice => {
                let kind = if file_type == FileType::CharacterDevice {
                    tar::EntryType::Char
                } else {
                    tar::EntryType::Block
                };
                let mut h = header(&st, kind);
                h.set_device_major(rustix::fs::major(st.st_rdev))?;
                h.set_device_minor(rustix::fs::minor(st.st_rdev))?;
                self.append(&mut h, tar_name, None, &[], io::empty())
            }
            FileType::Fifo => {
                let mut h = header(&st, tar::EntryType::Fifo);
                self.append(&mut h, tar_name, None, &[], io::empty())
            }
            // Sockets have no tar form; docker skips them too.
            _ => Ok(()),
        }
    }

    /// A mount point the runtime made in an upper dir (see [`RUNTIME_MOUNT_POINTS`]).
    fn is_mount_point(&self, dir: BorrowedFd<'_>, name: &[u8], tar_name: &[u8], st: &Stat) -> bool {
        let path = format!("/{}", String::from_utf8_lossy(tar_name));
        if !RUNTIME_MOUNT_POINTS.contains(&path.as_str()) {
            return false;
        }
        let sub = (FileType::from_raw_mode(st.st_mode) == FileType::Directory)
            .then(|| {
                rustix::fs::openat(
                    dir,
                    name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .ok()
            })
            .flatten();
        is_runtime_mount_point(&path, st, sub.as_ref())
    }

    /// Appends one entry with exactly these name bytes (GNU long names past 100 bytes).
    fn append(
        &mut self,
        h: &mut tar::Header,
        name: &[u8],
        link: Option<&[u8]>,
        xattrs: &[(String, Vec<u8>)],
        data: impl Read,
    ) -> io::Result<()> {
        if !xattrs.is_empty() {
            self.tar
                .append_pax_extensions(xattrs.iter().map(|(k, v)| (k.as_str(), v.as_slice())))?;
        }
        if let Some(link) = link {
            if link.len() > 100 {
                self.long_name(b'K', link)?;
            }
            let field = &mut h.as_old_mut().linkname;
            field.fill(0);
            let n = link.len().min(field.len());
            field[..n].copy_from_slice(&link[..n]);
        }
        if name.len() > 100 {
            self.long_name(b'L', name)?;
        }
        let field = &mut h.as_old_mut().name;
        field.fill(0);
        let n = name.len().min(field.len());
        field[..n].copy_from_slice(&name[..n]);
        h.set_cksum();
        self.entries += 1;
        self.tar.append(h, data)
    }

    fn long_name(&mut self, kind: u8, value: &[u8]) -> io::Result<()> {
        let mut h = tar::Header::new_gnu();
        let field = &mut h.as_old_mut().name;
        field[..13].copy_from_slice(b"././@LongLink");
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(value.len() as u64 + 1);
        h.set_entry_type(tar::EntryType::new(kind));
        h.set_cksum();
        self.tar.append(&h, value.chain(&[0u8][..]))
    }
}

fn header(st: &Stat, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode((st.st_mode) & 0o7777);
    h.set_uid(u64::from(st.st_uid));
    h.set_gid(u64::from(st.st_gid));
    h.set_mtime(u64::try_from(st.st_mtime).unwrap_or(0));
    h.set_size(0);
    h
}

/// `.wh.NAME` and `.wh..wh..opq`: empty regular files with the permissions and owner of
/// what they stand for, as docker's overlay whiteout converter writes them.
fn whiteout_header(st: &Stat) -> tar::Header {
    let mut h = header(st, tar::EntryType::Regular);
    h.set_mode((st.st_mode) & 0o777);
    h
}

/// `security.capability`, the one xattr docker's tars carry.
fn security_xattrs(fd: BorrowedFd<'_>) -> Vec<(String, Vec<u8>)> {
    let mut buf = vec![0u8; 256];
    match rustix::fs::fgetxattr(fd, "security.capability", &mut buf) {
        Ok(n) => {
            buf.truncate(n);
            vec![("SCHILY.xattr.security.capability".to_string(), buf)]
        }
        Err(_) => Vec::new(),
    }
}

fn is_opaque(fd: BorrowedFd<'_>) -> bool {
    let mut buf = [0u8; 8];
    matches!(rustix::fs::fgetxattr(fd, "trusted.overlay.opaque", &mut buf), Ok(1) if buf[0] == b'y')
}

fn sorted_names(dir: &OwnedFd) -> io::Result<Vec<Vec<u8>>> {
    let mut names = Vec::new();
    for entry in rustix::fs::Dir::read_from(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(name.to_vec());
        }
    }
    names.sort();
    Ok(names)
}

/// Sends written bytes down a channel (an HTTP body).
struct ChannelWriter(mpsc::Sender<io::Result<Bytes>>);

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "client went away"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

// ---- extraction ----

fn extract_blocking(
    view: &CpView,
    path: &str,
    name: &str,
    record: &ContainerRecord,
    opts: ExtractOptions,
    mut body: impl Read,
    spool: &Path,
) -> Result<()> {
    let placed = view.place(&clean_abs(path), "");
    let (root, abs) = (placed.tree, placed.inner.as_str());
    let dest = match open_destination(root, abs, path, name, record, placed.mount) {
        Ok(dest) => dest,
        Err(e) => {
            // Read (some of) the upload before answering, as Go's server does, so a
            // client still sending it sees the answer rather than a broken pipe.
            let _ = io::copy(&mut (&mut body).take(DRAIN_ON_ERROR), &mut io::sink());
            return Err(e);
        }
    };

    // Spooled, so the archive can be checked before anything is written.
    let spool_err = |e: io::Error| EngineError::internal(format!("spool archive: {e}"));
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(spool)
        .map_err(spool_err)?;
    io::copy(&mut BufReader::new(body), &mut file)
        .map_err(|e| EngineError::invalid(format!("reading archive: {e}")))?;
    let open_tar = || -> Result<Box<dyn Read>> {
        let f = std::fs::File::open(spool).map_err(spool_err)?;
        layer::decompress_auto(BufReader::with_capacity(256 * 1024, f))
            .map_err(|e| EngineError::invalid(format!("reading archive: {e}")))
    };
    let entries = check_archive(open_tar()?, dest.as_fd(), abs, opts)?;

    let dest_path = PathBuf::from(format!("/proc/self/fd/{}", dest.as_raw_fd()));
    layer::apply_layer(open_tar()?, &dest_path).map_err(|e| match e {
        layer::LayerError::UnsafePath { .. }
        | layer::LayerError::Tar(_)
        | layer::LayerError::Header { .. }
        | layer::LayerError::UnsupportedEntry { .. } => EngineError::invalid(e.to_string()),
        layer::LayerError::Io { .. } => EngineError::internal(e.to_string()),
    })?;

    if opts.copy_uid_gid {
        let passwd = rootfs_read(view.root.as_fd(), "/etc/passwd");
        let group = rootfs_read(view.root.as_fd(), "/etc/group");
        let user = berth_runtime::resolve_user(
            record.config.user.as_deref().unwrap_or(""),
            &[],
            passwd.as_deref(),
            group.as_deref(),
        )
        .map_err(|e| EngineError::invalid(e.to_string()))?;
        for entry in &entries {
            let (parent, base) = match entry.rfind('/') {
                Some(i) => (&entry[..i], &entry[i + 1..]),
                None => ("", entry.as_str()),
            };
            let Ok(dir) = open_in(dest.as_fd(), parent, OFlags::PATH | OFlags::DIRECTORY) else {
                continue;
            };
            let _ = rustix::fs::chownat(
                &dir,
                base,
                Some(Uid::from_raw(user.uid)),
                Some(Gid::from_raw(user.gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            );
        }
    }
    Ok(())
}

/// How much of a refused upload is read before answering.
const DRAIN_ON_ERROR: u64 = 4 << 20;

/// The extraction point: an existing directory (symlinks followed inside its tree) of a
/// writable volume or bind, or of a container whose root filesystem is writable.
/// dockerd's errors.
fn open_destination(
    root: BorrowedFd<'_>,
    abs: &str,
    path: &str,
    name: &str,
    record: &ContainerRecord,
    mount: Option<&CpMount>,
) -> Result<OwnedFd> {
    let target = open_in(root, abs, OFlags::PATH).map_err(|e| file_error(e.into(), path, name))?;
    let st = rustix::fs::fstat(&target).map_err(|e| file_error(e.into(), path, name))?;
    if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
        return Err(EngineError::invalid("extraction point is not a directory"));
    }
    match mount {
        Some(m) if m.read_only => {
            return Err(EngineError::invalid("mounted volume is marked read-only"));
        }
        Some(_) => {}
        None if record.host_config.readonly_rootfs.unwrap_or(false) => {
            return Err(EngineError::invalid("container rootfs is marked read-only"));
        }
        None => {}
    }
    open_in(root, abs, OFlags::RDONLY | OFlags::DIRECTORY)
        .map_err(|e| file_error(e.into(), path, name))
}

fn rootfs_read(root: BorrowedFd<'_>, path: &str) -> Option<String> {
    let fd = open_in(root, path, OFlags::RDONLY).ok()?;
    let mut text = String::new();
    std::fs::File::from(fd)
        .take(16 << 20)
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

/// Checks every entry before extraction: no whiteout names and, when asked, no directory
/// replaced by a non-directory or the reverse (docker's messages). Returns the cleaned
/// entry paths (relative to the extraction point).
fn check_archive(
    tar_stream: impl Read,
    dest: BorrowedFd<'_>,
    dest_abs: &str,
    opts: ExtractOptions,
) -> Result<Vec<String>> {
    let bad = |e: io::Error| EngineError::invalid(format!("reading archive: {e}"));
    let mut archive = tar::Archive::new(tar_stream);
    let mut out = Vec::new();
    for entry in archive.entries().map_err(bad)? {
        let entry = entry.map_err(bad)?;
        let raw = entry.path_bytes();
        let raw = String::from_utf8_lossy(&raw).into_owned();
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() {
            continue;
        }
        let clean = clean_abs(&raw);
        let rel = clean.trim_start_matches('/').to_string();
        if rel.is_empty() {
            continue;
        }
        let base = go_base(&clean);
        if base.starts_with(".wh.") {
            return Err(EngineError::invalid(format!(
                "cannot extract {raw:?}: names starting with .wh. are reserved for layer whiteouts"
            )));
        }
        if opts.no_overwrite_dir_non_dir {
            let is_dir_entry = kind == tar::EntryType::Directory
                || (kind == tar::EntryType::Regular && raw.ends_with('/'));
            let (parent, _) = go_split(&rel);
            let existing = open_in(dest, parent, OFlags::PATH | OFlags::DIRECTORY)
                .and_then(|dir| rustix::fs::statat(&dir, base.as_str(), AtFlags::SYMLINK_NOFOLLOW));
            if let Ok(st) = existing {
                let is_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
                let full = format!("{}/{rel}", dest_abs.trim_end_matches('/'));
                if is_dir && !is_dir_entry {
                    return Err(EngineError::invalid(format!(
                        "cannot overwrite directory {full:?} with non-directory {dest_abs:?}"
                    )));
                }
                if !is_dir && is_dir_entry {
                    return Err(EngineError::invalid(format!(
                        "cannot overwrite non-directory {full:?} with directory {dest_abs:?}"
                    )));
                }
            }
        }
        out.push(rel);
    }
    Ok(out)
}

// ---- changes ----

/// `docker diff` of an overlay upper dir against its lower layers (listed top first), with
/// the rules of docker's `archive.OverlayChanges`: walked in lexical order, a 0:0 character
/// device or an opaque directory hiding one below is a deletion, what exists below is a
/// modification (directories only when their size, mode or mtime differ) and anything
/// else an addition; the parent of an addition or deletion is listed as modified.
pub fn compute_changes(upper: &Path, lower_top_first: &[PathBuf]) -> io::Result<Vec<Change>> {
    let upper = match open_dir_path(upper) {
        Ok(fd) => fd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let lowers: Vec<OwnedFd> = lower_top_first
        .iter()
        .filter_map(|p| open_dir_path(p).ok())
        .collect();
    let mut walk = ChangeWalk {
        lowers,
        out: Vec::new(),
        changed_dirs: HashSet::new(),
    };
    walk.dir(&upper, &mut Vec::new(), false)?;
    Ok(walk.out)
}

struct ChangeWalk {
    lowers: Vec<OwnedFd>,
    out: Vec<Change>,
    changed_dirs: HashSet<String>,
}

impl ChangeWalk {
    fn dir(&mut self, dir: &OwnedFd, rel: &mut Vec<Vec<u8>>, hidden: bool) -> io::Result<()> {
        for name in sorted_names(dir)? {
            let st = match rustix::fs::statat(dir, name.as_slice(), AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => st,
                Err(Errno::NOENT) => continue,
                Err(e) => return Err(e.into()),
            };
            rel.push(name.clone());
            let path = format!(
                "/{}",
                rel.iter()
                    .map(|c| String::from_utf8_lossy(c).into_owned())
                    .collect::<Vec<_>>()
                    .join("/")
            );
            let file_type = FileType::from_raw_mode(st.st_mode);
            let sub = if file_type == FileType::Directory {
                Some(rustix::fs::openat(
                    dir,
                    name.as_slice(),
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?)
            } else {
                None
            };
            if is_runtime_mount_point(&path, &st, sub.as_ref()) {
                rel.pop();
                continue;
            }
            let opaque = sub.as_ref().is_some_and(|s| is_opaque(s.as_fd()));
            let below = if hidden {
                None
            } else {
                lower_lookup(&self.lowers, rel)
            };
            let kind = if is_whiteout(&st) || (opaque && below.is_some()) {
                Some(CHANGE_DELETE)
            } else {
                match &below {
                    None => Some(CHANGE_ADD),
                    Some(b) if sub.is_some() && same_dir(&path, &st, b) => None,
                    Some(_) => Some(CHANGE_MODIFY),
                }
            };
            if let Some(kind) = kind {
                if sub.is_some() {
                    self.changed_dirs.insert(path.clone());
                }
                if kind != CHANGE_MODIFY {
                    let parent = match path.rfind('/') {
                        Some(0) | None => "/".to_string(),
                        Some(i) => path[..i].to_string(),
                    };
                    if parent != "/" && self.changed_dirs.insert(parent.clone()) {
                        self.out.push(Change {
                            path: parent,
                            kind: CHANGE_MODIFY,
                        });
                    }
                }
                self.out.push(Change { path, kind });
            }
            if let Some(sub) = sub {
                self.dir(&sub, rel, hidden || opaque || below.is_none())?;
            }
            rel.pop();
        }
        Ok(())
    }
}

/// Mount points the runtime creates in a root filesystem that lacks them. dockerd keeps
/// them in an init layer below the container's, so they never show in `diff` or `commit`.
const RUNTIME_MOUNT_POINTS: &[&str] = &[
    "/dev",
    "/dev/pts",
    "/dev/shm",
    "/dev/mqueue",
    "/dev/console",
    "/proc",
    "/sys",
    "/.dockerenv",
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/hostname",
    "/etc/mtab",
];

/// Whether the upper dir's entry at `path` is only such a mount point: an empty file or
/// directory (`dir` is the directory, opened) at one of those paths.
fn is_runtime_mount_point(path: &str, st: &Stat, dir: Option<&OwnedFd>) -> bool {
    if !RUNTIME_MOUNT_POINTS.contains(&path) {
        return false;
    }
    match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => st.st_size == 0,
        FileType::Directory => dir.is_some_and(|d| sorted_names(d).is_ok_and(|n| n.is_empty())),
        FileType::Symlink => path == "/etc/mtab",
        _ => false,
    }
}

fn is_whiteout(st: &Stat) -> bool {
    FileType::from_raw_mode(st.st_mode) == FileType::CharacterDevice && st.st_rdev == 0
}

/// docker: a directory whose size, mode and mtime are unchanged was only copied up. The
/// parents of the runtime's mount points change their mtime when those are created, which
/// dockerd's init layer hides, so only their mode counts.
fn same_dir(path: &str, upper: &Stat, lower: &Stat) -> bool {
    let mount_parent = matches!(path, "/etc" | "/dev");
    let same_time = mount_parent
        || upper.st_mtime == lower.st_mtime
            && (upper.st_mtime_nsec == lower.st_mtime_nsec
                || upper.st_mtime_nsec == 0
                || lower.st_mtime_nsec == 0);
    let same_size = mount_parent || upper.st_size == lower.st_size;
    FileType::from_raw_mode(lower.st_mode) == FileType::Directory
        && same_size
        && go_file_mode(upper.st_mode) == go_file_mode(lower.st_mode)
        && same_time
}

/// What the lower layers (top first) show at `rel`, with overlay's rules: a whiteout or a
/// non-directory on the way hides everything below, and so does an opaque directory.
fn lower_lookup(lowers: &[OwnedFd], rel: &[Vec<u8>]) -> Option<Stat> {
    'layers: for layer in lowers {
        let mut dir = layer.try_clone().ok()?;
        let mut opaque_above = false;
        for (i, component) in rel.iter().enumerate() {
            let last = i + 1 == rel.len();
            let st = match rustix::fs::statat(&dir, component.as_slice(), AtFlags::SYMLINK_NOFOLLOW)
            {
                Ok(st) => st,
                Err(_) if opaque_above => return None,
                Err(_) => continue 'layers,
            };
            if is_whiteout(&st) {
                return None;
            }
            if last {
                return Some(st);
            }
            if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
                return None;
            }
            dir = rustix::fs::openat(
                &dir,
                component.as_slice(),
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .ok()?;
            opaque_above |= is_opaque(dir.as_fd());
        }
    }
    None
}

// ---- commit ----

/// The committed image's config: the body's config (or the container's) with the
/// `changes` applied, completed from the container's config as dockerd's `merge` does.
fn commit_config(
    record: &ContainerRecord,
    body: Option<&Value>,
    changes: &[String],
) -> Result<ImageContainerConfig> {
    let container: ImageContainerConfig = serde_json::to_value(&record.config)
        .and_then(serde_json::from_value)
        .map_err(|e| EngineError::internal(format!("container config: {e}")))?;
    let mut user = match body {
        Some(v) if !v.is_null() => serde_json::from_value(v.clone())
            .map_err(|e| EngineError::invalid(format!("invalid config: {e}")))?,
        _ => container.clone(),
    };
    for line in changes.iter().flat_map(|c| c.lines()) {
        if !line.trim().is_empty() {
            apply_change(&mut user, line)?;
        }
    }
    merge_commit_config(&mut user, &container);
    Ok(user)
}

/// dockerd's `merge(userConf, imageConf)` of a commit.
fn merge_commit_config(user: &mut ImageContainerConfig, base: &ImageContainerConfig) {
    if user.user.as_deref().unwrap_or("").is_empty() {
        user.user = base.user.clone();
    }
    match (&mut user.exposed_ports, &base.exposed_ports) {
        (Some(ports), Some(more)) if !ports.is_empty() => {
            for (k, v) in more {
                ports.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        (ports, more) => {
            if ports.as_ref().is_none_or(|p| p.is_empty()) {
                *ports = more.clone();
            }
        }
    }
    if user.env.as_ref().is_none_or(|e| e.is_empty()) {
        user.env = base.env.clone();
    } else if let (Some(env), Some(more)) = (&mut user.env, &base.env) {
        let key = |e: &str| e.split_once('=').map_or(e, |(k, _)| k).to_string();
        for e in more {
            if !env.iter().any(|u| key(u) == key(e)) {
                env.push(e.clone());
            }
        }
    }
    let labels = user.labels.get_or_insert_with(Default::default);
    for (k, v) in base.labels.iter().flatten() {
        labels.entry(k.clone()).or_insert_with(|| v.clone());
    }
    if user.entrypoint.as_ref().is_none_or(|e| e.is_empty()) {
        if user.cmd.as_ref().is_none_or(|c| c.is_empty()) {
            user.cmd = base.cmd.clone();
        }
        if user.entrypoint.is_none() {
            user.entrypoint = base.entrypoint.clone();
        }
    }
    if let Some(base_hc) = &base.healthcheck {
        match &mut user.healthcheck {
            None => user.healthcheck = Some(base_hc.clone()),
            Some(Value::Object(hc)) => {
                for key in [
                    "Test",
                    "Interval",
                    "Timeout",
                    "StartPeriod",
                    "StartInterval",
                    "Retries",
                ] {
                    let unset = match hc.get(key) {
                        None | Some(Value::Null) => true,
                        Some(Value::Array(a)) => a.is_empty(),
                        Some(Value::Number(n)) => n.as_i64() == Some(0),
                        _ => false,
                    };
                    if unset && let Some(v) = base_hc.get(key) {
                        hc.insert(key.to_string(), v.clone());
                    }
                }
            }
            Some(_) => {}
        }
    }
    if user.working_dir.as_deref().unwrap_or("").is_empty() {
        user.working_dir = base.working_dir.clone();
    }
    if user.volumes.as_ref().is_none_or(|v| v.is_empty()) {
        user.volumes = base.volumes.clone();
    } else if let (Some(vols), Some(more)) = (&mut user.volumes, &base.volumes) {
        for (k, v) in more {
            vols.insert(k.clone(), v.clone());
        }
    }
    if user.stop_signal.as_deref().unwrap_or("").is_empty() {
        user.stop_signal = base.stop_signal.clone();
    }
}

/// Writes the upper dir as a layer (unless it holds nothing), then the image config, and
/// registers the image with the container's image as parent.
fn commit_blocking(
    store: &ImageStore,
    snapshot: &Snapshot,
    record: &ContainerRecord,
    config: ImageContainerConfig,
    author: &str,
    comment: &str,
) -> Result<Digest> {
    let (parent_id, parent) = record.image_in(store)?;
    let base = store.config(&parent_id)?;
    let io_err = |e: io::Error| EngineError::internal(format!("commit: {e}"));

    let mut ingest = store.content().ingest_unknown()?;
    let entries = {
        let mut tar = TarWriter::new(io::BufWriter::new(&mut ingest), true);
        if let Ok(upper) = open_dir_path(&snapshot.upper) {
            tar.children(&upper, None).map_err(io_err)?;
        }
        let entries = tar.entries;
        tar.finish().map_err(io_err)?;
        entries
    };
    let (diff_id, diff_size) = ingest.commit()?;
    let mut diff_ids = base.rootfs.diff_ids.clone();
    let empty_layer = entries == 0;
    if !empty_layer {
        diff_ids.push(diff_id);
        let chains = chain_ids(&diff_ids);
        let new = NewLayer {
            chain_id: *chains.last().expect("one layer at least"),
            parent: parent.chain_ids.last().copied(),
            diff_id,
            blob: diff_id,
            blob_media_type: MEDIA_OCI_LAYER.to_string(),
            blob_size: diff_size,
        };
        store.create_layer(new, |dir| -> Result<LayerFill> {
            let blob = store.content().open_blob(&diff_id)?;
            let stats = layer::apply_layer(BufReader::with_capacity(256 * 1024, blob), dir)
                .map_err(|e| EngineError::internal(format!("commit layer: {e}")))?;
            Ok(LayerFill {
                size: stats.bytes,
                diff_size,
            })
        })?;
    }

    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let mut history = base.history.clone();
    history.push(History {
        created: Some(now.clone()),
        created_by: Some(record.config.cmd.clone().unwrap_or_default().join(" ")),
        author: non_empty(author),
        comment: non_empty(comment),
        empty_layer,
    });
    let cfg = ImageConfig {
        architecture: base.architecture.clone(),
        os: base.os.clone(),
        variant: base.variant.clone(),
        os_version: base.os_version.clone(),
        created: Some(now),
        author: non_empty(author),
        config: Some(config),
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids,
        },
        history,
        extra: Default::default(),
    };
    let bytes = serde_json::to_vec(&cfg).expect("image config serialises");
    let id = store.content().write_blob(None, &bytes)?;
    store.add_image(&id, None, Some(parent_id))?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    fn mknod_whiteout(path: &Path) -> bool {
        rustix::fs::mknodat(
            rustix::fs::CWD,
            path,
            FileType::CharacterDevice,
            Mode::from_raw_mode(0o600),
            0,
        )
        .is_ok()
    }

    fn set_opaque(path: &Path) -> bool {
        rustix::fs::setxattr(
            path,
            "trusted.overlay.opaque",
            b"y",
            rustix::fs::XattrFlags::empty(),
        )
        .is_ok()
    }

    #[test]
    fn go_modes_match_os_filemode() {
        assert_eq!(go_file_mode(0o100644), 0o644);
        assert_eq!(go_file_mode(0o040755), go_mode::DIR | 0o755);
        assert_eq!(go_file_mode(0o120777), go_mode::SYMLINK | 0o777);
        assert_eq!(
            go_file_mode(0o020620),
            go_mode::DEVICE | go_mode::CHAR_DEVICE | 0o620
        );
        assert_eq!(go_file_mode(0o060660), go_mode::DEVICE | 0o660);
        assert_eq!(go_file_mode(0o010644), go_mode::NAMED_PIPE | 0o644);
        assert_eq!(go_file_mode(0o140755), go_mode::SOCKET | 0o755);
        assert_eq!(go_file_mode(0o104755), go_mode::SETUID | 0o755);
        assert_eq!(go_file_mode(0o102755), go_mode::SETGID | 0o755);
        assert_eq!(
            go_file_mode(0o041777),
            go_mode::DIR | go_mode::STICKY | 0o777
        );
        // Docker's own numbers: a 0755 directory is 2147484141.
        assert_eq!(go_file_mode(0o040755), 2_147_484_141);
    }

    #[test]
    fn times_and_paths_follow_go() {
        assert_eq!(go_time(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(
            go_time(1_700_000_000, 500_000_000),
            "2023-11-14T22:13:20.5Z"
        );
        assert_eq!(go_time(1, 123_456_789), "1970-01-01T00:00:01.123456789Z");
        assert_eq!(clean_abs("tmp/../etc//passwd"), "/etc/passwd");
        assert_eq!(clean_abs("../.."), "/");
        assert_eq!(preserve_trailing(clean_abs("/tmp/."), "/tmp/."), "/tmp/.");
        assert_eq!(preserve_trailing(clean_abs("/tmp/"), "/tmp/"), "/tmp/");
        assert_eq!(preserve_trailing(clean_abs("/"), "/"), "/");
        assert_eq!(go_base("/tmp/."), ".");
        assert_eq!(go_base("/tmp/x/"), "x");
        assert_eq!(go_base("/"), "/");
        assert_eq!(go_split("/tmp/x"), ("/tmp/", "x"));
    }

    #[test]
    fn stat_resolves_inside_the_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/passwd"), "root\n").unwrap();
        std::fs::set_permissions(
            root.join("etc/passwd"),
            std::fs::Permissions::from_mode(0o640),
        )
        .unwrap();
        symlink("../../../etc", root.join("link")).unwrap();
        symlink("/nowhere/x", root.join("dangling")).unwrap();
        let fd = open_dir_path(root).unwrap();

        let loc = locate(fd.as_fd(), "/etc/passwd").unwrap();
        let st = path_stat(fd.as_fd(), &loc);
        assert_eq!((st.name.as_str(), st.size, st.mode), ("passwd", 5, 0o640));

        // The parent is followed inside the root, the final link is not.
        let loc = locate(fd.as_fd(), "/link/passwd").unwrap();
        assert_eq!(path_stat(fd.as_fd(), &loc).size, 5);
        let loc = locate(fd.as_fd(), "link").unwrap();
        let st = path_stat(fd.as_fd(), &loc);
        assert_eq!(st.mode & go_mode::SYMLINK, go_mode::SYMLINK);
        assert_eq!(st.link_target, "/etc");
        let st = path_stat(fd.as_fd(), &locate(fd.as_fd(), "/dangling").unwrap());
        assert_eq!(st.link_target, "/nowhere/x");
        // A trailing slash follows it.
        let st = path_stat(fd.as_fd(), &locate(fd.as_fd(), "/link/").unwrap());
        assert_eq!(st.mode & go_mode::DIR, go_mode::DIR);
        assert_eq!(st.name, "link");

        let err = locate(fd.as_fd(), "/nope/x").err().unwrap();
        assert_eq!(
            file_error(err, "/nope/x", "web").message,
            "Could not find the file /nope/x in container web"
        );
        let header = path_stat(fd.as_fd(), &locate(fd.as_fd(), "/etc").unwrap()).header_value();
        let json: Value = serde_json::from_slice(
            &base64::engine::general_purpose::STANDARD
                .decode(header)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(json["name"], "etc");
        assert_eq!(
            json["mode"].as_u64().unwrap() as u32 & go_mode::DIR,
            go_mode::DIR
        );
        assert!(json["linkTarget"].is_string());
    }

    fn tar_names(data: &[u8]) -> Vec<(String, tar::EntryType)> {
        tar::Archive::new(data)
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    e.header().entry_type(),
                )
            })
            .collect()
    }

    #[test]
    fn archives_are_rebased_like_docker() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::create_dir_all(root.join("etc/ssl")).unwrap();
        std::fs::write(root.join("etc/passwd"), "root\n").unwrap();
        std::fs::hard_link(root.join("etc/passwd"), root.join("etc/passwd-")).unwrap();
        symlink("etc", root.join("link")).unwrap();
        let long = "x".repeat(150);
        std::fs::write(root.join("etc").join(&long), "").unwrap();
        let fd = open_dir_path(root).unwrap();
        let tar_of = |path: &str| {
            let mut out = Vec::new();
            let loc = locate(fd.as_fd(), path).unwrap();
            write_resource(fd.as_fd(), &loc, &mut out).unwrap();
            tar_names(&out)
        };
        let names = tar_of("/etc");
        let names: Vec<&str> = names.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "etc/",
                "etc/passwd",
                "etc/passwd-",
                "etc/ssl/",
                format!("etc/{long}").as_str()
            ]
        );
        let entries = tar_of("/etc/");
        assert_eq!(entries[2].1, tar::EntryType::Link);
        assert_eq!(tar_of("/etc/.")[0].0, "./");
        assert_eq!(tar_of("/etc/.")[1].0, "./passwd");
        assert_eq!(
            tar_of("/link"),
            [("link".to_string(), tar::EntryType::Symlink)]
        );
        assert_eq!(tar_of("/link/")[0].0, "link/");
        assert_eq!(tar_of("/etc/passwd")[0].0, "passwd");
    }

    #[test]
    fn overlay_whiteouts_become_oci_whiteouts() {
        let tmp = tempfile::tempdir().unwrap();
        let upper = tmp.path();
        std::fs::create_dir_all(upper.join("etc")).unwrap();
        std::fs::create_dir_all(upper.join("opq")).unwrap();
        std::fs::write(upper.join("opq/new"), "n").unwrap();
        if !mknod_whiteout(&upper.join("etc/gone")) || !set_opaque(&upper.join("opq")) {
            eprintln!("skipped: needs CAP_MKNOD and trusted xattrs");
            return;
        }
        let fd = open_dir_path(upper).unwrap();
        let mut out = Vec::new();
        let mut tar = TarWriter::new(&mut out, true);
        tar.children(&fd, None).unwrap();
        tar.finish().unwrap();
        let names = tar_names(&out);
        assert_eq!(
            names,
            [
                ("etc/".to_string(), tar::EntryType::Directory),
                ("etc/.wh.gone".to_string(), tar::EntryType::Regular),
                ("opq/".to_string(), tar::EntryType::Directory),
                ("opq/.wh..wh..opq".to_string(), tar::EntryType::Regular),
                ("opq/new".to_string(), tar::EntryType::Regular),
            ]
        );
        // And the layer code reads them back as overlay whiteouts.
        let applied = tempfile::tempdir().unwrap();
        let stats = layer::apply_layer(&out[..], applied.path()).unwrap();
        assert_eq!(stats.whiteouts, 2);
    }

    fn change(path: &str, kind: u8) -> Change {
        Change {
            path: path.into(),
            kind,
        }
    }

    #[test]
    fn changes_against_lower_layers() {
        let tmp = tempfile::tempdir().unwrap();
        let lower = tmp.path().join("lower");
        let upper = tmp.path().join("upper");
        for d in ["etc", "usr/lib", "same", "var/old"] {
            std::fs::create_dir_all(lower.join(d)).unwrap();
        }
        std::fs::write(lower.join("etc/passwd"), "root\n").unwrap();
        std::fs::write(lower.join("etc/group"), "root\n").unwrap();
        std::fs::write(lower.join("var/old/file"), "x").unwrap();
        // The upper dir: a modified file, a new file in a new dir, a copied-up but
        // unchanged directory, and an added file below an unchanged directory.
        std::fs::create_dir_all(upper.join("etc")).unwrap();
        std::fs::write(upper.join("etc/passwd"), "root\nme\n").unwrap();
        std::fs::create_dir_all(upper.join("tmp/new")).unwrap();
        std::fs::write(upper.join("tmp/new/x"), "x").unwrap();
        std::fs::create_dir_all(upper.join("usr/lib")).unwrap();
        std::fs::write(upper.join("usr/lib/added"), "a").unwrap();
        for d in ["etc", "usr", "usr/lib"] {
            let meta = std::fs::metadata(lower.join(d)).unwrap();
            let mtime = std::fs::FileTimes::new().set_modified(meta.modified().unwrap());
            std::fs::File::open(upper.join(d))
                .unwrap()
                .set_times(mtime)
                .unwrap();
        }
        let changes = compute_changes(&upper, std::slice::from_ref(&lower)).unwrap();
        assert_eq!(
            changes,
            [
                change("/etc/passwd", CHANGE_MODIFY),
                change("/tmp", CHANGE_ADD),
                change("/tmp/new", CHANGE_ADD),
                change("/tmp/new/x", CHANGE_ADD),
                change("/usr/lib", CHANGE_MODIFY),
                change("/usr/lib/added", CHANGE_ADD),
            ]
        );

        // The runtime's mount points are not changes, nor is the mtime of /etc they bump.
        std::fs::create_dir_all(upper.join("proc")).unwrap();
        std::fs::write(upper.join("etc/hostname"), "").unwrap();
        let changes = compute_changes(&upper, std::slice::from_ref(&lower)).unwrap();
        assert_eq!(changes.len(), 6, "{changes:?}");
        let fd = open_dir_path(&upper).unwrap();
        let mut layer = Vec::new();
        let mut tar = TarWriter::new(&mut layer, true);
        tar.children(&fd, None).unwrap();
        tar.finish().unwrap();
        let names = tar_names(&layer);
        assert!(names.iter().any(|(n, _)| n == "etc/passwd"), "{names:?}");
        assert!(
            !names
                .iter()
                .any(|(n, _)| n == "etc/hostname" || n == "proc/"),
            "{names:?}"
        );

        // Whiteouts and opaque directories (root only: mknod and trusted xattrs).
        std::fs::create_dir_all(upper.join("var/old")).unwrap();
        if !mknod_whiteout(&upper.join("etc/group")) || !set_opaque(&upper.join("var/old")) {
            eprintln!("skipped the whiteout half: needs CAP_MKNOD and trusted xattrs");
            return;
        }
        std::fs::write(upper.join("var/old/file"), "new").unwrap();
        let changes = compute_changes(&upper, std::slice::from_ref(&lower)).unwrap();
        assert!(
            changes.contains(&change("/etc/group", CHANGE_DELETE)),
            "{changes:?}"
        );
        assert!(
            changes.contains(&change("/var/old", CHANGE_DELETE)),
            "{changes:?}"
        );
        // Below an opaque directory nothing of the lower layers shows.
        assert!(
            changes.contains(&change("/var/old/file", CHANGE_ADD)),
            "{changes:?}"
        );
        assert!(
            changes.contains(&change("/var", CHANGE_MODIFY)),
            "{changes:?}"
        );

        // A whiteout in a higher lower layer hides the file of a lower one.
        let top = tmp.path().join("top");
        std::fs::create_dir_all(top.join("usr/lib")).unwrap();
        assert!(mknod_whiteout(&top.join("etc")));
        let lowers = [top.clone(), lower.clone()];
        let changes = compute_changes(&upper, &lowers).unwrap();
        assert!(changes.contains(&change("/etc", CHANGE_ADD)), "{changes:?}");
        assert!(
            changes.contains(&change("/etc/passwd", CHANGE_ADD)),
            "{changes:?}"
        );
    }

    #[test]
    fn commit_configs_merge_like_dockerd() {
        let mut record = ContainerRecord::default();
        record.config.cmd = Some(vec!["sh".into()]);
        record.config.env = Some(vec!["PATH=/bin".into(), "A=1".into()]);
        record.config.working_dir = Some("/srv".into());
        let cfg = commit_config(&record, None, &["ENV A=2\nCMD [\"top\"]".to_string()]).unwrap();
        assert_eq!(cfg.cmd.unwrap(), ["top"]);
        assert_eq!(cfg.env.unwrap(), ["PATH=/bin", "A=2"]);
        assert_eq!(cfg.working_dir.as_deref(), Some("/srv"));
        let body = serde_json::json!({"Env": ["B=1"], "Labels": {"x": "y"}});
        let cfg = commit_config(&record, Some(&body), &[]).unwrap();
        assert_eq!(cfg.env.unwrap(), ["B=1", "PATH=/bin", "A=1"]);
        assert_eq!(cfg.cmd.unwrap(), ["sh"]);
        assert_eq!(cfg.labels.unwrap()["x"], "y");
        assert!(commit_config(&record, None, &["RUN x".to_string()]).is_err());
    }
}
