//! `berth events`: the daemon's event stream, printed like docker (or through `--format`).

use std::collections::HashMap;

use anyhow::Result;
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone};
use clap::Args as ClapArgs;
use futures::StreamExt;

use crate::cli::parse_filter;
use crate::client::query;
use crate::commands::{Ctx, out};
use crate::errors::CliError;
use crate::format::template::{Template, Value};
use crate::format::time::{local_offset_secs, rfc3339_nano_fixed};
use crate::format::units::parse_go_duration;

#[derive(ClapArgs, Debug)]
pub struct EventsArgs {
    /// Filter output based on conditions provided
    #[arg(short, long, value_name = "filter", value_parser = parse_filter)]
    pub filter: Vec<(String, String)>,
    #[arg(long, value_name = "string", help = crate::commands::inspect::INSPECT_FORMAT_HELP)]
    pub format: Option<String>,
    /// Show all events created since timestamp
    #[arg(long, value_name = "string")]
    pub since: Option<String>,
    /// Stream events until this timestamp
    #[arg(long, value_name = "string")]
    pub until: Option<String>,
}

/// docker's `timetypes.GetTimestamp`: a Go duration before `now`, an RFC 3339 date or time
/// (local when it has no zone), or a unix timestamp passed through.
pub fn get_timestamp(value: &str, now_unix: i64, offset_secs: i32) -> Result<String, String> {
    if value != "0"
        && let Some(nanos) = parse_go_duration(value)
    {
        let secs = (now_unix as i128 * 1_000_000_000 - nanos).div_euclid(1_000_000_000);
        return Ok(secs.to_string());
    }
    let local = !value.contains(['z', 'Z', '+']) && value.matches('-').count() != 3;
    let zone =
        FixedOffset::east_opt(offset_secs).unwrap_or_else(|| FixedOffset::east_opt(0).unwrap());
    let parsed: Option<DateTime<FixedOffset>> = if local {
        let naive = if value.contains('T') {
            let with_secs = match value.matches(':').count() {
                0 => format!("{value}:00:00"),
                1 => format!("{value}:00"),
                _ => value.to_string(),
            };
            NaiveDateTime::parse_from_str(&with_secs, "%Y-%m-%dT%H:%M:%S%.f").ok()
        } else {
            NaiveDate::parse_from_str(value, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        };
        naive.and_then(|n| zone.from_local_datetime(&n).single())
    } else {
        parse_zoned(value)
    };
    if let Some(t) = parsed {
        return Ok(format!(
            "{}.{:09}",
            t.timestamp(),
            t.timestamp_subsec_nanos()
        ));
    }
    if value.contains('-') {
        return Err(format!("parsing time {value:?}: cannot parse as RFC 3339"));
    }
    let (secs, frac) = value.split_once('.').unwrap_or((value, "0"));
    if secs.parse::<i64>().is_ok() && frac.bytes().all(|c| c.is_ascii_digit()) && !frac.is_empty() {
        return Ok(value.to_string());
    }
    Err(format!(
        "failed to parse value as time or duration: {value:?}"
    ))
}

fn parse_zoned(value: &str) -> Option<DateTime<FixedOffset>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Some(t);
    }
    // `2006-01-02T15Z07:00`, `2006-01-02T15:04Z07:00`, `2006-01-02Z07:00`.
    let split = value.rfind(['Z', 'z', '+', '-']).filter(|i| *i >= 10)?;
    let (head, zone) = value.split_at(split);
    let zone = if zone.eq_ignore_ascii_case("z") {
        "+00:00"
    } else {
        zone
    };
    let full = match (head.contains('T'), head.matches(':').count()) {
        (false, _) => format!("{head}T00:00:00{zone}"),
        (true, 0) => format!("{head}:00:00{zone}"),
        (true, 1) => format!("{head}:00{zone}"),
        _ => format!("{head}{zone}"),
    };
    DateTime::parse_from_rfc3339(&full).ok()
}

/// docker's default line: `<time> <type> <action> <id> (k=v, …)`.
pub fn default_line(ev: &Value) -> String {
    let mut line = String::new();
    let time_nano = ev.get("timeNano").and_then(Value::as_i64).unwrap_or(0);
    let time = ev.get("time").and_then(Value::as_i64).unwrap_or(0);
    if time_nano != 0 {
        line.push_str(&rfc3339_nano_fixed(time_nano as i128));
        line.push(' ');
    } else if time != 0 {
        line.push_str(&rfc3339_nano_fixed(time as i128 * 1_000_000_000));
        line.push(' ');
    }
    let actor = ev.get("Actor");
    let id = actor.map(|a| a.str_at("ID")).unwrap_or("");
    line.push_str(&format!(
        "{} {} {id}",
        ev.str_at("Type"),
        ev.str_at("Action")
    ));
    if let Some(Value::Map(attrs)) = actor.and_then(|a| a.get("Attributes"))
        && !attrs.entries.is_empty()
    {
        let parts: Vec<String> = attrs
            .sorted()
            .iter()
            .map(|(k, v)| format!("{k}={}", v.print()))
            .collect();
        line.push_str(&format!(" ({})", parts.join(", ")));
    }
    line.push('\n');
    line
}

pub async fn run(a: EventsArgs, ctx: &Ctx) -> Result<()> {
    let tmpl = match a.format.as_deref().filter(|f| !f.is_empty()) {
        None => None,
        Some(f) => {
            let text = if f == "json" { "{{json .}}" } else { f };
            Some(
                Template::parse(text)
                    .map_err(|e| CliError::new(64, format!("Error parsing format: {e}")))?,
            )
        }
    };
    let now = chrono::Utc::now().timestamp();
    let offset = local_offset_secs();
    let mut params: Vec<(&str, String)> = Vec::new();
    for (key, value) in [("since", &a.since), ("until", &a.until)] {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            params.push((key, get_timestamp(v, now, offset).map_err(CliError::msg)?));
        }
    }
    if !a.filter.is_empty() {
        let mut filters: HashMap<&str, Vec<&str>> = HashMap::new();
        for (k, v) in &a.filter {
            filters.entry(k).or_default().push(v);
        }
        params.push(("filters", serde_json::to_string(&filters)?));
    }
    let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let client = ctx.client().await?;
    let mut stream = client
        .get_stream(&format!("/events{}", query(&pairs)))
        .await?;
    while let Some(item) = stream.next().await {
        let raw = item?;
        let ev = Value::from_json(&raw).map_err(|e| CliError::msg(e.to_string()))?;
        match &tmpl {
            None => out(&default_line(&ev))?,
            Some(t) => {
                let text = t.execute(&ev).map_err(|e| CliError::msg(e.to_string()))?;
                out(&format!("{text}\n"))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_411_296;

    #[test]
    fn timestamps_like_docker() {
        assert_eq!(
            get_timestamp("10m", NOW, 0).unwrap(),
            (NOW - 600).to_string()
        );
        assert_eq!(
            get_timestamp("1h30m", NOW, 0).unwrap(),
            (NOW - 5400).to_string()
        );
        assert_eq!(get_timestamp("1795411296", NOW, 0).unwrap(), "1795411296");
        assert_eq!(
            get_timestamp("1795411296.5", NOW, 0).unwrap(),
            "1795411296.5"
        );
        assert_eq!(get_timestamp("0", NOW, 0).unwrap(), "0");
        assert_eq!(
            get_timestamp("2026-11-23T05:21:35Z", NOW, 0).unwrap(),
            "1795411295.000000000"
        );
        assert_eq!(
            get_timestamp("2026-11-23T05:21:35.5+01:00", NOW, 0).unwrap(),
            "1795407695.500000000"
        );
        assert_eq!(
            get_timestamp("2026-11-23", NOW, 0).unwrap(),
            "1795392000.000000000"
        );
        assert_eq!(
            get_timestamp("2026-11-23", NOW, 3600).unwrap(),
            "1795388400.000000000"
        );
        assert_eq!(
            get_timestamp("2026-11-23T05", NOW, 0).unwrap(),
            "1795410000.000000000"
        );
        assert_eq!(
            get_timestamp("2026-11-23T05:21", NOW, 0).unwrap(),
            "1795411260.000000000"
        );
        assert!(get_timestamp("2026-13-45", NOW, 0).is_err());
        assert_eq!(
            get_timestamp("tomorrow", NOW, 0).unwrap_err(),
            "failed to parse value as time or duration: \"tomorrow\""
        );
    }

    #[test]
    fn event_lines() {
        let ev = Value::from_json(
            r#"{"status":"tag","id":"sha256:76b8","Type":"image","Action":"tag","Actor":{"ID":"sha256:76b8","Attributes":{"name":"busybox:latest","a":"b"}},"scope":"local","time":1795411295,"timeNano":1795411295871732703}"#,
        )
        .unwrap();
        let line = default_line(&ev);
        assert!(
            line.ends_with(".871732703Z image tag sha256:76b8 (a=b, name=busybox:latest)\n")
                || line.contains(" image tag sha256:76b8 (a=b, name=busybox:latest)\n"),
            "{line}"
        );
        let t = Template::parse(
            "{{.Type}} {{.Action}} {{.Actor.Attributes.name}} {{.Time}} {{.Scope}}",
        )
        .unwrap();
        assert_eq!(
            t.execute(&ev).unwrap(),
            "image tag busybox:latest 1795411295 local"
        );
    }
}
