//! `tripseal watch`: the daemon on a temporary tree, with a file sink, and
//! real changes made to the tree while it runs.

mod common;

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// How long an event may take to show up before the test fails; the
/// daemon's own delay is tens of milliseconds.
const PATIENCE: Duration = Duration::from_secs(15);

/// The limit tests change kernel-wide inotify limits: they run alone
/// (write), every other test beside the others (read).
static KERNEL_LIMITS: std::sync::RwLock<()> = std::sync::RwLock::new(());

fn shared() -> std::sync::RwLockReadGuard<'static, ()> {
    KERNEL_LIMITS.read().unwrap_or_else(|e| e.into_inner())
}

struct Daemon {
    child: Option<Child>,
    events: PathBuf,
    tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Daemon {
    /// A tree with a few files and a baseline, and the daemon watching it.
    fn start(extra: &[&str]) -> Daemon {
        Daemon::start_env(extra, &[])
    }

    /// As [`Daemon::start`], with `env` set for the daemon; returns once it
    /// has started (not once it has compared: it may be waiting on `env`).
    fn start_env(extra: &[&str], env: &[(&str, &OsStr)]) -> Daemon {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("tree");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("a.py"), "a").unwrap();
        std::fs::write(root.join("sub/b.py"), "b").unwrap();
        std::fs::write(root.join("target1"), "1").unwrap();
        std::fs::write(root.join("target2"), "2").unwrap();
        std::os::unix::fs::symlink("target1", root.join("link")).unwrap();
        let rules = rules_for(
            tmp.path(),
            &root,
            r#"["type", "mode", "uid", "gid", "size", "link", "hash"]"#,
        );
        let db = tmp.path().join("b.db");
        assert_ok(&init(&rules, &db));
        let events = tmp.path().join("events.jsonl");
        let seal = ["--allow-unsigned".to_string()];
        let mut d = Daemon::spawn_env(&db, &events, &seal, extra, env);
        d.wait_for(|e| e["type"] == "fim-scan-finished");
        d.tmp = tmp;
        d.root = root;
        d
    }

    /// The daemon on `db` with its seal skipped.
    fn spawn(db: &Path, events: &Path, extra: &[&str]) -> Daemon {
        Daemon::spawn_with(db, events, &["--allow-unsigned".into()], extra)
    }

    /// The daemon on `db`, events to the file `events`, with `seal` (how to
    /// treat the seal) and `extra` flags.
    fn spawn_with(db: &Path, events: &Path, seal: &[String], extra: &[&str]) -> Daemon {
        Daemon::spawn_env(db, events, seal, extra, &[])
    }

    fn spawn_env(
        db: &Path,
        events: &Path,
        seal: &[String],
        extra: &[&str],
        env: &[(&str, &OsStr)],
    ) -> Daemon {
        let child = Command::new(bin_path())
            // Only what the test gives: never a runner's own systemd socket.
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID")
            .envs(env.iter().map(|(k, v)| (*k, *v)))
            .args(["watch", "--db"])
            .arg(db)
            .args(seal)
            .arg("--emit")
            .arg(format!("file:{}", events.display()))
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Daemon {
            child: Some(child),
            events: events.to_path_buf(),
            tmp: tempfile::tempdir().unwrap(),
            root: PathBuf::new(),
        }
    }

    /// The daemon `script` starts (`sh -c`, ending in `exec tripseal
    /// watch`) in a mount namespace of its own, once it has compared.
    fn in_own_mounts(
        script: &str,
        events: PathBuf,
        tmp: tempfile::TempDir,
        root: PathBuf,
    ) -> Daemon {
        let child = Command::new("unshare")
            .args(["--mount", "sh", "-c", script])
            .env_remove("NOTIFY_SOCKET")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut d = Daemon {
            child: Some(child),
            events,
            tmp,
            root,
        };
        d.wait_for(|e| e["type"] == "fim-scan-finished");
        d
    }

    fn events(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.events)
            .unwrap_or_default()
            .split_inclusive('\n')
            .filter(|l| l.ends_with('\n'))
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Polls the events until `found` picks something out of them; fails
    /// the test, listing what came, if nothing is found in time.
    fn poll<T>(&self, what: &str, found: impl Fn(&[Value]) -> Option<T>) -> T {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(t) = found(&self.events()) {
                return t;
            }
            if Instant::now() > deadline {
                let got: Vec<String> = self
                    .events()
                    .iter()
                    .map(|e| format!("{} {}", e["type"], e["path"]))
                    .collect();
                panic!("no {what} within {PATIENCE:?}; got: {got:#?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The first event that `want` accepts, once there is one.
    fn wait_for(&mut self, want: impl Fn(&Value) -> bool) -> Value {
        self.poll("such event", |events| {
            events.iter().find(|e| want(e)).cloned()
        })
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// The `nth` (from 1) event of type `kind` on `rel`, once there is one.
    fn expect(&mut self, kind: &str, rel: &str, nth: usize) -> Value {
        let p = self.path(rel);
        let p = p.to_str().unwrap();
        self.poll(&format!("{kind} #{nth} for {p}"), |events| {
            events
                .iter()
                .filter(|e| e["type"] == kind && e["path"] == p)
                .nth(nth - 1)
                .cloned()
        })
    }

    /// SIGTERM; returns the exit code and standard error.
    fn stop(&mut self) -> (Option<i32>, String) {
        let child = self.child.take().unwrap();
        // SAFETY: kill(2) on our own child.
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        let out = child.wait_with_output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn every_kind_of_change_is_reported() {
    let _shared = shared();
    let mut d = Daemon::start(&[]);
    // write
    std::fs::write(d.path("a.py"), "changed").unwrap();
    let e = d.expect("fim-file-modified", "a.py", 1);
    assert!(e["changes"]["hash"].is_object(), "{e}");
    // append
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(d.path("sub/b.py"))
        .unwrap();
    std::io::Write::write_all(&mut f, b" more").unwrap();
    drop(f);
    let e = d.expect("fim-file-modified", "sub/b.py", 1);
    assert_eq!(e["changes"]["size"]["new"], 6, "{e}");
    // truncate
    std::fs::File::create(d.path("sub/b.py")).unwrap();
    let e = d.expect("fim-file-modified", "sub/b.py", 2);
    assert_eq!(e["changes"]["size"]["new"], 0, "{e}");
    // chmod
    std::fs::set_permissions(d.path("target2"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let e = d.expect("fim-file-modified", "target2", 1);
    assert_eq!(e["changes"]["mode"]["new"], "0600", "{e}");
    // chown
    std::os::unix::fs::lchown(d.path("target1"), Some(65534), None).unwrap();
    let e = d.expect("fim-file-modified", "target1", 1);
    assert_eq!(e["changes"]["uid"]["new"], 65534, "{e}");
    // create and delete
    std::fs::write(d.path("new.py"), "n").unwrap();
    d.expect("fim-file-added", "new.py", 1);
    std::fs::remove_file(d.path("new.py")).unwrap();
    // Added, then gone again: back to the baseline state.
    d.expect("fim-file-restored", "new.py", 1);
    // rename out of the tree, and in
    std::fs::rename(d.path("a.py"), d.tmp.path().join("outside.py")).unwrap();
    d.expect("fim-file-removed", "a.py", 1);
    std::fs::rename(d.tmp.path().join("outside.py"), d.path("moved-in.py")).unwrap();
    d.expect("fim-file-added", "moved-in.py", 1);
    // replace by rename, as editors save
    std::fs::write(d.path("sub/.b.py.swp"), "saved").unwrap();
    std::fs::rename(d.path("sub/.b.py.swp"), d.path("sub/b.py")).unwrap();
    let e = d.expect("fim-file-modified", "sub/b.py", 3);
    assert_eq!(e["changes"]["size"]["new"], 5, "{e}");
    // symlink retarget
    std::fs::remove_file(d.path("link")).unwrap();
    std::os::unix::fs::symlink("target2", d.path("link")).unwrap();
    let e = d.expect("fim-file-modified", "link", 1);
    assert_eq!(e["changes"]["link"]["new"], "target2", "{e}");
    // mkdir -p with a file inside, made at once
    std::fs::create_dir_all(d.path("x/y")).unwrap();
    std::fs::write(d.path("x/y/z.py"), "z").unwrap();
    d.expect("fim-file-added", "x", 1);
    d.expect("fim-file-added", "x/y/z.py", 1);
    // and a file made later in the new directory: it is watched too
    std::fs::write(d.path("x/y/later.py"), "l").unwrap();
    d.expect("fim-file-added", "x/y/later.py", 1);
    let (code, err) = d.stop();
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn the_daemon_reports_a_python_hook_as_a_finding_of_its_own() {
    let _shared = shared();
    let mut d = Daemon::start(&[]);
    std::fs::write(d.path("sub/zz.pth"), "import os; os.system('id')\n").unwrap();
    d.expect("fim-file-added", "sub/zz.pth", 1);
    let e = d.expect("fim-python-hook", "sub/zz.pth", 1);
    assert_eq!(e["reason"], "pth-import", "{e}");
    assert_eq!(e["drift"], "added", "{e}");
    let (code, err) = d.stop();
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn the_daemon_says_which_certificates_expire_soon() {
    let _shared = shared();
    let (tmp, root, db) = tree_with_baseline(&[("a", "a")], FULL);
    let out = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "10",
        ])
        .args(["-subj", "/CN=worker", "-keyout"])
        .arg(tmp.path().join("k.pem"))
        .arg("-out")
        .arg(root.join("worker.pem"))
        .output()
        .unwrap();
    assert_ok(&out);
    assert_ok(
        &tripseal()
            .args(["update", "--db"])
            .arg(&db)
            .output()
            .unwrap(),
    );
    let events = tmp.path().join("events.jsonl");
    let mut d = Daemon::spawn(&db, &events, &[]);
    let e = d.wait_for(|e| e["type"] == "fim-cert-expiring");
    assert_eq!(e["subject"], "CN=worker", "{e}");
    assert_eq!(e["path"], root.join("worker.pem").to_str().unwrap(), "{e}");
    let (code, err) = d.stop();
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn a_change_and_its_revert_is_restored() {
    let _shared = shared();
    let mut d = Daemon::start(&[]);
    std::fs::write(d.path("a.py"), "evil").unwrap();
    d.expect("fim-file-modified", "a.py", 1);
    std::fs::write(d.path("a.py"), "a").unwrap();
    let e = d.expect("fim-file-restored", "a.py", 1);
    assert_eq!(e["rule"], "tree");
    assert_eq!(e["severity"], "high");
    d.stop();
}

#[test]
fn a_burst_of_writes_is_a_few_events_not_thousands() {
    let _shared = shared();
    let mut d = Daemon::start(&[]);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(d.path("a.py"))
        .unwrap();
    for _ in 0..10_000 {
        std::io::Write::write_all(&mut f, b"x").unwrap();
    }
    drop(f);
    // The last state is reported...
    let deadline = Instant::now() + PATIENCE;
    let p = d.path("a.py");
    loop {
        let last = d
            .events()
            .into_iter()
            .rfind(|e| e["type"] == "fim-file-modified" && e["path"] == p.to_str().unwrap());
        if last.is_some_and(|e| e["changes"]["size"]["new"] == 10_001) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the final size was never reported"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // ...in a handful of events.
    let n = d
        .events()
        .iter()
        .filter(|e| e["type"] == "fim-file-modified")
        .count();
    assert!(n <= 20, "{n} events for one burst");
    d.stop();
}

#[test]
fn sigterm_stops_cleanly_after_fim_offline() {
    let _shared = shared();
    let mut d = Daemon::start(&[]);
    let (code, err) = d.stop();
    assert_eq!(code, Some(0), "{err}");
    let events = d.events();
    assert_eq!(events.first().unwrap()["type"], "fim-online");
    let last = events.last().unwrap();
    assert_eq!(last["type"], "fim-offline", "{last}");
    assert_eq!(last["freq"], 30.0);
    assert!(last["watched_directories"].as_u64().unwrap() >= 2, "{last}");
    assert!(last["baseline"]["generation"].is_i64(), "{last}");
}

#[test]
fn heartbeats_arrive_at_the_period() {
    let _shared = shared();
    let mut d = Daemon::start(&["--heartbeat", "500ms"]);
    std::thread::sleep(Duration::from_millis(2600));
    d.stop();
    let beats: Vec<f64> = d
        .events()
        .iter()
        .filter(|e| e["type"] == "fim-heartbeat")
        .map(|e| {
            assert_eq!(e["freq"], 0.5, "{e}");
            e["timestamp"].as_f64().unwrap()
        })
        .collect();
    assert!(beats.len() >= 4, "{} heartbeats in 2.6 s", beats.len());
    for w in beats.windows(2) {
        let gap = w[1] - w[0];
        assert!((0.4..0.8).contains(&gap), "heartbeats {gap:.3} s apart");
    }
}

#[test]
fn drift_made_while_stopped_is_found_and_reported_once_across_rescans() {
    let _shared = shared();
    // The start's rescan finds what changed while no daemon ran; the
    // periodic rescans that follow do not report it again.
    let mut d = Daemon::start(&[]);
    d.stop();
    std::fs::write(d.path("sub/b.py"), "while nobody watched").unwrap();
    let db = d.tmp.path().join("b.db");
    let mut d2 = Daemon::spawn(&db, &d.events, &["--rescan", "1s"]);
    d2.root = d.root.clone();
    let e = d2.expect("fim-file-modified", "sub/b.py", 1);
    assert!(e["changes"]["hash"].is_object());
    // Reported once, not again at every rescan.
    std::thread::sleep(Duration::from_millis(2500));
    d2.stop();
    let p = d.path("sub/b.py");
    let n = d2
        .events()
        .iter()
        .filter(|e| e["type"] == "fim-file-modified" && e["path"] == p.to_str().unwrap())
        .count();
    let rescans = d2
        .events()
        .iter()
        .filter(|e| e["type"] == "fim-scan-finished")
        .count();
    assert!(rescans >= 3, "{rescans} rescans");
    assert_eq!(n, 1, "the same drift is reported once");
}

/// A tree under a temporary directory holding `files`, and its baseline
/// (`b.db` beside the tree) with one rule checking `check`.
fn tree_with_baseline(
    files: &[(&str, &str)],
    check: &str,
) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("tree");
    std::fs::create_dir(&root).unwrap();
    for (name, text) in files {
        std::fs::write(root.join(name), text).unwrap();
    }
    let rules = rules_for(tmp.path(), &root, check);
    let db = tmp.path().join("b.db");
    assert_ok(&init(&rules, &db));
    (tmp, root, db)
}

#[test]
fn a_baseline_whose_seal_fails_is_refused() {
    let _shared = shared();
    let (tmp, _root, db) = tree_with_baseline(&[], r#"["type", "hash"]"#);
    let events = tmp.path().join("events.jsonl");
    let out = tripseal()
        .args(["watch", "--db"])
        .arg(&db)
        .arg("--trust")
        .arg(tmp.path().join("no-keys"))
        .arg("--emit")
        .arg(format!("file:{}", events.display()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(26), "{}", stderr(&out));
    let text = std::fs::read_to_string(&events).unwrap();
    let ev: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(ev["type"], "fim-baseline-tampered");
    assert_eq!(ev["reason"], "unsigned");
}

#[test]
fn its_own_files_in_the_tree_are_never_reported() {
    let _shared = shared();
    // The baseline, and so its outbox, inside the watched tree.
    let (tmp, root, db) = tree_holding_its_baseline(r#"["type", "size", "hash"]"#);
    let events = tmp.path().join("events.jsonl");
    let mut d = Daemon::spawn(&db, &events, &[]);
    d.root = root.clone();
    d.wait_for(|e| e["type"] == "fim-scan-finished");
    std::fs::write(root.join("a"), "changed").unwrap();
    d.expect("fim-file-modified", "a", 1);
    std::thread::sleep(Duration::from_millis(300));
    d.stop();
    for e in d.events() {
        let p = e["path"].as_str().unwrap_or("");
        assert!(!p.contains("b.db"), "its own file reported: {e}");
    }
}

/// SIGHUP to the daemon.
fn hangup(d: &Daemon) {
    let pid = d.child.as_ref().unwrap().id() as i32;
    // SAFETY: kill(2) on our own child.
    unsafe {
        libc::kill(pid, libc::SIGHUP);
    }
}

fn update(db: &Path) {
    assert_ok(
        &tripseal()
            .args(["update", "--db"])
            .arg(db)
            .output()
            .unwrap(),
    );
}

fn sign(key: &Path, db: &Path) {
    assert_ok(
        &tripseal()
            .arg("sign")
            .arg("--key")
            .arg(key)
            .arg(db)
            .output()
            .unwrap(),
    );
}

#[test]
fn sighup_takes_a_newly_signed_generation() {
    let _shared = shared();
    let (tmp, root, db) = tree_with_baseline(&[("a.py", "a")], r#"["type", "size", "hash"]"#);
    let key = tmp.path().join("op.key");
    keygen(&key);
    sign(&key, &db);
    let mut d = spawn_trusting(tmp, root, &db, &key, &[]);
    d.wait_for(|e| e["type"] == "fim-scan-finished");

    // The operator accepts a change: a new generation, signed.
    std::fs::write(d.path("a.py"), "release 2").unwrap();
    d.expect("fim-file-modified", "a.py", 1);
    update(&db);
    sign(&key, &db);
    hangup(&d);
    let done = d.wait_for(|e| e["type"] == "fim-scan-finished" && e["baseline"]["generation"] == 2);
    assert_eq!(done["changed"], 0, "a.py is what generation 2 says: {done}");
    // Drift is now measured against generation 2.
    std::fs::write(d.path("a.py"), "a").unwrap();
    let e = d.expect("fim-file-modified", "a.py", 2);
    assert_eq!(e["baseline"]["generation"], 2);

    // A generation nobody signed is refused; the daemon watches on with 2.
    update(&db);
    hangup(&d);
    let refused = d.wait_for(|e| e["type"] == "fim-baseline-tampered");
    assert_eq!(refused["reason"], "unsigned");
    // It names no baseline: not the refused one, nor the one held.
    assert!(refused.get("baseline").is_none(), "{refused}");
    std::fs::write(d.path("a.py"), "release 2").unwrap();
    let e = d.expect("fim-file-restored", "a.py", 1);
    assert_eq!(e["baseline"]["generation"], 2);
    let (code, err) = d.stop();
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("the baseline was refused"), "{err}");
}

/// Sets a kernel inotify limit for the test, and restores it when dropped.
struct Sysctl {
    path: &'static str,
    old: String,
}

impl Sysctl {
    fn set(path: &'static str, value: u64) -> Sysctl {
        let old = std::fs::read_to_string(path).unwrap();
        std::fs::write(path, value.to_string()).unwrap_or_else(|e| {
            panic!("{path}: {e} (these tests run as root, as scripts/test.sh does)")
        });
        Sysctl { path, old }
    }
}

impl Drop for Sysctl {
    fn drop(&mut self) {
        let _ = std::fs::write(self.path, self.old.trim());
    }
}

/// A tree of `dirs` directories with one file each, a baseline, and the
/// daemon started while `limit` is in force.
fn start_with_limit(
    dirs: usize,
    limit: (&'static str, u64),
    extra: &[&str],
) -> (Daemon, Vec<PathBuf>) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("tree");
    let mut files = Vec::new();
    for i in 0..dirs {
        let dir = root.join(format!("d{i:03}"));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("f.py");
        std::fs::write(&f, "x").unwrap();
        files.push(f);
    }
    let rules = rules_for(tmp.path(), &root, r#"["type", "size", "hash"]"#);
    let db = tmp.path().join("b.db");
    assert_ok(&init(&rules, &db));
    let events = tmp.path().join("events.jsonl");
    let set = Sysctl::set(limit.0, limit.1);
    let mut d = Daemon::spawn(&db, &events, extra);
    d.tmp = tmp;
    d.root = root;
    d.wait_for(|e| e["type"] == "fim-online");
    drop(set);
    d.wait_for(|e| e["type"] == "fim-scan-finished");
    (d, files)
}

#[test]
fn a_queue_overflow_is_reported_and_nothing_is_missed() {
    let _alone = KERNEL_LIMITS.write().unwrap_or_else(|e| e.into_inner());
    // The queue length is fixed when the daemon makes its inotify instance.
    let (mut d, _) = start_with_limit(
        1,
        ("/proc/sys/fs/inotify/max_queued_events", 32),
        &["--backend", "inotify"],
    );
    let flood = d.path("d000");
    let names: Vec<PathBuf> = (0..2000)
        .map(|i| flood.join(format!("n{i:04}.py")))
        .collect();
    // Stopped, the daemon cannot drain its queue, so 2000 creations overflow
    // a queue of 32 however fast the machine is.
    let pid = d.child.as_ref().unwrap().id() as i32;
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    for n in &names {
        std::fs::write(n, "n").unwrap();
    }
    unsafe { libc::kill(pid, libc::SIGCONT) };
    let o = d.wait_for(|e| e["type"] == "fim-watch-overflow");
    assert!(
        o["reason"].as_str().unwrap().contains("max_queued_events"),
        "{o}"
    );
    d.wait_for(|e| e["type"] == "fim-scan-finished" && e["scan"] == "watch-rescan");
    let deadline = Instant::now() + PATIENCE;
    loop {
        let added: std::collections::HashSet<String> = d
            .events()
            .iter()
            .filter(|e| e["type"] == "fim-file-added")
            .map(|e| e["path"].as_str().unwrap().to_string())
            .collect();
        let missing = names
            .iter()
            .filter(|n| !added.contains(n.to_str().unwrap()))
            .count();
        if missing == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} of 2000 files never reported"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (code, err) = d.stop();
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn the_watch_limit_is_reported_and_rescans_cover_the_unwatched_part() {
    let _alone = KERNEL_LIMITS.write().unwrap_or_else(|e| e.into_inner());
    let (mut d, files) = start_with_limit(
        40,
        ("/proc/sys/fs/inotify/max_user_watches", 8),
        &["--rescan", "1s", "--backend", "inotify"],
    );
    let o = d.wait_for(|e| e["type"] == "fim-watch-overflow");
    let reason = o["reason"].as_str().unwrap();
    assert!(
        reason.contains("fs.inotify.max_user_watches = 8") && reason.contains("sysctl"),
        "{reason}"
    );
    // A change in every directory, watched or not: all are reported.
    for f in &files {
        std::fs::write(f, "changed").unwrap();
    }
    for i in 0..files.len() {
        d.expect("fim-file-modified", &format!("d{i:03}/f.py"), 1);
    }
    let (code, err) = d.stop();
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn bad_periods_and_sinks_are_refused_before_it_starts() {
    let _shared = shared();
    let (_tmp, _root, db) = tree_with_baseline(&[], r#"["type", "hash"]"#);
    for (args, says) in [
        (&["--rescan", "0"][..], "more than zero"),
        (&["--heartbeat", "5x"][..], "the unit is ms, s, m, h or d"),
        (&["--heartbeat", "soon"][..], "not a period such as 30s"),
        (&["--emit", "kafka://broker:9092"][..], "unknown event sink"),
    ] {
        let out = tripseal()
            .args(["watch", "--allow-unsigned", "--db"])
            .arg(&db)
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(15), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
        assert!(out.stdout.is_empty(), "{args:?}: it never started");
    }
    assert!(
        !Path::new(&format!("{}.outbox", db.display())).exists(),
        "nothing was kept for a daemon that never started"
    );
}

/// Runs `sqlite3 DB STATEMENT`, as an intruder with root would edit a file.
fn sql(db: &Path, statement: &str) {
    let out = Command::new("sqlite3")
        .arg(db)
        .arg(statement)
        .output()
        .unwrap();
    assert!(out.status.success(), "sqlite3: {}", stderr(&out));
}

/// The daemon on the baseline `db` of `root` (in `tmp`), trusting `key`,
/// with `extra` flags; events go to `events.jsonl` in `tmp`.
fn spawn_trusting(
    tmp: tempfile::TempDir,
    root: PathBuf,
    db: &Path,
    key: &Path,
    extra: &[&str],
) -> Daemon {
    let events = tmp.path().join("events.jsonl");
    let trust = ["--trust".to_string(), format!("{}.pub", key.display())];
    let mut d = Daemon::spawn_with(db, &events, &trust, extra);
    d.tmp = tmp;
    d.root = root;
    d
}

/// The daemon on a signed baseline of a two-file tree, with `extra` flags.
fn start_sealed(extra: &[&str]) -> (Daemon, PathBuf, PathBuf) {
    let (tmp, root, db) = tree_with_baseline(
        &[("a.py", "a"), ("b.py", "b")],
        r#"["type", "size", "hash"]"#,
    );
    let key = tmp.path().join("op.key");
    keygen(&key);
    sign(&key, &db);
    let mut d = spawn_trusting(tmp, root, &db, &key, extra);
    d.wait_for(|e| e["type"] == "fim-scan-finished");
    (d, db, key)
}

fn changed_under_daemon(events: &[Value]) -> Vec<Value> {
    events
        .iter()
        .filter(|e| e["type"] == "fim-baseline-tampered" && e["reason"] == "changed-under-daemon")
        .cloned()
        .collect()
}

#[test]
fn the_daemon_compares_with_what_it_verified_whatever_the_file_says_later() {
    let _shared = shared();
    let (mut d, db, _key) = start_sealed(&["--rescan", "2s"]);
    std::fs::write(d.path("b.py"), "intruder's b").unwrap();
    d.expect("fim-file-modified", "b.py", 1);

    // The intruder rewrites the baseline in place so that it vouches for
    // their b.py and for the a.py they are about to write.
    let row = |rel: &str, content: &str| {
        format!(
            "UPDATE entries SET hash = X'{}', size = {} WHERE {};",
            blake3_hex(content.as_bytes()),
            content.len(),
            row_of(&d.path(rel))
        )
    };
    sql(
        &db,
        &format!("{}{}", row("b.py", "intruder's b"), row("a.py", "evil a")),
    );
    let t = d.poll("changed-under-daemon", |evs| {
        changed_under_daemon(evs).into_iter().next()
    });
    assert!(
        t["detail"].as_str().unwrap().contains("written in place"),
        "{t}"
    );
    assert_eq!(t["baseline"]["generation"], 1);

    // Still measured against what was verified: a.py is drift, b.py stays.
    std::fs::write(d.path("a.py"), "evil a").unwrap();
    d.expect("fim-file-modified", "a.py", 1);
    // Said again at every rescan while it lasts; no alert is withdrawn.
    d.poll("a second report at a rescan", |evs| {
        (changed_under_daemon(evs).len() >= 2).then_some(())
    });
    let n = d.events().len();
    d.poll("a rescan after that", |evs| {
        evs[n..]
            .iter()
            .any(|e| e["type"] == "fim-scan-finished")
            .then_some(())
    });
    assert!(
        !d.events().iter().any(|e| e["type"] == "fim-file-restored"),
        "an alert was withdrawn because of the edited file"
    );

    // Another baseline renamed over it: reported, and still not believed.
    let other = d.tmp.path().join("other.db");
    let rules = d.tmp.path().join("rules.toml");
    assert_ok(&init(&rules, &other));
    std::fs::rename(&other, &db).unwrap();
    d.poll("a report of the replaced file", |evs| {
        changed_under_daemon(evs)
            .into_iter()
            .find(|e| e["detail"].as_str().unwrap().contains("another file"))
    });
    // A reload of that unsigned file is refused and changes nothing.
    hangup(&d);
    d.poll("the refusal", |evs| {
        evs.iter()
            .find(|e| e["type"] == "fim-baseline-tampered" && e["reason"] == "unsigned")
            .cloned()
    });
    std::fs::write(d.path("b.py"), "b").unwrap();
    let e = d.expect("fim-file-restored", "b.py", 1);
    assert_eq!(e["baseline"]["generation"], 1);
    let (code, _) = d.stop();
    assert_eq!(code, Some(0));
}

/// The descriptor of the daemon `pid`'s private copy of its baseline: an
/// unnamed file in `dir`.
fn private_copy(pid: u32, dir: &Path) -> PathBuf {
    let fds = Path::new("/proc").join(pid.to_string()).join("fd");
    std::fs::read_dir(&fds)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|fd| {
            std::fs::read_link(fd).is_ok_and(|t| {
                let t = t.to_string_lossy().into_owned();
                t.starts_with(&format!("{}/#", dir.display())) && t.ends_with(" (deleted)")
            })
        })
        .unwrap_or_else(|| panic!("no private copy among {}", fds.display()))
}

#[test]
fn the_daemon_reads_its_baseline_from_a_private_copy_it_checks_block_by_block() {
    use std::os::unix::fs::MetadataExt;
    let _shared = shared();
    // Larger than SQLite's page cache, so that a rescan reads the copy
    // again rather than pages it kept.
    let long = "n".repeat(150);
    let mut files: Vec<(String, &str)> = (0..20_000)
        .map(|i| (format!("{long}{i:05}"), "x"))
        .collect();
    let marked = "the one file whose hash is edited in the copy";
    files[7].1 = marked;
    let files: Vec<(&str, &str)> = files.iter().map(|(n, t)| (n.as_str(), *t)).collect();
    let (tmp, root, db) = tree_with_baseline(&files, r#"["type", "size", "hash"]"#);
    assert!(std::fs::metadata(&db).unwrap().len() > 4 << 20);
    let events = tmp.path().join("events.jsonl");
    let mut d = Daemon::spawn(&db, &events, &["--rescan", "1s"]);
    d.tmp = tmp;
    d.root = root;
    d.wait_for(|e| e["type"] == "fim-scan-finished");

    let pid = d.child.as_ref().unwrap().id();
    let fd = private_copy(pid, d.tmp.path());
    let meta = std::fs::metadata(&fd).unwrap();
    assert_eq!((meta.nlink(), meta.mode() & 0o777), (0, 0o600));
    assert_eq!(meta.len(), std::fs::metadata(&db).unwrap().len());
    // One byte of one entry's hash, so that the copy would vouch for
    // other content: well-formed for SQLite, caught only by the check.
    let copy = std::fs::read(&fd).unwrap();
    let hash = *blake3::hash(marked.as_bytes()).as_bytes();
    let at = copy
        .windows(32)
        .position(|w| w == hash)
        .expect("the entry's hash is in the copy");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&fd)
        .and_then(|f| std::os::unix::fs::FileExt::write_all_at(&f, &[copy[at] ^ 1], at as u64))
        .unwrap();

    let t = d.poll("copy-altered", |evs| {
        evs.iter()
            .find(|e| e["type"] == "fim-baseline-tampered" && e["reason"] == "copy-altered")
            .cloned()
    });
    assert!(
        t["detail"]
            .as_str()
            .unwrap()
            .contains("is not what was verified"),
        "{t}"
    );
    let mut child = d.child.take().unwrap();
    let deadline = Instant::now() + PATIENCE;
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the daemon went on");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(18), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("the private copy of the verified baseline was altered after it was verified")
            && err.contains("restart it to verify the baseline again"),
        "{err}"
    );
    // No drift was made up from what the copy says now.
    assert!(
        !d.events()
            .iter()
            .any(|e| e["type"].as_str().unwrap().starts_with("fim-file-")),
        "drift reported from the altered copy"
    );
    // The copy left nothing behind.
    let mut names: Vec<String> = std::fs::read_dir(d.tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.iter().all(|n| !n.starts_with('#')), "{names:?}");
}

#[test]
fn where_no_copy_fits_at_a_reload_the_daemon_holds_the_new_generation_in_memory() {
    let _shared = shared();
    let long = "n".repeat(150);
    let names: Vec<String> = (0..6_000).map(|i| format!("{long}{i:05}")).collect();
    let first: Vec<(&str, &str)> = names[..4_000].iter().map(|n| (n.as_str(), "x")).collect();
    let (tmp, root, db) = tree_with_baseline(&first, r#"["type", "size", "hash"]"#);
    let size = std::fs::metadata(&db).unwrap().len();
    // What the next generation's rules add, made now so that nothing the
    // daemon watches changes (each event would grow the outbox).
    let extra = tmp.path().join("extra");
    std::fs::create_dir(&extra).unwrap();
    for n in &names[4_000..] {
        std::fs::write(extra.join(n), "x").unwrap();
    }
    let next_rules = write_rules(
        &tmp.path().join("extra"),
        &format!(
            "[[rule]]\nname = \"tree\"\npaths = [{root:?}, \"{}/**\", \"{}/**\"]\n\
             check = [\"type\", \"size\", \"hash\"]\nseverity = \"high\"\n",
            root.display(),
            extra.display()
        ),
    );
    let next = tmp.path().join("next.db");
    assert_ok(&init(&next_rules, &next));
    assert!(std::fs::metadata(&next).unwrap().len() > size * 7 / 5);
    let state = tmp.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let events = tmp.path().join("events.jsonl");
    // Room for the baseline, its copy and a scan snapshot, with a little
    // over for the outbox: not for a second, larger copy at the reload.
    let script = format!(
        "mount -t tmpfs -o size={room} tmpfs {s} && cp {db} {s}/b.db && exec {bin} watch \
         --backend inotify --allow-unsigned --db {s}/b.db --emit file:{ev}",
        room = size * 18 / 5,
        s = state.display(),
        db = db.display(),
        bin = bin_path().display(),
        ev = events.display()
    );
    let mut d = Daemon::in_own_mounts(&script, events, tmp, root);

    // The next generation, half as large again, put in place as scp would
    // (in place), then SIGHUP.
    let pid = d.child.as_ref().unwrap().id();
    let inside = Path::new("/proc")
        .join(pid.to_string())
        .join("root")
        .join(state.strip_prefix("/").unwrap())
        .join("b.db");
    std::fs::write(&inside, std::fs::read(&next).unwrap()).unwrap();
    hangup(&d);
    d.poll("the rescan after the reload", |evs| {
        (evs.iter()
            .filter(|e| e["type"] == "fim-scan-finished")
            .count()
            == 2)
            .then_some(())
    });
    // Measured against the new generation: a file only it records is
    // modified, not added.
    let added = extra.join(&names[5_000]);
    std::fs::write(&added, "changed").unwrap();
    let shown = added.to_str().unwrap().to_string();
    d.poll("the modified file", |evs| {
        evs.iter()
            .find(|e| e["path"] == shown.as_str())
            .map(|e| e["type"].clone())
    });
    let said: Vec<Value> = d
        .events()
        .into_iter()
        .filter(|e| e["path"] == shown.as_str())
        .collect();
    assert_eq!(said.len(), 1, "{said:?}");
    assert_eq!(said[0]["type"], "fim-file-modified", "{said:?}");
    let (code, err) = d.stop();
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("cannot keep a private copy in")
            && err.contains("No space left on device")
            && err.contains("holding it in memory")
            && err.contains("SIGHUP: baseline generation 1 loaded"),
        "{err}"
    );
}

#[test]
fn a_deleted_baseline_is_reported_and_the_daemon_goes_on() {
    let _shared = shared();
    let (mut d, db, _key) = start_sealed(&[]);
    std::fs::remove_file(&db).unwrap();
    let t = d.poll("changed-under-daemon", |evs| {
        changed_under_daemon(evs).into_iter().next()
    });
    assert!(t["detail"].as_str().unwrap().contains("deleted"), "{t}");
    std::fs::write(d.path("a.py"), "changed").unwrap();
    d.expect("fim-file-modified", "a.py", 1);
    let (code, _) = d.stop();
    assert_eq!(code, Some(0));
}

#[test]
fn the_daemon_warns_before_its_seal_expires_and_says_when_it_has() {
    let _shared = shared();
    let (tmp, root, db) = tree_with_baseline(&[("a.py", "a")], r#"["type", "size", "hash"]"#);
    let key = tmp.path().join("op.key");
    keygen(&key);
    // Long enough for the daemon to start well before it expires.
    assert_ok(&sign_with(&key, &db, &["--expires", "10s"]));
    let mut d = spawn_trusting(tmp, root, &db, &key, &["--rescan", "1s"]);
    d.wait_for(|e| e["type"] == "fim-baseline-expiring");
    let t = d.wait_for(|e| e["type"] == "fim-baseline-tampered" && e["reason"] == "expired");
    assert!(t["detail"].as_str().unwrap().contains("has passed"), "{t}");
    // It watches on.
    std::fs::write(d.path("a.py"), "changed").unwrap();
    d.expect("fim-file-modified", "a.py", 1);
    let (code, _) = d.stop();
    assert_eq!(code, Some(0));
}

fn outbox_tampered(events: &[Value], reason: &str) -> Option<Value> {
    events
        .iter()
        .find(|e| e["type"] == "fim-outbox-tampered" && e["reason"] == reason)
        .cloned()
}

#[test]
fn the_daemon_survives_what_is_done_to_its_outbox() {
    let _shared = shared();
    let mut d = Daemon::start(&["--heartbeat", "1h"]);
    let outbox = d.tmp.path().join("b.db.outbox");
    let journal = d.tmp.path().join("b.db.outbox-journal");
    // Nothing waits in the outbox and no transaction of the daemon's is
    // open (its journal is gone): what the test plants is not raced.
    let idle = |d: &Daemon| {
        d.poll("the outbox idle", |_| {
            let n = sql_text(&outbox, "SELECT count(*) FROM events");
            (n.trim() == "0" && std::fs::symlink_metadata(&journal).is_err()).then_some(())
        })
    };
    let victim = d.tmp.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    assert!(outbox.is_file());

    // Removed: the next events still arrive, the problem is said, and a
    // new outbox is made.
    std::fs::remove_file(&outbox).unwrap();
    std::fs::write(d.path("a.py"), "1").unwrap();
    d.expect("fim-file-modified", "a.py", 1);
    d.poll("the removal reported", |evs| {
        outbox_tampered(evs, "removed")
    });
    assert!(std::fs::symlink_metadata(&outbox).unwrap().is_file());

    // Replaced by a symlink: never written through.
    std::fs::remove_file(&outbox).unwrap();
    std::os::unix::fs::symlink(&victim, &outbox).unwrap();
    std::fs::write(d.path("a.py"), "2").unwrap();
    d.expect("fim-file-modified", "a.py", 2);
    d.poll("the symlink reported", |evs| {
        outbox_tampered(evs, "symlink")
    });
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert!(std::fs::symlink_metadata(&outbox).unwrap().is_file());

    // Its journal planted as a link to the victim: never written through.
    // Planted once the daemon is idle: while it commits, SQLite's own
    // journal stands at that name.
    idle(&d);
    std::os::unix::fs::symlink(&victim, &journal).unwrap();
    std::fs::write(d.path("a.py"), "3").unwrap();
    d.expect("fim-file-modified", "a.py", 3);
    d.poll("the journal reported", |evs| {
        outbox_tampered(evs, "journal-planted")
    });
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");

    // Renamed away while events wait for a sink that is down: nothing is lost.
    let sink = d.events.clone();
    let saved = d.tmp.path().join("events.saved");
    std::fs::rename(&sink, &saved).unwrap();
    std::fs::create_dir(&sink).unwrap(); // the file sink now refuses
    std::fs::write(d.path("sub/b.py"), "x").unwrap();
    // Waiting in the outbox, the sink being down, when it is renamed away.
    d.poll("the event waiting in the outbox", |_| {
        let n = sql_text(
            &outbox,
            "SELECT count(*) FROM events WHERE body LIKE '%sub/b.py%'",
        );
        (n.trim() == "1").then_some(())
    });
    std::fs::rename(&outbox, d.tmp.path().join("moved")).unwrap();
    std::fs::write(d.path("a.py"), "4").unwrap();
    std::thread::sleep(Duration::from_millis(500));
    // The new one removed and a directory in its place: no outbox can be
    // made; events wait in memory.
    d.poll("a new outbox", |_| {
        std::fs::symlink_metadata(&outbox)
            .is_ok_and(|m| m.is_file())
            .then_some(())
    });
    std::fs::remove_file(&outbox).unwrap();
    std::fs::create_dir(&outbox).unwrap();
    std::fs::write(d.path("target1"), "y").unwrap();
    std::thread::sleep(Duration::from_millis(500));
    std::fs::remove_dir(&sink).unwrap();
    std::fs::rename(&saved, &sink).unwrap();
    // The sink is back (the daemon tries again within its backoff).
    d.expect("fim-file-modified", "sub/b.py", 1);
    d.expect("fim-file-modified", "a.py", 4);
    d.expect("fim-file-modified", "target1", 1);
    d.poll("the rename reported", |evs| outbox_tampered(evs, "removed"));
    d.poll("the directory reported", |evs| {
        outbox_tampered(evs, "not-a-file")
    });
    let memory = d.poll("events kept in memory", |evs| {
        outbox_tampered(evs, "unusable")
    });
    assert!(
        memory["detail"]
            .as_str()
            .unwrap()
            .contains("wait in memory"),
        "{memory}"
    );
    std::fs::remove_dir(&outbox).unwrap();
    std::fs::write(d.path("a.py"), "5").unwrap();
    d.expect("fim-file-modified", "a.py", 5);
    assert!(std::fs::symlink_metadata(&outbox).unwrap().is_file());

    // Replaced by an outbox of the intruder's, whose table swallows every
    // insert: not used, moved aside; events still arrive.
    std::fs::remove_file(&outbox).unwrap();
    sql(
        &outbox,
        "CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, \
         type TEXT NOT NULL, body TEXT NOT NULL); \
         CREATE TABLE pending (sink TEXT NOT NULL UNIQUE ON CONFLICT IGNORE, \
         seq INTEGER NOT NULL, PRIMARY KEY (sink, seq)) WITHOUT ROWID; \
         INSERT INTO pending VALUES ('x', 1);",
    );
    std::fs::write(d.path("a.py"), "6").unwrap();
    d.expect("fim-file-modified", "a.py", 6);
    let aside = |dir: &Path| {
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("b.db.outbox.aside.")
            })
            .count()
    };
    d.poll("the planted outbox moved aside", |_| {
        (aside(d.tmp.path()) == 1).then_some(())
    });

    // Garbage written into the outbox in place: its file is moved aside,
    // never deleted, and events go on. Written once the daemon is idle
    // (what it delivered is deleted from the outbox): a transaction of its
    // own still in flight would write its cached pages back over the
    // garbage, and nothing would be left to find.
    idle(&d);
    {
        use std::io::Write;
        let len = std::fs::metadata(&outbox).unwrap().len().max(4096);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&outbox)
            .unwrap();
        f.write_all(&vec![0x55; len as usize]).unwrap();
    }
    std::fs::write(d.path("a.py"), "7").unwrap();
    d.expect("fim-file-modified", "a.py", 7);
    std::fs::write(d.path("a.py"), "8").unwrap();
    d.expect("fim-file-modified", "a.py", 8);
    d.poll("the broken outbox moved aside", |_| {
        (aside(d.tmp.path()) == 2).then_some(())
    });

    // A directory where SQLite writes the journal: moved out of the way;
    // the outbox itself stays where it is, and events go on.
    d.poll("an outbox again", |_| {
        std::fs::symlink_metadata(&outbox)
            .is_ok_and(|m| m.is_file())
            .then_some(())
    });
    idle(&d);
    std::fs::create_dir(&journal).unwrap();
    std::fs::write(d.path("a.py"), "9").unwrap();
    d.expect("fim-file-modified", "a.py", 9);
    assert!(
        !journal.exists(),
        "the planted journal directory is still there"
    );
    let (code, err) = d.stop();
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("event outbox"), "{err}");
}

#[test]
fn the_daemon_never_rolls_back_and_keeps_the_rollback_record() {
    let _shared = shared();
    let (mut d, db, key) = start_sealed(&[]);
    let gen1 = d.tmp.path().join("gen1.db");
    std::fs::copy(&db, &gen1).unwrap();
    std::fs::write(d.path("a.py"), "release 2").unwrap();
    d.expect("fim-file-modified", "a.py", 1);
    update(&db);
    sign(&key, &db);
    std::fs::copy(&db, d.tmp.path().join("gen2.db")).unwrap();
    hangup(&d);
    d.wait_for(|e| e["type"] == "fim-scan-finished" && e["baseline"]["generation"] == 2);

    // The rollback record deleted: said, and written again.
    let accepted = d.tmp.path().join("b.db.accepted");
    std::fs::remove_file(&accepted).unwrap();
    d.poll("the deleted record reported", |evs| {
        changed_under_daemon(evs).into_iter().find(|e| {
            e["detail"]
                .as_str()
                .unwrap()
                .contains("rollback record was deleted")
        })
    });
    d.poll("the record written again", |_| {
        std::fs::read_to_string(&accepted)
            .ok()
            .filter(|t| t.starts_with("2 "))
    });

    // Deleted again and the signed generation 1 put back, then a reload:
    // refused, generation 2 stays.
    std::fs::remove_file(&accepted).unwrap();
    std::fs::copy(&gen1, &db).unwrap();
    hangup(&d);
    let r = d.poll("the rollback refused", |evs| {
        evs.iter()
            .find(|e| e["type"] == "fim-baseline-tampered" && e["reason"] == "rollback")
            .cloned()
    });
    assert!(
        r["detail"]
            .as_str()
            .unwrap()
            .contains("older than generation 2"),
        "{r}"
    );
    std::fs::write(d.path("a.py"), "a").unwrap();
    let e = d.expect("fim-file-modified", "a.py", 2);
    assert_eq!(e["baseline"]["generation"], 2);
    // The refused generation was never recorded; the held one is.
    d.poll("the record written again for 2", |_| {
        std::fs::read_to_string(&accepted)
            .ok()
            .filter(|t| t.starts_with("2 "))
    });

    // Raised above the generation the unchanged file holds (so that the
    // next check refuses the real baseline as a rollback): said, and
    // written again.
    std::fs::copy(d.tmp.path().join("gen2.db"), &db).unwrap();
    std::fs::write(&accepted, format!("999 {}\n", "a".repeat(64))).unwrap();
    d.poll("the raised record reported", |evs| {
        changed_under_daemon(evs).into_iter().find(|e| {
            e["detail"]
                .as_str()
                .unwrap()
                .contains("generation 999, above generation 2")
        })
    });
    d.poll("the record written again for 2", |_| {
        std::fs::read_to_string(&accepted)
            .ok()
            .filter(|t| t.starts_with("2 "))
    });
    let (code, _) = d.stop();
    assert_eq!(code, Some(0));
}

/// What the daemon told a notification socket made by the test, as
/// systemd would have heard it.
fn notifications(socket: &std::os::unix::net::UnixDatagram, until: Instant) -> Vec<String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < until {
        socket
            .set_read_timeout(Some(
                until
                    .saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(1)),
            ))
            .unwrap();
        match socket.recv(&mut buf) {
            Ok(n) => got.push(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(_) => break,
        }
    }
    got
}

#[test]
fn systemd_hears_ready_after_the_first_comparison_then_the_watchdog() {
    let _shared = shared();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    let notify = [("NOTIFY_SOCKET", path.as_os_str())];
    let mut d = Daemon::start_env(&["--heartbeat", "1s"], &notify);
    // READY=1 is the first thing systemd hears, with what is watched.
    let first = notifications(&socket, Instant::now() + PATIENCE / 3);
    assert!(
        first
            .first()
            .is_some_and(|m| m.starts_with("READY=1\nSTATUS=watching ") && m.contains("b.db")),
        "{first:?}"
    );
    // WATCHDOG=1 with each heartbeat (every second here).
    let pings = first.iter().filter(|m| *m == "WATCHDOG=1").count();
    assert!(pings >= 3, "{pings} pings in 5 s: {first:?}");
    let (code, err) = d.stop();
    assert_eq!(code, Some(0), "{err}");
    let last = notifications(&socket, Instant::now() + Duration::from_millis(200));
    assert!(last.iter().any(|m| m == "STOPPING=1"), "{last:?}");

    // With systemd's watchdog on (WatchdogSec=400ms): pinged every 100 ms
    // while the daemon is live, whatever the heartbeat period.
    let socket2 = dir.path().join("notify2.sock");
    let socket2_rx = std::os::unix::net::UnixDatagram::bind(&socket2).unwrap();
    let env = [
        ("NOTIFY_SOCKET", socket2.as_os_str()),
        ("WATCHDOG_USEC", OsStr::new("400000")),
    ];
    let mut d = Daemon::start_env(&["--heartbeat", "1h"], &env);
    let got = notifications(&socket2_rx, Instant::now() + Duration::from_millis(1500));
    let pings = got.iter().filter(|m| *m == "WATCHDOG=1").count();
    assert!(pings >= 4, "{pings} pings in 1.5 s: {got:?}");
    // Stopped by an intruder (SIGSTOP): the pings stop, so systemd would
    // restart it after WatchdogSec; continued, they come again.
    let pid = d.child.as_ref().unwrap().id() as i32;
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    notifications(&socket2_rx, Instant::now() + Duration::from_millis(300));
    let stopped = notifications(&socket2_rx, Instant::now() + Duration::from_millis(1000));
    assert!(stopped.is_empty(), "heard while stopped: {stopped:?}");
    unsafe { libc::kill(pid, libc::SIGCONT) };
    let again = notifications(&socket2_rx, Instant::now() + Duration::from_millis(1000));
    assert!(again.iter().any(|m| m == "WATCHDOG=1"), "{again:?}");
    let (code, err) = d.stop();
    assert_eq!(code, Some(0), "{err}");
}

/// The daemon's own lines on standard error: times unless the journal
/// takes them, `-q` keeps only warnings, and what systemd gave that cannot
/// be used is said.
#[test]
fn the_daemons_log_follows_systemds_conventions() {
    let _shared = shared();
    let (tmp, _root, db) = tree_with_baseline(&[], r#"["type", "hash"]"#);
    let events = tmp.path().join("events.jsonl");
    // Runs the daemon until its first comparison is reported, stops it, and
    // returns its standard error; `journal`: JOURNAL_STREAM names it.
    let run = |extra: &[&str], env: &[(&str, &str)], journal: bool| -> String {
        use std::os::unix::fs::MetadataExt;
        let _ = std::fs::remove_file(&events);
        let (mut reader, writer) = std::io::pipe().unwrap();
        let meta = std::fs::File::from(std::os::fd::OwnedFd::from(writer.try_clone().unwrap()))
            .metadata()
            .unwrap();
        let mut cmd = Command::new(bin_path());
        cmd.args(["watch", "--allow-unsigned", "--db"])
            .arg(&db)
            .arg("--emit")
            .arg(format!("file:{}", events.display()))
            .args(extra)
            .env_remove("JOURNAL_STREAM")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(writer);
        if journal {
            cmd.env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()));
        }
        let mut child = cmd.spawn().unwrap();
        drop(cmd);
        let deadline = Instant::now() + PATIENCE;
        while !std::fs::read_to_string(&events)
            .unwrap_or_default()
            .contains("fim-scan-finished")
        {
            assert!(Instant::now() < deadline, "the daemon never compared");
            std::thread::sleep(Duration::from_millis(20));
        }
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        assert_eq!(child.wait().unwrap().code(), Some(0));
        let mut err = String::new();
        std::io::Read::read_to_string(&mut reader, &mut err).unwrap();
        err
    };
    let stamped = |line: &str| {
        line.len() > 21 && line.as_bytes()[4] == b'-' && line[20..].starts_with(" tripseal: ")
    };
    let err = run(&[], &[], false);
    assert!(err.contains("tripseal: watching "), "{err}");
    assert!(err.lines().all(stamped), "times on every line: {err}");
    let err = run(&[], &[], true);
    assert!(
        err.lines()
            .next()
            .is_some_and(|l| l.starts_with("tripseal: ")),
        "{err}"
    );
    assert!(!err.lines().any(stamped), "the journal stamps them: {err}");
    let err = run(&["-q"], &[], true);
    assert!(!err.contains("watching"), "-q: {err}");
    // What systemd gave, unusable: said, and the daemon runs on.
    let err = run(
        &[],
        &[
            ("NOTIFY_SOCKET", "relative/notify"),
            ("WATCHDOG_USEC", "soon"),
        ],
        true,
    );
    assert!(
        err.contains("NOTIFY_SOCKET=relative/notify is not a socket tripseal can notify"),
        "{err}"
    );
    let err = run(
        &[],
        &[
            ("NOTIFY_SOCKET", "/run/none/notify"),
            ("WATCHDOG_USEC", "soon"),
        ],
        true,
    );
    assert!(err.contains("WATCHDOG_USEC=soon is not a number"), "{err}");
}

#[test]
fn the_watchdog_hears_a_long_hash_that_makes_progress() {
    let _shared = shared();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    // WatchdogSec=400ms: systemd would kill a daemon silent for that long.
    let env = [
        ("NOTIFY_SOCKET", path.as_os_str()),
        ("WATCHDOG_USEC", OsStr::new("400000")),
    ];
    let mut d = Daemon::start_env(&["--heartbeat", "1h"], &env);
    let heard = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let listener = {
        let heard = std::sync::Arc::clone(&heard);
        let socket = socket.try_clone().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 256];
            socket
                .set_read_timeout(Some(Duration::from_secs(1)))
                .unwrap();
            while let Ok(n) = socket.recv(&mut buf) {
                let ping = &buf[..n] == b"WATCHDOG=1";
                heard.lock().unwrap().push((Instant::now(), ping));
            }
        })
    };
    // One file of 2 GiB (sparse: no disk used) keeps the daemon hashing, in
    // its one loop, for longer than the watchdog's period (about 2.5 s here;
    // more would outlast the test's patience on a loaded machine).
    let big = d.path("big.img");
    let made = Instant::now();
    std::fs::File::create(&big)
        .unwrap()
        .set_len(2 << 30)
        .unwrap();
    d.expect("fim-file-added", "big.img", 1);
    let hashed = Instant::now();
    let (code, err) = d.stop();
    assert_eq!(code, Some(0), "{err}");
    listener.join().unwrap();
    let pings: Vec<Instant> = heard
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, ping)| *ping)
        .map(|(t, _)| *t)
        .filter(|t| *t >= made && *t <= hashed)
        .collect();
    assert!(
        hashed - made > Duration::from_millis(400),
        "hashed in {:?}: too fast to tell",
        hashed - made
    );
    let mut gaps: Vec<Duration> = pings.windows(2).map(|w| w[1] - w[0]).collect();
    gaps.push(pings.first().map_or(hashed - made, |t| *t - made));
    let longest = gaps.iter().max().unwrap();
    assert!(
        *longest < Duration::from_millis(400),
        "a silence of {longest:?} while hashing for {:?}: systemd would have killed it",
        hashed - made
    );
}

/// A role baseline made from another copy of the tree (other inodes, ctimes,
/// mtimes): the daemon finds nothing at start, and reports a change, and an
/// owner by name, as for any baseline.
#[test]
fn a_role_baseline_is_watched_like_any_other() {
    let _shared = shared();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("tree");
    let build = tmp.path().join("build");
    std::fs::create_dir_all(build.join("sub")).unwrap();
    std::fs::write(build.join("a.py"), "a").unwrap();
    std::fs::write(build.join("sub/b.py"), "b").unwrap();
    let rules = write_rules(
        tmp.path(),
        &format!(
            "role = \"workers\"\n[[rule]]\nname = \"tree\"\npaths = [{0:?}, \"{1}/**\"]\n\
             check = [\"type\", \"mode\", \"uid\", \"gid\", \"size\", \"ctime\", \"inode\", \"hash\"]\n\
             severity = \"high\"\n",
            root,
            root.display()
        ),
    );
    let db = tmp.path().join("b.db");
    let (b, r) = (build.to_str().unwrap(), root.to_str().unwrap());
    assert_ok(&init_with(&rules, &db, &["--root", b, "--as", r]));
    let copied = Command::new("cp")
        .arg("-r")
        .arg(&build)
        .arg(&root)
        .status()
        .unwrap();
    assert!(copied.success());
    let events = tmp.path().join("events.jsonl");
    let mut d = Daemon::spawn(&db, &events, &[]);
    d.root = root;
    let finished = d.wait_for(|e| e["type"] == "fim-scan-finished");
    assert_eq!(finished["changed"], 0, "{finished}");
    std::fs::write(d.path("a.py"), "evil").unwrap();
    let e = d.expect("fim-file-modified", "a.py", 1);
    assert!(e["changes"]["hash"].is_object(), "{e}");
    assert!(e["changes"].get("inode").is_none(), "{e}");
    std::os::unix::fs::lchown(d.path("sub/b.py"), Some(65534), None).unwrap();
    let e = d.expect("fim-file-modified", "sub/b.py", 1);
    assert_eq!(e["changes"]["owner"]["new"]["id"], 65534, "{e}");
    assert_eq!(e["changes"]["owner"]["old"]["name"], "root", "{e}");
    let (code, err) = d.stop();
    assert_eq!(code, Some(0), "{err}");
}

/// The actors of a drift event, by pid.
fn actors(e: &Value) -> Vec<Value> {
    e["actor"].as_array().cloned().unwrap_or_default()
}

/// `sh -c SCRIPT` as `user` (`None`: root), kept alive a while after it
/// wrote, so that /proc still shows it when the daemon reads the event.
fn writer(user: Option<u32>, script: &str) -> Child {
    let mut cmd = match user {
        Some(id) => {
            let mut c = Command::new("setpriv");
            c.args([
                "--reuid",
                &id.to_string(),
                "--regid",
                &id.to_string(),
                "--clear-groups",
                "sh",
            ]);
            c
        }
        None => Command::new("sh"),
    };
    cmd.arg("-c")
        .arg(format!("{script}; sleep 3"))
        .spawn()
        .unwrap()
}

#[test]
fn fanotify_names_the_process_and_the_user_behind_a_change() {
    let _shared = shared();
    let mut d = Daemon::start(&["--backend", "fanotify"]);
    let online = d.wait_for(|e| e["type"] == "fim-online");
    assert_eq!(online["backend"], "fanotify");
    let a = d.path("a.py");
    let mut root_writer = writer(None, &format!("echo more >> {}", a.display()));
    let pid = root_writer.id();
    let e = d.expect("fim-file-modified", "a.py", 1);
    let who = actors(&e);
    assert_eq!(who.len(), 1, "{e}");
    assert_eq!(who[0]["pid"], pid, "{e}");
    let sh = std::fs::canonicalize("/bin/sh").unwrap();
    assert_eq!(who[0]["exe"], sh.to_str().unwrap(), "{e}");
    assert_eq!(
        (who[0]["uid"].clone(), who[0]["euid"].clone()),
        (0.into(), 0.into())
    );
    assert_eq!(who[0]["exited"], false);
    // Put back by another process: the restore names it.
    let mut restorer = writer(None, &format!("printf a > {}", a.display()));
    let e = d.expect("fim-file-restored", "a.py", 1);
    assert_eq!(actors(&e)[0]["pid"], restorer.id(), "{e}");
    let _ = restorer.kill();
    let _ = restorer.wait();

    // Another user: nobody may write in sub/ (and reach it).
    use std::os::unix::fs::PermissionsExt;
    for dir in [d.tmp.path(), d.root.as_path()] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(d.path("sub"), std::fs::Permissions::from_mode(0o777)).unwrap();
    let made = d.path("sub/nobody.py");
    let mut nobody = writer(Some(65534), &format!("echo x > {}", made.display()));
    let e = d.expect("fim-file-added", "sub/nobody.py", 1);
    let who = actors(&e);
    assert_eq!(who[0]["pid"], nobody.id(), "{e}");
    assert_eq!(who[0]["uid"], 65534, "{e}");
    assert_eq!(who[0]["euid"], 65534, "{e}");

    // Two processes on one path before the daemon reads: both are named.
    let b = d.path("sub/b.py");
    let pid = d.child.as_ref().unwrap().id() as i32;
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let mut w1 = writer(None, &format!("echo 1 >> {}", b.display()));
    let mut w3 = writer(None, &format!("echo 3 >> {}", b.display()));
    std::thread::sleep(Duration::from_millis(300));
    unsafe { libc::kill(pid, libc::SIGCONT) };
    let e = d.expect("fim-file-modified", "sub/b.py", 1);
    let mut pids: Vec<u64> = actors(&e)
        .iter()
        .map(|a| a["pid"].as_u64().unwrap())
        .collect();
    pids.sort();
    let mut want = vec![u64::from(w1.id()), u64::from(w3.id())];
    want.sort();
    assert_eq!(pids, want, "{e}");
    for c in [&mut root_writer, &mut nobody, &mut w1, &mut w3] {
        let _ = c.kill();
        let _ = c.wait();
    }
    let (code, err) = d.stop();
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn a_fanotify_queue_overflow_is_reported_and_nothing_is_missed() {
    let _alone = KERNEL_LIMITS.write().unwrap_or_else(|e| e.into_inner());
    let mut d = Daemon::start(&["--backend", "fanotify"]);
    // The mark covers the whole file system: a flood anywhere on it fills
    // the queue (16384 events) while the daemon is stopped.
    let elsewhere = d.tmp.path().join("unwatched");
    std::fs::create_dir(&elsewhere).unwrap();
    let pid = d.child.as_ref().unwrap().id() as i32;
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    for i in 0..20_000 {
        std::fs::write(elsewhere.join(format!("n{i:05}")), "n").unwrap();
    }
    std::fs::write(d.path("a.py"), "changed during the flood").unwrap();
    unsafe { libc::kill(pid, libc::SIGCONT) };
    let o = d.wait_for(|e| e["type"] == "fim-watch-overflow");
    assert!(
        o["reason"].as_str().unwrap().contains("fanotify queue"),
        "{o}"
    );
    d.wait_for(|e| e["type"] == "fim-scan-finished" && e["scan"] == "watch-rescan");
    d.expect("fim-file-modified", "a.py", 1);
    let strays = d
        .events()
        .iter()
        .filter(|e| e["path"].as_str().is_some_and(|p| p.contains("unwatched")))
        .count();
    assert_eq!(strays, 0, "nothing outside the rules is reported");
    let (code, err) = d.stop();
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn without_privilege_the_daemon_falls_back_to_inotify() {
    let _shared = shared();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("tree");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("a.py"), "a").unwrap();
    let rules = rules_for(tmp.path(), &root, r#"["type", "size", "hash"]"#);
    let db = tmp.path().join("b.db");
    assert_ok(&init(&rules, &db));
    let status = Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(tmp.path())
        .status()
        .unwrap();
    assert!(status.success());
    let events = tmp.path().join("events.jsonl");
    let spawn = |backend: &str| {
        Command::new("setpriv")
            .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
            .arg(bin_path())
            .args(["watch", "--allow-unsigned", "--backend", backend, "--db"])
            .arg(&db)
            .arg("--emit")
            .arg(format!("file:{}", events.display()))
            .env_remove("NOTIFY_SOCKET")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut child = spawn("fanotify");
    let deadline = Instant::now() + PATIENCE;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("--backend fanotify without privilege should have been refused");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let refused = child.wait_with_output().unwrap();
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("cannot start fanotify") && err.contains("--backend inotify"),
        "{err}"
    );

    let mut d = Daemon {
        child: Some(spawn("auto")),
        events: events.clone(),
        tmp,
        root,
    };
    let online = d.wait_for(|e| e["type"] == "fim-online");
    assert_eq!(online["backend"], "inotify", "{online}");
    d.wait_for(|e| e["type"] == "fim-scan-finished");
    std::fs::write(d.path("a.py"), "changed").unwrap();
    let e = d.expect("fim-file-modified", "a.py", 1);
    assert!(e.get("actor").is_none(), "inotify cannot say who: {e}");
    let (code, err) = d.stop();
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("fanotify is not available"), "{err}");
}

#[test]
fn fanotify_reports_true_paths_when_its_state_directory_is_a_bind_mount() {
    // systemd's ProtectSystem=strict with ReadWritePaths= makes the state
    // directory a bind mount in the daemon's mount namespace: a path looked
    // up through it would read "/" for every directory outside it.
    let _shared = shared();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("tree");
    let state = tmp.path().join("state");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(root.join("a.py"), "a").unwrap();
    let rules = rules_for(tmp.path(), &root, r#"["type", "size", "hash"]"#);
    let db = state.join("b.db");
    assert_ok(&init(&rules, &db));
    let events = tmp.path().join("events.jsonl");
    let script = format!(
        "mount --bind {s} {s} && exec {bin} watch --backend fanotify --allow-unsigned --db {db} \
         --emit file:{ev}",
        s = state.display(),
        bin = bin_path().display(),
        db = db.display(),
        ev = events.display()
    );
    let mut d = Daemon::in_own_mounts(&script, events, tmp, root);
    std::fs::write(d.path("a.py"), "changed").unwrap();
    let e = d.expect("fim-file-modified", "a.py", 1);
    assert_eq!(actors(&e).len(), 1, "{e}");
    let (code, err) = d.stop();
    assert_eq!(code, Some(0), "{err}");
}
