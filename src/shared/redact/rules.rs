//! The generic line rules: secrets recognisable by what stands before them
//! (a header, a parameter, a key), whoever wrote the line and whatever the
//! doctor knows of the setup.
//!
//! Every rule has a `prefix` group that stays and a `value` group that is
//! masked. A cheap prefilter (words every rule needs, any case) keeps the
//! common line, which holds none of them, off the regexes.

use std::sync::OnceLock;

use aho_corasick::AhoCorasick;
use regex::Regex;

use super::mask;

/// Words without which no rule below can match, compared in any case.
const TRIGGERS: &[&str] = &[
    "token", "secret", "pass", "pwd", "key", "auth", "bearer", "cookie", "sig", "cred", "session",
    "macaroon", "pickle", "hash", "://", "%3d",
];

/// A value: a double- or single-quoted string whole (spaces included), or
/// an unquoted run up to a separator.
const QUOTED: &str = r#""(?:[^"\\]|\\.)*"|'[^']*'"#;

fn rules() -> &'static [Regex] {
    static RULES: OnceLock<Vec<Regex>> = OnceLock::new();
    RULES.get_or_init(|| {
        // Words that make a key secret, as parts of snake, kebab or dotted
        // names (lower case), as the tail of run-together names, and as
        // camelCase humps.
        let part = r"(?:token|secret|password|passwd|passcode|passphrase|pass|pwd|apikey|credentials?|cookie|macaroon|sig|signature|api_hash|session_?id)";
        let joined = r"(?:token|secret|password|passwd|apikey)";
        let hump = r"(?:Token|Secret|Password|Passwd|Pass|Pwd|Key|ApiKey|Credentials?|Hash|Cookie|Signature)";
        // What may follow the secret word and still name the secret
        // (`password_b64`, `token_2`); anything else names something about
        // it (`token_type`, `hs_token_rejected`), not the secret.
        let suffix = r"(?:[_-](?:value|string|str|b64|base64|hex|raw|old|new|[0-9]+))*";
        let patterns = [
            // Authorization and Proxy-Authorization headers, any scheme.
            r#"(?P<prefix>(?i:\b(?:proxy-)?authorization)["']?\s*[:=]\s*["']?(?:(?i:bearer|basic|digest|token|negotiate|ntlm)\s+)?)(?P<value>[^\s"',;]+)"#.to_owned(),
            // A bearer token anywhere ("Bearer syt_...").
            r#"(?P<prefix>\b(?i:bearer)\s+)(?P<value>[^\s"',;]+)"#.to_owned(),
            // Cookie and Set-Cookie headers: every value up to the line's end.
            r#"(?P<prefix>(?i:\b(?:set-)?cookie)["']?\s*[:=]\s*["']?)(?P<value>[^"'\r\n]+)"#.to_owned(),
            // API-key and token headers (X-Api-Key, X-Auth-Token, ...).
            r#"(?P<prefix>(?i:\bx-[a-z-]*(?:key|token|secret|auth)[a-z-]*)\s*:\s*)(?P<value>[^\s"',;]+)"#.to_owned(),
            // Synapse names a reused as_token when it refuses to start.
            r#"(?P<prefix>as_token across application services:\s*)(?P<value>[^\s"',;]+)"#.to_owned(),
            // Quoted keys (JSON, YAML) in any case and style.
            format!(
                r#"(?P<prefix>["'](?i:[a-z0-9_.-]*(?:token|secret|password|passwd|passcode|passphrase|pass|pwd|api_?key|private_?key|signing_?key|secret_?key|access_?key|pickle_?key|credentials?|cookie|macaroon|api_hash|signature|sig){suffix})["']\s*[:=]\s*)(?P<value>{QUOTED}|[^\s,}}\]]+)"#
            ),
            // Environment-style names in capitals: to the end of the line
            // (or of the quoted or code span the assignment stands in).
            format!(
                r#"(?P<prefix>\b[A-Z0-9_]*(?:TOKEN|SECRET|PASSWORD|PASSWD|PASS|PWD|API_?KEY|PRIVATE_?KEY|SECRET_?KEY|ACCESS_?KEY|CREDENTIALS?|COOKIE)[A-Z0-9_]*\s*=\s*)(?P<value>{QUOTED}|[^\r\n"'`]+)"#
            ),
            // snake and kebab keys with `:`: to the end of the line, so a
            // value with spaces goes whole; a backtick ends it, as in the
            // doctor's own fix steps ("set `pickle_key: …`"). Not dotted
            // names: `registration.duplicate_as_token: Two …` is a check and
            // its title.
            format!(
                r#"(?P<prefix>(?:^|[^.\w-])(?:[a-z0-9]+[_-])*(?:{part}|[a-z0-9]*{joined}|[a-z0-9]+[_-]key){suffix}\s*:\s*)(?P<value>{QUOTED}|[^\s"'`][^\r\n`]*)"#
            ),
            // The same keys with `=` (query strings, logfmt, libpq).
            format!(
                r#"(?P<prefix>\b(?:[a-z0-9]+[_.-])*(?:{part}|[a-z0-9]*{joined}|[a-z0-9]+[_-]key){suffix}\s*=\s*)(?P<value>{QUOTED}|[^\s"'&;,]+)"#
            ),
            // camelCase keys (botToken, accessToken, clientSecret).
            format!(
                r#"(?P<prefix>\b[a-z][a-zA-Z0-9]*{hump}\s*[:=]\s*)(?P<value>{QUOTED}|[^\s"',;&}}]+)"#
            ),
            // URL-encoded parameters (`access_token%3D...`).
            r#"(?P<prefix>(?i:[a-z0-9_]*(?:token|secret|password|passwd|pass|key|sig))%3[dD])(?P<value>[A-Za-z0-9._~%+-]+)"#.to_owned(),
            // The password of a URI's user info, whatever the scheme, up to the
            // last `@` (a password may hold one).
            r#"(?P<prefix>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]*:)(?P<value>\S+)@"#.to_owned(),
        ];
        patterns
            .iter()
            .map(|pattern| Regex::new(pattern).expect("redaction rules compile"))
            .collect()
    })
}

fn triggers() -> &'static AhoCorasick {
    static TRIGGERS_AUTOMATON: OnceLock<AhoCorasick> = OnceLock::new();
    TRIGGERS_AUTOMATON.get_or_init(|| {
        AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(TRIGGERS)
            .expect("trigger words build an automaton")
    })
}

/// The byte ranges of every value the rules recognise in `text`, sorted,
/// overlapping ones merged.
pub fn spans(text: &str) -> Vec<std::ops::Range<usize>> {
    if !triggers().is_match(text) {
        return Vec::new();
    }
    let mut spans: Vec<std::ops::Range<usize>> = rules()
        .iter()
        .flat_map(|rule| rule.captures_iter(text))
        .filter_map(|caps| {
            caps.name("value")
                .map(|value| unquoted(text, value.range()))
        })
        .filter(|span| worth_masking(&text[span.clone()]))
        .collect();
    spans.sort_by_key(|span| span.start);
    let mut merged: Vec<std::ops::Range<usize>> = Vec::with_capacity(spans.len());
    for span in spans {
        match merged.last_mut() {
            Some(last) if span.start <= last.end => last.end = last.end.max(span.end),
            _ => merged.push(span),
        }
    }
    merged
}

/// `text` with every value the rules recognise masked; `None` when no rule
/// fired. Each region is masked once, so two rules on one value do not
/// mask a mask.
pub fn apply(text: &str) -> Option<String> {
    let spans = spans(text);
    if spans.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut done = 0;
    for span in spans {
        out.push_str(&text[done..span.start]);
        out.push_str(&mask(&text[span.clone()]));
        done = span.end;
    }
    out.push_str(&text[done..]);
    Some(out)
}

/// Empty values, masks and plain numbers stay: a number after `pass` or
/// `key` is a count or a port far more often than a secret, and masked it
/// would make JSON invalid (`"pass": 00`).
fn worth_masking(value: &str) -> bool {
    !value.is_empty() && !super::is_mask(value) && value.parse::<f64>().is_err()
}

/// A quoted value's range without its quotes, so they stay in the line.
fn unquoted(text: &str, range: std::ops::Range<usize>) -> std::ops::Range<usize> {
    let value = &text[range.clone()];
    match value.chars().next() {
        Some(q @ ('"' | '\'')) if value.len() >= 2 && value.ends_with(q) => {
            range.start + 1..range.end - 1
        }
        _ => range,
    }
}
