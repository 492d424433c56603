//! The Redis sink (Celery's `redis://`, `rediss://`): kombu's Redis
//! transport turns the `celeryev` exchange into PUB/SUB, so each event is one
//! `PUBLISH "/<db>.celeryev/<routing key>" <envelope>`, the envelope being
//! kombu's message with the event base64-encoded as its body.
//!
//! URL options, as kombu's `broker_transport_options` name them:
//! `global_keyprefix` (prepended to the channel), `fanout_prefix` (true, the
//! default: `/<db>.`; false: none; any other string replaces it),
//! `fanout_patterns` (true, the default: the routing key ends the channel;
//! false: publish to `<prefix>celeryev`); TLS: `ssl_ca_certs`,
//! `ssl_certfile`, `ssl_keyfile`, `ssl_cert_reqs`.
//!
//! Redis answers a PUBLISH once it has queued the message for each
//! subscriber, not once the subscriber has it: a slow consumer (a Python
//! receiver) can leave megabytes in Redis's memory, which a Redis crash
//! loses. So a batch counts as delivered only when the subscribers' output
//! buffers have drained (`CLIENT LIST TYPE pubsub`), that is, when Redis has
//! handed every event to the kernel. Where `CLIENT LIST` is not allowed, the
//! sink says once that it cannot tell, and counts the answer. Redis keeps
//! nothing for a consumer that was not subscribed (as for Celery's own
//! events); the sink says how many events reached nobody.

use std::time::{Duration, Instant};

use base64::Engine;
use redis::{
    Client, ClientTlsConfig, ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo,
    TlsCertificates,
};
use serde_json::json;

use super::{NETWORK_TIMEOUT, Sink, SinkError};
use crate::error::Error;
use crate::events::Event;
use crate::events::url::{BrokerUrl, TlsOptions};

pub struct Redis {
    name: String,
    client: Client,
    /// Everything before the routing key.
    channel_prefix: String,
    /// Whether the routing key ends the channel (`fanout_patterns`).
    patterns: bool,
    connection: Option<redis::Connection>,
    /// The PUBLISHes sent since the last flush, which writes them in one go.
    queued: Queued,
    /// Published while no one was subscribed.
    unheard: u64,
    /// Some subscriber was sent an event since the last flush.
    heard: bool,
    /// Why the subscribers' buffers cannot be watched, once known.
    blind: Option<String>,
    warnings: Vec<String>,
    /// Signs each event as Celery's `auth` serializer does (opt-in).
    auth: Option<crate::events::auth::AuthSigner>,
}

/// How long a flush waits for subscribers to read what Redis holds for
/// them before it counts the events delivered anyway, and says so.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Where `redis+stream://` (and `rediss+stream://`) URLs say events go: a
/// Redis Stream, which keeps them for a consumer group (the collector's)
/// until it has acknowledged them, up to a length cap.
pub struct StreamTarget {
    pub client: Client,
    /// The stream's key (`key=`, default [`DEFAULT_STREAM_KEY`]).
    pub key: String,
    /// The most entries the stream keeps (`maxlen=`); past it, the oldest go,
    /// read or not, and the sink says so.
    pub maxlen: u64,
}

pub const DEFAULT_STREAM_KEY: &str = "tripseal.events";
pub const DEFAULT_STREAM_MAXLEN: u64 = 1_000_000;

impl StreamTarget {
    /// `url` with its scheme already stripped of `+stream`.
    pub fn parse(mut url: BrokerUrl, shown: &str) -> Result<StreamTarget, Error> {
        let tls = url.take_tls()?;
        let key = url
            .take("key")
            .filter(|k| !k.is_empty())
            .unwrap_or_else(|| DEFAULT_STREAM_KEY.into());
        let maxlen = match url.take("maxlen") {
            None => DEFAULT_STREAM_MAXLEN,
            Some(n) => n.parse().ok().filter(|&n: &u64| n > 0).ok_or_else(|| {
                Error::invalid(format!(
                    "event sink {shown}: maxlen must be a positive number of entries"
                ))
            })?,
        };
        url.no_more_options("key, maxlen, ssl_ca_certs, ssl_certfile, ssl_keyfile, ssl_cert_reqs")?;
        let db = database_number(&url, shown)?;
        if url.scheme != "rediss" && tls != TlsOptions::default() {
            return Err(Error::invalid(format!(
                "event sink {shown}: TLS options need rediss+stream://"
            )));
        }
        Ok(StreamTarget {
            client: client(&url, db, &tls, shown)?,
            key,
            maxlen,
        })
    }
}

/// A connection with the network timeouts set.
pub fn connect(client: &Client) -> redis::RedisResult<redis::Connection> {
    let c = client.get_connection_with_timeout(NETWORK_TIMEOUT)?;
    c.set_read_timeout(Some(NETWORK_TIMEOUT))?;
    c.set_write_timeout(Some(NETWORK_TIMEOUT))?;
    Ok(c)
}

/// Redis's error with what the user can do about the common ones.
pub fn explain(e: &redis::RedisError) -> String {
    let text = e.to_string();
    let hint = if ["WRONGPASS", "NOAUTH", "AuthenticationFailed"]
        .iter()
        .any(|k| text.contains(k))
    {
        " (the server refused the login: check the user and password in the URL)"
    } else if text.contains("certificate") || text.contains("UnknownIssuer") {
        " (the server's TLS certificate did not verify: give the CA that signed it with \
         ssl_ca_certs=FILE)"
    } else if text.contains("onnection refused") {
        " (nothing listens there: is Redis running?)"
    } else {
        ""
    };
    format!("{text}{hint}")
}

/// Commands sent since the last flush, written to Redis in one round trip
/// when it comes (pipelining), which is what lets a batch go at the
/// broker's speed rather than one network round trip per event.
#[derive(Default)]
struct Queued {
    pipe: redis::Pipeline,
    count: usize,
}

impl Queued {
    /// Runs the queued commands and returns the answers up to the first
    /// command Redis refused (those arrived), and why it refused that one.
    /// A broken connection tells nothing, so none count (the retry may
    /// repeat some; events carry ids for consumers to drop duplicates).
    fn run<T: redis::FromRedisValue>(
        &mut self,
        connection: &mut Option<redis::Connection>,
    ) -> Result<(Vec<T>, Option<String>), SinkError> {
        let mut pipe = std::mem::take(&mut self.pipe);
        if std::mem::take(&mut self.count) == 0 {
            return Ok((Vec::new(), None));
        }
        let Some(conn) = connection.as_mut() else {
            return Err(SinkError::none_delivered("not connected to Redis".into()));
        };
        let answers: Vec<redis::RedisResult<T>> = match pipe.ignore_errors().query(conn) {
            Ok(a) => a,
            Err(e) => {
                *connection = None;
                return Err(SinkError::none_delivered(explain(&e)));
            }
        };
        let mut done = Vec::with_capacity(answers.len());
        for answer in answers {
            match answer {
                Ok(v) => done.push(v),
                Err(e) => return Ok((done, Some(explain(&e)))),
            }
        }
        Ok((done, None))
    }
}

/// A flush's outcome once `delivered` commands were answered, and then one
/// refused, if one was.
fn answered(delivered: usize, refused: Option<String>) -> Result<(), SinkError> {
    match refused {
        None => Ok(()),
        Some(error) => Err(SinkError { delivered, error }),
    }
}

/// The fleet feed over Redis: each event one `XADD` to a stream capped at
/// `maxlen` entries, accepted once Redis has answered with the entry's id.
pub struct RedisStream {
    name: String,
    target: StreamTarget,
    connection: Option<redis::Connection>,
    /// The XADDs sent since the last flush, which writes them in one go.
    queued: Queued,
    /// The stream was at its cap after a batch: the oldest entries went.
    at_cap: bool,
}

impl RedisStream {
    pub fn new(url: BrokerUrl, name: String, shown: &str) -> Result<RedisStream, Error> {
        Ok(RedisStream {
            name,
            target: StreamTarget::parse(url, shown)?,
            connection: None,
            queued: Queued::default(),
            at_cap: false,
        })
    }

    fn fail(&mut self, e: &redis::RedisError) -> String {
        self.connection = None;
        explain(e)
    }
}

impl Sink for RedisStream {
    fn send(&mut self, event: &Event) -> Result<(), String> {
        if self.connection.is_none() {
            match connect(&self.target.client) {
                Ok(c) => self.connection = Some(c),
                Err(e) => return Err(self.fail(&e)),
            }
        }
        self.queued
            .pipe
            .cmd("XADD")
            .arg(&self.target.key)
            .arg("MAXLEN")
            .arg(self.target.maxlen)
            .arg("*")
            .arg("type")
            .arg(&event.kind)
            .arg("event")
            .arg(&event.body);
        self.queued.count += 1;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        // Every XADD answered with an id is in the stream.
        let (added, refused) = self.queued.run::<String>(&mut self.connection)?;
        // Whether the cap was reached is asked once per batch, for the
        // warning.
        if !added.is_empty()
            && let Some(conn) = self.connection.as_mut()
        {
            let len: Result<u64, _> = redis::cmd("XLEN").arg(&self.target.key).query(conn);
            if let Ok(n) = len {
                self.at_cap |= n >= self.target.maxlen;
            }
        }
        answered(added.len(), refused)
    }

    fn warning(&mut self) -> Option<String> {
        std::mem::take(&mut self.at_cap).then(|| {
            format!(
                "{}: the stream {} holds its cap of {} entries: each new event pushes out the \
                 oldest, read or not (the collector counts those as lost); start the \
                 collector or raise maxlen=",
                self.name,
                crate::escape::escape_bytes(self.target.key.as_bytes()),
                self.target.maxlen
            )
        })
    }
}

impl Redis {
    /// `name` is how messages about deliveries name the sink; `shown`, how
    /// errors about its URL do (see `url::redact_in_error`).
    pub fn new(mut url: BrokerUrl, name: String, shown: &str) -> Result<Redis, Error> {
        let tls = url.take_tls()?;
        let auth = url.take_auth()?;
        let keyprefix = url.take("global_keyprefix").unwrap_or_default();
        let fanout_prefix = url.take("fanout_prefix");
        let patterns = url.take_bool("fanout_patterns")?.unwrap_or(true);
        url.no_more_options(
            "global_keyprefix, fanout_prefix, fanout_patterns, ssl_ca_certs, ssl_certfile, \
             ssl_keyfile, ssl_cert_reqs, auth_key, auth_cert",
        )?;
        let db = database_number(&url, shown)?;
        let fanout = fanout(fanout_prefix, db);
        if url.scheme != "rediss" && tls != TlsOptions::default() {
            return Err(Error::invalid(format!(
                "event sink {shown}: TLS options need rediss://"
            )));
        }
        Ok(Redis {
            name,
            client: client(&url, db, &tls, shown)?,
            channel_prefix: format!("{keyprefix}{fanout}celeryev"),
            patterns,
            connection: None,
            queued: Queued::default(),
            unheard: 0,
            heard: false,
            blind: None,
            auth,
            warnings: Vec::new(),
        })
    }

    fn channel(&self, event: &Event) -> String {
        if self.patterns {
            format!("{}/{}", self.channel_prefix, event.routing_key())
        } else {
            self.channel_prefix.clone()
        }
    }

    fn fail(&mut self, e: &redis::RedisError) -> String {
        self.connection = None;
        explain(e)
    }
}

/// kombu's message envelope around one event, signed by `auth` if given.
fn envelope(
    event: &Event,
    auth: Option<&crate::events::auth::AuthSigner>,
) -> Result<String, String> {
    let (body, content_type) = match auth {
        Some(a) => (
            a.seal(event.body.as_bytes())?,
            crate::events::auth::CONTENT_TYPE,
        ),
        None => (event.body.clone(), "application/json"),
    };
    Ok(json!({
        "body": base64::engine::general_purpose::STANDARD.encode(body.as_bytes()),
        "content-encoding": "utf-8",
        "content-type": content_type,
        "headers": {"hostname": event.hostname()},
        "properties": {
            "delivery_mode": 1,
            "delivery_info": {"exchange": "celeryev", "routing_key": event.routing_key()},
            "priority": 0,
            "body_encoding": "base64",
            // The Python receiver fails with a KeyError without one.
            "delivery_tag": crate::events::uuid_v4(),
        },
    })
    .to_string())
}

impl Sink for Redis {
    fn send(&mut self, event: &Event) -> Result<(), String> {
        if self.connection.is_none() {
            match connect(&self.client) {
                Ok(c) => self.connection = Some(c),
                Err(e) => return Err(self.fail(&e)),
            }
        }
        let channel = self.channel(event);
        let message = envelope(event, self.auth.as_ref())?;
        self.queued.pipe.cmd("PUBLISH").arg(channel).arg(message);
        self.queued.count += 1;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        // Each PUBLISH answers how many subscribers it reached.
        let (reached, refused) = self.queued.run::<i64>(&mut self.connection)?;
        for &n in &reached {
            if n == 0 {
                self.unheard += 1;
            } else {
                self.heard = true;
            }
        }
        // What Redis took before a refusal is delivered once drained, as
        // a whole batch is.
        self.drain()?;
        answered(reached.len(), refused)
    }

    fn warning(&mut self) -> Option<String> {
        let n = std::mem::take(&mut self.unheard);
        if n > 0 {
            self.warnings.push(format!(
                "{}: {n} events reached no subscriber (no consumer was listening on {}/*)",
                self.name, self.channel_prefix
            ));
        }
        let all = std::mem::take(&mut self.warnings);
        (!all.is_empty()).then(|| all.join("; "))
    }
}

impl Redis {
    /// Waits until the subscribers' output buffers have drained (see the
    /// module's header), if any subscriber was sent events since the last
    /// time.
    fn drain(&mut self) -> Result<(), SinkError> {
        if !std::mem::take(&mut self.heard) || self.blind.is_some() {
            return Ok(());
        }
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        let mut pause = Duration::from_millis(1);
        loop {
            let Some(conn) = self.connection.as_mut() else {
                // The connection broke after subscribers were sent events:
                // whether Redis passed them on is unknown.
                return Err(SinkError {
                    delivered: 0,
                    error: "the connection to Redis broke".into(),
                });
            };
            let listed: Result<String, _> = redis::cmd("CLIENT")
                .arg("LIST")
                .arg("TYPE")
                .arg("pubsub")
                .query(conn);
            let held = match listed {
                Ok(list) => buffered_for_subscribers(&list),
                Err(e) if e.is_io_error() || e.is_connection_dropped() => {
                    // Redis went away: nothing of this batch is known to
                    // have left it.
                    let error = self.fail(&e);
                    return Err(SinkError {
                        delivered: 0,
                        error,
                    });
                }
                Err(e) => {
                    let why = format!(
                        "{}: cannot see whether subscribers read the events (CLIENT LIST: \
                         {e}); if Redis stops before they do, they lose the last ones",
                        self.name
                    );
                    self.warnings.push(why.clone());
                    self.blind = Some(why);
                    return Ok(());
                }
            };
            if held == 0 {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.warnings.push(format!(
                    "{}: subscribers had not read {held} bytes of events after {}s; \
                     if Redis stops before they do, they lose them",
                    self.name,
                    DRAIN_TIMEOUT.as_secs()
                ));
                return Ok(());
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }
}

/// Bytes Redis still holds for subscribers, from `CLIENT LIST` lines
/// (`obl`: the fixed reply buffer, `omem`: the reply list).
fn buffered_for_subscribers(list: &str) -> u64 {
    list.lines()
        .flat_map(|line| line.split(' '))
        .filter_map(|field| {
            let (k, v) = field.split_once('=')?;
            matches!(k, "obl" | "omem").then(|| v.parse::<u64>().ok())?
        })
        .sum()
}

/// The database number, the URL's path (`redis://host:6379/0`).
fn database_number(url: &BrokerUrl, shown: &str) -> Result<i64, Error> {
    match url.path.trim_matches('/') {
        "" => Ok(0),
        n => n.parse().map_err(|_| {
            Error::invalid(format!(
                "event sink {shown}: the path must be the database number, as in \
                 redis://host:6379/0"
            ))
        }),
    }
}

/// kombu's fanout_prefix: True means "/{db}.", False or "" nothing, and a
/// string is used as given, with {db} filled in. (kombu's own receiver only
/// reads channels whose prefix is empty or starts with '/' and ends with '.'.)
fn fanout(given: Option<String>, db: i64) -> String {
    match given.as_deref().map(str::to_ascii_lowercase) {
        None => "/{db}.".to_string(),
        Some(v) if matches!(v.as_str(), "true" | "1" | "yes" | "on") => "/{db}.".into(),
        Some(v) if matches!(v.as_str(), "false" | "0" | "no" | "off" | "") => String::new(),
        Some(_) => given.unwrap_or_default(),
    }
    .replace("{db}", &db.to_string())
}

/// The client for `url`'s server and database, with TLS for `rediss://`
/// (its files read as untrusted: never a FIFO, bounded).
fn client(url: &BrokerUrl, db: i64, tls: &TlsOptions, shown: &str) -> Result<Client, Error> {
    let tls_wanted = url.scheme == "rediss";
    let port = url.port.unwrap_or(6379);
    let addr = if tls_wanted {
        ConnectionAddr::TcpTls {
            host: url.host.clone(),
            port,
            insecure: false,
            tls_params: None,
        }
    } else {
        ConnectionAddr::Tcp(url.host.clone(), port)
    };
    let mut settings = RedisConnectionInfo::default().set_db(db);
    if let Some(u) = &url.user {
        settings = settings.set_username(u);
    }
    if let Some(p) = url.password.as_ref().filter(|p| !p.is_empty()) {
        settings = settings.set_password(p);
    }
    let bad = |e: &dyn std::fmt::Display| Error::invalid(format!("event sink {shown}: {e}"));
    let info = addr
        .into_connection_info()
        .map_err(|e| bad(&e))?
        .set_redis_settings(settings);
    if !tls_wanted {
        return Client::open(info).map_err(|e| bad(&e));
    }
    let read = |p: &std::path::Path| {
        crate::files::read_untrusted(p, crate::files::MAX_SMALL_FILE_BYTES)
            .map_err(|e| bad(&format_args!("{}: {e}", crate::escape::escape_path(p))))
    };
    let certs = TlsCertificates {
        client_tls: match (&tls.certfile, &tls.keyfile) {
            (Some(c), Some(k)) => Some(ClientTlsConfig {
                client_cert: read(c)?,
                client_key: read(k)?,
            }),
            _ => None,
        },
        root_cert: tls.ca_certs.as_deref().map(read).transpose()?,
    };
    Client::build_with_tls(info, certs).map_err(|e| bad(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel(url: &str) -> String {
        let r = Redis::new(BrokerUrl::parse(url).unwrap(), url.into(), url).unwrap();
        let e = Event {
            kind: "fim-file-modified".into(),
            id: "x".into(),
            body: "{}".into(),
            numbered: false,
        };
        r.channel(&e)
    }

    #[test]
    fn channels_follow_kombus_transport_options() {
        assert_eq!(channel("redis://h:1/0"), "/0.celeryev/fim.file.modified");
        assert_eq!(
            channel("redis://h:1/3?global_keyprefix=app:"),
            "app:/3.celeryev/fim.file.modified"
        );
        assert_eq!(
            channel("redis://h:1/3?fanout_prefix=false"),
            "celeryev/fim.file.modified"
        );
        assert_eq!(
            channel("redis://h:1/3?fanout_prefix=x.&fanout_patterns=false"),
            "x.celeryev"
        );
        assert_eq!(
            channel("redis://h:1/3?fanout_prefix=/t{db}."),
            "/t3.celeryev/fim.file.modified"
        );
    }

    #[test]
    fn subscriber_buffers_are_summed() {
        let list = "id=3 addr=x fd=8 sub=0 psub=1 obl=120 oll=1 omem=20504 tot-mem=1\n\
                    id=4 addr=y fd=9 sub=1 psub=0 obl=0 oll=0 omem=0 tot-mem=1\n";
        assert_eq!(buffered_for_subscribers(list), 20624);
        assert_eq!(buffered_for_subscribers(""), 0);
    }

    #[test]
    fn the_envelope_has_what_kombu_reads() {
        let e = Event {
            kind: "fim-file-added".into(),
            id: "x".into(),
            body: r#"{"hostname":"fim@h"}"#.into(),
            numbered: false,
        };
        let v: serde_json::Value = serde_json::from_str(&envelope(&e, None).unwrap()).unwrap();
        assert_eq!(v["headers"]["hostname"], "fim@h");
        assert_eq!(
            v["properties"]["delivery_info"]["routing_key"],
            "fim.file.added"
        );
        assert_eq!(v["properties"]["delivery_tag"].as_str().unwrap().len(), 36);
        let body = base64::engine::general_purpose::STANDARD
            .decode(v["body"].as_str().unwrap())
            .unwrap();
        assert_eq!(body, br#"{"hostname":"fim@h"}"#);
    }
}
