use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use bridge_doctor::checks;
use bridge_doctor::facts::{Facts, discover};
use bridge_doctor::input::config::{Config, DEFAULT_LOG_WINDOW_BYTES};
use bridge_doctor::input::log_source::{self, LogPlaces, LogSource};
use bridge_doctor::knowledge::scan::{Explained, Scanner};
use bridge_doctor::packet;
use bridge_doctor::render::{self, report::Report};
use bridge_doctor::service::{generate, run};

/// `print!` and friends through the redactor: whatever the CLI prints may
/// quote a config or a log line, so every line passes the same hunt as the
/// packet and the chat (`shared::redact`).
macro_rules! out {
    ($($arg:tt)*) => { print!("{}", bridge_doctor::shared::redact::text(&format!($($arg)*))) };
}
macro_rules! outln {
    ($($arg:tt)*) => { println!("{}", bridge_doctor::shared::redact::text(&format!($($arg)*))) };
}
macro_rules! err {
    ($($arg:tt)*) => { eprint!("{}", bridge_doctor::shared::redact::text(&format!($($arg)*))) };
}
macro_rules! errln {
    ($($arg:tt)*) => { eprintln!("{}", bridge_doctor::shared::redact::text(&format!($($arg)*))) };
}

#[derive(Parser)]
#[command(
    name = "bridge-doctor",
    version,
    about = "Diagnoses Matrix appservice bridges and says how to fix them"
)]
struct Cli {
    /// The doctor's config file [default: config.yaml].
    #[arg(short, long, global = true)]
    config: Option<PathBuf>,
    /// Where `journald:UNIT` logs are read: a journal folder (as
    /// `journalctl --directory`) or one journal file [default: the
    /// system's journal].
    #[arg(long, global = true, value_name = "DIR")]
    journal_dir: Option<PathBuf>,
    /// Docker's data root, where `docker:NAME` logs are read
    /// (containers/<id>/<id>-json.log).
    #[arg(long, global = true, value_name = "DIR", default_value = log_source::DEFAULT_DOCKER_ROOT)]
    docker_root: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the appservice API, self-check, and answer in Matrix (the default).
    Run,
    /// Write the doctor's registration; fill placeholder tokens in the
    /// config. Without a config, write the example config first.
    GenerateRegistration {
        /// Where to write the registration (default: `appservice.registration`,
        /// else registration.yaml next to the config); recorded in the config.
        #[arg(short, long)]
        registration: Option<PathBuf>,
        /// Replace a registration that holds other tokens.
        #[arg(long)]
        force: bool,
    },
    /// Name every known problem in log text (files, units' journals,
    /// containers' logs, or stdin when none). With -c, the secrets of the
    /// config and the files it names are masked in the lines shown even
    /// where no rule would recognise them.
    Explain {
        files: Vec<PathBuf>,
        /// The recent journal of this systemd unit (repeatable).
        #[arg(long = "unit", value_name = "UNIT")]
        units: Vec<String>,
        /// The recent json-file log of this Docker container (repeatable).
        #[arg(long = "container", value_name = "NAME")]
        containers: Vec<String>,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// Build the support packet zip and print its path.
    Packet {
        /// A folder (the name is generated) or a file name.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// What happened and how to reproduce it; goes into the packet.
        #[arg(long)]
        note: Option<String>,
        /// At most this many MiB from the end of each log.
        #[arg(long, default_value_t = 20)]
        max_log_mib: u64,
        /// Only log lines from this time on ("2026-11-22 10:00").
        #[arg(long)]
        since: Option<String>,
        #[command(flatten)]
        without_doctor: WithoutDoctor,
    },
    /// Diagnose the doctor and every bridge; print a report.
    Check {
        /// Only these bridges (by id); the doctor is always checked.
        #[arg(long = "bridge")]
        bridges: Vec<String>,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        /// Skip every network probe.
        #[arg(long)]
        offline: bool,
        /// Exit 1 on warnings too.
        #[arg(long)]
        strict: bool,
        /// Show passing checks too.
        #[arg(short, long)]
        verbose: bool,
        #[command(flatten)]
        without_doctor: WithoutDoctor,
    },
}

/// Checking a homeserver's bridges with no doctor set up.
#[derive(clap::Args)]
struct WithoutDoctor {
    /// The homeserver's config (homeserver.yaml) instead of the doctor's:
    /// every registration it loads is checked, each bridge's config found
    /// on its own. Repeatable, and a folder means its *.yaml files, merged
    /// as Synapse merges its --config-path; one file alone is read with the
    /// --config-path a homeserver running here was given, else with the
    /// conf.d/ folder beside it.
    #[arg(long, value_name = "PATH", conflicts_with = "config")]
    homeserver: Vec<PathBuf>,
    /// A bridge config to use with --homeserver when it is not found on
    /// its own (repeatable).
    #[arg(long = "bridge-config", value_name = "FILE", requires = "homeserver")]
    bridge_configs: Vec<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Human,
    Json,
}

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Runtime::new().map_err(|err| {
        errln!("error: cannot start the async runtime: {err}");
        ExitCode::from(2)
    })
}

/// matrix-sdk logs expected answers as errors (no secret storage, no key
/// backup: the bot uses neither); the doctor reports what matters itself.
const MATRIX_SDK_NOISE: &str = "matrix_sdk::http_client=off,matrix_sdk_crypto::backups=error,matrix_sdk_crypto::identities::manager=error";

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!(
            "bridge_doctor={},warn,{MATRIX_SDK_NOISE}",
            config.logging.level
        ))
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // The doctor's own log passes the same redactor as every output.
        .with_writer(|| bridge_doctor::shared::redact::Redacting(std::io::stderr()))
        // Colour only for a person at a terminal, never in a log file.
        .with_ansi(std::io::stderr().is_terminal());
    if config.logging.json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// The config used when `-c` names none.
const DEFAULT_CONFIG: &str = "config.yaml";

/// The doctor's config. When the default one is missing (a first run), says
/// what to run instead: exit code 2, as the doctor could not do its job. A
/// config named with `-c` that is missing is an error naming it.
fn load_config(path: &Path, places: &LogPlaces) -> Result<Config, ExitCode> {
    if path == Path::new(DEFAULT_CONFIG) && !path.exists() {
        let homeservers = discover::homeserver_configs(&discover::usual_homeserver_configs());
        err!("{}", render::first_run::guidance(path, &homeservers));
        return Err(ExitCode::from(2));
    }
    let mut config = Config::load(path).map_err(|err| {
        errln!("error: {err}");
        ExitCode::from(2)
    })?;
    config.log_places = places.clone();
    for note in
        discover::settle_deployments(&mut config, &discover::Roots::system(&places.docker_root))
    {
        errln!("note: {note}");
    }
    Ok(config)
}

/// The config to check: the doctor's, or one made from the homeserver's.
fn check_config(
    config_path: &Path,
    without_doctor: &WithoutDoctor,
    places: &LogPlaces,
) -> Result<Config, ExitCode> {
    let homeserver = &without_doctor.homeserver;
    if homeserver.is_empty() {
        return load_config(config_path, places);
    }
    let roots = discover::Roots::system(&places.docker_root);
    match discover::from_homeserver(homeserver, &without_doctor.bridge_configs, &roots) {
        Ok(found) => {
            for note in &found.notes {
                errln!("note: {note}");
            }
            Ok(Config {
                log_places: places.clone(),
                ..found.config
            })
        }
        Err(err) => {
            errln!(
                "error: {err}. Name the homeserver's config, as in --homeserver /etc/matrix-synapse/homeserver.yaml."
            );
            Err(ExitCode::from(2))
        }
    }
}

fn main() -> ExitCode {
    // Whatever umask the doctor was started with, every file it creates
    // (registration, config, database and its WAL, crypto store, packets,
    // working folders) is its user's alone.
    bridge_doctor::shared::private::owner_only_umask();
    let cli = Cli::parse();
    let given_config = cli.config.clone();
    let config_path = cli.config.unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
    let places = LogPlaces {
        journal: cli.journal_dir,
        docker_root: cli.docker_root,
    };
    match cli.command.unwrap_or(Command::Run) {
        Command::Run => run_command(&config_path, &places),
        Command::GenerateRegistration {
            registration,
            force,
        } => generate_command(&config_path, &places, registration, force),
        Command::Check {
            bridges,
            format,
            offline,
            strict,
            verbose,
            without_doctor,
        } => check_command(
            &config_path,
            &without_doctor,
            &places,
            &bridges,
            CheckOutput {
                format,
                strict,
                verbose,
            },
            offline,
        ),
        Command::Explain {
            files,
            units,
            containers,
            format,
        } => match learn_secrets(given_config.as_deref(), &places) {
            Ok(window) => {
                let mut logs: Vec<LogSource> = files.into_iter().map(LogSource::File).collect();
                logs.extend(units.into_iter().map(LogSource::Journald));
                logs.extend(containers.into_iter().map(LogSource::Docker));
                explain_command(&logs, &places, window, format)
            }
            Err(code) => code,
        },
        Command::Packet {
            output,
            note,
            max_log_mib,
            since,
            without_doctor,
        } => packet_command(
            &config_path,
            &without_doctor,
            &places,
            packet::PacketOptions {
                output,
                note,
                max_log_bytes: max_log_mib.saturating_mul(1024 * 1024),
                since: since.map(|s| s.replace('T', " ")),
                progress: if std::io::stderr().is_terminal() {
                    packet::Progress::Terminal
                } else {
                    packet::Progress::Silent
                },
            },
        ),
    }
}

fn run_command(config_path: &Path, places: &LogPlaces) -> ExitCode {
    let config = match load_config(config_path, places) {
        Ok(config) => config,
        Err(code) => return code,
    };
    init_logging(&config);
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    match runtime.block_on(run::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if let run::RunError::Config(message) = &err {
                tracing::error!("{message}");
                errln!("error: {message}");
            }
            ExitCode::from(err.exit_code() as u8)
        }
    }
}

fn generate_command(
    config_path: &Path,
    places: &LogPlaces,
    registration: Option<PathBuf>,
    force: bool,
) -> ExitCode {
    if !config_path.exists() {
        return match generate::write_example_config(config_path) {
            Ok(()) => {
                outln!(
                    "wrote the example config to {}: set homeserver.address, homeserver.domain, appservice.address and permissions in it, then run this command again",
                    config_path.display()
                );
                ExitCode::SUCCESS
            }
            Err(err) => {
                errln!("error: {err}");
                ExitCode::from(2)
            }
        };
    }
    let config = match load_config(config_path, places) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let registration =
        registration.unwrap_or_else(|| config.appservice.registration_or_default().to_owned());
    match generate::generate(config_path, &registration, force) {
        Ok(generated) => {
            outln!("wrote {}", registration.display());
            if generated.tokens_written_to_config {
                outln!(
                    "wrote new as_token and hs_token into {}",
                    config_path.display()
                );
            }
            if generated.path_written_to_config {
                outln!(
                    "recorded the registration's path as appservice.registration in {}",
                    config_path.display()
                );
            }
            outln!(
                "next: add {} to the homeserver's app_service_config_files (see registration/README.md) and restart the homeserver",
                registration.display()
            );
            println!(
                "the registration holds both tokens and only this user may read it: let the homeserver read it with `chgrp <the homeserver's group> {0} && chmod 640 {0}`, or copy it where the homeserver reads it",
                registration.display()
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            errln!("error: {err}");
            ExitCode::from(2)
        }
    }
}

struct CheckOutput {
    format: Format,
    strict: bool,
    verbose: bool,
}

fn check_command(
    config_path: &Path,
    without_doctor: &WithoutDoctor,
    places: &LogPlaces,
    bridges: &[String],
    output: CheckOutput,
    offline: bool,
) -> ExitCode {
    let loaded =
        check_config(config_path, without_doctor, places).and_then(|c| Ok((c, runtime()?)));
    let (config, runtime) = match loaded {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let mut facts = Facts::load(&config);
    let unknown: Vec<&String> = bridges
        .iter()
        .filter(|b| !facts.targets.iter().any(|t| &t.id == *b))
        .collect();
    if !unknown.is_empty() {
        let known: Vec<&str> = facts.targets.iter().map(|t| t.id.as_str()).collect();
        errln!(
            "error: no bridge with id {unknown:?} in {}; known: {}",
            config.path.display(),
            known.join(", ")
        );
        return ExitCode::from(2);
    }
    facts.keep_only(bridges);
    // Counting targets on a terminal; the report itself goes to stdout.
    let bar = if std::io::stderr().is_terminal() {
        packet::targets_bar()
    } else {
        indicatif::ProgressBar::hidden()
    };
    runtime.block_on(facts.observe_showing(&config, offline, &bar));
    let report = Report::new(&facts, checks::run_all(&facts));
    match output.format {
        Format::Json => outln!("{}", render::json::report(&report)),
        Format::Human => out!(
            "{}",
            render::terminal::report(&report, output.verbose, std::io::stdout().is_terminal())
        ),
    }
    ExitCode::from(report.exit_code(output.strict))
}

/// With `-c`, `explain` first reads the doctor's config and every file it
/// names, so the secrets they hold are masked in the lines it quotes even
/// where no rule would recognise them. The window of a unit's or a
/// container's log: the config's `log_window_mib`, else the default.
fn learn_secrets(config: Option<&Path>, places: &LogPlaces) -> Result<u64, ExitCode> {
    match config {
        Some(path) => {
            let config = load_config(path, places)?;
            Facts::load(&config);
            Ok(config.log_window_bytes)
        }
        None => Ok(DEFAULT_LOG_WINDOW_BYTES),
    }
}

/// Explains the logs named (files whole, the recent `window` of units and
/// containers), or stdin. A log that cannot be read is one line; the
/// others are still explained. Exit 1 on a match, else 2 when a log could
/// not be read.
fn explain_command(
    logs: &[LogSource],
    places: &LogPlaces,
    window: u64,
    format: Format,
) -> ExitCode {
    let scanner = Scanner::new();
    let mut scan = scanner.new_scan();
    let mut unreadable = 0;
    if logs.is_empty()
        && let Err(err) = scanner.scan(std::io::stdin().lock(), "-", &mut scan)
    {
        errln!("error: cannot read stdin: {err}");
        return ExitCode::from(2);
    }
    for log in logs {
        if let Err(line) = scan_log(&scanner, &mut scan, log, places, window) {
            errln!("error: {line}");
            unreadable += 1;
        }
    }
    if unreadable > 0 && unreadable == logs.len() {
        return ExitCode::from(2);
    }
    let explained = Explained::from_scan(&scan);
    match format {
        Format::Json => outln!("{}", render::json::explained(&explained)),
        Format::Human => out!("{}", render::terminal::explained(&explained)),
    }
    match (explained.matches.is_empty(), unreadable) {
        (false, _) => ExitCode::from(1),
        (true, 0) => ExitCode::SUCCESS,
        (true, _) => ExitCode::from(2),
    }
}

/// Scans one log `explain` was given: a file whole, as given; a unit or a
/// container its recent `window`. The error is the line to show.
fn scan_log(
    scanner: &Scanner,
    scan: &mut bridge_doctor::knowledge::scan::Scan,
    log: &LogSource,
    places: &LogPlaces,
    window: u64,
) -> Result<(), String> {
    let window = if log.file().is_some() {
        u64::MAX
    } else {
        window
    };
    bridge_doctor::facts::open_window(log, None, window, places)
        .and_then(|opened| {
            scanner
                .scan(opened.reader, &log.to_string(), scan)
                .map_err(|err| format!("{log}: {err}"))
        })
        .map_err(|line| match log.file() {
            Some(_) => {
                format!("cannot read {line}. Check the path and that this user may read it.")
            }
            None => line,
        })
}

fn packet_command(
    config_path: &Path,
    without_doctor: &WithoutDoctor,
    places: &LogPlaces,
    options: packet::PacketOptions,
) -> ExitCode {
    let loaded =
        check_config(config_path, without_doctor, places).and_then(|c| Ok((c, runtime()?)));
    let (config, runtime) = match loaded {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    match runtime.block_on(packet::build(&config, &options)) {
        Ok(built) => {
            for warning in &built.warnings {
                errln!("warning: {warning}");
            }
            if let Some(advice) = &built.debug_advice {
                errln!("note: {advice}");
            }
            outln!("{}", built.path.display());
            ExitCode::SUCCESS
        }
        Err(err) => {
            errln!("error: {err}");
            ExitCode::from(2)
        }
    }
}
