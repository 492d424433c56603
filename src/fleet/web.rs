//! Where operators look: `collect --listen ADDR` serves Prometheus metrics
//! (`/metrics`), the fleet as JSON (`/api/hosts`, `/api/hosts/HOST`), and a
//! status page (`/`) rendered here, that refreshes itself.
//!
//! Guarantees:
//! - read only: nothing a request says changes the fleet's state;
//! - every string that came from a host is escaped for where it goes (HTML
//!   text and attributes, Prometheus label values, JSON), and the page runs
//!   no script at all (its Content-Security-Policy forbids any);
//! - it answers from its own connection to the store (which it never
//!   writes), on its own thread: a slow client never holds up the collector.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tiny_http::{Header, Method, Request, Response, Server};

use super::store::{self, HostState, Store};
use crate::error::Error;
use crate::units::{iso8601, now_ns};

/// How often the page reloads itself.
const REFRESH_SECONDS: u32 = 5;

/// The HTTP server, answering on its own thread until dropped.
pub struct Web {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    pub addr: SocketAddr,
}

impl Web {
    /// Listens on `addr` and answers from the store at `path`.
    pub fn start(addr: SocketAddr, path: PathBuf) -> Result<Web, Error> {
        let server = Server::http(addr).map_err(|e| {
            Error::invalid(format!(
                "cannot listen on {addr}: {e}; choose another address with --listen"
            ))
        })?;
        let addr = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| Error::invalid("the listener has no IP address"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("tripseal-web".into())
            .spawn(move || serve(&server, &path, &flag))
            .map_err(|e| Error::invalid(format!("cannot start the web server's thread: {e}")))?;
        Ok(Web {
            stop,
            thread: Some(thread),
            addr,
        })
    }
}

impl Drop for Web {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(server: &Server, path: &std::path::Path, stop: &AtomicBool) {
    let mut store = None;
    while !stop.load(Ordering::Relaxed) {
        let request = match server.recv_timeout(Duration::from_millis(200)) {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            Err(e) => {
                log::warn!("web: {e}");
                continue;
            }
        };
        if store.is_none() {
            store = Store::open(path, false).ok();
        }
        let answer = match &mut store {
            Some(s) => answer(s, &request),
            None => text(503, "the collector's store cannot be read yet\n"),
        };
        let _ = request.respond(answer);
    }
}

type Answer = Response<std::io::Cursor<Vec<u8>>>;

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("a valid header")
}

fn with_type(body: Vec<u8>, status: u16, content_type: &str) -> Answer {
    Response::from_data(body)
        .with_status_code(status)
        .with_header(header("Content-Type", content_type))
        .with_header(header("X-Content-Type-Options", "nosniff"))
        .with_header(header("Cache-Control", "no-store"))
}

fn text(status: u16, body: &str) -> Answer {
    with_type(
        body.as_bytes().to_vec(),
        status,
        "text/plain; charset=utf-8",
    )
}

fn json_answer(v: &Value) -> Answer {
    with_type(v.to_string().into_bytes(), 200, "application/json")
}

fn answer(store: &mut Store, request: &Request) -> Answer {
    if *request.method() != Method::Get && *request.method() != Method::Head {
        return text(405, "only GET and HEAD\n").with_header(header("Allow", "GET, HEAD"));
    }
    let url = request.url();
    let path = url.split_once('?').map_or(url, |(p, _)| p);
    let state = match read(store) {
        Ok(s) => s,
        Err(e) => {
            return text(
                500,
                &format!("{}\n", crate::escape::sanitize_line(&e.to_string())),
            );
        }
    };
    match path {
        "/metrics" => with_type(
            metrics(&state).into_bytes(),
            200,
            "text/plain; version=0.0.4; charset=utf-8",
        ),
        "/api/hosts" => json_answer(&json!({
            "hosts": state.hosts.iter().map(|h| super::host_json(h, state.now)).collect::<Vec<_>>(),
        })),
        "/" | "/index.html" => {
            with_type(page(&state).into_bytes(), 200, "text/html; charset=utf-8").with_header(
                header(
                    "Content-Security-Policy",
                    "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
                ),
            )
        }
        p if p.starts_with("/api/hosts/") => {
            let name = percent_decode(&p["/api/hosts/".len()..]);
            // The host and its drift from one consistent read.
            if store.snapshot().is_err() {
                return text(500, "the store cannot be read\n");
            }
            let a = host_answer(store, &state, &name);
            let _ = store.commit();
            a
        }
        _ => text(404, "not found: try /, /metrics, /api/hosts\n"),
    }
}

fn host_answer(store: &Store, state: &State, name: &str) -> Answer {
    let chosen: Vec<&HostState> = state
        .hosts
        .iter()
        .filter(|h| store::shown(&h.host, &h.instance) == name)
        .chain(
            state
                .hosts
                .iter()
                .filter(|h| h.host == name && store::shown(&h.host, &h.instance) != name),
        )
        .collect();
    if chosen.is_empty() {
        return text(404, "no such host\n");
    }
    let mut out = Vec::new();
    for h in chosen {
        let mut v = super::host_json(h, state.now);
        let drift = store.drift(&h.host, &h.instance).unwrap_or_default();
        v["drift"] = drift.iter().map(super::drift_json).collect();
        out.push(v);
    }
    json_answer(&json!({ "hosts": out }))
}

/// One consistent read of what the pages show.
struct State {
    hosts: Vec<HostState>,
    consumed: i64,
    duplicates: i64,
    malformed: i64,
    impostors: i64,
    lag: Option<i64>,
    flags: Vec<store::FlagRecord>,
    now: i64,
}

fn read(store: &mut Store) -> Result<State, Error> {
    store.snapshot()?;
    let read = (|| {
        Ok::<_, Error>(State {
            hosts: store.hosts()?,
            consumed: store.counter("consumed")?,
            duplicates: store.counter("duplicates")?,
            malformed: store.counter("malformed")?,
            impostors: store.counter("impostors")?,
            lag: store.gauge("lag")?,
            flags: store.recent_flags(20)?,
            now: now_ns(),
        })
    })();
    store.commit()?;
    read
}

/// A Prometheus label value: backslash, double quote and newline escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn metrics(s: &State) -> String {
    let mut m = String::new();
    let mut family = |name: &str, kind: &str, help: &str| {
        let _ = writeln!(m, "# HELP {name} {help}\n# TYPE {name} {kind}");
        name.to_string()
    };
    let _ = family(
        "tripseal_fleet_hosts",
        "gauge",
        "Monitors (a host's baseline) by state: ok, stopped (said it stops), silent.",
    );
    let mut body = String::new();
    for state in ["ok", "stopped", "silent"] {
        let n = s.hosts.iter().filter(|h| h.state == state).count();
        let _ = writeln!(body, "tripseal_fleet_hosts{{state=\"{state}\"}} {n}");
    }
    m.push_str(&body);
    let _ = writeln!(
        m,
        "# HELP tripseal_fleet_hosts_with_problem Monitors that have each problem.\n\
         # TYPE tripseal_fleet_hosts_with_problem gauge"
    );
    for p in store::PROBLEMS {
        let n = s
            .hosts
            .iter()
            .filter(|h| store::problems(h).contains(&p))
            .count();
        let _ = writeln!(
            m,
            "tripseal_fleet_hosts_with_problem{{problem=\"{p}\"}} {n}"
        );
    }
    let _ = writeln!(
        m,
        "# HELP tripseal_fleet_open_drift Drift records not acknowledged, by severity.\n\
         # TYPE tripseal_fleet_open_drift gauge"
    );
    let mut by_severity = std::collections::BTreeMap::<String, i64>::new();
    for h in &s.hosts {
        for (sev, n) in &h.open_drift {
            *by_severity.entry(sev.clone()).or_default() += n;
        }
    }
    for sev in ["critical", "high", "medium", "low"] {
        by_severity.entry(sev.into()).or_default();
    }
    for (sev, n) in &by_severity {
        let _ = writeln!(
            m,
            "tripseal_fleet_open_drift{{severity=\"{}\"}} {n}",
            label(sev)
        );
    }
    let _ = writeln!(
        m,
        "# HELP tripseal_fleet_host_last_seen_seconds Seconds since the monitor was last heard \
         from.\n# TYPE tripseal_fleet_host_last_seen_seconds gauge"
    );
    for h in &s.hosts {
        let _ = writeln!(
            m,
            "tripseal_fleet_host_last_seen_seconds{{{}}} {:.3}",
            host_labels(h),
            (s.now - h.last_seen_ns).max(0) as f64 / 1e9
        );
    }
    let _ = writeln!(
        m,
        "# HELP tripseal_fleet_host_up 1 while the monitor is heard from (not silent).\n\
         # TYPE tripseal_fleet_host_up gauge"
    );
    for h in &s.hosts {
        let _ = writeln!(
            m,
            "tripseal_fleet_host_up{{{}}} {}",
            host_labels(h),
            u8::from(h.state != "silent")
        );
    }
    let _ = writeln!(
        m,
        "# HELP tripseal_fleet_host_open_drift Drift records not acknowledged, per monitor.\n\
         # TYPE tripseal_fleet_host_open_drift gauge"
    );
    for h in &s.hosts {
        let n: i64 = h.open_drift.iter().map(|(_, n)| n).sum();
        let _ = writeln!(
            m,
            "tripseal_fleet_host_open_drift{{{}}} {n}",
            host_labels(h)
        );
    }
    let _ = writeln!(
        m,
        "# HELP tripseal_fleet_host_events_lost Events a monitor sent that never arrived.\n\
         # TYPE tripseal_fleet_host_events_lost gauge"
    );
    for h in &s.hosts {
        let _ = writeln!(
            m,
            "tripseal_fleet_host_events_lost{{{}}} {}",
            host_labels(h),
            h.missing
        );
    }
    for (name, help, v) in [
        (
            "tripseal_collector_events_consumed_total",
            "Events taken from the feeds and stored.",
            s.consumed,
        ),
        (
            "tripseal_collector_events_duplicate_total",
            "Events delivered again and recognised (taken once).",
            s.duplicates,
        ),
        (
            "tripseal_collector_events_malformed_total",
            "Messages in the feeds that were not tripseal events.",
            s.malformed,
        ),
        (
            "tripseal_collector_events_impostor_total",
            "Events refused: published by another broker account than the host's own.",
            s.impostors,
        ),
    ] {
        let _ = writeln!(m, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
    }
    if let Some(lag) = s.lag {
        let _ = writeln!(
            m,
            "# HELP tripseal_collector_consumer_lag Events waiting in the feeds, not yet \
             taken.\n# TYPE tripseal_collector_consumer_lag gauge\n\
             tripseal_collector_consumer_lag {lag}"
        );
    }
    m
}

fn host_labels(h: &HostState) -> String {
    format!(
        "host=\"{}\",instance=\"{}\",role=\"{}\"",
        label(&h.host),
        label(&h.instance),
        label(h.role.as_deref().unwrap_or(""))
    )
}

/// Text for HTML: element content and double-quoted attribute values.
/// Control characters are shown as `\xNN`, never passed on.
fn html(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() || crate::escape::is_invisible_or_reordering(c) => {
                let _ = write!(out, "\\u{{{:04x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

fn page(s: &State) -> String {
    let mut p = String::new();
    let bad = s
        .hosts
        .iter()
        .filter(|h| !store::problems(h).is_empty())
        .count();
    let _ = write!(
        p,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_SECONDS}\">\
         <title>tripseal fleet: {bad} of {} with problems</title>\
         <style>\
         body{{font-family:sans-serif;margin:1.5em}}\
         table{{border-collapse:collapse}}td,th{{padding:.3em .6em;border-bottom:1px solid #ddd;text-align:left}}\
         tr.problem td{{background:#fde8e8}}tr.silent td,tr.tampered td{{background:#f8c9c9;font-weight:bold}}\
         tr.fine td{{background:#eef8ee}}code{{font-size:90%}}\
         </style></head><body>\n<h1>tripseal fleet</h1>\n\
         <p id=\"summary\">{} monitors, {bad} with problems; {} events taken, as of {}. \
         This page reloads every {REFRESH_SECONDS} s.</p>\n",
        s.hosts.len(),
        s.hosts.len(),
        s.consumed,
        iso8601(s.now)
    );
    p.push_str(
        "<table id=\"hosts\"><thead><tr><th>host</th><th>state</th><th>problems</th>\
         <th>role</th><th>baseline</th><th>generation</th><th>last heard</th>\
         <th>open drift</th></tr></thead><tbody>\n",
    );
    for h in &s.hosts {
        let problems = store::problems(h);
        let class = match problems.first() {
            None => "fine",
            Some(&"silent") => "silent",
            Some(&"tampered") => "tampered",
            Some(_) => "problem",
        };
        let drift = if h.open_drift.is_empty() {
            "none".to_string()
        } else {
            h.open_drift
                .iter()
                .map(|(sev, n)| format!("{n} {}", html(sev)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            p,
            "<tr class=\"{class}\" data-host=\"{}\" data-state=\"{}\"><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td><code>{}</code>{}</td><td>{}</td><td>{} ago</td>\
             <td>{drift}</td></tr>",
            html(&store::shown(&h.host, &h.instance)),
            html(&h.state),
            html(&store::shown(&h.host, &h.instance)),
            html(&h.state),
            if problems.is_empty() {
                "-".to_string()
            } else {
                html(&problems.join(", "))
            },
            html(h.role.as_deref().unwrap_or("(host baseline)")),
            html(h.digest.as_deref().unwrap_or("?")),
            if h.published.is_some() {
                " published"
            } else {
                " <strong>not published</strong>"
            },
            h.generation.map_or("?".to_string(), |g| {
                match h.max_generation.filter(|m| *m > g) {
                    Some(m) => format!("{g} (was {m})"),
                    None => g.to_string(),
                }
            }),
            crate::units::human_duration(s.now - h.last_seen_ns),
        );
    }
    p.push_str("</tbody></table>\n<h2>Recent flags</h2>\n<ul id=\"flags\">\n");
    for f in &s.flags {
        let _ = writeln!(
            p,
            "<li>{} <strong>{}</strong> {}: {}</li>",
            iso8601(f.at_ns),
            html(&f.kind),
            html(&store::shown(&f.host, &f.instance)),
            html(f.fields.get("detail").and_then(Value::as_str).unwrap_or(""))
        );
    }
    p.push_str("</ul>\n</body></html>\n");
    p
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(high), Some(low)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((high * 16 + low) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_for_html_and_prometheus() {
        assert_eq!(
            html("<script>\"x\"&'y'\n"),
            "&lt;script&gt;&quot;x&quot;&amp;&#39;y&#39;\\u{000a}"
        );
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(html("web\u{202e}1"), "web\\u{202e}1");
        assert_eq!(percent_decode("web%2F1/app%41"), "web/1/appA");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("%é1"), "%é1");
    }
}
