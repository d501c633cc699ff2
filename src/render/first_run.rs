//! What `bridge-doctor` says when started with no config of its own: the
//! command to run next, with the homeserver config it found filled in.

use std::fmt::Write;
use std::path::{Path, PathBuf};

/// The guidance for a missing doctor config at `config_path`, given the
/// homeserver configs found in the usual places.
pub fn guidance(config_path: &Path, homeservers: &[PathBuf]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "bridge-doctor: there is no {}, so the doctor itself is not set up here.\n",
        config_path.display()
    );
    match homeservers {
        [] => {
            let _ = writeln!(
                out,
                "To check your bridges now, with nothing to set up, name your homeserver's config:\n    bridge-doctor check --homeserver /path/to/homeserver.yaml\n(none was found in the usual places: /etc/matrix-synapse, /etc/synapse, /data, /matrix/synapse/config, this folder)"
            );
        }
        [only] => {
            let _ = writeln!(
                out,
                "Found the homeserver config {}. To check its bridges now, with nothing to set up:\n    bridge-doctor check --homeserver {}",
                only.display(),
                only.display()
            );
        }
        several => {
            let _ = writeln!(
                out,
                "Found these homeserver configs; to check the bridges of one, with nothing to set up:"
            );
            for path in several {
                let _ = writeln!(
                    out,
                    "    bridge-doctor check --homeserver {}",
                    path.display()
                );
            }
        }
    }
    let _ = writeln!(
        out,
        "\nTo set up the doctor's bot (it answers in Matrix and warns you when a bridge breaks):\n    bridge-doctor generate-registration -c {config}   (writes an example {config} to fill in)\nthen, once it is filled in, the same command again writes the registration for the homeserver.",
        config = config_path.display()
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_next_command_with_the_homeserver_found() {
        let found = [PathBuf::from("/etc/matrix-synapse/homeserver.yaml")];
        let text = guidance(Path::new("config.yaml"), &found);
        assert!(
            text.contains("bridge-doctor check --homeserver /etc/matrix-synapse/homeserver.yaml"),
            "{text}"
        );
        assert!(
            text.contains("bridge-doctor generate-registration -c config.yaml"),
            "{text}"
        );
        let none = guidance(Path::new("config.yaml"), &[]);
        assert!(
            none.contains("--homeserver /path/to/homeserver.yaml"),
            "{none}"
        );
    }
}
