//! Docker's JSON progress stream rendered like `jsonmessage.DisplayJSONMessagesStream`: on a
//! terminal one line per layer id, redrawn in place with cursor movement; elsewhere each status
//! line once, without progress bars.

use std::collections::HashMap;
use std::io::{self, Write};
use std::time::Duration;

use serde::Deserialize;

use super::time::rfc3339_nano_fixed;
use super::units::{go_duration_string, human_size};

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct Progress {
    #[serde(default)]
    pub current: i64,
    #[serde(default)]
    pub total: i64,
    #[serde(default)]
    pub start: i64,
    #[serde(default, rename = "hidecounts")]
    pub hide_counts: bool,
    #[serde(default)]
    pub units: String,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct ErrorDetail {
    #[serde(default)]
    pub code: i32,
    #[serde(default)]
    pub message: String,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct JsonMessage {
    #[serde(default)]
    pub stream: String,
    #[serde(default)]
    pub status: String,
    #[serde(default, rename = "progressDetail")]
    pub progress: Option<Progress>,
    /// The daemon's pre-rendered bar (deprecated `ProgressMessage`).
    #[serde(default, rename = "progress")]
    pub progress_message: String,
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub time: i64,
    #[serde(default, rename = "timeNano")]
    pub time_nano: i64,
    #[serde(default, rename = "errorDetail")]
    pub error: Option<ErrorDetail>,
    #[serde(default, rename = "error")]
    pub error_message: String,
    #[serde(default)]
    pub aux: Option<serde_json::Value>,
}

/// An error reported inside the stream: printed as is, exit code `code` (1 when unset).
#[derive(Debug, Clone, PartialEq)]
pub struct StreamError {
    pub code: i32,
    pub message: String,
}

impl Progress {
    /// `JSONProgress.String()`: bar (when wider than 110 columns), sizes and time left.
    pub fn render(&self, width: usize, now_unix: i64) -> String {
        if self.current <= 0 && self.total <= 0 {
            return String::new();
        }
        if self.total <= 0 {
            return if self.units.is_empty() {
                format!("{:>8}", human_size(self.current as f64))
            } else {
                format!("{} {}", self.current, self.units)
            };
        }
        let percentage = (((self.current as f64 / self.total as f64) * 100.0) as i64 / 2).min(50);
        let mut out = String::new();
        if width > 110 {
            let spaces = (50 - percentage).max(0) as usize;
            out.push_str(&format!(
                "[{}>{}] ",
                "=".repeat(percentage.max(0) as usize),
                " ".repeat(spaces)
            ));
        }
        if !self.hide_counts {
            if self.units.is_empty() {
                let current = human_size(self.current as f64);
                if self.current > self.total {
                    out.push_str(&format!("{current:>8}"));
                } else {
                    out.push_str(&format!("{current:>8}/{}", human_size(self.total as f64)));
                }
            } else if self.current > self.total {
                out.push_str(&format!("{} {}", self.current, self.units));
            } else {
                out.push_str(&format!("{}/{} {}", self.current, self.total, self.units));
            }
        }
        if self.current > 0 && self.start > 0 && percentage < 50 && width > 50 {
            let elapsed = (now_unix - self.start).max(0) as f64;
            let per_entry = elapsed / self.current as f64;
            let left = ((self.total - self.current) as f64 * per_entry) as u64;
            out.push_str(&format!(
                " {}",
                go_duration_string(Duration::from_secs(left))
            ));
        }
        out
    }
}

pub struct Display<W: Write> {
    out: W,
    is_terminal: bool,
    width: usize,
    ids: HashMap<String, usize>,
}

impl<W: Write> Display<W> {
    /// `width` is the terminal's column count (docker assumes 200 when not a terminal).
    pub fn new(out: W, is_terminal: bool, width: usize) -> Display<W> {
        Display {
            out,
            is_terminal,
            width,
            ids: HashMap::new(),
        }
    }

    #[cfg(test)]
    pub fn into_inner(self) -> W {
        self.out
    }

    /// Shows one message; a message carrying an error ends the stream with it.
    pub fn message(&mut self, jm: &JsonMessage) -> io::Result<Result<(), StreamError>> {
        if jm.aux.is_some() {
            return Ok(Ok(()));
        }
        let mut diff = 0;
        if !jm.id.is_empty() && (jm.progress.is_some() || !jm.progress_message.is_empty()) {
            let line = match self.ids.get(&jm.id) {
                Some(line) => *line,
                None => {
                    let line = self.ids.len();
                    self.ids.insert(jm.id.clone(), line);
                    if self.is_terminal {
                        writeln!(self.out)?;
                    }
                    line
                }
            };
            diff = self.ids.len() - line;
            if self.is_terminal && diff > 0 {
                write!(self.out, "\x1b[{diff}A")?;
            }
        } else {
            // Progress of an earlier operation must not be redrawn.
            self.ids.clear();
        }
        let result = self.show(jm)?;
        if !jm.id.is_empty() && self.is_terminal && diff > 0 {
            write!(self.out, "\x1b[{diff}B")?;
        }
        Ok(result)
    }

    fn show(&mut self, jm: &JsonMessage) -> io::Result<Result<(), StreamError>> {
        if let Some(e) = &jm.error {
            let message = if e.message.is_empty() {
                jm.error_message.clone()
            } else {
                e.message.clone()
            };
            return Ok(Err(StreamError {
                code: e.code,
                message,
            }));
        }
        if !jm.error_message.is_empty() {
            return Ok(Err(StreamError {
                code: 0,
                message: jm.error_message.clone(),
            }));
        }
        let now = chrono::Utc::now().timestamp();
        let rendered = jm.progress.as_ref().map(|p| p.render(self.width, now));
        let mut endl = "";
        if self.is_terminal && jm.stream.is_empty() && jm.progress.is_some() {
            write!(self.out, "\x1b[2K\r")?;
            endl = "\r";
        } else if rendered.as_deref().is_some_and(|r| !r.is_empty()) {
            // No progress bars when not on a terminal.
            return Ok(Ok(()));
        }
        if jm.time_nano != 0 {
            write!(self.out, "{} ", rfc3339_nano_fixed(jm.time_nano as i128))?;
        } else if jm.time != 0 {
            write!(
                self.out,
                "{} ",
                rfc3339_nano_fixed(jm.time as i128 * 1_000_000_000)
            )?;
        }
        if !jm.id.is_empty() {
            write!(self.out, "{}: ", jm.id)?;
        }
        if !jm.from.is_empty() {
            write!(self.out, "(from {}) ", jm.from)?;
        }
        if let (Some(bar), true) = (&rendered, self.is_terminal) {
            write!(self.out, "{} {bar}{endl}", jm.status)?;
        } else if !jm.progress_message.is_empty() {
            write!(self.out, "{} {}{endl}", jm.status, jm.progress_message)?;
        } else if !jm.stream.is_empty() {
            write!(self.out, "{}{endl}", jm.stream)?;
        } else {
            writeln!(self.out, "{}{endl}", jm.status)?;
        }
        self.out.flush()?;
        Ok(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(json: &str) -> JsonMessage {
        serde_json::from_str(json).unwrap()
    }

    fn render(lines: &[&str], tty: bool) -> (String, Result<(), StreamError>) {
        let mut d = Display::new(Vec::new(), tty, 200);
        let mut result = Ok(());
        for l in lines {
            result = d.message(&msg(l)).unwrap();
            if result.is_err() {
                break;
            }
        }
        (String::from_utf8(d.into_inner()).unwrap(), result)
    }

    const PULL: &[&str] = &[
        r#"{"status":"Pulling from library/alpine","id":"latest"}"#,
        r#"{"status":"Pulling fs layer","progressDetail":{},"id":"abc123def456"}"#,
        r#"{"status":"Downloading","progressDetail":{"current":1200000,"total":5100000},"progress":"[==>  ]","id":"abc123def456"}"#,
        r#"{"status":"Verifying Checksum","progressDetail":{},"id":"abc123def456"}"#,
        r#"{"status":"Download complete","progressDetail":{},"id":"abc123def456"}"#,
        r#"{"status":"Pull complete","progressDetail":{},"id":"abc123def456"}"#,
        r#"{"status":"Digest: sha256:1234"}"#,
        r#"{"status":"Status: Downloaded newer image for alpine:latest"}"#,
    ];

    #[test]
    fn plain_output_skips_progress_bars() {
        let (out, result) = render(PULL, false);
        assert!(result.is_ok());
        assert_eq!(
            out,
            "latest: Pulling from library/alpine\n\
             abc123def456: Pulling fs layer\n\
             abc123def456: Verifying Checksum\n\
             abc123def456: Download complete\n\
             abc123def456: Pull complete\n\
             Digest: sha256:1234\n\
             Status: Downloaded newer image for alpine:latest\n"
        );
    }

    #[test]
    fn terminal_output_redraws_lines() {
        let (out, _) = render(&PULL[..3], true);
        assert_eq!(
            out,
            "latest: Pulling from library/alpine\n\
             \n\x1b[1A\x1b[2K\rabc123def456: Pulling fs layer \r\x1b[1B\
             \x1b[1A\x1b[2K\rabc123def456: Downloading [===========>                                       ]    1.2MB/5.1MB\r\x1b[1B"
        );
    }

    #[test]
    fn errors_end_the_stream() {
        let (out, result) = render(
            &[
                r#"{"status":"Pulling from x","id":"latest"}"#,
                r#"{"errorDetail":{"message":"manifest unknown"},"error":"manifest unknown"}"#,
            ],
            false,
        );
        assert_eq!(out, "latest: Pulling from x\n");
        assert_eq!(
            result,
            Err(StreamError {
                code: 0,
                message: "manifest unknown".into()
            })
        );
    }

    #[test]
    fn progress_strings() {
        let p = Progress {
            current: 1_200_000,
            total: 5_100_000,
            ..Default::default()
        };
        assert_eq!(p.render(80, 0), "   1.2MB/5.1MB");
        let p = Progress {
            current: 5_000,
            total: 0,
            ..Default::default()
        };
        assert_eq!(p.render(200, 0), "     5kB");
        let p = Progress {
            current: 3,
            total: 10,
            units: "items".into(),
            ..Default::default()
        };
        assert_eq!(p.render(80, 0), "3/10 items");
        let p = Progress {
            current: 50,
            total: 100,
            start: 100,
            ..Default::default()
        };
        assert_eq!(p.render(80, 110), "     50B/100B 10s");
    }

    #[test]
    fn stream_lines_pass_through() {
        let (out, _) = render(&[r#"{"stream":"Loaded image: busybox:latest\n"}"#], false);
        assert_eq!(out, "Loaded image: busybox:latest\n");
    }
}
