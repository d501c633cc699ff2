//! When a log line was written, read from the line itself: every format the
//! doctor reads puts its time near the start (Synapse and mautrix-python
//! `2026-12-03 09:00:01,234`, mautrix-go and zerolog RFC 3339, journald and
//! Docker lines as the doctor renders them, the older mautrix-go
//! `[Feb 14, 2022 09:18:40]`, a pasted syslog prefix `Jun 13 13:58:04`).
//! Times without a zone are the machine's local time, which is what a
//! program on it writes (a container's may differ; that error is the zone's
//! offset, never a reordering of one log's lines).

use std::sync::OnceLock;

use chrono::{Datelike, NaiveDate, NaiveDateTime, TimeZone};
use regex::Regex;

/// How far into a line a time is looked for: prefixes (a syslog header, a
/// compose service name, a JSON key or two) come before it, never a page.
const SEARCH_SPAN: usize = 160;

/// The line's time in Unix milliseconds, when it carries one.
pub fn line_time(line: &str) -> Option<i64> {
    let mut end = line.len().min(SEARCH_SPAN);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    let head = &line[..end];
    iso(head).or_else(|| month_name(head))
}

/// `2026-12-03 09:00:01,234`, `2026-12-03T09:00:01.234567Z`, `…+01:00`.
fn iso(head: &str) -> Option<i64> {
    static ISO: OnceLock<Regex> = OnceLock::new();
    let pattern = ISO.get_or_init(|| {
        Regex::new(
            r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d{1,9}))?(Z|[+-]\d{2}:?\d{2})?",
        )
        .expect("a valid regex")
    });
    let found = pattern.captures(head)?;
    let number = |n: usize| found.get(n).and_then(|m| m.as_str().parse::<u32>().ok());
    let date = NaiveDate::from_ymd_opt(number(1)? as i32, number(2)?, number(3)?)?;
    let millis = found.get(7).map_or(0, |m| {
        let digits = format!("{:0<3}", m.as_str());
        digits[..3].parse::<u32>().unwrap_or(0)
    });
    let naive = date.and_hms_milli_opt(number(4)?, number(5)?, number(6)?, millis)?;
    match found.get(8).map(|m| m.as_str()) {
        None => local(naive),
        Some("Z") => Some(naive.and_utc().timestamp_millis()),
        Some(offset) => {
            let digits: String = offset.chars().filter(char::is_ascii_digit).collect();
            let minutes =
                digits[..2].parse::<i64>().ok()? * 60 + digits[2..].parse::<i64>().ok()?;
            let sign = if offset.starts_with('-') { -1 } else { 1 };
            Some(naive.and_utc().timestamp_millis() - sign * minutes * 60_000)
        }
    }
}

/// `Feb 14, 2022 09:18:40` (older mautrix-go) and `Jun 13 13:58:04` (a
/// syslog or journalctl prefix, whose year is the latest that is not in
/// the future).
fn month_name(head: &str) -> Option<i64> {
    static MONTH: OnceLock<Regex> = OnceLock::new();
    let pattern = MONTH.get_or_init(|| {
        Regex::new(
            r"\b(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +(\d{1,2})(?:, (\d{4}))? (\d{2}):(\d{2}):(\d{2})\b",
        )
        .expect("a valid regex")
    });
    let found = pattern.captures(head)?;
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == &found[1])? as u32
        + 1;
    let number = |n: usize| found.get(n).and_then(|m| m.as_str().parse::<u32>().ok());
    let at = |year: i32| {
        NaiveDate::from_ymd_opt(year, month, number(2)?)?.and_hms_opt(
            number(4)?,
            number(5)?,
            number(6)?,
        )
    };
    match number(3) {
        Some(year) => local(at(year as i32)?),
        None => {
            let now = chrono::Local::now();
            let this_year = local(at(now.year())?)?;
            if this_year <= now.timestamp_millis() {
                Some(this_year)
            } else {
                local(at(now.year() - 1)?)
            }
        }
    }
}

/// A time without a zone, read as the machine's local time.
fn local(naive: NaiveDateTime) -> Option<i64> {
    chrono::Local
        .from_local_datetime(&naive)
        .earliest()
        .map(|time| time.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(text)
            .unwrap()
            .timestamp_millis()
    }

    #[test]
    fn times_in_every_format_the_doctor_reads() {
        let zoned = [
            (
                r#"{"level":"error","time":"2026-12-03T09:00:01.234567Z","message":"x"}"#,
                "2026-12-03T09:00:01.234Z",
            ),
            ("2026-12-03T09:00:01Z ERR failed", "2026-12-03T09:00:01Z"),
            (
                "2026-12-03T10:00:01.5+01:00 something",
                "2026-12-03T09:00:01.500Z",
            ),
            (
                "synapse-1  | 2026-12-03T09:00:01.000-0230 x",
                "2026-12-03T11:30:01Z",
            ),
        ];
        for (line, expected) in zoned {
            assert_eq!(line_time(line), Some(utc(expected)), "{line}");
        }
        let naive = [
            (
                "2026-12-03 09:00:01,234 - synapse.appservice.api - 1 - WARNING - x",
                (2026, 12, 3, 9, 0, 1, 234),
            ),
            (
                "[2026-12-03 09:00:01,234] [ERROR@mau.as] x",
                (2026, 12, 3, 9, 0, 1, 234),
            ),
            (
                "[Feb 14, 2022 09:18:40] [FATAL] Failed to connect",
                (2022, 2, 14, 9, 18, 40, 0),
            ),
        ];
        for (line, (y, mo, d, h, mi, s, ms)) in naive {
            let expected = NaiveDate::from_ymd_opt(y, mo, d)
                .unwrap()
                .and_hms_milli_opt(h, mi, s, ms)
                .unwrap();
            assert_eq!(line_time(line), local(expected), "{line}");
        }
    }

    #[test]
    fn a_syslog_prefix_without_a_year_is_never_in_the_future() {
        let time = line_time("Jun 13 13:58:04 host mautrix-telegram[123]: x").unwrap();
        let now = chrono::Local::now().timestamp_millis();
        assert!(time <= now && now - time < 366 * 24 * 3600 * 1000);
    }

    #[test]
    fn lines_without_a_time_have_none() {
        for line in [
            "",
            "    at Object.<anonymous> (/app/index.js:1:1)",
            "errcode: 'M_UNKNOWN_TOKEN',",
            "2026-13-45 99:99:99 not a date",
            &format!("{}2026-12-03 09:00:01 too far in", "x".repeat(200)),
        ] {
            assert_eq!(line_time(line), None, "{line}");
        }
    }
}
