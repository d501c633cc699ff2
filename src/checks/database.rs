//! The bridge's own database: does it exist yet, can it be opened, and is
//! it only the bridge's?

use super::{Check, Context, Verdict};
use crate::facts::database::{DatabaseFacts, DatabaseState};

pub const CHECKS: &[Check] = &[
    Check {
        id: "database.not_created",
        run: not_created,
    },
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

fn database<'a>(ctx: &'a Context) -> Result<&'a DatabaseFacts, Verdict> {
    ctx.target
        .database
        .as_ref()
        .ok_or_else(|| Verdict::skip("no database URI in the bridge config"))
}

fn not_created(ctx: &Context) -> Verdict {
    let database = match database(ctx) {
        Ok(database) => database,
        Err(skip) => return skip,
    };
    match database.state {
        DatabaseState::NotCreated => {}
        DatabaseState::Unreachable(_) => {
            return Verdict::skip("the database cannot be opened (database.unreachable)");
        }
        DatabaseState::Opened { .. } => {
            return Verdict::pass(format!("the database {} exists", database.shown_uri));
        }
    }
    Verdict::warn(format!(
        "the database file {} does not exist yet: the bridge has not started",
        database.location
    ))
    .detail(format!(
        "`{}` names a SQLite file the bridge creates on its first start. This is not a fault; the database checks run once it exists.",
        database.field
    ))
    .evidence("field", database.field.clone())
    .fix([
        "Start the bridge once; it creates the file.".to_owned(),
        format!(
            "If the bridge already runs, it runs in another working directory: relative paths in `{}` are taken from there, and the doctor looked next to the config. Write an absolute path.",
            database.field
        ),
    ])
}

fn unreachable(ctx: &Context) -> Verdict {
    let database = match database(ctx) {
        Ok(database) => database,
        Err(skip) => return skip,
    };
    match &database.state {
        DatabaseState::Opened { .. } => Verdict::pass(format!("the database {} opens", database.shown_uri)),
        DatabaseState::NotCreated => Verdict::skip("the SQLite file does not exist yet (database.not_created)"),
        DatabaseState::Unreachable(error) => Verdict::fail(format!("the database {} cannot be opened", database.shown_uri))
            .detail(format!("Opening it read-only failed: {error}"))
            .evidence("field", database.field.clone())
            .fix([
                format!("Check `{}` in the bridge config: host, port, database name and user.", database.field),
                "For SQLite, check that this user may read the file (relative paths are taken from the config's folder here; the bridge takes them from its working directory).".to_owned(),
                "For PostgreSQL, check that the server runs and accepts this user (`psql <uri>`).".to_owned(),
            ]),
    }
}

/// What in the database belongs to someone else: a homeserver's tables,
/// a `database_owner` naming another program, another target's database.
fn foreign_evidence(ctx: &Context, database: &DatabaseFacts) -> Vec<String> {
    let DatabaseState::Opened { tables, owners } = &database.state else {
        return Vec::new();
    };
    let mut found: Vec<String> = FOREIGN_MARKERS
        .iter()
        .filter(|(table, _)| tables.iter().any(|t| t == table))
        .map(|(table, program)| format!("{table} ({program})"))
        .collect();
    // Only a program the config names can be told from its owner entry.
    if let Some(software) = ctx.target.config().and_then(|c| c.software()) {
        found.extend(
            owners
                .iter()
                .filter(|owner| **owner != software)
                .map(|owner| format!("database_owner = {owner} (this config is {software})")),
        );
    }
    found.extend(
        ctx.facts
            .targets
            .iter()
            .filter(|other| other.id != ctx.target.id)
            .filter(|other| {
                other
                    .database
                    .as_ref()
                    .is_some_and(|d| d.location == database.location)
            })
            .map(|other| format!("the database of {} too", other.id)),
    );
    found
}

fn foreign_tables(ctx: &Context) -> Verdict {
    let database = match database(ctx) {
        Ok(database) => database,
        Err(skip) => return skip,
    };
    if !matches!(database.state, DatabaseState::Opened { .. }) {
        return Verdict::skip("the database could not be opened");
    }
    let found = foreign_evidence(ctx, database);
    if found.is_empty() {
        return Verdict::pass("the database holds no other program's tables");
    }
    Verdict::fail("the database holds another program's tables")
        .detail(format!("{} is {}. mautrix bridges refuse to start on it (ForeignTablesFound), and two programs in one database overwrite each other's tables.", database.shown_uri, found.join(", ")))
        .evidence("field", database.field.clone())
        .evidence("tables", found)
        .fix([
            "Create a separate database for the bridge (`createdb -O <user> <name>`, or `CREATE DATABASE` in SQL; for SQLite, a new file).".to_owned(),
            format!("Point `{}` at the new database and restart the bridge.", database.field),
            "Only if you must keep the shared database: start the bridge with its flag to ignore foreign tables (see its --help), knowing table names may clash later.".to_owned(),
        ])
        .faq("foreigntablesfound-the-database-contains-foreign-tables")
}
