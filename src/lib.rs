//! bridge-doctor: diagnoses Matrix appservice bridges. One folder per stage
//! of the pipeline, lowest first; ARCHITECTURE.md says what goes where.

// matrix-sdk's sync future is deep: proving it Send needs more than the default.
#![recursion_limit = "256"]

pub mod shared;

pub mod input;
pub mod knowledge;
pub mod matrix;

pub mod facts;

pub mod checks;

pub mod render;

pub mod packet;
pub mod service;

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
