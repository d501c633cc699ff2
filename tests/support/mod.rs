//! Test harness: a real Synapse (from the venv of `scripts/setup-venv.sh`)
//! in a temp dir on a free loopback port, and the doctor binary.
#![allow(dead_code)] // each test file uses a different part of the harness

pub mod scene;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const SERVER_NAME: &str = "doctor.test";

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The venv with Synapse and mautrix-telegram, created once per machine.
pub fn venv() -> &'static Path {
    static VENV: OnceLock<PathBuf> = OnceLock::new();
    VENV.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/setup-venv.sh");
        let output = Command::new("bash")
            .arg(script)
            .stderr(Stdio::inherit())
            .output()
            .expect("run setup-venv.sh");
        assert!(output.status.success(), "setup-venv.sh failed");
        PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
    })
}

pub fn python() -> PathBuf {
    venv().join("bin/python")
}

pub fn doctor_bin() -> &'static str {
    env!("CARGO_BIN_EXE_bridge-doctor")
}

/// Polls `url` until it answers any HTTP status, or panics after `limit`.
pub fn wait_for_http(url: &str, limit: Duration, what: &str, log: &Path) {
    let start = Instant::now();
    let client = blocking::client();
    while start.elapsed() < limit {
        if client.get(url).send().is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!(
        "{what} did not come up within {limit:?}; its log:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// Minimal blocking HTTP for the tests, on reqwest's async client.
pub mod blocking {

    pub struct Blocking {
        runtime: tokio::runtime::Runtime,
        client: ::reqwest::Client,
    }

    pub struct Sent {
        pub status: u16,
        pub body: serde_json::Value,
    }

    pub struct Pending<'a> {
        blocking: &'a Blocking,
        builder: ::reqwest::RequestBuilder,
    }

    impl<'a> Pending<'a> {
        pub fn bearer(self, token: &str) -> Pending<'a> {
            Pending {
                builder: self.builder.bearer_auth(token),
                ..self
            }
        }
        pub fn json(self, body: &serde_json::Value) -> Pending<'a> {
            Pending {
                builder: self
                    .builder
                    .body(body.to_string())
                    .header("content-type", "application/json"),
                ..self
            }
        }
        pub fn body(self, body: Vec<u8>) -> Pending<'a> {
            Pending {
                builder: self.builder.body(body),
                ..self
            }
        }
        pub fn send(self) -> std::result::Result<Sent, ::reqwest::Error> {
            self.blocking.runtime.block_on(async {
                let response = self.builder.send().await?;
                let status = response.status().as_u16();
                let bytes = response.bytes().await?;
                Ok(Sent {
                    status,
                    body: serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
                })
            })
        }
    }

    impl Blocking {
        pub fn get(&self, url: &str) -> Pending<'_> {
            Pending {
                blocking: self,
                builder: self.client.get(url),
            }
        }
        pub fn post(&self, url: &str) -> Pending<'_> {
            Pending {
                blocking: self,
                builder: self.client.post(url),
            }
        }
        pub fn put(&self, url: &str) -> Pending<'_> {
            Pending {
                blocking: self,
                builder: self.client.put(url),
            }
        }
    }

    pub fn client() -> Blocking {
        Blocking {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            client: ::reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .pool_max_idle_per_host(0)
                .build()
                .unwrap(),
        }
    }
}

/// A child process killed when dropped.
pub struct Process {
    pub child: Child,
    pub log: PathBuf,
}

impl Process {
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then the exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        self.wait(Duration::from_secs(20))
    }

    pub fn wait(&mut self, limit: Duration) -> Option<i32> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        None
    }

    /// Waits until the log holds `needle`; panics with the log after `limit`.
    pub fn wait_for_log(&mut self, needle: &str, limit: Duration) {
        let start = Instant::now();
        while start.elapsed() < limit {
            if self.log_text().contains(needle) {
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "process exited ({status}) before logging {needle:?}; log:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "no {needle:?} in the log within {limit:?}; log:\n{}",
            self.log_text()
        );
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn spawn_logged(mut command: Command, log: &Path) -> Process {
    let file = std::fs::File::create(log).unwrap();
    let child = command
        .stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
    Process {
        child,
        log: log.to_owned(),
    }
}

pub struct Synapse {
    pub process: Process,
    pub dir: PathBuf,
    pub port: u16,
    pub config_path: PathBuf,
    /// What Synapse is started with: `config_path` alone, or the Debian
    /// package's `--config-path FILE --config-path conf.d/`.
    pub config_args: Vec<PathBuf>,
    /// The mount namespace it runs in, when it plays a container.
    pub container: Option<Container>,
}

/// A "container" without Docker: a private mount namespace (`unshare -m`)
/// with host folders bind-mounted where a compose file puts them
/// (`./synapse:/data`) and an /etc/hosts naming the compose services. The
/// network is the host's, so each service's container port is its
/// published port.
#[derive(Clone, Debug)]
pub struct Container {
    /// `(host path, path inside)`.
    pub binds: Vec<(PathBuf, PathBuf)>,
}

impl Container {
    /// `folder` at /data, and `hosts` as /etc/hosts.
    pub fn data(folder: &Path, hosts: &Path) -> Container {
        Container {
            binds: vec![
                (folder.to_owned(), PathBuf::from("/data")),
                (hosts.to_owned(), PathBuf::from("/etc/hosts")),
            ],
        }
    }

    /// An /etc/hosts where every one of `names` is this machine.
    pub fn hosts_file(path: &Path, names: &[&str]) {
        std::fs::write(
            path,
            format!("127.0.0.1 localhost {}\n::1 localhost\n", names.join(" ")),
        )
        .unwrap();
    }

    /// `program` run inside: the binds made, then exec.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        const MOUNT: &str = r#"while [ "$1" != -- ]; do [ -e "$2" ] || mkdir -p "$2"; mount --bind "$1" "$2" || exit 90; shift 2; done; shift; exec "$@""#;
        let mut command = Command::new("unshare");
        command.args(["-m", "--", "sh", "-c", MOUNT, "sh"]);
        for (host, inside) in &self.binds {
            command.arg(host).arg(inside);
        }
        command.arg("--").arg(program);
        command
    }
}

/// `program` in `container` when there is one, else on the host.
fn command_in(container: Option<&Container>, program: impl AsRef<std::ffi::OsStr>) -> Command {
    match container {
        Some(container) => container.command(program),
        None => Command::new(program),
    }
}

impl Synapse {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("homeserver.log")
    }

    /// Writes a homeserver.yaml loading `registrations`, generates its keys
    /// and starts Synapse; returns once `/versions` answers.
    pub fn start(dir: &Path, registrations: &[&Path]) -> Synapse {
        Synapse::start_with(dir, registrations, "")
    }

    /// [`Synapse::start`] with `extra` appended to homeserver.yaml.
    pub fn start_with(dir: &Path, registrations: &[&Path], extra: &str) -> Synapse {
        let port = free_port();
        let text = Synapse::configure(dir, registrations, port, None);
        let config_path = dir.join("homeserver.yaml");
        std::fs::write(&config_path, format!("{text}{extra}")).unwrap();
        Synapse::start_from(dir, port, vec![config_path], None)
    }

    /// [`Synapse::start`] with its homeserver.yaml text changed by `edit`
    /// (another database, more listeners, workers).
    pub fn start_edited(
        dir: &Path,
        registrations: &[&Path],
        edit: impl FnOnce(String) -> String,
    ) -> Synapse {
        let port = free_port();
        let text = Synapse::configure(dir, registrations, port, None);
        let config_path = dir.join("homeserver.yaml");
        std::fs::write(&config_path, edit(text)).unwrap();
        Synapse::start_from(dir, port, vec![config_path], None)
    }

    /// Synapse as the official image runs it: `dir` is its /data (every
    /// path in homeserver.yaml is under /data), in `container`, on `port`;
    /// `registrations` are paths inside the container.
    pub fn start_contained(
        dir: &Path,
        registrations: &[&Path],
        port: u16,
        container: Container,
    ) -> Synapse {
        let text = Synapse::configure(dir, registrations, port, Some(&container));
        let config_path = dir.join("homeserver.yaml");
        std::fs::write(&config_path, text).unwrap();
        Synapse::start_from(dir, port, vec![config_path], Some(container))
    }

    /// Synapse as Debian's and Element's packages run it: `server_name` and
    /// the registrations only in `conf.d/` files, started with
    /// `--config-path homeserver.yaml --config-path conf.d/`.
    pub fn start_debian(dir: &Path, registrations: &[&Path]) -> Synapse {
        let port = free_port();
        let text = Synapse::configure(dir, registrations, port, None);
        let conf_d = dir.join("conf.d");
        std::fs::create_dir_all(&conf_d).unwrap();
        let mut main = String::new();
        for line in text.lines() {
            let into = if line.starts_with("server_name:") {
                Some("server_name.yaml")
            } else if line.starts_with("app_service_config_files:") {
                Some("appservices.yaml")
            } else {
                None
            };
            match into {
                Some(file) => std::fs::write(conf_d.join(file), format!("{line}\n")).unwrap(),
                None => main.push_str(&format!("{line}\n")),
            }
        }
        let config_path = dir.join("homeserver.yaml");
        std::fs::write(&config_path, main).unwrap();
        Synapse::start_from(dir, port, vec![config_path, conf_d], None)
    }

    /// The test homeserver's config text (from the template) on `port`,
    /// its paths as Synapse sees them (under /data in a container); writes
    /// its log config.
    fn configure(
        dir: &Path,
        registrations: &[&Path],
        port: u16,
        container: Option<&Container>,
    ) -> String {
        std::fs::create_dir_all(dir).unwrap();
        let list: Vec<String> = registrations
            .iter()
            .map(|p| format!("'{}'", p.display()))
            .collect();
        let dir_inside = match container {
            Some(_) => "/data".to_owned(),
            None => dir.display().to_string(),
        };
        let fill = |template: &str| {
            let text = std::fs::read_to_string(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("scripts")
                    .join(template),
            )
            .unwrap();
            text.replace("@DIR@", &dir_inside)
                .replace("@PORT@", &port.to_string())
                .replace("@REGISTRATIONS@", &format!("[{}]", list.join(", ")))
        };
        std::fs::write(dir.join("log.config"), fill("synapse-log.config.template")).unwrap();
        fill("synapse-homeserver.yaml.template")
    }

    /// Generates the keys and starts Synapse with `config_args`.
    fn start_from(
        dir: &Path,
        port: u16,
        config_args: Vec<PathBuf>,
        container: Option<Container>,
    ) -> Synapse {
        let out = Synapse::command(&config_args, container.as_ref())
            .arg("--generate-keys")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "synapse --generate-keys failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut synapse = Synapse {
            process: Synapse::launch(dir, &config_args, container.as_ref()),
            dir: dir.to_owned(),
            port,
            config_path: config_args[0].clone(),
            config_args,
            container,
        };
        synapse.wait_until_up();
        synapse
    }

    /// Synapse given `config_args`, in `container` when there is one.
    fn command(config_args: &[PathBuf], container: Option<&Container>) -> Command {
        let mut command = command_in(container, python());
        command.args(["-m", "synapse.app.homeserver"]).args(
            config_args
                .iter()
                .flat_map(|p| [Path::new("--config-path"), p]),
        );
        command
    }

    fn launch(dir: &Path, config_args: &[PathBuf], container: Option<&Container>) -> Process {
        spawn_logged(
            Synapse::command(config_args, container),
            &dir.join("synapse.stdout"),
        )
    }

    fn wait_until_up(&mut self) {
        wait_for_http(
            &format!("{}/_matrix/client/versions", self.url()),
            Duration::from_secs(90),
            "Synapse",
            &self.dir.join("synapse.stdout"),
        );
    }

    /// Stops Synapse and starts it again with the same config and port.
    pub fn restart(&mut self) {
        self.process.terminate();
        self.process = Synapse::launch(&self.dir, &self.config_args, self.container.as_ref());
        self.wait_until_up();
    }
}

/// Writes a doctor config for a homeserver at `homeserver_url`.
pub fn write_doctor_config(dir: &Path, homeserver_url: &str, extra: &str) -> (PathBuf, u16) {
    let port = free_port();
    let path = dir.join("doctor.yaml");
    std::fs::write(
        &path,
        format!(
            "homeserver:\n  address: {homeserver_url}\n  domain: {SERVER_NAME}\n  startup_wait_seconds: 5\nappservice:\n  address: http://127.0.0.1:{port}\n  hostname: 127.0.0.1\n  port: {port}\n  id: doctor\n  bot:\n    username: doctor\n    displayname: Bridge Doctor\n  as_token: \"This value is generated when generating the registration\"\n  hs_token: \"This value is generated when generating the registration\"\n  registration: doctor-registration.yaml\n  max_body_bytes: 4096\ndatabase: sqlite:doctor.db\npermissions:\n  \"@admin:{SERVER_NAME}\": admin\nlogging:\n  level: debug\n{extra}"
        ),
    )
    .unwrap();
    (path, port)
}

pub fn doctor(args: &[&str]) -> std::process::Output {
    Command::new(doctor_bin()).args(args).output().unwrap()
}

/// [`doctor`] run from `folder`.
pub fn doctor_in(folder: &Path, args: &[&str]) -> std::process::Output {
    Command::new(doctor_bin())
        .args(args)
        .current_dir(folder)
        .output()
        .unwrap()
}

/// A real mautrix-telegram: config from the shipped example, registration
/// generated by the bridge itself.
pub struct TelegramBridge {
    pub dir: PathBuf,
    pub port: u16,
    pub process: Option<Process>,
}

impl TelegramBridge {
    pub fn config(&self) -> PathBuf {
        self.dir.join("config.yaml")
    }
    pub fn registration(&self) -> PathBuf {
        self.dir.join("registration.yaml")
    }

    pub fn prepare(dir: &Path, homeserver_url: &str) -> TelegramBridge {
        std::fs::create_dir_all(dir).unwrap();
        let port = free_port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/telegram-config.py");
        let run = |args: &[&str]| {
            let out = Command::new(python())
                .args(args)
                .current_dir(dir)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(&[
            script.to_str().unwrap(),
            "config.yaml",
            homeserver_url,
            SERVER_NAME,
            &port.to_string(),
        ]);
        let bridge = TelegramBridge {
            dir: dir.to_owned(),
            port,
            process: None,
        };
        bridge.generate_registration();
        bridge
    }

    /// The bridge writes its registration from its config (`-g`).
    fn generate_registration(&self) {
        let out = Command::new(python())
            .args([
                "-m",
                "mautrix_telegram",
                "-g",
                "-c",
                "config.yaml",
                "-r",
                "registration.yaml",
            ])
            .current_dir(&self.dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mautrix_telegram -g: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Edits the config (each `from` must be there) and lets the bridge
    /// generate its registration again from it, as an admin would after
    /// renaming the bridge.
    pub fn reconfigure(&self, edits: &[(&str, &str)]) {
        for (from, to) in edits {
            edit(&self.config(), from, to);
        }
        std::fs::remove_file(self.registration()).unwrap();
        self.generate_registration();
    }

    /// Starts the bridge and waits until it listens.
    pub fn start(&mut self) {
        self.start_in(None);
    }

    /// [`TelegramBridge::start`] in `container` when there is one.
    pub fn start_in(&mut self, container: Option<&Container>) {
        let mut command = command_in(container, python());
        command
            .args(["-m", "mautrix_telegram", "-c", "config.yaml", "--no-update"])
            .current_dir(&self.dir);
        let process = spawn_logged(command, &self.dir.join("stdout.log"));
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(60) {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                self.process = Some(process);
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("mautrix-telegram did not listen:\n{}", process.log_text());
    }

    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.terminate();
        }
    }

    /// Freezes the running bridge (SIGSTOP): its socket still accepts, and
    /// nothing answers, as with a hung bridge. `thaw` lets it go on.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let process = self.process.as_ref().expect("the bridge runs");
        let sent = Command::new("kill")
            .arg(signal)
            .arg(process.child.id().to_string())
            .status()
            .unwrap();
        assert!(sent.success(), "kill {signal}");
    }
}

/// A real heisenbridge: it has no config of its own, only the registration
/// it writes with `--generate`, wherever it is told to.
pub struct Heisenbridge {
    pub registration: PathBuf,
    pub port: u16,
    pub process: Option<Process>,
}

impl Heisenbridge {
    pub fn generate(registration: &Path) -> Heisenbridge {
        let port = free_port();
        let out = Command::new(python())
            .args([
                "-m",
                "heisenbridge",
                "--generate",
                "-l",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-c",
            ])
            .arg(registration)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "heisenbridge --generate: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Heisenbridge {
            registration: registration.to_owned(),
            port,
            process: None,
        }
    }

    /// Starts it against `synapse` and waits until it is running.
    pub fn start(&mut self, synapse: &Synapse, log: &Path) {
        let registration = self.registration.clone();
        self.start_in(None, &registration, &synapse.url(), log);
    }

    /// Starts it in `container` (when there is one) with the registration
    /// at `registration` as it sees it, against `homeserver_url`.
    pub fn start_in(
        &mut self,
        container: Option<&Container>,
        registration: &Path,
        homeserver_url: &str,
        log: &Path,
    ) {
        let mut command = command_in(container, python());
        command
            .args(["-m", "heisenbridge", "-v", "-c"])
            .arg(registration)
            .args(["-l", "127.0.0.1", "-p", &self.port.to_string()])
            .arg(homeserver_url);
        let mut process = spawn_logged(command, log);
        process.wait_for_log("bridge is now running", Duration::from_secs(60));
        self.process = Some(process);
    }
}

/// A user of the homeserver, password `pw-NAME`.
pub fn register_user(synapse: &Synapse, name: &str, admin: bool) {
    let mut command = Command::new(venv().join("bin/register_new_matrix_user"));
    command
        .arg("-c")
        .arg(&synapse.config_path)
        .args(["-u", name, "-p", &format!("pw-{name}")])
        .arg(if admin { "--admin" } else { "--no-admin" })
        .arg(synapse.url());
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "register {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A homeserver address that answers nothing, written into configs before
/// Synapse has a port; the tests replace it with Synapse's URL.
pub const HOMESERVER_PLACEHOLDER: &str = "http://127.0.0.1:1";

/// What the chat tests talk to: one mautrix-telegram set up (not running)
/// and the doctor's config listing it, generated, with `extra` appended and
/// the default body limit (the bot's own replies come back in transactions).
pub fn bot_setup(root: &Path, extra: &str) -> (TelegramBridge, PathBuf) {
    let bridge = TelegramBridge::prepare(&root.join("telegram"), HOMESERVER_PLACEHOLDER);
    let doctor_config = doctor_config_generated(
        root,
        HOMESERVER_PLACEHOLDER,
        &format!(
            "{}{extra}",
            bridges_yaml(&[(&bridge.config(), &bridge.registration(), &[])])
        ),
    );
    edit(
        &doctor_config,
        "max_body_bytes: 4096",
        "max_body_bytes: 16777216",
    );
    (bridge, doctor_config)
}

/// A Synapse loading the doctor's and the bridge's registrations of
/// [`bot_setup`], with both configs pointed at it.
pub fn bot_homeserver(root: &Path, bridge: &TelegramBridge, doctor_config: &Path) -> Synapse {
    let synapse = Synapse::start(
        &root.join("hs"),
        &[
            &root.join("doctor-registration.yaml"),
            &bridge.registration(),
        ],
    );
    edit(doctor_config, HOMESERVER_PLACEHOLDER, &synapse.url());
    edit(&bridge.config(), HOMESERVER_PLACEHOLDER, &synapse.url());
    synapse
}

/// Runs a Matrix client script of `tests/support` (the venv's Python)
/// against `synapse`, talking to the doctor's bot; what it printed, and its
/// last line as JSON. A failing client fails the test with `context`.
pub fn run_client(
    script: &str,
    synapse: &Synapse,
    args: &[&str],
    context: &dyn Fn() -> String,
) -> (serde_json::Value, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support")
        .join(script);
    let output = Command::new(python())
        .arg(script)
        .args([synapse.url().as_str(), "@doctor:doctor.test"])
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "client failed: {}\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr),
        context()
    );
    let results = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}: {stdout}"));
    (results, stdout)
}

/// An access token of `name` (password `pw-NAME`), as a client logs in.
pub fn login(synapse: &Synapse, name: &str) -> String {
    let login = blocking::client()
        .post(&format!("{}/_matrix/client/v3/login", synapse.url()))
        .json(&serde_json::json!({
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": name},
            "password": format!("pw-{name}"),
        }))
        .send()
        .unwrap();
    login.body["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("login of {name}: {:?}", login.body))
        .to_owned()
}

/// Replaces `from` with `to` in a file, asserting it was there.
pub fn edit(path: &Path, from: &str, to: &str) -> String {
    let original = std::fs::read_to_string(path).unwrap();
    assert!(
        original.contains(from),
        "{from:?} not in {}",
        path.display()
    );
    std::fs::write(path, original.replacen(from, to, 1)).unwrap();
    original
}

/// A private PostgreSQL cluster from Debian's packages, on a free loopback
/// port, with password authentication. Stopped when dropped.
pub struct Postgres {
    _dir: tempfile::TempDir,
    data: PathBuf,
    bin: PathBuf,
    pub port: u16,
    pub password: String,
}

impl Postgres {
    pub fn start() -> Postgres {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL server is not installed: scripts/test.sh installs it (apt-get install postgresql)")
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .find(|p| p.join("initdb").exists())
            .expect("no initdb under /usr/lib/postgresql");
        let dir = tempfile::tempdir().unwrap();
        // The server runs as `postgres` (initdb refuses root): it must reach the dir.
        let _ = Command::new("chmod").arg("755").arg(dir.path()).status();
        let data = dir.path().join("data");
        // Special characters on purpose: URIs must survive them, redaction must hide them.
        let password = "pg:Canary@Pass/w0rd!".to_owned();
        std::fs::write(dir.path().join("pw"), &password).unwrap();
        let _ = Command::new("chown")
            .args(["-R", "postgres"])
            .arg(dir.path())
            .status();
        let as_postgres = |program: &str| {
            let mut command = Command::new("runuser");
            command
                .args(["-u", "postgres", "--"])
                .arg(bin.join(program));
            command
        };
        let status = as_postgres("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=scram-sha-256"])
            .arg(format!("--pwfile={}", dir.path().join("pw").display()))
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "initdb failed");
        let port = free_port();
        let status = as_postgres("pg_ctl")
            .arg("-D")
            .arg(&data)
            .arg("-o")
            .arg(format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1",
                dir.path().display()
            ))
            .arg("-l")
            .arg(dir.path().join("server.log"))
            .args(["-w", "start"])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(
            status.success(),
            "pg_ctl start failed: {}",
            std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default()
        );
        Postgres {
            _dir: dir,
            data,
            bin,
            port,
            password,
        }
    }

    /// A URI for `database` as the superuser, password percent-encoded.
    pub fn uri(&self, database: &str) -> String {
        let encoded: String =
            url::form_urlencoded::byte_serialize(self.password.as_bytes()).collect();
        format!(
            "postgres://postgres:{encoded}@127.0.0.1:{}/{database}",
            self.port
        )
    }

    /// Runs SQL in `database` with psql.
    pub fn sql(&self, database: &str, sql: &str) {
        let out = Command::new("psql")
            .arg(self.uri(database))
            .args(["-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "psql: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .status();
    }
}

/// Writes a doctor config with `extra` appended (bridges, say) and runs
/// `generate-registration` on it, as an admin would.
pub fn doctor_config_generated(dir: &Path, homeserver_url: &str, extra: &str) -> PathBuf {
    let (config, _) = write_doctor_config(dir, homeserver_url, extra);
    let out = doctor(&["generate-registration", "-c", config.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    config
}

/// The `bridges:` list of a doctor config: (config, registration, logs).
pub fn bridges_yaml(bridges: &[(&Path, &Path, &[&Path])]) -> String {
    let mut yaml = String::from("bridges:\n");
    for (config, registration, logs) in bridges {
        yaml.push_str(&format!(
            "  - config: {}\n    registration: {}\n",
            config.display(),
            registration.display()
        ));
        if !logs.is_empty() {
            let logs: Vec<String> = logs.iter().map(|l| l.display().to_string()).collect();
            yaml.push_str(&format!("    logs: [{}]\n", logs.join(", ")));
        }
    }
    yaml
}

/// Every file of a zip (a packet): its name and its text.
pub fn unzip(path: &Path) -> Vec<(String, String)> {
    use std::io::Read;
    let mut archive = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    (0..archive.len())
        .map(|i| {
            let mut file = archive.by_index(i).unwrap();
            let mut text = String::new();
            file.read_to_string(&mut text).unwrap();
            (file.name().unwrap().to_string(), text)
        })
        .collect()
}

/// The value of the first `key:` line of a YAML file (tokens, for canaries).
pub fn yaml_value(path: &Path, key: &str) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no {key} in {}", path.display()));
    line.split_once(':')
        .unwrap()
        .1
        .trim()
        .trim_matches('"')
        .to_owned()
}

/// The target ids of a `check --format json` report, in its order.
/// The status of `check` for `target` in a JSON report.
pub fn status<'a>(report: &'a serde_json::Value, target: &str, check: &str) -> &'a str {
    result(report, target, check)["status"].as_str().unwrap()
}

fn failing<'a>(
    report: &'a serde_json::Value,
    target: &'a str,
) -> impl Iterator<Item = &'a serde_json::Value> {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(move |r| r["target"] == target && (r["status"] == "fail" || r["status"] == "error"))
}

/// The checks that fail (or err) for `target`.
pub fn failing_checks(report: &serde_json::Value, target: &str) -> Vec<String> {
    failing(report, target)
        .map(|r| r["check"].as_str().unwrap().to_owned())
        .collect()
}

/// The failures of `target`, each with its title and detail (for messages).
pub fn failures(report: &serde_json::Value, target: &str) -> Vec<String> {
    failing(report, target)
        .map(|r| format!("{}: {} / {}", r["check"], r["title"], r["detail"]))
        .collect()
}

pub fn target_ids(report: &serde_json::Value) -> Vec<&str> {
    report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect()
}

/// One result of a `check --format json` report.
pub fn result<'a>(
    report: &'a serde_json::Value,
    target: &str,
    check: &str,
) -> &'a serde_json::Value {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["target"] == target && r["check"] == check)
        .unwrap_or_else(|| panic!("no {check} for {target}"))
}

/// `bridge-doctor run -c CONFIG`, logging to `log`, once its self-check passed.
pub fn run_doctor(config: &Path, log: &Path) -> Process {
    run_doctor_with(config, log, &[])
}

/// [`run_doctor`] with more options (`--journal-dir DIR`, say).
pub fn run_doctor_with(config: &Path, log: &Path, options: &[&str]) -> Process {
    let mut command = Command::new(doctor_bin());
    command.arg("run").arg("-c").arg(config).args(options);
    let mut doctor = spawn_logged(command, log);
    doctor.wait_for_log("self-check passed", Duration::from_secs(60));
    doctor
}

/// A room's last hundred events as `token`'s user sees them, oldest first.
pub fn room_messages(synapse: &Synapse, token: &str, room: &str) -> Vec<serde_json::Value> {
    let answer = blocking::client()
        .get(&format!(
            "{}/_matrix/client/v3/rooms/{room}/messages?dir=b&limit=100",
            synapse.url()
        ))
        .bearer(token)
        .send()
        .unwrap();
    let mut events = answer.body["chunk"].as_array().cloned().unwrap_or_default();
    events.reverse();
    events
}

/// An admin user (`@admin`) logged in, and the direct chat it opens with
/// the bot as a client does (unencrypted): its access token and the room.
pub fn admin_direct_chat(synapse: &Synapse) -> (String, String) {
    register_user(synapse, "admin", true);
    let token = login(synapse, "admin");
    let created = blocking::client()
        .post(&format!("{}/_matrix/client/v3/createRoom", synapse.url()))
        .bearer(&token)
        .json(&serde_json::json!({"invite": ["@doctor:doctor.test"], "is_direct": true, "preset": "trusted_private_chat"}))
        .send()
        .unwrap();
    let room = created.body["room_id"]
        .as_str()
        .unwrap_or_else(|| panic!("createRoom: {:?}", created.body))
        .to_owned();
    (token, room)
}

/// A generated doctor config in `dir` and a Synapse loading only the
/// doctor's registration, the config pointed at it (the doctor not started).
pub fn doctor_on_own_synapse(dir: &Path) -> (PathBuf, Synapse) {
    let config = doctor_config_generated(dir, HOMESERVER_PLACEHOLDER, "");
    let synapse = Synapse::start(&dir.join("hs"), &[&dir.join("doctor-registration.yaml")]);
    edit(&config, HOMESERVER_PLACEHOLDER, &synapse.url());
    (config, synapse)
}

/// The homeserver's ping of the doctor (`POST
/// /_matrix/client/v1/appservice/doctor/ping`), asked with the doctor's
/// as_token, the way Synapse makes it.
pub fn homeserver_ping(synapse: &Synapse, as_token: &str) -> blocking::Sent {
    blocking::client()
        .post(&format!(
            "{}/_matrix/client/v1/appservice/doctor/ping",
            synapse.url()
        ))
        .bearer(as_token)
        .json(&serde_json::json!({}))
        .send()
        .unwrap()
}

/// 2025-12-03T11:06:40Z, the time of the first entry [`write_journal`] writes.
pub const JOURNAL_START_MICROS: u64 = 1_764_760_000_000_000;

/// Real journal files in `folder` (for `--journal-dir`), written by
/// systemd-journal-remote (Debian's systemd-journal-remote;
/// scripts/test.sh installs it) from the export format: one entry per
/// `(unit, message)`, a second apart from [`JOURNAL_START_MICROS`], each
/// message written as a binary field so any bytes pass.
pub fn write_journal(folder: &Path, entries: &[(&str, &[u8])]) {
    use std::io::Write;
    std::fs::create_dir_all(folder).unwrap();
    let mut export = Vec::new();
    for (index, (unit, message)) in entries.iter().enumerate() {
        let index = index as u64;
        export.extend(format!(
            "__REALTIME_TIMESTAMP={}\n__MONOTONIC_TIMESTAMP={}\n_BOOT_ID=0123456789abcdef0123456789abcdef\n_HOSTNAME=matrix\n_SYSTEMD_UNIT={unit}\nSYSLOG_IDENTIFIER=bridge\n_PID=4242\nMESSAGE\n",
            JOURNAL_START_MICROS + index * 1_000_000,
            index + 1
        ).into_bytes());
        export.extend((message.len() as u64).to_le_bytes());
        export.extend(*message);
        export.extend(b"\n\n");
    }
    let mut remote = Command::new("/lib/systemd/systemd-journal-remote")
        .arg(format!(
            "--output={}",
            folder.join("remote.journal").display()
        ))
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("systemd-journal-remote (scripts/test.sh installs it)");
    remote.stdin.take().unwrap().write_all(&export).unwrap();
    let out = remote.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
