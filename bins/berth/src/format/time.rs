//! Go time layouts docker prints, in the local time zone.

use chrono::{DateTime, FixedOffset, Local, Offset, TimeZone, Utc};

fn local(secs: i64, nanos: u32) -> DateTime<FixedOffset> {
    let utc = Utc
        .timestamp_opt(secs, nanos)
        .single()
        .unwrap_or_else(|| Utc.timestamp_opt(0, 0).unwrap());
    let offset = Local.offset_from_utc_datetime(&utc.naive_utc()).fix();
    utc.with_timezone(&offset)
}

/// The zone abbreviation Go prints for `MST`: `UTC` for a zero offset, else `+hhmm`.
fn zone_name(offset: &FixedOffset) -> String {
    let secs = offset.local_minus_utc();
    if secs == 0 {
        return "UTC".to_string();
    }
    let sign = if secs < 0 { '-' } else { '+' };
    let secs = secs.abs();
    format!("{sign}{:02}{:02}", secs / 3600, (secs / 60) % 60)
}

fn numeric_zone(offset: &FixedOffset) -> String {
    let secs = offset.local_minus_utc();
    let sign = if secs < 0 { '-' } else { '+' };
    let secs = secs.abs();
    format!("{sign}{:02}{:02}", secs / 3600, (secs / 60) % 60)
}

fn rfc3339_zone(offset: &FixedOffset) -> String {
    let secs = offset.local_minus_utc();
    if secs == 0 {
        return "Z".to_string();
    }
    let sign = if secs < 0 { '-' } else { '+' };
    let secs = secs.abs();
    format!("{sign}{:02}:{:02}", secs / 3600, (secs / 60) % 60)
}

/// Go's `time.Unix(secs, 0).String()`: `2026-11-23 05:21:36 +0000 UTC`.
pub fn go_time_string(secs: i64) -> String {
    let t = local(secs, 0);
    format!(
        "{} {} {}",
        t.format("%Y-%m-%d %H:%M:%S"),
        numeric_zone(t.offset()),
        zone_name(t.offset())
    )
}

/// `time.RFC3339` in the local zone: `2026-11-23T05:21:35Z`.
pub fn rfc3339(secs: i64) -> String {
    let t = local(secs, 0);
    format!(
        "{}{}",
        t.format("%Y-%m-%dT%H:%M:%S"),
        rfc3339_zone(t.offset())
    )
}

/// jsonmessage's `RFC3339NanoFixed`: `2026-11-23T05:21:35.871732703Z`.
pub fn rfc3339_nano_fixed(nanos: i128) -> String {
    let secs = nanos.div_euclid(1_000_000_000) as i64;
    let frac = nanos.rem_euclid(1_000_000_000) as u32;
    let t = local(secs, frac);
    format!(
        "{}.{:09}{}",
        t.format("%Y-%m-%dT%H:%M:%S"),
        frac,
        rfc3339_zone(t.offset())
    )
}

/// Go's `time.ANSIC` of an RFC 3339 timestamp (as `docker version` shows build times); the
/// input unchanged when it does not parse.
pub fn reformat_ansic(value: &str) -> String {
    match DateTime::parse_from_rfc3339(value) {
        Ok(t) => t.format("%a %b %e %H:%M:%S %Y").to_string(),
        Err(_) => value.to_string(),
    }
}

/// The local zone's offset from UTC in seconds, now.
pub fn local_offset_secs() -> i32 {
    Local::now().offset().local_minus_utc()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ansic_pads_the_day_with_a_space() {
        assert_eq!(
            reformat_ansic("2026-05-07T21:09:36.000000000+00:00"),
            "Thu May  7 21:09:36 2026"
        );
        assert_eq!(reformat_ansic("not a date"), "not a date");
    }

    #[test]
    fn zone_names() {
        let utc = FixedOffset::east_opt(0).unwrap();
        assert_eq!(zone_name(&utc), "UTC");
        assert_eq!(rfc3339_zone(&utc), "Z");
        let ist = FixedOffset::east_opt(5 * 3600 + 1800).unwrap();
        assert_eq!(numeric_zone(&ist), "+0530");
        assert_eq!(rfc3339_zone(&ist), "+05:30");
    }
}
