//! Below every stage: what input, facts, knowledge, checks, render and the
//! layers on top may all use without depending on each other.

pub mod private;
pub mod redact;

/// The upstream bridge troubleshooting FAQ the fixes are based on; check
/// verdicts and knowledge-base entries name its sections by anchor.
pub const FAQ: &str = "https://docs.mau.fi/bridges/general/troubleshooting.html";

/// A Unix time as RFC 3339 in UTC ("2026-11-23T16:40:00Z"), empty when out
/// of range.
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// The present, in Unix milliseconds.
pub fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}
