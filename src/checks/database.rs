//! The bridge's own database: can it be opened, and is it only the bridge's?

use super::{Check, Context, Verdict};

pub const CHECKS: &[Check] = &[
    Check {
        id: "database.unreachable",
        run: unreachable,
    },
    Check {
        id: "database.foreign_tables",
        run: foreign_tables,
    },
];

/// Tables that mark another program's database.
const FOREIGN_MARKERS: &[(&str, &str)] = &[
    ("state_groups_state", "Synapse"),
    ("event_json", "Synapse"),
    ("roomserver_rooms", "Dendrite"),
];

fn unreachable(ctx: &Context) -> Verdict {
    let Some(database) = &ctx.target.database else {
        return Verdict::skip("no database URI in the bridge config");
    };
    match &database.tables {
        Ok(_) => Verdict::pass(format!("the database {} opens", database.shown_uri)),
        Err(error) => Verdict::fail(format!("the database {} cannot be opened", database.shown_uri))
            .detail(format!("Opening it read-only failed: {error}"))
            .evidence("field", database.field.clone())
            .fix([
                format!("Check `{}` in the bridge config: host, port, database name and user.", database.field),
                "For SQLite, check that the file exists (relative paths are taken from the config's folder here; the bridge takes them from its working directory).".to_owned(),
                "For PostgreSQL, check that the server runs and accepts this user (`psql <uri>`).".to_owned(),
            ]),
    }
}

fn foreign_tables(ctx: &Context) -> Verdict {
    let Some(database) = &ctx.target.database else {
        return Verdict::skip("no database URI in the bridge config");
    };
    let Ok(tables) = &database.tables else {
        return Verdict::skip("the database could not be opened");
    };
    let mut found: Vec<String> = FOREIGN_MARKERS
        .iter()
        .filter(|(table, _)| tables.iter().any(|t| t == table))
        .map(|(table, program)| format!("{table} ({program})"))
        .collect();
    found.extend(
        database
            .owners
            .iter()
            .filter(|owner| !owner.contains(ctx.target.id.as_str()))
            .map(|owner| format!("database_owner = {owner} (another bridge)")),
    );
    if found.is_empty() {
        return Verdict::pass("the database holds no other program's tables");
    }
    Verdict::fail("the database holds another program's tables")
        .detail(format!("{} contains {}. mautrix bridges refuse to start on it (ForeignTablesFound).", database.shown_uri, found.join(", ")))
        .evidence("field", database.field.clone())
        .evidence("tables", found)
        .fix([
            "Create a separate database for the bridge (`createdb -O <user> <name>`, or `CREATE DATABASE` in SQL; for SQLite, a new file).".to_owned(),
            format!("Point `{}` at the new database and restart the bridge.", database.field),
            "Only if you must keep the shared database: start the bridge with its flag to ignore foreign tables (see its --help), knowing table names may clash later.".to_owned(),
        ])
        .faq("foreigntablesfound-the-database-contains-foreign-tables")
}
