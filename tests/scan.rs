//! `tripseal init` on real trees with every awkward kind of entry.

mod common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use common::*;

#[test]
fn every_kind_of_entry_is_recorded_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("tree");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("plain.txt"), b"hello\n").unwrap();
    std::fs::write(root.join("empty"), b"").unwrap();
    std::fs::create_dir(root.join("sub")).unwrap();
    std::fs::write(root.join("sub/a.py"), b"print(1)\n").unwrap();
    // Hard links: two names, one inode.
    std::fs::hard_link(root.join("sub/a.py"), root.join("hard.py")).unwrap();
    // Links: dangling, loops, a directory loop, and one pointing outside.
    symlink("does-not-exist", root.join("dangling")).unwrap();
    symlink("loop-b", root.join("loop-a")).unwrap();
    symlink("loop-a", root.join("loop-b")).unwrap();
    symlink(".", root.join("sub/self")).unwrap();
    symlink("/etc", root.join("outside")).unwrap();
    // Special files: never opened for reading.
    mkfifo(&root.join("fifo"));
    let _socket = std::os::unix::net::UnixListener::bind(root.join("sock")).unwrap();
    // Names an intruder would choose.
    let weird: [&[u8]; 4] = [
        b"not-utf8-\xff\xfe",
        b"new\nline",
        b"esc-\x1b[31mred",
        "bidi-\u{202e}yp.txt".as_bytes(),
    ];
    for name in weird {
        std::fs::write(root.join(OsStr::from_bytes(name)), name).unwrap();
    }
    // A path close to PATH_MAX (4096): nested 200-byte directory names.
    let mut deep = root.clone();
    while deep.as_os_str().len() + 201 + 40 < 4096 {
        deep.push("d".repeat(200));
    }
    std::fs::create_dir_all(&deep).unwrap();
    let long_file = deep.join("f".repeat(4095 - deep.as_os_str().len() - 1));
    std::fs::write(&long_file, b"deep").unwrap();
    assert!(long_file.as_os_str().len() >= 4090);

    let rules = rules_for(tmp.path(), &root, FULL);
    let out = init(&rules, &tmp.path().join("b.db"));
    assert_ok(&out);
    let e = entries(&tmp.path().join("b.db"));

    let get = |p: &Path| {
        e.get(&key(p))
            .unwrap_or_else(|| panic!("{p:?} not recorded"))
    };
    let plain = get(&root.join("plain.txt"));
    assert_eq!(plain["type"], "file");
    assert_eq!(plain["hash"], blake3_hex(b"hello\n"));
    assert_eq!(plain["size"], 6);
    assert_eq!(plain["mode"], "0644");
    assert_eq!(get(&root.join("empty"))["hash"], blake3_hex(b""));
    assert_eq!(get(&root.join("sub"))["type"], "dir");

    let (a, h) = (get(&root.join("sub/a.py")), get(&root.join("hard.py")));
    assert_eq!(a["inode"], h["inode"]);
    assert_eq!(a["nlink"], 2);
    assert_eq!(h["hash"], blake3_hex(b"print(1)\n"));

    for (name, target) in [
        ("dangling", "does-not-exist"),
        ("loop-a", "loop-b"),
        ("loop-b", "loop-a"),
        ("sub/self", "."),
        ("outside", "/etc"),
    ] {
        let l = get(&root.join(name));
        assert_eq!(l["type"], "symlink", "{name}");
        assert_eq!(l["link"], target, "{name}");
        assert!(l.get("hash").is_none(), "{name} must not be followed");
        assert!(l.get("problem").is_none(), "{name}: {l}");
    }
    // Nothing was recorded through the links.
    assert!(
        e.keys()
            .all(|k| !k.starts_with(&key(&root.join("outside/"))))
    );
    assert!(!e.contains_key(&key(&root.join("sub/self/a.py"))));

    assert_eq!(get(&root.join("fifo"))["type"], "fifo");
    assert!(get(&root.join("fifo")).get("hash").is_none());
    assert_eq!(get(&root.join("sock"))["type"], "socket");

    for name in weird {
        let entry = get(&root.join(OsStr::from_bytes(name)));
        assert_eq!(
            entry["hash"],
            blake3_hex(name),
            "{:?}",
            String::from_utf8_lossy(name)
        );
    }
    // Not UTF-8: escaped text plus the exact bytes.
    let bad = get(&root.join(OsStr::from_bytes(b"not-utf8-\xff\xfe")));
    assert!(
        bad["path"]
            .as_str()
            .unwrap()
            .ends_with("not-utf8-\\xff\\xfe")
    );
    assert!(bad.get("path_bytes").is_some());

    let long = get(&long_file);
    assert_eq!(long["hash"], blake3_hex(b"deep"));
    assert!(
        e.values().all(|v| v.get("problem").is_none()),
        "no entry has a problem"
    );
}

#[test]
fn devices_are_recorded_by_metadata_and_never_read() {
    // /dev/zero would never reach end of file, /dev/null would hash as empty:
    // only metadata may be recorded. A read would hang until the timeout.
    let tmp = tempfile::tempdir().unwrap();
    let rules = write_rules(
        tmp.path(),
        "[[rule]]\nname = \"devices\"\npaths = [\"/dev/zero\", \"/dev/null\", \"/dev/urandom\"]\ncheck = [\"type\", \"mode\", \"hash\"]\n",
    );
    let out = init(&rules, &tmp.path().join("b.db"));
    assert_ok(&out);
    let e = entries(&tmp.path().join("b.db"));
    for dev in ["/dev/zero", "/dev/null", "/dev/urandom"] {
        let d = &e[dev.as_bytes()];
        assert_eq!(d["type"], "char", "{dev}");
        assert!(d.get("hash").is_none(), "{dev} was read");
        assert!(d.get("problem").is_none(), "{dev}: {d}");
    }
}

#[test]
fn names_are_escaped_on_the_terminal() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("tree");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join(OsStr::from_bytes(b"esc-\x1b[2J-\x07")), b"x").unwrap();
    std::fs::write(root.join("line\nfeed"), b"x").unwrap();
    std::fs::write(root.join(OsStr::from_bytes(b"bad-\xff")), b"x").unwrap();
    std::fs::write(root.join("rlo-\u{202e}fdp.exe"), b"x").unwrap();
    let rules = rules_for(tmp.path(), &root, "[\"hash\"]");
    let db = tmp.path().join("b.db");
    assert_ok(&init(&rules, &db));
    let out = tripseal().arg("show").arg(&db).output().unwrap();
    assert_ok(&out);
    let text = &out.stdout;
    assert!(!text.contains(&0x1b), "raw ESC reached the terminal");
    assert!(!text.contains(&0x07), "raw BEL reached the terminal");
    assert!(
        !text.windows(3).any(|w| w == "\u{202e}".as_bytes()),
        "raw RLO"
    );
    assert!(std::str::from_utf8(text).is_ok(), "output is valid UTF-8");
    let s = stdout(&out);
    assert!(s.contains("esc-\\x1b[2J-\\x07"), "{s}");
    assert!(s.contains("line\\x0afeed"), "{s}");
    assert!(s.contains("bad-\\xff"), "{s}");
    assert!(s.contains("rlo-\\u{202e}fdp.exe"), "{s}");
    // One line per entry: the newline in a name did not split a line.
    assert_eq!(s.lines().filter(|l| l.contains("/tree/")).count(), 4, "{s}");
}

#[test]
fn unreadable_files_are_recorded_with_their_reason_and_the_scan_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let root = tmp.path().join("tree");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("secret"), b"top secret").unwrap();
    std::fs::set_permissions(root.join("secret"), std::fs::Permissions::from_mode(0o000)).unwrap();
    std::fs::create_dir(root.join("closed")).unwrap();
    std::fs::write(root.join("closed/inside"), b"x").unwrap();
    std::fs::set_permissions(root.join("closed"), std::fs::Permissions::from_mode(0o000)).unwrap();
    std::fs::write(root.join("open"), b"readable").unwrap();
    let rules = rules_for(tmp.path(), &root, "[\"type\", \"mode\", \"hash\"]");
    let db = tmp.path().join("b.db");

    // Root reads everything: run the binary as nobody when we are root, from
    // a copy nobody can reach (the checkout may sit under a private home).
    let mut cmd = if unsafe { libc::geteuid() } == 0 {
        let bin = tmp.path().join("tripseal");
        std::fs::copy(bin_path(), &bin).unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut c = std::process::Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"]);
        c.arg(bin);
        c
    } else {
        std::process::Command::new(bin_path())
    };
    let out = cmd
        .arg("init")
        .arg("--rules")
        .arg(&rules)
        .arg("--db")
        .arg(&db)
        .output()
        .unwrap();
    assert_ok(&out);
    let err = stderr(&out);
    assert!(
        err.contains("unreadable") && err.contains("/tree/secret"),
        "{err}"
    );
    assert!(stdout(&out).contains("2 with problems"), "{}", stdout(&out));

    let e = entries(&db);
    let secret = &e[&key(&root.join("secret"))];
    assert_eq!(secret["problem"]["kind"], "unreadable");
    assert!(
        secret["problem"]["reason"]
            .as_str()
            .unwrap()
            .contains("Permission denied")
    );
    // Metadata is still recorded, the hash is not.
    assert_eq!(secret["mode"], "0000");
    assert!(secret.get("hash").is_none());
    let closed = &e[&key(&root.join("closed"))];
    assert_eq!(closed["type"], "dir");
    assert_eq!(closed["problem"]["kind"], "unreadable");
    assert!(
        closed["problem"]["reason"]
            .as_str()
            .unwrap()
            .contains("cannot list directory")
    );
    assert_eq!(e[&key(&root.join("open"))]["hash"], blake3_hex(b"readable"));
}

#[test]
fn a_file_appended_to_while_it_is_read_is_unstable_never_a_mixed_hash() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("tree");
    std::fs::create_dir(&root).unwrap();
    let hot = root.join("hot.log");
    std::fs::write(&hot, vec![b'a'; 64 << 20]).unwrap();
    std::fs::write(root.join("calm"), b"calm").unwrap();
    let rules = rules_for(tmp.path(), &root, "[\"size\", \"hash\"]");
    let db = tmp.path().join("b.db");

    let stop = AtomicBool::new(false);
    let started = std::sync::Barrier::new(2);
    let out = std::thread::scope(|s| {
        s.spawn(|| {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new().append(true).open(&hot).unwrap();
            f.write_all(b"b").unwrap();
            started.wait();
            while !stop.load(Ordering::Relaxed) {
                f.write_all(b"b").unwrap();
            }
        });
        // The appender runs before the scan starts, and until it ends.
        started.wait();
        let out = init(&rules, &db);
        stop.store(true, Ordering::Relaxed);
        out
    });
    assert_ok(&out);
    let e = entries(&db);
    let entry = &e[&key(&hot)];
    assert_eq!(entry["problem"]["kind"], "unstable", "{entry}");
    assert!(entry.get("hash").is_none());
    assert!(stderr(&out).contains("unstable"), "{}", stderr(&out));
    assert_eq!(e[&key(&root.join("calm"))]["hash"], blake3_hex(b"calm"));
}

#[test]
fn files_deleted_during_the_scan_do_not_stop_it() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("tree");
    let n = 3000;
    for d in 0..30 {
        std::fs::create_dir_all(root.join(format!("d{d:02}"))).unwrap();
    }
    for i in 0..n {
        let p = root.join(format!("d{:02}/f{i:05}", i % 30));
        std::fs::write(&p, format!("content {i}")).unwrap();
    }
    let rules = rules_for(tmp.path(), &root, "[\"type\", \"hash\"]");
    let db = tmp.path().join("b.db");
    let out = std::thread::scope(|s| {
        s.spawn(|| {
            for i in (0..n).rev() {
                let _ = std::fs::remove_file(root.join(format!("d{:02}/f{i:05}", i % 30)));
            }
        });
        init(&rules, &db)
    });
    assert_ok(&out);
    // Every file recorded is either hashed correctly or marked vanished; none
    // carries a wrong hash, and the walk reached every directory.
    let e = entries(&db);
    for i in 0..n {
        let p = root.join(format!("d{:02}/f{i:05}", i % 30));
        if let Some(entry) = e.get(&key(&p)) {
            match entry.get("problem") {
                Some(problem) => assert_eq!(problem["kind"], "vanished", "{entry}"),
                None => assert_eq!(entry["hash"], blake3_hex(format!("content {i}").as_bytes())),
            }
        }
    }
    for d in 0..30 {
        assert!(e.contains_key(&key(&root.join(format!("d{d:02}")))));
    }
}

#[test]
fn a_symlinked_root_is_recorded_not_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let real = tmp.path().join("real");
    std::fs::create_dir(&real).unwrap();
    std::fs::write(real.join("secret.key"), b"k").unwrap();
    symlink(&real, tmp.path().join("app")).unwrap();
    let rules = rules_for(
        tmp.path(),
        &tmp.path().join("app"),
        "[\"type\", \"link\", \"hash\"]",
    );
    let db = tmp.path().join("b.db");
    assert_ok(&init(&rules, &db));
    let e = entries(&db);
    assert_eq!(e.len(), 1, "{e:?}");
    let app = &e[&key(&tmp.path().join("app"))];
    assert_eq!(app["type"], "symlink");
    assert_eq!(app["link"], real.to_str().unwrap());
}

#[test]
fn tripseals_own_files_are_never_scanned() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("tree");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("data"), b"d").unwrap();
    // A lookalike that is not ours: same prefix, other directory.
    std::fs::create_dir(root.join("other")).unwrap();
    std::fs::write(root.join("other/b.db.prev"), b"not ours").unwrap();
    let rules = rules_for(tmp.path(), &root, "[\"type\", \"hash\"]");
    let db = root.join("b.db");
    assert_ok(&init(&rules, &db));
    // The second run sees the first baseline and its lock file on the disk.
    let out = init_with(&rules, &db, &["--force"]);
    assert_ok(&out);
    let e = entries(&db);
    let names: Vec<String> = e
        .keys()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect();
    assert!(
        names
            .iter()
            .all(|n| !n.ends_with("/tree/b.db") && !n.contains("/tree/b.db.")),
        "{names:?}"
    );
    assert!(e.contains_key(&key(&root.join("data"))));
    assert!(e.contains_key(&key(&root.join("other/b.db.prev"))));
}

#[test]
fn xattrs_are_captured() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("tree");
    std::fs::create_dir(&root).unwrap();
    let f = root.join("labelled");
    std::fs::write(&f, b"x").unwrap();
    let status = std::process::Command::new("setfattr")
        .args(["-n", "user.tripseal-test", "-v", "0x00ff01"])
        .arg(&f)
        .status()
        .expect("setfattr (Debian package attr) is installed by scripts/test.sh");
    assert!(
        status.success(),
        "setfattr failed: does this file system take user xattrs?"
    );
    let rules = rules_for(tmp.path(), &root, FULL);
    let db = tmp.path().join("b.db");
    assert_ok(&init(&rules, &db));
    let e = entries(&db);
    assert_eq!(e[&key(&f)]["xattrs"]["user.tripseal-test"], "AP8B");
    assert_eq!(e[&key(&root)]["xattrs"], serde_json::json!({}));
}

#[test]
fn missing_roots_are_fine_and_vars_move_them() {
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("app");
    std::fs::create_dir(&app).unwrap();
    std::fs::write(app.join("tasks.py"), b"t").unwrap();
    let rules = write_rules(
        tmp.path(),
        "[vars]\napp_dir = \"/nonexistent/tripseal-test\"\n\n[[rule]]\nname = \"code\"\npaths = [\"${app_dir}/**/*.py\", \"/nonexistent/other/*\"]\ncheck = [\"hash\"]\n",
    );
    let db = tmp.path().join("b.db");
    let out = init(&rules, &db);
    assert_ok(&out);
    assert!(stdout(&out).contains(" 0 entries"), "{}", stdout(&out));

    let var = format!("app_dir={}", app.display());
    let out = init_with(&rules, &db, &["--force", "--var", &var]);
    assert_ok(&out);
    let doc = show_json(&db);
    assert_eq!(
        doc["header"]["rules_vars"]["app_dir"],
        app.to_str().unwrap()
    );
    assert_eq!(doc["entries"].as_array().unwrap().len(), 1);
    assert_eq!(doc["entries"][0]["hash"], blake3_hex(b"t"));
}

#[test]
fn walks_do_not_descend_where_no_pattern_can_match() {
    // A pattern rooted at / that matches only at depth one must not walk the
    // whole machine: the run would take minutes and record nothing deeper.
    let tmp = tempfile::tempdir().unwrap();
    let rules = write_rules(
        tmp.path(),
        "[[rule]]\nname = \"top\"\npaths = [\"/*\"]\ncheck = [\"type\"]\n",
    );
    let db = tmp.path().join("b.db");
    let out = init(&rules, &db);
    assert_ok(&out);
    let e = entries(&db);
    assert!(e.contains_key(b"/etc".as_slice()));
    assert!(
        e.keys()
            .all(|k| k.iter().filter(|&&b| b == b'/').count() == 1),
        "only depth one"
    );
}

/// Unmounts on drop, so a failing assertion leaves no mount behind.
struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn walks_stay_on_one_file_system_unless_the_rule_says_otherwise() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("tree");
    let inner = root.join("mnt");
    std::fs::create_dir_all(&inner).unwrap();
    std::fs::write(root.join("here"), b"h").unwrap();
    let status = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tripseal-test"])
        .arg(&inner)
        .status()
        .unwrap();
    assert!(status.success(), "this test mounts a tmpfs and needs root");
    let _mount = Mount(inner.clone());
    std::fs::write(inner.join("there"), b"t").unwrap();
    assert_ne!(
        std::fs::metadata(&root).unwrap().dev(),
        std::fs::metadata(&inner).unwrap().dev()
    );

    let db = tmp.path().join("b.db");
    let text = |cross: bool| {
        format!(
            "[[rule]]\nname = \"tree\"\npaths = [\"{}/**\"]\ncheck = [\"type\", \"hash\"]\ncross_filesystems = {cross}\n",
            root.display()
        )
    };
    let rules = write_rules(tmp.path(), &text(false));
    assert_ok(&init(&rules, &db));
    let e = entries(&db);
    assert!(e.contains_key(&key(&root.join("here"))));
    assert!(
        e.contains_key(&key(&inner)),
        "the mount point itself is recorded"
    );
    assert!(
        !e.contains_key(&key(&inner.join("there"))),
        "crossed into the tmpfs"
    );

    let rules = write_rules(tmp.path(), &text(true));
    let out = init_with(&rules, &db, &["--force"]);
    assert_ok(&out);
    let e = entries(&db);
    assert_eq!(e[&key(&inner.join("there"))]["hash"], blake3_hex(b"t"));
}

#[test]
fn large_and_sparse_files_hash_as_their_content_and_a_filled_hole_is_drift() {
    use std::os::unix::fs::FileExt;
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("tree");
    std::fs::create_dir(&root).unwrap();
    let bytes = |len: usize, seed: u32| -> Vec<u8> {
        (0..len as u32)
            .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 11) as u8)
            .collect()
    };
    // Large enough to be read in blocks on several threads, and not a
    // whole number of blocks.
    let large = bytes((9 << 20) + 12_345, 1);
    std::fs::write(root.join("large.bin"), &large).unwrap();
    // Mostly holes: data at the start, inside (off any block boundary) and
    // in the last bytes; the same content written out densely beside it.
    let len = 64usize << 20;
    let islands = [
        (0, bytes(4096, 2)),
        ((40 << 20) + 17, bytes(1 << 20, 3)),
        (len - 3, bytes(3, 4)),
    ];
    let sparse = std::fs::File::create(root.join("sparse.img")).unwrap();
    sparse.set_len(len as u64).unwrap();
    let mut dense = vec![0u8; len];
    for (at, data) in &islands {
        sparse.write_all_at(data, *at as u64).unwrap();
        dense[*at..*at + data.len()].copy_from_slice(data);
    }
    sparse.sync_all().unwrap();
    assert!(sparse.metadata().unwrap().blocks() * 512 < len as u64 / 2);
    std::fs::write(root.join("dense.img"), &dense).unwrap();
    // Many files between the small buffer and the large-file threshold:
    // hashed side by side, with the large files' blocks split across the
    // same threads.
    let medium: Vec<Vec<u8>> = (0..96)
        .map(|i| bytes((1 << 20) + i * 4099, 10 + i as u32))
        .collect();
    for (i, m) in medium.iter().enumerate() {
        std::fs::write(root.join(format!("m{i:02}")), m).unwrap();
    }

    let rules = rules_for(tmp.path(), &root, "[\"type\", \"size\", \"hash\"]");
    let db = tmp.path().join("b.db");
    assert_ok(&init(&rules, &db));
    let e = entries(&db);
    assert_eq!(e[&key(&root.join("large.bin"))]["hash"], blake3_hex(&large));
    assert_eq!(
        e[&key(&root.join("sparse.img"))]["hash"],
        blake3_hex(&dense)
    );
    assert_eq!(e[&key(&root.join("dense.img"))]["hash"], blake3_hex(&dense));
    for (i, m) in medium.iter().enumerate() {
        assert_eq!(
            e[&key(&root.join(format!("m{i:02}")))]["hash"],
            blake3_hex(m)
        );
    }

    // One byte written into a hole changes the content, as any edit does.
    sparse.write_all_at(b"x", 20 << 20).unwrap();
    dense[20 << 20] = b'x';
    let out = check_unsigned(&db, &["--format", "json"]);
    assert_eq!(
        out.status.code(),
        Some(4),
        "one entry changed: {}",
        stderr(&out)
    );
    let drift = drift_by_path(&out);
    assert_eq!(drift.len(), 1, "{drift:?}");
    let d = &drift[root.join("sparse.img").to_str().unwrap()];
    assert_eq!(d["changes"]["hash"]["new"], blake3_hex(&dense), "{d}");
}
