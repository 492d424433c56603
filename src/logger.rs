//! The one logger: lines on standard error, `tripseal: warning: ...`. The
//! daemon's lines carry the time, except under systemd's journal, which
//! stamps them itself. `-q` and `-v` set the level; `TRIPSEAL_LOG` (info,
//! debug, trace) overrides it, for debugging. Warnings and errors are always
//! said.

use std::io::Write;

use log::{Level, LevelFilter, Log, Metadata, Record};

/// The environment variable that overrides `-q`/`-v`.
pub const LEVEL_VARIABLE: &str = "TRIPSEAL_LOG";

struct Logger {
    timestamps: bool,
    /// Debugging lines of the libraries tripseal uses too (`TRIPSEAL_LOG`);
    /// `-vv` shows tripseal's own.
    all_targets: bool,
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        let ours = metadata.target().starts_with("tripseal");
        metadata.level() <= log::max_level()
            && (ours || self.all_targets || metadata.level() <= Level::Warn)
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = match record.level() {
            Level::Error => "error: ",
            Level::Warn => "warning: ",
            Level::Info => "",
            Level::Debug | Level::Trace => "debug: ",
        };
        // Messages quote paths and what files held: escaped once more here,
        // whatever the caller did, before they reach a terminal.
        let message = tripseal::escape::sanitize_line(&record.args().to_string());
        let time = if self.timestamps {
            format!("{} ", tripseal::units::iso8601(tripseal::units::now_ns()))
        } else {
            String::new()
        };
        // A failed write to stderr has nowhere to be said.
        let _ = writeln!(std::io::stderr().lock(), "{time}tripseal: {level}{message}");
    }

    fn flush(&self) {}
}

/// Installs the logger at `level`, or at `TRIPSEAL_LOG`'s when set; the
/// daemon's lines carry times unless the journal takes them.
pub fn init(level: LevelFilter, daemon: bool) {
    let given = std::env::var(LEVEL_VARIABLE).ok();
    let asked = given.as_deref().and_then(|v| v.parse::<LevelFilter>().ok());
    let logger = Logger {
        timestamps: daemon && !under_journal(),
        all_targets: asked.is_some(),
    };
    // Warnings and errors are never silenced: a security tool that could be
    // told to keep quiet about an unverified seal would be told so.
    let level = asked.unwrap_or(level).max(LevelFilter::Warn);
    if log::set_logger(Box::leak(Box::new(logger))).is_ok() {
        log::set_max_level(level);
    }
    if let Some(v) = given.filter(|_| asked.is_none()) {
        log::warn!(
            "{LEVEL_VARIABLE}={v} is not a level; give info, debug or trace (warnings and \
             errors are always said)"
        );
    }
}

/// Whether standard error is systemd's journal: `JOURNAL_STREAM` names the
/// device and inode of the stream systemd connected, and they are stderr's
/// (systemd.exec(5); a child that inherited the variable has another stderr).
fn under_journal() -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let Ok(value) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() else {
        return false;
    };
    std::fs::File::from(fd)
        .metadata()
        .is_ok_and(|m| value == format!("{}:{}", m.dev(), m.ino()))
}
