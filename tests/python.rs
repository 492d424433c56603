//! Python's start-up hooks and bytecode, found by `check` as findings of
//! their own: a `.pth` line that executes, a new `sitecustomize.py`, and
//! bytecode compiled by the real CPython, then swapped under its untouched
//! source.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::Value;

fn python() -> String {
    std::env::var("TRIPSEAL_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// `python -m compileall` over `dir`, with `mode` (`timestamp`,
/// `checked-hash`, `unchecked-hash`).
fn compileall(dir: &Path, mode: &str) {
    let out = Command::new(python())
        .args(["-m", "compileall", "-q", "-f", "--invalidation-mode", mode])
        .arg(dir)
        .output()
        .unwrap();
    assert_ok(&out);
}

/// The one `.pyc` CPython wrote for `module` in `pkg/__pycache__`.
fn pyc_of(pkg: &Path, module: &str) -> PathBuf {
    std::fs::read_dir(pkg.join("__pycache__"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!("{module}."))
        })
        .unwrap()
}

/// `check --format json`: the drift records by path.
fn drift(db: &Path) -> std::collections::BTreeMap<String, Value> {
    let out = check_unsigned(db, &["--format", "json"]);
    drift_by_path(&out)
}

fn at(root: &Path, rel: &str) -> String {
    root.join(rel).to_string_lossy().into_owned()
}

#[test]
fn a_pth_that_executes_and_a_new_sitecustomize_are_hooks() {
    let (_tmp, root, db) = tree_holding_its_baseline(FULL);
    std::fs::write(
        root.join("paths.pth"),
        "/opt/lib\n# import os is a comment\n",
    )
    .unwrap();
    std::fs::write(
        root.join("evil.pth"),
        "/opt/lib\nimport os; os.system('id')\n",
    )
    .unwrap();
    std::fs::write(root.join("sitecustomize.py"), "print('hi')\n").unwrap();
    // A bare carriage return ends a line for Python's site module.
    std::fs::write(root.join("cr.pth"), "\u{feff}# path\rimport os\r").unwrap();
    std::fs::create_dir(root.join("usercustomize")).unwrap();
    std::fs::write(root.join("usercustomize/__init__.py"), "x = 1\n").unwrap();
    let d = drift(&db);
    assert_eq!(d[&at(&root, "cr.pth")]["finding"]["reason"], "pth-import");
    assert_eq!(
        d[&at(&root, "usercustomize/__init__.py")]["finding"]["reason"],
        "usercustomize"
    );
    assert!(
        d[&at(&root, "paths.pth")].get("finding").is_none(),
        "path lines and comments execute nothing"
    );
    let f = &d[&at(&root, "evil.pth")]["finding"];
    assert_eq!(f["type"], "fim-python-hook", "{f}");
    assert_eq!(f["reason"], "pth-import", "{f}");
    assert!(f["detail"].as_str().unwrap().contains("os.system"), "{f}");
    let f = &d[&at(&root, "sitecustomize.py")]["finding"];
    assert_eq!(f["reason"], "sitecustomize", "{f}");

    // The events: a finding of its own beside the drift, at least high.
    let out = check_unsigned(&db, &["--format", "events"]);
    let events = event_lines(&out);
    let hooks: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "fim-python-hook")
        .collect();
    assert_eq!(hooks.len(), 4, "{events:?}");
    assert!(hooks.iter().all(|e| e["severity"] == "high"), "{hooks:?}");
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "fim-file-added" && e["path"] == at(&root, "evil.pth"))
    );

    // The human report says it on a line of its own.
    let out = check_unsigned(&db, &[]);
    assert!(
        stdout(&out).contains("python   fim-python-hook: the site module executes its line"),
        "{}",
        stdout(&out)
    );
}

/// A package of two modules compiled by CPython in `mode`, and a baseline
/// of it.
fn compiled_package(mode: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let pkg = tmp.path().join("tree/pkg");
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::write(pkg.join("__init__.py"), "").unwrap();
    std::fs::write(pkg.join("a.py"), "def f():\n    return 'a'\n").unwrap();
    std::fs::write(pkg.join("b.py"), "import os\nos.system('id')\n").unwrap();
    compileall(&pkg, mode);
    let rules = rules_for(tmp.path(), &tmp.path().join("tree"), FULL);
    let db = tmp.path().join("b.db");
    assert_ok(&init(&rules, &db));
    (tmp, pkg, db)
}

#[test]
fn bytecode_swapped_under_its_source_is_a_pyc_mismatch() {
    for mode in ["timestamp", "checked-hash", "unchecked-hash"] {
        let (_tmp, pkg, db) = compiled_package(mode);
        let (a, b) = (pyc_of(&pkg, "a"), pyc_of(&pkg, "b"));
        std::fs::copy(&b, &a).unwrap();
        let d = drift(&db);
        let f = &d[&a.to_string_lossy().into_owned()]["finding"];
        assert_eq!(f["type"], "fim-pyc-mismatch", "{mode}: {d:?}");
        assert_eq!(f["reason"], "pyc-header", "{mode}: {f}");
        assert!(f["detail"].as_str().unwrap().contains("a.py"), "{f}");

        // A source edited and compiled again by CPython: both drift, and
        // the bytecode is its source's.
        std::fs::write(pkg.join("a.py"), "def f():\n    return 'A'\n").unwrap();
        compileall(&pkg, mode);
        let d = drift(&db);
        let rec = &d[&a.to_string_lossy().into_owned()];
        assert_eq!(rec["kind"], "changed", "{mode}: {d:?}");
        assert!(rec.get("finding").is_none(), "{mode}: {rec}");
    }
}

#[test]
fn bytecode_without_its_source_is_reported() {
    let (_tmp, pkg, db) = compiled_package("timestamp");
    // A legacy .pyc beside the sources: Python imports it as the module.
    std::fs::copy(pyc_of(&pkg, "b"), pkg.join("c.pyc")).unwrap();
    let d = drift(&db);
    let f = &d[&at(&pkg, "c.pyc")]["finding"];
    assert_eq!(f["type"], "fim-pyc-mismatch", "{f}");
    assert_eq!(f["reason"], "pyc-no-source", "{f}");
    assert!(
        f["detail"]
            .as_str()
            .unwrap()
            .contains("imports this bytecode"),
        "{f}"
    );
}

#[test]
fn a_pyc_that_is_a_fifo_or_a_symlink_is_never_read() {
    let (_tmp, pkg, db) = compiled_package("timestamp");
    let a = pyc_of(&pkg, "a");
    std::fs::remove_file(&a).unwrap();
    mkfifo(&a);
    let b = pyc_of(&pkg, "b");
    std::fs::remove_file(&b).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &b).unwrap();
    // Returns (a FIFO would block it for ever), with no finding on either.
    let d = drift(&db);
    for p in [&a, &b] {
        let rec = &d[&p.to_string_lossy().into_owned()];
        assert!(rec.get("finding").is_none(), "{rec}");
    }
}
