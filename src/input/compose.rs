//! docker-compose files: the services, what each one mounts where, the
//! ports it publishes and the names the other containers reach it by.
//! Pure: the file's text and its environment in, the model out. Where a
//! named volume lives on this machine, and whether a folder exists, is for
//! `facts::deployment` to find out.

use std::path::{Component, Path, PathBuf};

use crate::input::yaml::{Document, Node};

/// The file names `docker compose` looks for, in its order of preference.
pub const FILE_NAMES: &[&str] = &[
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];

/// One compose file, interpolated.
#[derive(Clone, Debug, PartialEq)]
pub struct Project {
    pub file: PathBuf,
    /// The project name: `name:`, else `COMPOSE_PROJECT_NAME`, else the
    /// folder's name, normalised as compose does.
    pub name: String,
    pub services: Vec<Service>,
    /// What was skipped, one line each naming the file, service and fix.
    pub notes: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Service {
    pub name: String,
    /// `container_name`, else compose's `<project>-<service>-1`.
    pub container_name: String,
    /// Every name other containers reach it by: the service's own,
    /// `container_name`, `hostname` and its network aliases.
    pub names: Vec<String>,
    pub mounts: Vec<Mount>,
    pub ports: Vec<Port>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Mount {
    pub source: Source,
    /// Where the container sees it.
    pub target: PathBuf,
    pub read_only: bool,
    /// Where it is on this machine, once known: a bind's source, a named
    /// volume's `_data` folder (`facts::deployment` fills it in).
    pub host: Option<PathBuf>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// A folder or file of the host (absolute, `..` and `~` resolved).
    Bind(PathBuf),
    /// A named volume, by Docker's name for it (`<project>_<name>`, or its
    /// `name:`, or the external volume's own name).
    Volume(String),
}

/// A published port: the container's `target` reached at `host_ip:published`.
#[derive(Clone, Debug, PartialEq)]
pub struct Port {
    pub host_ip: Option<String>,
    pub published: u16,
    pub target: u16,
}

/// How a variable is looked up: the process environment first, then `.env`.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

impl Project {
    /// Reads the compose file `text` of `file`; `.env` and the environment
    /// come through `lookup`. Entries that make no sense are skipped with a
    /// note; only a file that is not YAML or has no services is an error.
    pub fn parse(file: &Path, text: &str, lookup: Lookup) -> Result<Project, String> {
        let document = Document::parse(file, text).map_err(|e| e.to_string())?;
        let mut reader = Reader {
            file,
            lookup,
            notes: Vec::new(),
        };
        let Some(services) = document
            .root
            .get("services")
            .filter(|s| !s.entries().is_empty())
        else {
            return Err(format!(
                "{}: no `services:` in it, so it says nothing about which container runs what. Check that it is the deployment's compose file.",
                file.display()
            ));
        };
        let name = reader.project_name(&document.root);
        let volumes = reader.volume_names(&document.root, &name);
        let services = services
            .entries()
            .iter()
            .map(|(service, node)| reader.service(&name, service, node, &volumes))
            .collect();
        Ok(Project {
            file: file.to_owned(),
            name,
            services,
            notes: reader.notes,
        })
    }

    /// The service other containers reach as `host` (a URL's host name).
    pub fn service_named(&self, host: &str) -> Option<&Service> {
        self.services
            .iter()
            .find(|s| s.names.iter().any(|n| n.eq_ignore_ascii_case(host)))
    }

    /// The service whose mounts hold `host_file`, a path on this machine:
    /// of several, the one with the narrowest mount (Synapse mounting all
    /// of `./bridges` does not own `./bridges/telegram`, which the bridge's
    /// service mounts itself).
    pub fn service_holding(&self, host_file: &Path) -> Option<&Service> {
        self.services
            .iter()
            .filter_map(|s| Some((s, s.narrowest_mount_holding(host_file)?)))
            .min_by_key(|(_, depth)| std::cmp::Reverse(*depth))
            .map(|(service, _)| service)
    }
}

impl Service {
    /// Where `container_path` (as the service sees it) is on this machine.
    pub fn to_host(&self, container_path: &Path) -> Option<PathBuf> {
        to_host(&self.mounts, container_path)
    }

    /// How deep the deepest of its mounts holding `host_file` is.
    fn narrowest_mount_holding(&self, host_file: &Path) -> Option<usize> {
        self.mounts
            .iter()
            .filter_map(|m| m.host.as_ref())
            .filter(|host| host_file.starts_with(host))
            .map(|host| host.components().count())
            .max()
    }

    /// Where this machine reaches the container's port `target`: the
    /// published address, a wildcard host IP read as loopback.
    pub fn published(&self, target: u16) -> Option<String> {
        let port = self.ports.iter().find(|p| p.target == target)?;
        let ip = match port.host_ip.as_deref() {
            None | Some("" | "0.0.0.0") => "127.0.0.1".to_owned(),
            Some("::") => "[::1]".to_owned(),
            Some(ip) if ip.contains(':') => format!("[{}]", ip.trim_matches(['[', ']'])),
            Some(ip) => ip.to_owned(),
        };
        Some(format!("{ip}:{}", port.published))
    }
}

/// Where `container_path` is on this machine through `mounts`: under the
/// mount with the longest target holding it; `None` when no mount holds it
/// (it is in the container's own file system) or that mount's place here
/// is unknown.
pub fn to_host(mounts: &[Mount], container_path: &Path) -> Option<PathBuf> {
    let (mount, rest) = mounts
        .iter()
        .filter_map(|m| Some((m, container_path.strip_prefix(&m.target).ok()?)))
        .max_by_key(|(m, _)| m.target.components().count())?;
    let host = mount.host.as_ref()?;
    Some(if rest.as_os_str().is_empty() {
        host.clone()
    } else {
        host.join(rest)
    })
}

/// Reads the parts of one file, collecting notes on what it skips.
struct Reader<'a> {
    file: &'a Path,
    lookup: Lookup<'a>,
    notes: Vec<String>,
}

impl Reader<'_> {
    /// A scalar with its variables replaced; a bad reference is a note.
    fn text(&mut self, node: &Node, field: &str) -> Option<String> {
        let raw = node.scalar_text()?;
        match interpolate(&raw, self.lookup) {
            Ok(text) => Some(text),
            Err(message) => {
                self.notes.push(format!(
                    "{}:{}: {field}: {message}; set the variable in the environment or in .env beside the file",
                    self.file.display(),
                    node.pos
                ));
                None
            }
        }
    }

    fn field(&mut self, node: &Node, key: &str, field: &str) -> Option<String> {
        let value = node.get(key)?;
        self.text(value, field)
    }

    fn project_name(&mut self, root: &Node) -> String {
        let named = self
            .field(root, "name", "name")
            .or_else(|| (self.lookup)("COMPOSE_PROJECT_NAME"))
            .filter(|n| !n.is_empty());
        let folder = || {
            self.file
                .parent()
                .and_then(Path::file_name)
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        normalise_project_name(&named.unwrap_or_else(folder))
    }

    /// Docker's name of each named volume of the file's `volumes:`.
    fn volume_names(&mut self, root: &Node, project: &str) -> Vec<(String, String)> {
        let Some(volumes) = root.get("volumes") else {
            return Vec::new();
        };
        let mut names = Vec::new();
        for (key, volume) in volumes.entries() {
            let external = volume.get("external");
            let docker_name = self
                .field(volume, "name", &format!("volumes.{key}.name"))
                .or_else(|| {
                    let external = external?;
                    let legacy = external.get("name").and_then(Node::scalar_text);
                    legacy.or_else(|| (external.as_bool() == Some(true)).then(|| key.clone()))
                })
                .unwrap_or_else(|| format!("{project}_{key}"));
            names.push((key.clone(), docker_name));
        }
        names
    }

    fn service(
        &mut self,
        project: &str,
        name: &str,
        node: &Node,
        volumes: &[(String, String)],
    ) -> Service {
        let container_name = self
            .field(
                node,
                "container_name",
                &format!("services.{name}.container_name"),
            )
            .unwrap_or_else(|| format!("{project}-{name}-1"));
        let mut names = vec![name.to_owned(), container_name.clone()];
        names.extend(self.field(node, "hostname", &format!("services.{name}.hostname")));
        for (_, network) in node.get("networks").map(Node::entries).unwrap_or_default() {
            for alias in network.get("aliases").map(Node::items).unwrap_or_default() {
                names.extend(self.text(alias, &format!("services.{name}.networks.aliases")));
            }
        }
        let mounts = node
            .get("volumes")
            .map(Node::items)
            .unwrap_or_default()
            .iter()
            .filter_map(|v| self.mount(name, v, project, volumes))
            .collect();
        let ports = node
            .get("ports")
            .map(Node::items)
            .unwrap_or_default()
            .iter()
            .filter_map(|p| self.port(name, p))
            .collect();
        Service {
            name: name.to_owned(),
            container_name,
            names,
            mounts,
            ports,
        }
    }

    fn mount(
        &mut self,
        service: &str,
        node: &Node,
        project: &str,
        volumes: &[(String, String)],
    ) -> Option<Mount> {
        let field = format!("services.{service}.volumes");
        let (source, target, read_only) = match node.scalar_text() {
            Some(_) => {
                let short = self.text(node, &field)?;
                let mut parts = short.splitn(3, ':');
                let source = parts.next()?.to_owned();
                // A target alone is an anonymous volume: nothing to read.
                let target = parts.next()?.to_owned();
                let mode = parts.next().unwrap_or_default();
                let read_only = mode.split(',').any(|m| m == "ro");
                (source, target, read_only)
            }
            None => {
                let kind = self.field(node, "type", &field).unwrap_or_default();
                if !matches!(kind.as_str(), "bind" | "volume") {
                    return None;
                }
                let source = self.field(node, "source", &field)?;
                let target = self.field(node, "target", &field)?;
                let read_only = node.get("read_only").and_then(Node::as_bool) == Some(true);
                (source, target, read_only)
            }
        };
        let is_path = source.starts_with(['/', '.', '~']);
        let source = if is_path {
            Source::Bind(self.host_path(&source))
        } else {
            let known = volumes.iter().find(|(key, _)| *key == source);
            Source::Volume(
                known
                    .map(|(_, docker)| docker.clone())
                    .unwrap_or_else(|| format!("{project}_{source}")),
            )
        };
        let host = match &source {
            Source::Bind(path) => Some(path.clone()),
            Source::Volume(_) => None,
        };
        Some(Mount {
            source,
            target: PathBuf::from(target),
            read_only,
            host,
        })
    }

    /// A bind source as an absolute path: `~` is the home folder, a
    /// relative path is from the compose file's folder.
    fn host_path(&self, source: &str) -> PathBuf {
        let base = self.file.parent().unwrap_or(Path::new("/"));
        let joined = match source.strip_prefix('~') {
            Some(rest) => PathBuf::from((self.lookup)("HOME").unwrap_or_default())
                .join(rest.trim_start_matches('/')),
            None => base.join(source),
        };
        lexically_normal(&joined)
    }

    fn port(&mut self, service: &str, node: &Node) -> Option<Port> {
        let field = format!("services.{service}.ports");
        let (host_ip, published, target, protocol) = match node.scalar_text() {
            Some(_) => {
                let short = self.text(node, &field)?;
                let (rest, protocol) = short.split_once('/').unwrap_or((&short, "tcp"));
                let (host_ip, published, target) = split_short_port(rest);
                (host_ip, published, target, protocol.to_owned())
            }
            None => (
                self.field(node, "host_ip", &field),
                self.field(node, "published", &field),
                self.field(node, "target", &field)?,
                self.field(node, "protocol", &field)
                    .unwrap_or_else(|| "tcp".to_owned()),
            ),
        };
        if protocol != "tcp" {
            return None;
        }
        let published = published.filter(|p| !p.is_empty())?;
        if published.contains('-') || target.contains('-') {
            self.notes.push(format!(
                "{}: {field}: the port range {published}:{target} is skipped; an address with one of its ports is not probed through it",
                self.file.display()
            ));
            return None;
        }
        let (Ok(published), Ok(target)) = (published.parse(), target.parse()) else {
            self.notes.push(format!(
                "{}: {field}: `{published}:{target}` is not a port number; write it as \"HOST_PORT:CONTAINER_PORT\"",
                self.file.display()
            ));
            return None;
        };
        Some(Port {
            host_ip,
            published,
            target,
        })
    }
}

/// `[IP:]PUBLISHED:TARGET`, `TARGET` alone (published on a random port:
/// none known) or `IP::TARGET`; an IPv6 address in brackets.
fn split_short_port(text: &str) -> (Option<String>, Option<String>, String) {
    let (host_ip, rest) = match text.strip_prefix('[') {
        Some(bracketed) => match bracketed.split_once("]:") {
            Some((ip, rest)) => (Some(ip.to_owned()), rest),
            None => (None, text),
        },
        None => match text.matches(':').count() {
            2 => {
                let (ip, rest) = text.split_once(':').unwrap_or_default();
                (Some(ip.to_owned()), rest)
            }
            _ => (None, text),
        },
    };
    match rest.split_once(':') {
        Some((published, target)) => (host_ip, Some(published.to_owned()), target.to_owned()),
        None => (host_ip, None, rest.to_owned()),
    }
}

/// Compose's project name: lower case, only `a-z0-9_-`, starting with a
/// letter or digit.
pub fn normalise_project_name(name: &str) -> String {
    let kept: String = name
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    kept.trim_start_matches(['_', '-']).to_owned()
}

/// `..` and `.` taken out without asking the file system (the path may
/// not exist here).
fn lexically_normal(path: &Path) -> PathBuf {
    let mut normal = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                normal.pop();
            }
            Component::CurDir => {}
            other => normal.push(other),
        }
    }
    normal
}

/// Compose's interpolation: `$$` is `$`; `$VAR`, `${VAR}`; `${VAR:-x}`
/// (unset or empty), `${VAR-x}` (unset); `${VAR:+x}`, `${VAR+x}`;
/// `${VAR:?message}`, `${VAR?message}` are errors when unset (or empty).
/// Defaults may hold variables themselves. An unset variable is empty.
pub fn interpolate(text: &str, lookup: Lookup) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(braced) = after.strip_prefix('{') {
            let end = closing_brace(braced)
                .ok_or_else(|| format!("`${{{braced}` has no closing `}}`"))?;
            out.push_str(&expand(&braced[..end], lookup)?);
            rest = &braced[end + 1..];
        } else {
            let length = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            if length == 0 {
                out.push('$');
            } else {
                out.push_str(&lookup(&after[..length]).unwrap_or_default());
            }
            rest = &after[length..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The index of the `}` closing a `${`, nested `${...}` skipped.
fn closing_brace(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (index, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return Some(index),
            '}' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// One `${...}` body.
fn expand(body: &str, lookup: Lookup) -> Result<String, String> {
    let name_end = body
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(body.len());
    let (name, operator) = body.split_at(name_end);
    let value = lookup(name);
    let set = value.is_some();
    let filled = value.as_deref().is_some_and(|v| !v.is_empty());
    let value = value.unwrap_or_default();
    let (with_colon, rest) = match operator.strip_prefix(':') {
        Some(rest) => (true, rest),
        None => (false, operator),
    };
    let present = if with_colon { filled } else { set };
    let Some(kind) = rest.chars().next() else {
        return Ok(value);
    };
    let argument = &rest[kind.len_utf8()..];
    match kind {
        '-' if present => Ok(value),
        '-' => interpolate(argument, lookup),
        '+' if present => interpolate(argument, lookup),
        '+' => Ok(String::new()),
        '?' if present => Ok(value),
        '?' => Err(format!("`{name}` is required: {argument}")),
        _ => Err(format!("`${{{body}}}` is not a substitution compose knows")),
    }
}

/// The `KEY=VALUE` lines of a `.env` file (comments, blank lines and
/// `export ` left out, quotes taken off).
pub fn parse_env_file(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| {
            let line = line.strip_prefix("export ").unwrap_or(line);
            let (key, value) = line.split_once('=')?;
            let value = value.trim();
            let unquoted = ['"', '\'']
                .iter()
                .find_map(|q| value.strip_prefix(*q)?.strip_suffix(*q))
                .map(str::to_owned)
                .unwrap_or_else(|| {
                    // An unquoted value ends at a ` #` comment.
                    value
                        .split(" #")
                        .next()
                        .unwrap_or_default()
                        .trim()
                        .to_owned()
                });
            Some((key.trim().to_owned(), unquoted))
        })
        .collect()
}

#[cfg(test)]
mod tests;
