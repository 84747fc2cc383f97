//! Logs go to stderr and, for commands that change state or run for long, to the log file;
//! results go to stdout.
//!
//! The logger is installed before the config is read (so config errors can be logged) and
//! only learns the file's path afterwards: [`init`] sets up stderr, [`attach_file`] adds the
//! file once [`crate::app::App::load`] knows `log.path`. A command that fails before that
//! (a bad id, a bad config) leaves no file behind.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use chrono::SecondsFormat;

use crate::cli::GlobalArgs;
use crate::config::LogConfig;

/// The environment variable whose filters (`info`, `plane_orch=debug`, ...) override both the
/// stderr level from `-v`/`-q` and the file level from `log.level`.
pub const RUST_LOG: &str = "RUST_LOG";

static LOGGER: OnceLock<Fanout> = OnceLock::new();
static FILE_WANTED: AtomicBool = AtomicBool::new(false);

/// One record, two destinations, each with its own filter.
struct Fanout {
    stderr: env_logger::Logger,
    file: OnceLock<env_logger::Logger>,
}

impl log::Log for Fanout {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        self.stderr.enabled(metadata) || self.file.get().is_some_and(|f| f.enabled(metadata))
    }

    fn log(&self, record: &log::Record<'_>) {
        let file = self.file.get().filter(|f| f.matches(record));
        let to_stderr = self.stderr.matches(record);
        if file.is_none() && !to_stderr {
            return;
        }
        // Messages quote titles, Plane's errors and file names: one inert line each, so
        // nothing in them can drive a terminal or fake a line of the log.
        let text = record.args().to_string();
        let safe = crate::term::inert(&text);
        let args = format_args!("{safe}");
        let record = log::Record::builder()
            .level(record.level())
            .target(record.target())
            .module_path(record.module_path())
            .file(record.file())
            .line(record.line())
            .args(args)
            .build();
        if to_stderr {
            self.stderr.log(&record);
        }
        if let Some(file) = file {
            file.log(&record);
        }
    }

    fn flush(&self) {
        self.stderr.flush();
        if let Some(file) = self.file.get() {
            log::Log::flush(file);
        }
    }
}

/// The stderr level the command line asks for: warnings by default, more with `-v`, errors
/// only with `-q`.
#[must_use]
pub fn stderr_level(global: &GlobalArgs) -> log::LevelFilter {
    if global.quiet {
        log::LevelFilter::Error
    } else {
        match global.verbose {
            0 => log::LevelFilter::Warn,
            1 => log::LevelFilter::Info,
            2 => log::LevelFilter::Debug,
            _ => log::LevelFilter::Trace,
        }
    }
}

fn rust_log() -> Option<String> {
    std::env::var(RUST_LOG)
        .ok()
        .filter(|s| !s.trim().is_empty())
}

/// Sets up `log` for this process, on stderr only; `RUST_LOG` overrides the level.
/// Calling it again does nothing.
pub fn init(global: &GlobalArgs) {
    let mut builder = env_logger::Builder::new();
    builder.filter_level(stderr_level(global));
    if let Some(spec) = rust_log() {
        builder.parse_filters(&spec);
    }
    builder.format_target(false);
    let stderr = builder.build();
    let level = stderr.filter();
    if LOGGER
        .set(Fanout {
            stderr,
            file: OnceLock::new(),
        })
        .is_ok()
    {
        if let Some(logger) = LOGGER.get() {
            if log::set_logger(logger).is_ok() {
                log::set_max_level(level);
            }
        }
    }
}

/// Says whether the command being run keeps a record in the log file. The dispatcher decides
/// per command; [`crate::app::App::load`] then calls [`attach_file`].
pub fn want_file(wanted: bool) {
    FILE_WANTED.store(wanted, Ordering::Relaxed);
}

/// Whether the command being run keeps a record in the log file.
#[must_use]
pub fn file_wanted() -> bool {
    FILE_WANTED.load(Ordering::Relaxed)
}

/// Appends `log.level` and up (or what `RUST_LOG` says) to `log.path`, creating its folder.
/// Each line: an RFC 3339 timestamp, the level, the process id, the message. A log file that
/// cannot be opened is a warning, never a failed command.
pub fn attach_file(config: &LogConfig) {
    let Some(fanout) = LOGGER.get() else { return };
    if fanout.file.get().is_some() || config.level == log::LevelFilter::Off && rust_log().is_none()
    {
        return;
    }
    let file = match open_append(&config.path) {
        Ok(f) => f,
        Err(e) => {
            log::warn!(
                "cannot open the log file {}: {e}; logging to stderr only (check log.path)",
                config.path.display()
            );
            return;
        }
    };
    let mut builder = env_logger::Builder::new();
    builder.filter_level(config.level);
    if let Some(spec) = rust_log() {
        builder.parse_filters(&spec);
    }
    builder
        .target(env_logger::Target::Pipe(Box::new(file)))
        .write_style(env_logger::WriteStyle::Never)
        .format(|buf, record| {
            writeln!(
                buf,
                "{} {:<5} [{}] {}",
                chrono::Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
                record.level(),
                std::process::id(),
                record.args()
            )
        });
    let file_logger = builder.build();
    let level = file_logger.filter().max(fanout.stderr.filter());
    if fanout.file.set(file_logger).is_ok() {
        log::set_max_level(level);
    }
}

/// Records a failed command in the log file only (stderr gets it once, from `main`), so a
/// command run from cron leaves its failure where the person will look.
pub fn record_failure(err: &anyhow::Error) {
    let Some(file) = LOGGER.get().and_then(|f| f.file.get()) else {
        return;
    };
    let text = format!("{err:#}");
    let safe = crate::term::inert(&text);
    let args = format_args!("{safe}");
    let record = log::Record::builder()
        .level(log::Level::Error)
        .target(module_path!())
        .args(args)
        .build();
    if file.matches(&record) {
        log::Log::log(file, &record);
        log::Log::flush(file);
    }
}

/// Opens the log for appending; a new one is created 0600 whatever the umask, as it holds
/// ticket titles, descriptions and summaries.
fn open_append(path: &Path) -> std::io::Result<fs::File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if let Some(dir) = path.parent() {
        // Owner only, whatever the umask: the data folder holds strangers' ticket text.
        std::os::unix::fs::DirBuilderExt::mode(fs::DirBuilder::new().recursive(true), 0o700)
            .create(dir)?;
    }
    match OpenOptions::new()
        .create_new(true)
        .append(true)
        .mode(0o600)
        .open(path)
    {
        Ok(file) => {
            file.set_permissions(fs::Permissions::from_mode(0o600))?;
            Ok(file)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            OpenOptions::new().append(true).open(path)
        }
        Err(e) => Err(e),
    }
}
