//! Numbers, sizes, durations and dates as people read them.

use crate::view::fill;

/// A byte count in SI units ("1.5 MB"), as GNOME shows sizes.
pub fn bytes(count: u64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if count < 1000 {
        return fill("{} bytes", &[&count.to_string()]);
    }
    let mut value = count as f64 / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Time left, rounded the way a person would say it.
pub fn time_left(seconds: u64) -> String {
    match seconds {
        0..=4 => fill("a few seconds left", &[]),
        5..=59 => fill("about {} s left", &[&seconds.to_string()]),
        60..=3599 => fill("about {} min left", &[&seconds.div_ceil(60).to_string()]),
        _ => fill("about {} h left", &[&seconds.div_ceil(3600).to_string()]),
    }
}

/// UTC seconds as `YYYY-MM-DD HH:MM UTC`. The daemon reports UTC and the window does not need a
/// time-zone database to show it unambiguously.
pub fn date(utc_seconds: i64) -> String {
    moss_types::time::format_utc_minutes(utc_seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_use_si_units() {
        assert_eq!(bytes(512), "512 bytes");
        assert_eq!(bytes(1_500), "1.5 kB");
        assert_eq!(bytes(3_200_000), "3.2 MB");
        assert_eq!(bytes(7_000_000_000), "7.0 GB");
    }

    #[test]
    fn durations_round_up() {
        assert_eq!(time_left(2), "a few seconds left");
        assert_eq!(time_left(42), "about 42 s left");
        assert_eq!(time_left(61), "about 2 min left");
        assert_eq!(time_left(7200), "about 2 h left");
    }

    #[test]
    fn dates_are_utc() {
        assert_eq!(date(0), "1970-01-01 00:00 UTC");
        assert_eq!(date(1_796_609_602), "2026-12-07 02:13 UTC");
        assert_eq!(date(951_782_400), "2000-02-29 00:00 UTC");
    }
}
