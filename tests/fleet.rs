//! The fleet: one role baseline signed once for every host of a role, a
//! release baselined before it is installed (`--root DIR --as PREFIX`), and
//! `check --fast` on a role baseline through this host's stat cache.
//!
//! A "host" here is a mount namespace the test makes: its own copy of the
//! tree mounted at the installed path, and its own `/etc/passwd` and
//! `/etc/group`, in which the same account names have other numbers. The
//! tests run as root (scripts/test.sh), as a monitor does.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use serde_json::Value;

/// A rules file for the application tree at `prefix`, naming its role
/// through `--var role=...` (empty: a host's baseline). It asks for what a
/// host's rules would, inode and ctime included: a role drops those.
fn app_rules(dir: &Path, prefix: &Path) -> PathBuf {
    let p = prefix.display();
    write_rules(
        dir,
        &format!(
            "role = \"${{role}}\"\n\n[vars]\nrole = \"\"\n\n[[rule]]\nname = \"app\"\n\
             paths = [\"{p}\", \"{p}/**\"]\n\
             check = [\"type\", \"mode\", \"uid\", \"gid\", \"size\", \"ctime\", \"inode\", \
             \"nlink\", \"link\", \"hash\", \"xattrs\"]\nseverity = \"high\"\n"
        ),
    )
}

/// A release: a few modules, a directory, a symlink, a private file.
fn release(at: &Path) {
    std::fs::create_dir_all(at.join("pkg")).unwrap();
    std::fs::write(at.join("tasks.py"), b"def add(x, y):\n    return x + y\n").unwrap();
    std::fs::write(at.join("pkg/__init__.py"), b"").unwrap();
    std::fs::write(at.join("pkg/secret.key"), b"k3y").unwrap();
    set_mode(&at.join("pkg/secret.key"), 0o600);
    std::os::unix::fs::symlink("tasks.py", at.join("current")).unwrap();
}

fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        stdout(&out),
        stderr(&out)
    );
    out
}

/// A copy made the way a deploy makes one: new inodes, new change and
/// modification times, owned by `uid`.
fn deploy(from: &Path, to: &Path, uid: u32) {
    run(Command::new("cp").arg("-r").arg(from).arg(to));
    run(Command::new("chown")
        .arg("-hR")
        .arg(format!("{uid}:{uid}"))
        .arg(to));
}

/// One host of the fleet: its tree mounted at the installed path, and its
/// own account databases.
struct Host {
    tree: PathBuf,
    passwd: PathBuf,
    group: PathBuf,
}

impl Host {
    /// A host whose accounts `names` (name, number) are added to this
    /// machine's own.
    fn new(dir: &Path, name: &str, tree: PathBuf, accounts: &[(&str, u32)]) -> Host {
        let (mut passwd, mut group) = (
            std::fs::read_to_string("/etc/passwd").unwrap(),
            std::fs::read_to_string("/etc/group").unwrap(),
        );
        for (account, id) in accounts {
            passwd.push_str(&format!(
                "{account}:x:{id}:{id}::/nonexistent:/usr/sbin/nologin\n"
            ));
            group.push_str(&format!("{account}:x:{id}:\n"));
        }
        let host = Host {
            tree,
            passwd: dir.join(format!("{name}.passwd")),
            group: dir.join(format!("{name}.group")),
        };
        std::fs::write(&host.passwd, passwd).unwrap();
        std::fs::write(&host.group, group).unwrap();
        host
    }

    /// `tripseal ARGS` on this host, its tree at `installed`.
    fn tripseal(&self, installed: &Path, args: &[&str]) -> Output {
        Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(
                "mount --bind \"$0\" \"$1\" && mount --bind \"$2\" /etc/passwd && \
                 mount --bind \"$3\" /etc/group && shift 3 && exec \"$@\"",
            )
            .arg(&self.tree)
            .arg(installed)
            .arg(&self.passwd)
            .arg(&self.group)
            .arg(bin_path())
            .args(args)
            .output()
            .unwrap()
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", stdout(out), stderr(out)))
}

fn drift_at<'a>(doc: &'a Value, path: &Path) -> &'a Value {
    doc["drift"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["path"] == s(path))
        .unwrap_or_else(|| panic!("no drift at {}: {doc}", path.display()))
}

#[test]
fn one_role_baseline_serves_every_host_of_the_role() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let installed = dir.join("srv/app");
    std::fs::create_dir_all(&installed).unwrap();
    let rules = app_rules(dir, &installed);

    // The build host: the release owned by "app", which is 47000 there.
    let build_tree = dir.join("build");
    release(&build_tree);
    run(Command::new("chown")
        .arg("-hR")
        .arg("47000:47000")
        .arg(&build_tree));
    let build = Host::new(dir, "build", build_tree.clone(), &[("app", 47000)]);
    let db = dir.join("workers.db");
    let rules_arg = format!("--rules={}", s(&rules));
    let db_arg = format!("--db={}", s(&db));
    let made = build.tripseal(
        &installed,
        &["init", &rules_arg, "--var", "role=workers", &db_arg],
    );
    assert_ok(&made);
    let key = dir.join("release.key");
    keygen(&key);
    assert_ok(&sign_with(&key, &db, &[]));
    let trust = format!("--trust={}.pub", s(&key));

    // What the role baseline holds and says: names, no host's stat fields.
    let shown = show_json(&db);
    assert_eq!(shown["header"]["role"], "workers");
    assert_eq!(shown["header"]["host"], "");
    let tasks = shown["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["path"] == s(&installed.join("tasks.py")))
        .unwrap();
    assert_eq!(tasks["owner"], "app");
    assert_eq!(tasks["group"], "app");
    assert_eq!(tasks["uid"], 47000);
    assert!(tasks.get("inode").is_none() && tasks.get("ctime_ns").is_none());
    let checks: Vec<&str> = tasks["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(
        checks,
        [
            "type", "mode", "owner", "group", "size", "link", "hash", "xattrs"
        ]
    );
    let human = tripseal().arg("show").arg(&db).output().unwrap();
    assert_ok(&human);
    let human = stdout(&human);
    assert!(human.contains("role        workers"), "{human}");
    assert!(human.contains("app:app"), "{human}");
    let explained = tripseal()
        .args(["rules", "explain", "--var", "role=workers", "--rules"])
        .arg(&rules)
        .arg(installed.join("tasks.py"))
        .output()
        .unwrap();
    assert_ok(&explained);
    let explained = stdout(&explained);
    assert!(
        explained.contains("checks type mode owner group size link hash xattrs"),
        "{explained}"
    );
    assert!(
        explained.contains("not compared, as each host has its own: ctime inode nlink"),
        "{explained}"
    );

    // Two workers: their own copies (other inodes, ctimes, mtimes) owned by
    // "app", which is 47001 on one and 47002 on the other. No drift on either.
    let mut hosts = Vec::new();
    for (name, uid) in [("worker1", 47001), ("worker2", 47002)] {
        let tree = dir.join(name);
        deploy(&build_tree, &tree, uid);
        let a = std::fs::symlink_metadata(tree.join("tasks.py")).unwrap();
        let b = std::fs::symlink_metadata(build_tree.join("tasks.py")).unwrap();
        assert_ne!(a.ino(), b.ino());
        assert_ne!(a.uid(), b.uid());
        let host = Host::new(dir, name, tree, &[("app", uid), ("intruder", 47600)]);
        let out = host.tripseal(&installed, &["check", &db_arg, &trust, "--format=json"]);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", stderr(&out));
        assert_eq!(json(&out)["summary"]["changed"], 0);
        hosts.push(host);
    }

    // On one worker: a changed byte, a changed mode, a file given to another
    // account. Each is drift, with the exit code; the owner is reported by
    // name, with this host's number.
    let worker2 = &hosts[1];
    let check = || worker2.tripseal(&installed, &["check", &db_arg, &trust, "--format=json"]);
    std::fs::write(
        worker2.tree.join("tasks.py"),
        b"def add(x, y):\n    return x - y\n",
    )
    .unwrap();
    let out = check();
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let doc = json(&out);
    assert_eq!(doc["summary"]["changed"], 1, "{doc}");
    assert!(drift_at(&doc, &installed.join("tasks.py"))["changes"]["hash"].is_object());
    std::fs::write(
        worker2.tree.join("tasks.py"),
        b"def add(x, y):\n    return x + y\n",
    )
    .unwrap();
    assert_eq!(check().status.code(), Some(0));

    set_mode(&worker2.tree.join("pkg/secret.key"), 0o644);
    let out = check();
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let doc = json(&out);
    let mode = &drift_at(&doc, &installed.join("pkg/secret.key"))["changes"]["mode"];
    assert_eq!(
        (&mode["old"], &mode["new"]),
        (&"0600".into(), &"0644".into())
    );
    set_mode(&worker2.tree.join("pkg/secret.key"), 0o600);

    run(Command::new("chown")
        .arg("47600")
        .arg(worker2.tree.join("pkg/secret.key")));
    let out = check();
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let doc = json(&out);
    let owner = &drift_at(&doc, &installed.join("pkg/secret.key"))["changes"]["owner"];
    assert_eq!(owner["old"]["name"], "app", "{owner}");
    assert_eq!(
        owner["new"],
        serde_json::json!({"name": "intruder", "id": 47600})
    );
    // The first worker is unaffected.
    let out = hosts[0].tripseal(&installed, &["check", &db_arg, &trust]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn a_release_is_baselined_before_deploy_and_checked_after() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let installed = dir.join("srv/app");
    let rules = app_rules(dir, &installed);
    let build = dir.join("build");
    release(&build);
    let db = dir.join("app-1.db");

    // Not a role's rules: refused, saying what to add.
    let out = init_with(&rules, &db, &["--root", s(&build), "--as", s(&installed)]);
    assert_eq!(out.status.code(), Some(15), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("name the role it is for"),
        "{}",
        stderr(&out)
    );
    assert!(!db.exists());
    for (root, prefix, says) in [
        (s(&build), "srv/app", "is not an absolute path"),
        (s(&build), "/srv/../etc", "is not an absolute path"),
        ("/nonexistent/build", s(&installed), "/nonexistent/build"),
    ] {
        let out = init_with(
            &rules,
            &db,
            &["--var", "role=app", "--root", root, "--as", prefix],
        );
        assert!(
            matches!(out.status.code(), Some(15 | 18)),
            "{root} {prefix}: {}",
            stderr(&out)
        );
        assert!(stderr(&out).contains(says), "{}", stderr(&out));
    }
    let out = tripseal()
        .args(["init", "--root"])
        .arg(&build)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(15), "--root without --as");
    let file = build.join("tasks.py");
    let out = init_with(
        &rules,
        &db,
        &[
            "--var",
            "role=app",
            "--root",
            s(&file),
            "--as",
            s(&installed),
        ],
    );
    assert_eq!(out.status.code(), Some(15), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is not a directory: give the directory"),
        "{}",
        stderr(&out)
    );
    let elsewhere = dir.join("srv/other");
    let out = init_with(
        &rules,
        &db,
        &[
            "--var",
            "role=app",
            "--root",
            s(&build),
            "--as",
            s(&elsewhere),
        ],
    );
    assert_eq!(out.status.code(), Some(15), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the rules select nothing below"),
        "{}",
        stderr(&out)
    );
    assert!(!db.exists());

    // The release pipeline: baseline the build tree under its installed
    // paths, then sign.
    let out = init_with(
        &rules,
        &db,
        &[
            "--var",
            "role=app",
            "--root",
            s(&build),
            "--as",
            s(&installed),
        ],
    );
    assert_ok(&out);
    let key = dir.join("release.key");
    keygen(&key);
    assert_ok(&sign_with(&key, &db, &[]));
    let listed: Vec<Vec<u8>> = entries(&db).into_keys().collect();
    assert_eq!(listed.len(), 6, "{listed:?}"); // the top, 3 files, pkg, a link
    assert!(
        listed
            .iter()
            .all(|p| p.starts_with(s(&installed).as_bytes()))
    );

    // The deploy, then the host's check: clean; then a tampered module.
    std::fs::create_dir_all(installed.parent().unwrap()).unwrap();
    run(Command::new("cp").arg("-r").arg(&build).arg(&installed));
    let check = || {
        tripseal()
            .args(["check", "--format=json", "--db"])
            .arg(&db)
            .arg(format!("--trust={}.pub", s(&key)))
            .output()
            .unwrap()
    };
    let out = check();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    std::fs::write(
        installed.join("pkg/__init__.py"),
        b"import os; os.system('id')\n",
    )
    .unwrap();
    let out = check();
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    drift_at(&json(&out), &installed.join("pkg/__init__.py"));

    // The next release: the previous baseline updated from the new build
    // tree, as generation 2, reviewed with diff against the signed one.
    std::fs::write(
        build.join("tasks.py"),
        b"def add(*xs):\n    return sum(xs)\n",
    )
    .unwrap();
    std::fs::write(build.join("pkg/new.py"), b"").unwrap();
    let next = dir.join("app-2.db");
    std::fs::copy(&db, &next).unwrap();
    let out = tripseal()
        .args(["update", "--db"])
        .arg(&next)
        .args(["--root", s(&build), "--as", s(&installed)])
        .output()
        .unwrap();
    assert_ok(&out);
    assert_eq!(show_json(&next)["header"]["generation"], 2);
    let out = tripseal()
        .args(["diff", "--format=json"])
        .arg(format!("--trust={}.pub", s(&key)))
        .arg(&db)
        .arg(&next)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out)); // added + changed
    let doc = json(&out);
    drift_at(&doc, &installed.join("tasks.py"));
    drift_at(&doc, &installed.join("pkg/new.py"));

    // A tree owned by an id without a name here: every host would report
    // it (names are compared), so init says so.
    let chowned = Command::new("chown")
        .arg("47999")
        .arg(build.join("tasks.py"))
        .status()
        .unwrap();
    assert!(chowned.success());
    let out = init_with(
        &rules,
        &dir.join("unnamed.db"),
        &[
            "--var",
            "role=app",
            "--root",
            s(&build),
            "--as",
            s(&installed),
        ],
    );
    assert_ok(&out);
    assert!(
        stderr(&out).contains("1 entries belong to a user or group that has no name"),
        "{}",
        stderr(&out)
    );

    // Rules that also select paths outside the prefix: said, not recorded.
    let wide = write_rules(
        dir,
        &format!(
            "role = \"app\"\n[[rule]]\nname = \"app\"\npaths = [\"{0}/**\", \"/etc/ssl/private/**\"]\n\
             check = [\"hash\"]\n",
            installed.display()
        ),
    );
    let out = init_with(
        &wide,
        &dir.join("wide.db"),
        &["--root", s(&build), "--as", s(&installed)],
    );
    assert_ok(&out);
    assert!(
        stderr(&out).contains("the rules select /etc/ssl/private/**, outside"),
        "{}",
        stderr(&out)
    );

    // A symlink in the tree that a rule's walk lies beyond (a virtualenv
    // linked to the build host's own): not followed out of the tree.
    let outside = dir.join("outside");
    std::fs::create_dir_all(outside.join("lib")).unwrap();
    std::fs::write(outside.join("lib/evil.py"), b"").unwrap();
    std::os::unix::fs::symlink(&outside, build.join("venv")).unwrap();
    let linked = write_rules(
        dir,
        &format!(
            "role = \"app\"\n[[rule]]\nname = \"app\"\npaths = [\"{0}/tasks.py\", \
             \"{0}/venv/lib/**\"]\ncheck = [\"type\", \"link\", \"hash\"]\n",
            installed.display()
        ),
    );
    let db = dir.join("linked.db");
    let out = init_with(&linked, &db, &["--root", s(&build), "--as", s(&installed)]);
    assert_ok(&out);
    assert!(
        stderr(&out).contains(&format!(
            "{}/venv is a symlink in the tree",
            installed.display()
        )),
        "{}",
        stderr(&out)
    );
    let recorded = entries(&db);
    assert_eq!(recorded.len(), 1, "only tasks.py");
    assert!(
        recorded.keys().all(|p| !p.ends_with(b"evil.py")),
        "{:?}",
        recorded
            .keys()
            .map(|k| String::from_utf8_lossy(k))
            .collect::<Vec<_>>()
    );
}

/// The stat cache with a row for `path` as it is now: an intruder hiding a
/// changed file from `--fast`, checksum and all (the format is in
/// src/baseline/stat_cache.rs).
fn forge_cache_row(cache: &Path, path: &Path) {
    let bytes = std::fs::read(cache).unwrap();
    let body = &bytes[..bytes.len() - 32 - 8]; // less the count and the checksum
    let head = b"tripseal stat cache 1\n".len() + 32;
    let mut rows = Vec::new();
    let mut attrs = None;
    let mut at = head;
    let name = path.as_os_str().as_encoded_bytes();
    while at < body.len() {
        let len = u32::from_le_bytes(body[at..at + 4].try_into().unwrap()) as usize;
        let end = at + 4 + len + 1 + 2 + 5 * 8;
        attrs = Some(body[at + 4 + len + 1..at + 4 + len + 3].to_vec());
        if &body[at + 4..at + 4 + len] != name {
            rows.push(body[at..end].to_vec());
        }
        at = end;
    }
    let now = std::fs::symlink_metadata(path).unwrap();
    let mut row = (name.len() as u32).to_le_bytes().to_vec();
    row.extend_from_slice(name);
    row.push(0); // a regular file
    row.extend_from_slice(&attrs.expect("the cache has rows"));
    for v in [
        now.size(),
        (now.mtime() * 1_000_000_000 + now.mtime_nsec()) as u64,
        (now.ctime() * 1_000_000_000 + now.ctime_nsec()) as u64,
        now.ino(),
        now.dev(),
    ] {
        row.extend_from_slice(&v.to_le_bytes());
    }
    rows.push(row);
    let mut out = body[..head].to_vec();
    out.extend(rows.concat());
    out.extend_from_slice(&(rows.len() as u64).to_le_bytes());
    let sum = blake3::hash(&out);
    out.extend_from_slice(sum.as_bytes());
    std::fs::write(cache, out).unwrap();
}

/// Past the second in which a check does not vouch for what changed (a
/// file written in the clock tick it is read in shows the stat fields it
/// was read with).
fn settle() {
    std::thread::sleep(std::time::Duration::from_millis(1100));
}

#[test]
fn fast_on_a_role_baseline_uses_this_hosts_stat_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let installed = dir.join("srv/app");
    let rules = app_rules(dir, &installed);
    release(&installed);
    let db = dir.join("workers.db");
    assert_ok(&init_with(&rules, &db, &["--var", "role=workers"]));
    let cache = dir.join("workers.db.stat");
    assert!(
        !cache.exists(),
        "init writes no cache: a role baseline travels"
    );
    let check = |extra: &[&str]| {
        let out = tripseal()
            .args(["check", "--allow-unsigned", "--format=json", "--db"])
            .arg(&db)
            .args(extra)
            .output()
            .unwrap();
        (out.status.code(), json(&out), stderr(&out))
    };

    // What changed in the second before a check is not cached (see
    // `settle`): let the new tree settle.
    settle();

    // No cache yet: --fast reads everything, says why, and writes one.
    let (code, doc, err) = check(&["--fast", "--reread=0"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(doc["summary"]["trusted_unchanged"], 0);
    assert!(err.contains("is not used: there is none yet"), "{err}");
    assert!(cache.exists());
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // With it: every unchanged entry skipped.
    let (code, doc, err) = check(&["--fast", "--reread=0"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(doc["summary"]["trusted_unchanged"], 6, "{doc}");
    assert!(!err.contains("stat cache"), "{err}");

    // Rewritten with the same bytes just before a check: no drift, but not
    // cached either (a change in that tick could hide behind the stat fields
    // the check saw), so the next --fast reads it; once settled, it is cached.
    let pkg_init = installed.join("pkg/__init__.py");
    std::fs::write(&pkg_init, b"").unwrap();
    let (code, _, _) = check(&[]);
    assert_eq!(code, Some(0));
    let (_, doc, _) = check(&["--fast", "--reread=0"]);
    assert_eq!(doc["summary"]["trusted_unchanged"], 5, "{doc}");
    settle();
    check(&[]);
    let (_, doc, _) = check(&["--fast", "--reread=0"]);
    assert_eq!(doc["summary"]["trusted_unchanged"], 6, "{doc}");

    // A changed file (same size) moves its ctime: re-read, drift.
    let tasks = installed.join("tasks.py");
    std::fs::write(&tasks, b"def add(x, y):\n    return x * y\n").unwrap();
    let (code, doc, _) = check(&["--fast", "--reread=0"]);
    assert_eq!(code, Some(4));
    assert_eq!(doc["summary"]["trusted_unchanged"], 5);
    let hash = &drift_at(&doc, &tasks)["changes"]["hash"]["new"];
    assert_eq!(hash.as_str().map(str::len), Some(64), "{doc}");
    // A drifted entry is never cached as matching: the next run re-reads it
    // (cached, its stat would match and the signed hash would stand in).
    let (code, doc, _) = check(&["--fast", "--reread=0"]);
    assert_eq!(code, Some(4), "{doc}");
    assert_eq!(doc["summary"]["trusted_unchanged"], 5);

    // An intruder forges the row of the file they changed. A size that
    // differs from the signed one is drift all the same.
    std::fs::write(&tasks, b"def add(x, y):\n    return 0\n").unwrap();
    forge_cache_row(&cache, &tasks);
    let (code, doc, _) = check(&["--fast", "--reread=0"]);
    assert_eq!(code, Some(4), "{doc}");
    // Changed to the same size: with no share re-read, --fast believes the
    // forged row (the trust model the README states)...
    std::fs::write(&tasks, b"def add(x, y):\n    return x - y\n").unwrap();
    forge_cache_row(&cache, &tasks);
    let (code, doc, _) = check(&["--fast", "--reread=0"]);
    assert_eq!(code, Some(0), "{doc}");
    // ...and the share re-reads it whatever the cache says.
    forge_cache_row(&cache, &tasks);
    let (code, doc, _) = check(&["--fast", "--reread=100"]);
    assert_eq!(code, Some(4), "{doc}");
    drift_at(&doc, &tasks);
    assert_eq!(doc["summary"]["reread"], 6, "{doc}");
    // A check without --fast reads everything, forged row or not.
    forge_cache_row(&cache, &tasks);
    let (code, _, _) = check(&[]);
    assert_eq!(code, Some(4));

    // A cache that is torn, of another generation, or a FIFO: not used, in
    // whole; said; the check reads everything and is right.
    std::fs::write(&tasks, b"def add(x, y):\n    return x + y\n").unwrap();
    assert_ok(
        &tripseal()
            .args(["update", "--db"])
            .arg(&db)
            .output()
            .unwrap(),
    );
    let (code, doc, err) = check(&["--fast", "--reread=0"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(doc["summary"]["trusted_unchanged"], 0);
    assert!(err.contains("written for another baseline"), "{err}");
    let good = std::fs::read(&cache).unwrap();
    std::fs::write(&cache, &good[..good.len() / 2]).unwrap();
    let (code, doc, err) = check(&["--fast", "--reread=0"]);
    assert_eq!(
        (code, &doc["summary"]["trusted_unchanged"]),
        (Some(0), &0.into())
    );
    assert!(err.contains("it ends in the middle of a row"), "{err}");
    let mut flipped = good.clone();
    *flipped.last_mut().unwrap() ^= 1;
    std::fs::write(&cache, &flipped).unwrap();
    let (code, doc, err) = check(&["--fast", "--reread=0"]);
    assert_eq!(
        (code, &doc["summary"]["trusted_unchanged"]),
        (Some(0), &0.into())
    );
    assert!(err.contains("it is torn or damaged"), "{err}");
    std::fs::remove_file(&cache).unwrap();
    mkfifo(&cache);
    let (code, doc, err) = check(&["--fast", "--reread=0"]);
    assert_eq!(
        (code, &doc["summary"]["trusted_unchanged"]),
        (Some(0), &0.into())
    );
    assert!(err.contains("stat cache"), "{err}");

    // Writable by others: anyone could vouch for what they changed.
    std::fs::remove_file(&cache).unwrap();
    settle();
    let (code, _, err) = check(&[]);
    assert_eq!(code, Some(0), "{err}");
    let (_, doc, _) = check(&["--fast", "--reread=0"]);
    assert_eq!(doc["summary"]["trusted_unchanged"], 6, "{doc}");
    set_mode(&cache, 0o666);
    let (code, doc, err) = check(&["--fast", "--reread=0"]);
    assert_eq!(
        (code, &doc["summary"]["trusted_unchanged"]),
        (Some(0), &0.into())
    );
    assert!(err.contains("is writable by every user"), "{err}");

    // Planted as a symlink: replaced, never written through.
    std::fs::remove_file(&cache).unwrap();
    let victim = dir.join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    std::os::unix::fs::symlink(&victim, &cache).unwrap();
    let (code, _, err) = check(&[]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    assert!(!std::fs::symlink_metadata(&cache).unwrap().is_symlink());
}

/// What an intruder plants where the stat cache goes, when the role baseline
/// lives inside the tree it watches: a directory in the cache's place, a
/// temporary left as by a killed check. The checks go on, say what is wrong
/// and never report tripseal's own files.
#[test]
fn the_stat_cache_survives_what_is_planted_at_its_name() {
    let tmp = tempfile::tempdir().unwrap();
    let installed = tmp.path().join("srv/app");
    release(&installed);
    let rules = app_rules(tmp.path(), &installed);
    let db = installed.join("app.db");
    assert_ok(&init_with(&rules, &db, &["--var", "role=app"]));
    let check = |extra: &[&str]| {
        let out = tripseal()
            .args(["check", "--allow-unsigned", "--format=json", "--db"])
            .arg(&db)
            .args(extra)
            .output()
            .unwrap();
        (out.status.code(), json(&out), stderr(&out))
    };
    settle();
    let cache = installed.join("app.db.stat");

    // Its own cache and temporaries, in the tree: never drift.
    let dead = installed.join("app.db.stat.tmp.999999999");
    std::fs::write(&dead, b"left by a killed check").unwrap();
    let (code, doc, err) = check(&[]);
    assert_eq!(code, Some(0), "{doc} {err}");
    assert!(cache.is_file());
    assert!(!dead.exists(), "a dead check's temporary is removed");
    // Every entry but the directory that holds the baseline, whose ctime
    // each check moves (its snapshot and cache come and go there).
    let (code, doc, _) = check(&["--fast", "--reread=0"]);
    assert_eq!(code, Some(0), "{doc}");
    assert_eq!(doc["summary"]["trusted_unchanged"], 5, "{doc}");

    // A directory in its place: the check works and says what to do; --fast
    // reads everything.
    std::fs::remove_file(&cache).unwrap();
    std::fs::create_dir(&cache).unwrap();
    let (code, _, err) = check(&[]);
    assert_eq!(code, Some(1), "the planted directory is itself new: {err}");
    assert!(
        err.contains("cannot write the stat cache")
            && err.contains("clear what stands at that name"),
        "{err}"
    );
    let (_, doc, err) = check(&["--fast", "--reread=0"]);
    assert_eq!(doc["summary"]["trusted_unchanged"], 0, "{doc}");
    assert!(err.contains("is not used"), "{err}");
    let temporaries: Vec<_> = std::fs::read_dir(&installed)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".stat.tmp."))
        .collect();
    assert!(temporaries.is_empty(), "{temporaries:?}");
}
