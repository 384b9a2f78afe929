//! `berth cp`: `HEAD`/`GET`/`PUT /containers/ID/archive` with docker's copy semantics (a
//! tar rebased to the destination's name; `-` for a tar on stdin or stdout).

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Result;
use base64::Engine;
use clap::Args as ClapArgs;

use super::conn::{Endpoint, daemon_error};
use super::container_path;
use crate::commands::Ctx;
use crate::errors::{Args, CliError};
use crate::format::units::human_size;

#[derive(ClapArgs, Debug)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information)
    #[arg(short = 'a', long)]
    pub archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long = "follow-link")]
    pub follow_link: bool,
    /// Suppress progress output during copy. Progress output is automatically suppressed if no terminal is attached
    #[arg(short = 'q', long)]
    pub quiet: bool,
    #[arg(value_name = "SRC_PATH")]
    pub paths: Vec<String>,
}

/// docker's `splitCpArg`: (container, path); no container for local paths.
pub fn split_cp_arg(arg: &str) -> (Option<&str>, &str) {
    if arg.starts_with('/') {
        return (None, arg);
    }
    match arg.split_once(':') {
        Some((c, p)) if !c.starts_with('.') => (Some(c), p),
        _ => (None, arg),
    }
}

/// The `X-Docker-Container-Path-Stat` header, decoded.
#[derive(Debug, Default, serde::Deserialize)]
pub struct PathStat {
    #[serde(default)]
    pub mode: u32,
    #[serde(default, rename = "linkTarget")]
    pub link_target: String,
}

const GO_MODE_DIR: u32 = 1 << 31;
const GO_MODE_SYMLINK: u32 = 1 << 27;

impl PathStat {
    pub fn is_dir(&self) -> bool {
        self.mode & GO_MODE_DIR != 0
    }
    pub fn is_symlink(&self) -> bool {
        self.mode & GO_MODE_SYMLINK != 0
    }
}

pub fn decode_stat(header: &str) -> Option<PathStat> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(header.trim())
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(header.trim()))
        .ok()?;
    serde_json::from_slice(&raw).ok()
}

async fn stat(ep: &Endpoint, container: &str, path: &str) -> Result<PathStat, CliError> {
    let q = crate::client::query(&[("path", path)]);
    let resp = crate::client::raw::send(
        &ep.host,
        http::Method::HEAD,
        &ep.path(&format!("{}/archive{q}", container_path(container))),
        &[],
        None,
    )
    .await
    .map_err(|_| crate::client::cannot_connect(&ep.host))?;
    let status = resp.status();
    let header = resp
        .headers()
        .get("X-Docker-Container-Path-Stat")
        .and_then(|h| h.to_str().ok())
        .map(str::to_string);
    if !status.is_success() {
        let msg = match status.as_u16() {
            404 => format!("Could not find the file {path} in container {container}"),
            _ => format!("{status}"),
        };
        return Err(CliError::msg(format!("Error response from daemon: {msg}")));
    }
    Ok(header.and_then(|h| decode_stat(&h)).unwrap_or_default())
}

/// `filepath.Split` then the resolved directory joined back, as docker's lstat errors show.
fn resolve_host_path(path: &str) -> String {
    let (dir, base) = match path.rfind('/') {
        Some(i) => (&path[..=i], &path[i + 1..]),
        None => ("", path),
    };
    let dir = if dir.is_empty() { "." } else { dir };
    let resolved = std::fs::canonicalize(dir)
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| dir.trim_end_matches('/').to_string());
    format!("{resolved}/{base}")
}

fn abs_local(path: &str) -> String {
    let mut abs = if path.starts_with('/') {
        path.to_string()
    } else {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
        super::parse::clean_path(&cwd.join(path).to_string_lossy())
    };
    if !path.starts_with('/') && (path.ends_with('/') || path.ends_with("/.") || path == ".") {
        if path.ends_with('.') {
            abs.push_str("/.");
        } else if !abs.ends_with('/') {
            abs.push('/');
        }
    }
    abs
}

fn split_dir_entry(path: &str) -> (String, String) {
    let trimmed = path.trim_end_matches('/');
    let cleaned = super::parse::clean_path(if trimmed.is_empty() { "/" } else { trimmed });
    match cleaned.rfind('/') {
        Some(0) => ("/".into(), cleaned[1..].to_string()),
        Some(i) => (cleaned[..i].to_string(), cleaned[i + 1..].to_string()),
        None => (".".into(), cleaned),
    }
}

/// Renames the archive's root entry `old` to `new` (docker's `RebaseArchiveEntries`).
fn rebase(tar_bytes: &[u8], old: &str, new: &str) -> std::io::Result<Vec<u8>> {
    let mut archive = tar::Archive::new(tar_bytes);
    let mut out = tar::Builder::new(Vec::new());
    for entry in archive.entries()? {
        let mut entry = entry?;
        let mut header = entry.header().clone();
        let name = entry.path()?.to_string_lossy().into_owned();
        let name = name.trim_start_matches("./").to_string();
        let renamed = if name == old || name.trim_end_matches('/') == old {
            format!("{new}{}", &name[old.len()..])
        } else if let Some(rest) = name.strip_prefix(&format!("{old}/")) {
            format!("{new}/{rest}")
        } else {
            name.clone()
        };
        let mut data = Vec::new();
        entry.read_to_end(&mut data)?;
        if header.entry_type() == tar::EntryType::Link
            && let Some(l) = entry.link_name()?
        {
            let l = l.to_string_lossy().into_owned();
            let l = match l.strip_prefix(&format!("{old}/")) {
                Some(rest) => format!("{new}/{rest}"),
                None if l == old => new.to_string(),
                None => l,
            };
            header.set_link_name(&l)?;
        }
        out.append_data(&mut header, &renamed, &data[..])?;
    }
    out.into_inner()
}

/// A tar of a local file or directory, its root entry named after its basename.
fn tar_local(path: &Path, follow: bool) -> std::io::Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(follow);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| ".".into());
    let meta = if follow {
        std::fs::metadata(path)?
    } else {
        std::fs::symlink_metadata(path)?
    };
    if meta.is_dir() {
        b.append_dir_all(&name, path)?;
    } else {
        b.append_path_with_name(path, &name)?;
    }
    b.into_inner()
}

fn size_message(n: usize, to: &str) {
    if std::io::stderr().is_terminal() {
        eprintln!("Successfully copied {} to {to}", human_size(n as f64));
    }
}

pub async fn run(a: CpArgs, ctx: &Ctx) -> Result<()> {
    ctx.args(Args::Exact(2), a.paths.len())?;
    let (src_c, src_p) = split_cp_arg(&a.paths[0]);
    let (dst_c, dst_p) = split_cp_arg(&a.paths[1]);
    if src_p.is_empty() {
        return Err(CliError::msg("source can not be empty").into());
    }
    if dst_p.is_empty() {
        return Err(CliError::msg("destination can not be empty").into());
    }
    match (src_c, dst_c) {
        (Some(c), None) => copy_from(ctx, &a, c, src_p, dst_p).await,
        (None, Some(c)) => copy_to(ctx, &a, src_p, c, dst_p).await,
        (Some(_), Some(_)) => {
            Err(CliError::msg("copying between containers is not supported").into())
        }
        (None, None) => Err(CliError::msg("must specify at least one container source").into()),
    }
}

async fn copy_from(ctx: &Ctx, a: &CpArgs, container: &str, src: &str, dst: &str) -> Result<()> {
    let dst_abs = if dst == "-" {
        dst.to_string()
    } else {
        abs_local(dst)
    };
    if dst != "-" {
        let (dir, _) = split_dir_entry(&dst_abs);
        if !Path::new(&dir).exists() {
            return Err(CliError::msg(format!(
                "invalid output path: directory {dir:?} does not exist"
            ))
            .into());
        }
    }
    let client = ctx.client().await?;
    let ep = Endpoint::of(client);
    let mut src_path = src.to_string();
    let mut rebase_name = None;
    if a.follow_link {
        let st = stat(&ep, container, src).await?;
        if st.is_symlink() {
            let target = if st.link_target.starts_with('/') {
                st.link_target.clone()
            } else {
                let (dir, _) = split_dir_entry(src);
                format!("{dir}/{}", st.link_target)
            };
            rebase_name = Some(split_dir_entry(src).1);
            src_path = target;
        }
    }
    // The stat comes with the archive (`X-Docker-Container-Path-Stat`), as docker reads it.
    let q = crate::client::query(&[("path", &src_path)]);
    let resp = crate::client::raw::send(
        &ep.host,
        http::Method::GET,
        &ep.path(&format!("{}/archive{q}", container_path(container))),
        &[],
        None,
    )
    .await
    .map_err(|_| crate::client::cannot_connect(&ep.host))?;
    let header = resp
        .headers()
        .get("X-Docker-Container-Path-Stat")
        .and_then(|h| h.to_str().ok())
        .map(str::to_string);
    let (status, body) = crate::client::raw::read_body(resp)
        .await
        .map_err(|e| CliError::msg(e.to_string()))?;
    if !status.is_success() {
        return Err(daemon_error(&body).into());
    }
    let st = match header.and_then(|h| decode_stat(&h)) {
        Some(st) => st,
        None => stat(&ep, container, &src_path).await?,
    };
    let body = body.to_vec();
    if dst == "-" {
        let mut o = std::io::stdout().lock();
        o.write_all(&body)?;
        o.flush()?;
        return Ok(());
    }
    let (_, mut src_base) = split_dir_entry(&src_path);
    let mut content = body.clone();
    if let Some(r) = &rebase_name {
        content = rebase(&content, &src_base, r)?;
        src_base = r.clone();
    }
    let dst_meta = std::fs::metadata(&dst_abs).ok();
    let (dst_dir, dst_base) = split_dir_entry(&dst_abs);
    let (extract_dir, archive) = match dst_meta {
        Some(m) if m.is_dir() => (dst_abs.clone(), content),
        Some(_) if st.is_dir() => {
            return Err(CliError::msg("cannot copy directory").into());
        }
        Some(_) => (dst_dir, rebase(&content, &src_base, &dst_base)?),
        None if st.is_dir() => (dst_dir, rebase(&content, &src_base, &dst_base)?),
        None if dst.ends_with('/') || dst.ends_with("/.") => {
            return Err(CliError::msg("no such directory").into());
        }
        None => (dst_dir, rebase(&content, &src_base, &dst_base)?),
    };
    let mut ar = tar::Archive::new(&archive[..]);
    ar.set_preserve_permissions(true);
    ar.set_preserve_mtime(true);
    ar.set_overwrite(true);
    ar.unpack(&extract_dir)
        .map_err(|e| CliError::msg(e.to_string()))?;
    if !a.quiet {
        size_message(body.len(), &dst_abs);
    }
    Ok(())
}

async fn copy_to(ctx: &Ctx, a: &CpArgs, src: &str, container: &str, dst: &str) -> Result<()> {
    let client = ctx.client().await?;
    let ep = Endpoint::of(client);
    let mut dst_path = dst.to_string();
    let mut st = stat(&ep, container, dst).await;
    if let Ok(s) = &st
        && s.is_symlink()
    {
        let target = if s.link_target.starts_with('/') {
            s.link_target.clone()
        } else {
            let (dir, _) = split_dir_entry(dst);
            format!("{dir}/{}", s.link_target)
        };
        dst_path = target;
        st = stat(&ep, container, &dst_path).await;
    }
    let (exists, is_dir) = match &st {
        Ok(s) => {
            let kind = s.mode & 0xfff0_0000;
            let ok = kind == 0 || s.is_dir();
            if !ok {
                return Err(CliError::msg(format!(
                    "destination \"{container}:{dst}\" must be a directory or a regular file"
                ))
                .into());
            }
            (true, s.is_dir())
        }
        Err(_) => (false, false),
    };
    let (target_dir, content) = if src == "-" {
        if !is_dir {
            return Err(CliError::msg(format!(
                "destination \"{container}:{dst}\" must be a directory"
            ))
            .into());
        }
        let mut data = Vec::new();
        std::io::stdin().read_to_end(&mut data)?;
        (dst_path.clone(), data)
    } else {
        let abs = abs_local(src);
        let resolved = resolve_host_path(abs.trim_end_matches("/.").trim_end_matches('/'));
        let meta = if a.follow_link {
            std::fs::metadata(&resolved)
        } else {
            std::fs::symlink_metadata(&resolved)
        };
        let meta = meta.map_err(|e| {
            CliError::msg(format!(
                "lstat {resolved}: {}",
                super::parse::io_error_text(&e)
            ))
        })?;
        let src_is_dir = meta.is_dir();
        let data = tar_local(Path::new(&resolved), a.follow_link)?;
        let (_, src_base) = split_dir_entry(&resolved);
        let (dst_dir, dst_base) = split_dir_entry(&dst_path);
        if exists && is_dir {
            if abs.ends_with("/.") && src_is_dir {
                // `dir/.`: copy the directory's contents, not the directory.
                (dst_path.clone(), rebase_contents(&data, &src_base)?)
            } else {
                (dst_path.clone(), data)
            }
        } else if exists && src_is_dir {
            return Err(CliError::msg("cannot copy directory").into());
        } else if !exists && !src_is_dir && (dst.ends_with('/') || dst.ends_with("/.")) {
            return Err(CliError::msg("no such directory").into());
        } else {
            (dst_dir, rebase(&data, &src_base, &dst_base)?)
        }
    };
    let mut q: Vec<(&str, &str)> = vec![("path", &target_dir), ("noOverwriteDirNonDir", "true")];
    if a.archive {
        q.push(("copyUIDGID", "true"));
    }
    let path = format!(
        "{}/archive{}",
        container_path(container),
        crate::client::query(&q)
    );
    let size = content.len();
    let resp = crate::client::raw::send(
        &ep.host,
        http::Method::PUT,
        &ep.path(&path),
        &[("Content-Type", "application/x-tar".to_string())],
        Some(bytes::Bytes::from(content)),
    )
    .await
    .map_err(|_| crate::client::cannot_connect(&ep.host))?;
    let (status, body) = crate::client::raw::read_body(resp)
        .await
        .map_err(|e| CliError::msg(e.to_string()))?;
    if !status.is_success() {
        return Err(daemon_error(&body).into());
    }
    if !a.quiet {
        size_message(size, &format!("{container}:{dst}"));
    }
    Ok(())
}

/// `src/.`: the entries under the root, without the root itself.
fn rebase_contents(tar_bytes: &[u8], root: &str) -> std::io::Result<Vec<u8>> {
    let mut archive = tar::Archive::new(tar_bytes);
    let mut out = tar::Builder::new(Vec::new());
    for entry in archive.entries()? {
        let mut entry = entry?;
        let mut header = entry.header().clone();
        let name = entry.path()?.to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(&format!("{root}/")) else {
            continue;
        };
        if rest.is_empty() {
            continue;
        }
        let mut data = Vec::new();
        entry.read_to_end(&mut data)?;
        out.append_data(&mut header, rest, &data[..])?;
    }
    out.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cp_args() {
        assert_eq!(split_cp_arg("web:/tmp/x"), (Some("web"), "/tmp/x"));
        assert_eq!(split_cp_arg("/tmp/a:b"), (None, "/tmp/a:b"));
        assert_eq!(split_cp_arg("./a:b"), (None, "./a:b"));
        assert_eq!(split_cp_arg("file"), (None, "file"));
        assert_eq!(
            split_dir_entry("/tmp/f.txt"),
            ("/tmp".into(), "f.txt".into())
        );
        assert_eq!(split_dir_entry("/etc/"), ("/".into(), "etc".into()));
    }

    #[test]
    fn stat_header() {
        let h = base64::engine::general_purpose::STANDARD.encode(
            br#"{"name":"etc","size":4096,"mode":2147484141,"mtime":"2026-01-01T00:00:00Z","linkTarget":""}"#,
        );
        let s = decode_stat(&h).unwrap();
        assert!(s.is_dir());
    }

    #[test]
    fn rebases_entries() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(2);
        h.set_mode(0o644);
        b.append_data(&mut h, "f.txt", &b"hi"[..]).unwrap();
        let t = b.into_inner().unwrap();
        let r = rebase(&t, "f.txt", "g.txt").unwrap();
        let mut a = tar::Archive::new(&r[..]);
        let names: Vec<String> = a
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["g.txt".to_string()]);
    }
}
