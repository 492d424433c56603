//! End-to-end event delivery through real brokers to the real Celery
//! consumer: RabbitMQ and Redis started here on 127.0.0.1 (free ports,
//! temporary directories, stopped at the end), `app.events.Receiver` and
//! `celery events --dump` from PyPI.
//!
//! RabbitMQ takes seconds to boot, so this binary has its own runner
//! (`harness = false`): it starts the brokers once, runs every scenario in
//! turn, and stops them whatever happened. `cargo test --test brokers NAME`
//! runs the scenarios whose name contains NAME.
//!
//! Needs `redis-server`, `rabbitmq-server` and a Python with `celery[redis]`,
//! named by `TRIPSEAL_TEST_PYTHON`: `scripts/test.sh` installs all three.

mod collect;
#[path = "../common/mod.rs"]
mod common;
mod env;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use base64::Engine;
use common::*;
use env::{Brokers, Receiver};
use serde_json::Value;

type Scenario = fn(&Brokers);

const SCENARIOS: &[(&str, Scenario)] = &[
    ("collector_over_rabbitmq", collector_over_rabbitmq),
    ("collector_over_redis_streams", collector_over_redis_streams),
    (
        "collector_counts_what_a_capped_stream_dropped",
        collector_counts_what_a_capped_stream_dropped,
    ),
    (
        "amqp_receiver_gets_every_finding",
        amqp_receiver_gets_every_finding,
    ),
    (
        "redis_receiver_gets_every_finding",
        redis_receiver_gets_every_finding,
    ),
    (
        "signed_events_reach_a_receiver_that_requires_auth",
        signed_events_reach_a_receiver_that_requires_auth,
    ),
    (
        "celery_events_dump_prints_amqp_events",
        celery_events_dump_prints_amqp_events,
    ),
    (
        "celery_events_dump_prints_redis_events",
        celery_events_dump_prints_redis_events,
    ),
    (
        "redis_transport_options_match_kombus",
        redis_transport_options_match_kombus,
    ),
    (
        "amqp_durable_queue_keeps_events_for_a_collector",
        amqp_durable_queue_keeps_events_for_a_collector,
    ),
    (
        "redis_stream_keeps_events_for_a_collector",
        redis_stream_keeps_events_for_a_collector,
    ),
    (
        "redis_stream_says_when_its_cap_is_reached",
        redis_stream_says_when_its_cap_is_reached,
    ),
    (
        "amqp_wrong_password_keeps_events",
        amqp_wrong_password_keeps_events,
    ),
    (
        "amqp_wrong_vhost_keeps_events",
        amqp_wrong_vhost_keeps_events,
    ),
    (
        "redis_wrong_password_keeps_events",
        redis_wrong_password_keeps_events,
    ),
    (
        "amqps_with_client_certificate_delivers",
        amqps_with_client_certificate_delivers,
    ),
    ("amqps_wrong_ca_keeps_events", amqps_wrong_ca_keeps_events),
    (
        "rediss_with_client_certificate_delivers",
        rediss_with_client_certificate_delivers,
    ),
    ("rediss_wrong_ca_keeps_events", rediss_wrong_ca_keeps_events),
    (
        "redis_down_during_check_then_flush",
        redis_down_during_check_then_flush,
    ),
    (
        "redis_killed_mid_flush_loses_nothing",
        redis_killed_mid_flush_loses_nothing,
    ),
    (
        "amqp_killed_mid_flush_loses_nothing",
        amqp_killed_mid_flush_loses_nothing,
    ),
];

fn main() {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let chosen: Vec<&(&str, Scenario)> = SCENARIOS
        .iter()
        .filter(|(name, _)| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str())))
        .collect();
    println!("\nrunning {} broker scenarios", chosen.len());
    if chosen.is_empty() {
        return;
    }
    let ran = chosen.len();
    let brokers = Brokers::start();
    let mut failed = Vec::new();
    let started = Instant::now();
    for (name, scenario) in chosen {
        let t = Instant::now();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| scenario(&brokers)));
        match outcome {
            Ok(()) => println!("test {name} ... ok ({:.1}s)", t.elapsed().as_secs_f64()),
            Err(_) => {
                println!("test {name} ... FAILED");
                failed.push(*name);
            }
        }
    }
    drop(brokers);
    println!(
        "\ntest result: {}. {} passed; {} failed; finished in {:.1}s",
        if failed.is_empty() { "ok" } else { "FAILED" },
        ran - failed.len(),
        failed.len(),
        started.elapsed().as_secs_f64()
    );
    if !failed.is_empty() {
        for f in &failed {
            println!("    {f}");
        }
        std::process::exit(101);
    }
}

/// A tree with a baseline, then drifted: a file edited and made executable,
/// one removed, one added whose name is not UTF-8.
struct Drifted {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    db: PathBuf,
}

fn drifted() -> Drifted {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("tree");
    std::fs::create_dir(&root).unwrap();
    for name in ["tasks.py", "gone.py", "keep.py"] {
        std::fs::write(root.join(name), name).unwrap();
    }
    let rules = write_rules(
        tmp.path(),
        &format!(
            "[[rule]]\nname = \"code\"\npaths = [\"{}/*\"]\n\
             check = [\"type\", \"mode\", \"size\", \"hash\"]\nseverity = \"critical\"\n",
            root.display()
        ),
    );
    let db = tmp.path().join("b.db");
    assert_ok(&init(&rules, &db));
    std::fs::write(root.join("tasks.py"), b"import os; os.system('evil')").unwrap();
    let mut perm = std::fs::metadata(root.join("tasks.py"))
        .unwrap()
        .permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
    std::fs::set_permissions(root.join("tasks.py"), perm).unwrap();
    std::fs::remove_file(root.join("gone.py")).unwrap();
    std::fs::write(root.join(OsStr::from_bytes(b"new-\xff.py")), b"n").unwrap();
    Drifted {
        _tmp: tmp,
        root,
        db,
    }
}

/// started + modified + removed + added + finished.
const DRIFT_EVENTS: usize = 5;

fn check(db: &Path, sinks: &[&str]) -> Output {
    let mut cmd = tripseal();
    cmd.args(["check", "--allow-unsigned", "--db"]).arg(db);
    for s in sinks {
        cmd.arg("--emit").arg(s);
    }
    cmd.output().unwrap()
}

fn flush(db: &Path, sinks: &[&str]) -> Output {
    let mut cmd = tripseal();
    cmd.args(["flush", "--db"]).arg(db);
    for s in sinks {
        cmd.arg("--emit").arg(s);
    }
    cmd.output().unwrap()
}

/// Drift bits: added (1) + removed (2) + changed (4).
const DRIFT_EXIT: i32 = 7;

fn assert_drift_exit(out: &Output) {
    assert_eq!(
        out.status.code(),
        Some(DRIFT_EXIT),
        "the check's exit code reports the drift, whatever the sinks did\nstderr: {}",
        stderr(out)
    );
}

fn by_type(events: &[Value]) -> BTreeMap<String, Vec<&Value>> {
    let mut m: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for e in events {
        m.entry(e["type"].as_str().unwrap().to_string())
            .or_default()
            .push(e);
    }
    m
}

/// What a consumer must see of the drift `drifted()` made.
fn assert_drift_events(d: &Drifted, events: &[Value]) {
    let host = format!("fim@{}", hostname());
    for e in events {
        assert_eq!(e["hostname"], host.as_str(), "{e}");
        let ty = e["type"].as_str().unwrap();
        assert_eq!(
            e["_routing_key"].as_str(),
            Some(ty.replace('-', ".").as_str()),
            "routing key of {e}"
        );
        assert!(e["timestamp"].is_f64() && e["clock"].is_u64(), "{e}");
        assert_eq!(e["id"].as_str().unwrap().len(), 36, "{e}");
    }
    let t = by_type(events);
    for ty in [
        "fim-scan-started",
        "fim-file-modified",
        "fim-file-removed",
        "fim-file-added",
        "fim-scan-finished",
    ] {
        assert_eq!(t.get(ty).map(Vec::len), Some(1), "one {ty} in {events:?}");
    }
    let modified = t["fim-file-modified"][0];
    assert_eq!(modified["path"], d.root.join("tasks.py").to_str().unwrap());
    let changes = modified["changes"].as_object().unwrap();
    for attr in ["mode", "size", "hash"] {
        assert!(changes.contains_key(attr), "{attr} changed: {modified}");
    }
    assert_eq!(changes["mode"]["old"], "0644");
    assert_eq!(changes["mode"]["new"], "0755");
    assert_eq!(modified["severity"], "critical");
    assert_eq!(
        t["fim-file-removed"][0]["path"],
        d.root.join("gone.py").to_str().unwrap()
    );
    let added = t["fim-file-added"][0];
    let exact = base64::engine::general_purpose::STANDARD
        .decode(
            added["path_bytes"]
                .as_str()
                .expect("path_bytes for a non-UTF-8 name"),
        )
        .unwrap();
    assert_eq!(
        exact,
        d.root
            .join(OsStr::from_bytes(b"new-\xff.py"))
            .as_os_str()
            .as_bytes()
    );
    assert!(
        added["path"].as_str().unwrap().ends_with("new-\\xff.py"),
        "{added}"
    );
    assert_eq!(t["fim-scan-finished"][0]["exit_code"], DRIFT_EXIT);
}

fn hostname() -> String {
    let out = std::process::Command::new("hostname").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn ids(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect()
}

fn read_jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A consumer on `consume_from` receives the drift that `check --emit sink`
/// reports.
fn delivered(b: &Brokers, consume_from: &str, sink: &str) {
    let d = drifted();
    let recv = Receiver::start(b, consume_from, DRIFT_EVENTS, &[]);
    let out = check(&d.db, &[sink]);
    assert_drift_exit(&out);
    assert!(!stderr(&out).contains("not delivered"), "{}", stderr(&out));
    assert_drift_events(&d, &recv.wait());
}

/// `check --emit refused` fails to deliver, says why (`says`, all of them)
/// and keeps every event; `flush --emit right` then delivers them to a
/// consumer on `consume_from`.
fn kept_then_flushed(b: &Brokers, refused: &str, says: &[&str], right: &str, consume_from: &str) {
    let d = drifted();
    let out = check(&d.db, &[refused]);
    assert_drift_exit(&out);
    let err = stderr(&out);
    for s in says {
        assert!(err.contains(s), "{s:?} in {err}");
    }
    assert!(err.contains(&format!("{DRIFT_EVENTS} wait in")), "{err}");
    let recv = Receiver::start(b, consume_from, DRIFT_EVENTS, &[]);
    assert_ok(&flush(&d.db, &[right]));
    assert_drift_events(&d, &recv.wait());
}

/// A receiver that called `app.setup_security()` and accepts only `auth`
/// takes events signed with a certificate of its store, over RabbitMQ and
/// over Redis, and none signed by a certificate it does not hold, nor
/// unsigned ones.
fn signed_events_reach_a_receiver_that_requires_auth(b: &Brokers) {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    std::fs::create_dir(&store).unwrap();
    for name in ["signer", "stranger"] {
        let out = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
            ])
            .args(["-subj", &format!("/O=tripseal tests/CN={name}"), "-keyout"])
            .arg(dir.path().join(format!("{name}.key")))
            .arg("-out")
            .arg(dir.path().join(format!("{name}.pem")))
            .output()
            .unwrap();
        assert_ok(&out);
    }
    std::fs::copy(dir.path().join("signer.pem"), store.join("signer.pem")).unwrap();
    let p = |n: &str| dir.path().join(n).display().to_string();
    let auth = format!(
        "{},{},{}",
        p("signer.key"),
        p("signer.pem"),
        store.display()
    );
    let env = [("RECEIVER_AUTH", auth.as_str())];
    for url in [b.amqp_url(), b.redis_url()] {
        let signed = |who: &str| {
            format!(
                "{url}?auth_key={}&auth_cert={}",
                p(&format!("{who}.key")),
                p(&format!("{who}.pem"))
            )
        };
        let d = drifted();
        let recv = Receiver::start(b, &url, DRIFT_EVENTS, &env);
        let out = check(&d.db, &[&signed("signer")]);
        assert_drift_exit(&out);
        assert_drift_events(&d, &recv.wait());

        for refused in [signed("stranger"), url.clone()] {
            let d = drifted();
            let recv = Receiver::start(b, &url, DRIFT_EVENTS, &env);
            let out = check(&d.db, &[&refused]);
            assert_drift_exit(&out);
            let got = recv.stop_after(Duration::from_secs(3));
            assert!(got.is_empty(), "{refused}: {got:?}");
        }
    }
}

fn amqp_receiver_gets_every_finding(b: &Brokers) {
    delivered(b, &b.amqp_url(), &b.amqp_url());
}

fn redis_receiver_gets_every_finding(b: &Brokers) {
    delivered(b, &b.redis_url(), &b.redis_url());
}

fn amqps_with_client_certificate_delivers(b: &Brokers) {
    delivered(b, &b.amqp_url(), &b.amqps_url(&b.tls.ca));
}

fn rediss_with_client_certificate_delivers(b: &Brokers) {
    delivered(b, &b.redis_url(), &b.rediss_url(&b.tls.ca));
}

fn rediss_wrong_ca_keeps_events(b: &Brokers) {
    kept_then_flushed(
        b,
        &b.rediss_url(&b.tls.other_ca),
        &["certificate", "ssl_ca_certs"],
        &b.rediss_url(&b.tls.ca),
        &b.redis_url(),
    );
}

/// `celery events --dump` prints `HOST [TIME] fim file modified: path=...`.
fn assert_dump_shows_drift(b: &Brokers, url: &str) {
    let d = drifted();
    let mut dump = b.celery_dump(url);
    // The dump binds its queue some time after it starts; until then the
    // exchange drops events. Check again until it has seen one: each check
    // reports the same drift anew.
    let deadline = Instant::now() + Duration::from_secs(60);
    let text = loop {
        assert_drift_exit(&check(&d.db, &[url]));
        std::thread::sleep(Duration::from_millis(500));
        let text = dump.output();
        if text.contains("fim scan finished") || Instant::now() > deadline {
            break text;
        }
    };
    let host = format!("fim@{}", hostname());
    let line = text
        .lines()
        .find(|l| l.contains("fim file modified"))
        .unwrap_or_else(|| panic!("no modified event in the dump:\n{text}"));
    assert!(line.starts_with(&format!("{host} [")), "{line}");
    assert!(
        line.contains(&format!("path={}", d.root.join("tasks.py").display())),
        "{line}"
    );
    assert!(
        line.contains("'mode': {'new': '0755', 'old': '0644'}"),
        "{line}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains("fim file added") && l.contains("path_bytes=")),
        "{text}"
    );
}

fn celery_events_dump_prints_amqp_events(b: &Brokers) {
    assert_dump_shows_drift(b, &b.amqp_url());
}

fn celery_events_dump_prints_redis_events(b: &Brokers) {
    assert_dump_shows_drift(b, &b.redis_url());
}

/// A Celery app with `broker_transport_options` listens on other channels;
/// the same options in tripseal's URL reach it.
fn redis_transport_options_match_kombus(b: &Brokers) {
    for (query, options) in [
        ("global_keyprefix=app1:", r#"{"global_keyprefix": "app1:"}"#),
        ("fanout_prefix=false", r#"{"fanout_prefix": false}"#),
        ("fanout_patterns=false", r#"{"fanout_patterns": false}"#),
        (
            "fanout_prefix=/tenant7.",
            r#"{"fanout_prefix": "/tenant7."}"#,
        ),
    ] {
        let d = drifted();
        let url = format!("{}?{query}", b.redis_url());
        let recv = Receiver::start(
            b,
            &b.redis_url(),
            DRIFT_EVENTS,
            &[("RECEIVER_TRANSPORT_OPTIONS", options)],
        );
        let out = check(&d.db, &[&url]);
        assert_drift_exit(&out);
        assert!(
            !stderr(&out).contains("reached no subscriber"),
            "{query}: {}",
            stderr(&out)
        );
        assert_drift_events(&d, &recv.wait());
    }
}

/// With `?queue=NAME`, events wait in a durable queue until a collector
/// takes them, even if none was listening when they were sent.
fn amqp_durable_queue_keeps_events_for_a_collector(b: &Brokers) {
    let d = drifted();
    let url = format!("{}?queue=fim-collector-test", b.amqp_url());
    let out = check(&d.db, &[&url]);
    assert_drift_exit(&out);
    assert!(
        !stderr(&out).contains("reached no queue"),
        "{}",
        stderr(&out)
    );
    let queues = b.rabbitmqctl(&["list_queues", "name", "type", "durable"]);
    assert!(
        queues
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["fim-collector-test", "quorum", "true"]),
        "a durable quorum queue: {queues}"
    );
    let events = b.drain_queue("fim-collector-test", DRIFT_EVENTS);
    assert_drift_events(&d, &events);
    assert_numbered_from_one(&events);
    let host = format!("fim@{}", hostname());
    for e in &events {
        assert_eq!(e["_delivery_mode"], 2, "persistent in a durable queue: {e}");
        let p = &e["_properties"];
        assert_eq!(p["content_type"], "application/json", "{e}");
        assert_eq!(p["content_encoding"], "utf-8", "{e}");
        assert_eq!(p["priority"], 0, "{e}");
        assert_eq!(p["headers"]["hostname"], host.as_str(), "{e}");
    }
}

/// The fleet's hosts, each in its network namespace, send to a quorum
/// queue on the brokers' private address; the collector reads it on
/// loopback; RabbitMQ is killed and started again on the way.
fn collector_over_rabbitmq(b: &Brokers) {
    let queue = format!("fim-fleet-{}", env::free_port());
    let on = |addr: &str| format!("amqp://guest:guest@{addr}:{}//?queue={queue}", b.amqp_port);
    let restart = || {
        b.kill_rabbit();
        b.restart_rabbit();
    };
    let inject = |body: &[u8]| {
        let out = std::process::Command::new(&b.python)
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/publish_raw.py"))
            .args([&b.amqp_url(), &queue])
            .arg(OsStr::from_bytes(body))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    collect::fleet_flow(
        b,
        &on(&b.fleet.addr),
        &on("127.0.0.1"),
        Some(&restart),
        &inject,
        true,
    );
}

/// The same flow over a Redis Stream.
fn collector_over_redis_streams(b: &Brokers) {
    let key = format!("fim-fleet-{}", env::free_port());
    let on = |addr: &str| format!("redis+stream://{addr}:{}/0?key={key}", b.redis_port);
    let inject = |body: &[u8]| {
        let out = std::process::Command::new("redis-cli")
            .args(["-p", &b.redis_port.to_string(), "XADD", &key, "*", "event"])
            .arg(OsStr::from_bytes(body))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    collect::fleet_flow(
        b,
        &on(&b.fleet.addr),
        &on("127.0.0.1"),
        None,
        &inject,
        false,
    );
}

/// A stream at its cap drops the oldest entries, read or not: when the
/// collector was away, what it never read shows as a gap in the host's
/// numbering, flagged once; the host's scheduled checks keep its drift open
/// and close what is no longer reported.
fn collector_counts_what_a_capped_stream_dropped(b: &Brokers) {
    let d = drifted();
    let key = format!("fim-capped-{}", env::free_port());
    let url = format!("redis+stream://127.0.0.1:{}/0?key={key}", b.redis_port);
    let capped = format!("{url}&maxlen=3");
    let store = d.db.with_file_name("collector.db");
    let log = d.db.with_file_name("collector.log");
    let flags = d.db.with_file_name("flags.jsonl");
    let start = || {
        env::Killed(
            std::process::Command::new(bin_path())
                .args(["collect", "--from", &url, "--store"])
                .arg(&store)
                .arg("--emit")
                .arg(format!("file:{}", flags.display()))
                .stdout(std::process::Stdio::null())
                .stderr(
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&log)
                        .unwrap(),
                )
                .spawn()
                .unwrap(),
        )
    };
    let status = || -> Value {
        let out = tripseal()
            .args(["fleet", "status", "--format", "json", "--store"])
            .arg(&store)
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    };
    let wait_for = |what: &str, ok: &dyn Fn(&Value) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let s = status();
            if ok(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: {s}\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let collector = start();
    assert_drift_exit(&check(&d.db, &[&url]));
    let s = wait_for("the first check", &|s| {
        s["hosts"][0]["sequence"]["last"] == DRIFT_EVENTS
    });
    assert_eq!(s["hosts"][0]["events_lost"], 0, "{s}");
    assert_eq!(s["hosts"][0]["open_drift"]["critical"], 3, "{s}");
    drop(collector);
    // Away: two checks' events, to a stream capped at three entries. Two
    // of them were handed to the collector's consumer and never
    // acknowledged (a collector killed mid-batch), then dropped by the cap.
    assert_drift_exit(&check(&d.db, &[&capped]));
    let taken = std::process::Command::new("redis-cli")
        .args(["-p", &b.redis_port.to_string()])
        .args([
            "XREADGROUP",
            "GROUP",
            "tripseal-collect",
            "collector",
            "COUNT",
            "2",
        ])
        .args(["STREAMS", &key, ">"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&taken.stdout).contains("fim-"),
        "{taken:?}"
    );
    assert_drift_exit(&check(&d.db, &[&capped]));
    let collector = start();
    let last = 3 * DRIFT_EVENTS as i64;
    let s = wait_for("the third check", &|s| {
        s["hosts"][0]["sequence"]["last"] == last
    });
    let lost = 2 * DRIFT_EVENTS as i64 - 3;
    assert_eq!(s["hosts"][0]["events_lost"], lost, "{s}");
    assert!(
        s["hosts"][0]["problems"]
            .as_array()
            .unwrap()
            .contains(&"gap".into()),
        "{s}"
    );
    // The flag is stored with the events; its line in the file follows.
    let gaps = || -> Vec<Value> {
        std::fs::read_to_string(&flags)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|f| f["type"] == "fim-host-gap")
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while gaps().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(collector);
    let found = gaps();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["missing"], lost);
    assert_eq!(found[0]["first"], DRIFT_EVENTS + 1);

    // Root on the host sets its numbering back (an edit of the outbox's
    // row), so that lost events would pass for late ones: the numbers
    // given a second time are said.
    let outbox = d.db.with_file_name(format!(
        "{}.outbox",
        d.db.file_name().unwrap().to_str().unwrap()
    ));
    sql(&outbox, "UPDATE sequence SET next = 2");
    let collector = start();
    assert_drift_exit(&check(&d.db, &[&url]));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !gaps().iter().any(|g| g["reason"] == "reused") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(collector);
    let reused: Vec<Value> = gaps()
        .into_iter()
        .filter(|g| g["reason"] == "reused")
        .collect();
    assert_eq!(reused.len(), 1, "said once: {reused:?}");
    assert_eq!(reused[0]["number"], 2, "{:?}", gaps());
    assert_eq!(reused[0]["reached"], last);
}

/// One stream, numbered 1, 2, 3... in the order they arrived.
fn assert_numbered_from_one(events: &[Value]) {
    let stream = events[0]["stream"].as_str().expect("a stream id");
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["stream"], stream, "{e}");
        assert_eq!(e["seq"].as_u64(), Some(i as u64 + 1), "{e}");
    }
}

/// The entries of Redis Stream `key` (events, with `_type`), and its length.
fn read_stream(b: &Brokers, key: &str) -> (Vec<Value>, u64) {
    let out = std::process::Command::new(&b.python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/read_stream.py"))
        .args([&b.redis_url(), key])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    let len = lines.pop().unwrap().parse().unwrap();
    let events = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (events, len)
}

/// `redis+stream://` appends every event to a Redis Stream, where it waits
/// for a collector (nobody needs to be listening), numbered, with its type.
fn redis_stream_keeps_events_for_a_collector(b: &Brokers) {
    let d = drifted();
    let key = format!("fim-test-{}", env::free_port());
    let url = format!("{}?key={key}", b.redis_url()).replace("redis://", "redis+stream://");
    let out = check(&d.db, &[&url]);
    assert_drift_exit(&out);
    assert!(!stderr(&out).contains("cap"), "{}", stderr(&out));
    let (events, len) = read_stream(b, &key);
    assert_eq!(len as usize, DRIFT_EVENTS);
    assert_drift_events(&d, &events);
    assert_numbered_from_one(&events);
    for e in &events {
        assert_eq!(e["_type"], e["type"], "{e}");
    }
    // The next run numbers on.
    let out = check(&d.db, &[&url]);
    assert_drift_exit(&out);
    let (events, _) = read_stream(b, &key);
    assert_eq!(
        events[DRIFT_EVENTS]["seq"].as_u64(),
        Some(DRIFT_EVENTS as u64 + 1)
    );
    assert_eq!(events[DRIFT_EVENTS]["stream"], events[0]["stream"]);
}

/// A stream at its cap drops its oldest entries, read or not: the sink says
/// so, and the length stays at the cap.
fn redis_stream_says_when_its_cap_is_reached(b: &Brokers) {
    let d = drifted();
    let key = format!("fim-test-{}", env::free_port());
    let url =
        format!("{}?key={key}&maxlen=3", b.redis_url()).replace("redis://", "redis+stream://");
    let out = check(&d.db, &[&url]);
    assert_drift_exit(&out);
    assert!(
        stderr(&out).contains("holds its cap of 3 entries"),
        "{}",
        stderr(&out)
    );
    let (events, len) = read_stream(b, &key);
    assert_eq!(len, 3);
    // The newest stay: the last three numbers.
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(
        seqs,
        [
            DRIFT_EVENTS as u64 - 2,
            DRIFT_EVENTS as u64 - 1,
            DRIFT_EVENTS as u64
        ]
    );
}

/// A refused login does not fail the check; the events wait, and the
/// right password (same sink) delivers them.
fn amqp_wrong_password_keeps_events(b: &Brokers) {
    let d = drifted();
    let wrong = b.amqp_url().replace("guest:guest@", "guest:wrong@");
    let out = check(&d.db, &[&wrong]);
    assert_drift_exit(&out);
    let err = stderr(&out);
    assert!(
        err.contains("ACCESS_REFUSED") && err.contains("check the user and password"),
        "{err}"
    );
    assert!(err.contains(&format!("{DRIFT_EVENTS} wait in")), "{err}");
    assert!(
        !err.contains("wrong"),
        "the password is never printed: {err}"
    );
    let outbox = std::fs::read(format!("{}.outbox", d.db.display())).unwrap();
    assert!(
        !outbox.windows(5).any(|w| w == b"wrong"),
        "the password is never written to the outbox"
    );
    let recv = Receiver::start(b, &b.amqp_url(), DRIFT_EVENTS, &[]);
    assert_ok(&flush(&d.db, &[&b.amqp_url()]));
    assert_drift_events(&d, &recv.wait());
}

fn amqp_wrong_vhost_keeps_events(b: &Brokers) {
    let d = drifted();
    let url = format!("amqp://guest:guest@127.0.0.1:{}/no-such-vhost", b.amqp_port);
    let out = check(&d.db, &[&url]);
    assert_drift_exit(&out);
    let err = stderr(&out);
    assert!(
        err.contains("NOT_ALLOWED") && err.contains("virtual host"),
        "{err}"
    );
    assert!(err.contains(&format!("{DRIFT_EVENTS} wait in")), "{err}");
    let again = flush(&d.db, &[&url]);
    assert_eq!(again.status.code(), Some(14), "{}", stderr(&again));
    assert!(stdout(&again).contains(&format!("{DRIFT_EVENTS} events still wait")));
}

fn redis_wrong_password_keeps_events(b: &Brokers) {
    let d = drifted();
    let wrong = format!("redis://:wrong@127.0.0.1:{}/0", b.redis_auth_port);
    let out = check(&d.db, &[&wrong]);
    assert_drift_exit(&out);
    let err = stderr(&out);
    assert!(err.contains("check the user and password"), "{err}");
    assert!(err.contains(&format!("{DRIFT_EVENTS} wait in")), "{err}");
    assert!(
        !err.contains("wrong@"),
        "the password is never printed: {err}"
    );
    let right = format!(
        "redis://:{}@127.0.0.1:{}/0",
        env::REDIS_PASSWORD,
        b.redis_auth_port
    );
    let recv = Receiver::start(b, &right, DRIFT_EVENTS, &[]);
    // Without --emit, flush cannot know the password and says so.
    let blind = flush(&d.db, &[]);
    assert_eq!(blind.status.code(), Some(15), "{}", stderr(&blind));
    assert!(
        stderr(&blind).contains("flush --emit URL"),
        "{}",
        stderr(&blind)
    );
    // The configuration has it.
    let config = d.db.with_file_name("config.toml");
    std::fs::write(&config, format!("[events]\nemit = [{right:?}]\n")).unwrap();
    std::fs::set_permissions(&config, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let out = tripseal()
        .args(["flush", "--db"])
        .arg(&d.db)
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert_ok(&out);
    assert_drift_events(&d, &recv.wait());
}

fn amqps_wrong_ca_keeps_events(b: &Brokers) {
    let d = drifted();
    let wrong = b.amqps_url(&b.tls.other_ca);
    let out = check(&d.db, &[&wrong]);
    assert_drift_exit(&out);
    let err = stderr(&out);
    assert!(
        err.contains("certificate") && err.contains("ssl_ca_certs"),
        "{err}"
    );
    assert!(err.contains(&format!("{DRIFT_EVENTS} wait in")), "{err}");
    // Without the client certificate the broker refuses the handshake.
    let no_client_cert = format!(
        "amqps://guest:guest@127.0.0.1:{}//?ssl_ca_certs={}",
        b.amqps_port,
        b.tls.ca.display()
    );
    let out = flush(&d.db, &[&no_client_cert]);
    assert_eq!(out.status.code(), Some(14), "{}", stderr(&out));
    let recv = Receiver::start(b, &b.amqp_url(), DRIFT_EVENTS, &[]);
    assert_ok(&flush(&d.db, &[&b.amqps_url(&b.tls.ca)]));
    assert_drift_events(&d, &recv.wait());
}

/// Redis is not running during the check; once it is, flush delivers every
/// event, in order, exactly as the file sink recorded them.
fn redis_down_during_check_then_flush(b: &Brokers) {
    let d = drifted();
    let port = env::free_port();
    let url = format!("redis://127.0.0.1:{port}/0");
    let file = d.db.with_file_name("all.jsonl");
    let file_sink = format!("file:{}", file.display());
    let out = check(&d.db, &[&url, &file_sink]);
    assert_drift_exit(&out);
    let err = stderr(&out);
    assert!(
        err.contains("Connection refused") && err.contains("is Redis running?"),
        "{err}"
    );
    let redis = b.start_redis(port, &[]);
    let recv = Receiver::start(b, &url, DRIFT_EVENTS, &[]);
    let out = flush(&d.db, &[]);
    assert_ok(&out);
    assert!(
        stdout(&out).contains("0 events still wait"),
        "{}",
        stdout(&out)
    );
    let got = recv.wait();
    assert_eq!(ids(&got), ids(&read_jsonl(&file)), "all, in order");
    assert_drift_events(&d, &got);
    drop(redis);
}

/// A tree where `n` files were added since the baseline (and so its
/// directory changed): n + 3 events, and exit code 5.
fn many_added(n: usize) -> Drifted {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("tree");
    std::fs::create_dir(&root).unwrap();
    let rules = rules_for(tmp.path(), &root, r#"["type", "size", "hash"]"#);
    let db = tmp.path().join("b.db");
    assert_ok(&init(&rules, &db));
    for i in 0..n {
        std::fs::write(root.join(format!("f{i:05}")), i.to_string()).unwrap();
    }
    Drifted {
        _tmp: tmp,
        root,
        db,
    }
}

/// Waits until `path` holds at least `lines` lines.
fn wait_for_lines(path: &Path, lines: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let n = std::fs::read(path)
            .map(|b| b.iter().filter(|&&c| c == b'\n').count())
            .unwrap_or(0);
        if n >= lines {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} has {n} of {lines} lines",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// N from flush's "N events still wait".
fn waiting(out: &Output) -> usize {
    let text = stdout(out);
    text.split("; ")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {text:?}"))
}

/// Every event the file sink recorded reached a consumer at least once, and
/// every repeat is one that `id` lets a consumer drop.
fn assert_all_arrived(expected: &[Value], received: &[Value]) {
    let want: BTreeSet<String> = ids(expected).into_iter().collect();
    let got: BTreeSet<String> = ids(received).into_iter().collect();
    let missing: Vec<String> = expected
        .iter()
        .enumerate()
        .filter(|(_, e)| !got.contains(e["id"].as_str().unwrap()))
        .map(|(i, e)| format!("#{i} {} {}", e["type"], e["id"]))
        .collect();
    assert!(
        missing.is_empty(),
        "{} events lost: {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert!(
        got.is_subset(&want),
        "events that tripseal never made arrived"
    );
}

const MANY: usize = 6000;
const MANY_EVENTS: usize = MANY + 3;
const MANY_EXIT: i32 = 5;

fn redis_killed_mid_flush_loses_nothing(b: &Brokers) {
    let d = many_added(MANY);
    let port = env::free_port();
    let url = format!("redis://127.0.0.1:{port}/0");
    let file = d.db.with_file_name("all.jsonl");
    let out = check(&d.db, &[&url, &format!("file:{}", file.display())]);
    assert_eq!(out.status.code(), Some(MANY_EXIT), "{}", stderr(&out));
    let expected = read_jsonl(&file);
    assert_eq!(expected.len(), MANY_EVENTS);

    let mut redis = b.start_redis(port, &[]);
    // A slow consumer: Redis holds what it has not read yet in memory, and
    // loses that when it dies; those events must still be in the outbox.
    let first = Receiver::start(b, &url, expected.len(), &[("RECEIVER_DELAY_MS", "1")]);
    let flushing = std::process::Command::new(bin_path())
        .args(["flush", "--db"])
        .arg(&d.db)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_lines(first.out_path(), MANY / 10);
    redis.kill();
    let out = flushing.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(14),
        "flush says it stopped: {}",
        stderr(&out)
    );
    let before = first.abandon();
    assert!(
        before.len() < expected.len(),
        "the kill came too late to test anything"
    );

    // What the outbox kept: what Redis had not passed on when it died,
    // and perhaps some that it had (the consumer drops those by id).
    let kept = waiting(&out);
    assert!(
        before.len() + kept >= expected.len(),
        "{} received + {kept} kept < {}",
        before.len(),
        expected.len()
    );

    let redis = b.start_redis(port, &[]);
    let second = Receiver::start(b, &url, kept, &[]);
    assert_ok(&flush(&d.db, &[]));
    let after = second.wait();
    let all: Vec<Value> = before.into_iter().chain(after).collect();
    assert_all_arrived(&expected, &all);
    drop(redis);
}

fn amqp_killed_mid_flush_loses_nothing(b: &Brokers) {
    let d = many_added(MANY);
    let url = b.amqp_url();
    let file = d.db.with_file_name("all.jsonl");
    // A collector's durable queue: what the broker confirmed survives its death.
    let durable = format!("{url}?queue=fim-crash-test");
    // The feed's queue exists before the crash, as it does once a host has
    // sent its first events. (RabbitMQ 3.10 records a new quorum queue's
    // name on disk once it has been idle for half a second: killed under
    // load before that, the queue does not come back. See the README.)
    {
        let before = drifted();
        assert_drift_exit(&check(&before.db, &[&durable]));
        assert_eq!(
            b.take_from_queue("fim-crash-test", DRIFT_EVENTS).len(),
            DRIFT_EVENTS
        );
        std::thread::sleep(Duration::from_secs(2));
    }
    let first = Receiver::start(b, &url, MANY_EVENTS, &[]);
    let checking = std::process::Command::new(bin_path())
        .args(["check", "--allow-unsigned", "--db"])
        .arg(&d.db)
        .args(["--emit", &durable, "--emit"])
        .arg(format!("file:{}", file.display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_lines(first.out_path(), MANY / 10);
    b.kill_rabbit();
    let out = checking.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(MANY_EXIT),
        "the check still reports the drift: {}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("not delivered"), "{}", stderr(&out));
    let expected = read_jsonl(&file);
    assert_eq!(expected.len(), MANY_EVENTS);
    let _ = first.abandon();

    b.restart_rabbit();
    assert_ok(&flush(&d.db, &[&durable]));
    // Everything confirmed before the kill, and everything flushed after it,
    // is in the durable queue.
    let queued = b.drain_queue("fim-crash-test", 0);
    assert_all_arrived(&expected, &queued);
}
