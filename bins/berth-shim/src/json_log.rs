//! Docker's json-file log driver: one JSON object per line of output
//! (`{"log":"…\n","stream":"stdout","time":"…"}`), with `max-size`/`max-file` rotation
//! (`<log>.1` is the newest rotated file).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

/// Lines longer than this are written in pieces, as Docker does.
const MAX_LINE: usize = 16 * 1024;

#[derive(Serialize)]
struct Entry<'a> {
    log: &'a str,
    stream: &'a str,
    time: String,
}

pub struct JsonLog {
    path: PathBuf,
    file: File,
    size: u64,
    max_size: Option<u64>,
    max_files: u32,
    /// Bytes of an unfinished line, per stream (stdout, stderr).
    partial: [Vec<u8>; 2],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

impl JsonLog {
    /// Opens (appending to) the log; `max_size` in bytes, `max_files` ≥ 1 counting the
    /// live file.
    pub fn open(path: &Path, max_size: Option<u64>, max_files: u32) -> io::Result<JsonLog> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(JsonLog {
            path: path.to_path_buf(),
            file,
            size,
            max_size,
            max_files: max_files.max(1),
            partial: [Vec::new(), Vec::new()],
        })
    }

    /// Logs output: complete lines now, the rest once its line ends (or grows long).
    pub fn write(&mut self, stream: Stream, mut data: &[u8]) -> io::Result<()> {
        let index = stream as usize;
        while let Some(pos) = data.iter().position(|&b| b == b'\n') {
            let mut line = std::mem::take(&mut self.partial[index]);
            line.extend_from_slice(&data[..=pos]);
            self.entry(stream, &line)?;
            data = &data[pos + 1..];
        }
        self.partial[index].extend_from_slice(data);
        while self.partial[index].len() >= MAX_LINE {
            let rest = self.partial[index].split_off(MAX_LINE);
            let piece = std::mem::replace(&mut self.partial[index], rest);
            self.entry(stream, &piece)?;
        }
        Ok(())
    }

    /// Writes what is left of an unfinished line (the stream ended).
    pub fn flush_partial(&mut self, stream: Stream) -> io::Result<()> {
        let piece = std::mem::take(&mut self.partial[stream as usize]);
        if !piece.is_empty() {
            self.entry(stream, &piece)?;
        }
        Ok(())
    }

    fn entry(&mut self, stream: Stream, bytes: &[u8]) -> io::Result<()> {
        let text = String::from_utf8_lossy(bytes);
        let entry = Entry {
            log: &text,
            stream: stream.name(),
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        };
        let mut line = serde_json::to_vec(&entry).map_err(io::Error::other)?;
        line.push(b'\n');
        if let Some(max) = self.max_size
            && self.size > 0
            && self.size + line.len() as u64 > max
        {
            self.rotate()?;
        }
        self.file.write_all(&line)?;
        self.size += line.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        if self.max_files > 1 {
            for n in (1..self.max_files).rev() {
                let from = if n == 1 {
                    self.path.clone()
                } else {
                    rotated(&self.path, n - 1)
                };
                match std::fs::rename(&from, rotated(&self.path, n)) {
                    Err(err) if err.kind() != io::ErrorKind::NotFound => return Err(err),
                    _ => {}
                }
            }
            self.file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?;
        } else {
            self.file.set_len(0)?;
        }
        self.size = 0;
        Ok(())
    }
}

fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(path: &Path) -> Vec<(String, String)> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|line| {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                (
                    v["stream"].as_str().unwrap().to_string(),
                    v["log"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn lines_are_split_and_joined_per_stream() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("c-json.log");
        let mut log = JsonLog::open(&path, None, 1).unwrap();
        log.write(Stream::Stdout, b"hel").unwrap();
        log.write(Stream::Stderr, b"oops\n").unwrap();
        log.write(Stream::Stdout, b"lo\nworld\nta").unwrap();
        log.flush_partial(Stream::Stdout).unwrap();
        assert_eq!(
            entries(&path),
            vec![
                ("stderr".into(), "oops\n".into()),
                ("stdout".into(), "hello\n".into()),
                ("stdout".into(), "world\n".into()),
                ("stdout".into(), "ta".into()),
            ]
        );
    }

    #[test]
    fn rotation_keeps_max_files() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("c-json.log");
        let mut log = JsonLog::open(&path, Some(200), 3).unwrap();
        for i in 0..20 {
            log.write(Stream::Stdout, format!("line {i}\n").as_bytes())
                .unwrap();
        }
        assert!(std::fs::metadata(&path).unwrap().len() <= 200);
        assert!(rotated(&path, 1).exists() && rotated(&path, 2).exists());
        assert!(!rotated(&path, 3).exists());
        let last = entries(&path);
        assert_eq!(last.last().unwrap().1, "line 19\n");
        let older = entries(&rotated(&path, 2));
        let newer = entries(&rotated(&path, 1));
        let first_newer: u32 = newer[0].1[5..].trim().parse().unwrap();
        let last_older: u32 = older.last().unwrap().1[5..].trim().parse().unwrap();
        assert_eq!(first_newer, last_older + 1);
    }
}
