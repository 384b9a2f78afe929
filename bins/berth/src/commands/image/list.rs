//! `berth images` / `berth image ls`: docker's legacy table (one row per repository and tag).

use std::collections::HashMap;

use anyhow::Result;
use bollard::models::ImageSummary;
use bollard::query_parameters::ListImagesOptions;
use clap::Args as ClapArgs;

use crate::cli::parse_filter;
use crate::commands::{Ctx, out};
use crate::errors::Args;
use crate::format::template::{Map, MapKind, Value};
use crate::format::units::{human_size, human_size_precision, since, truncate_id};
use crate::format::{Format, render_rows, time::go_time_string};
use crate::reference::Reference;

pub const FORMAT_HELP: &str = "Format output using a custom template:\n\
'table':            Print output in table format with column headers (default)\n\
'table TEMPLATE':   Print output in table format using the given Go template\n\
'json':             Print in JSON format\n\
'TEMPLATE':         Print output using the given Go template.\n\
Refer to https://docs.docker.com/go/formatting/ for more information about formatting output with templates";

#[derive(ClapArgs, Debug)]
pub struct ListArgs {
    /// Show all images (default hides intermediate images)
    #[arg(short, long)]
    pub all: bool,
    /// Show digests
    #[arg(long)]
    pub digests: bool,
    /// Filter output based on conditions provided
    #[arg(short, long, value_name = "filter", value_parser = parse_filter)]
    pub filter: Vec<(String, String)>,
    #[arg(long, value_name = "string", help = FORMAT_HELP)]
    pub format: Option<String>,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(short, long)]
    pub quiet: bool,
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Vec<String>,
}

const DEFAULT_TABLE: &str = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}";
const DEFAULT_TABLE_DIGEST: &str = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}";
const RAW: &str = "repository: {{ .Repository }}\ntag: {{.Tag}}\nimage_id: {{.ID}}\ncreated_at: {{.CreatedAt}}\nvirtual_size: {{.Size}}\n";
const RAW_DIGEST: &str = "repository: {{ .Repository }}\ntag: {{.Tag}}\ndigest: {{.Digest}}\nimage_id: {{.ID}}\ncreated_at: {{.CreatedAt}}\nvirtual_size: {{.Size}}\n";

/// docker's `NewImageFormat`.
pub fn image_format(source: &str, quiet: bool, digest: bool) -> Format {
    let f = match source {
        "table" if quiet => "{{.ID}}".to_string(),
        "table" if digest => DEFAULT_TABLE_DIGEST.to_string(),
        "table" => DEFAULT_TABLE.to_string(),
        "raw" if quiet => "image_id: {{.ID}}".to_string(),
        "raw" if digest => RAW_DIGEST.to_string(),
        "raw" => RAW.to_string(),
        other => {
            let mut f = other.to_string();
            if f.starts_with("table") && digest && !f.contains("{{.Digest}}") {
                f.push_str("\t{{.Digest}}");
            }
            f
        }
    };
    Format(f)
}

pub async fn run(a: ListArgs, ctx: &Ctx) -> Result<()> {
    ctx.args(Args::Max(1), a.reference.len())?;
    let mut filters: HashMap<String, Vec<String>> = HashMap::new();
    for (k, v) in &a.filter {
        filters.entry(k.clone()).or_default().push(v.clone());
    }
    if let Some(r) = a.reference.first() {
        filters
            .entry("reference".into())
            .or_default()
            .push(r.clone());
    }
    let client = ctx.client().await?;
    let opts = ListImagesOptions {
        all: a.all,
        filters: (!filters.is_empty()).then_some(filters),
        ..Default::default()
    };
    let mut images = client
        .docker
        .list_images(Some(opts))
        .await
        .map_err(|e| client.error(e))?;
    // Newest first, as docker sorts (the daemon's order is kept for equal times).
    images.sort_by_key(|i| std::cmp::Reverse(i.created));

    let source = match &a.format {
        Some(f) if !f.is_empty() => f.clone(),
        _ => match ctx.config().ok().and_then(|c| c.string("imagesFormat")) {
            Some(f) if !a.quiet => f,
            _ => "table".to_string(),
        },
    };
    let format = image_format(&source, a.quiet, a.digests);
    let need_digest = a.digests || format.contains("{{.Digest}}");
    let rows: Vec<Value> = images
        .iter()
        .flat_map(|img| image_rows(img, !a.no_trunc, a.digests, need_digest))
        .collect();
    out(&render_rows(&format, &image_header(), &rows)?)
}

/// The header row of docker's image context.
pub fn image_header() -> Value {
    Value::Map(
        Map::new(MapKind::Context("*formatter.imageContext".into()))
            .with("ID", "IMAGE ID")
            .with("Repository", "REPOSITORY")
            .with("Tag", "TAG")
            .with("Digest", "DIGEST")
            .with("CreatedSince", "CREATED")
            .with("CreatedAt", "CREATED AT")
            .with("Size", "SIZE")
            .with("Containers", "CONTAINERS")
            .with("VirtualSize", "SIZE")
            .with("SharedSize", "SHARED SIZE")
            .with("UniqueSize", "UNIQUE SIZE"),
    )
}

/// One row of docker's image context (its fields are what `--format` can use).
pub fn image_context(
    img: &ImageSummary,
    repo: &str,
    tag: &str,
    digest: &str,
    trunc: bool,
) -> Value {
    let id = if trunc {
        truncate_id(&img.id)
    } else {
        img.id.clone()
    };
    let na_or = |v: i64, f: &dyn Fn(i64) -> String| if v == -1 { "N/A".to_string() } else { f(v) };
    let unique = if img.size == -1 || img.shared_size == -1 {
        "N/A".to_string()
    } else {
        human_size((img.size - img.shared_size) as f64)
    };
    Value::Map(
        Map::new(MapKind::Context("*formatter.imageContext".into()))
            .with("ID", id)
            .with("Repository", repo)
            .with("Tag", tag)
            .with("Digest", digest)
            .with("CreatedSince", since(img.created))
            .with("CreatedAt", go_time_string(img.created))
            .with("Size", human_size_precision(img.size as f64, 3))
            .with("Containers", na_or(img.containers, &|c| c.to_string()))
            .with("VirtualSize", human_size(img.size as f64))
            .with(
                "SharedSize",
                na_or(img.shared_size, &|s| human_size(s as f64)),
            )
            .with("UniqueSize", unique),
    )
}

pub fn is_dangling(img: &ImageSummary) -> bool {
    (img.repo_tags.is_empty() && img.repo_digests.is_empty())
        || (img.repo_tags == ["<none>:<none>"] && img.repo_digests == ["<none>@<none>"])
}

/// docker's `imageFormatTaggedAndDigest`, in the order the daemon lists tags (docker's own
/// order is a Go map's, i.e. random).
pub fn image_rows(
    img: &ImageSummary,
    trunc: bool,
    show_digests: bool,
    need_digest: bool,
) -> Vec<Value> {
    if is_dangling(img) {
        return vec![image_context(img, "<none>", "<none>", "<none>", trunc)];
    }
    let mut tags: Vec<(String, Vec<String>)> = Vec::new();
    for r in &img.repo_tags {
        let Ok(parsed) = Reference::parse_normalized(r) else {
            continue;
        };
        let Some(tag) = parsed.tag.clone() else {
            continue;
        };
        push_grouped(&mut tags, parsed.familiar_name(), tag);
    }
    let mut digests: Vec<(String, Vec<String>)> = Vec::new();
    for r in &img.repo_digests {
        let Ok(parsed) = Reference::parse_normalized(r) else {
            continue;
        };
        let Some(digest) = parsed.digest.clone() else {
            continue;
        };
        push_grouped(&mut digests, parsed.familiar_name(), digest);
    }
    let mut rows = Vec::new();
    for (repo, repo_tags) in &tags {
        let mut repo_digests = match digests.iter().position(|(r, _)| r == repo) {
            Some(i) => digests.remove(i).1,
            None => Vec::new(),
        };
        if !need_digest {
            repo_digests.clear();
        }
        for tag in repo_tags {
            if repo_digests.is_empty() {
                rows.push(image_context(img, repo, tag, "<none>", trunc));
            }
            for d in &repo_digests {
                rows.push(image_context(img, repo, tag, d, trunc));
            }
        }
    }
    for (repo, repo_digests) in &digests {
        if show_digests {
            for d in repo_digests {
                rows.push(image_context(img, repo, "<none>", d, trunc));
            }
        } else {
            rows.push(image_context(img, repo, "<none>", "", trunc));
        }
    }
    rows
}

fn push_grouped(groups: &mut Vec<(String, Vec<String>)>, key: String, value: String) {
    match groups.iter_mut().find(|(k, _)| *k == key) {
        Some((_, values)) => values.push(value),
        None => groups.push((key, vec![value])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(tags: &[&str], digests: &[&str]) -> ImageSummary {
        ImageSummary {
            id: "sha256:76b8ecf5aa0a271d6c1d6cf1fdeea4042ffc39ff4f417ad35a387114b815c3d6".into(),
            repo_tags: tags.iter().map(|s| s.to_string()).collect(),
            repo_digests: digests.iter().map(|s| s.to_string()).collect(),
            created: chrono::Utc::now().timestamp() - 7200,
            size: 1_982_277,
            shared_size: -1,
            containers: -1,
            ..Default::default()
        }
    }

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn table(img: &ImageSummary, digests: bool) -> String {
        let f = image_format("table", false, digests);
        let need = digests || f.contains("{{.Digest}}");
        render_rows(&f, &image_header(), &image_rows(img, true, digests, need)).unwrap()
    }

    #[test]
    fn tagged_rows() {
        let img = summary(&["busybox:latest", "localhost:5000/foo/bar:1.0"], &[]);
        assert_eq!(
            table(&img, false),
            "REPOSITORY               TAG       IMAGE ID       CREATED       SIZE\n\
             busybox                  latest    76b8ecf5aa0a   2 hours ago   1.98MB\n\
             localhost:5000/foo/bar   1.0       76b8ecf5aa0a   2 hours ago   1.98MB\n"
        );
    }

    #[test]
    fn dangling_and_digest_rows() {
        let img = summary(&["<none>:<none>"], &["<none>@<none>"]);
        assert!(table(&img, false).contains("<none>       <none>    76b8ecf5aa0a"));
        let digest_ref = format!("busybox@{D}");
        let img = summary(&["busybox:latest"], &[&digest_ref]);
        let t = table(&img, true);
        assert!(t.starts_with("REPOSITORY   TAG       DIGEST"), "{t}");
        assert!(
            t.contains(&format!("busybox      latest    {D}   76b8ecf5aa0a")),
            "{t}"
        );
        let img = summary(&[], &[&digest_ref]);
        let rows = image_rows(&img, true, false, false);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].str_at("Tag"), "<none>");
        assert_eq!(rows[0].str_at("Digest"), "");
    }

    #[test]
    fn formats() {
        assert_eq!(image_format("table", true, false).0, "{{.ID}}");
        assert_eq!(
            image_format("table {{.ID}}", false, true).0,
            "table {{.ID}}\t{{.Digest}}"
        );
        let img = summary(&["busybox:latest"], &[]);
        let f = Format("json".into());
        let out = render_rows(&f, &image_header(), &image_rows(&img, true, false, false)).unwrap();
        assert!(
            out.starts_with("{\"Containers\":\"N/A\",\"CreatedAt\":"),
            "{out}"
        );
        assert!(
            out.contains("\"Digest\":\"\\u003cnone\\u003e\",\"ID\":\"76b8ecf5aa0a\""),
            "{out}"
        );
        assert!(out.contains("\"VirtualSize\":\"1.982MB\""), "{out}");
    }
}
