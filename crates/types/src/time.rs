//! Calendar dates from Unix seconds, in UTC: the engine's messages, the CLI's state listings and
//! moss-gui's history show them without a time-zone database.

/// Days since 1970-01-01 to a proleptic Gregorian `(year, month, day)` (Howard Hinnant's
/// `civil_from_days`).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn format_utc(seconds: i64) -> String {
    let (date, time) = split(seconds);
    format!("{date} {time}:{:02} UTC", seconds.rem_euclid(60))
}

/// Unix seconds as `YYYY-MM-DD HH:MM UTC` (moss-gui's history and last check).
pub fn format_utc_minutes(seconds: i64) -> String {
    let (date, time) = split(seconds);
    format!("{date} {time} UTC")
}

/// `(YYYY-MM-DD, HH:MM)` of Unix seconds.
fn split(seconds: i64) -> (String, String) {
    let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
    let time = seconds.rem_euclid(86_400);
    (
        format!("{year:04}-{month:02}-{day:02}"),
        format!("{:02}:{:02}", time / 3_600, time / 60 % 60),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_across_eras_and_leap_days() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(format_utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_utc(1_795_807_898), "2026-11-27 19:31:38 UTC");
    }
}
