//! Regression tests from the adversarial review of the redactor: each showed
//! one leak or one false alarm on the code it was written against.

use super::*;

fn assert_masked(text: &str, secret: &str) {
    let out = line(text);
    assert!(!out.contains(secret), "{secret} survives: {text} -> {out}");
}

// ---- Leaks: secrets that survive `line` -----------------------------------

/// Capitalised and upper-case keys with `:` and PascalCase keys (Go `%+v`,
/// docker compose YAML, .NET/Npgsql connection strings, HTTP-style
/// headers without an `X-` prefix) pass every rule.
#[test]
fn review_capitalised_keys_leak() {
    for (text, secret) in [
        ("Password: CanaryCap1", "CanaryCap1"),
        ("Password=CanaryCap2", "CanaryCap2"),
        ("POSTGRES_PASSWORD: CanaryDockerYaml1", "CanaryDockerYaml1"),
        ("AS_TOKEN: CanaryDockerYaml2", "CanaryDockerYaml2"),
        (
            "Host=db;Username=bob;Password=CanaryNpgsql1;Database=x",
            "CanaryNpgsql1",
        ),
        (
            "reg: {ID:whatsapp URL:http://localhost:29318 AppToken:CanaryPascal1 ServerToken:CanaryPascal2}",
            "CanaryPascal1",
        ),
        ("Api-Key: CanaryApiKey9", "CanaryApiKey9"),
        ("Private-Token: CanaryGitlab1", "CanaryGitlab1"),
    ] {
        assert_masked(text, secret);
    }
}

/// JSON inside a JSON string (a request body logged as a string field by
/// pino, zerolog `Str`, Synapse's JSON logs): the escaped quotes hide the key.
#[test]
fn review_escaped_json_in_a_json_string_leaks() {
    assert_masked(
        r#"{"level":"debug","body":"{\"type\":\"m.login.password\",\"password\":\"CanaryNested1\"}"}"#,
        "CanaryNested1",
    );
}

/// A secret-named key whose value is a list: only the first item is masked.
#[test]
fn review_second_item_of_a_secret_list_leaks() {
    assert_masked(
        r#"{"access_tokens": ["CanaryList1", "CanaryList2"]}"#,
        "CanaryList2",
    );
    assert_masked("{'tokens': ['CanaryList3', 'CanaryList4']}", "CanaryList4");
}

/// "No masking of plain numbers" also spares a quoted all-digit password
/// (a PIN, a numeric password in a login body); masking it inside quotes
/// would keep the JSON valid.
#[test]
fn review_numeric_password_in_quotes_leaks() {
    assert_masked(
        r#"{"type":"m.login.password","password": "84736251"}"#,
        "84736251",
    );
}

/// `;`, `,` and `&` end a `key=value` value, but they are ordinary password
/// characters in a libpq/pgx conninfo: the rest of the password survives
/// (and only the first part is hunted, see sanitize's review test).
#[test]
fn review_password_cut_at_a_separator_leaks() {
    assert_masked("host=db password=Tr0ub;4dor&3 dbname=x", "4dor&3");
    assert_masked("password=Ab1;Cd2,Ef3&Gh4", "Cd2,Ef3&Gh4");
}

/// `mask` keeps `\x` and `\uXXXX` whole for JSON's sake, so a literal
/// backslash reveals the character after it, and a JSON `\u` escape (Python
/// `json.dumps` writes every non-ASCII character so) reveals the character.
#[test]
fn review_backslashes_reveal_the_next_characters() {
    assert_masked(r"password=p\a\s\s\w\o\r\d", r"\a\s\s\w\o\r\d");
    assert_masked(r#"{"password": "p\u00e4ssw\u00f6rd"}"#, r"\u00e4");
}

/// A URI whose user name holds `@` (Azure PostgreSQL `user@server`, an
/// e-mail as SMTP user): the URI rule's user part stops at `@`, and the
/// password is not hunted either.
#[test]
fn review_user_info_with_an_at_sign_leaks() {
    remember(credentials_in(
        "database: postgres://admin@srv:CanaryAzure1@db.example.org:5432/x",
    ));
    assert_masked(
        "could not connect to postgres://admin@srv:CanaryAzure1@db.example.org:5432/x",
        "CanaryAzure1",
    );
}

/// Shell and process listings: `curl -u user:pass`, `--password VALUE`.
#[test]
fn review_command_line_flags_leak() {
    assert_masked("curl -u bob:CanaryCurl1 https://example.org", "CanaryCurl1");
    assert_masked(
        "mautrix --password CanaryFlag2 -c config.yaml",
        "CanaryFlag2",
    );
    assert_masked(r#""Args": ["--as-token", "CanaryFlag3"]"#, "CanaryFlag3");
}

/// A known secret in the encodings other clients write: Go and Python
/// percent-encode leaving `~` as is, some write lower-case hex; Go's
/// encoding/json writes `&` as `\u0026`.
#[test]
fn review_hunted_secret_in_other_encoders_forms_leaks() {
    remember(["Tr0ub~4dor/3&x".to_owned()]);
    assert_masked("GET /x?t=Tr0ub~4dor%2F3%26x", "Tr0ub~4dor");
    assert_masked("GET /x?t=Tr0ub%7e4dor%2f3%26x", "4dor%2f3");
    assert_masked(r#"{"t":"Tr0ub~4dor/3\u0026x"}"#, "Tr0ub~4dor");
}

// ---- Invalid output ----------------------------------------------------

/// A JSON literal after a secret-named key becomes `xxxx`: the log line is
/// no longer JSON (zerolog booleans such as `token_valid`, a null token).
#[test]
fn review_json_literals_stay_valid() {
    for text in [
        r#"{"access_token": null, "has_token": true, "bypass_cache": false}"#,
        r#"{"level":"info","token_valid":false,"message":"x"}"#,
    ] {
        let out = line(text);
        assert!(
            serde_json::from_str::<serde_json::Value>(&out).is_ok(),
            "{text} -> {out}"
        );
    }
}

// ---- False alarms ------------------------------------------------------

/// The URI rule takes `host:` for a user and everything up to an `@` in the
/// path for a password: every Matrix URL with a port and a user ID in its
/// path loses its port and path.
#[test]
fn review_port_and_user_id_in_a_url_are_not_a_password() {
    for text in [
        "PUT http://localhost:8008/_matrix/client/v3/rooms/!abc:example.org/state/m.room.member/@alice:example.org HTTP/1.1",
        "GET http://localhost:29317/_matrix/app/v1/users/@telegram_123:example.org",
    ] {
        assert_eq!(line(text), text);
    }
}

/// The doctor's own terminal lines (`check: title`) stay readable. (Prose
/// such as "Failed to refresh access token: connection refused" still loses
/// its end: it has the very shape of "Using access token: syt_…", and deny
/// by default masks both.)
#[test]
fn review_check_lines_and_error_messages_stay() {
    for text in [
        "    ✗ tokens.as_token_rejected: the homeserver refused the as_token",
        "    ✓ registration.duplicate_as_token: no two loaded registrations share this as_token",
        "    ✓ encryption.pickle_key_unset: pickle_key is set, or the bridge can write the generated one",
    ] {
        assert_eq!(line(text), text);
    }
}

/// Matrix identifiers a supporter needs: `state_key`, megolm `session_id`,
/// `sender_key` (public) are masked by `[a-z]+_key` and `session_?id`.
#[test]
fn review_matrix_ids_named_key_or_session_stay() {
    for text in [
        "DBG Sending state event room_id=!abc:example.org event_type=m.room.member state_key=@alice:example.org",
        "DBG Received megolm session session_id=abcdef123456 sender_key=Qmx1ZWJ1cmQ room_id=!x:y",
    ] {
        assert_eq!(line(text), text);
    }
}
