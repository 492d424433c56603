//! `file:PATH`: one JSON line per event appended to a file, made durable
//! (fdatasync) before the events count as delivered. A rotated file is
//! followed; a symlink, a FIFO or a device at the path is refused.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use super::{Sink, SinkError};
use crate::events::Event;

pub struct FileSink {
    path: PathBuf,
    file: Option<std::fs::File>,
    /// Whether the open file was found at the path since the last flush:
    /// once a batch is enough to follow a rotation.
    checked: bool,
}

impl FileSink {
    pub fn new(path: PathBuf) -> FileSink {
        FileSink {
            path,
            file: None,
            checked: false,
        }
    }

    /// Whether the open file is still the one at the path: after a log
    /// rotation (or anything else that moved it) the path is opened again.
    fn still_at_path(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        let (Some(f), Ok(at_path)) = (&self.file, std::fs::symlink_metadata(&self.path)) else {
            return false;
        };
        f.metadata()
            .is_ok_and(|open| (open.dev(), open.ino()) == (at_path.dev(), at_path.ino()))
    }
}

impl Sink for FileSink {
    fn send(&mut self, event: &Event) -> Result<(), String> {
        if self.file.is_none() || (!self.checked && !self.still_at_path()) {
            // What this batch wrote to the old file is made durable there.
            if let Some(old) = self.file.take() {
                let _ = old.sync_data();
            }
            // Append only, never truncate, never through a planted link,
            // and never into a FIFO or a device (opened without blocking,
            // then refused).
            let shown = crate::escape::escape_path(&self.path);
            let f = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .mode(0o640)
                .custom_flags(
                    libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY,
                )
                .open(&self.path)
                .map_err(|e| match e.raw_os_error() {
                    Some(libc::ELOOP) => {
                        format!("{shown}: it is a symbolic link; tripseal never writes through one")
                    }
                    Some(libc::ENXIO) => {
                        format!(
                            "{shown}: it is a FIFO; tripseal writes events only to a regular file"
                        )
                    }
                    _ => format!("{shown}: {e}"),
                })?;
            crate::files::ensure_regular(&f).map_err(|e| format!("{shown}: {e}"))?;
            self.file = Some(f);
        }
        self.checked = true;
        let f = self.file.as_mut().expect("opened above");
        let mut line = event.body.clone().into_bytes();
        line.push(b'\n');
        f.write_all(&line).map_err(|e| {
            self.file = None;
            format!("{}: {e}", crate::escape::escape_path(&self.path))
        })
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.checked = false;
        match &self.file {
            Some(f) => f.sync_data().map_err(|e| {
                SinkError::none_delivered(format!(
                    "{}: {e}",
                    crate::escape::escape_path(&self.path)
                ))
            }),
            None => Ok(()),
        }
    }
}
