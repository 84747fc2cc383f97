//! Logs go to stderr (and, for long-running work, the log file); results go to stdout.

use crate::cli::GlobalArgs;

/// Sets up `log` for this process: warnings by default, more with `-v`, errors only with
/// `-q`; `RUST_LOG` overrides all of it.
pub fn init(global: &GlobalArgs) {
    let level = if global.quiet {
        log::LevelFilter::Error
    } else {
        match global.verbose {
            0 => log::LevelFilter::Warn,
            1 => log::LevelFilter::Info,
            2 => log::LevelFilter::Debug,
            _ => log::LevelFilter::Trace,
        }
    };
    let mut builder = env_logger::Builder::new();
    builder.filter_level(level);
    if let Ok(spec) = std::env::var("RUST_LOG") {
        builder.parse_filters(&spec);
    }
    let _ = builder.format_target(false).try_init();
}
