//! Docker's unit formatting (go-units): SI sizes with a given number of significant digits,
//! and human durations.

use std::time::Duration;

const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];

/// Like go-units `HumanSizeWithPrecision`: `1.23MB`, `123MB`, `0B`.
pub fn human_size_precision(size: f64, precision: usize) -> String {
    let mut size = size;
    let mut i = 0;
    while size >= 1000.0 && i < UNITS.len() - 1 {
        size /= 1000.0;
        i += 1;
    }
    format!("{}{}", format_g(size, precision), UNITS[i])
}

/// Like go-units `HumanSize` (4 significant digits), used in progress bars.
pub fn human_size(size: u64) -> String {
    human_size_precision(size as f64, 4)
}

/// Go's `%.Ng`: N significant digits, trailing zeros removed, no exponent for our range.
fn format_g(v: f64, precision: usize) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let magnitude = v.abs().log10().floor() as i32;
    let decimals = (precision as i32 - 1 - magnitude).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// go-units `HumanDuration`: "Less than a second", "About a minute", "3 hours", "2 weeks"…
pub fn human_duration(d: Duration) -> String {
    let seconds = d.as_secs();
    if seconds < 1 {
        return "Less than a second".to_string();
    }
    if seconds == 1 {
        return "1 second".to_string();
    }
    if seconds < 60 {
        return format!("{seconds} seconds");
    }
    let minutes = seconds / 60;
    if minutes == 1 {
        return "About a minute".to_string();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    let hours = (d.as_secs_f64() / 3600.0).round() as u64;
    if hours == 1 {
        return "About an hour".to_string();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", seconds / 3600 / 24 / 365)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_docker() {
        assert_eq!(human_size_precision(0.0, 3), "0B");
        assert_eq!(human_size_precision(999.0, 3), "999B");
        assert_eq!(human_size_precision(1000.0, 3), "1kB");
        assert_eq!(human_size_precision(4096.0, 3), "4.1kB");
        assert_eq!(human_size_precision(1_234_567.0, 3), "1.23MB");
        assert_eq!(human_size_precision(123_456_789.0, 3), "123MB");
        assert_eq!(human_size_precision(13_256.0, 3), "13.3kB");
        assert_eq!(human_size(5_123_456), "5.123MB");
        assert_eq!(human_size(1_500), "1.5kB");
    }
}
