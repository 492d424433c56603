//! Helpers shared by the integration tests: build trees, write rules, run the
//! real binary, read a baseline back through `tripseal show --format json`.
#![allow(dead_code)] // each test binary uses a different subset

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use assert_cmd::Command;
use base64::Engine;
use serde_json::Value;

/// Long enough for any scan in these tests; a hang (a FIFO read, a device
/// read) fails the test instead of blocking the suite.
pub const TIMEOUT: Duration = Duration::from_secs(120);

pub fn tripseal() -> Command {
    let mut cmd = Command::cargo_bin("tripseal").expect("binary built");
    cmd.timeout(TIMEOUT);
    cmd
}

pub fn bin_path() -> PathBuf {
    assert_cmd::cargo::cargo_bin("tripseal")
}

/// A rules file with one rule selecting `root/**` (and `root` itself).
pub fn rules_for(dir: &Path, root: &Path, check: &str) -> PathBuf {
    let text = format!(
        "[[rule]]\nname = \"tree\"\npaths = [{root:?}, \"{}/**\"]\ncheck = {check}\nseverity = \"high\"\n",
        root.display()
    );
    write_rules(dir, &text)
}

pub fn write_rules(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("rules.toml");
    std::fs::write(&p, text).unwrap();
    p
}

pub const FULL: &str = r#"["type", "mode", "uid", "gid", "size", "mtime", "ctime", "inode", "nlink", "link", "hash", "xattrs"]"#;

pub fn init(rules: &Path, db: &Path) -> Output {
    init_with(rules, db, &[])
}

/// `tripseal init --rules RULES --db DB EXTRA...`
pub fn init_with(rules: &Path, db: &Path, extra: &[&str]) -> Output {
    tripseal()
        .arg("init")
        .arg("--rules")
        .arg(rules)
        .arg("--db")
        .arg(db)
        .args(extra)
        .output()
        .unwrap()
}

pub fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `tripseal keygen --out KEY`, which must succeed.
pub fn keygen(key: &Path) {
    assert_ok(
        &tripseal()
            .arg("keygen")
            .arg("--out")
            .arg(key)
            .output()
            .unwrap(),
    );
}

/// `tripseal flush --db DB`.
pub fn flush(db: &Path) -> Output {
    tripseal()
        .arg("flush")
        .arg("--db")
        .arg(db)
        .output()
        .unwrap()
}

/// The whole `show --format json` document.
pub fn show_json(db: &Path) -> Value {
    let out = tripseal()
        .args(["show", "--format", "json"])
        .arg(db)
        .output()
        .unwrap();
    assert_ok(&out);
    serde_json::from_slice(&out.stdout).expect("show emits one JSON document")
}

/// The raw bytes of an entry's path, from `path` or `path_bytes`.
pub fn entry_path(e: &Value) -> Vec<u8> {
    match e.get("path_bytes") {
        Some(b) => base64::engine::general_purpose::STANDARD
            .decode(b.as_str().unwrap())
            .unwrap(),
        None => e["path"].as_str().unwrap().as_bytes().to_vec(),
    }
}

/// Entries keyed by raw path bytes.
pub fn entries(db: &Path) -> BTreeMap<Vec<u8>, Value> {
    show_json(db)["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (entry_path(e), e.clone()))
        .collect()
}

/// Asserts that the records' paths come in byte order.
pub fn assert_path_order(records: &Value) {
    let paths: Vec<Vec<u8>> = records.as_array().unwrap().iter().map(entry_path).collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted, "not in path byte order");
}

pub fn key(p: &Path) -> Vec<u8> {
    p.as_os_str().as_bytes().to_vec()
}

pub fn blake3_hex(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// The SQL condition that picks the row of `path` in a baseline's
/// `entries` (schema 3: by its directory's id and its name).
pub fn row_of(path: &Path) -> String {
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let bytes = path.as_os_str().as_bytes();
    let cut = bytes.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1);
    format!(
        "dir = (SELECT id FROM dirs WHERE path = X'{}') AND name = X'{}'",
        hex(&bytes[..cut]),
        hex(&bytes[cut..])
    )
}

/// `sqlite3 DB STATEMENT`: how an intruder with root edits a file.
pub fn sql(db: &Path, statement: &str) {
    let out = std::process::Command::new("sqlite3")
        .arg(db)
        .arg(statement)
        .output()
        .expect("sqlite3 (Debian package sqlite3) is installed by scripts/test.sh");
    assert!(out.status.success(), "sqlite3: {}", stderr(&out));
}

/// What `sqlite3 DB STATEMENT` prints (empty when it fails, as on a file
/// that is being written).
pub fn sql_text(db: &Path, statement: &str) -> String {
    std::process::Command::new("sqlite3")
        .arg(db)
        .arg(statement)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// `tripseal sign --key KEY EXTRA... DB`.
pub fn sign_with(key: &Path, db: &Path, extra: &[&str]) -> Output {
    tripseal()
        .arg("sign")
        .arg("--key")
        .arg(key)
        .args(extra)
        .arg(db)
        .output()
        .unwrap()
}

pub fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo");
}

/// A tree of `files` under `dir/tree`, its baseline `dir/b.db` (every
/// attribute), an operator key pair and its signature: a sealed set-up.
pub struct Sealed {
    pub _tmp: tempfile::TempDir,
    pub dir: PathBuf,
    pub root: PathBuf,
    pub db: PathBuf,
    pub key: PathBuf,
    pub public: PathBuf,
}

impl Sealed {
    pub fn new(files: &[(&str, &str)]) -> Sealed {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let root = dir.join("tree");
        std::fs::create_dir(&root).unwrap();
        for (name, text) in files {
            std::fs::write(root.join(name), text).unwrap();
        }
        let rules = rules_for(&dir, &root, FULL);
        let db = dir.join("b.db");
        assert_ok(&init(&rules, &db));
        let key = dir.join("op.key");
        keygen(&key);
        let s = Sealed {
            _tmp: tmp,
            public: dir.join("op.key.pub"),
            dir,
            root,
            db,
            key,
        };
        assert_ok(&s.sign(&s.key, &s.db));
        s
    }

    pub fn sign(&self, key: &Path, db: &Path) -> Output {
        sign_with(key, db, &[])
    }

    pub fn check_with(&self, db: &Path, trust: &Path, extra: &[&str]) -> Output {
        tripseal()
            .arg("check")
            .arg("--db")
            .arg(db)
            .arg("--trust")
            .arg(trust)
            .args(extra)
            .output()
            .unwrap()
    }

    /// `check` of its baseline against its key, with `extra` flags.
    pub fn check_extra(&self, extra: &[&str]) -> Output {
        self.check_with(&self.db, &self.public, extra)
    }

    pub fn check(&self) -> Output {
        self.check_extra(&[])
    }
}

/// `tripseal verify --trust TRUST DB`.
pub fn verify(trust: &Path, db: &Path) -> Output {
    tripseal()
        .arg("verify")
        .arg("--trust")
        .arg(trust)
        .arg(db)
        .output()
        .unwrap()
}

/// A tree holding one file `a` and its own baseline `tree/b.db` (rule
/// checking `check`): tripseal's files inside what it scans.
pub fn tree_holding_its_baseline(check: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("tree");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("a"), "a").unwrap();
    let rules = rules_for(tmp.path(), &root, check);
    let db = root.join("b.db");
    assert_ok(&init(&rules, &db));
    (tmp, root, db)
}

/// `tripseal check --allow-unsigned --db DB ARGS...`: a check that skips the
/// seal, for tests about what a check reports rather than whom it trusts.
pub fn check_unsigned(db: &Path, args: &[&str]) -> Output {
    tripseal()
        .args(["check", "--allow-unsigned", "--db"])
        .arg(db)
        .args(args)
        .output()
        .unwrap()
}

/// The drift records of a `check --format json` run, by path; the run must
/// have compared (exit below 8).
pub fn drift_by_path(out: &Output) -> BTreeMap<String, Value> {
    assert!(out.status.code().is_some_and(|c| c < 8), "{}", stderr(out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    doc["drift"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["path"].as_str().unwrap().to_string(), d.clone()))
        .collect()
}

/// The events a `--format events` run printed, one JSON line each.
pub fn event_lines(out: &Output) -> Vec<Value> {
    stdout(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
