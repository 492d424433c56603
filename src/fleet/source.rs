//! Where the collector reads the fleet's events: the RabbitMQ quorum queue
//! of an `amqp://…?queue=NAME` feed, or the Redis Stream of a
//! `redis+stream://` feed. Both are read the same way: receive a batch,
//! store it, then acknowledge it, so that what was not stored is delivered
//! again.

use std::time::Duration;

use futures_lite::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use redis::Value as RValue;

use crate::error::Error;
use crate::events::sink::amqp::{self, Target};
use crate::events::sink::redis::{self as rsink, StreamTarget};
use crate::events::url::{BrokerUrl, redact, redact_in_error};

/// Messages one batch holds at most (also RabbitMQ's prefetch): with the
/// broker's largest message (RabbitMQ's `max_message_size`, 128 MiB by
/// default), what one batch can take in memory; lower that setting for a
/// fleet feed (events are a few KiB).
pub const BATCH: usize = 100;

/// One message from a feed.
pub struct Message {
    pub body: Vec<u8>,
    /// The broker account that published it, where the broker vouches for
    /// it (RabbitMQ checks a message's `user_id` against the login).
    pub publisher: Option<String>,
}

/// A feed of events.
pub trait Source {
    /// The feed as messages name it (password hidden).
    fn name(&self) -> &str;
    /// Up to `max` messages, waiting at most `wait` for the first.
    fn receive(&mut self, max: usize, wait: Duration) -> Result<Vec<Message>, String>;
    /// Acknowledges every message received so far: the feed forgets them.
    fn ack(&mut self) -> Result<(), String>;
    /// Whether a connection is up (the collector judges no silence without).
    fn connected(&self) -> bool;
    /// Events waiting in the feed for the collector (`None`: unknown).
    fn lag(&mut self) -> Option<u64>;
}

/// Opens the feed a URL names; nothing is connected yet.
pub fn open(spec: &str) -> Result<Box<dyn Source>, Error> {
    let scheme = spec.split_once("://").map(|(s, _)| s);
    let shown = redact_in_error(spec);
    match scheme {
        Some("amqp" | "pyamqp" | "amqps") => {
            let target = Target::parse(BrokerUrl::parse(spec)?, &shown)?;
            let Some(queue) = target.queue.clone() else {
                return Err(Error::invalid(format!(
                    "feed {}: the collector reads the fleet feed's queue: add ?queue=NAME, the \
                     same as in the hosts' sink URL",
                    crate::escape::escape_bytes(shown.as_bytes())
                )));
            };
            Ok(Box::new(AmqpSource {
                name: redact(spec),
                target,
                queue,
                runtime: None,
                session: None,
                last_tag: None,
            }))
        }
        Some(s) if matches!(s, "redis+stream" | "rediss+stream") => {
            let mut url = BrokerUrl::parse(spec)?;
            url.scheme = s.trim_end_matches("+stream").to_string();
            let group = url
                .take("group")
                .filter(|g| !g.is_empty())
                .unwrap_or_else(|| "tripseal-collect".into());
            Ok(Box::new(StreamSource {
                name: redact(spec),
                target: StreamTarget::parse(url, &shown)?,
                group,
                connection: None,
                backlog_done: false,
                received: Vec::new(),
            }))
        }
        _ => Err(Error::invalid(format!(
            "feed {}: the collector reads amqp://HOST/?queue=NAME (RabbitMQ, also amqps://) \
             or redis+stream://HOST/DB (also rediss+stream://)",
            crate::escape::escape_bytes(shown.as_bytes())
        ))),
    }
}

struct AmqpSource {
    name: String,
    target: Target,
    queue: String,
    runtime: Option<tokio::runtime::Runtime>,
    session: Option<(lapin::Connection, lapin::Channel, lapin::Consumer)>,
    /// The last delivery received and not acknowledged.
    last_tag: Option<u64>,
}

impl AmqpSource {
    fn connect(&mut self) -> Result<(), String> {
        if self.session.is_some() {
            return Ok(());
        }
        let rt = amqp::runtime(&mut self.runtime)?;
        let (target, queue) = (&self.target, self.queue.clone());
        let session = rt.block_on(async {
            let (conn, ch) = target.open().await?;
            ch.basic_qos(BATCH as u16, BasicQosOptions::default())
                .await
                .map_err(|e| amqp::explain(&e))?;
            let consumer = ch
                .basic_consume(
                    queue.as_str().into(),
                    "tripseal-collect".into(),
                    // One collector per feed: a second one would split the
                    // numbering of every host between them.
                    BasicConsumeOptions {
                        exclusive: true,
                        ..BasicConsumeOptions::default()
                    },
                    FieldTable::default(),
                )
                .await
                .map_err(|e| amqp::explain(&e))?;
            Ok::<_, String>((conn, ch, consumer))
        })?;
        self.session = Some(session);
        // Deliveries of a closed channel come again on the new one.
        self.last_tag = None;
        Ok(())
    }

    fn fail(&mut self, e: String) -> String {
        self.session = None;
        self.last_tag = None;
        e
    }
}

impl Source for AmqpSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn receive(&mut self, max: usize, wait: Duration) -> Result<Vec<Message>, String> {
        if let Err(e) = self.connect() {
            return Err(self.fail(e));
        }
        let rt = self.runtime.as_ref().expect("made by connect");
        let (_, _, consumer) = self.session.as_mut().expect("connected above");
        let mut got = Vec::new();
        let mut last = None;
        let outcome: Result<(), String> = rt.block_on(async {
            let mut budget = wait;
            while got.len() < max {
                match tokio::time::timeout(budget, consumer.next()).await {
                    Err(_) => break,
                    Ok(None) => return Err("the broker cancelled the consumer".to_string()),
                    Ok(Some(Err(e))) => return Err(amqp::explain(&e)),
                    Ok(Some(Ok(d))) => {
                        last = Some(d.delivery_tag);
                        got.push(Message {
                            // Without a user_id nobody vouches for the
                            // sender: "" then, which a monitor bound to an
                            // account refuses.
                            publisher: Some(
                                d.properties
                                    .user_id()
                                    .as_ref()
                                    .map(|u| u.to_string())
                                    .unwrap_or_default(),
                            ),
                            body: d.data,
                        });
                    }
                }
                // After the first, take only what has arrived already.
                budget = Duration::from_millis(1);
            }
            Ok(())
        });
        if let Some(t) = last {
            self.last_tag = Some(t);
        }
        match outcome {
            // What came before the failure is not acknowledged: it comes again.
            Err(e) => Err(self.fail(e)),
            Ok(()) => Ok(got),
        }
    }

    fn ack(&mut self) -> Result<(), String> {
        let Some(tag) = self.last_tag else {
            return Ok(());
        };
        let rt = self.runtime.as_ref().expect("made by connect");
        let Some((_, ch, _)) = &self.session else {
            return Ok(());
        };
        let acked = rt.block_on(ch.basic_ack(tag, BasicAckOptions { multiple: true }));
        match acked {
            Ok(()) => {
                self.last_tag = None;
                Ok(())
            }
            Err(e) => Err(self.fail(amqp::explain(&e))),
        }
    }

    fn connected(&self) -> bool {
        self.session.is_some()
    }

    fn lag(&mut self) -> Option<u64> {
        let rt = self.runtime.as_ref()?;
        let (_, ch, _) = self.session.as_ref()?;
        let q = rt
            .block_on(async {
                tokio::time::timeout(
                    crate::events::sink::NETWORK_TIMEOUT,
                    ch.queue_declare(
                        self.queue.as_str().into(),
                        lapin::options::QueueDeclareOptions {
                            passive: true,
                            ..Default::default()
                        },
                        FieldTable::default(),
                    ),
                )
                .await
            })
            .ok()?
            .ok()?;
        Some(u64::from(q.message_count()))
    }
}

impl Drop for AmqpSource {
    fn drop(&mut self) {
        if let (Some(rt), Some((conn, _, _))) = (&self.runtime, self.session.take()) {
            let _ = rt.block_on(async {
                tokio::time::timeout(Duration::from_secs(2), conn.close(200, "bye".into())).await
            });
        }
    }
}

struct StreamSource {
    name: String,
    target: StreamTarget,
    group: String,
    connection: Option<redis::Connection>,
    /// This consumer's entries delivered before and not acknowledged (a
    /// collector that stopped mid-batch) have been read again.
    backlog_done: bool,
    /// Entry ids received and not acknowledged.
    received: Vec<String>,
}

/// The consumer's name in the group: one collector per group.
const CONSUMER: &str = "collector";

impl StreamSource {
    fn connect(&mut self) -> Result<(), String> {
        if self.connection.is_some() {
            return Ok(());
        }
        let mut c = rsink::connect(&self.target.client).map_err(|e| rsink::explain(&e))?;
        // From the stream's start: what hosts sent before the first
        // collector ran is read too.
        let made: redis::RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&self.target.key)
            .arg(&self.group)
            .arg("0")
            .arg("MKSTREAM")
            .query(&mut c);
        match made {
            Ok(()) => {}
            Err(e) if e.code() == Some("BUSYGROUP") => {}
            Err(e) => return Err(rsink::explain(&e)),
        }
        self.connection = Some(c);
        self.backlog_done = false;
        self.received.clear();
        Ok(())
    }

    fn fail(&mut self, e: &redis::RedisError) -> String {
        self.connection = None;
        self.received.clear();
        rsink::explain(e)
    }
}

impl Source for StreamSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn receive(&mut self, max: usize, wait: Duration) -> Result<Vec<Message>, String> {
        self.connect()?;
        let conn = self.connection.as_mut().expect("connected above");
        let backlog = !self.backlog_done;
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(&self.group)
            .arg(CONSUMER)
            .arg("COUNT")
            .arg(max);
        if !backlog {
            cmd.arg("BLOCK").arg(wait.as_millis() as u64);
        }
        cmd.arg("STREAMS")
            .arg(&self.target.key)
            .arg(if backlog { "0" } else { ">" });
        let reply: RValue = match cmd.query(conn) {
            Ok(v) => v,
            Err(e) => return Err(self.fail(&e)),
        };
        let entries = entries(&reply);
        if backlog && entries.is_empty() {
            self.backlog_done = true;
        }
        let mut got = Vec::new();
        for (id, entry) in entries {
            self.received.push(id);
            match entry {
                // Trimmed away before it was read: acknowledged; its loss
                // shows as a gap in the host's numbering.
                Entry::Gone => {}
                // Not one of tripseal's: judged (and counted) as such.
                Entry::Fields(None) => got.push(Message {
                    body: Vec::new(),
                    publisher: None,
                }),
                Entry::Fields(Some(body)) => got.push(Message {
                    body,
                    publisher: None,
                }),
            }
        }
        Ok(got)
    }

    fn ack(&mut self) -> Result<(), String> {
        if self.received.is_empty() {
            return Ok(());
        }
        let Some(conn) = self.connection.as_mut() else {
            return Ok(());
        };
        // Acknowledged and then deleted: the stream holds only what waits,
        // so that its cap is reached only by what was not read.
        let done: redis::RedisResult<(i64, i64)> = redis::pipe()
            .atomic()
            .cmd("XACK")
            .arg(&self.target.key)
            .arg(&self.group)
            .arg(&self.received)
            .cmd("XDEL")
            .arg(&self.target.key)
            .arg(&self.received)
            .query(conn);
        match done {
            Ok(_) => {
                self.received.clear();
                Ok(())
            }
            Err(e) => Err(self.fail(&e)),
        }
    }

    fn connected(&self) -> bool {
        self.connection.is_some()
    }

    /// The group's `lag` from `XINFO GROUPS` (Redis 7).
    fn lag(&mut self) -> Option<u64> {
        let conn = self.connection.as_mut()?;
        let groups: RValue = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(&self.target.key)
            .query(conn)
            .ok()?;
        let RValue::Array(groups) = groups else {
            return None;
        };
        for g in groups {
            let fields: Vec<(Vec<u8>, RValue)> = match g {
                RValue::Array(f) => f
                    .chunks(2)
                    .filter_map(|kv| Some((bytes(&kv[0])?, kv.get(1)?.clone())))
                    .collect(),
                RValue::Map(m) => m
                    .into_iter()
                    .filter_map(|(k, v)| Some((bytes(&k)?, v)))
                    .collect(),
                _ => continue,
            };
            let field = |name: &[u8]| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v);
            if field(b"name").and_then(bytes).as_deref() != Some(self.group.as_bytes()) {
                continue;
            }
            return match field(b"lag") {
                Some(RValue::Int(n)) => u64::try_from(*n).ok(),
                _ => None,
            };
        }
        None
    }
}

/// An entry of an XREADGROUP reply.
enum Entry {
    /// Deleted before it was read (a capped stream trimmed it).
    Gone,
    /// Its `event` field, if it has one.
    Fields(Option<Vec<u8>>),
}

/// The (id, entry) of each entry of an XREADGROUP reply.
fn entries(reply: &RValue) -> Vec<(String, Entry)> {
    let mut out = Vec::new();
    let streams = match reply {
        RValue::Array(s) => s.as_slice(),
        RValue::Map(m) => {
            for (_, entries) in m {
                collect_entries(entries, &mut out);
            }
            return out;
        }
        _ => return out,
    };
    for s in streams {
        if let RValue::Array(pair) = s
            && let [_, entries] = pair.as_slice()
        {
            collect_entries(entries, &mut out);
        }
    }
    out
}

fn collect_entries(entries: &RValue, out: &mut Vec<(String, Entry)>) {
    let RValue::Array(entries) = entries else {
        return;
    };
    for entry in entries {
        let RValue::Array(parts) = entry else {
            continue;
        };
        let Some(id) = parts.first().and_then(bytes) else {
            continue;
        };
        let id = String::from_utf8_lossy(&id).into_owned();
        let entry = match parts.get(1) {
            Some(RValue::Array(fields)) => {
                let mut event = None;
                for kv in fields.chunks(2) {
                    if let [k, v] = kv
                        && bytes(k).as_deref() == Some(b"event")
                    {
                        event = bytes(v);
                    }
                }
                Entry::Fields(event)
            }
            _ => Entry::Gone,
        };
        out.push((id, entry));
    }
}

fn bytes(v: &RValue) -> Option<Vec<u8>> {
    match v {
        RValue::BulkString(b) => Some(b.clone()),
        RValue::SimpleString(s) => Some(s.as_bytes().to_vec()),
        _ => None,
    }
}
