//! Nothing trusted that was not verified, attacked through the real binary:
//! SQLite files that carry code, strings from a baseline on a terminal,
//! FIFOs planted where tripseal reads, state files that fail closed, files
//! named like the baseline, sinks refused before any work.

mod common;

use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::*;

/// The tree most tests here seal.
const ONE: [(&str, &str); 1] = [("a.py", "a")];

/// A command refused because of a FIFO, quickly, with an error code.
fn refused_for_a_fifo(cmd: assert_cmd::Command) {
    let out = quick(cmd);
    assert!(
        code(&out).unwrap() >= 14 && stderr(&out).contains("FIFO"),
        "{}",
        stderr(&out)
    );
}

/// A command that must end on its own quickly: a FIFO must never be waited on.
fn quick(mut cmd: assert_cmd::Command) -> Output {
    cmd.timeout(Duration::from_secs(20));
    let out = cmd.output().unwrap();
    assert!(
        out.status.code().is_some(),
        "killed, it hung: {}",
        stderr(&out)
    );
    out
}

fn code(out: &Output) -> Option<i32> {
    out.status.code()
}

#[test]
fn a_baseline_that_carries_code_or_tables_of_its_own_is_refused() {
    let cases = [
        (
            "CREATE TRIGGER steal AFTER INSERT ON signatures BEGIN \
             UPDATE meta SET value = 'x' WHERE key = 'host'; END;",
            "trigger named steal",
        ),
        (
            "CREATE VIEW peek AS SELECT * FROM entries;",
            "view named peek",
        ),
        ("CREATE TABLE extra (x);", "table named extra"),
        (
            "CREATE INDEX by_hash ON entries(hash);",
            "index named by_hash",
        ),
        (
            "CREATE VIRTUAL TABLE search USING fts5(body);",
            "table named search",
        ),
    ];
    for (statement, named) in cases {
        let h = Sealed::new(&ONE);
        sql(&h.db, statement);
        let before = std::fs::read(&h.db).unwrap();
        // Reading it: exit 24 naming what it carries.
        let out = tripseal().arg("show").arg(&h.db).output().unwrap();
        assert_eq!(code(&out), Some(24), "{statement}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(named),
            "{statement}: {}",
            stderr(&out)
        );
        // Signing it: refused, and nothing in the file ran or changed.
        let out = h.sign(&h.key, &h.db);
        assert_eq!(code(&out), Some(24), "{statement}: {}", stderr(&out));
        assert!(stderr(&out).contains(named), "{}", stderr(&out));
        assert_eq!(std::fs::read(&h.db).unwrap(), before, "{statement}");
        // Checking against it: the seal is refused.
        let out = h.check();
        assert_eq!(code(&out), Some(26), "{statement}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("seal refused (unreadable)") && stderr(&out).contains(named),
            "{}",
            stderr(&out)
        );
        let out = tripseal()
            .arg("verify")
            .arg("--trust")
            .arg(&h.public)
            .arg(&h.db)
            .output()
            .unwrap();
        assert_eq!(code(&out), Some(26), "{statement}: {}", stderr(&out));
    }
    // sign reads only what show and diff read: not a journal or a WAL that
    // SQLite would replay, and never through a symlink.
    let h = Sealed::new(&ONE);
    for beside in ["b.db-journal", "b.db-wal"] {
        let planted = h.dir.join(beside);
        std::fs::write(&planted, "rows nobody reviewed").unwrap();
        let before = std::fs::read(&h.db).unwrap();
        let out = h.sign(&h.key, &h.db);
        assert_eq!(code(&out), Some(24), "{beside}: {}", stderr(&out));
        assert!(stderr(&out).contains(beside), "{}", stderr(&out));
        assert_eq!(std::fs::read(&h.db).unwrap(), before);
        std::fs::remove_file(&planted).unwrap();
    }
    // Left in WAL mode (checkpointed): check reads the same content and
    // accepts its seal; sign refuses to write it in place.
    let wal = h.dir.join("wal.db");
    std::fs::copy(&h.db, &wal).unwrap();
    sql(&wal, "PRAGMA journal_mode = WAL;");
    assert_eq!(
        std::fs::read(&wal).unwrap()[18],
        2,
        "sqlite3 left it in WAL mode"
    );
    assert_ok(&h.check_with(&wal, &h.public, &[]));
    let out = h.sign(&h.key, &wal);
    assert_eq!(code(&out), Some(24), "{}", stderr(&out));
    assert!(stderr(&out).contains("WAL mode"), "{}", stderr(&out));
    let link = h.dir.join("link.db");
    std::os::unix::fs::symlink(&h.db, &link).unwrap();
    let out = h.sign(&h.key, &link);
    assert_eq!(code(&out), Some(24), "{}", stderr(&out));
    assert!(stderr(&out).contains("symbolic link"), "{}", stderr(&out));
    // A column redefined (a default, a generated column) is not our schema.
    let h = Sealed::new(&ONE);
    sql(
        &h.db,
        "PRAGMA writable_schema = ON; UPDATE sqlite_master SET sql = replace(sql, \
         'attrs INTEGER NOT NULL', 'attrs INTEGER NOT NULL DEFAULT 7') WHERE name = 'rules';",
    );
    let out = tripseal().arg("show").arg(&h.db).output().unwrap();
    assert_eq!(code(&out), Some(24), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("table rules is defined differently"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn strings_from_a_baseline_never_reach_the_terminal_raw() {
    let h = Sealed::new(&ONE);
    let evil = "x' || char(27) || '[2J' || char(8238) || 'y";
    let copy = h.dir.join("evil.db");
    std::fs::copy(&h.db, &copy).unwrap();
    sql(
        &copy,
        &format!(
            "UPDATE meta SET value = '{evil}' \
             WHERE key IN ('host', 'tool_version', 'rules_origin', 'rules_digest'); \
             UPDATE rules SET name = 'tree{evil}'; UPDATE entries SET rule = 'tree{evil}';"
        ),
    );
    std::fs::write(h.root.join("new.py"), "new").unwrap();
    let raw = |out: &Output| {
        let all = [out.stdout.as_slice(), out.stderr.as_slice()].concat();
        let text = String::from_utf8_lossy(&all).into_owned();
        assert!(
            !all.contains(&0x1b) && !text.contains('\u{202e}'),
            "raw control or bidi character printed: {text:?}"
        );
        text
    };
    // JSON too: the same values, with the dangerous characters as escapes.
    let out = tripseal()
        .args(["show", "--format", "json"])
        .arg(&copy)
        .output()
        .unwrap();
    assert_ok(&out);
    raw(&out);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["header"]["host"], "x\u{1b}[2J\u{202e}y");
    let out = tripseal().arg("show").arg(&copy).output().unwrap();
    assert_ok(&out);
    let text = raw(&out);
    assert!(text.contains("x\\x1b[2J\\u{202e}y"), "{text}");
    assert!(text.contains("treex\\x1b"), "{text}");
    // A drift report names the rule the baseline gave.
    let out = tripseal()
        .args(["diff", "--allow-unsigned"])
        .arg(&copy)
        .arg(&h.db)
        .output()
        .unwrap();
    raw(&out);
    for format in ["human", "json", "events"] {
        let out = tripseal()
            .args(["check", "--allow-unsigned", "--format", format, "--db"])
            .arg(&copy)
            .output()
            .unwrap();
        raw(&out);
    }
    let out = verify(&h.public, &copy);
    assert_eq!(code(&out), Some(26));
    raw(&out);
    // An error message that quotes the file's contents.
    sql(
        &copy,
        "UPDATE entries SET rule = 'gone' || char(27) || '[31m';",
    );
    let out = tripseal().arg("show").arg(&copy).output().unwrap();
    assert_eq!(code(&out), Some(24), "{}", stderr(&out));
    raw(&out);
}

#[test]
fn planted_fifos_are_refused_never_waited_on() {
    let h = Sealed::new(&ONE);
    // The rollback record.
    mkfifo(&h.dir.join("b.db.accepted"));
    let mut cmd = tripseal();
    cmd.arg("check")
        .arg("--db")
        .arg(&h.db)
        .arg("--trust")
        .arg(&h.public);
    let out = quick(cmd);
    assert_eq!(code(&out), Some(26), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("accepted-unreadable") && stderr(&out).contains("FIFO"),
        "{}",
        stderr(&out)
    );
    std::fs::remove_file(h.dir.join("b.db.accepted")).unwrap();
    // The baseline itself.
    let fifo_db = h.dir.join("fifo.db");
    mkfifo(&fifo_db);
    let mut cmd = tripseal();
    cmd.arg("show").arg(&fifo_db);
    let out = quick(cmd);
    assert_eq!(code(&out), Some(24), "{}", stderr(&out));
    assert!(stderr(&out).contains("FIFO"), "{}", stderr(&out));
    // A rules file.
    let fifo_rules = h.dir.join("rules.fifo");
    mkfifo(&fifo_rules);
    for args in [
        vec!["rules", "check", fifo_rules.to_str().unwrap()],
        vec![
            "init",
            "--rules",
            fifo_rules.to_str().unwrap(),
            "--db",
            "/nonexistent/x.db",
        ],
    ] {
        let mut cmd = tripseal();
        cmd.args(&args);
        refused_for_a_fifo(cmd);
    }
    // The configuration.
    let fifo_config = h.dir.join("config.fifo");
    mkfifo(&fifo_config);
    let mut cmd = tripseal();
    cmd.arg("--config")
        .arg(&fifo_config)
        .arg("check")
        .arg("--db")
        .arg(&h.db)
        .arg("--trust")
        .arg(&h.public);
    refused_for_a_fifo(cmd);
    // A key in the trust store, and the trust store given as one file.
    let store = h.dir.join("trusted.d");
    std::fs::create_dir(&store).unwrap();
    std::fs::copy(&h.public, store.join("op.pub")).unwrap();
    mkfifo(&store.join("planted.pub"));
    for trust in [store.clone(), store.join("planted.pub")] {
        let mut cmd = tripseal();
        cmd.arg("check")
            .arg("--db")
            .arg(&h.db)
            .arg("--trust")
            .arg(&trust);
        let out = quick(cmd);
        assert_eq!(code(&out), Some(17), "{}", stderr(&out));
        assert!(stderr(&out).contains("FIFO"), "{}", stderr(&out));
    }
    // The lock a writer takes.
    let lock = h.dir.join("b.db.lock");
    let _ = std::fs::remove_file(&lock);
    mkfifo(&lock);
    let mut cmd = tripseal();
    cmd.args(["update", "--db"]).arg(&h.db);
    refused_for_a_fifo(cmd);
    std::fs::remove_file(&lock).unwrap();
    // The private key.
    let fifo_key = h.dir.join("key.fifo");
    mkfifo(&fifo_key);
    let mut cmd = tripseal();
    cmd.arg("sign").arg("--key").arg(&fifo_key).arg(&h.db);
    refused_for_a_fifo(cmd);
    // The outbox a cron check with a sink opens.
    let outbox = h.dir.join("b.db.outbox");
    let _ = std::fs::remove_file(&outbox);
    mkfifo(&outbox);
    let mut cmd = tripseal();
    cmd.arg("check")
        .arg("--db")
        .arg(&h.db)
        .arg("--trust")
        .arg(&h.public)
        .args(["--emit", "stdout"]);
    refused_for_a_fifo(cmd);
    std::fs::remove_file(&outbox).unwrap();
    // A file: sink: events are not lost, they wait in the outbox.
    let fifo_sink = h.dir.join("events.fifo");
    mkfifo(&fifo_sink);
    let reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo_sink)
        .unwrap();
    let mut cmd = tripseal();
    cmd.arg("check")
        .arg("--db")
        .arg(&h.db)
        .arg("--trust")
        .arg(&h.public)
        .arg("--emit")
        .arg(format!("file:{}", fifo_sink.display()));
    let out = quick(cmd);
    drop(reader);
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("a FIFO") && stderr(&out).contains("wait in"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_rollback_record_fails_closed() {
    let h = Sealed::new(&ONE);
    assert_ok(&h.check());
    let state = h.dir.join("b.db.accepted");
    assert!(state.exists(), "the first check records the generation");
    for garbled in ["", "2\n", "two 00\n", "1 zz\n", "1 0000\n"] {
        std::fs::write(&state, garbled).unwrap();
        let out = h.check();
        assert_eq!(code(&out), Some(26), "{garbled:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("seal refused (accepted-unreadable)"),
            "{}",
            stderr(&out)
        );
    }
    std::fs::remove_file(&state).unwrap();
    std::fs::create_dir(&state).unwrap();
    let out = h.check();
    assert_eq!(code(&out), Some(26), "{}", stderr(&out));
    assert!(stderr(&out).contains("a directory"), "{}", stderr(&out));
    std::fs::remove_dir(&state).unwrap();
    // Deleted: no record, as on the first run; the next check records one.
    // The temporary a killed check left goes then; one named with a live
    // pid that is not tripseal's stays (scanned like any file).
    let dead = h.dir.join("b.db.accepted.tmp.4000000");
    let planted = h.dir.join("b.db.accepted.tmp.1");
    std::fs::write(&dead, "1 half-written").unwrap();
    std::fs::write(&planted, "payload").unwrap();
    assert_ok(&h.check());
    assert!(!dead.exists(), "a killed writer's temporary stays");
    assert!(planted.exists(), "a file of a live process was removed");
    assert!(std::fs::read_to_string(&state).unwrap().starts_with("1 "));
}

#[test]
fn only_the_companions_of_the_baseline_are_skipped() {
    let (_tmp, root, db) = tree_holding_its_baseline(r#"["type", "size", "hash"]"#);
    let planted = [
        "b.db.evil",
        "b.dbx",
        "b.db.check.x",
        "b.db.tmp.",
        "b.db.lock.py",
        // Named like a snapshot of a live process that is not tripseal.
        "b.db.check.1",
    ];
    for name in planted {
        std::fs::write(root.join(name), "payload").unwrap();
    }
    // A directory named like a companion hides nothing.
    std::fs::create_dir(root.join("b.db.tmp.1")).unwrap();
    std::fs::write(root.join("b.db.tmp.1/hidden.py"), "payload").unwrap();
    let out = tripseal()
        .args(["check", "--allow-unsigned", "--format", "json", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert_eq!(code(&out), Some(1), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut added: Vec<String> = report["drift"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["kind"] == "added")
        .map(|d| {
            d["path"]
                .as_str()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    added.sort();
    let mut want: Vec<String> = planted.iter().map(|s| s.to_string()).collect();
    want.extend(["b.db.tmp.1".to_string(), "hidden.py".to_string()]);
    want.sort();
    assert_eq!(added, want);
}

#[test]
fn sinks_are_refused_before_any_work() {
    let h = Sealed::new(&ONE);
    for sink in [
        "syslog+tcp://127.0.0.1:99999",
        "syslog+udp://127.0.0.1:514?facility=local0",
        "syslog+udp://127.0.0.1:x",
        "syslog+tcp://user:pw@127.0.0.1:601",
        "syslog+tcp://127.0.0.1:601/path",
        "syslog?x=1",
        "stdout2",
    ] {
        let out = h.check_extra(&["--emit", sink]);
        assert_eq!(code(&out), Some(15), "{sink}: {}", stderr(&out));
        assert!(!h.dir.join("b.db.outbox").exists(), "{sink}: work was done");
        assert!(
            !h.dir.join("b.db.accepted").exists(),
            "{sink}: the baseline was read"
        );
    }
    // One sink twice (the same but for its password) is one sink.
    let out = h.check_extra(&[
        "--emit",
        "redis://:a@127.0.0.1:1/0",
        "--emit",
        "redis://:b@127.0.0.1:1/0",
    ]);
    assert_eq!(code(&out), Some(15), "{}", stderr(&out));
    assert!(stderr(&out).contains("given twice"), "{}", stderr(&out));
}

impl Sealed {
    fn sign_expiring(&self, when: &str) -> Output {
        sign_with(&self.key, &self.db, &["--expires", when])
    }

    fn verify(&self) -> Output {
        verify(&self.public, &self.db)
    }
}

#[test]
fn signed_baselines_expire_and_the_expiry_cannot_be_stripped() {
    let h = Sealed::new(&ONE);
    // Signed without an expiry (the v1 message): it keeps verifying.
    assert_ok(&h.check());
    assert!(stdout(&h.verify()).contains("no expiry"));

    // Far away: accepted, nothing to warn about.
    let out = h.sign_expiring("2099-01-31");
    assert_ok(&out);
    assert!(
        stdout(&out).contains("trusted until 2099-01-31T00:00:00Z"),
        "{}",
        stdout(&out)
    );
    let out = h.check();
    assert_ok(&out);
    assert!(!stderr(&out).contains("expires"), "{}", stderr(&out));
    assert!(stdout(&h.verify()).contains("expires 2099-01-31T00:00:00Z"));

    // The expiry is signed: moved or removed, the signature no longer fits.
    let copy = h.dir.join("copy.db");
    for edit in [
        "UPDATE signatures SET expires_ns = NULL",
        "UPDATE signatures SET expires_ns = expires_ns + 86400000000000",
        "UPDATE signatures SET expires_ns = 'never'",
        "UPDATE signatures SET public_key = 'a key as text'",
        "UPDATE signatures SET fingerprint = x'00ff'",
        "UPDATE signatures SET fingerprint = CAST(x'ff' AS TEXT)",
        "UPDATE signatures SET public_key = CAST(x'ff' AS TEXT)",
        "UPDATE signatures SET signature = zeroblob(1000000)",
    ] {
        std::fs::copy(&h.db, &copy).unwrap();
        sql(&copy, edit);
        let out = verify(&h.public, &copy);
        assert_eq!(code(&out), Some(26), "{edit}");
        assert!(
            stderr(&out).contains("seal refused (altered)"),
            "{edit}: {}",
            stderr(&out)
        );
    }

    // Soon: accepted with a warning and fim-baseline-expiring.
    // (Seconds enough for the check below to run well before the expiry.)
    assert_ok(&h.sign_expiring("8s"));
    let signed = std::time::Instant::now();
    let events = h.dir.join("events.jsonl");
    let out = h.check_extra(&["--emit", &format!("file:{}", events.display())]);
    assert_ok(&out);
    assert!(
        stderr(&out).contains("expires") && stderr(&out).contains("sign the next generation"),
        "{}",
        stderr(&out)
    );
    let text = std::fs::read_to_string(&events).unwrap();
    let expiring: serde_json::Value = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["type"] == "fim-baseline-expiring")
        .expect("fim-baseline-expiring");
    assert!(
        expiring["expires_in"].as_f64().unwrap() <= 8.0,
        "{expiring}"
    );

    // Past it: refused by check and verify, with its own reason.
    std::thread::sleep(Duration::from_secs(9).saturating_sub(signed.elapsed()));
    let out = h.check();
    assert_eq!(code(&out), Some(26), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("seal refused (expired)"),
        "{}",
        stderr(&out)
    );
    let out = h.verify();
    assert_eq!(code(&out), Some(26));
    assert!(stdout(&out).contains("EXPIRED"), "{}", stdout(&out));

    // Bad expiries are refused before anything is signed or written.
    for bad in ["2001-01-01", "tomorrow", "-3d"] {
        let out = h.sign_expiring(bad);
        assert_eq!(code(&out), Some(15), "{bad}: {}", stderr(&out));
    }
    let msg = h.dir.join("message.bin");
    let out = tripseal()
        .arg("digest")
        .arg(&h.db)
        .arg("--message")
        .arg(&msg)
        .args(["--expires", "next week"])
        .output()
        .unwrap();
    assert_eq!(code(&out), Some(15), "{}", stderr(&out));
    assert!(stderr(&out).contains("UTC date"), "{}", stderr(&out));
    assert!(!msg.exists(), "nothing written for a bad expiry");
}

#[test]
fn an_expiring_signature_checks_out_with_openssl() {
    let h = Sealed::new(&ONE);
    assert_ok(&h.sign_expiring("2099-01-31"));
    let msg = h.dir.join("message.bin");
    let sig = h.dir.join("signature.bin");
    assert_ok(
        &tripseal()
            .arg("digest")
            .arg(&h.db)
            .arg("--message")
            .arg(&msg)
            .args(["--expires", "2099-01-31"])
            .output()
            .unwrap(),
    );
    sql(
        &h.db,
        &format!(
            "SELECT writefile('{}', signature) FROM signatures",
            sig.display()
        ),
    );
    let out = Command::new("openssl")
        .args(["pkeyutl", "-verify", "-pubin", "-inkey"])
        .arg(&h.public)
        .arg("-rawin")
        .arg("-in")
        .arg(&msg)
        .arg("-sigfile")
        .arg(&sig)
        .output()
        .unwrap();
    assert!(
        stdout(&out).contains("Signature Verified Successfully"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn configuration_trust_and_rules_that_others_could_write_are_refused() {
    let h = Sealed::new(&ONE);
    let rules = h.dir.join("rules.toml");
    let init_with = |rules: &Path| {
        tripseal()
            .arg("init")
            .arg("--rules")
            .arg(rules)
            .arg("--db")
            .arg(h.dir.join("new.db"))
            .output()
            .unwrap()
    };
    let refused = |out: &Output, fix: &str| {
        assert_eq!(code(out), Some(17), "{}", stderr(out));
        assert!(
            stderr(out).contains(fix) && stderr(out).contains("cannot be trusted"),
            "{fix}: {}",
            stderr(out)
        );
    };
    // Rules a baseline is made with: group-writable, then someone else's.
    chmod(&rules, 0o664);
    refused(
        &init_with(&rules),
        &format!("chmod go-w {}", rules.display()),
    );
    let out = tripseal()
        .args(["update", "--rules"])
        .arg(&rules)
        .arg("--db")
        .arg(&h.db)
        .output()
        .unwrap();
    refused(&out, "chmod go-w");
    chmod(&rules, 0o644);
    std::os::unix::fs::chown(&rules, Some(65534), None).unwrap();
    refused(
        &init_with(&rules),
        &format!("chown root {}", rules.display()),
    );
    // Reading them to explain a path changes no trust: still allowed.
    let out = tripseal()
        .args(["rules", "check"])
        .arg(&rules)
        .output()
        .unwrap();
    assert_ok(&out);
    std::os::unix::fs::chown(&rules, Some(0), None).unwrap();
    assert_ok(&init_with(&rules));

    // The trust store: a key file others can write, and its directory.
    let store = h.dir.join("trusted.d");
    std::fs::create_dir(&store).unwrap();
    chmod(&store, 0o755);
    let key = store.join("op.pub");
    std::fs::copy(&h.public, &key).unwrap();
    let check = |trust: &Path| {
        tripseal()
            .arg("check")
            .arg("--db")
            .arg(&h.db)
            .arg("--trust")
            .arg(trust)
            .output()
            .unwrap()
    };
    assert_ok(&check(&store));
    chmod(&key, 0o646);
    refused(&check(&store), &format!("chmod go-w {}", key.display()));
    refused(&check(&key), "chmod go-w");
    chmod(&key, 0o644);
    chmod(&store, 0o775);
    refused(&check(&store), &format!("chmod go-w {}", store.display()));
    refused(&check(&key), &format!("chmod go-w {}", store.display()));
    chmod(&store, 0o755);
    assert_ok(&check(&store));
    // A key in a shared directory like /tmp: moved, not chmod'ed.
    let shared = h.dir.join("shared");
    std::fs::create_dir(&shared).unwrap();
    chmod(&shared, 0o1777);
    std::fs::copy(&h.public, shared.join("op.pub")).unwrap();
    let out = check(&shared.join("op.pub"));
    assert_eq!(code(&out), Some(17), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("shared directory") && !stderr(&out).contains("chmod"),
        "{}",
        stderr(&out)
    );

    // The operator's private key, owned by someone else.
    std::os::unix::fs::chown(&h.key, Some(65534), None).unwrap();
    refused(
        &h.sign(&h.key, &h.db),
        &format!("chown root {}", h.key.display()),
    );
    std::os::unix::fs::chown(&h.key, Some(0), None).unwrap();

    // The configuration: not readable by others, but writable by them.
    let config = h.dir.join("config.toml");
    std::fs::write(&config, "[events]\nemit = []\n").unwrap();
    chmod(&config, 0o602);
    let out = tripseal()
        .arg("--config")
        .arg(&config)
        .arg("check")
        .arg("--db")
        .arg(&h.db)
        .arg("--trust")
        .arg(&h.public)
        .output()
        .unwrap();
    refused(&out, &format!("chmod go-w {}", config.display()));
}
