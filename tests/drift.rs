//! `tripseal check`, `update` and `diff` on real trees: every attribute on its
//! own, additions, removals, type changes, growing logs, `--fast`, exit codes.

mod common;

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use common::*;
use serde_json::Value;

/// A temporary tree under `root`, with a baseline of it at `db`.
struct Tree {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    root: PathBuf,
    db: PathBuf,
    rules: PathBuf,
}

/// One rule, every attribute, for what is directly in `root`.
fn files_rules(root: &Path) -> String {
    format!(
        "[[rule]]\nname = \"files\"\npaths = [\"{}/*\"]\ncheck = {FULL}\nseverity = \"high\"\n",
        root.display()
    )
}

impl Tree {
    /// Files selected by `root/*` with every attribute checked (the directory
    /// itself is not selected, so renames in it do not show up as its drift).
    fn new(build: impl FnOnce(&Path)) -> Tree {
        Tree::with_rules(build, files_rules)
    }

    fn with_rules(build: impl FnOnce(&Path), rules: impl FnOnce(&Path) -> String) -> Tree {
        let t = Tree::unbaselined(build, rules);
        t.baseline();
        t
    }

    /// As [`Tree::new`], with no baseline yet ([`Tree::baseline`]).
    fn unbaselined(build: impl FnOnce(&Path), rules: impl FnOnce(&Path) -> String) -> Tree {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let root = dir.join("tree");
        std::fs::create_dir(&root).unwrap();
        build(&root);
        let rules = write_rules(&dir, &rules(&root));
        let db = dir.join("b.db");
        Tree {
            _tmp: tmp,
            dir,
            root,
            db,
            rules,
        }
    }

    fn baseline(&self) {
        assert_ok(&init(&self.rules, &self.db));
    }

    fn check(&self, extra: &[&str]) -> std::process::Output {
        tripseal()
            .args(["check", "--allow-unsigned"])
            .arg("--db")
            .arg(&self.db)
            .args(extra)
            .output()
            .unwrap()
    }

    /// Exit code and the JSON report.
    fn check_json(&self, extra: &[&str]) -> (i32, Value) {
        let mut args = vec!["--format", "json"];
        args.extend_from_slice(extra);
        let out = self.check(&args);
        let code = out.status.code().expect("exited");
        assert!(code < 8, "check failed: {code}: {}", stderr(&out));
        let doc = serde_json::from_slice(&out.stdout).expect("one JSON document");
        (code, doc)
    }

    fn p(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }
}

fn drift_of<'a>(doc: &'a Value, path: &Path) -> &'a Value {
    doc["drift"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| entry_path(d) == key(path))
        .unwrap_or_else(|| panic!("no drift for {path:?} in {doc}"))
}

fn changed_attrs(d: &Value) -> BTreeSet<String> {
    d["changes"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn mtime(path: &Path) -> SystemTime {
    std::fs::symlink_metadata(path).unwrap().modified().unwrap()
}

fn set_mtime(path: &Path, t: SystemTime) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

/// Lets ctime move on file systems with coarse timestamps.
fn tick() {
    std::thread::sleep(Duration::from_millis(20));
}

/// Past the second before a baseline in which --fast trusts no stat fields
/// (a file changed in the tick it was read in can show the fields it was
/// read with): what a tree made just now needs for --fast to skip anything.
fn settle() {
    std::thread::sleep(Duration::from_millis(1100));
}

#[test]
fn nothing_changed_is_silent_and_exits_0() {
    // The cron case: a signed baseline, checked against the trust store.
    let t = Tree::new(|r| std::fs::write(r.join("a"), b"a").unwrap());
    let key = t.dir.join("op.key");
    keygen(&key);
    assert_ok(
        &tripseal()
            .arg("sign")
            .arg("--key")
            .arg(&key)
            .arg(&t.db)
            .output()
            .unwrap(),
    );
    let check = |extra: &[&str]| {
        tripseal()
            .arg("check")
            .arg("--db")
            .arg(&t.db)
            .arg("--trust")
            .arg(t.dir.join("op.key.pub"))
            .args(extra)
            .output()
            .unwrap()
    };
    let out = check(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(out.stdout.is_empty(), "{}", stdout(&out));
    assert!(out.stderr.is_empty(), "{}", stderr(&out));
    let out = check(&["-v"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout(&out).starts_with(
            "tripseal check: 0 added, 0 removed, 0 changed, 0 errors; 1 entries scanned"
        )
    );
}

#[test]
fn warnings_are_said_whatever_the_log_level() {
    let t = Tree::new(|r| std::fs::write(r.join("a"), b"a").unwrap());
    let check = |env: Option<&str>, extra: &[&str]| {
        let mut cmd = tripseal();
        cmd.arg("check")
            .arg("--db")
            .arg(&t.db)
            .arg("--allow-unsigned")
            .args(extra)
            .env_remove("TRIPSEAL_LOG");
        if let Some(level) = env {
            cmd.env("TRIPSEAL_LOG", level);
        }
        cmd.output().unwrap()
    };
    let unverified = "tripseal: warning: --allow-unsigned: the seal of";
    // Neither -q nor TRIPSEAL_LOG silences the warning that nothing was
    // verified.
    for (env, extra) in [(None, &[][..]), (None, &["-q"][..]), (Some("off"), &[][..])] {
        let out = check(env, extra);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{env:?} {extra:?}: {}",
            stderr(&out)
        );
        assert!(
            stderr(&out).contains(unverified),
            "{env:?} {extra:?}: {}",
            stderr(&out)
        );
    }
    // A level that is none is said, and changes nothing else.
    let out = check(Some("loud"), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("TRIPSEAL_LOG=loud is not a level; give info, debug or trace"),
        "{err}"
    );
    assert!(err.contains(unverified), "{err}");
    // -vv: what the check works on.
    let out = check(None, &["-vv"]);
    assert!(
        stderr(&out).contains("tripseal: debug: check "),
        "{}",
        stderr(&out)
    );
}

#[test]
fn each_attribute_changed_on_its_own() {
    type Change = fn(&Path, &Path);
    let cases: [(&str, Change, &[&str]); 10] = [
        (
            "mode",
            |f, _| std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o600)).unwrap(),
            &["mode", "ctime"],
        ),
        (
            "uid",
            |f, _| std::os::unix::fs::lchown(f, Some(1234), None).unwrap(),
            &["uid", "ctime"],
        ),
        (
            "gid",
            |f, _| std::os::unix::fs::lchown(f, None, Some(4321)).unwrap(),
            &["gid", "ctime"],
        ),
        (
            "size",
            |f, _| {
                let t = mtime(f);
                std::fs::write(f, b"content+").unwrap();
                set_mtime(f, t);
            },
            &["size", "hash", "ctime"],
        ),
        (
            "mtime",
            |f, _| {
                set_mtime(
                    f,
                    SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000),
                )
            },
            &["mtime", "ctime"],
        ),
        (
            "ctime",
            |f, _| std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o644)).unwrap(),
            &["ctime"],
        ),
        (
            "inode (replace by rename)",
            |f, dir| {
                let t = mtime(f);
                let tmp = dir.join("replacement");
                std::fs::write(&tmp, b"content").unwrap();
                std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644)).unwrap();
                set_mtime(&tmp, t);
                std::fs::rename(&tmp, f).unwrap();
            },
            &["inode", "ctime"],
        ),
        (
            "nlink (a new hard link)",
            |f, dir| std::fs::hard_link(f, dir.join("second-name")).unwrap(),
            &["nlink", "ctime"],
        ),
        (
            "content with the same size and mtime",
            |f, _| {
                let t = mtime(f);
                std::fs::write(f, b"CONTENT").unwrap();
                set_mtime(f, t);
            },
            &["hash", "ctime"],
        ),
        (
            "xattrs",
            |f, _| {
                let ok = std::process::Command::new("setfattr")
                    .args(["-n", "user.mark", "-v", "1"])
                    .arg(f)
                    .status()
                    .unwrap()
                    .success();
                assert!(ok, "setfattr");
            },
            &["xattrs", "ctime"],
        ),
    ];
    // Every tree settled before its baseline, so that --fast below would
    // trust the entry were it not for the change (one wait for them all).
    let trees: Vec<Tree> = cases
        .iter()
        .map(|_| {
            Tree::unbaselined(
                |r| {
                    std::fs::write(r.join("f"), b"content").unwrap();
                    std::fs::set_permissions(r.join("f"), std::fs::Permissions::from_mode(0o644))
                        .unwrap();
                },
                files_rules,
            )
        })
        .collect();
    settle();
    for ((what, change, expected), t) in cases.into_iter().zip(trees) {
        t.baseline();
        // Unchanged, --fast trusts it: what follows shows the change is seen.
        let (code, doc) = t.check_json(&["--fast", "--reread", "0"]);
        assert_eq!(
            (code, &doc["summary"]["trusted_unchanged"]),
            (0, &1.into()),
            "{what}"
        );
        tick();
        change(&t.p("f"), &t.dir);
        let (code, doc) = t.check_json(&[]);
        assert_eq!(code, 4, "{what}: {doc}");
        assert_eq!(doc["drift"].as_array().unwrap().len(), 1, "{what}: {doc}");
        let d = drift_of(&doc, &t.p("f"));
        assert_eq!(d["kind"], "changed", "{what}");
        assert_eq!(changed_attrs(d), set(expected), "{what}: {d}");

        // --fast catches it too: every one of these moves ctime.
        let (code, doc) = t.check_json(&["--fast"]);
        assert_eq!(code, 4, "--fast, {what}: {doc}");
        assert_eq!(
            changed_attrs(drift_of(&doc, &t.p("f"))),
            set(expected),
            "--fast, {what}"
        );
        assert_eq!(doc["summary"]["trusted_unchanged"], 0, "{what}");
    }
}

#[test]
fn a_symlink_retargeted() {
    let t = Tree::new(|r| symlink("aa", r.join("l")).unwrap());
    tick();
    // Retargeted atomically, the way `ln -sfn` on a temporary and `mv -T` do:
    // the old link still exists when the new one is made, so its inode differs.
    symlink("bb", t.dir.join("l.new")).unwrap();
    std::fs::rename(t.dir.join("l.new"), t.p("l")).unwrap();
    let (code, doc) = t.check_json(&[]);
    assert_eq!(code, 4);
    let d = drift_of(&doc, &t.p("l"));
    assert_eq!(
        changed_attrs(d),
        set(&["link", "inode", "mtime", "ctime"]),
        "{d}"
    );
    assert_eq!(
        d["changes"]["link"],
        serde_json::json!({"old": "aa", "new": "bb"})
    );
}

#[test]
fn additions_removals_and_type_changes() {
    let t = Tree::new(|r| {
        for name in ["stays", "goes", "becomes-dir", "becomes-link"] {
            std::fs::write(r.join(name), name).unwrap();
        }
    });
    std::fs::write(t.p("new-file"), b"n").unwrap();
    std::fs::create_dir(t.p("new-dir")).unwrap();
    std::fs::remove_file(t.p("goes")).unwrap();
    std::fs::remove_file(t.p("becomes-dir")).unwrap();
    std::fs::create_dir(t.p("becomes-dir")).unwrap();
    std::fs::remove_file(t.p("becomes-link")).unwrap();
    symlink("stays", t.p("becomes-link")).unwrap();
    let (code, doc) = t.check_json(&[]);
    assert_eq!(code, 7, "{doc}");
    let s = &doc["summary"];
    assert_eq!(
        (
            s["added"].as_u64(),
            s["removed"].as_u64(),
            s["changed"].as_u64()
        ),
        (Some(2), Some(1), Some(2))
    );
    assert_eq!(drift_of(&doc, &t.p("new-file"))["kind"], "added");
    assert_eq!(drift_of(&doc, &t.p("new-dir"))["type"], "dir");
    assert_eq!(drift_of(&doc, &t.p("goes"))["kind"], "removed");
    let d = drift_of(&doc, &t.p("becomes-dir"));
    assert_eq!(
        d["changes"]["type"],
        serde_json::json!({"old": "file", "new": "dir"})
    );
    assert!(
        d["changes"].get("hash").is_none(),
        "content is not compared across types: {d}"
    );
    let d = drift_of(&doc, &t.p("becomes-link"));
    assert_eq!(
        d["changes"]["type"],
        serde_json::json!({"old": "file", "new": "symlink"})
    );
    assert_path_order(&doc["drift"]);
}

#[test]
fn exit_codes_for_each_mix() {
    type Mutate = fn(&Path);
    let cases: [(Mutate, i32); 7] = [
        (|_| {}, 0),
        (|r| std::fs::write(r.join("new"), b"n").unwrap(), 1),
        (|r| std::fs::remove_file(r.join("a")).unwrap(), 2),
        (|r| std::fs::write(r.join("b"), b"bb").unwrap(), 4),
        (
            |r| {
                std::fs::write(r.join("new"), b"n").unwrap();
                std::fs::remove_file(r.join("a")).unwrap();
            },
            3,
        ),
        (
            |r| {
                std::fs::write(r.join("new"), b"n").unwrap();
                std::fs::write(r.join("b"), b"bb").unwrap();
            },
            5,
        ),
        (
            |r| {
                std::fs::remove_file(r.join("a")).unwrap();
                std::fs::write(r.join("b"), b"bb").unwrap();
            },
            6,
        ),
    ];
    for (mutate, expected) in cases {
        let t = Tree::new(|r| {
            std::fs::write(r.join("a"), b"a").unwrap();
            std::fs::write(r.join("b"), b"b").unwrap();
        });
        mutate(&t.root);
        let out = t.check(&[]);
        assert_eq!(out.status.code(), Some(expected), "{}", stdout(&out));
        assert_eq!(out.stdout.is_empty(), expected == 0);
    }
}

#[test]
fn growing_logs_may_only_grow() {
    let build = |r: &Path| {
        std::fs::write(r.join("worker.log"), b"line one\nline two\n").unwrap();
    };
    let rules = |r: &Path| {
        format!(
            "[[rule]]\nname = \"logs\"\npaths = [\"{}/*.log\"]\ncheck = [\"type\", \"mode\", \"uid\", \"gid\", \"inode\", \"growing\"]\nseverity = \"medium\"\n",
            r.display()
        )
    };
    let append = |f: &Path, s: &[u8]| {
        use std::io::Write;
        std::fs::OpenOptions::new()
            .append(true)
            .open(f)
            .unwrap()
            .write_all(s)
            .unwrap();
    };

    let t = Tree::with_rules(build, rules);
    append(&t.p("worker.log"), b"line three\n");
    let out = t.check(&[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "appending is not drift: {}",
        stdout(&out)
    );

    let t = Tree::with_rules(build, rules);
    std::fs::File::options()
        .write(true)
        .open(t.p("worker.log"))
        .unwrap()
        .set_len(9)
        .unwrap();
    let (code, doc) = t.check_json(&[]);
    assert_eq!(code, 4);
    let c = &drift_of(&doc, &t.p("worker.log"))["changes"]["growing"];
    assert_eq!(c["note"], "truncated");
    assert_eq!(
        (c["old"]["size"].as_u64(), c["new"]["size"].as_u64()),
        (Some(18), Some(9))
    );

    // Edited in the middle, same size, then appended to: still caught.
    let t = Tree::with_rules(build, rules);
    let f = t.p("worker.log");
    std::fs::write(&f, b"line ONE\nline two\n").unwrap();
    append(&f, b"line three\n");
    let (code, doc) = t.check_json(&[]);
    assert_eq!(code, 4);
    assert_eq!(
        drift_of(&doc, &f)["changes"]["growing"]["note"],
        "rewritten"
    );
    let out = t.check(&[]);
    assert!(stdout(&out).contains("(rewritten)"), "{}", stdout(&out));
}

#[test]
fn fast_trusts_unchanged_stat_and_says_so() {
    let t = Tree::new(|r| {
        for i in 0..20 {
            std::fs::write(r.join(format!("f{i}")), format!("{i}")).unwrap();
        }
    });
    // Made in the second before the baseline: nothing trusted yet.
    let (code, doc) = t.check_json(&["--fast", "--reread", "0"]);
    assert_eq!(code, 0);
    assert_eq!(doc["summary"]["trusted_unchanged"], 0, "{doc}");
    // Settled, and the next generation made: every entry trusted.
    settle();
    let updated = tripseal()
        .args(["update", "--db"])
        .arg(&t.db)
        .output()
        .unwrap();
    assert_ok(&updated);
    let (code, doc) = t.check_json(&["--fast", "--reread", "0"]);
    assert_eq!(code, 0);
    assert_eq!(doc["summary"]["fast"], true);
    assert_eq!(doc["summary"]["trusted_unchanged"], 20);
    assert_eq!(doc["summary"]["reread"], 0);
    // A content change that moves ctime is caught; only that entry is re-read.
    tick();
    std::fs::write(t.p("f3"), b"X").unwrap();
    let (code, doc) = t.check_json(&["--fast", "--reread", "0%"]);
    assert_eq!(code, 4);
    assert_eq!(doc["summary"]["trusted_unchanged"], 19);
    assert!(changed_attrs(drift_of(&doc, &t.p("f3"))).contains("hash"));
    let out = t.check(&["--fast", "--reread", "0"]);
    assert!(
        stdout(&out).contains("--fast: the content of 19 entries"),
        "{}",
        stdout(&out)
    );
    // The share re-reads entries whatever their stat fields say: at 100%,
    // every one whose stat matched.
    let (_, doc) = t.check_json(&["--fast", "--reread", "100"]);
    assert_eq!(doc["summary"]["trusted_unchanged"], 0);
    assert_eq!(doc["summary"]["reread"], 19, "{doc}"); // f3 drifted
    let out = t.check(&["--fast", "--reread", "101"]);
    assert_eq!(out.status.code(), Some(15), "{}", stderr(&out));
    assert!(stderr(&out).contains("not a share from 0 to 100 percent"));
}

#[test]
fn check_uses_the_rules_stored_in_the_baseline() {
    let t = Tree::new(|r| std::fs::write(r.join("secret.key"), b"k").unwrap());
    // An intruder narrows the rules file on the disk, then edits the key.
    std::fs::write(
        &t.rules,
        "[[rule]]\nname = \"nothing\"\npaths = [\"/nonexistent\"]\ncheck = [\"hash\"]\n",
    )
    .unwrap();
    std::fs::write(t.p("secret.key"), b"evil").unwrap();
    let (code, doc) = t.check_json(&[]);
    assert_eq!(code, 4, "{doc}");
    assert_eq!(drift_of(&doc, &t.p("secret.key"))["rule"], "files");
}

#[test]
fn update_accepts_the_present_as_the_next_generation() {
    let t = Tree::new(|r| std::fs::write(r.join("a"), b"a").unwrap());
    std::fs::write(t.p("a"), b"changed").unwrap();
    std::fs::write(t.p("b"), b"new").unwrap();
    let out = tripseal()
        .arg("update")
        .arg("--db")
        .arg(&t.db)
        .output()
        .unwrap();
    assert_ok(&out);
    let s = stdout(&out);
    assert!(
        s.starts_with("tripseal update: 1 added, 0 removed, 1 changed"),
        "{s}"
    );
    assert!(s.contains("accepted as generation 2"), "{s}");
    assert_eq!(t.check(&[]).status.code(), Some(0));
    assert_eq!(show_json(&t.db)["header"]["generation"], 2);
    let prev = t.dir.join("b.db.prev");
    assert_eq!(show_json(&prev)["header"]["generation"], 1);

    // The two generations, as an operator reviews them.
    let out = tripseal()
        .args(["diff", "--allow-unsigned"])
        .arg(&prev)
        .arg(&t.db)
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["summary"]["new_generation"], 2);
    assert_eq!(drift_of(&doc, &t.p("b"))["kind"], "added");
    let out = tripseal()
        .args(["diff", "--allow-unsigned"])
        .arg(&t.db)
        .arg(&t.db)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());

    // New rules take effect through update --rules.
    let narrower = write_rules(
        &t.dir,
        &format!(
            "[[rule]]\nname = \"only-a\"\npaths = [\"{}/a\"]\ncheck = [\"hash\"]\n",
            t.root.display()
        ),
    );
    let out = tripseal()
        .arg("update")
        .arg("--db")
        .arg(&t.db)
        .arg("--rules")
        .arg(&narrower)
        .output()
        .unwrap();
    assert_ok(&out);
    assert!(stdout(&out).contains("1 removed"), "{}", stdout(&out));
    std::fs::write(t.p("b"), b"now unwatched").unwrap();
    assert_eq!(t.check(&[]).status.code(), Some(0));
}

#[test]
fn update_refuses_a_scan_with_unreadable_entries_unless_accepted() {
    use std::os::unix::fs::chown;
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "this test runs update as nobody, from root"
    );
    let t = Tree::new(|r| {
        std::fs::write(r.join("readable"), b"r").unwrap();
        std::fs::write(r.join("root-only"), b"secret").unwrap();
    });
    // Everything belongs to nobody but one file nobody may read.
    let nobody = Some(65534);
    for p in [
        t.dir.clone(),
        t.root.clone(),
        t.db.clone(),
        t.dir.join("b.db.lock"),
        t.p("readable"),
    ] {
        chown(&p, nobody, nobody).unwrap();
    }
    std::fs::set_permissions(t.p("root-only"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let bin = t.dir.join("tripseal");
    std::fs::copy(bin_path(), &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let update = |extra: &[&str]| {
        std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&bin)
            .arg("update")
            .arg("--db")
            .arg(&t.db)
            .args(extra)
            .output()
            .unwrap()
    };
    let out = update(&[]);
    assert_eq!(out.status.code(), Some(18), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("unreadable") && err.contains("root-only"),
        "{err}"
    );
    assert!(err.contains("--accept-errors"), "{err}");
    assert_eq!(
        show_json(&t.db)["header"]["generation"],
        1,
        "nothing was written"
    );
    assert!(!t.dir.join("b.db.prev").exists());

    let out = update(&["--accept-errors"]);
    assert_ok(&out);
    let doc = show_json(&t.db);
    assert_eq!(doc["header"]["generation"], 2);
    let entry = doc["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| entry_path(e) == key(&t.p("root-only")))
        .unwrap();
    assert_eq!(entry["problem"]["kind"], "unreadable");
}

#[test]
fn names_in_reports_are_exact_in_json_and_escaped_for_people() {
    let t = Tree::new(|_| {});
    std::fs::write(t.root.join(OsStr::from_bytes(b"new-\xff-\x1b[31m")), b"x").unwrap();
    let (code, doc) = t.check_json(&[]);
    assert_eq!(code, 1);
    let d = &doc["drift"][0];
    assert_eq!(
        entry_path(d),
        key(&t.root.join(OsStr::from_bytes(b"new-\xff-\x1b[31m")))
    );
    assert!(d["path"].as_str().unwrap().ends_with("new-\\xff-\\x1b[31m"));
    let out = t.check(&[]);
    assert!(!out.stdout.contains(&0x1b));
    assert!(stdout(&out).contains("new-\\xff-\\x1b[31m"));
}

#[test]
fn check_refuses_what_is_not_a_baseline() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tripseal()
        .args(["check", "--allow-unsigned"])
        .arg("--db")
        .arg(tmp.path().join("none.db"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(18));
    std::fs::write(
        tmp.path().join("text.db"),
        "not a database at all, only text ".repeat(40),
    )
    .unwrap();
    let out = tripseal()
        .args(["check", "--allow-unsigned"])
        .arg("--db")
        .arg(tmp.path().join("text.db"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(24));
    let out = tripseal()
        .args(["diff", "--allow-unsigned"])
        .arg(tmp.path().join("text.db"))
        .arg(tmp.path().join("none.db"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(24));
}

#[test]
fn a_baseline_inside_the_watched_tree_never_reports_itself() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("tree");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("a"), b"a").unwrap();
    let rules = rules_for(tmp.path(), &root, "[\"type\", \"size\", \"hash\"]");
    let db = root.join("state.db");
    assert_ok(&init(&rules, &db));
    let check = || {
        tripseal()
            .args(["check", "--allow-unsigned", "--format", "json", "--db"])
            .arg(&db)
            .output()
            .unwrap()
    };
    // The snapshot and the lock file live beside the baseline, in the tree.
    let out = check();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<String> = doc["drift"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap().to_string())
        .collect();
    assert!(names.iter().all(|n| !n.contains("state.db")), "{names:?}");
    // update adds state.db.prev; neither it nor the new baseline is recorded.
    assert_ok(
        &tripseal()
            .arg("update")
            .arg("--db")
            .arg(&db)
            .output()
            .unwrap(),
    );
    let out = check();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = doc["drift"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap())
        .collect();
    assert!(names.iter().all(|n| !n.contains("state.db")), "{names:?}");
    assert!(
        !show_json(&db)["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["path"].as_str().unwrap().contains("state.db")),
        "the baseline recorded its own files"
    );
    assert!(
        std::fs::read_dir(&root)
            .unwrap()
            .flatten()
            .all(|e| { !e.file_name().to_string_lossy().contains(".check.") }),
        "snapshot left behind"
    );
}

/// `trusted` means "this check's own --fast scan did not read it": in a
/// candidate baseline under review it is data an intruder may have set, so
/// that the reference's hash covered for a changed one. diff ignores it.
#[test]
fn diff_ignores_a_trusted_flag_forged_into_the_candidate() {
    let t = Tree::new(|r| std::fs::write(r.join("tasks.py"), b"good").unwrap());
    let candidate = t.dir.join("candidate.db");
    std::fs::copy(&t.db, &candidate).unwrap();
    let path = t.p("tasks.py");
    sql(
        &candidate,
        &format!(
            "UPDATE entries SET hash = zeroblob(32), trusted = 1 WHERE {}",
            row_of(&path)
        ),
    );
    let out = tripseal()
        .args(["diff", "--allow-unsigned", "--format", "json"])
        .arg(&t.db)
        .arg(&candidate)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        drift_of(&doc, &path)["changes"]["hash"]["new"],
        "0".repeat(64),
        "{doc}"
    );
}
