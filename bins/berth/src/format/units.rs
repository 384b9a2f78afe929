//! Docker's unit formatting (go-units and Go's `fmt`/`time` output), byte for byte.

use std::time::Duration;

const DECIMAL: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
const BINARY: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];

/// go-units `HumanSizeWithPrecision`: SI units, `precision` significant digits (`1.23MB`).
pub fn human_size_precision(size: f64, precision: usize) -> String {
    let (size, unit) = size_and_unit(size, 1000.0, &DECIMAL);
    format!("{}{}", format_g(size, precision), unit)
}

/// go-units `HumanSize`: SI units, 4 significant digits (`1.982MB`).
pub fn human_size(size: f64) -> String {
    human_size_precision(size, 4)
}

/// go-units `BytesSize`: binary units, 4 significant digits (`23.54GiB`).
pub fn bytes_size(size: f64) -> String {
    let (size, unit) = size_and_unit(size, 1024.0, &BINARY);
    format!("{}{}", format_g(size, 4), unit)
}

fn size_and_unit(mut size: f64, base: f64, units: &[&'static str]) -> (f64, &'static str) {
    let mut i = 0;
    while size >= base && i < units.len() - 1 {
        size /= base;
        i += 1;
    }
    (size, units[i])
}

/// Go's `%.<precision>g`: `precision` significant digits, no trailing zeros, and an exponent
/// (`1e+03`) when the exponent is below -4 or at least the precision.
pub fn format_g(v: f64, precision: usize) -> String {
    if v == 0.0 {
        return "0".to_string();
    }
    if !v.is_finite() {
        return if v.is_nan() {
            "NaN".to_string()
        } else if v > 0.0 {
            "+Inf".to_string()
        } else {
            "-Inf".to_string()
        };
    }
    let precision = precision.max(1);
    let sci = format!("{:.*e}", precision - 1, v);
    render_g(&sci, precision as i32)
}

/// Go's `%v` for a float64 (shortest representation; an exponent from 1e+06 on).
pub fn format_float(v: f64) -> String {
    if v == 0.0 {
        return "0".to_string();
    }
    if !v.is_finite() {
        return format_g(v, 1);
    }
    render_g(&format!("{v:e}"), 6)
}

/// Renders Rust's `d.ddde±x` output the way Go's `%g` does.
fn render_g(sci: &str, eprec: i32) -> String {
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let mut digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    while digits.len() > 1 && digits.ends_with('0') {
        digits.pop();
    }
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    if exp < -4 || exp >= eprec {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", exp.abs()));
    } else if exp >= 0 {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            out.push_str(&digits);
            out.push_str(&"0".repeat(int_len - digits.len()));
        } else {
            out.push_str(&digits[..int_len]);
            out.push('.');
            out.push_str(&digits[int_len..]);
        }
    } else {
        out.push_str("0.");
        out.push_str(&"0".repeat((-exp - 1) as usize));
        out.push_str(&digits);
    }
    out
}

pub use berth_api::units::human_duration;

/// `HumanDuration(now - then) + " ago"` for a unix timestamp, as docker's `CreatedSince`.
pub fn since(unix: i64) -> String {
    let now = chrono::Utc::now().timestamp_millis();
    let diff_ms = now - unix.saturating_mul(1000);
    let d = Duration::from_millis(diff_ms.max(0) as u64);
    format!("{} ago", human_duration(d))
}

/// Go's `time.Duration.String()` for whole seconds: `1h2m3s`, `4m0s`, `5s`, `0s`.
pub fn go_duration_string(d: Duration) -> String {
    let total = d.as_secs();
    let (h, m, s) = (total / 3600, (total / 60) % 60, total % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

/// Go's `time.ParseDuration`: `300ms`, `-1.5h`, `2h45m`. Returns nanoseconds.
pub fn parse_go_duration(s: &str) -> Option<i128> {
    let (negative, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let number: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += number * scale;
    }
    let nanos = total.round() as i128;
    Some(if negative { -nanos } else { nanos })
}

/// `stringid.TruncateID`: drops the algorithm prefix and keeps 12 characters.
pub fn truncate_id(id: &str) -> String {
    let id = id.split_once(':').map_or(id, |(_, hex)| hex);
    id.chars().take(12).collect()
}

/// docker's `formatter.Ellipsis` for plain text: at most `max` characters, the last one `…`.
pub fn ellipsis(s: &str, max: usize) -> String {
    let count = s.chars().count();
    if max == 0 {
        return String::new();
    }
    if count <= max {
        return s.to_string();
    }
    if max == 1 {
        return s.chars().take(1).collect();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes_match_go_units() {
        assert_eq!(human_size_precision(0.0, 3), "0B");
        assert_eq!(human_size_precision(1982277.0, 3), "1.98MB");
        assert_eq!(human_size(1982277.0), "1.982MB");
        assert_eq!(human_size_precision(4100.0, 3), "4.1kB");
        assert_eq!(human_size_precision(123_000_000.0, 3), "123MB");
        assert_eq!(human_size_precision(999.0, 3), "999B");
        assert_eq!(human_size_precision(999_500.0, 3), "1e+03kB");
        assert_eq!(human_size_precision(1000.0, 3), "1kB");
        assert_eq!(human_size_precision(7_800_000.0, 3), "7.8MB");
        assert_eq!(human_size(1_234_567.0), "1.235MB");
        assert_eq!(bytes_size(25_275_000_000.0), "23.54GiB");
        assert_eq!(bytes_size(512.0), "512B");
    }

    #[test]
    fn go_g_formatting() {
        assert_eq!(format_g(0.000012345, 3), "1.23e-05");
        assert_eq!(format_g(0.00012345, 3), "0.000123");
        assert_eq!(format_g(-2.5, 3), "-2.5");
        assert_eq!(format_g(100.0, 3), "100");
        assert_eq!(format_float(1_000_000.0), "1e+06");
        assert_eq!(format_float(1.5), "1.5");
        assert_eq!(format_float(123456.0), "123456");
    }

    #[test]
    fn human_durations_match_go_units() {
        let s = Duration::from_secs;
        assert_eq!(
            human_duration(Duration::from_millis(400)),
            "Less than a second"
        );
        assert_eq!(human_duration(s(1)), "1 second");
        assert_eq!(human_duration(s(59)), "59 seconds");
        assert_eq!(human_duration(s(60)), "About a minute");
        assert_eq!(human_duration(s(119)), "About a minute");
        assert_eq!(human_duration(s(120)), "2 minutes");
        assert_eq!(human_duration(s(3599)), "59 minutes");
        assert_eq!(human_duration(s(3600)), "About an hour");
        assert_eq!(human_duration(s(2 * 3600)), "2 hours");
        assert_eq!(human_duration(s(47 * 3600)), "47 hours");
        assert_eq!(human_duration(s(48 * 3600)), "2 days");
        assert_eq!(human_duration(s(14 * 24 * 3600)), "2 weeks");
        assert_eq!(human_duration(s(60 * 24 * 3600)), "2 months");
        assert_eq!(human_duration(s(3 * 365 * 24 * 3600)), "3 years");
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("10m"), Some(600_000_000_000));
        assert_eq!(parse_go_duration("1h30m"), Some(5_400_000_000_000));
        assert_eq!(parse_go_duration("1.5s"), Some(1_500_000_000));
        assert_eq!(parse_go_duration("-2s"), Some(-2_000_000_000));
        assert_eq!(parse_go_duration("0"), Some(0));
        assert_eq!(parse_go_duration("10"), None);
        assert_eq!(parse_go_duration("2023-01-01"), None);
        assert_eq!(go_duration_string(Duration::from_secs(3723)), "1h2m3s");
        assert_eq!(go_duration_string(Duration::from_secs(240)), "4m0s");
        assert_eq!(go_duration_string(Duration::from_secs(0)), "0s");
    }

    #[test]
    fn ids_and_ellipsis() {
        assert_eq!(truncate_id("sha256:76b8ecf5aa0a271d6c1d"), "76b8ecf5aa0a");
        assert_eq!(truncate_id("<missing>"), "<missing>");
        assert_eq!(ellipsis("abcdef", 4), "abc…");
        assert_eq!(ellipsis("abc", 4), "abc");
    }
}
