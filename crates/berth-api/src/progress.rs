//! Docker's JSON progress stream (`jsonmessage`): one JSON object per line, used by pull,
//! push, load, import and build.

use serde::{Deserialize, Serialize};

use crate::units::human_size;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ProgressDetail {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ErrorDetail {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i64>,
    pub message: String,
}

/// One message of the stream.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct JsonMessage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(
        default,
        rename = "progressDetail",
        skip_serializing_if = "Option::is_none"
    )]
    pub progress_detail: Option<ProgressDetail>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(
        default,
        rename = "errorDetail",
        skip_serializing_if = "Option::is_none"
    )]
    pub error_detail: Option<ErrorDetail>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aux: Option<serde_json::Value>,
}

impl JsonMessage {
    /// A plain status line (`Status: Downloaded newer image for …`).
    pub fn status(status: impl Into<String>) -> JsonMessage {
        JsonMessage {
            status: Some(status.into()),
            ..Default::default()
        }
    }

    /// A status line for one item (`abc123: Pull complete`).
    pub fn item(id: impl Into<String>, status: impl Into<String>) -> JsonMessage {
        JsonMessage {
            status: Some(status.into()),
            id: Some(id.into()),
            ..Default::default()
        }
    }

    /// A progress line with docker's bar.
    pub fn progress(
        id: impl Into<String>,
        status: impl Into<String>,
        current: u64,
        total: Option<u64>,
    ) -> JsonMessage {
        JsonMessage {
            status: Some(status.into()),
            id: Some(id.into()),
            progress_detail: Some(ProgressDetail {
                current: Some(current),
                total,
            }),
            progress: Some(progress_bar(current, total)),
            ..Default::default()
        }
    }

    pub fn error(message: impl Into<String>) -> JsonMessage {
        let message = message.into();
        JsonMessage {
            error_detail: Some(ErrorDetail {
                code: None,
                message: message.clone(),
            }),
            error: Some(message),
            ..Default::default()
        }
    }

    /// `{"stream": "…"}` lines (load, build).
    pub fn stream(text: impl Into<String>) -> JsonMessage {
        JsonMessage {
            stream: Some(text.into()),
            ..Default::default()
        }
    }

    /// The line on the wire, with its trailing newline.
    pub fn to_line(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec(self).expect("messages serialise");
        v.push(b'\n');
        v
    }
}

/// Docker's progress string: `[=====>      ]  1.2MB/5.1MB` (a 50-column bar).
pub fn progress_bar(current: u64, total: Option<u64>) -> String {
    const WIDTH: u64 = 50;
    match total {
        Some(total) if total > 0 => {
            let current = current.min(total);
            let bars = current * WIDTH / total;
            let (bar, arrow) = if bars == WIDTH {
                ("=".repeat(WIDTH as usize), "")
            } else {
                ("=".repeat(bars as usize), ">")
            };
            let spaces = WIDTH as usize - bar.len() - arrow.len();
            format!(
                "[{bar}{arrow}{}] {:>8}/{}",
                " ".repeat(spaces),
                human_size(current),
                human_size(total)
            )
        }
        _ => format!("{:>8}", human_size(current)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_docker() {
        let m = JsonMessage::progress("abc", "Downloading", 500, Some(1000));
        let v: serde_json::Value = serde_json::from_slice(&m.to_line()).unwrap();
        assert_eq!(v["status"], "Downloading");
        assert_eq!(v["progressDetail"]["current"], 500);
        assert_eq!(v["progressDetail"]["total"], 1000);
        assert_eq!(v["id"], "abc");
        assert!(
            v["progress"]
                .as_str()
                .unwrap()
                .starts_with("[=========================>")
        );
        let e: serde_json::Value =
            serde_json::from_slice(&JsonMessage::error("boom").to_line()).unwrap();
        assert_eq!(e["errorDetail"]["message"], "boom");
        assert_eq!(e["error"], "boom");
    }

    #[test]
    fn bar_is_fixed_width() {
        assert_eq!(progress_bar(0, Some(10)).find(']'), Some(51));
        assert_eq!(progress_bar(10, Some(10)).find(']'), Some(51));
        assert_eq!(progress_bar(3, Some(10)).find(']'), Some(51));
    }
}
