//! `tripseal collect` and `tripseal fleet` refusing what they must, before
//! any work: bad feeds, an unsafe listen address, a store that is not one, a
//! baseline whose seal does not verify. (The collector at work, with real
//! brokers and hosts in network namespaces, is in tests/brokers/collect.rs.)

mod common;

use std::path::Path;
use std::process::Output;

use common::*;

fn fleet(store: &Path, args: &[&str]) -> Output {
    tripseal()
        .arg("fleet")
        .args(args)
        .arg("--store")
        .arg(store)
        .output()
        .unwrap()
}

/// `tripseal collect ARGS`, which must refuse: were it to run, it would
/// run for ever, so it is stopped after a while (and the test fails).
fn collect(args: &[&str]) -> Output {
    tripseal()
        .arg("collect")
        .args(args)
        .timeout(std::time::Duration::from_secs(20))
        .output()
        .unwrap()
}

#[test]
fn feeds_the_collector_cannot_read_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("c.db");
    let s = store.to_str().unwrap();
    for (feed, says) in [
        ("kafka://h/", "the collector reads amqp://"),
        ("redis://127.0.0.1/0", "the collector reads amqp://"),
        ("amqp://guest:guest@127.0.0.1//", "add ?queue=NAME"),
        (
            "redis+stream://127.0.0.1/0?maxlen=0",
            "maxlen must be a positive number",
        ),
        ("redis+stream://127.0.0.1/0?colour=red", "colour"),
    ] {
        let out = collect(&["--from", feed, "--store", s]);
        assert_eq!(out.status.code(), Some(15), "{feed}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{feed}: {}", stderr(&out));
    }
    // The password never shows.
    let out = collect(&["--from", "amqp://u:hunter2@127.0.0.1//", "--store", s]);
    assert!(!stderr(&out).contains("hunter2"), "{}", stderr(&out));
    assert!(
        !store.exists(),
        "nothing made before the feeds are known good"
    );
}

#[test]
fn feeds_and_the_listen_address_come_from_the_configuration() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("config.toml");
    let store = tmp.path().join("c.db");
    let with = |text: &str| {
        std::fs::write(&config, text).unwrap();
        std::fs::set_permissions(&config, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        tripseal()
            .arg("--config")
            .arg(&config)
            .args(["collect", "--store"])
            .arg(&store)
            .timeout(std::time::Duration::from_secs(20))
            .output()
            .unwrap()
    };
    let out = with("[events]\nemit = []\n");
    assert_eq!(out.status.code(), Some(15));
    assert!(
        stderr(&out).contains("say where the fleet's events are"),
        "{}",
        stderr(&out)
    );
    let out = with("[collector]\nfrom = [\"kafka://broker/\"]\n");
    assert_eq!(out.status.code(), Some(15));
    assert!(
        stderr(&out).contains("the collector reads amqp://"),
        "{}",
        stderr(&out)
    );
    let out =
        with("[collector]\nfrom = [\"redis+stream://127.0.0.1:1/0\"]\nlisten = \"0.0.0.0:9817\"\n");
    assert_eq!(out.status.code(), Some(15));
    assert!(
        stderr(&out).contains("--listen-beyond-loopback"),
        "{}",
        stderr(&out)
    );
    let out = with("[collector]\nfrom = \"redis+stream://127.0.0.1:1/0\"\n");
    assert_eq!(out.status.code(), Some(17), "not a list: {}", stderr(&out));
    assert!(!store.exists());
}

#[test]
fn a_store_that_cannot_be_made_says_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("no-such-dir/c.db");
    let out = collect(&[
        "--from",
        "redis+stream://127.0.0.1:1/0",
        "--store",
        store.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(24), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("make its directory") && stderr(&out).contains("--store"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_pages_listen_beyond_loopback_only_when_asked() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("c.db");
    let out = collect(&[
        "--from",
        "redis+stream://127.0.0.1:1/0",
        "--store",
        store.to_str().unwrap(),
        "--listen",
        "0.0.0.0:9817",
    ]);
    assert_eq!(out.status.code(), Some(15));
    let err = stderr(&out);
    assert!(
        err.contains("not a loopback address") && err.contains("--listen-beyond-loopback"),
        "{err}"
    );
}

#[test]
fn fleet_commands_need_a_store_that_is_one() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("c.db");
    let out = fleet(&store, &["status"]);
    assert_eq!(out.status.code(), Some(24), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no collector store here"),
        "{}",
        stderr(&out)
    );
    assert!(!store.exists(), "status makes no store");
    // Planted: a link, a FIFO, a journal that is a link; another database.
    std::os::unix::fs::symlink("/etc/passwd", &store).unwrap();
    let out = fleet(&store, &["status"]);
    assert_eq!(out.status.code(), Some(24));
    assert!(stderr(&out).contains("symbolic link"), "{}", stderr(&out));
    std::fs::remove_file(&store).unwrap();
    mkfifo(&store);
    let out = fleet(&store, &["status"]);
    assert_eq!(out.status.code(), Some(24));
    assert!(stderr(&out).contains("FIFO"), "{}", stderr(&out));
    std::fs::remove_file(&store).unwrap();
    sql(&store, "CREATE TABLE hosts (host TEXT)");
    let out = fleet(&store, &["status"]);
    assert_eq!(out.status.code(), Some(24));
    assert!(
        stderr(&out).contains("not a collector store"),
        "{}",
        stderr(&out)
    );
    std::fs::remove_file(&store).unwrap();
    // A store, then a link planted where SQLite writes its log.
    let sealed = Sealed::new(&[("a", "1")]);
    let publish = |store: &Path| {
        fleet(
            store,
            &[
                "publish",
                sealed.db.to_str().unwrap(),
                "--trust",
                sealed.public.to_str().unwrap(),
            ],
        )
    };
    assert_ok(&publish(&store));
    assert_eq!(fleet(&store, &["status"]).status.code(), Some(0));
    std::fs::remove_file(tmp.path().join("c.db-wal")).ok();
    std::os::unix::fs::symlink("/etc/passwd", tmp.path().join("c.db-wal")).unwrap();
    let before = std::fs::read("/etc/passwd").unwrap();
    let out = fleet(&store, &["status"]);
    assert_eq!(out.status.code(), Some(24), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("c.db-wal is a symbolic link"),
        "{}",
        stderr(&out)
    );
    assert_eq!(publish(&store).status.code(), Some(24));
    assert_eq!(std::fs::read("/etc/passwd").unwrap(), before);
    // A baseline given as the store by mistake is refused and left as it was.
    let baseline = std::fs::read(&sealed.db).unwrap();
    let out = fleet(&sealed.db, &["status"]);
    assert_eq!(out.status.code(), Some(24));
    assert!(
        stderr(&out).contains("not a collector store"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(&sealed.db).unwrap(), baseline);
    assert_ok(&sealed.check());
}

#[test]
fn only_a_baseline_whose_seal_verifies_is_published() {
    let sealed = Sealed::new(&[("a", "1")]);
    let store = sealed.dir.join("c.db");
    let trust = sealed.public.to_str().unwrap();
    // Not signed.
    let unsigned = sealed.dir.join("unsigned.db");
    assert_ok(&init(
        &rules_for(&sealed.dir, &sealed.root, FULL),
        &unsigned,
    ));
    let out = fleet(
        &store,
        &["publish", unsigned.to_str().unwrap(), "--trust", trust],
    );
    assert_eq!(out.status.code(), Some(26), "{}", stderr(&out));
    assert!(stderr(&out).contains("no signature"), "{}", stderr(&out));
    // Signed by a key the collector does not trust.
    let other = sealed.dir.join("other.key");
    keygen(&other);
    assert_ok(&sign_with(&other, &unsigned, &[]));
    let out = fleet(
        &store,
        &["publish", unsigned.to_str().unwrap(), "--trust", trust],
    );
    assert_eq!(out.status.code(), Some(26), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not in the trust store"),
        "{}",
        stderr(&out)
    );
    // Signed by the operator: published.
    let db = sealed.db.to_str().unwrap();
    let out = fleet(&store, &["publish", db, "--trust", trust]);
    assert_ok(&out);
    assert!(
        stdout(&out).contains("published the baseline of host"),
        "{}",
        stdout(&out)
    );
    let out = fleet(&store, &["status"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout(&out).contains("no host has reported"),
        "{}",
        stdout(&out)
    );
    // Acknowledging needs something to acknowledge, on a host that exists.
    let out = fleet(&store, &["ack", "web1"]);
    assert_eq!(out.status.code(), Some(15));
    assert!(
        stderr(&out).contains("say what to acknowledge"),
        "{}",
        stderr(&out)
    );
    let out = fleet(&store, &["ack", "web1", "/etc/passwd"]);
    assert_eq!(out.status.code(), Some(15));
    assert!(
        stderr(&out).contains("no host web1 has reported"),
        "{}",
        stderr(&out)
    );
}
