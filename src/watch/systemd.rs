//! systemd's notification protocol (sd_notify(3)), for `Type=notify`:
//! `READY=1` once the first full comparison is done, `STATUS=` with what is
//! watched, `WATCHDOG=1` at every heartbeat and, when `WatchdogSec=` is set,
//! whenever the process made progress in the last quarter of it, and
//! `STOPPING=1`. Without `NOTIFY_SOCKET` (not started by systemd), nothing.
//!
//! The watchdog judges progress, not time: a rescan that hashes a terabyte
//! file, or a sink that takes its 30 s, is slow but moving (the count of
//! [`crate::progress::tick`] grows) and is never killed for it; a read or a
//! loop that hangs stops the count, the pings stop, and systemd restarts
//! the daemon. Otherwise anyone able to write a large file in a watched tree
//! could have the daemon killed at every rescan.
//!
//! One datagram per message to the socket systemd names: a few lines that a
//! crate would not make shorter.

use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::Arc;
use std::time::Duration;

/// The most a message may wait for a busy systemd before it is dropped.
const SEND_TIMEOUT: Duration = Duration::from_secs(1);

struct Socket {
    socket: UnixDatagram,
    addr: SocketAddr,
}

impl Socket {
    fn send(&self, state: &str) -> std::io::Result<()> {
        self.socket
            .send_to_addr(state.as_bytes(), &self.addr)
            .map(|_| ())
    }
}

pub struct Notifier {
    socket: Option<Arc<Socket>>,
    /// Half of `WatchdogSec=`: how often systemd must hear `WATCHDOG=1`.
    watchdog: Option<Duration>,
}

impl Notifier {
    /// The socket and watchdog period systemd gave this process, if any.
    pub fn from_env() -> Notifier {
        let socket = std::env::var_os("NOTIFY_SOCKET").and_then(|value| {
            let opened = address(value.as_encoded_bytes()).and_then(|addr| {
                let socket = UnixDatagram::unbound().ok()?;
                socket.set_write_timeout(Some(SEND_TIMEOUT)).ok()?;
                Some(Arc::new(Socket { socket, addr }))
            });
            if opened.is_none() {
                log::warn!(
                    "NOTIFY_SOCKET={} is not a socket tripseal can notify (an absolute path \
                     or @name); systemd will not hear that the daemon is ready, and a \
                     Type=notify unit fails at TimeoutStartSec: fix the unit's environment, \
                     or unset NOTIFY_SOCKET",
                    value.to_string_lossy()
                );
            }
            opened
        });
        // WATCHDOG_PID, when set, names the process the watchdog is for.
        let for_us = std::env::var("WATCHDOG_PID")
            .map_or(true, |pid| pid.trim() == std::process::id().to_string());
        let given = std::env::var("WATCHDOG_USEC").ok();
        let usec = given.as_deref().map(|us| us.trim().parse::<u64>().ok());
        if let (Some(v), Some(None) | Some(Some(0))) = (&given, usec) {
            log::warn!(
                "WATCHDOG_USEC={v} is not a number of microseconds above 0; no watchdog pings \
                 but the heartbeat's: set WatchdogSec= in the unit, or remove it"
            );
        }
        let watchdog = usec
            .flatten()
            .filter(|&us| us > 0 && for_us && socket.is_some())
            .map(|us| Duration::from_micros(us) / 2);
        Notifier { socket, watchdog }
    }

    /// Sends `state` (lines of `KEY=value`); a failure is only logged: the
    /// daemon's work does not depend on systemd hearing it.
    fn send(&self, state: &str) -> bool {
        let Some(socket) = &self.socket else {
            return true;
        };
        match socket.send(state) {
            Ok(()) => true,
            Err(e) => {
                log::debug!("cannot notify systemd: {e}");
                false
            }
        }
    }

    /// `READY=1`, with what is watched.
    pub fn ready(&self, status: &str) {
        if !self.send(&format!("READY=1\nSTATUS={}", one_line(status))) {
            log::warn!("systemd was not told that the daemon is ready: its notify socket refused");
        }
    }

    pub fn status(&self, status: &str) {
        self.send(&format!("STATUS={}", one_line(status)));
    }

    pub fn stopping(&self) {
        self.send("STOPPING=1");
    }

    /// `WATCHDOG=1`, from the daemon's loop itself (its heartbeat).
    pub fn ping(&self) {
        self.send("WATCHDOG=1");
    }

    /// How often the daemon's loop must turn at least, when systemd runs a
    /// watchdog: a turn is progress too, however idle the host.
    pub fn watchdog_every(&self) -> Option<Duration> {
        self.watchdog
    }

    /// Pings the watchdog from a thread of its own, every quarter of
    /// `WatchdogSec=`, when the process made progress since the last look.
    pub fn start_watchdog(&self) {
        let (Some(socket), Some(every)) = (self.socket.clone(), self.watchdog) else {
            return;
        };
        let look = every / 2;
        let started = std::thread::Builder::new()
            .name("watchdog".into())
            .spawn(move || {
                let mut seen = crate::progress::ticks();
                loop {
                    std::thread::sleep(look);
                    let now = crate::progress::ticks();
                    if now != seen {
                        seen = now;
                        let _ = socket.send("WATCHDOG=1");
                    }
                }
            });
        if let Err(e) = started {
            log::warn!("cannot start the watchdog thread ({e}); systemd's watchdog may fire");
        }
    }
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
        assert!(address(b"vsock:2:1234").is_none());
        assert!(address(b"").is_none());
    }

    #[test]
    fn status_is_one_line() {
        assert_eq!(one_line("a\nb\rc"), "a b c");
    }
}
