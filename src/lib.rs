//! bridge-doctor: diagnoses Matrix appservice bridges. See ARCHITECTURE.md
//! for the pipeline (facts -> checks -> renderers) and where things go.

pub mod checks;
pub mod facts;
pub mod input;
pub mod knowledge;
pub mod matrix;
pub mod packet;
pub mod render;
pub mod service;
pub mod shared;

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
