//! systemd's notification protocol (sd_notify(3)), for `Type=notify`:
//! `READY=1` once the first full comparison is done, `WATCHDOG=1` at every
//! heartbeat and as often as `WatchdogSec=` asks (during a long rescan too,
//! as long as it makes progress), `STATUS=` with what is watched, and
//! `STOPPING=1`. Without `NOTIFY_SOCKET` (not started by systemd), nothing.
//!
//! Twenty lines of protocol: one datagram per message to the socket systemd
//! names, which a crate would not make shorter.

use std::cell::Cell;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::{Duration, Instant};

use crate::progress::Progress;

pub struct Notifier {
    socket: Option<(UnixDatagram, SocketAddr)>,
    /// Half of `WatchdogSec=`: how often systemd must hear `WATCHDOG=1`.
    watchdog: Option<Duration>,
    last_ping: Cell<Instant>,
}

impl Notifier {
    /// The socket and watchdog period systemd gave this process, if any.
    pub fn from_env() -> Notifier {
        let socket = std::env::var_os("NOTIFY_SOCKET").and_then(|path| {
            let addr = address(path.as_encoded_bytes())?;
            Some((UnixDatagram::unbound().ok()?, addr))
        });
        // WATCHDOG_PID, when set, names the process the watchdog is for.
        let for_us = std::env::var("WATCHDOG_PID")
            .map_or(true, |pid| pid.trim() == std::process::id().to_string());
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|us| us.trim().parse::<u64>().ok())
            .filter(|&us| us > 0 && for_us && socket.is_some())
            .map(|us| Duration::from_micros(us) / 2);
        Notifier {
            socket,
            watchdog,
            last_ping: Cell::new(Instant::now()),
        }
    }

    /// Sends `state` (lines of `KEY=value`); a failure is only logged: the
    /// daemon's work does not depend on systemd hearing it.
    fn send(&self, state: &str) {
        let Some((socket, addr)) = &self.socket else {
            return;
        };
        if let Err(e) = socket.send_to_addr(state.as_bytes(), addr) {
            log::debug!("cannot notify systemd: {e}");
        }
    }

    /// `READY=1`, with what is watched.
    pub fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={}", one_line(status)));
    }

    pub fn status(&self, status: &str) {
        self.send(&format!("STATUS={}", one_line(status)));
    }

    pub fn stopping(&self) {
        self.send("STOPPING=1");
    }

    /// `WATCHDOG=1`: the daemon is alive and its loop turns.
    pub fn ping(&self) {
        self.last_ping.set(Instant::now());
        self.send("WATCHDOG=1");
    }

    /// How often the watchdog needs a ping, when systemd runs one.
    pub fn watchdog_every(&self) -> Option<Duration> {
        self.watchdog
    }

    /// A ping if the watchdog's half period has passed since the last one.
    pub fn ping_if_due(&self) {
        if self
            .watchdog
            .is_some_and(|every| self.last_ping.get().elapsed() >= every)
        {
            self.ping();
        }
    }
}

/// A full rescan tells the watchdog it makes progress, entry by entry: one
/// that hangs (a read that never returns) stops the pings, and systemd
/// restarts the daemon.
impl Progress for Notifier {
    fn update(&self, _entries: u64, _bytes: u64) {
        self.ping_if_due();
    }

    fn finish(&self) {}
}

/// `NOTIFY_SOCKET`: a path, or `@name` in the abstract namespace.
fn address(value: &[u8]) -> Option<SocketAddr> {
    match value.split_first()? {
        (b'@', name) => {
            use std::os::linux::net::SocketAddrExt;
            SocketAddr::from_abstract_name(name).ok()
        }
        (b'/', _) => {
            use std::os::unix::ffi::OsStrExt;
            SocketAddr::from_pathname(std::ffi::OsStr::from_bytes(value)).ok()
        }
        _ => None,
    }
}

/// A `STATUS=` value is one line.
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_socket_addresses() {
        let path = address(b"/run/systemd/notify").unwrap();
        assert_eq!(
            path.as_pathname(),
            Some(std::path::Path::new("/run/systemd/notify"))
        );
        use std::os::linux::net::SocketAddrExt;
        let abstract_name = address(b"@/org/freedesktop/systemd1/notify/1").unwrap();
        assert_eq!(
            abstract_name.as_abstract_name(),
            Some(&b"/org/freedesktop/systemd1/notify/1"[..])
        );
        assert!(address(b"relative/socket").is_none());
        assert!(address(b"").is_none());
    }

    #[test]
    fn status_is_one_line() {
        assert_eq!(one_line("a\nb\rc"), "a b c");
    }
}
