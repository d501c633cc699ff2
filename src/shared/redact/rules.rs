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

/// A value: a double- or single-quoted string whole (spaces included), the
/// same with escaped quotes (JSON inside a JSON string), a list, or an
/// unquoted run up to a separator.
const QUOTED: &str = r#""(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|\\"(?:[^"\\]|\\[^"])*\\"|\[[^\]]*\]"#;

/// Words that name a secret as a whole part of a key, in any case
/// (`password`, `AS_TOKEN`, `Api-Key`, `smtp_pass`).
const PART: &str = r"(?:token|secret|password|passwd|passcode|passphrase|pass|pwd|apikey|credentials?|cookie|macaroon|sig|signature|api_hash|authorization|(?:api|private|signing|secret|access|pickle|recovery|auth|client|master|encryption)[_-]key)";

/// The same words run together with what precedes them, lower case only
/// (`accesstoken`): matched in any case, `MUnknownToken` would be a secret.
const JOINED: &str = r"[a-z0-9]*(?:token|secret|password|passwd|apikey)";

/// camelCase and PascalCase humps (`botToken`, `AppToken`).
const HUMP: &str = r"(?:Token|Secret|Password|Passwd|Pass|Pwd|ApiKey|PrivateKey|SecretKey|AccessKey|Credentials?|Cookie|Signature)";

/// What may follow the secret word and still name the secret
/// (`password_b64`, `token_2`); anything else names something about it
/// (`token_type`, `hs_token_rejected`), not the secret.
const SUFFIX: &str = r"(?:[_-](?:value|string|str|b64|base64|hex|raw|old|new|[0-9]+))*";

fn patterns() -> Vec<String> {
    let key = format!(r"(?:(?i:(?:[a-z0-9]+[_-])*{PART})|{JOINED})s?{SUFFIX}");
    vec![
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
        // Quoted keys (JSON, YAML, Python reprs; escaped inside a JSON
        // string) in any case and style.
        format!(
            r#"(?P<prefix>\\?["'](?i:[a-z0-9_.-]*(?:token|secret|password|passwd|passcode|passphrase|pass|pwd|api_?key|private_?key|signing_?key|secret_?key|access_?key|pickle_?key|credentials?|cookie|macaroon|api_hash|signature|sig|authorization)s?{SUFFIX})\\?["']\s*[:=]\s*)(?P<value>{QUOTED}|[^\s,}}\]]+)"#
        ),
        // Keys with `:`: to the end of the line, so a value with spaces goes
        // whole; a backtick ends it, as in the doctor's own fix steps ("set
        // `pickle_key: …`"). Not dotted names (`tokens.mismatch: title` is
        // a check), and not PascalCase before `: ` (`MUnknownToken: …` is an
        // exception's name).
        format!(
            r#"(?P<prefix>(?:^|[^.\w-]){key}\s*:\s*)(?P<value>{QUOTED}|[^\s"'`][^\r\n`]*)"#
        ),
        // The same keys with `=`, outside a query string (logfmt, libpq,
        // .NET connection strings, environments): up to a space or quote,
        // as `;`, `,` and `&` are ordinary password characters.
        format!(r#"(?P<prefix>(?:^|[^?&.\w-]){key}\s*=\s*)(?P<value>{QUOTED}|[^\s"']+)"#),
        // Query-string parameters: up to the next parameter.
        format!(r#"(?P<prefix>[?&]{key}=)(?P<value>[^&\s#"']+)"#),
        // camelCase and PascalCase keys: `botToken: x`, `AppToken:x` (Go's
        // `%+v`), `accessToken=x`.
        format!(
            r#"(?P<prefix>\b(?:[a-z][a-zA-Z0-9]*{HUMP}\s*[:=]\s*|[A-Z][a-zA-Z0-9]*{HUMP}(?::|\s*=\s*)))(?P<value>{QUOTED}|[^\s"',;&}}]+)"#
        ),
        // URL-encoded parameters (`access_token%3D...`).
        r#"(?P<prefix>(?i:[a-z0-9_]*(?:token|secret|password|passwd|pass|key|sig))%3[dD])(?P<value>[A-Za-z0-9._~%+-]+)"#.to_owned(),
        // The password of a URI's user info, whatever the scheme; the user
        // may hold `@` (Azure's `user@server`), the password holds no `/`.
        r#"(?P<prefix>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:]*:)(?P<value>[^\s/?#]+)@"#.to_owned(),
        // Command lines: `curl -u user:password`, `--password X`,
        // `"--as-token", "X"`.
        r#"(?P<prefix>(?:^|\s)(?:-u|--user)\s+[^\s:]+:)(?P<value>\S+)"#.to_owned(),
        r#"(?P<prefix>--(?i:[a-z-]*(?:password|passwd|token|secret|api-key|apikey)[a-z-]*)["']?(?:\s*,\s*|\s+|=)["']?)(?P<value>[^\s"',]+)"#.to_owned(),
    ]
}

fn rules() -> &'static [Regex] {
    static RULES: OnceLock<Vec<Regex>> = OnceLock::new();
    RULES.get_or_init(|| {
        patterns()
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
        .filter(|(span, quoted)| worth_masking(&text[span.clone()], *quoted))
        .map(|(span, _)| span)
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

/// Empty values and masks stay, and so do unquoted numbers and literals: a
/// number after `pass` is a count far more often than a secret, and masked
/// it or a `null` would make JSON invalid (`"pass": 00`). Quoted, a number
/// is a string like any other (a PIN, a numeric password).
fn worth_masking(value: &str, quoted: bool) -> bool {
    let literal = matches!(value, "null" | "true" | "false" | "None" | "True" | "False");
    !value.is_empty()
        && !super::is_mask(value)
        && (quoted || (value.parse::<f64>().is_err() && !literal))
}

/// A quoted value's range without its quotes (also escaped ones), so they
/// stay in the line; and whether it was quoted.
fn unquoted(text: &str, range: std::ops::Range<usize>) -> (std::ops::Range<usize>, bool) {
    let value = &text[range.clone()];
    for quote in ["\\\"", "\"", "'"] {
        if value.len() >= 2 * quote.len() && value.starts_with(quote) && value.ends_with(quote) {
            return (range.start + quote.len()..range.end - quote.len(), true);
        }
    }
    (range, false)
}
