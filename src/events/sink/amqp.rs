//! The AMQP 0-9-1 sink (RabbitMQ; Celery's `amqp://`, `pyamqp://`,
//! `amqps://`): events go to the `celeryev` topic exchange exactly as
//! Celery's `EventDispatcher` publishes its own, and count as delivered only
//! once the broker has confirmed them (publisher confirms).
//!
//! URL options: `queue=NAME` makes the sink a fleet feed: a quorum queue
//! (durable, and replicated when RabbitMQ is clustered) bound to `celeryev`
//! with `fim.#`, and persistent messages, so that events wait in the broker
//! for `tripseal collect`; `ssl_ca_certs`, `ssl_certfile`, `ssl_keyfile` as
//! in Celery's `broker_use_ssl`.

use std::time::Duration;

use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::tcp::{OwnedIdentity, OwnedTLSConfig};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::uri::{AMQPAuthority, AMQPQueryString, AMQPScheme, AMQPUri, AMQPUserInfo};
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind,
};

use super::{NETWORK_TIMEOUT, Sink, SinkError};
use crate::error::Error;
use crate::events::Event;
use crate::events::url::{BrokerUrl, TlsOptions};

const EXCHANGE: &str = "celeryev";
/// The binding of the optional durable queue: every tripseal event.
const QUEUE_BINDING: &str = "fim.#";
/// How long to wait for the broker to confirm what was published.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Amqp {
    /// The URL as messages show it, password hidden.
    name: String,
    target: Target,
    runtime: Option<tokio::runtime::Runtime>,
    session: Option<(Connection, Channel)>,
    /// Sent since the last flush, which publishes them all at once.
    outgoing: Vec<Outgoing>,
    /// Confirmed, but routed to no queue: nobody was listening.
    unrouted: u64,
    /// Signs each event as Celery's `auth` serializer does (opt-in).
    auth: Option<crate::events::auth::AuthSigner>,
}

/// Where a URL says events go: the broker, its TLS settings, and the
/// fleet feed's queue if any. The collector reads from the same.
pub struct Target {
    uri: AMQPUri,
    tls: TlsOptions,
    pub queue: Option<String>,
}

impl Target {
    /// `shown` is how errors name the URL (see `url::redact_in_error`).
    pub fn parse(mut url: BrokerUrl, shown: &str) -> Result<Target, Error> {
        let tls = url.take_tls()?;
        let queue = url.take("queue").filter(|q| !q.is_empty());
        url.no_more_options(
            "queue, ssl_ca_certs, ssl_certfile, ssl_keyfile, ssl_cert_reqs, auth_key, auth_cert",
        )?;
        let (scheme, default_port) = match url.scheme.as_str() {
            "amqps" => (AMQPScheme::AMQPS, 5671),
            _ => (AMQPScheme::AMQP, 5672),
        };
        if scheme == AMQPScheme::AMQP && tls != TlsOptions::default() {
            return Err(Error::invalid(format!(
                "event sink {shown}: TLS options need amqps://"
            )));
        }
        let uri = AMQPUri {
            scheme,
            authority: AMQPAuthority {
                userinfo: AMQPUserInfo {
                    username: url.user.clone().unwrap_or_else(|| "guest".into()),
                    password: url.password.clone().unwrap_or_else(|| "guest".into()),
                },
                host: url.host.clone(),
                port: url.port.unwrap_or(default_port),
            },
            // kombu: an empty virtual host is the default one, "/".
            vhost: if url.path.is_empty() {
                "/".into()
            } else {
                url.path.clone()
            },
            query: AMQPQueryString {
                connection_timeout: Some(NETWORK_TIMEOUT.as_millis() as u64),
                ..AMQPQueryString::default()
            },
        };
        Ok(Target { uri, tls, queue })
    }

    /// The account the sink logs in as.
    pub fn user(&self) -> &str {
        &self.uri.authority.userinfo.username
    }

    /// A connection and a channel in confirm mode, with Celery's exchange
    /// (and the fleet feed's queue, when asked) declared.
    pub async fn open(&self) -> Result<(Connection, Channel), String> {
        open_session(self.uri.clone(), self.tls_config()?, self.queue.clone()).await
    }

    fn tls_config(&self) -> Result<OwnedTLSConfig, String> {
        let read = |p: &std::path::Path| {
            crate::files::read_untrusted(p, crate::files::MAX_SMALL_FILE_BYTES)
                .map_err(|e| format!("{}: {e}", crate::escape::escape_path(p)))
        };
        let cert_chain = match &self.tls.ca_certs {
            Some(p) => Some(
                String::from_utf8(read(p)?)
                    .map_err(|_| format!("{}: not a PEM file", p.display()))?,
            ),
            None => None,
        };
        let identity = match (&self.tls.certfile, &self.tls.keyfile) {
            (Some(c), Some(k)) => Some(OwnedIdentity::PKCS8 {
                pem: read(c)?,
                key: read(k)?,
            }),
            _ => None,
        };
        Ok(OwnedTLSConfig {
            identity,
            cert_chain,
        })
    }
}

impl Amqp {
    /// `name` is how messages about deliveries name the sink; `shown`, how
    /// errors about its URL do (see `url::redact_in_error`).
    pub fn new(mut url: BrokerUrl, name: String, shown: &str) -> Result<Amqp, Error> {
        let auth = url.take_auth()?;
        Ok(Amqp {
            name,
            auth,
            target: Target::parse(url, shown)?,
            runtime: None,
            session: None,
            outgoing: Vec::new(),
            unrouted: 0,
        })
    }

    fn connect(&mut self) -> Result<(), String> {
        if self.session.is_some() {
            return Ok(());
        }
        let rt = runtime(&mut self.runtime)?;
        let session = rt.block_on(self.target.open())?;
        self.session = Some(session);
        Ok(())
    }

    fn fail(&mut self, e: String) -> String {
        self.session = None;
        e
    }
}

impl Sink for Amqp {
    fn send(&mut self, event: &Event) -> Result<(), String> {
        if let Err(e) = self.connect() {
            return Err(self.fail(e));
        }
        let (body, content_type) = match &self.auth {
            Some(a) => (
                a.seal(event.body.as_bytes())?,
                crate::events::auth::CONTENT_TYPE,
            ),
            None => (event.body.clone(), "application/json"),
        };
        let mut headers = FieldTable::default();
        // A long string: RabbitMQ reads a short string in a table as a number.
        headers.insert(
            "hostname".into(),
            AMQPValue::LongString(event.hostname().into()),
        );
        let props = BasicProperties::default()
            // RabbitMQ refuses a user_id that is not the login's: the
            // collector can tell which account published each event.
            .with_user_id(self.target.user().into())
            .with_content_type(content_type.into())
            .with_content_encoding("utf-8".into())
            .with_headers(headers)
            .with_delivery_mode(if self.target.queue.is_some() { 2 } else { 1 })
            .with_priority(0);
        self.outgoing.push(Outgoing {
            routing_key: event.routing_key(),
            body,
            props,
        });
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        let outgoing = std::mem::take(&mut self.outgoing);
        if outgoing.is_empty() {
            return Ok(());
        }
        let (Some(rt), Some((_, ch))) = (&self.runtime, &self.session) else {
            return Err(SinkError::none_delivered(
                "not connected to the broker".into(),
            ));
        };
        let (confirmed, unrouted, error) = rt.block_on(publish_and_confirm(ch, &outgoing));
        self.unrouted += unrouted;
        match error {
            None => Ok(()),
            Some(error) => Err(SinkError {
                delivered: confirmed,
                error: self.fail(error),
            }),
        }
    }

    fn warning(&mut self) -> Option<String> {
        let n = std::mem::take(&mut self.unrouted);
        (n > 0).then(|| {
            format!(
                "{}: {n} events reached no queue (no consumer was bound to exchange \
                 {EXCHANGE}); add ?queue=NAME to keep them in the broker for a collector",
                self.name
            )
        })
    }
}

impl Drop for Amqp {
    fn drop(&mut self) {
        if let (Some(rt), Some((conn, _))) = (&self.runtime, self.session.take()) {
            // A clean close, so the broker does not log a dropped connection.
            let _ = rt.block_on(async {
                tokio::time::timeout(Duration::from_secs(2), conn.close(200, "bye".into())).await
            });
        }
    }
}

/// An event ready to publish.
struct Outgoing {
    routing_key: String,
    body: String,
    props: BasicProperties,
}

/// Publishes `outgoing` in order and waits for the broker's confirms.
/// Returns how many, from the first, were confirmed; how many of those no
/// queue took; and why the rest were not, if they were not.
///
/// Every publish is started before any is awaited: lapin queues a
/// publish's frames and numbers it for confirms the first time it is
/// polled, and each publish then waits for its frames to be written out.
/// Waiting for each in turn would cost a hand-over to the connection's
/// I/O thread per event; started together, a batch goes out in a few
/// writes, and the confirms (which the broker sends as one `multiple`
/// ack where it can) are read as they come.
async fn publish_and_confirm(ch: &Channel, outgoing: &[Outgoing]) -> (usize, u64, Option<String>) {
    let publishes = outgoing.iter().map(|o| {
        ch.basic_publish(
            EXCHANGE.into(),
            o.routing_key.as_str().into(),
            // Returned when no queue is bound, so the sink can say nobody listened.
            BasicPublishOptions {
                mandatory: true,
                ..BasicPublishOptions::default()
            },
            o.body.as_bytes(),
            o.props.clone(),
        )
    });
    // Writing them waits on the broker reading (it stops under a memory
    // or disk alarm): bounded like the confirms.
    let started = tokio::time::timeout(CONFIRM_TIMEOUT, start_in_order(publishes.collect()));
    let published = match started.await {
        Ok(p) => p,
        Err(_) => {
            let why = format!(
                "the broker took none of the events within {}s",
                CONFIRM_TIMEOUT.as_secs()
            );
            return (0, 0, Some(why));
        }
    };
    let (mut confirmed, mut unrouted) = (0, 0);
    for publish in published {
        let confirm = match publish {
            Ok(confirm) => confirm,
            Err(e) => return (confirmed, unrouted, Some(explain(&e))),
        };
        let error = match tokio::time::timeout(CONFIRM_TIMEOUT, confirm).await {
            Ok(Ok(Confirmation::Ack(returned))) => {
                unrouted += u64::from(returned.is_some());
                confirmed += 1;
                continue;
            }
            Ok(Ok(Confirmation::Nack(_))) => "the broker refused an event (nack)".to_string(),
            Ok(Ok(Confirmation::NotRequested)) => {
                "the broker did not confirm (publisher confirms off)".to_string()
            }
            Ok(Err(e)) => explain(&e),
            Err(_) => format!(
                "no confirm from the broker within {}s",
                CONFIRM_TIMEOUT.as_secs()
            ),
        };
        return (confirmed, unrouted, Some(error));
    }
    (confirmed, unrouted, None)
}

/// Polls every future once in the order given (which is the order lapin
/// numbers and writes the publishes in), then awaits each in turn; returns
/// their outputs in that order.
async fn start_in_order<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut running: Vec<std::pin::Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut early: Vec<Option<F::Output>> = running.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        for (f, out) in running.iter_mut().zip(early.iter_mut()) {
            if let std::task::Poll::Ready(v) = f.as_mut().poll(cx) {
                *out = Some(v);
            }
        }
        std::task::Poll::Ready(())
    })
    .await;
    let mut done = Vec::with_capacity(running.len());
    for (f, out) in running.into_iter().zip(early) {
        done.push(match out {
            Some(v) => v,
            None => f.await,
        });
    }
    done
}

/// The AMQP client's runtime, started on first use and kept in `slot`
/// (the sink's and the collector's alike).
pub fn runtime(
    slot: &mut Option<tokio::runtime::Runtime>,
) -> Result<&tokio::runtime::Runtime, String> {
    match slot {
        Some(rt) => Ok(rt),
        None => Ok(slot.insert(
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the AMQP client: {e}"))?,
        )),
    }
}

/// lapin's error with what the user can do about the common ones.
pub fn explain(e: &lapin::Error) -> String {
    let text = e.to_string();
    let hint = if text.contains("x-queue-type") {
        Some(
            "a queue of that name exists and is not a quorum queue (one made by an earlier \
             tripseal, or by hand): read what waits in it, delete it (rabbitmqctl \
             delete_queue NAME) and start again, or choose another ?queue= name",
        )
    } else if text.contains("ACCESS_REFUSED") || text.contains("403") {
        Some("the broker refused the login: check the user and password in the URL")
    } else if text.contains("NOT_ALLOWED") || text.contains("530") {
        Some("the virtual host does not exist or the user may not use it")
    } else if text.contains("certificate") || text.contains("UnknownIssuer") {
        Some(
            "the broker's TLS certificate did not verify: give the CA that signed it with \
             ssl_ca_certs=FILE",
        )
    } else if text.contains("onnection refused") {
        Some("nothing listens there: is the broker running?")
    } else {
        None
    };
    match hint {
        Some(h) => format!("{text} ({h})"),
        None => text,
    }
}
async fn open_session(
    uri: AMQPUri,
    tls: OwnedTLSConfig,
    queue: Option<String>,
) -> Result<(Connection, Channel), String> {
    let runtime = lapin::runtime::default_runtime().map_err(|e| e.to_string())?;
    let props = ConnectionProperties::default().with_connection_name(LongString::from("tripseal"));
    let conn = tokio::time::timeout(
        NETWORK_TIMEOUT,
        Connection::connect_uri_with_config(uri, props, tls, runtime),
    )
    .await
    .map_err(|_| format!("no answer within {}s", NETWORK_TIMEOUT.as_secs()))?
    .map_err(|e| explain(&e))?;
    let ch = conn.create_channel().await.map_err(|e| explain(&e))?;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .map_err(|e| explain(&e))?;
    declare(&ch, queue).await.map_err(|e| explain(&e))?;
    Ok((conn, ch))
}

async fn declare(ch: &Channel, queue: Option<String>) -> lapin::Result<()> {
    // Exactly Celery's declaration: other flags fail with 406 against the
    // exchange Celery already made.
    ch.exchange_declare(
        EXCHANGE.into(),
        ExchangeKind::Topic,
        ExchangeDeclareOptions {
            durable: true,
            auto_delete: false,
            ..ExchangeDeclareOptions::default()
        },
        FieldTable::default(),
    )
    .await?;
    let Some(q) = queue else {
        return Ok(());
    };
    // A quorum queue: replicated over a cluster's nodes, and its messages
    // survive a broker restart (they are always persistent in one).
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    ch.queue_declare(
        q.as_str().into(),
        QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        },
        args,
    )
    .await?;
    ch.queue_bind(
        q.as_str().into(),
        EXCHANGE.into(),
        QUEUE_BINDING.into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await?;
    Ok(())
}
