//! Reading the json-file log the shim writes: `--since/--until/--tail/--timestamps`,
//! rotated files oldest first, and `--follow` until the container stops.

use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use berth_shim::{Frame, StreamKind};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use tokio::sync::mpsc;

use super::ContainerService;
use super::record::ContainerRecord;
use crate::error::{EngineError, Result};

/// `GET /containers/{id}/logs` query.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub stdout: bool,
    pub stderr: bool,
    pub follow: bool,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub timestamps: bool,
    /// The last N lines; `None` for all.
    pub tail: Option<usize>,
}

/// One line of the log.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    pub stream: StreamKind,
    pub time: DateTime<Utc>,
    pub line: Vec<u8>,
}

#[derive(Deserialize)]
struct JsonLine {
    log: String,
    stream: String,
    time: DateTime<Utc>,
}

fn parse_line(line: &str) -> Option<LogEntry> {
    let parsed: JsonLine = serde_json::from_str(line).ok()?;
    Some(LogEntry {
        stream: if parsed.stream == "stderr" {
            StreamKind::Stderr
        } else {
            StreamKind::Stdout
        },
        time: parsed.time,
        line: parsed.log.into_bytes(),
    })
}

/// Parses Docker's `since`/`until` value: Unix seconds with optional fraction.
pub fn parse_timestamp(text: &str) -> Result<Option<DateTime<Utc>>> {
    if text.is_empty() || text == "0" {
        return Ok(None);
    }
    let (secs, nanos) = match text.split_once('.') {
        Some((s, n)) => {
            let padded = format!("{n:0<9}");
            (s, padded[..9].parse::<u32>().ok())
        }
        None => (text, Some(0)),
    };
    let secs: i64 = secs
        .parse()
        .map_err(|_| EngineError::invalid(format!("invalid value for timestamp: {text}")))?;
    Ok(DateTime::from_timestamp(secs, nanos.unwrap_or(0)))
}

/// The live log and its rotated files, oldest first.
fn log_files(live: &Path) -> Vec<PathBuf> {
    let mut rotated = Vec::new();
    for n in 1.. {
        let mut name = live.as_os_str().to_owned();
        name.push(format!(".{n}"));
        let path = PathBuf::from(name);
        if !path.exists() {
            break;
        }
        rotated.push(path);
    }
    rotated.reverse();
    rotated.push(live.to_path_buf());
    rotated
}

/// Formats one entry for the client.
fn encode(entry: &LogEntry, opts: &LogOptions, tty: bool) -> Bytes {
    let mut payload = Vec::with_capacity(entry.line.len() + 32);
    if opts.timestamps {
        payload.extend_from_slice(
            entry
                .time
                .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
                .as_bytes(),
        );
        payload.push(b' ');
    }
    payload.extend_from_slice(&entry.line);
    if tty {
        Bytes::from(payload)
    } else {
        Frame::new(entry.stream, payload).encode()
    }
}

fn wanted(entry: &LogEntry, opts: &LogOptions) -> bool {
    let stream_ok = match entry.stream {
        StreamKind::Stdout => opts.stdout,
        StreamKind::Stderr => opts.stderr,
        _ => false,
    };
    stream_ok
        && opts.since.is_none_or(|s| entry.time >= s)
        && opts.until.is_none_or(|u| entry.time <= u)
}

/// Every entry already written, filtered and tailed; returns also the live file's
/// length read so far.
fn read_existing(live: &Path, opts: &LogOptions) -> (Vec<LogEntry>, u64) {
    let mut entries = Vec::new();
    let mut offset = 0;
    for path in log_files(live) {
        let Ok(file) = std::fs::File::open(&path) else {
            continue;
        };
        let mut reader = BufReader::new(file);
        let mut line = String::new();
        let mut read = 0u64;
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if !line.ends_with('\n') {
                        break;
                    }
                    read += n as u64;
                    if let Some(entry) = parse_line(line.trim_end())
                        && wanted(&entry, opts)
                    {
                        entries.push(entry);
                    }
                }
            }
        }
        if path == live {
            offset = read;
        }
    }
    if let Some(n) = opts.tail
        && entries.len() > n
    {
        entries.drain(..entries.len() - n);
    }
    (entries, offset)
}

impl ContainerService {
    /// `GET /containers/{id}/logs`: whether the container has a TTY (raw output) and
    /// the output, as it comes.
    pub fn logs(
        self: &Arc<Self>,
        name: &str,
        opts: LogOptions,
    ) -> Result<(bool, mpsc::Receiver<Bytes>)> {
        let c = self.get(name)?;
        let record = c.record();
        let driver = record
            .host_config
            .log_config
            .as_ref()
            .and_then(|l| l.typ.clone())
            .unwrap_or_default();
        if !driver.is_empty() && driver != "json-file" {
            return Err(EngineError::invalid(format!(
                "configured logging driver does not support reading: {driver}"
            )));
        }
        let tty = record.config.tty.unwrap_or(false);
        let live = PathBuf::from(&record.log_path);
        let (tx, rx) = mpsc::channel(64);
        let mut lifecycle = c.subscribe();
        tokio::spawn(async move {
            let opts2 = opts.clone();
            let live2 = live.clone();
            let Ok((entries, mut offset)) =
                tokio::task::spawn_blocking(move || read_existing(&live2, &opts2)).await
            else {
                return;
            };
            for entry in &entries {
                if tx.send(encode(entry, &opts, tty)).await.is_err() {
                    return;
                }
            }
            if !opts.follow {
                return;
            }
            loop {
                let running = lifecycle.borrow_and_update().running;
                // Read what was appended (from the start again if the file rotated).
                let live3 = live.clone();
                let start = offset;
                let Ok((new, next)) =
                    tokio::task::spawn_blocking(move || read_from(&live3, start)).await
                else {
                    return;
                };
                offset = next;
                for entry in new.iter().filter(|e| wanted(e, &opts)) {
                    if tx.send(encode(entry, &opts, tty)).await.is_err() {
                        return;
                    }
                }
                if opts.until.is_some_and(|u| Utc::now() > u) {
                    return;
                }
                if !running && new.is_empty() {
                    return;
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    _ = lifecycle.changed() => {}
                    _ = tx.closed() => return,
                }
            }
        });
        Ok((tty, rx))
    }

    /// Log lines framed for an attach with `logs=1`.
    pub(crate) fn replay_logs(
        &self,
        record: &ContainerRecord,
        stdout: bool,
        stderr: bool,
        tty: bool,
    ) -> Result<Vec<u8>> {
        let opts = LogOptions {
            stdout,
            stderr,
            ..Default::default()
        };
        let (entries, _) = read_existing(Path::new(&record.log_path), &opts);
        Ok(entries
            .iter()
            .flat_map(|e| encode(e, &opts, tty).to_vec())
            .collect())
    }
}

/// Complete lines of the live file after `offset`; the new offset.
fn read_from(live: &Path, offset: u64) -> (Vec<LogEntry>, u64) {
    let Ok(mut file) = std::fs::File::open(live) else {
        return (Vec::new(), offset);
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let offset = if len < offset { 0 } else { offset };
    if file.seek(SeekFrom::Start(offset)).is_err() {
        return (Vec::new(), offset);
    }
    let mut reader = BufReader::new(file);
    let mut entries = Vec::new();
    let mut read = offset;
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if !line.ends_with('\n') {
                    break;
                }
                read += n as u64;
                entries.extend(parse_line(line.trim_end()));
            }
        }
    }
    (entries, read)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_log(path: &Path, lines: &[(&str, &str, &str)]) {
        let text: String = lines
            .iter()
            .map(|(stream, log, time)| {
                format!(
                    "{}\n",
                    serde_json::json!({"log": log, "stream": stream, "time": time})
                )
            })
            .collect();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn tail_since_and_streams_filter_across_rotated_files() {
        let tmp = tempfile::tempdir().unwrap();
        let live = tmp.path().join("c-json.log");
        write_log(
            &tmp.path().join("c-json.log.1"),
            &[
                ("stdout", "one\n", "2026-01-01T00:00:01Z"),
                ("stderr", "two\n", "2026-01-01T00:00:02Z"),
            ],
        );
        write_log(
            &live,
            &[
                ("stdout", "three\n", "2026-01-01T00:00:03Z"),
                ("stdout", "four\n", "2026-01-01T00:00:04Z"),
            ],
        );
        let all = LogOptions {
            stdout: true,
            stderr: true,
            ..Default::default()
        };
        let (entries, offset) = read_existing(&live, &all);
        let text: Vec<_> = entries
            .iter()
            .map(|e| String::from_utf8_lossy(&e.line).into_owned())
            .collect();
        assert_eq!(text, ["one\n", "two\n", "three\n", "four\n"]);
        assert_eq!(offset, std::fs::metadata(&live).unwrap().len());
        let tail = LogOptions {
            tail: Some(1),
            ..all.clone()
        };
        assert_eq!(read_existing(&live, &tail).0[0].line, b"four\n");
        let stdout_only = LogOptions {
            stderr: false,
            ..all.clone()
        };
        assert_eq!(read_existing(&live, &stdout_only).0.len(), 3);
        let since = LogOptions {
            since: parse_timestamp("1767225603").unwrap(),
            ..all.clone()
        };
        assert_eq!(read_existing(&live, &since).0.len(), 2);
        let framed = encode(&entries[1], &all, false);
        assert_eq!(&framed[..8], &[2, 0, 0, 0, 0, 0, 0, 4]);
        let stamped = encode(
            &entries[0],
            &LogOptions {
                timestamps: true,
                ..all
            },
            true,
        );
        assert_eq!(&stamped[..], b"2026-01-01T00:00:01.000000000Z one\n");
    }

    #[test]
    fn timestamps_parse_with_fractions() {
        let t = parse_timestamp("1700000000.5").unwrap().unwrap();
        assert_eq!(t.timestamp_subsec_nanos(), 500_000_000);
        assert_eq!(parse_timestamp("").unwrap(), None);
        assert!(parse_timestamp("abc").is_err());
    }
}
