//! `berth volume ls`: docker's volume table, sorted by name in natural order.

use std::cmp::Ordering;
use std::collections::HashMap;

use anyhow::Result;
use bollard::models::Volume;
use bollard::query_parameters::ListVolumesOptions;
use clap::Args as ClapArgs;

use crate::cli::parse_filter;
use crate::commands::image::list::FORMAT_HELP;
use crate::commands::{Ctx, out};
use crate::format::template::{Map, MapKind, Value};
use crate::format::units::human_size;
use crate::format::{Format, render_rows};

#[derive(ClapArgs, Debug)]
pub struct ListArgs {
    /// Provide filter values (e.g. "dangling=true")
    #[arg(short, long, value_name = "filter", value_parser = parse_filter)]
    pub filter: Vec<(String, String)>,
    #[arg(long, value_name = "string", help = FORMAT_HELP)]
    pub format: Option<String>,
    /// Only display volume names
    #[arg(short, long)]
    pub quiet: bool,
}

const DEFAULT_TABLE: &str = "table {{.Driver}}\t{{.Name}}";

/// docker's `NewVolumeFormat`.
pub fn volume_format(source: &str, quiet: bool) -> Format {
    Format(match source {
        "table" if quiet => "{{.Name}}".to_string(),
        "table" => DEFAULT_TABLE.to_string(),
        "raw" if quiet => "name: {{.Name}}".to_string(),
        "raw" => "name: {{.Name}}\\ndriver: {{.Driver}}\\n".to_string(),
        other => other.to_string(),
    })
}

pub async fn run(a: ListArgs, ctx: &Ctx) -> Result<()> {
    let mut filters: HashMap<String, Vec<String>> = HashMap::new();
    for (k, v) in &a.filter {
        filters.entry(k.clone()).or_default().push(v.clone());
    }
    let client = ctx.client().await?;
    let opts = ListVolumesOptions {
        filters: (!filters.is_empty()).then_some(filters),
    };
    let resp = client
        .docker
        .list_volumes(Some(opts))
        .await
        .map_err(|e| client.error(e))?;
    let mut volumes = resp.volumes.unwrap_or_default();
    volumes.sort_by(|x, y| natural_cmp(&x.name, &y.name));
    let source = match &a.format {
        Some(f) if !f.is_empty() => f.clone(),
        _ => match ctx.config().ok().and_then(|c| c.string("volumesFormat")) {
            Some(f) if !a.quiet => f,
            _ => "table".to_string(),
        },
    };
    let format = volume_format(&source, a.quiet);
    let rows: Vec<Value> = volumes.iter().map(volume_context).collect();
    out(&render_rows(&format, &volume_header(), &rows)?)
}

fn context(entries: &[(&str, String)]) -> Value {
    let mut m = Map::new(MapKind::Context("*formatter.volumeContext".into()));
    for (k, v) in entries {
        m.insert(*k, Value::Str(v.clone()));
    }
    Value::Map(m)
}

/// The header row of docker's volume context.
pub fn volume_header() -> Value {
    context(&[
        ("Name", "VOLUME NAME".into()),
        ("Driver", "DRIVER".into()),
        ("Scope", "SCOPE".into()),
        ("Mountpoint", "MOUNTPOINT".into()),
        ("Labels", "LABELS".into()),
        ("Links", "LINKS".into()),
        ("Size", "SIZE".into()),
        ("Availability", "AVAILABILITY".into()),
        ("Group", "GROUP".into()),
        ("Status", "STATUS".into()),
    ])
}

/// One row of docker's volume context. Labels are joined in key order (docker's order is a
/// Go map's, i.e. random).
pub fn volume_context(v: &Volume) -> Value {
    let mut labels: Vec<String> = v.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    labels.sort();
    let (links, size) = match &v.usage_data {
        Some(u) => (
            u.ref_count.to_string(),
            if u.size == -1 {
                "N/A".to_string()
            } else {
                human_size(u.size as f64)
            },
        ),
        None => ("N/A".to_string(), "N/A".to_string()),
    };
    let scope = v
        .scope
        .map(|s| s.to_string())
        .unwrap_or_else(|| "local".into());
    context(&[
        ("Name", v.name.clone()),
        ("Driver", v.driver.clone()),
        ("Scope", scope),
        ("Mountpoint", v.mountpoint.clone()),
        ("Labels", labels.join(",")),
        ("Links", links),
        ("Size", size),
        ("Availability", "N/A".into()),
        ("Group", "N/A".into()),
        ("Status", "N/A".into()),
    ])
}

/// `sortorder.NaturalLess`: runs of digits compare as numbers (fewer leading zeros first on a
/// tie), everything else byte by byte.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let (ca, cb) = (a[i], b[j]);
        if ca.is_ascii_digit() && cb.is_ascii_digit() {
            let si = i;
            while i < a.len() && a[i] == b'0' {
                i += 1;
            }
            let sj = j;
            while j < b.len() && b[j] == b'0' {
                j += 1;
            }
            let di = i;
            while i < a.len() && a[i].is_ascii_digit() {
                i += 1;
            }
            let dj = j;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            let (na, nb) = (&a[di..i], &b[dj..j]);
            let ord = na
                .len()
                .cmp(&nb.len())
                .then_with(|| na.cmp(nb))
                .then_with(|| (di - si).cmp(&(dj - sj)));
            if ord != Ordering::Equal {
                return ord;
            }
        } else {
            if ca != cb {
                return ca.cmp(&cb);
            }
            i += 1;
            j += 1;
        }
    }
    (a.len() - i).cmp(&(b.len() - j))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vol(name: &str) -> Volume {
        Volume {
            name: name.into(),
            driver: "local".into(),
            mountpoint: format!("/var/lib/berth/volumes/{name}/_data"),
            labels: [
                ("b".to_string(), "2".to_string()),
                ("a".to_string(), String::new()),
            ]
            .into_iter()
            .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn natural_order() {
        let mut v = vec!["v10", "v9", "a", "v09", "B", "v1b", "v1a"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(v, ["B", "a", "v1a", "v1b", "v9", "v09", "v10"]);
    }

    #[test]
    fn table_and_json() {
        let rows = vec![volume_context(&vol("data")), volume_context(&vol("x"))];
        let t = render_rows(&volume_format("table", false), &volume_header(), &rows).unwrap();
        assert_eq!(t, "DRIVER    VOLUME NAME\nlocal     data\nlocal     x\n");
        let q = render_rows(&volume_format("table", true), &volume_header(), &rows).unwrap();
        assert_eq!(q, "data\nx\n");
        let j = render_rows(&Format("json".into()), &volume_header(), &rows[..1]).unwrap();
        assert_eq!(
            j,
            "{\"Availability\":\"N/A\",\"Driver\":\"local\",\"Group\":\"N/A\",\"Labels\":\"a=,b=2\",\"Links\":\"N/A\",\"Mountpoint\":\"/var/lib/berth/volumes/data/_data\",\"Name\":\"data\",\"Scope\":\"local\",\"Size\":\"N/A\",\"Status\":\"N/A\"}\n"
        );
    }
}
