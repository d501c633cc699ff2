use std::collections::HashMap;

use super::*;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn parse_with(text: &str, vars: &[(&str, &str)]) -> Project {
    let vars = env(vars);
    let lookup = |name: &str| vars.get(name).cloned();
    Project::parse(Path::new("/srv/Matrix Stack/compose.yaml"), text, &lookup).unwrap()
}

fn parse(text: &str) -> Project {
    parse_with(text, &[("HOME", "/home/admin")])
}

#[test]
fn interpolation_as_compose_does_it() {
    let vars = env(&[("SET", "value"), ("EMPTY", ""), ("INNER", "inner")]);
    let lookup = |name: &str| vars.get(name).cloned();
    let cases = [
        ("$SET/x", "value/x"),
        ("${SET}", "value"),
        ("${UNSET}", ""),
        ("$UNSET.", "."),
        ("$$SET", "$SET"),
        ("a$", "a$"),
        ("${UNSET:-default}", "default"),
        ("${EMPTY:-default}", "default"),
        ("${EMPTY-default}", ""),
        ("${UNSET-default}", "default"),
        ("${SET:-default}", "value"),
        ("${UNSET:-${INNER}/x}", "inner/x"),
        ("${SET:+alt}", "alt"),
        ("${UNSET+alt}", ""),
        ("${SET:?needed}", "value"),
    ];
    for (text, want) in cases {
        assert_eq!(interpolate(text, &lookup).unwrap(), want, "{text}");
    }
    let err = interpolate("${UNSET:?the bridge's port}", &lookup).unwrap_err();
    assert!(
        err.contains("`UNSET` is required: the bridge's port"),
        "{err}"
    );
    assert!(interpolate("${SET", &lookup).is_err());
}

#[test]
fn env_file_lines() {
    let text = "# comment\n\nexport A=1\nB=\"two words\"\nC='x # y'\nD=plain # trailing\n";
    assert_eq!(
        parse_env_file(text),
        [
            ("A".to_owned(), "1".to_owned()),
            ("B".to_owned(), "two words".to_owned()),
            ("C".to_owned(), "x # y".to_owned()),
            ("D".to_owned(), "plain".to_owned()),
        ]
    );
}

#[test]
fn short_and_long_volumes() {
    let project = parse(
        "services:\n  synapse:\n    volumes:\n      - ./synapse:/data\n      - ./bridges/../registrations:/registrations:ro\n      - /srv/media:/media:ro,z\n      - ~/certs:/certs:z\n      - /anonymous\n      - type: bind\n        source: ./logs\n        target: /logs\n        read_only: true\n      - type: tmpfs\n        target: /tmp\n",
    );
    let mounts = &project.services[0].mounts;
    let seen: Vec<(Source, &str, bool)> = mounts
        .iter()
        .map(|m| (m.source.clone(), m.target.to_str().unwrap(), m.read_only))
        .collect();
    let bind = |p: &str| Source::Bind(PathBuf::from(p));
    assert_eq!(
        seen,
        [
            (bind("/srv/Matrix Stack/synapse"), "/data", false),
            (
                bind("/srv/Matrix Stack/registrations"),
                "/registrations",
                true
            ),
            (bind("/srv/media"), "/media", true),
            (bind("/home/admin/certs"), "/certs", false),
            (bind("/srv/Matrix Stack/logs"), "/logs", true),
        ]
    );
}

#[test]
fn named_volumes_by_their_docker_names() {
    let project = parse(
        "name: Chat_Stack\nservices:\n  telegram:\n    volumes:\n      - telegram-data:/data\n      - type: volume\n        source: shared\n        target: /shared\n      - old:/old\n      - undeclared:/u\nvolumes:\n  telegram-data:\n  shared:\n    name: everyone-shares\n  old:\n    external: true\n",
    );
    let sources: Vec<&Source> = project.services[0]
        .mounts
        .iter()
        .map(|m| &m.source)
        .collect();
    let volume = |n: &str| Source::Volume(n.to_owned());
    assert_eq!(
        sources,
        [
            &volume("chat_stack_telegram-data"),
            &volume("everyone-shares"),
            &volume("old"),
            &volume("chat_stack_undeclared"),
        ]
    );
    assert!(project.services[0].mounts.iter().all(|m| m.host.is_none()));
}

#[test]
fn project_name_from_the_file_the_environment_or_the_folder() {
    let text = "services:\n  synapse: {}\n";
    assert_eq!(parse(text).name, "matrixstack", "the folder, normalised");
    assert_eq!(
        parse_with(text, &[("COMPOSE_PROJECT_NAME", "From-Env")]).name,
        "from-env"
    );
    let named = format!("name: ${{STACK:-given}}\n{text}");
    assert_eq!(
        parse_with(&named, &[("COMPOSE_PROJECT_NAME", "env")]).name,
        "given"
    );
    let service = &parse(text).services[0];
    assert_eq!(service.container_name, "matrixstack-synapse-1");
    assert_eq!(service.names, ["synapse", "matrixstack-synapse-1"]);
}

#[test]
fn ports_short_and_long() {
    let project = parse(
        "services:\n  synapse:\n    container_name: matrix-synapse\n    hostname: hs\n    networks:\n      back:\n        aliases: [matrix]\n    ports:\n      - \"8008:8008\"\n      - \"127.0.0.1:8448:8009\"\n      - 9000\n      - \"[::1]:9001:9001/tcp\"\n      - \"5000:5000/udp\"\n      - \"7000-7002:7000-7002\"\n      - target: 9100\n        published: \"19100\"\n        host_ip: 0.0.0.0\n",
    );
    let service = &project.services[0];
    let ports: Vec<(Option<&str>, u16, u16)> = service
        .ports
        .iter()
        .map(|p| (p.host_ip.as_deref(), p.published, p.target))
        .collect();
    assert_eq!(
        ports,
        [
            (None, 8008, 8008),
            (Some("127.0.0.1"), 8448, 8009),
            (Some("::1"), 9001, 9001),
            (Some("0.0.0.0"), 19100, 9100),
        ]
    );
    assert_eq!(service.published(8008).as_deref(), Some("127.0.0.1:8008"));
    assert_eq!(service.published(8009).as_deref(), Some("127.0.0.1:8448"));
    assert_eq!(service.published(9001).as_deref(), Some("[::1]:9001"));
    assert_eq!(service.published(9100).as_deref(), Some("127.0.0.1:19100"));
    assert_eq!(service.published(9000), None, "published on a random port");
    assert_eq!(project.notes.len(), 1, "{:?}", project.notes);
    assert!(
        project.notes[0].contains("7000-7002"),
        "{:?}",
        project.notes
    );
    assert_eq!(service.names, ["synapse", "matrix-synapse", "hs", "matrix"]);
    assert_eq!(
        project.service_named("MATRIX").map(|s| s.name.as_str()),
        Some("synapse")
    );
}

#[test]
fn paths_map_through_the_owning_service_only() {
    let project = parse(
        "services:\n  synapse:\n    volumes: ['./synapse:/data', './synapse/media:/data/media_store']\n  telegram:\n    volumes: ['./telegram:/data']\n",
    );
    let [synapse, telegram] = &project.services[..] else {
        panic!()
    };
    let data = Path::new("/data/mautrix-telegram.db");
    assert_eq!(
        telegram.to_host(data).unwrap(),
        Path::new("/srv/Matrix Stack/telegram/mautrix-telegram.db")
    );
    assert_eq!(
        synapse.to_host(data).unwrap(),
        Path::new("/srv/Matrix Stack/synapse/mautrix-telegram.db")
    );
    assert_eq!(
        synapse.to_host(Path::new("/data/media_store/x")).unwrap(),
        Path::new("/srv/Matrix Stack/synapse/media/x"),
        "the longest mount wins"
    );
    assert_eq!(synapse.to_host(Path::new("/etc/passwd")), None);
    assert_eq!(
        project
            .service_holding(Path::new("/srv/Matrix Stack/telegram/config.yaml"))
            .map(|s| s.name.as_str()),
        Some("telegram")
    );
    let shared = parse(
        "services:\n  synapse:\n    volumes: ['./bridges:/bridges:ro']\n  telegram:\n    volumes: ['./bridges/telegram:/data']\n",
    );
    let owner = |file: &str| {
        shared
            .service_holding(Path::new(file))
            .map(|s| s.name.as_str())
    };
    assert_eq!(
        owner("/srv/Matrix Stack/bridges/telegram/config.yaml"),
        Some("telegram"),
        "the narrowest mount owns it"
    );
    assert_eq!(
        owner("/srv/Matrix Stack/bridges/whatsapp/config.yaml"),
        Some("synapse")
    );
    assert_eq!(owner("/srv/Matrix Stack/other.yaml"), None);
}

#[test]
fn bad_references_and_files_are_one_line_each() {
    let project = parse("services:\n  x:\n    volumes: ['${DATA:?set DATA}:/data']\n");
    assert!(project.services[0].mounts.is_empty());
    assert_eq!(project.notes.len(), 1);
    assert!(
        project.notes[0].contains("compose.yaml:3:")
            && project.notes[0].contains("`DATA` is required")
            && project.notes[0].contains(".env"),
        "{:?}",
        project.notes
    );
    let lookup = |_: &str| None;
    let broken = Project::parse(Path::new("/c/compose.yaml"), "services: [\n", &lookup);
    assert!(broken.unwrap_err().contains("/c/compose.yaml"));
    let empty = Project::parse(Path::new("/c/compose.yaml"), "version: '3'\n", &lookup);
    assert!(empty.unwrap_err().contains("no `services:`"));
}
