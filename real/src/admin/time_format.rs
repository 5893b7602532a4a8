//! RocketMQ's time formats (`UtilAll`), in UTC: the tool carries no time-zone
//! database, and UTC reads the same on every machine.

/// (year, month, day, hour, minute, second, millisecond) of `ms` since the epoch, UTC.
fn civil(ms: i64) -> (i64, u32, u32, u32, u32, u32, u32) {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    // Days to a proleptic Gregorian date, counting eras of 400 years from 0000-03-01.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (
        year,
        month,
        day,
        (in_day / 3_600_000) as u32,
        (in_day / 60_000 % 60) as u32,
        (in_day / 1_000 % 60) as u32,
        (in_day % 1_000) as u32,
    )
}

/// `timeMillisToHumanString2`: `yyyy-MM-dd HH:mm:ss,SSS`.
pub fn human_millis(ms: i64) -> String {
    let (y, mo, d, h, mi, s, milli) = civil(ms);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02},{milli:03}")
}

/// `YYYY_MM_DD_HH_MM_SS`: `yyyy-MM-dd HH:mm:ss`.
pub fn human_seconds(ms: i64) -> String {
    let (y, mo, d, h, mi, s, _) = civil(ms);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
}

/// Days from 1970-01-01 to a proleptic Gregorian date (the inverse of `civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = year - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month_from_march = i64::from((month + 9) % 12);
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// `YYYY_MM_DD_HH_MM_SS_SSS` (`yyyy-MM-dd#HH:mm:ss:SSS`, as resetOffsetByTime takes
/// it), read as UTC; None unless every field is there and in range.
pub fn parse_millis(text: &str) -> Option<i64> {
    let (date, time) = text.split_once('#')?;
    let date: Vec<&str> = date.split('-').collect();
    let time: Vec<&str> = time.split(':').collect();
    let ([y, mo, d], [h, mi, s, ms]) = (date.as_slice(), time.as_slice()) else {
        return None;
    };
    let num = |f: &str, max: u32| f.parse::<u32>().ok().filter(|v| *v <= max);
    let (year, month, day) = (y.parse::<i64>().ok()?, num(mo, 12)?, num(d, 31)?);
    let (hour, minute, second, milli) = (num(h, 23)?, num(mi, 59)?, num(s, 59)?, num(ms, 999)?);
    if month == 0 || day == 0 {
        return None;
    }
    let ms = days_from_civil(year, month, day) * 86_400_000
        + i64::from(hour) * 3_600_000
        + i64::from(minute) * 60_000
        + i64::from(second) * 1_000
        + i64::from(milli);
    // A day past the month's end (Feb 30) would roll over: refuse it.
    (civil(ms).2 == day).then_some(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_match_known_instants() {
        assert_eq!(human_millis(0), "1970-01-01 00:00:00,000");
        assert_eq!(human_millis(1_700_000_000_123), "2023-11-14 22:13:20,123");
        // A leap day, and the last millisecond of a century's leap year.
        assert_eq!(human_seconds(951_782_400_000), "2000-02-29 00:00:00");
        assert_eq!(human_millis(978_307_199_999), "2000-12-31 23:59:59,999");
        assert_eq!(human_seconds(-1_000), "1969-12-31 23:59:59");
        assert_eq!(
            parse_millis("2023-11-14#22:13:20:123"),
            Some(1_700_000_000_123)
        );
        assert_eq!(
            parse_millis("2000-02-29#00:00:00:000"),
            Some(951_782_400_000)
        );
        for bad in [
            "2023-11-14 22:13:20",
            "2023-02-30#00:00:00:000",
            "2023-13-01#00:00:00:000",
            "x",
        ] {
            assert_eq!(parse_millis(bad), None, "{bad}");
        }
    }
}
