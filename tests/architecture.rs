//! The pipeline's stages stay layered: each folder of `src/` may use only
//! the stages below it (ARCHITECTURE.md), so no two stages import each
//! other and the shape stays visible in the tree.

use std::path::Path;

/// The stages, lowest first; a stage may use every stage of a lower layer,
/// never one of its own layer (its peers) or of a higher one.
const LAYERS: &[&[&str]] = &[
    &["shared"],
    &["input", "matrix", "knowledge"],
    &["facts"],
    &["checks"],
    &["render"],
    &["packet"],
    &["service"],
];

fn layer_of(stage: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&stage))
}

fn rust_files(dir: &Path, found: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// Every stage named after `crate::` in `text`, also inside `use crate::{a, b}`.
fn stages_used(text: &str) -> Vec<String> {
    let mut used = Vec::new();
    for (index, _) in text.match_indices("crate::") {
        let rest = &text[index + "crate::".len()..];
        let names: Vec<&str> = match rest.strip_prefix('{') {
            Some(group) => group[..group.find('}').unwrap_or(0)]
                .split(',')
                .map(|part| part.trim().split("::").next().unwrap_or_default())
                .collect(),
            None => vec![
                rest.split(|c: char| !c.is_alphanumeric() && c != '_')
                    .next()
                    .unwrap(),
            ],
        };
        used.extend(names.into_iter().map(str::to_owned));
    }
    used
}

#[test]
fn stages_only_use_the_stages_below_them() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut violations = Vec::new();
    for (layer, stages) in LAYERS.iter().enumerate() {
        for stage in *stages {
            let mut files = Vec::new();
            rust_files(&src.join(stage), &mut files);
            assert!(!files.is_empty(), "src/{stage}/ is missing");
            for file in files {
                let text = std::fs::read_to_string(&file).unwrap();
                for used in stages_used(&text) {
                    let above_or_peer = layer_of(&used).is_some_and(|l| l >= layer);
                    if used != *stage && above_or_peer {
                        violations.push(format!("{} uses crate::{used}", file.display()));
                    }
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "layering broken:\n{}",
        violations.join("\n")
    );
}

#[test]
fn only_main_lib_and_stage_folders_at_the_top_of_src() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            assert!(
                layer_of(&name).is_some(),
                "src/{name}/ is not a stage listed in ARCHITECTURE.md and this test"
            );
        } else {
            assert!(
                name == "main.rs" || name == "lib.rs",
                "src/{name}: code belongs in a stage folder"
            );
        }
    }
}

#[test]
fn the_layering_test_sees_imports() {
    assert_eq!(
        stages_used("use crate::facts::Facts;\nuse crate::{checks, render::json};"),
        ["facts", "checks", "render"]
    );
}
