//! How the homeserver and each bridge really run: the compose file beside
//! the homeserver's config (read with its `.env`, named volumes found under
//! Docker's folder), the systemd unit whose `ExecStart` names a config, and
//! which compose service names resolve only inside the compose network.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::input::compose::{self, Project, Source};

/// Where systemd keeps unit files, most specific first.
pub const UNIT_ROOTS: &[&str] = &[
    "/etc/systemd/system",
    "/run/systemd/system",
    "/lib/systemd/system",
    "/usr/lib/systemd/system",
];

/// The compose file of the deployment: beside the homeserver's config or
/// up to two folders above, the nearest first.
pub fn compose_file(homeserver_config: &Path) -> Option<PathBuf> {
    homeserver_config
        .ancestors()
        .skip(1)
        .take(3)
        .flat_map(|folder| compose::FILE_NAMES.iter().map(move |n| folder.join(n)))
        .find(|file| file.is_file())
}

/// The compose file read as `docker compose` would (the process
/// environment over `.env` beside it), each mount's place on this machine
/// found; a mount that points nowhere is a note.
pub fn load_compose(file: &Path, docker_root: &Path) -> Result<Project, String> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        format!(
            "{}: cannot read the compose file: {e}; check that this user may read it",
            file.display()
        )
    })?;
    let dot_env: HashMap<String, String> = std::fs::read_to_string(file.with_file_name(".env"))
        .map(|text| compose::parse_env_file(&text).into_iter().collect())
        .unwrap_or_default();
    let lookup = |name: &str| {
        std::env::var(name)
            .ok()
            .or_else(|| dot_env.get(name).cloned())
    };
    let mut project = Project::parse(file, &text, &lookup)?;
    let mut notes = Vec::new();
    for service in &mut project.services {
        for mount in &mut service.mounts {
            mount.host = match &mount.source {
                Source::Bind(path) => match path.canonicalize() {
                    Ok(real) => Some(real),
                    Err(_) => {
                        notes.push(format!(
                            "{}: service `{}` mounts {} at {}, which does not exist on this machine; correct the source (a relative path is from the compose file's folder) or create it",
                            file.display(),
                            service.name,
                            path.display(),
                            mount.target.display()
                        ));
                        None
                    }
                },
                Source::Volume(name) => {
                    let data = docker_root.join("volumes").join(name).join("_data");
                    data.is_dir().then_some(data)
                }
            };
        }
    }
    project.notes.extend(notes);
    Ok(project)
}

/// The systemd service units under some roots, each with its `ExecStart`
/// command lines, read once per run.
pub struct Units(Vec<(String, String)>);

impl Units {
    pub fn read(roots: &[PathBuf]) -> Units {
        let units = roots
            .iter()
            .flat_map(|root| units_in(root))
            .filter_map(|unit| {
                let name = unit.file_name()?.to_string_lossy().into_owned();
                Some((name, exec_start(&unit)?))
            })
            .collect();
        Units(units)
    }

    /// The unit (file name) whose `ExecStart` names `config` or the folder
    /// holding it (the playbook's units mount the folder into a container).
    pub fn naming(&self, config: &Path) -> Option<String> {
        let file = config.display().to_string();
        let folder = config.parent()?.display().to_string();
        let names_it = |command: &str| {
            command.contains(&file)
                || command.match_indices(&folder).any(|(at, _)| {
                    let after = command[at + folder.len()..].chars().next();
                    matches!(
                        after,
                        None | Some(',' | ':' | ' ' | '"' | '\'' | '/' | '\n')
                    )
                })
        };
        self.0
            .iter()
            .find(|(_, command)| names_it(command))
            .map(|(name, _)| name.clone())
    }
}

fn units_in(root: &Path) -> Vec<PathBuf> {
    let mut units: Vec<PathBuf> = std::fs::read_dir(root)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    units.retain(|u| u.extension().is_some_and(|e| e == "service") && u.is_file());
    units.sort();
    units
}

/// The `ExecStart=` lines of a unit file, continuation lines joined.
fn exec_start(unit: &Path) -> Option<String> {
    let text = std::fs::read_to_string(unit).ok()?;
    let joined = text.replace("\\\n", " ");
    let commands: Vec<&str> = joined
        .lines()
        .filter_map(|line| line.trim().strip_prefix("ExecStart="))
        .collect();
    (!commands.is_empty()).then(|| commands.join("\n"))
}

/// An address in a config that names a compose service which the doctor
/// cannot resolve: only the compose network knows it.
#[derive(Clone, Debug, PartialEq)]
pub struct NameInside {
    /// Where it is written: `file (field)`.
    pub written: String,
    pub name: String,
    pub service: String,
    /// The published address probed instead; `None`: not probed from here.
    pub via: Option<String>,
}

/// Which compose service names resolve from here, each looked up once.
pub struct Names<'a> {
    project: &'a Project,
    resolvable: HashMap<String, bool>,
}

/// How long one name may take to resolve; they resolve all at once.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

impl<'a> Names<'a> {
    /// Looks up every host of `urls` that is a service name of `project`.
    pub async fn resolve(project: &'a Project, urls: &[&str]) -> Names<'a> {
        let mut hosts: Vec<String> = urls
            .iter()
            .filter_map(|url| url::Url::parse(url).ok()?.host_str().map(str::to_owned))
            .filter(|host| project.service_named(host).is_some())
            .collect();
        hosts.sort();
        hosts.dedup();
        let lookups = hosts.iter().map(|host| async move {
            let lookup = tokio::net::lookup_host((host.as_str(), 0));
            let found = tokio::time::timeout(LOOKUP_TIMEOUT, lookup)
                .await
                .is_ok_and(|answer| answer.is_ok_and(|mut addresses| addresses.next().is_some()));
            (host.clone(), found)
        });
        Names {
            project,
            resolvable: futures::future::join_all(lookups)
                .await
                .into_iter()
                .collect(),
        }
    }

    /// For an address the doctor cannot resolve that names a compose
    /// service: the address to probe instead (through the service's
    /// published port; `None` when it publishes none), and the fact.
    pub fn inside(&self, url: &str, written: String) -> Option<(Option<String>, NameInside)> {
        let parsed = url::Url::parse(url).ok()?;
        let host = parsed.host_str()?;
        if self.resolvable.get(host).copied().unwrap_or(true) {
            return None;
        }
        let service = self.project.service_named(host)?;
        let via = parsed
            .port_or_known_default()
            .and_then(|port| service.published(port));
        let probed = via.as_ref().map(|via| {
            format!(
                "{}://{via}{}",
                parsed.scheme(),
                &parsed[url::Position::BeforePath..]
            )
        });
        let fact = NameInside {
            written,
            name: host.to_owned(),
            service: service.name.clone(),
            via,
        };
        Some((probed, fact))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn the_nearest_compose_file_up_to_two_folders_above() {
        let dir = tempfile::tempdir().unwrap();
        let hs = dir.path().join("stack/data/synapse/homeserver.yaml");
        write(&hs, "");
        assert_eq!(compose_file(&hs), None);
        write(&dir.path().join("compose.yaml"), "");
        assert_eq!(compose_file(&hs), None, "three folders above is too far");
        write(&dir.path().join("stack/docker-compose.yml"), "");
        assert_eq!(
            compose_file(&hs),
            Some(dir.path().join("stack/docker-compose.yml"))
        );
        write(&dir.path().join("stack/data/synapse/compose.yml"), "");
        assert_eq!(
            compose_file(&hs),
            Some(dir.path().join("stack/data/synapse/compose.yml"))
        );
    }

    #[test]
    fn mounts_found_on_this_machine_and_the_env_file_read() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let docker = root.join("docker");
        std::fs::create_dir_all(docker.join("volumes/stack_media/_data")).unwrap();
        std::fs::create_dir_all(root.join("stack/telegram")).unwrap();
        write(&root.join("stack/.env"), "BRIDGE_DIR=./telegram\n");
        let file = root.join("stack/compose.yaml");
        write(
            &file,
            "services:\n  telegram:\n    volumes: ['${BRIDGE_DIR}:/data', 'media:/media', './gone:/gone', 'nowhere:/x']\n",
        );
        let project = load_compose(&file, &docker).unwrap();
        let hosts: Vec<Option<PathBuf>> = project.services[0]
            .mounts
            .iter()
            .map(|m| m.host.clone())
            .collect();
        assert_eq!(
            hosts,
            [
                Some(root.join("stack/telegram")),
                Some(docker.join("volumes/stack_media/_data")),
                None,
                None,
            ]
        );
        assert_eq!(project.notes.len(), 1, "{:?}", project.notes);
        assert!(
            project.notes[0].contains("compose.yaml: service `telegram` mounts")
                && project.notes[0].contains("stack/gone at /gone, which does not exist"),
            "{:?}",
            project.notes
        );
        write(&file, "services: [\n");
        let broken = load_compose(&file, &docker).unwrap_err();
        assert!(
            broken.contains("compose.yaml") && broken.contains("not valid YAML"),
            "{broken}"
        );
    }

    #[test]
    fn the_unit_whose_exec_start_names_the_config_or_its_folder() {
        let dir = tempfile::tempdir().unwrap();
        let units = dir.path().join("system");
        write(
            &units.join("matrix-mautrix-telegram.service"),
            "[Service]\nExecStart=/usr/bin/env docker run --rm \\\n  --mount type=bind,src=/matrix/mautrix-telegram/config,dst=/config,ro \\\n  dock.mau.dev/mautrix/telegram\n",
        );
        write(
            &units.join("mautrix-whatsapp.service"),
            "[Service]\nExecStart=/opt/whatsapp/mautrix-whatsapp -c /opt/whatsapp/config.yaml\n",
        );
        write(
            &units.join("other.timer"),
            "ExecStart=/opt/signal/config.yaml\n",
        );
        let units = Units::read(&[dir.path().join("missing"), units]);
        let unit = |config: &str| units.naming(Path::new(config));
        assert_eq!(
            unit("/matrix/mautrix-telegram/config/config.yaml").as_deref(),
            Some("matrix-mautrix-telegram.service")
        );
        assert_eq!(
            unit("/opt/whatsapp/config.yaml").as_deref(),
            Some("mautrix-whatsapp.service")
        );
        assert_eq!(
            unit("/opt/signal/config.yaml"),
            None,
            "a timer is no service"
        );
        assert_eq!(
            unit("/matrix/mautrix-telegram/config-old/config.yaml"),
            None
        );
    }

    #[tokio::test]
    async fn service_names_reached_through_published_ports() {
        let lookup = |_: &str| None;
        let project = Project::parse(
            Path::new("/s/compose.yaml"),
            "services:\n  localhost: {}\n  synapse-not-resolvable-here:\n    ports: ['127.0.0.1:18008:8008']\n  bridge-not-resolvable-here: {}\n",
            &lookup,
        )
        .unwrap();
        let urls = [
            "http://synapse-not-resolvable-here:8008/x?y",
            "http://bridge-not-resolvable-here:29317",
            "http://localhost:8008",
            "https://matrix.org",
        ];
        let names = Names::resolve(&project, &urls).await;
        let (probed, fact) = names
            .inside(urls[0], "config.yaml (homeserver.address)".into())
            .unwrap();
        assert_eq!(probed.as_deref(), Some("http://127.0.0.1:18008/x?y"));
        assert_eq!(fact.via.as_deref(), Some("127.0.0.1:18008"));
        assert_eq!(fact.service, "synapse-not-resolvable-here");
        let (probed, fact) = names.inside(urls[1], "reg (url)".into()).unwrap();
        assert_eq!((probed, fact.via), (None, None));
        assert!(
            names.inside(urls[2], String::new()).is_none(),
            "resolves here"
        );
        assert!(names.inside(urls[3], String::new()).is_none(), "no service");
    }
}
