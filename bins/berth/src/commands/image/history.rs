//! `berth history IMAGE`.

use anyhow::Result;
use bollard::models::ImageHistoryResponseItem;
use clap::Args as ClapArgs;

use crate::cli::parse_go_bool;
use crate::client::{path_escape, query};
use crate::commands::image::list::FORMAT_HELP;
use crate::commands::{Ctx, out};
use crate::errors::{Args, CliError};
use crate::format::template::{Map, MapKind, Value};
use crate::format::time::rfc3339;
use crate::format::units::{ellipsis, human_size_precision, since, truncate_id};
use crate::format::{Format, render_rows};

#[derive(ClapArgs, Debug)]
pub struct HistoryArgs {
    #[arg(long, value_name = "string", help = FORMAT_HELP)]
    pub format: Option<String>,
    /// Print sizes and dates in human readable format
    #[arg(
        short = 'H',
        long,
        default_value = "true",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = parse_go_bool
    )]
    pub human: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Show history for the given platform. Formatted as "os[/arch[/variant]]" (e.g., "linux/amd64")
    #[arg(long, value_name = "string")]
    pub platform: Option<String>,
    /// Only show image IDs
    #[arg(short, long)]
    pub quiet: bool,
    #[arg(value_name = "IMAGE")]
    pub image: Vec<String>,
}

const DEFAULT_TABLE: &str =
    "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}";
const NON_HUMAN_TABLE: &str =
    "table {{.ID}}\t{{.CreatedAt}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}";
/// Layers created before this time show no age (docker's `epoch`, 2000-01-01).
const EPOCH: i64 = 946_684_800;

fn history_format(source: &str, quiet: bool, human: bool) -> Format {
    Format(match source {
        "table" if quiet => "{{.ID}}".to_string(),
        "table" if !human => NON_HUMAN_TABLE.to_string(),
        "table" => DEFAULT_TABLE.to_string(),
        other => other.to_string(),
    })
}

fn header() -> Value {
    Value::Map(
        Map::new(MapKind::Context("*image.historyContext".into()))
            .with("ID", "IMAGE")
            .with("CreatedSince", "CREATED")
            .with("CreatedAt", "CREATED AT")
            .with("CreatedBy", "CREATED BY")
            .with("Size", "SIZE")
            .with("Comment", "COMMENT"),
    )
}

fn row(h: &ImageHistoryResponseItem, trunc: bool, human: bool) -> Value {
    let created_at = rfc3339(h.created);
    let created_since = if !human {
        created_at.clone()
    } else if h.created <= EPOCH {
        String::new()
    } else {
        since(h.created)
    };
    let created_by = h.created_by.replace('\t', " ");
    let created_by = if trunc {
        ellipsis(&created_by, 45)
    } else {
        created_by
    };
    let size = if human {
        human_size_precision(h.size as f64, 3)
    } else {
        h.size.to_string()
    };
    Value::Map(
        Map::new(MapKind::Context("*image.historyContext".into()))
            .with(
                "ID",
                if trunc {
                    truncate_id(&h.id)
                } else {
                    h.id.clone()
                },
            )
            .with("CreatedSince", created_since)
            .with("CreatedAt", created_at)
            .with("CreatedBy", created_by)
            .with("Size", size)
            .with("Comment", h.comment.clone()),
    )
}

pub async fn run(a: HistoryArgs, ctx: &Ctx) -> Result<()> {
    ctx.args(Args::Exact(1), a.image.len())?;
    let client = ctx.client().await?;
    let items: Vec<ImageHistoryResponseItem> = match &a.platform {
        None => client
            .docker
            .image_history(&a.image[0])
            .await
            .map_err(|e| client.error(e))?,
        Some(p) => {
            let mut parts = p.splitn(3, '/');
            let mut platform = serde_json::Map::new();
            for key in ["os", "architecture", "variant"] {
                if let Some(v) = parts.next().filter(|v| !v.is_empty()) {
                    platform.insert(key.into(), v.to_lowercase().into());
                }
            }
            let q = query(&[("platform", &serde_json::Value::Object(platform).to_string())]);
            let path = format!("/images/{}/history{q}", path_escape(&a.image[0]));
            let body = client.raw(http::Method::GET, &path, &[], None).await?;
            serde_json::from_slice(&body)
                .map_err(|e| CliError::msg(format!("error decoding response: {e}")))?
        }
    };
    let source = a
        .format
        .clone()
        .filter(|f| !f.is_empty())
        .unwrap_or_else(|| "table".into());
    let format = history_format(&source, a.quiet, a.human);
    let rows: Vec<Value> = items.iter().map(|h| row(h, !a.no_trunc, a.human)).collect();
    out(&render_rows(&format, &header(), &rows)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, by: &str) -> ImageHistoryResponseItem {
        ImageHistoryResponseItem {
            id: id.into(),
            created: chrono::Utc::now().timestamp() - 3 * 86400,
            created_by: by.into(),
            size: 1_982_277,
            comment: "first import".into(),
            ..Default::default()
        }
    }

    #[test]
    fn table_like_docker() {
        let long = "/bin/sh -c #(nop) ADD file:0123456789abcdef0123456789abcdef in / ";
        let rows = vec![
            row(&item("sha256:76b8ecf5aa0a271d6c1d", long), true, true),
            row(&item("<missing>", ""), true, true),
        ];
        let out = render_rows(&history_format("table", false, true), &header(), &rows).unwrap();
        let want = "IMAGE          CREATED      CREATED BY                                      SIZE      COMMENT\n\
                    76b8ecf5aa0a   3 days ago   /bin/sh -c #(nop) ADD file:0123456789abcdef0…   1.98MB    first import\n\
                    <missing>      3 days ago                                                   1.98MB    first import\n";
        assert_eq!(out, want);
    }

    #[test]
    fn non_human() {
        let rows = vec![row(&item("sha256:76b8ecf5aa0a271d6c1d", ""), true, false)];
        let out = render_rows(&history_format("table", false, false), &header(), &rows).unwrap();
        assert!(
            out.starts_with(
                "IMAGE          CREATED AT             CREATED BY   SIZE      COMMENT\n"
            ),
            "{out}"
        );
        assert!(out.contains("1982277   first import"), "{out}");
    }
}
