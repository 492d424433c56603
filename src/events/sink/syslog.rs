//! syslog: RFC 5424 messages, facility authpriv, to the local daemon
//! (`/dev/log`), over UDP (RFC 5426, port 514) or over TCP with octet
//! counting (RFC 6587, port 601).

use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::os::unix::net::UnixDatagram;

use serde_json::Value;

use super::{NETWORK_TIMEOUT, Sink, SinkError};
use crate::error::Error;
use crate::events::Event;
use crate::events::url::BrokerUrl;

/// syslog facility `authpriv` (10): security messages, kept apart.
const FACILITY_AUTHPRIV: u8 = 10;
const LOCAL_SYSLOG_SOCKET: &str = "/dev/log";

enum Transport {
    Local(Option<UnixDatagram>),
    Udp(String, Option<UdpSocket>),
    Tcp(String, Option<TcpStream>),
}

pub struct Syslog {
    transport: Transport,
}

impl Syslog {
    /// The local syslog daemon, at `/dev/log`.
    pub fn local() -> Syslog {
        Syslog {
            transport: Transport::Local(None),
        }
    }

    /// A syslog server, `syslog+udp://` or `syslog+tcp://`.
    pub fn remote(spec: &str) -> Result<Syslog, Error> {
        let addr = syslog_address(spec)?;
        let transport = if spec.starts_with("syslog+udp:") {
            Transport::Udp(addr, None)
        } else {
            Transport::Tcp(addr, None)
        };
        Ok(Syslog { transport })
    }
}

impl Sink for Syslog {
    fn send(&mut self, event: &Event) -> Result<(), String> {
        let line = rfc5424(event);
        match &mut self.transport {
            Transport::Local(sock) => {
                if sock.is_none() {
                    let s = UnixDatagram::unbound().map_err(|e| format!("syslog: {e}"))?;
                    s.connect(LOCAL_SYSLOG_SOCKET)
                        .map_err(|e| format!("syslog {LOCAL_SYSLOG_SOCKET}: {e}"))?;
                    *sock = Some(s);
                }
                let s = sock.as_ref().expect("connected above");
                s.send(line.as_bytes())
                    .map(|_| ())
                    .map_err(|e| format!("syslog {LOCAL_SYSLOG_SOCKET}: {e}"))
            }
            Transport::Udp(addr, sock) => {
                if sock.is_none() {
                    let target = resolve(addr)?;
                    let local = if target.is_ipv4() {
                        "0.0.0.0:0"
                    } else {
                        "[::]:0"
                    };
                    let s = UdpSocket::bind(local).map_err(|e| format!("syslog udp: {e}"))?;
                    s.connect(target)
                        .map_err(|e| format!("syslog udp {addr}: {e}"))?;
                    *sock = Some(s);
                }
                let s = sock.as_ref().expect("connected above");
                s.send(line.as_bytes())
                    .map(|_| ())
                    .map_err(|e| format!("syslog udp {addr}: {e}"))
            }
            Transport::Tcp(addr, stream) => {
                if stream.is_none() {
                    let target = resolve(addr)?;
                    let s = TcpStream::connect_timeout(&target, NETWORK_TIMEOUT)
                        .map_err(|e| format!("syslog tcp {addr}: {e}"))?;
                    s.set_write_timeout(Some(NETWORK_TIMEOUT))
                        .map_err(|e| format!("syslog tcp {addr}: {e}"))?;
                    *stream = Some(s);
                }
                let s = stream.as_mut().expect("connected above");
                // RFC 6587 octet counting: "LEN SP MSG", so messages never split.
                let framed = format!("{} {line}", line.len());
                s.write_all(framed.as_bytes()).map_err(|e| {
                    *stream = None;
                    format!("syslog tcp {addr}: {e}")
                })
            }
        }
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        if let Transport::Tcp(addr, Some(s)) = &mut self.transport {
            s.flush()
                .map_err(|e| SinkError::none_delivered(format!("syslog tcp {addr}: {e}")))?;
        }
        Ok(())
    }
}

/// Default ports: 514 for syslog over UDP (RFC 5426), 601 over TCP (IANA's
/// syslog-conn, RFC 6587).
const SYSLOG_UDP_PORT: u16 = 514;
const SYSLOG_TCP_PORT: u16 = 601;

/// `HOST:PORT` of a `syslog+udp://` or `syslog+tcp://` URL, checked now:
/// a bad port, a path, a user or any option is refused before any work.
fn syslog_address(spec: &str) -> Result<String, Error> {
    let url = BrokerUrl::parse(spec)?;
    let bad = |why: &str| {
        Error::invalid(format!(
            "event sink {}: {why}; write {}://HOST:PORT",
            crate::escape::escape_bytes(crate::events::url::redact_in_error(spec).as_bytes()),
            url.scheme
        ))
    };
    if url.user.is_some() || url.password.is_some() {
        return Err(bad("a syslog server takes no user or password"));
    }
    if !url.path.is_empty() {
        return Err(bad("a syslog server address has no path"));
    }
    if url.port == Some(0) {
        return Err(bad("port 0 is not a port"));
    }
    url.no_more_options("none")?;
    let default_port = if url.scheme == "syslog+udp" {
        SYSLOG_UDP_PORT
    } else {
        SYSLOG_TCP_PORT
    };
    let host = if url.host.contains(':') {
        format!("[{}]", url.host)
    } else {
        url.host.clone()
    };
    Ok(format!("{host}:{}", url.port.unwrap_or(default_port)))
}

fn resolve(addr: &str) -> Result<std::net::SocketAddr, String> {
    addr.to_socket_addrs()
        .map_err(|e| format!("syslog address {addr:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("syslog address {addr:?} resolves to nothing"))
}

/// One RFC 5424 message: `<PRI>1 TIMESTAMP HOST APP PROCID MSGID - MSG`,
/// facility authpriv, severity from the rule (or the event's nature), the
/// event JSON as the message.
pub fn rfc5424(event: &Event) -> String {
    let body: Value = serde_json::from_str(&event.body).unwrap_or(Value::Null);
    let severity: u8 = match body.get("severity").and_then(Value::as_str) {
        Some("critical") => 2,
        Some("high") => 3,
        Some("medium") => 4,
        Some("low") => 5,
        Some(_) => 6,
        None => match event.kind.as_str() {
            "fim-baseline-tampered" | "fim-outbox-tampered" => 1,
            "fim-watch-overflow" | "fim-baseline-expiring" => 4,
            _ => 6,
        },
    };
    let pri = FACILITY_AUTHPRIV * 8 + severity;
    let ts = body
        .get("timestamp")
        .and_then(Value::as_f64)
        .map_or_else(|| "-".to_string(), crate::units::rfc3339_micros);
    let host = body
        .get("hostname")
        .and_then(Value::as_str)
        .and_then(|h| h.strip_prefix("fim@"))
        .map(header_field)
        .unwrap_or_else(|| "-".to_string());
    let pid = body.get("pid").and_then(Value::as_u64).unwrap_or(0);
    format!(
        "<{pri}>1 {ts} {host} tripseal {pid} {} - {}",
        header_field(&event.kind),
        event.body
    )
}

/// A header field: printable US-ASCII without spaces, at most 48 characters.
fn header_field(s: &str) -> String {
    let f: String = s
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(48)
        .collect();
    if f.is_empty() { "-".into() } else { f }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc5424_lines_have_the_fields_in_order() {
        let event = Event {
            kind: "fim-file-modified".into(),
            id: "x".into(),
            body: r#"{"type":"fim-file-modified","hostname":"fim@web 1","timestamp":1700000000.25,"pid":42,"severity":"critical"}"#.into(),
            numbered: false,
        };
        let line = rfc5424(&event);
        assert!(
            line.starts_with(
                "<82>1 2023-11-14T22:13:20.250000Z web1 tripseal 42 fim-file-modified - {"
            ),
            "{line}"
        );
    }

    #[test]
    fn syslog_addresses_are_checked_up_front() {
        assert_eq!(
            syslog_address("syslog+udp://logs:5514").unwrap(),
            "logs:5514"
        );
        assert_eq!(syslog_address("syslog+tcp://logs").unwrap(), "logs:601");
        assert_eq!(syslog_address("syslog+udp://[::1]").unwrap(), "[::1]:514");
        for bad in [
            "syslog+udp://logs:99999",
            "syslog+udp://logs:x",
            "syslog+tcp://logs:0",
            "syslog+tcp://logs:601?tls=1",
            "syslog+tcp://logs:601/x",
            "syslog+tcp://u:p@logs:601",
        ] {
            assert!(syslog_address(bad).is_err(), "{bad}");
        }
    }
}
