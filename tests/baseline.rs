//! The baseline file: atomic replacement, locking, and refusing what is not one.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// A tree whose scan takes seconds: one large sparse file (no disk used).
/// The paths `show --format json DB PREFIX` lists, in its order.
fn shown_paths(db: &Path, prefix: &Path) -> Vec<String> {
    let out = tripseal()
        .args(["show", "--format", "json"])
        .arg(db)
        .arg(prefix)
        .output()
        .unwrap();
    assert_ok(&out);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    doc["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap().to_string())
        .collect()
}

fn slow_tree(dir: &Path) -> PathBuf {
    let root = dir.join("slow");
    std::fs::create_dir(&root).unwrap();
    let f = std::fs::File::create(root.join("sparse.img")).unwrap();
    f.set_len(24 << 30).unwrap();
    std::fs::write(root.join("small"), b"s").unwrap();
    root
}

fn spawn_init(rules: &Path, db: &Path, force: bool) -> Child {
    let mut cmd = std::process::Command::new(bin_path());
    cmd.arg("init")
        .arg("--rules")
        .arg(rules)
        .arg("--db")
        .arg(db);
    if force {
        cmd.arg("--force");
    }
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn temporaries(db: &Path) -> Vec<PathBuf> {
    let name = db.file_name().unwrap().to_str().unwrap().to_string();
    std::fs::read_dir(db.parent().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .is_some_and(|n| n.starts_with(&format!("{name}.tmp.")))
        })
        .collect()
}

fn wait_for_temporary(db: &Path, child: &mut Child) {
    let start = Instant::now();
    while temporaries(db).is_empty() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "init ended before it was interrupted"
        );
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no temporary baseline appeared"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // Let it get well into the scan and its writes.
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.try_wait().unwrap().is_none(),
        "init ended before it was interrupted"
    );
}

#[test]
fn kill_9_during_init_leaves_the_previous_baseline_intact() {
    let tmp = tempfile::tempdir().unwrap();
    let small = tmp.path().join("small");
    std::fs::create_dir(&small).unwrap();
    std::fs::write(small.join("a"), b"first").unwrap();
    let db = tmp.path().join("b.db");
    assert_ok(&init(&rules_for(tmp.path(), &small, "[\"hash\"]"), &db));
    let before = std::fs::read(&db).unwrap();

    let slow = slow_tree(tmp.path());
    let rules = rules_for(tmp.path(), &slow, "[\"hash\"]");
    let mut child = spawn_init(&rules, &db, true);
    wait_for_temporary(&db, &mut child);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    assert_eq!(
        std::fs::read(&db).unwrap(),
        before,
        "the old baseline changed"
    );
    let e = entries(&db);
    assert_eq!(e.len(), 2, "the directory and its one file");
    assert_eq!(e[&key(&small.join("a"))]["hash"], blake3_hex(b"first"));

    // The next run is not blocked by the dead one and cleans up after it.
    assert!(!temporaries(&db).is_empty());
    std::fs::remove_file(slow.join("sparse.img")).unwrap();
    let out = init_with(&rules, &db, &["--force"]);
    assert_ok(&out);
    assert!(
        temporaries(&db).is_empty(),
        "stale temporaries left: {:?}",
        temporaries(&db)
    );
    assert!(entries(&db).contains_key(&key(&slow.join("small"))));
}

#[test]
fn a_second_init_on_the_same_baseline_is_refused_with_exit_21() {
    let tmp = tempfile::tempdir().unwrap();
    let slow = slow_tree(tmp.path());
    let rules = rules_for(tmp.path(), &slow, "[\"hash\"]");
    let db = tmp.path().join("b.db");
    let mut first = spawn_init(&rules, &db, false);
    wait_for_temporary(&db, &mut first);
    let out = init_with(&rules, &db, &["--force"]);
    first.kill().unwrap();
    first.wait().unwrap();
    assert_eq!(out.status.code(), Some(21), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("locked"), "{err}");
    assert!(err.contains("wait for the other run"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
}

#[test]
fn an_existing_baseline_is_replaced_only_with_force() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("t");
    std::fs::create_dir(&root).unwrap();
    let rules = rules_for(tmp.path(), &root, "[\"hash\"]");
    let db = tmp.path().join("b.db");
    assert_ok(&init(&rules, &db));
    let out = init(&rules, &db);
    assert_eq!(out.status.code(), Some(15));
    assert!(stderr(&out).contains("--force"), "{}", stderr(&out));
}

#[test]
fn the_summary_is_one_line_when_nobody_watches() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("t");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("f"), vec![7u8; 5000]).unwrap();
    let db = tmp.path().join("b.db");
    let out = init(&rules_for(tmp.path(), &root, "[\"hash\"]"), &db);
    assert_ok(&out);
    let s = stdout(&out);
    assert_eq!(s.lines().count(), 1, "{s}");
    assert!(s.contains("2 entries (1 files, 1 dirs"), "{s}");
    assert!(s.contains("5.0 kB hashed"), "{s}");
    assert!(
        stderr(&out).is_empty(),
        "no progress drawn to a pipe: {}",
        stderr(&out)
    );
}

#[test]
fn show_lists_the_header_and_filters_by_whole_path_components() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("t");
    for d in ["a", "ab", "a/x"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(root.join("a/x/f"), b"1").unwrap();
    std::fs::write(root.join("ab/g"), b"2").unwrap();
    std::fs::write(root.join("a-b"), b"3").unwrap();
    let db = tmp.path().join("b.db");
    assert_ok(&init(&rules_for(tmp.path(), &root, "[\"hash\"]"), &db));

    let doc = show_json(&db);
    let h = &doc["header"];
    assert_eq!(h["generation"], 1);
    assert_eq!(h["schema"], 3);
    assert_eq!(h["role"], serde_json::Value::Null);
    assert_eq!(h["entries"], 7);
    assert_eq!(h["tool_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(h["rules_digest"].as_str().unwrap().len(), 64);
    assert!(h["host"].as_str().is_some_and(|s| !s.is_empty()));
    assert_path_order(&doc["entries"]);

    let got: Vec<String> = shown_paths(&db, &root.join("a"))
        .iter()
        .map(|p| p.strip_prefix(root.to_str().unwrap()).unwrap().to_string())
        .collect();
    assert_eq!(got, ["/a", "/a/x", "/a/x/f"]);

    let out = tripseal().arg("show").arg(&db).output().unwrap();
    assert_ok(&out);
    let s = stdout(&out);
    for field in [
        "baseline",
        "host",
        "created",
        "generation",
        "tool",
        "rules",
        "entries",
    ] {
        assert!(
            s.lines().any(|l| l.starts_with(field)),
            "{field} missing:\n{s}"
        );
    }
    assert!(s.contains("7 (0 with problems)"), "{s}");
}

#[test]
fn what_is_not_a_baseline_is_refused_with_exit_24() {
    let tmp = tempfile::tempdir().unwrap();
    let text = tmp.path().join("notes.txt");
    std::fs::write(
        &text,
        "this is not a database, just text that is long enough ".repeat(20),
    )
    .unwrap();
    let other = tmp.path().join("other.sqlite");
    let status = std::process::Command::new("sqlite3")
        .arg(&other)
        .arg("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
        .status()
        .expect("sqlite3 (Debian package sqlite3) is installed by scripts/test.sh");
    assert!(status.success());
    let truncated = tmp.path().join("truncated.db");
    let root = tmp.path().join("t");
    std::fs::create_dir(&root).unwrap();
    for i in 0..200 {
        std::fs::write(root.join(format!("f{i}")), format!("{i}")).unwrap();
    }
    let good = tmp.path().join("good.db");
    assert_ok(&init(&rules_for(tmp.path(), &root, "[\"hash\"]"), &good));
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();

    for (file, says) in [
        (&text, "not an SQLite database"),
        (&other, "without tripseal's tables"),
        (&truncated, ""),
        (&tmp.path().to_path_buf(), "not a regular file"),
    ] {
        let out = tripseal().arg("show").arg(file).output().unwrap();
        assert_eq!(out.status.code(), Some(24), "{file:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains(says), "{file:?}: {err}");
        assert!(err.contains("tripseal init"), "says what to do: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }

    // A baseline from a newer tripseal.
    let newer = tmp.path().join("newer.db");
    std::fs::copy(&good, &newer).unwrap();
    let status = std::process::Command::new("sqlite3")
        .arg(&newer)
        .arg("UPDATE meta SET value = 99 WHERE key = 'schema';")
        .status()
        .unwrap();
    assert!(status.success());
    let out = tripseal().arg("show").arg(&newer).output().unwrap();
    assert_eq!(out.status.code(), Some(24));
    assert!(stderr(&out).contains("newer tripseal"), "{}", stderr(&out));

    let out = tripseal()
        .arg("show")
        .arg(tmp.path().join("missing.db"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(18), "{}", stderr(&out));
    assert!(stderr(&out).contains("tripseal init"), "{}", stderr(&out));
}

#[test]
fn bad_arguments_exit_15() {
    let out = tripseal()
        .args(["init", "--no-such-flag"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(15));
    let out = tripseal()
        .args(["init", "--var", "novalue"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(15));
    assert!(stderr(&out).contains("NAME=VALUE"), "{}", stderr(&out));
    let out = tripseal().arg("--help").output().unwrap();
    assert_ok(&out);
}

#[test]
fn an_unwritable_baseline_directory_exits_14() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("t");
    std::fs::create_dir(&root).unwrap();
    let out = init(
        &rules_for(tmp.path(), &root, "[\"hash\"]"),
        &tmp.path().join("no/such/dir/b.db"),
    );
    assert_eq!(out.status.code(), Some(14), "{}", stderr(&out));
    assert!(stderr(&out).contains("writable"), "{}", stderr(&out));
}

#[test]
fn progress_is_drawn_on_a_terminal_and_cleared_before_the_summary() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("t");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("f"), b"x").unwrap();
    let rules = rules_for(tmp.path(), &root, "[\"hash\"]");
    let cmd = format!(
        "{} init --rules {} --db {}",
        bin_path().display(),
        rules.display(),
        tmp.path().join("b.db").display()
    );
    // script(1) runs the command on a pseudo-terminal, as a person would.
    let out = std::process::Command::new("script")
        .args(["-qefc", &cmd, "/dev/null"])
        .output()
        .expect("script (Debian package bsdutils) runs");
    assert_ok(&out);
    let s = stdout(&out);
    let drawn = s.find("entries, ").expect("a progress line");
    let cleared = s.rfind("\r\x1b[2K").expect("the line is cleared");
    let summary = s.find("tripseal: baseline").expect("the summary");
    assert!(drawn < summary && cleared < summary, "{s:?}");
}

/// Rewrites a baseline this tripseal made into the table of an older
/// `schema` (1: before owner and group names; 2: before directories were
/// kept apart), the statement spelled exactly as tripseal spelled it.
fn downgrade(db: &Path, schema: i64) {
    let create = tripseal::baseline::columns::create_table(schema);
    let mut columns = vec!["CAST(d.path || e.name AS BLOB)"];
    columns.extend(
        [
            "rule",
            "attrs",
            "type",
            "size",
            "mtime_ns",
            "ctime_ns",
            "inode",
            "dev",
            "mode",
            "uid",
            "gid",
            "nlink",
            "link",
            "hash",
            "xattrs",
            "problem",
            "reason",
            "prefix_hash",
            "trusted",
        ]
        .iter(),
    );
    if schema >= 2 {
        columns.extend(["owner_name", "group_name"]);
    }
    sql(
        db,
        &format!(
            "ALTER TABLE entries RENAME TO newer; {create} INSERT INTO entries SELECT {} FROM \
             dirs d JOIN newer e ON e.dir = d.id; DROP TABLE newer; DROP TABLE dirs; \
             UPDATE meta SET value = {schema} WHERE key = 'schema'; VACUUM;",
            columns.join(", ")
        ),
    );
}

/// Baselines of schemas 1 and 2, as tripseal made them, still open, show
/// and check, and the seal over them verifies; a file whose header claims
/// another schema than its table has is refused. The tree has names that
/// sort before `/` (`b.c` beside `b/`), where the path byte order of an
/// older file and the directory order of a check's scan part.
#[test]
fn baselines_of_older_schemas_still_read_and_their_seals_verify() {
    for schema in [1, 2] {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("tree");
        std::fs::create_dir_all(root.join("b/x")).unwrap();
        std::fs::create_dir_all(root.join("python3.11")).unwrap();
        for f in ["a", "b/x/f", "b.c", "b0", "python3.11/y", "b/z"] {
            std::fs::write(root.join(f), f).unwrap();
        }
        let db = tmp.path().join("b.db");
        assert_ok(&init(&rules_for(tmp.path(), &root, FULL), &db));
        let made = entries(&db);
        downgrade(&db, schema);
        if schema == 2 {
            assert_eq!(entries(&db), made);
        }
        let key = tmp.path().join("op.key");
        keygen(&key);
        assert_ok(&sign_with(&key, &db, &[]));
        let trust = tmp.path().join("op.key.pub");
        assert_ok(&verify(&trust, &db));
        let doc = show_json(&db);
        assert_eq!(doc["header"]["schema"], schema);
        assert_path_order(&doc["entries"]);
        let check = |db: &Path| {
            tripseal()
                .args(["check", "--format", "json", "--db"])
                .arg(db)
                .arg("--trust")
                .arg(&trust)
                .output()
                .unwrap()
        };
        assert_ok(&check(&db));
        std::fs::write(root.join("b/x/f"), b"2").unwrap();
        std::fs::remove_file(root.join("b0")).unwrap();
        let out = check(&db);
        assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_path_order(&doc["drift"]);
        let drifted: Vec<_> = doc["drift"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| (d["kind"].as_str().unwrap(), d["path"].as_str().unwrap()))
            .collect();
        let at = |p: &str| root.join(p).to_str().unwrap().to_string();
        assert_eq!(
            drifted,
            [
                // Its directory's times changed with the removal.
                ("changed", root.to_str().unwrap()),
                ("changed", at("b/x/f").as_str()),
                ("removed", at("b0").as_str())
            ],
            "schema {schema}"
        );

        // A dirs table beside an older schema's entries: never read, so
        // never sealed either; refused.
        let with_dirs = tmp.path().join("with-dirs.db");
        std::fs::copy(&db, &with_dirs).unwrap();
        sql(
            &with_dirs,
            "CREATE TABLE dirs ( path BLOB PRIMARY KEY NOT NULL, id INTEGER NOT NULL ) WITHOUT ROWID;",
        );
        let out = check(&with_dirs);
        assert_eq!(out.status.code(), Some(26), "{}", stderr(&out));
        assert!(
            stderr(&out).contains(&format!(
                "its header says schema {schema}, which has no dirs table"
            )),
            "{}",
            stderr(&out)
        );

        // The header says another schema than the table's: refused before
        // the seal is even looked at.
        let other = if schema == 1 { 2 } else { 1 };
        sql(
            &db,
            &format!("UPDATE meta SET value = {other} WHERE key = 'schema'"),
        );
        let out = check(&db);
        assert_eq!(out.status.code(), Some(26), "{}", stderr(&out));
        assert!(
            stderr(&out).contains(&format!(
                "its header says schema {other}, and its entries table is not"
            )),
            "{}",
            stderr(&out)
        );
    }
}

/// The signed baseline `fixture` of tests/fixtures, copied into `tmp`,
/// and its signer's public key `key`: this tripseal computes the `digest`
/// that was signed, accepts the signature, and reads the file's `schema`.
fn signed_fixture(
    tmp: &Path,
    fixture: &str,
    key: &str,
    digest: &str,
    schema: i64,
) -> (PathBuf, PathBuf) {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let db = tmp.join(fixture);
    std::fs::copy(fixtures.join(fixture), &db).unwrap();
    let trust = fixtures.join(key);
    let out = verify(&trust, &db);
    assert_ok(&out);
    assert!(stdout(&out).contains(digest), "{}", stdout(&out));
    assert_eq!(show_json(&db)["header"]["schema"], schema);
    (db, trust)
}

/// A baseline made and signed by tripseal before schema 2 (at commit
/// e58b91c; its tree was /tmp/fx/tree): this tripseal reads it, computes the
/// digest that one signed, accepts the signature, and checks against it.
#[test]
fn a_baseline_signed_by_an_earlier_tripseal_still_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let (db, trust) = signed_fixture(
        tmp.path(),
        "schema1-signed.db",
        "schema1-operator.pub",
        "85a4aa3f7e0ef277590a8a809d907756b38cc0371f41f9b5fc320f71792c38df",
        1,
    );
    assert_eq!(entries(&db).len(), 5);
    // Checked against a seal that verified (its tree is long gone: every
    // entry removed; a drift code, not an error).
    let out = tripseal()
        .args(["check", "--db"])
        .arg(&db)
        .arg("--trust")
        .arg(&trust)
        .output()
        .unwrap();
    assert!(matches!(out.status.code(), Some(0..=7)), "{}", stderr(&out));
}

/// A role baseline made and signed by tripseal before schema 3 (its tree
/// is rebuilt here, read with `--root` as `/srv/fx2`): its seal verifies,
/// and `diff` walks it beside a new baseline of schema 3 path by path,
/// where the two files keep their rows in different orders.
#[test]
fn a_schema_2_baseline_signed_earlier_verifies_and_diffs_against_schema_3() {
    let tmp = tempfile::tempdir().unwrap();
    let (old, trust) = signed_fixture(
        tmp.path(),
        "schema2-role-signed.db",
        "schema2-operator.pub",
        "ac72060c3fbd41c65c1859accf5849e249903441fceb5f2ed0265f1ef0da0f1f",
        2,
    );

    use std::os::unix::fs::PermissionsExt;
    let tree = tmp.path().join("tree");
    for d in ["", "b", "python3", "python3.11"] {
        std::fs::create_dir_all(tree.join(d)).unwrap();
        std::fs::set_permissions(tree.join(d), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    for (f, content) in [
        ("a", "1"),
        ("b/x", "x"),
        ("b.c", "c"),
        ("b0", "0"),
        ("python3/mod.py", "m"),
        ("python3.11/y", "y"),
    ] {
        std::fs::write(tree.join(f), content).unwrap();
        std::fs::set_permissions(tree.join(f), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let rules = tmp.path().join("rules.toml");
    std::fs::write(
        &rules,
        "role = \"fixture\"\n\n[[rule]]\nname = \"tree\"\npaths = [\"/srv/fx2\", \
         \"/srv/fx2/**\"]\ncheck = [\"type\", \"mode\", \"owner\", \"group\", \"size\", \
         \"hash\"]\nseverity = \"high\"\n",
    )
    .unwrap();
    let diff = |tree: &Path| {
        let new = tmp.path().join("new.db");
        let out = tripseal()
            .args(["init", "--force", "--rules"])
            .arg(&rules)
            .arg("--db")
            .arg(&new)
            .arg("--root")
            .arg(tree)
            .args(["--as", "/srv/fx2"])
            .output()
            .unwrap();
        assert_ok(&out);
        assert_eq!(show_json(&new)["header"]["schema"], 3);
        tripseal()
            .args(["diff", "--format", "json", "--trust"])
            .arg(&trust)
            .arg(&old)
            .arg(&new)
            .output()
            .unwrap()
    };
    let out = diff(&tree);
    assert_ok(&out);
    std::fs::write(tree.join("b/x"), "changed").unwrap();
    let out = diff(&tree);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let drifted: Vec<_> = doc["drift"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap())
        .collect();
    assert_eq!(drifted, ["/srv/fx2/b/x"]);
}

#[test]
fn a_written_baseline_is_packed_full_and_leaves_nothing_beside_it() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("tree");
    // Names long enough, and directories enough, that rows arriving out
    // of path order would leave pages partly empty.
    for d in 0..40 {
        let dir = root.join(format!("package-directory-{d:03}"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..100 {
            std::fs::write(
                dir.join(format!("module_with_a_long_name_{f:04}.py")),
                format!("{d} {f}"),
            )
            .unwrap();
        }
    }
    let rules = rules_for(tmp.path(), &root, FULL);
    let db = tmp.path().join("b.db");
    assert_ok(&init(&rules, &db));
    let used = |db: &Path| {
        sql_text(
            db,
            "SELECT 100 * sum(pgsize - unused) / sum(pgsize) FROM dbstat WHERE name = 'entries'",
        )
        .trim()
        .parse::<u64>()
        .expect("sqlite3 reads dbstat")
    };
    assert!(used(&db) >= 90, "entries' pages {}% used", used(&db));
    assert_eq!(sql_text(&db, "PRAGMA freelist_count").trim(), "0");
    assert!(temporaries(&db).is_empty(), "{:?}", temporaries(&db));
    let names: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        names
            .iter()
            .all(|n| !n.to_string_lossy().contains("journal")),
        "{names:?}"
    );
    assert_eq!(sql_text(&db, "SELECT count(*) FROM entries").trim(), "4041");
}

/// Entries come in path byte order although the file keeps them by
/// directory: a directory's entries go in among its parent's, even where a
/// sibling's name continues the directory's with a byte that sorts before
/// `/` (`f100.txt`, `f100-a`, `f300 b`), and through a directory larger
/// than one read (600 entries). `show` with a prefix, and a check's drift,
/// come in the same order.
#[test]
fn entries_come_in_path_order_through_nested_and_large_directories() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("tree");
    let big = root.join("big");
    std::fs::create_dir_all(big.join("f100")).unwrap();
    std::fs::create_dir_all(big.join("f300/deeper")).unwrap();
    for i in (0..600).filter(|i| ![100, 300].contains(i)) {
        std::fs::write(big.join(format!("f{i:03}")), format!("{i}")).unwrap();
    }
    for f in [
        "f100/x",
        "f100/y",
        "f100.txt",
        "f100-a",
        "f300 b",
        "f300/deeper/z",
        "top",
    ] {
        std::fs::write(big.join(f), f).unwrap();
    }
    std::fs::write(root.join("big.c"), "c").unwrap();
    let db = tmp.path().join("b.db");
    assert_ok(&init(
        &rules_for(tmp.path(), &root, "[\"type\", \"hash\"]"),
        &db,
    ));

    let doc = show_json(&db);
    // tree, big, big.c; 598 files; f100, f300, f300/deeper; the 7 others.
    assert_eq!(doc["entries"].as_array().unwrap().len(), 3 + 598 + 3 + 7);
    assert_path_order(&doc["entries"]);

    let got = shown_paths(&db, &big.join("f100"));
    let at = |p: &str| big.join(p).to_str().unwrap().to_string();
    assert_eq!(got, [at("f100"), at("f100/x"), at("f100/y")]);

    for f in ["f300/deeper/z", "f599", "f100.txt", "f000"] {
        std::fs::write(big.join(f), "changed").unwrap();
    }
    let out = tripseal()
        .args(["check", "--allow-unsigned", "--format", "json", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let drifted: Vec<_> = doc["drift"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        drifted,
        [at("f000"), at("f100.txt"), at("f300/deeper/z"), at("f599")]
    );
}

/// A directory's path is stored once, not in every entry below it: 2,000
/// files under a 200-byte directory take well under the 200 bytes each
/// that their paths alone would.
#[test]
fn a_long_directory_path_is_stored_once() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("tree");
    let deep = root.join(["long-directory-name-"; 10].join("/"));
    std::fs::create_dir_all(&deep).unwrap();
    for i in 0..2000 {
        std::fs::write(deep.join(format!("module_{i:04}.py")), "x").unwrap();
    }
    let db = tmp.path().join("b.db");
    assert_ok(&init(
        &rules_for(tmp.path(), &root, "[\"type\", \"hash\"]"),
        &db,
    ));
    let entries = show_json(&db)["header"]["entries"].as_u64().unwrap();
    assert_eq!(entries, 2000 + 11);
    let per_entry = std::fs::metadata(&db).unwrap().len() / entries;
    assert!(
        deep.as_os_str().len() > 200 && per_entry < 150,
        "{per_entry} bytes per entry"
    );
    assert_eq!(sql_text(&db, "SELECT count(*) FROM dirs").trim(), "12");
}

/// An entry name that holds a `/` would read as a path the file's order
/// does not place where it stands: the baseline is refused (exit 24) with
/// what is wrong, never read on.
#[test]
fn an_entry_name_with_a_slash_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("tree");
    std::fs::create_dir_all(root.join("d")).unwrap();
    std::fs::write(root.join("d/a"), "a").unwrap();
    std::fs::write(root.join("b"), "b").unwrap();
    let db = tmp.path().join("b.db");
    assert_ok(&init(
        &rules_for(tmp.path(), &root, "[\"type\", \"hash\"]"),
        &db,
    ));
    let pristine = std::fs::read(&db).unwrap();
    // A name holding '/', and an empty name (a path ending in '/') below
    // the root.
    for name in ["CAST('x/y' AS BLOB)", "x''"] {
        std::fs::write(&db, &pristine).unwrap();
        sql(
            &db,
            &format!("UPDATE entries SET name = {name} WHERE name = CAST('b' AS BLOB)"),
        );
        for args in [&["show"][..], &["check", "--allow-unsigned", "--db"]] {
            let out = tripseal().args(args).arg(&db).output().unwrap();
            assert_eq!(out.status.code(), Some(24), "{}", stderr(&out));
            assert!(
                stderr(&out)
                    .contains("malformed entry: a directory and name that do not make a path"),
                "{}",
                stderr(&out)
            );
        }
    }
}
