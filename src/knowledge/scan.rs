//! Recognising knowledge-base symptoms in log text, streaming.
//!
//! Speed comes from never looking at most lines: one Aho-Corasick automaton
//! over every symptom's literal runs on whole chunks of the file, and only
//! the lines around its hits are cut out, decoded (zerolog JSON) and checked
//! against their regexes. Memory is one chunk plus the kept lines.

use std::collections::VecDeque;
use std::io::Read;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use memchr::{memchr, memmem, memrchr};
use regex::Regex;
use serde::Serialize;

use crate::knowledge::timestamps::line_time;
use crate::knowledge::{self, Entry};

const CHUNK: usize = 1 << 20;
/// Lines longer than this are cut; a log line that long is not one we explain.
const MAX_LINE: usize = 64 * 1024;
/// Matching lines kept per entry: the first few and the most recent few.
const KEEP_FIRST: usize = 5;
const KEEP_LAST: usize = 5;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MatchedLine {
    pub file: String,
    pub number: u64,
    /// Redacted.
    pub text: String,
    /// When it was written: its own time, else that of the nearest line
    /// before it that has one (a traceback's lines inherit its header's).
    #[serde(
        rename = "at",
        skip_serializing_if = "Option::is_none",
        serialize_with = "as_rfc3339"
    )]
    pub time_ms: Option<i64>,
}

fn as_rfc3339<S: serde::Serializer>(time_ms: &Option<i64>, out: S) -> Result<S::Ok, S::Error> {
    match time_ms {
        Some(ms) => out.serialize_str(&crate::shared::rfc3339(ms.div_euclid(1000))),
        None => out.serialize_none(),
    }
}

/// What one entry matched, across every file scanned.
#[derive(Clone, Debug)]
pub struct EntryHits {
    pub entry: &'static Entry,
    pub count: u64,
    first: Vec<MatchedLine>,
    last: VecDeque<MatchedLine>,
    /// The times of the earliest and the latest matching line that had one,
    /// over every match (not only the lines kept).
    pub earliest_ms: Option<i64>,
    pub latest_ms: Option<i64>,
}

impl EntryHits {
    fn new(entry: &'static Entry) -> EntryHits {
        EntryHits {
            entry,
            count: 0,
            first: Vec::new(),
            last: VecDeque::new(),
            earliest_ms: None,
            latest_ms: None,
        }
    }

    pub fn lines(&self) -> Vec<MatchedLine> {
        self.first.iter().chain(self.last.iter()).cloned().collect()
    }

    fn push(&mut self, line: MatchedLine) {
        if let Some(time) = line.time_ms {
            self.earliest_ms = Some(self.earliest_ms.map_or(time, |t| t.min(time)));
            self.latest_ms = Some(self.latest_ms.map_or(time, |t| t.max(time)));
        }
        self.count += 1;
        if self.first.len() < KEEP_FIRST {
            self.first.push(line);
        } else {
            if self.last.len() == KEEP_LAST {
                self.last.pop_front();
            }
            self.last.push_back(line);
        }
    }
}

/// The result of scanning one or more files.
#[derive(Debug, Default)]
pub struct Scan {
    hits: Vec<Option<EntryHits>>,
    /// Files in which no debug-level line was seen.
    pub files_without_debug: Vec<String>,
}

impl Scan {
    /// Problems that matched, in knowledge-base order.
    pub fn matched(&self) -> impl Iterator<Item = &EntryHits> {
        self.all().filter(|hits| !hits.entry.is_health())
    }

    /// Every entry that matched, proofs of health too.
    pub fn all(&self) -> impl Iterator<Item = &EntryHits> {
        self.hits.iter().flatten()
    }

    /// Only the hits whose lines mention one of `needles` (a target's id or
    /// url), proofs of health too.
    pub fn mentioning(&self, needles: &[&str]) -> Vec<EntryHits> {
        self.all()
            .filter_map(|hits| {
                let mut mine = EntryHits::new(hits.entry);
                hits.lines()
                    .into_iter()
                    .filter(|l| needles.iter().any(|n| !n.is_empty() && l.text.contains(n)))
                    .for_each(|line| mine.push(line));
                (mine.count > 0).then_some(mine)
            })
            .collect()
    }
}

pub struct Scanner {
    entries: &'static [Entry],
    automaton: AhoCorasick,
    /// Per entry, per symptom: the compiled regex, if any.
    regexes: Vec<Vec<Option<Regex>>>,
    debug_markers: Vec<memmem::Finder<'static>>,
}

impl Scanner {
    pub fn new() -> Scanner {
        let entries = knowledge::entries();
        let literals: Vec<&str> = entries
            .iter()
            .flat_map(|e| e.symptoms.iter().map(|s| s.literal.as_str()))
            .collect();
        // Leftmost-first lets the crate use its SIMD (Teddy) prefilter, which
        // the standard match kind cannot; we only need to know a line has a hit.
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostFirst)
            .kind(Some(AhoCorasickKind::DFA))
            .build(&literals)
            .expect("knowledge-base literals form an automaton");
        let regexes = entries
            .iter()
            .map(|e| {
                e.symptoms
                    .iter()
                    .map(|s| s.regex.as_deref().and_then(|r| Regex::new(r).ok()))
                    .collect()
            })
            .collect();
        let debug_markers = entries
            .iter()
            .flat_map(|e| e.absent_from_log.iter())
            .map(|marker| memmem::Finder::new(marker.as_bytes()).into_owned())
            .collect();
        Scanner {
            entries,
            automaton,
            regexes,
            debug_markers,
        }
    }

    pub fn new_scan(&self) -> Scan {
        Scan {
            hits: vec![None; self.entries.len()],
            ..Scan::default()
        }
    }

    /// The text a symptom is tested on: for a zerolog JSON line (one with a
    /// `level`), its `message` and `error` fields after whatever came before
    /// the object (a journal or container time, a pasted `service-1  | ` or
    /// syslog prefix); otherwise the line itself. Other JSON fields are no
    /// symptoms: a literal in a path or a request body means nothing.
    fn searchable(line: &str) -> std::borrow::Cow<'_, str> {
        let Some(start) = line.find("{\"") else {
            return std::borrow::Cow::Borrowed(line);
        };
        match serde_json::from_str::<serde_json::Value>(&line[start..]) {
            Ok(serde_json::Value::Object(object)) if object.contains_key("level") => {
                let field = |name: &str| {
                    object
                        .get(name)
                        .and_then(|v| v.as_str())
                        .unwrap_or_default()
                };
                std::borrow::Cow::Owned(format!(
                    "{}{} {}",
                    &line[..start],
                    field("message"),
                    field("error")
                ))
            }
            _ => std::borrow::Cow::Borrowed(line),
        }
    }

    /// Tests one line (`raw`, after the text `before` it in the chunk).
    fn check_line(&self, before: &[u8], raw: &[u8], file: &str, number: u64, scan: &mut Scan) {
        let raw = &raw[..raw.len().min(MAX_LINE)];
        let line = String::from_utf8_lossy(raw);
        let line = line.trim_end_matches('\r');
        let text = Self::searchable(line);
        for (index, entry) in self.entries.iter().enumerate() {
            let matched =
                entry
                    .symptoms
                    .iter()
                    .zip(&self.regexes[index])
                    .any(|(symptom, regex)| {
                        text.contains(symptom.literal.as_str())
                            && regex.as_ref().is_none_or(|r| r.is_match(&text))
                    });
            if matched {
                let time_ms = line_time(line).or_else(|| time_before(before));
                let hits = scan.hits[index].get_or_insert_with(|| EntryHits::new(entry));
                hits.push(MatchedLine {
                    file: file.to_owned(),
                    number,
                    text: crate::shared::redact::line(line),
                    time_ms,
                });
            }
        }
    }

    /// Scans `reader` to its end, adding to `scan`. `first_line` is the
    /// number of the first line read (for a tail that starts mid-file).
    pub fn scan(&self, mut reader: impl Read, file: &str, scan: &mut Scan) -> std::io::Result<()> {
        let mut buffer: Vec<u8> = Vec::with_capacity(CHUNK + MAX_LINE);
        let mut line_number: u64 = 1;
        let mut seen_debug = self.debug_markers.is_empty();
        let mut at_eof = false;
        while !at_eof {
            let start = buffer.len();
            buffer.resize(start + CHUNK, 0);
            let read = read_full(&mut reader, &mut buffer[start..])?;
            buffer.truncate(start + read);
            at_eof = read == 0;
            // Work on complete lines; keep a partial last line for the next round,
            // unless it is too long to be a line we care about.
            let end = if at_eof {
                buffer.len()
            } else {
                match memrchr(b'\n', &buffer) {
                    Some(newline) => newline + 1,
                    None if buffer.len() > MAX_LINE => buffer.len(),
                    None => continue,
                }
            };
            let chunk = &buffer[..end];
            if !seen_debug {
                seen_debug = self
                    .debug_markers
                    .iter()
                    .any(|finder| finder.find(chunk).is_some());
            }
            let mut counted_to = 0;
            let mut done_to = 0;
            for hit in self.automaton.find_iter(chunk) {
                if hit.start() < done_to {
                    continue;
                }
                let line_start = memrchr(b'\n', &chunk[..hit.start()]).map_or(0, |i| i + 1);
                let line_end =
                    memchr(b'\n', &chunk[hit.start()..]).map_or(chunk.len(), |i| hit.start() + i);
                line_number += count_lines(&chunk[counted_to..line_start]);
                counted_to = line_start;
                self.check_line(
                    &chunk[..line_start],
                    &chunk[line_start..line_end],
                    file,
                    line_number,
                    scan,
                );
                done_to = line_end + 1;
            }
            line_number += count_lines(&chunk[counted_to..]);
            buffer.drain(..end);
        }
        if !seen_debug && line_number > 1 {
            scan.files_without_debug.push(file.to_owned());
        }
        Ok(())
    }
}

impl Default for Scanner {
    fn default() -> Self {
        Scanner::new()
    }
}

/// Lines looked back at for a time a matching line lacks (a traceback, a
/// JavaScript object printed over several lines).
const TIME_LOOKBACK_LINES: usize = 40;

/// The time of the nearest line at the end of `before` that carries one.
fn time_before(before: &[u8]) -> Option<i64> {
    let mut end = before.len();
    for _ in 0..TIME_LOOKBACK_LINES {
        if end == 0 {
            return None;
        }
        let line_end = end - 1;
        let start = memrchr(b'\n', &before[..line_end]).map_or(0, |i| i + 1);
        let head = &before[start..line_end.min(start + 256)];
        if let Some(time) = line_time(&String::from_utf8_lossy(head)) {
            return Some(time);
        }
        end = start;
    }
    None
}

/// Newlines in `bytes`; written as a plain filter so the compiler vectorises it.
fn count_lines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

fn read_full(reader: &mut impl Read, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// One knowledge-base entry's matches, as `explain --format json` prints them.
#[derive(Serialize)]
pub struct ExplainedEntry {
    pub check: String,
    pub entry: String,
    pub title: String,
    pub explanation: String,
    pub count: u64,
    pub lines: Vec<MatchedLine>,
    pub fix: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub faq: Option<String>,
}

#[derive(Serialize)]
pub struct Explained {
    pub matches: Vec<ExplainedEntry>,
}

impl Explained {
    pub fn from_scan(scan: &Scan) -> Explained {
        Explained {
            matches: scan
                .matched()
                .map(|hits| ExplainedEntry {
                    check: hits.entry.check_id(),
                    entry: hits.entry.id.clone(),
                    title: hits.entry.title.clone(),
                    explanation: hits.entry.explanation.clone(),
                    count: hits.count,
                    lines: hits.lines(),
                    fix: hits.entry.fix.clone(),
                    faq: hits.entry.faq_url(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::testutil::shared_fixture;

    fn explain(text: &str) -> Vec<String> {
        let scanner = Scanner::new();
        let mut scan = scanner.new_scan();
        scanner.scan(text.as_bytes(), "-", &mut scan).unwrap();
        scan.matched().map(|h| h.entry.id.clone()).collect()
    }

    fn explain_fixture(name: &str) -> Vec<String> {
        explain(&std::fs::read_to_string(shared_fixture(&format!("logs/{name}"))).unwrap())
    }

    #[test]
    fn real_logs_name_their_entries() {
        assert!(
            explain_fixture("mautrix-telegram-as_token_rejected.log")
                .contains(&"as_token_rejected".to_owned())
        );
        assert!(
            explain_fixture("mautrix-telegram-hs_token_mismatch.log")
                .contains(&"hs_token_rejected".to_owned())
        );
        assert!(
            explain_fixture("mautrix-telegram-foreign_tables.log")
                .contains(&"foreign_tables".to_owned())
        );
        assert!(
            explain_fixture("mautrix-telegram-register_rejected.log")
                .contains(&"register_rejected".to_owned())
        );
        let synapse = explain_fixture("synapse-homeserver.log");
        assert!(
            synapse.contains(&"transactions_failing".to_owned()),
            "{synapse:?}"
        );
        assert!(
            synapse.contains(&"homeserver_backoff".to_owned()),
            "{synapse:?}"
        );
    }

    /// One realistic line per entry with symptoms, Python and Go (zerolog)
    /// styles (the checks' tests read them too).
    pub(crate) const SAMPLES: &[(&str, &str)] = &[
        (
            "as_token_rejected",
            r#"{"level":"fatal","error":"M_UNKNOWN_TOKEN (HTTP 401): Invalid access token passed.","time":"2026-11-22T10:00:00Z","message":"The as_token was not accepted. Is the registration file installed in your homeserver correctly?"}"#,
        ),
        (
            "register_rejected",
            "[2026-11-22 10:51:52,678] [CRITICAL@mau.init] The as_token was accepted, but the /register request was not. Are the homeserver domain and username template in the config correct?",
        ),
        (
            "ping_failed",
            r#"{"level":"fatal","error":"M_CONNECTION_FAILED (HTTP 502): Connection refused","message":"Homeserver -> bridge connection is not working"}"#,
        ),
        (
            "hs_token_rejected",
            "[2026-11-22 10:51:26,153] [DEBUG@mau.as] Incorrect hs_token in request",
        ),
        (
            "invalid_localpart",
            r#"{"level":"error","error":"M_EXCLUSIVE (HTTP 400): Invalid user localpart for this application service.","message":"Failed to ensure registered"}"#,
        ),
        (
            "account_key_invalid",
            r#"{"level":"fatal","error":"failed to load olm account: the supplied account key is invalid","message":"Failed to start crypto"}"#,
        ),
        (
            "foreign_tables",
            "mautrix.util.async_db.errors.ForeignTablesFound: The database contains foreign tables (found state_groups_state likely belonging to Synapse)",
        ),
        (
            "not_configured",
            "[2026-11-22 10:00:00,000] [CRITICAL@mau.init] Configuration error: homeserver.address not configured",
        ),
        (
            "electron_unavailable",
            r#"{"level":"error","error":"unexpected status code 429 (electron status: unavailable)","message":"Failed to send message"}"#,
        ),
        (
            "olm_headers_missing",
            "    src/olm.c:1:10: fatal error: olm/olm.h: No such file or directory",
        ),
        (
            "sync_failing",
            "[2026-11-22 10:00:00,000] [DEBUG@mau.as.api.bot] req #9 (/v3/sync) completed in 30001.2ms with status 500",
        ),
        (
            "decryption_failing",
            r#"{"level":"error","error":"no session with given ID found","message":"Failed to decrypt event"}"#,
        ),
        (
            "transactions_failing",
            "2026-11-22 10:49:48,678 - synapse.appservice.api - 430 - WARNING - as-sender-0 - push_bulk to http://localhost:29317 received code=401 (Unauthorized)",
        ),
        (
            "homeserver_backoff",
            "2026-11-22 10:49:48,687 - synapse.appservice.scheduler - 509 - INFO - as-sender-0 - Scheduling retries on telegram in 2.000000s",
        ),
        (
            "registration_load_failed",
            "synapse.config._base.ConfigError: Failed to load appservice from '/etc/synapse/telegram.yaml'",
        ),
        (
            "db_not_owned",
            r#"{"level":"fatal","error":"the database is owned by megabridge/mautrix-signal","db_section":"main","time":"2026-11-23T10:00:00Z","message":"Failed to initialize database"}"#,
        ),
        (
            "schema_downgrade",
            r#"{"level":"fatal","error":"unsupported database schema version: currently on v25 (compatible down to v22), latest known: v21","db_section":"main","time":"2026-11-23T10:00:00Z","message":"Failed to initialize database"}"#,
        ),
        (
            "database_type_invalid",
            r#"{"level":"fatal","time":"2026-11-23T10:00:00Z","message":"Invalid database type sqlite3. Use sqlite3-fk-wal instead."}"#,
        ),
        (
            "homeserver_outdated",
            r#"{"level":"fatal","server_supports":"v1.1","bridge_requires":"v1.4","time":"2026-11-23T10:00:00Z","message":"The homeserver is outdated (supported spec versions are below minimum required by bridge)"}"#,
        ),
        (
            "homeserver_connect_retry",
            r#"{"level":"error","error":"Get \"http://localhost:8008/_matrix/client/versions\": dial tcp 127.0.0.1:8008: connect: connection refused","time":"2026-11-23T10:00:00Z","message":"Failed to connect to homeserver, retrying in 10 seconds..."}"#,
        ),
        (
            "media_config_failed",
            r#"{"level":"warn","error":"M_UNRECOGNIZED (HTTP 404): Unrecognized request","time":"2026-11-23T10:00:00Z","message":"Failed to fetch media config"}"#,
        ),
        (
            "appservice_login_unsupported",
            "[2026-11-23 10:00:00,000] [CRITICAL@mau.matrix.e2ee] Encryption enabled in config, but homeserver does not support appservice login",
        ),
        (
            "crypto_device_reset",
            "[2026-11-23 10:00:00,000] [CRITICAL@mau.matrix.e2ee] Existing device doesn't have keys on server, resetting crypto",
        ),
        (
            "heisenbridge_namespace_changed",
            "ERROR:root:Previously used namespace 'irc_' does not match current 'hbirc_'.",
        ),
        (
            "heisenbridge_namespace_invalid",
            "User namespace regex must be an exact prefix like '@irc_.*' that includes the separator character (_ or /).",
        ),
        (
            "user_id_reserved",
            "2026-11-23 10:00:00,000 - synapse.http.server - 130 - INFO - POST-42 - <SynapseRequest at 0x7f POST /_matrix/client/v3/register> SynapseError: 400 - This user ID is reserved by an application service.",
        ),
        (
            "tls_untrusted",
            r#"{"level":"error","error":"Get \"https://matrix.example.com/_matrix/client/versions\": tls: failed to verify certificate: x509: certificate signed by unknown authority","message":"Failed to connect"}"#,
        ),
        (
            "proxy_body_too_large",
            "<html><head><title>413 Request Entity Too Large</title></head>",
        ),
        (
            "proxy_strips_auth",
            r#"{"level":"warn","error":"M_MISSING_TOKEN (HTTP 401): Missing access token","message":"Request failed"}"#,
        ),
        (
            "clock_skew",
            "ssl.SSLCertVerificationError: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: certificate is not yet valid",
        ),
        (
            "config_not_writable",
            "PermissionError: [Errno 13] Permission denied: '/data/config.yaml'",
        ),
        (
            "homeserver_recovered_appservice",
            "2026-12-03 09:00:06,120 - synapse.appservice.scheduler - 418 - INFO - as-recoverer-telegram-0 - Successfully recovered application service AS ID telegram",
        ),
        (
            "bridge_startup_complete",
            "[2026-12-03 09:00:06,001] [INFO@mau.init] Startup actions complete in 1.52 seconds, now running forever",
        ),
        (
            "bridge_reached_by_homeserver",
            "[2026-12-03 09:00:06,300] [DEBUG@mau.bridge.matrix] Homeserver->bridge connection works, roundtrip time is 12 ms (txn ID: 1)",
        ),
    ];

    #[test]
    fn every_entry_with_symptoms_matches_a_realistic_sample() {
        for entry in knowledge::entries()
            .iter()
            .filter(|e| !e.symptoms.is_empty())
        {
            let (_, sample) = SAMPLES
                .iter()
                .find(|(id, _)| *id == entry.id)
                .unwrap_or_else(|| panic!("no sample for {}", entry.id));
            let scanner = Scanner::new();
            let mut scan = scanner.new_scan();
            scanner.scan(sample.as_bytes(), "-", &mut scan).unwrap();
            let found: Vec<&str> = scan.all().map(|h| h.entry.id.as_str()).collect();
            assert!(
                found.contains(&entry.id.as_str()),
                "{} did not match its sample: {found:?}",
                entry.id
            );
            // A proof of health is never explained as a problem.
            assert_eq!(explain(sample).contains(&entry.id), !entry.is_health());
        }
    }

    #[test]
    fn a_matching_line_carries_its_time_or_the_nearest_before_it() {
        let text = "[2026-12-03 09:00:01,000] [ERROR@mau.as] Traceback (most recent call last):\n  File \"x.py\", line 1\nmautrix.errors.request.MUnknownToken: Unknown access token\n";
        let scanner = Scanner::new();
        let mut scan = scanner.new_scan();
        scanner.scan(text.as_bytes(), "-", &mut scan).unwrap();
        let hits = scan.matched().next().unwrap();
        let header = crate::knowledge::timestamps::line_time("[2026-12-03 09:00:01,000]");
        assert!(header.is_some());
        assert_eq!(hits.lines()[0].time_ms, header);
        assert_eq!((hits.earliest_ms, hits.latest_ms), (header, header));
    }

    #[test]
    fn zerolog_lines_after_any_prefix_are_decoded() {
        // Only the message and error fields count: the literal in another
        // field is no symptom, also after a time or a pasted prefix.
        let elsewhere = r#"{"level":"info","path":"MUnknownToken","message":"ok"}"#;
        let stated = r#"{"level":"error","error":"M_UNKNOWN_TOKEN","message":"Failed"}"#;
        for time in [
            "",
            "2026-12-03T11:14:01.123456Z ",
            "2026-12-03T11:14:01.123456789Z ",
            "mautrix-whatsapp-1  | ",
            "Jun 13 13:58:04 host mautrix-whatsapp[123]: ",
        ] {
            assert!(
                explain(&format!("{time}{elsewhere}\n")).is_empty(),
                "{time}"
            );
            assert_eq!(explain(&format!("{time}{stated}\n")), ["as_token_rejected"]);
        }
        // JSON that is not a log line (no level) is text like any other.
        let synapse = r#"2026-12-03 09:00:01,000 - synapse.http.client - WARNING - {"errcode":"M_UNKNOWN_TOKEN"}"#;
        assert_eq!(explain(&format!("{synapse}\n")), ["as_token_rejected"]);
    }

    #[test]
    fn healthy_log_matches_nothing_and_debug_is_seen() {
        let healthy = "[2026-11-22 10:51:26,147] [DEBUG@mau.as.api.bot] req #1 (/versions) completed in 6.1ms with status 200\n\
                       [2026-11-22 10:51:26,149] [DEBUG@mau.as.api.bot] req #2 (/v3/sync) completed in 1.6ms with status 200\n\
                       [2026-11-22 10:51:26,150] [INFO@mau.init] Startup actions complete, now running forever\n";
        let scanner = Scanner::new();
        let mut scan = scanner.new_scan();
        scanner
            .scan(healthy.as_bytes(), "bridge.log", &mut scan)
            .unwrap();
        assert_eq!(scan.matched().count(), 0);
        assert!(scan.files_without_debug.is_empty());
        let mut scan = scanner.new_scan();
        scanner
            .scan(
                "[INFO@mau.init] only info\n".as_bytes(),
                "info.log",
                &mut scan,
            )
            .unwrap();
        assert_eq!(scan.files_without_debug, vec!["info.log".to_owned()]);
    }

    #[test]
    fn line_numbers_cap_and_redaction() {
        let mut text = String::from("first line\n");
        for _ in 0..30 {
            text.push_str(
                "GET /_matrix/client/v3/sync?access_token=syt_secretvalue123 MUnknownToken\n",
            );
        }
        let scanner = Scanner::new();
        let mut scan = scanner.new_scan();
        // A tiny reader forces lines across chunk borders too.
        scanner
            .scan(
                std::io::BufReader::with_capacity(7, text.as_bytes()),
                "x.log",
                &mut scan,
            )
            .unwrap();
        let hits = scan.matched().next().unwrap();
        assert_eq!(hits.count, 30);
        let lines = hits.lines();
        assert_eq!(lines.len(), KEEP_FIRST + KEEP_LAST);
        assert_eq!(lines[0].number, 2);
        assert_eq!(lines.last().unwrap().number, 31);
        assert!(
            lines.iter().all(|l| !l.text.contains("syt_secretvalue123")),
            "{:?}",
            lines[0]
        );
    }

    mod property {
        use proptest::prelude::*;

        use super::super::*;
        use super::SAMPLES;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]

            /// Any bytes (invalid UTF-8, NULs, no line ends): scanned without panic.
            #[test]
            fn any_bytes_scan_without_panic(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
                let scanner = Scanner::new();
                let mut scan = scanner.new_scan();
                scanner.scan(bytes.as_slice(), "x.log", &mut scan).unwrap();
            }

            /// A known line among any other lines is still found.
            #[test]
            fn a_symptom_among_noise_is_found(
                sample in 0..SAMPLES.len(),
                noise_before in prop::collection::vec("[ -~]{0,80}", 0..20),
                noise_after in prop::collection::vec("[ -~]{0,80}", 0..20),
            ) {
                let (entry, line) = SAMPLES[sample];
                let text = [noise_before.join("\n"), line.to_owned(), noise_after.join("\n")].join("\n");
                let scanner = Scanner::new();
                let mut scan = scanner.new_scan();
                scanner.scan(text.as_bytes(), "x.log", &mut scan).unwrap();
                prop_assert!(scan.all().any(|hits| hits.entry.id == entry), "{entry} not found");
            }
        }
    }
}
