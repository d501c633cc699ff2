//! Keeping secrets out of everything the doctor prints.

/// A URI or connection string without its user info: scheme, host, port,
/// path (database name) and query stay, because they are what an admin
/// needs to see; the password never is.
pub fn uri(text: &str) -> String {
    let Some((scheme, rest)) = text.split_once("://") else {
        return text.to_owned();
    };
    // User info ends at the last `@` before the query, so a password holding
    // `@` or `/` is still removed whole.
    let query_start = rest.find('?').unwrap_or(rest.len());
    match rest[..query_start].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_loses_user_info_keeps_host_and_database() {
        assert_eq!(
            uri("postgres://user:p%40ss@db.example:5432/bridge?sslmode=disable"),
            "postgres://db.example:5432/bridge?sslmode=disable"
        );
        assert_eq!(uri("postgres://u:a@b/c@host/db"), "postgres://host/db");
        assert_eq!(uri("sqlite:x.db"), "sqlite:x.db");
    }
}
