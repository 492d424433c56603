//! Snapshot tests of what people and machines read: the drift report (human
//! and JSON) and `show`. Paths, times, hosts and durations are redacted.

mod common;

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::time::{Duration, SystemTime};

use common::*;

const T0: u64 = 1_700_000_000;

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

fn write(path: &Path, content: &[u8], mode: u32, mtime: u64) {
    std::fs::write(path, content).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(at(mtime))
        .unwrap();
}

/// A tree, its baseline, and a set of changes made to it.
fn drifted() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("srv");
    std::fs::create_dir(&root).unwrap();
    write(
        &root.join("celeryconfig.py"),
        b"broker_url = 'amqp://'\n",
        0o644,
        T0,
    );
    write(
        &root.join("tasks.py"),
        b"def add(x, y): return x + y\n",
        0o644,
        T0,
    );
    write(&root.join("old.py"), b"pass\n", 0o644, T0);
    write(&root.join("worker.log"), b"started\n", 0o640, T0);
    symlink("tasks.py", root.join("current")).unwrap();
    let rules = write_rules(
        tmp.path(),
        &format!(
            r#"[[rule]]
name = "task-modules"
paths = ["{r}/*.py", "{r}/current"]
check = ["type", "mode", "uid", "gid", "size", "mtime", "link", "hash"]
severity = "critical"

[[rule]]
name = "worker-logs"
paths = ["{r}/*.log"]
check = ["type", "mode", "growing"]
severity = "medium"
"#,
            r = root.display()
        ),
    );
    let db = tmp.path().join("b.db");
    assert_ok(&init(&rules, &db));

    write(
        &root.join("celeryconfig.py"),
        b"broker_url = 'amqp://evil'\n",
        0o666,
        T0 + 60,
    );
    write(
        &root.join("tasks.py"),
        b"def add(x, y): return x - y\n",
        0o644,
        T0,
    );
    std::fs::remove_file(root.join("old.py")).unwrap();
    write(&root.join("backdoor.py"), b"import os\n", 0o755, T0 + 120);
    std::fs::remove_file(root.join("current")).unwrap();
    symlink("backdoor.py", root.join("current")).unwrap();
    write(&root.join("worker.log"), b"st", 0o640, T0);
    (tmp, db)
}

fn redacted(tmp: &Path, text: &str) -> String {
    text.replace(&tmp.display().to_string(), "[TMP]")
}

macro_rules! with_filters {
    ($body:expr) => {
        insta::with_settings!({filters => vec![
            (r"scanned in \d+\.\d+ s", "scanned in [DURATION] s"),
            (r#""duration_s": ?[0-9.]+"#, r#""duration_s": "[DURATION]""#),
            (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "[TIME]"),

        ]}, { $body })
    };
}

#[test]
fn check_report_human() {
    let (tmp, db) = drifted();
    let out = tripseal()
        .args(["check", "--allow-unsigned"])
        .arg("--db")
        .arg(&db)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7));
    let text = redacted(tmp.path(), &stdout(&out));
    with_filters!(insta::assert_snapshot!(text));
}

#[test]
fn check_report_json() {
    let (tmp, db) = drifted();
    let out = tripseal()
        .args(["check", "--allow-unsigned", "--format", "json", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let text = redacted(tmp.path(), &serde_json::to_string_pretty(&doc).unwrap());
    with_filters!(insta::assert_snapshot!(text));
}
