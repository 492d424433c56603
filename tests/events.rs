//! Events from `tripseal check`: the envelope, the outbox, and the stdout,
//! file and syslog (UDP, TCP) sinks, with real listeners in the test.

mod common;

use std::ffi::OsStr;
use std::io::Read;
use std::net::{TcpListener, UdpSocket};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use serde_json::Value;

/// A tree with a baseline, then changed: one added (with a name that is not
/// UTF-8), one removed, one modified.
fn drifted() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("tree");
    std::fs::create_dir(&root).unwrap();
    for name in ["keep", "gone", "edit"] {
        std::fs::write(root.join(name), name).unwrap();
    }
    let rules = write_rules(
        tmp.path(),
        &format!(
            "[[rule]]\nname = \"code\"\npaths = [\"{}/*\"]\ncheck = [\"type\", \"size\", \"hash\"]\nseverity = \"high\"\n",
            root.display()
        ),
    );
    let db = tmp.path().join("b.db");
    assert_ok(&init(&rules, &db));
    std::fs::remove_file(root.join("gone")).unwrap();
    std::fs::write(root.join("edit"), b"edited").unwrap();
    std::fs::write(root.join(OsStr::from_bytes(b"new-\xff")), b"n").unwrap();
    (tmp, root, db)
}

fn outbox_count(db: &Path) -> u64 {
    let out = std::process::Command::new("sqlite3")
        .arg(format!("{}.outbox", db.display()))
        .arg("SELECT count(*) FROM events")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out).trim().parse().unwrap()
}

fn lines_json(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn assert_check_events(events: &[Value], root: &Path) {
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types.first(), Some(&"fim-scan-started"), "{types:?}");
    assert_eq!(types.last(), Some(&"fim-scan-finished"), "{types:?}");
    for t in ["fim-file-added", "fim-file-removed", "fim-file-modified"] {
        assert_eq!(
            types.iter().filter(|x| **x == t).count(),
            1,
            "{t} in {types:?}"
        );
    }
    let host = std::process::Command::new("hostname").output().unwrap();
    let host = stdout(&host).trim().to_string();
    let mut clocks = Vec::new();
    for e in events {
        for key in [
            "type",
            "hostname",
            "timestamp",
            "utcoffset",
            "pid",
            "clock",
            "id",
        ] {
            assert!(e.get(key).is_some(), "{key} missing in {e}");
        }
        assert_eq!(e["hostname"], format!("fim@{host}"));
        assert!(e["timestamp"].is_f64());
        clocks.push(e["clock"].as_u64().unwrap());
    }
    assert!(
        clocks.windows(2).all(|w| w[0] < w[1]),
        "clock increases: {clocks:?}"
    );
    let find = |t: &str| events.iter().find(|e| e["type"] == t).unwrap();
    let modified = find("fim-file-modified");
    assert_eq!(modified["path"], root.join("edit").to_str().unwrap());
    assert_eq!(modified["rule"], "code");
    assert_eq!(modified["severity"], "high");
    assert_eq!(
        modified["changes"]["size"],
        serde_json::json!({"old": 4, "new": 6})
    );
    assert!(modified["changes"].get("hash").is_some());
    assert_eq!(modified["baseline"]["generation"], 1);
    let added = find("fim-file-added");
    assert_eq!(
        entry_path(added),
        key(&root.join(OsStr::from_bytes(b"new-\xff")))
    );
    assert_eq!(added["attributes"]["size"], 1);
    assert_eq!(
        find("fim-file-removed")["path"],
        root.join("gone").to_str().unwrap()
    );
    let finished = find("fim-scan-finished");
    assert_eq!(
        (
            finished["added"].as_u64(),
            finished["removed"].as_u64(),
            finished["changed"].as_u64()
        ),
        (Some(1), Some(1), Some(1))
    );
    assert_eq!(finished["exit_code"], 7);
}

#[test]
fn format_events_prints_json_lines_and_keeps_the_exit_code() {
    let (_tmp, root, db) = drifted();
    let out = check_unsigned(&db, &["--format", "events"]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    let events = lines_json(&stdout(&out));
    assert_check_events(&events, &root);
    assert_eq!(outbox_count(&db), 0, "delivered events leave the outbox");
}

#[test]
fn the_file_sink_appends_and_never_truncates() {
    let (tmp, root, db) = drifted();
    let file = tmp.path().join("events.jsonl");
    let sink = format!("file:{}", file.display());
    for _ in 0..2 {
        let out = check_unsigned(&db, &["--emit", &sink]);
        assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
        // The human report is still printed.
        assert!(
            stdout(&out).starts_with("tripseal check: 1 added"),
            "{}",
            stdout(&out)
        );
    }
    let events = lines_json(&std::fs::read_to_string(&file).unwrap());
    assert_eq!(events.len(), 10, "two runs of five events");
    assert_check_events(&events[..5], &root);
    assert_check_events(&events[5..], &root);
    assert_eq!(outbox_count(&db), 0);
}

/// One RFC 5424 message: PRI, version 1, the header fields, the JSON message.
fn parse_rfc5424(line: &str) -> (u8, Vec<String>, Value) {
    let rest = line.strip_prefix('<').expect("starts with <PRI>");
    let (pri, rest) = rest.split_once('>').unwrap();
    let mut parts = rest.splitn(7, ' ');
    let fields: Vec<String> = (0..6).map(|_| parts.next().unwrap().to_string()).collect();
    let msg = parts.next().unwrap();
    assert_eq!(fields[0], "1", "version: {line}");
    assert!(
        fields[1].ends_with('Z') && fields[1].contains('T'),
        "timestamp: {line}"
    );
    assert_eq!(fields[3], "tripseal", "{line}");
    let sd = msg.split_once(' ').unwrap();
    assert_eq!(sd.0, "-", "no structured data: {line}");
    (
        pri.parse().unwrap(),
        fields,
        serde_json::from_str(sd.1).unwrap(),
    )
}

#[test]
fn syslog_over_udp_gives_rfc5424_lines() {
    let (_tmp, root, db) = drifted();
    let listener = UdpSocket::bind("127.0.0.1:0").unwrap();
    listener
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let sink = format!("syslog+udp://{}", listener.local_addr().unwrap());
    let out = check_unsigned(&db, &["--emit", &sink]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    let mut events = Vec::new();
    let mut buf = vec![0u8; 65536];
    for _ in 0..5 {
        let n = listener.recv(&mut buf).expect("a datagram per event");
        let (pri, fields, body) = parse_rfc5424(std::str::from_utf8(&buf[..n]).unwrap());
        assert_eq!(
            fields[5],
            body["type"].as_str().unwrap(),
            "MSGID is the type"
        );
        let expected = if body.get("severity").is_some() {
            10 * 8 + 3
        } else {
            10 * 8 + 6
        };
        assert_eq!(pri, expected, "authpriv, severity from the rule: {body}");
        events.push(body);
    }
    assert_check_events(&events, &root);
}

/// Reads octet-counted frames ("LEN SP MSG") until the peer closes.
fn read_frames(mut stream: std::net::TcpStream) -> Vec<String> {
    let mut data = Vec::new();
    stream.read_to_end(&mut data).unwrap();
    let mut frames = Vec::new();
    let mut rest = &data[..];
    while !rest.is_empty() {
        let space = rest.iter().position(|&b| b == b' ').unwrap();
        let len: usize = std::str::from_utf8(&rest[..space])
            .unwrap()
            .parse()
            .unwrap();
        frames.push(String::from_utf8(rest[space + 1..space + 1 + len].to_vec()).unwrap());
        rest = &rest[space + 1 + len..];
    }
    frames
}

#[test]
fn a_sink_that_is_down_keeps_the_events_until_flush() {
    let (_tmp, root, db) = drifted();
    // A port nobody listens on: bound, then released.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let sink = format!("syslog+tcp://127.0.0.1:{port}");
    let out = check_unsigned(&db, &["--emit", &sink]);
    assert_eq!(
        out.status.code(),
        Some(7),
        "the drift still decides the exit code"
    );
    let err = stderr(&out);
    assert!(
        err.contains("events not delivered to syslog+tcp://") && err.contains("5 wait in"),
        "{err}"
    );
    assert!(err.contains("tripseal flush"), "{err}");
    assert_eq!(outbox_count(&db), 5);

    // The sink comes back: flush delivers everything once, in order.
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let receiver = std::thread::spawn(move || read_frames(listener.accept().unwrap().0));
    let out = flush(&db);
    assert_ok(&out);
    assert!(
        stdout(&out).contains("0 events still wait"),
        "{}",
        stdout(&out)
    );
    let frames = receiver.join().unwrap();
    let events: Vec<Value> = frames.iter().map(|f| parse_rfc5424(f).2).collect();
    assert_check_events(&events, &root);
    assert_eq!(outbox_count(&db), 0);
    let out = flush(&db);
    assert_ok(&out);
    assert!(
        stdout(&out).contains("tripseal flush: 0 sinks"),
        "{}",
        stdout(&out)
    );

    // A flush while the sink is still down says so and keeps the events.
    let out = check_unsigned(&db, &["--emit", &sink]);
    assert_eq!(out.status.code(), Some(7));
    let out = flush(&db);
    assert_eq!(out.status.code(), Some(14), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("5 wait in the outbox"),
        "{}",
        stderr(&out)
    );
    assert_eq!(outbox_count(&db), 5);
}

#[test]
fn a_refused_seal_is_an_event() {
    let (tmp, _root, db) = drifted();
    let file = tmp.path().join("events.jsonl");
    let out = tripseal()
        .args(["check", "--trust"])
        .arg(tmp.path().join("no-keys.d"))
        .arg("--db")
        .arg(&db)
        .arg("--emit")
        .arg(format!("file:{}", file.display()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(26), "{}", stderr(&out));
    let events = lines_json(&std::fs::read_to_string(&file).unwrap());
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["fim-scan-started", "fim-baseline-tampered"]);
    assert_eq!(events[1]["reason"], "unsigned");
    assert_eq!(events[1]["baseline_path"], db.to_str().unwrap());
}

#[test]
fn unknown_sinks_are_refused_before_any_work() {
    let (_tmp, _root, db) = drifted();
    let out = check_unsigned(&db, &["--emit", "kafka://broker:9092"]);
    assert_eq!(out.status.code(), Some(15), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("unknown event sink"),
        "{}",
        stderr(&out)
    );
    assert!(out.stdout.is_empty());
    let out = tripseal()
        .args(["flush", "--emit", "kafka://broker:9092", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(15), "{}", stderr(&out));
}

#[test]
fn a_file_sink_that_cannot_be_written_keeps_the_events() {
    let (tmp, root, db) = drifted();
    let missing = tmp.path().join("no-such-dir").join("events.jsonl");
    let sink = format!("file:{}", missing.display());
    let out = check_unsigned(&db, &["--emit", &sink]);
    assert_eq!(
        out.status.code(),
        Some(7),
        "the drift decides the exit code"
    );
    assert!(stderr(&out).contains("5 wait in"), "{}", stderr(&out));
    assert_eq!(outbox_count(&db), 5);
    // The directory appears: flush writes every event, once.
    std::fs::create_dir(missing.parent().unwrap()).unwrap();
    assert_ok(&flush(&db));
    let events = lines_json(&std::fs::read_to_string(&missing).unwrap());
    assert_check_events(&events, &root);
    assert_eq!(outbox_count(&db), 0);
}

#[test]
fn broker_urls_with_bad_options_are_refused_before_any_work() {
    let (_tmp, _root, db) = drifted();
    for (url, says) in [
        (
            "amqps://h//?ssl_cert_reqs=none",
            "always verifies the broker's certificate",
        ),
        (
            "amqp://h//?ssl_ca_certs=/ca.pem",
            "TLS options need amqps://",
        ),
        (
            "redis://h/0?fanout_patern=false",
            "\"fanout_patern\" is not known",
        ),
        ("redis://h/zero", "the path must be the database number"),
        ("rediss://h/0?ssl_certfile=/c.pem", "go together"),
        ("amqp://h:99999//", "the port is not a number"),
    ] {
        let out = check_unsigned(&db, &["--emit", url]);
        assert_eq!(out.status.code(), Some(15), "{url}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{url}: {}", stderr(&out));
        assert!(out.stdout.is_empty(), "{url}: no scan ran");
    }
    assert!(
        !std::path::Path::new(&format!("{}.outbox", db.display())).exists(),
        "nothing was kept for a refused sink"
    );
}

#[test]
fn sinks_come_from_the_configuration_file() {
    let (tmp, root, db) = drifted();
    let events = tmp.path().join("events.jsonl");
    let config = tmp.path().join("config.toml");
    std::fs::write(
        &config,
        format!("[events]\nemit = [\"file:{}\"]\n", events.display()),
    )
    .unwrap();
    std::fs::set_permissions(&config, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let out = check_unsigned(&db, &["--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    let text = std::fs::read_to_string(&events).unwrap();
    assert_check_events(&lines_json(&text), &root);

    // Broker passwords may be in it: one every user can read is refused.
    std::fs::set_permissions(&config, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    // A configuration error is 17, as a rules error is.
    let out = check_unsigned(&db, &["--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(17), "{}", stderr(&out));
    assert!(stderr(&out).contains("chmod o-r"), "{}", stderr(&out));

    std::fs::write(&config, "[events]\nemitt = []\n").unwrap();
    std::fs::set_permissions(&config, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let out = check_unsigned(&db, &["--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(17), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("unknown field `emitt`"),
        "{}",
        stderr(&out)
    );

    // A sink the file names that does not exist: the file's error, named.
    std::fs::write(&config, "[events]\nemit = [\"kafka://b:9092\"]\n").unwrap();
    let out = check_unsigned(&db, &["--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(17), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(config.to_str().unwrap()) && err.contains("[events] emit: unknown event sink"),
        "{err}"
    );
}

#[test]
fn a_signing_key_that_cannot_sign_is_refused_before_any_work() {
    let (tmp, _root, db) = tree_holding_its_baseline(FULL);
    let dir = tmp.path();
    for name in ["a", "b"] {
        let out = std::process::Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3",
            ])
            .args(["-subj", &format!("/CN={name}"), "-keyout"])
            .arg(dir.join(format!("{name}.key")))
            .arg("-out")
            .arg(dir.join(format!("{name}.pem")))
            .output()
            .unwrap();
        assert_ok(&out);
        std::fs::set_permissions(
            dir.join(format!("{name}.key")),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
    }
    let p = |n: &str| dir.join(n).display().to_string();
    let emit = |query: String| {
        check_unsigned(
            &db,
            &["--emit", &format!("amqp://g:g@127.0.0.1:1//?{query}")],
        )
    };
    let refused = |out: &std::process::Output, says: &str| {
        assert_eq!(out.status.code(), Some(15), "{}", stderr(out));
        assert!(stderr(out).contains(says), "{}", stderr(out));
    };
    refused(
        &emit(format!("auth_key={}&auth_cert={}", p("a.key"), p("b.pem"))),
        "is not the certificate of the key",
    );
    refused(
        &emit(format!("auth_key={}", p("a.key"))),
        "auth_key and auth_cert go together",
    );
    std::fs::set_permissions(
        dir.join("a.key"),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    refused(
        &emit(format!("auth_key={}&auth_cert={}", p("a.key"), p("a.pem"))),
        "readable by every user",
    );
    // Writable by its group: whoever may write it chooses what signs.
    std::fs::set_permissions(
        dir.join("a.key"),
        std::os::unix::fs::PermissionsExt::from_mode(0o620),
    )
    .unwrap();
    refused(
        &emit(format!("auth_key={}&auth_cert={}", p("a.key"), p("a.pem"))),
        &format!(
            "writable by its group (mode 0620); chmod 600 {}",
            p("a.key")
        ),
    );
    let fifo = dir.join("fifo.key");
    mkfifo(&fifo);
    refused(
        &emit(format!(
            "auth_key={}&auth_cert={}",
            fifo.display(),
            p("a.pem")
        )),
        "not a regular file",
    );
}
