//! bridge-doctor: diagnoses Matrix appservice bridges. See ARCHITECTURE.md
//! for the pipeline (facts -> checks -> renderers) and where things go.

pub mod appservice;
pub mod bot;
pub mod bridge;
pub mod checks;
pub mod config;
pub mod database;
pub mod explain;
pub mod facts;
pub mod fields;
pub mod generate;
pub mod homeserver;
pub mod kb;
pub mod packet;
pub mod redact;
pub mod registration;
pub mod report;
pub mod run;
pub mod sanitize;
pub mod selfcheck;
pub mod store;
pub mod yaml;

#[cfg(test)]
pub(crate) mod testutil {
    use std::path::PathBuf;

    /// A file of `../shared/fixtures/`, which sits beside the repository.
    pub fn shared_fixture(relative: &str) -> PathBuf {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/fixtures")
            .join(relative);
        assert!(
            path.exists(),
            "fixture {} is missing: ../shared must sit beside the repository",
            path.display()
        );
        path
    }
}
