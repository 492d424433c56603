//! Where events go: one implementation of [`Sink`] per kind of destination,
//! chosen by a Celery-style URL.
//!
//! A sink accepts an event when it has been written and flushed (stdout, a
//! file, a stream socket) or handed to the kernel (a datagram); the outbox
//! forgets an event only after that.

//!
//! One file per kind: [`stdout`], [`file`], [`syslog`], [`amqp`], [`redis`].

pub mod amqp;
mod file;
pub mod redis;
mod stdout;
mod syslog;

use std::path::PathBuf;
use std::time::Duration;

use super::Event;
use super::url::{BrokerUrl, redact};
use crate::error::Error;
use amqp::Amqp;
use file::FileSink;
use redis::{Redis, RedisStream};
use stdout::Stdout;
use syslog::Syslog;

pub use syslog::rfc5424;

/// How long a network sink may take to connect or to take a write.
pub const NETWORK_TIMEOUT: Duration = Duration::from_secs(5);

/// A destination for events.
pub trait Sink {
    /// Hands one event over; an error stops delivery to this sink.
    fn send(&mut self, event: &Event) -> Result<(), String>;
    /// Makes what was sent since the last flush durable or delivered, as far
    /// as the sink can tell; on failure, says how many of those (from the
    /// first) are known to have arrived.
    fn flush(&mut self) -> Result<(), SinkError>;
    /// Something the user should know about deliveries that succeeded, such
    /// as events that reached no consumer.
    fn warning(&mut self) -> Option<String> {
        None
    }
}

/// Why a flush failed, and how far it got.
#[derive(Debug)]
pub struct SinkError {
    /// Of the events sent since the last flush, how many arrived.
    pub delivered: usize,
    pub error: String,
}

impl SinkError {
    fn none_delivered(error: String) -> SinkError {
        SinkError {
            delivered: 0,
            error,
        }
    }
}

/// The schemes `--emit` takes, for messages.
pub const KNOWN_SINKS: &str = "stdout, file:PATH, syslog, syslog+udp://HOST:PORT, \
     syslog+tcp://HOST:PORT, amqp://, pyamqp://, amqps://, redis://, rediss://, \
     redis+stream://, rediss+stream://";

/// Opens the sink a URL names. Nothing is connected yet: a sink that is down
/// fails at its first event, not here.
pub fn open(spec: &str) -> Result<Box<dyn Sink>, Error> {
    let scheme = spec.split_once("://").map(|(s, _)| s);
    if let Some("amqp" | "pyamqp" | "amqps") = scheme {
        let url = BrokerUrl::parse(spec)?;
        return Ok(Box::new(Amqp::new(
            url,
            redact(spec),
            &crate::events::url::redact_in_error(spec),
        )?));
    }
    if let Some("redis" | "rediss") = scheme {
        let url = BrokerUrl::parse(spec)?;
        return Ok(Box::new(Redis::new(
            url,
            redact(spec),
            &crate::events::url::redact_in_error(spec),
        )?));
    }
    if let Some(plain) = scheme.and_then(|s| s.strip_suffix("+stream"))
        && matches!(plain, "redis" | "rediss")
    {
        let mut url = BrokerUrl::parse(spec)?;
        url.scheme = plain.to_string();
        return Ok(Box::new(RedisStream::new(
            url,
            redact(spec),
            &crate::events::url::redact_in_error(spec),
        )?));
    }
    if spec == "stdout" {
        return Ok(Box::new(Stdout));
    }
    if let Some(path) = spec.strip_prefix("file:") {
        if path.is_empty() {
            return Err(Error::invalid(
                "file: sink needs a path: --emit file:/var/log/tripseal/events.jsonl",
            ));
        }
        return Ok(Box::new(FileSink::new(PathBuf::from(path))));
    }
    if spec == "syslog" {
        return Ok(Box::new(Syslog::local()));
    }
    if let Some("syslog+udp" | "syslog+tcp") = scheme {
        return Ok(Box::new(Syslog::remote(spec)?));
    }
    Err(Error::invalid(format!(
        "unknown event sink {}; this tripseal sends events to: {KNOWN_SINKS}",
        crate::escape::escape_bytes(crate::events::url::redact_in_error(spec).as_bytes())
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_sinks_are_refused() {
        assert!(open("kafka://x").is_err());
        assert!(open("file:").is_err());
        assert!(open("stdout").is_ok());
    }
}
