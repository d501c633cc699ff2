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

    /// YAML documents of the shapes configs and registrations have: maps
    /// of known and random keys, lists, scalars of every type, nested,
    /// written as JSON (which is YAML) or as block YAML.
    pub fn yaml_documents(
        keys: &'static [&'static str],
    ) -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let scalar = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            "\\PC{0,20}".prop_map(serde_json::Value::from),
        ];
        let key = prop_oneof![
            prop::sample::select(keys).prop_map(str::to_owned),
            "[a-z_.]{1,10}"
        ];
        let value = scalar.prop_recursive(4, 40, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                prop::collection::btree_map(key.clone(), inner, 0..6)
                    .prop_map(|map| serde_json::Value::Object(map.into_iter().collect())),
            ]
        });
        (value, any::<bool>()).prop_map(|(value, block)| {
            if block {
                serde_saphyr::to_string(&value).unwrap_or_default()
            } else {
                value.to_string()
            }
        })
    }
}
