//! `berth system df [-v]`: docker's disk usage summary, computed from `/system/df` as docker 28
//! does.

use anyhow::Result;
use bollard::models::ImageSummary;
use clap::Args as ClapArgs;
use serde_json::Value as Json;

use crate::commands::image::list::{FORMAT_HELP, image_context, image_header, is_dangling};
use crate::commands::{Ctx, out};
use crate::errors::CliError;
use crate::format::template::{Map, MapKind, Value};
use crate::format::units::{ellipsis, human_size, human_size_precision, since, truncate_id};
use crate::format::{Format, parse_template, render_one, render_rows};
use crate::reference::Reference;

#[derive(ClapArgs, Debug)]
pub struct DfArgs {
    #[arg(long, value_name = "string", help = FORMAT_HELP)]
    pub format: Option<String>,
    /// Show detailed information on space usage
    #[arg(short, long)]
    pub verbose: bool,
}

const SUMMARY_TABLE: &str =
    "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}";
const IMAGE_TABLE: &str = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}";
const CONTAINER_TABLE: &str = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}";
const VOLUME_TABLE: &str = "table {{.Name}}\t{{.Links}}\t{{.Size}}";
const CACHE_TABLE: &str = "table {{.ID}}\t{{.CacheType}}\t{{.Size}}\t{{.CreatedSince}}\t{{.LastUsedSince}}\t{{.UsageCount}}\t{{.Shared}}";

fn list(v: &Json, key: &str) -> Vec<Json> {
    v.get(key)
        .and_then(Json::as_array)
        .cloned()
        .unwrap_or_default()
}

fn int(v: &Json, key: &str) -> i64 {
    v.get(key).and_then(Json::as_i64).unwrap_or(0)
}

fn text<'a>(v: &'a Json, key: &str) -> &'a str {
    v.get(key).and_then(Json::as_str).unwrap_or("")
}

fn reclaimable(reclaim: i64, total: i64) -> String {
    if total > 0 {
        format!(
            "{} ({}%)",
            human_size(reclaim as f64),
            reclaim * 100 / total
        )
    } else {
        human_size(reclaim as f64)
    }
}

fn summary_row(kind: &str, total: usize, active: usize, size: String, reclaim: String) -> Value {
    Value::Map(
        Map::new(MapKind::Context("*formatter.diskUsageContext".into()))
            .with("Type", kind)
            .with("TotalCount", total.to_string())
            .with("Active", active.to_string())
            .with("Size", size)
            .with("Reclaimable", reclaim),
    )
}

fn volume_size(v: &Json) -> Option<i64> {
    v.get("UsageData")
        .and_then(|u| u.get("Size"))
        .and_then(Json::as_i64)
        .filter(|s| *s != -1)
}

fn volume_refs(v: &Json) -> Option<i64> {
    v.get("UsageData")
        .and_then(|u| u.get("RefCount"))
        .and_then(Json::as_i64)
}

fn container_active(c: &Json) -> bool {
    matches!(text(c, "State"), "running" | "paused" | "restarting")
}

/// The four summary rows (images, containers, local volumes, build cache).
pub fn summary(df: &Json, images: &[ImageSummary]) -> Vec<Value> {
    let layers = int(df, "LayersSize");
    let mut used = 0;
    for i in images.iter().filter(|i| i.containers != 0) {
        if i.size != -1 && i.shared_size != -1 {
            used += i.size - i.shared_size;
        }
    }
    let containers = list(df, "Containers");
    let c_size: i64 = containers.iter().map(|c| int(c, "SizeRw")).sum();
    let c_reclaim: i64 = containers
        .iter()
        .filter(|c| !container_active(c))
        .map(|c| int(c, "SizeRw"))
        .sum();
    let volumes = list(df, "Volumes");
    let v_size: i64 = volumes.iter().filter_map(volume_size).sum();
    let v_reclaim: i64 = volumes
        .iter()
        .filter(|v| volume_refs(v) == Some(0))
        .filter_map(volume_size)
        .sum();
    let cache = list(df, "BuildCache");
    let shared = |c: &Json| c.get("Shared").and_then(Json::as_bool).unwrap_or(false);
    let in_use = |c: &Json| c.get("InUse").and_then(Json::as_bool).unwrap_or(false);
    let b_size: i64 = cache
        .iter()
        .filter(|c| !shared(c))
        .map(|c| int(c, "Size"))
        .sum();
    let b_reclaim: i64 = cache
        .iter()
        .filter(|c| !shared(c) && !in_use(c))
        .map(|c| int(c, "Size"))
        .sum();
    vec![
        summary_row(
            "Images",
            images.len(),
            images.iter().filter(|i| i.containers > 0).count(),
            human_size(layers as f64),
            reclaimable(layers - used, layers),
        ),
        summary_row(
            "Containers",
            containers.len(),
            containers.iter().filter(|c| container_active(c)).count(),
            human_size(c_size as f64),
            reclaimable(c_reclaim, c_size),
        ),
        summary_row(
            "Local Volumes",
            volumes.len(),
            volumes
                .iter()
                .filter(|v| volume_refs(v).unwrap_or(0) > 0)
                .count(),
            human_size(v_size as f64),
            reclaimable(v_reclaim, v_size),
        ),
        summary_row(
            "Build Cache",
            cache.len(),
            cache.iter().filter(|c| in_use(c)).count(),
            human_size(b_size as f64),
            human_size(b_reclaim as f64),
        ),
    ]
}

fn summary_header() -> Value {
    header(
        "*formatter.diskUsageContext",
        &[
            ("Type", "TYPE"),
            ("TotalCount", "TOTAL"),
            ("Active", "ACTIVE"),
            ("Size", "SIZE"),
            ("Reclaimable", "RECLAIMABLE"),
        ],
    )
}

fn container_row(c: &Json, trunc: bool) -> Value {
    let id = text(c, "Id");
    let mut image = text(c, "Image").to_string();
    if trunc && truncate_id(&image) == truncate_id(text(c, "ImageID")) {
        image = truncate_id(&image);
    }
    let command = text(c, "Command");
    let command = if trunc {
        ellipsis(command, 20)
    } else {
        command.to_string()
    };
    let volumes = list(c, "Mounts")
        .iter()
        .filter(|m| text(m, "Type") == "volume")
        .count();
    let names: Vec<String> = list(c, "Names")
        .iter()
        .filter_map(|n| n.as_str().map(|s| s.trim_start_matches('/').to_string()))
        .collect();
    let names = match names.iter().find(|n| trunc && !n.contains('/')) {
        Some(n) => n.clone(),
        None => names.join(","),
    };
    Value::Map(
        Map::new(MapKind::Context("*formatter.ContainerContext".into()))
            .with(
                "ID",
                if trunc {
                    truncate_id(id)
                } else {
                    id.to_string()
                },
            )
            .with("Image", image)
            .with("Command", crate::format::json::quote(&command, false))
            .with("LocalVolumes", volumes.to_string())
            .with("Size", human_size_precision(int(c, "SizeRw") as f64, 3))
            .with("RunningFor", since(int(c, "Created")))
            .with("Status", text(c, "Status"))
            .with("Names", names),
    )
}

fn volume_row(v: &Json) -> Value {
    let links = volume_refs(v).map_or("N/A".to_string(), |r| r.to_string());
    let size = volume_size(v).map_or("N/A".to_string(), |s| human_size(s as f64));
    Value::Map(
        Map::new(MapKind::Context("*formatter.volumeContext".into()))
            .with("Name", text(v, "Name"))
            .with("Links", links)
            .with("Size", size),
    )
}

fn cache_row(c: &Json, trunc: bool) -> Value {
    let id = text(c, "ID");
    let ts = |k: &str| {
        chrono::DateTime::parse_from_rfc3339(text(c, k))
            .ok()
            .map(|t| since(t.timestamp()))
            .unwrap_or_default()
    };
    Value::Map(
        Map::new(MapKind::Context("*formatter.buildCacheContext".into()))
            .with(
                "ID",
                if trunc {
                    id.chars().take(12).collect()
                } else {
                    id.to_string()
                },
            )
            .with("CacheType", text(c, "Type"))
            .with("Size", human_size_precision(int(c, "Size") as f64, 3))
            .with("CreatedSince", ts("CreatedAt"))
            .with("LastUsedSince", ts("LastUsedAt"))
            .with("UsageCount", int(c, "UsageCount").to_string())
            .with(
                "Shared",
                c.get("Shared")
                    .and_then(Json::as_bool)
                    .unwrap_or(false)
                    .to_string(),
            ),
    )
}

fn header(kind: &str, fields: &[(&str, &str)]) -> Value {
    let mut m = Map::new(MapKind::Context(kind.into()));
    for (k, v) in fields {
        m.insert(*k, Value::Str(v.to_string()));
    }
    Value::Map(m)
}

fn verbose_images(images: &[ImageSummary], trunc: bool) -> Vec<Value> {
    images
        .iter()
        .map(|i| {
            let (mut repo, mut tag) = ("<none>".to_string(), "<none>".to_string());
            if !i.repo_tags.is_empty()
                && !is_dangling(i)
                && let Ok(r) = Reference::parse_normalized(&i.repo_tags[0])
                && let Some(t) = r.tag.clone()
            {
                repo = r.familiar_name();
                tag = t;
            }
            image_context(i, &repo, &tag, "", trunc)
        })
        .collect()
}

pub async fn run(a: DfArgs, ctx: &Ctx) -> Result<()> {
    let client = ctx.client().await?;
    let body = client
        .raw(http::Method::GET, "/system/df", &[], None)
        .await?;
    let df: Json = serde_json::from_slice(&body)
        .map_err(|e| CliError::msg(format!("error decoding response: {e}")))?;
    let mut images: Vec<ImageSummary> =
        serde_json::from_value(df.get("Images").cloned().unwrap_or(Json::Null)).unwrap_or_default();
    images.sort_by_key(|i| std::cmp::Reverse(i.created));
    let source = a
        .format
        .clone()
        .filter(|f| !f.is_empty())
        .unwrap_or_else(|| "table".into());
    if !a.verbose {
        let format = Format(if source == "table" {
            SUMMARY_TABLE.to_string()
        } else {
            source
        });
        return out(&render_rows(
            &format,
            &summary_header(),
            &summary(&df, &images),
        )?);
    }
    let trunc = source.starts_with("table");
    let containers: Vec<Value> = list(&df, "Containers")
        .iter()
        .map(|c| container_row(c, trunc))
        .collect();
    let volumes: Vec<Value> = list(&df, "Volumes").iter().map(volume_row).collect();
    let cache: Vec<Value> = list(&df, "BuildCache")
        .iter()
        .map(|c| cache_row(c, trunc))
        .collect();
    if source != "table" {
        let data = Value::Map(
            Map::new(MapKind::Struct("*formatter.diskUsageContext".into()))
                .with("Images", Value::List(verbose_images(&images, trunc)))
                .with("Containers", Value::List(containers))
                .with("Volumes", Value::List(volumes))
                .with("BuildCache", Value::List(cache)),
        );
        let tmpl = parse_template(&Format(source).template_text())?;
        return out(&render_one(&tmpl, &data)?);
    }
    let mut text = String::from("Images space usage:\n\n");
    text.push_str(&render_rows(
        &Format(IMAGE_TABLE.into()),
        &image_header(),
        &verbose_images(&images, true),
    )?);
    text.push_str("\nContainers space usage:\n\n");
    let container_header = header(
        "*formatter.ContainerContext",
        &[
            ("ID", "CONTAINER ID"),
            ("Image", "IMAGE"),
            ("Command", "COMMAND"),
            ("LocalVolumes", "LOCAL VOLUMES"),
            ("Size", "SIZE"),
            ("RunningFor", "CREATED"),
            ("Status", "STATUS"),
            ("Names", "NAMES"),
        ],
    );
    text.push_str(&render_rows(
        &Format(CONTAINER_TABLE.into()),
        &container_header,
        &containers,
    )?);
    text.push_str("\nLocal Volumes space usage:\n\n");
    let volume_header = header(
        "*formatter.volumeContext",
        &[
            ("Name", "VOLUME NAME"),
            ("Links", "LINKS"),
            ("Size", "SIZE"),
        ],
    );
    text.push_str(&render_rows(
        &Format(VOLUME_TABLE.into()),
        &volume_header,
        &volumes,
    )?);
    let cache_total: i64 = list(&df, "BuildCache").iter().map(|c| int(c, "Size")).sum();
    text.push_str(&format!(
        "\nBuild cache usage: {}\n\n",
        human_size(cache_total as f64)
    ));
    let cache_header = header(
        "*formatter.buildCacheContext",
        &[
            ("ID", "CACHE ID"),
            ("CacheType", "CACHE TYPE"),
            ("Size", "SIZE"),
            ("CreatedSince", "CREATED"),
            ("LastUsedSince", "LAST USED"),
            ("UsageCount", "USAGE"),
            ("Shared", "SHARED"),
        ],
    );
    text.push_str(&render_rows(
        &Format(CACHE_TABLE.into()),
        &cache_header,
        &cache,
    )?);
    out(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_table() {
        let df: Json = serde_json::from_str(
            r#"{"LayersSize":1982277,"Images":[{"Id":"sha256:42c8","ParentId":"","RepoTags":["busybox:latest"],"RepoDigests":[],"Created":1,"Size":1982277,"SharedSize":1982277,"Labels":null,"Containers":0}],"Containers":[],"Volumes":[],"BuildCache":[]}"#,
        )
        .unwrap();
        let images: Vec<ImageSummary> = serde_json::from_value(df["Images"].clone()).unwrap();
        let text = render_rows(
            &Format(SUMMARY_TABLE.into()),
            &summary_header(),
            &summary(&df, &images),
        )
        .unwrap();
        assert_eq!(
            text,
            "TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE\n\
             Images          1         0         1.982MB   1.982MB (100%)\n\
             Containers      0         0         0B        0B\n\
             Local Volumes   0         0         0B        0B\n\
             Build Cache     0         0         0B        0B\n"
        );
        let json = render_rows(
            &Format("json".into()),
            &summary_header(),
            &summary(&df, &images),
        )
        .unwrap();
        assert!(json.starts_with(r#"{"Active":"0","Reclaimable":"1.982MB (100%)","Size":"1.982MB","TotalCount":"1","Type":"Images"}"#), "{json}");
    }
}
