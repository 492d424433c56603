//! Explaining drift by package origin, with the real package managers: a
//! Debian package built here with `dpkg-deb` and installed with `dpkg -i`,
//! and a wheel installed with `pip` into a virtual environment. Each test
//! baselines what it installed, changes it the way an upgrade and an
//! intruder would, and reads the verdicts from `check`, the events,
//! `update --only-packaged` and `diff`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use serde_json::Value;

/// dpkg takes one caller at a time: the tests that install packages run
/// one after the other.
static DPKG: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn dpkg_turn() -> std::sync::MutexGuard<'static, ()> {
    DPKG.lock().unwrap_or_else(|e| e.into_inner())
}

/// A package installed on this machine for the length of a test, purged
/// (with what is left of its directory) when dropped.
struct Installed {
    name: String,
    dir: PathBuf,
}

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = Command::new("dpkg").args(["--purge", &self.name]).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("runs");
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Builds `NAME_VERSION.deb` in `work` holding `files` (relative to /) with
/// their md5sums, as debhelper makes them.
fn build_deb(work: &Path, name: &str, version: &str, files: &[(&str, &str)]) -> PathBuf {
    build_deb_compressed(work, name, version, files, "xz")
}

/// As [`build_deb`], its archives compressed with `z` (`dpkg-deb -Z`).
fn build_deb_compressed(
    work: &Path,
    name: &str,
    version: &str,
    files: &[(&str, &str)],
    z: &str,
) -> PathBuf {
    let root = work.join(format!("{name}-{version}"));
    std::fs::create_dir_all(root.join("DEBIAN")).unwrap();
    let mut sums = String::new();
    for (path, content) in files {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
        let md5 = md5_hex(content.as_bytes());
        sums.push_str(&format!("{md5}  {path}\n"));
    }
    std::fs::write(root.join("DEBIAN/md5sums"), sums).unwrap();
    std::fs::write(
        root.join("DEBIAN/control"),
        format!(
            "Package: {name}\nVersion: {version}\nArchitecture: all\n\
             Maintainer: tripseal tests <tests@tripseal.invalid>\nDescription: a test package\n"
        ),
    )
    .unwrap();
    let deb = work.join(format!("{name}_{version}.deb"));
    run(Command::new("dpkg-deb")
        .args(["--build", "--root-owner-group", &format!("-Z{z}")])
        .arg(&root)
        .arg(&deb)
        .stdout(std::process::Stdio::null()));
    deb
}

fn md5_hex(bytes: &[u8]) -> String {
    let out = Command::new("md5sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(bytes)?;
            c.wait_with_output()
        })
        .unwrap();
    String::from_utf8_lossy(&out.stdout)[..32].to_string()
}

/// `name` at `v1` installed (purged when the guard drops), and a baseline
/// `WORK/b.db` of its directory `/opt/NAME` under one rule that checks
/// `check` at `severity`.
fn baseline_of_installed(
    work: &Path,
    name: &str,
    v1: &Path,
    check: &str,
    severity: &str,
) -> (Installed, PathBuf) {
    let dir = PathBuf::from(format!("/opt/{name}"));
    let installed = Installed {
        name: name.to_string(),
        dir: dir.clone(),
    };
    dpkg_install(v1);
    let rules = write_rules(
        work,
        &format!(
            "[[rule]]\nname = \"pkg\"\npaths = [\"{d}\", \"{d}/**\"]\n\
             check = {check}\nseverity = \"{severity}\"\n",
            d = dir.display()
        ),
    );
    let db = work.join("b.db");
    assert_ok(&init(&rules, &db));
    (installed, db)
}

fn dpkg_install(deb: &Path) {
    run(Command::new("dpkg")
        .arg("-i")
        .arg(deb)
        .env("DEBIAN_FRONTEND", "noninteractive"));
}

/// `check --format json` against an unsigned baseline: the drift records
/// by path.
fn check_json(db: &Path) -> std::collections::BTreeMap<String, Value> {
    let out = check_unsigned(db, &["--format", "json"]);
    drift_by_path(&out)
}

fn origin(d: &Value) -> (&str, &str, &str, &str) {
    let o = &d["origin"];
    (
        o["manager"].as_str().unwrap_or("-"),
        o["version"].as_str().unwrap_or("-"),
        o["verdict"].as_str().unwrap(),
        o["evidence"].as_str().unwrap_or("-"),
    )
}

/// `tripseal diff --allow-unsigned ARGS... DB.prev DB`: what the last
/// `update` accepted, as a reviewer sees it.
fn diff_from_previous(db: &Path, args: &[&str]) -> Output {
    tripseal()
        .args(["diff", "--allow-unsigned"])
        .args(args)
        .arg(db.with_extension("db.prev"))
        .arg(db)
        .output()
        .unwrap()
}

#[test]
fn dpkg_upgrade_matches_its_package_and_a_hand_edit_does_not() {
    let _turn = dpkg_turn();
    let work = tempfile::tempdir().unwrap();
    let name = format!("tripseal-origin-test-{}", std::process::id());
    let dir = PathBuf::from(format!("/opt/{name}"));
    let rel = |f: &str| format!("opt/{name}/{f}");
    let (tool, conf) = (rel("bin/tool"), rel("lib/helper.py"));
    let v1 = build_deb(
        work.path(),
        &name,
        "1.0-1",
        &[(&tool, "#!/bin/sh\necho 1\n"), (&conf, "X = 1\n")],
    );
    let v2 = build_deb(
        work.path(),
        &name,
        "2.0-1",
        &[(&tool, "#!/bin/sh\necho 2\n"), (&conf, "X = 2\n")],
    );
    let (_installed, db) = baseline_of_installed(
        work.path(),
        &name,
        &v1,
        r#"["type", "mode", "owner", "size", "hash"]"#,
        "high",
    );

    // The upgrade, an intruder's edit of a packaged file, and a planted one.
    dpkg_install(&v2);
    let (tool, helper) = (dir.join("bin/tool"), dir.join("lib/helper.py"));
    std::fs::write(&helper, "X = 2\nimport os; os.system('id')\n").unwrap();
    let planted = dir.join("lib/planted.py");
    std::fs::write(&planted, "evil\n").unwrap();

    let drift = check_json(&db);
    let key = |p: &Path| p.to_str().unwrap().to_string();
    assert_eq!(
        origin(&drift[&key(&tool)]),
        ("dpkg", "2.0-1", "matches-package", "host-records-only")
    );
    assert_eq!(drift[&key(&tool)]["origin"]["package"], name.as_str());
    assert_eq!(
        origin(&drift[&key(&helper)]),
        ("dpkg", "2.0-1", "differs-from-package", "host-records-only")
    );
    assert_eq!(
        origin(&drift[&key(&planted)]),
        ("-", "-", "not-packaged", "-")
    );

    // The human report tags each record; the events carry the origin whole.
    let human = check_unsigned(&db, &[]);
    let text = stdout(&human);
    assert!(
        text.contains(&format!(
            "(dpkg:{name} 2.0-1 differs-from-package, host-records-only)"
        )),
        "{text}"
    );
    let events = check_unsigned(&db, &["--format", "events"]);
    let modified: Vec<Value> = stdout(&events)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["type"] == "fim-file-modified")
        .collect();
    assert_eq!(modified.len(), 2, "{}", stdout(&events));
    assert!(
        modified.iter().any(
            |e| e["path"] == key(&tool).as_str() && e["origin"]["verdict"] == "matches-package"
        )
    );

    // --only-packaged takes the upgrade only; the rest stays drift.
    let out = tripseal()
        .args(["update", "--only-packaged", "--format", "json", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert_ok(&out);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let accepted: Vec<&str> = doc["drift"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap())
        .collect();
    assert_eq!(accepted, [key(&tool).as_str()]);
    let left: Vec<(&str, &str)> = doc["not_accepted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["path"].as_str().unwrap(),
                d["not_accepted_because"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        left,
        [
            (key(&helper).as_str(), "differs-from-package"),
            (key(&planted).as_str(), "not-packaged")
        ]
    );
    let drift = check_json(&db);
    assert_eq!(
        drift.keys().cloned().collect::<Vec<_>>(),
        [key(&helper), key(&planted)]
    );

    // The reviewer's diff shows where the accepted change came from.
    let out = diff_from_previous(&db, &["--format", "json"]);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["drift"].as_array().unwrap().len(), 1);
    assert_eq!(
        origin(&doc["drift"][0]),
        ("dpkg", "2.0-1", "matches-package", "host-records-only")
    );

    // Reinstalled, the edited file is the package's again.
    dpkg_install(&v2);
    let drift = check_json(&db);
    assert_eq!(
        origin(&drift[&key(&helper)]).2,
        "matches-package",
        "{:?}",
        drift
    );

    // A setuid bit on a file whose content matches stays drift.
    run(Command::new("chmod").arg("4755").arg(&tool));
    std::fs::remove_file(&planted).unwrap();
    let out = tripseal()
        .args(["update", "--only-packaged", "--format", "json", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert_ok(&out);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let left = &doc["not_accepted"];
    assert!(
        left.as_array()
            .unwrap()
            .iter()
            .any(|d| d["path"] == key(&tool).as_str()
                && d["not_accepted_because"]
                    .as_str()
                    .unwrap()
                    .contains("mode changed too")),
        "{left}"
    );
    // A packaged file removed is not what its package says.
    std::fs::remove_file(&helper).unwrap();
    let drift = check_json(&db);
    assert_eq!(
        origin(&drift[&key(&helper)]),
        ("dpkg", "2.0-1", "differs-from-package", "host-records-only")
    );
}

/// Writes a wheel of distribution `name` at `version` holding `files` (in
/// site-packages), with the RECORD pip checks, using Python's zipfile.
fn build_wheel(
    python: &Path,
    work: &Path,
    name: &str,
    version: &str,
    files: &[(&str, &str)],
) -> PathBuf {
    let wheel = work.join(format!("{name}-{version}-py3-none-any.whl"));
    let script = r#"
import base64, hashlib, sys, zipfile, json
wheel, name, version, files = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
info = f"{name}-{version}.dist-info"
files[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
files[f"{info}/WHEEL"] = "Wheel-Version: 1.0\nGenerator: tripseal-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
rows = []
with zipfile.ZipFile(wheel, "w") as z:
    for path, text in files.items():
        data = text.encode()
        z.writestr(path, data)
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        rows.append(f"{path},sha256={digest},{len(data)}")
    rows.append(f"{info}/RECORD,,")
    z.writestr(f"{info}/RECORD", "\n".join(rows) + "\n")
"#;
    let files: serde_json::Map<String, Value> = files
        .iter()
        .map(|(p, t)| (p.to_string(), Value::String(t.to_string())))
        .collect();
    run(Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(&wheel)
        .arg(name)
        .arg(version)
        .arg(Value::Object(files).to_string()));
    wheel
}

fn pip_install(venv: &Path, wheel: &Path) {
    run(Command::new(venv.join("bin/pip"))
        .args([
            "install",
            "--quiet",
            "--no-index",
            "--disable-pip-version-check",
            "--force-reinstall",
        ])
        .arg(wheel));
}

#[test]
fn a_wheel_upgrade_matches_its_record_and_a_hand_edit_does_not() {
    let work = tempfile::tempdir().unwrap();
    let venv = work.path().join("venv");
    run(Command::new("python3").args(["-m", "venv"]).arg(&venv));
    let python = venv.join("bin/python");
    let v1 = build_wheel(
        &python,
        work.path(),
        "tsorigin",
        "1.0",
        &[
            ("tsorigin/__init__.py", "VERSION = 1\n"),
            ("tsorigin/tasks.py", "def add(a, b):\n    return a + b\n"),
        ],
    );
    let v2 = build_wheel(
        &python,
        work.path(),
        "tsorigin",
        "2.0",
        &[
            ("tsorigin/__init__.py", "VERSION = 2\n"),
            ("tsorigin/tasks.py", "def add(a, b):\n    return b + a\n"),
        ],
    );
    pip_install(&venv, &v1);
    let site = std::fs::read_dir(venv.join("lib"))
        .unwrap()
        .flatten()
        .map(|d| d.path().join("site-packages"))
        .find(|p| p.is_dir())
        .unwrap();
    let pkg = site.join("tsorigin");
    let rules = write_rules(
        work.path(),
        &format!(
            "[[rule]]\nname = \"tasks\"\npaths = [\"{d}/*.py\"]\n\
             check = [\"type\", \"mode\", \"size\", \"hash\"]\nseverity = \"high\"\n",
            d = pkg.display()
        ),
    );
    let db = work.path().join("b.db");
    assert_ok(&init(&rules, &db));

    pip_install(&venv, &v2);
    let (init_py, tasks) = (pkg.join("__init__.py"), pkg.join("tasks.py"));
    std::fs::write(&tasks, "def add(a, b):\n    return a - b\n").unwrap();
    let drift = check_json(&db);
    let key = |p: &Path| p.to_str().unwrap().to_string();
    assert_eq!(
        origin(&drift[&key(&init_py)]),
        ("pip", "2.0", "matches-package", "host-records-only")
    );
    assert_eq!(drift[&key(&init_py)]["origin"]["package"], "tsorigin");
    assert_eq!(
        origin(&drift[&key(&tasks)]),
        ("pip", "2.0", "differs-from-package", "host-records-only")
    );

    let out = tripseal()
        .args(["update", "--only-packaged", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert_ok(&out);
    assert!(
        stdout(&out).contains("not accepted by --only-packaged=host-records-only (1)"),
        "{}",
        stdout(&out)
    );
    let drift = check_json(&db);
    assert_eq!(drift.keys().cloned().collect::<Vec<_>>(), [key(&tasks)]);

    // Asking for the archive's word accepts nothing pip installed: pip has
    // no archive to check against.
    pip_install(&venv, &v2);
    let out = tripseal()
        .args([
            "update",
            "--only-packaged=verified-by-archive",
            "--format",
            "json",
            "--db",
        ])
        .arg(&db)
        .output()
        .unwrap();
    assert_ok(&out);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["drift"].as_array().unwrap().len(), 0);
    assert!(
        doc["not_accepted"][0]["not_accepted_because"]
            .as_str()
            .unwrap()
            .contains("host-records-only"),
        "{doc}"
    );
}

#[test]
fn only_packaged_refuses_new_rules_or_a_release_tree() {
    let (tmp, _root, db) = tree_holding_its_baseline(FULL);
    let rules = tmp.path().join("rules.toml");
    let out = tripseal()
        .args(["update", "--only-packaged", "--rules"])
        .arg(&rules)
        .arg("--db")
        .arg(&db)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(out.status.code(), Some(15), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot be combined with --rules"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_forged_origin_row_is_refused_by_diff() {
    let (tmp, root, db) = tree_holding_its_baseline(FULL);
    std::fs::write(root.join("a"), "changed").unwrap();
    assert_ok(
        &tripseal()
            .args(["update", "--db"])
            .arg(&db)
            .output()
            .unwrap(),
    );
    let _ = tmp;
    // update made the table (it recorded the change as not-packaged).
    sql(
        &db,
        "INSERT OR REPLACE INTO origins VALUES (CAST('/x' AS BLOB), 'dpkg', 'p', '1', \
         'trust-me', NULL, NULL)",
    );
    let out = diff_from_previous(&db, &[]);
    assert!(!out.status.success());
    assert_eq!(out.status.code(), Some(24), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("its origins table holds an unknown verdict"),
        "{}",
        stderr(&out)
    );
    // The archive's word on a pip distribution, which has no archive.
    sql(
        &db,
        "INSERT OR REPLACE INTO origins VALUES (CAST('/x' AS BLOB), 'pip', 'p', '1', \
         'matches-package', 'verified-by-archive', NULL)",
    );
    let out = diff_from_previous(&db, &[]);
    assert_eq!(out.status.code(), Some(24), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the archive's word on a package not of dpkg"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_record_that_is_a_fifo_is_never_waited_on() {
    let work = tempfile::tempdir().unwrap();
    let site = work.path().join("env/lib/python3.11/site-packages");
    let info = site.join("trap-1.0.dist-info");
    std::fs::create_dir_all(&info).unwrap();
    std::fs::create_dir_all(site.join("trap")).unwrap();
    std::fs::write(site.join("trap/m.py"), "x = 1\n").unwrap();
    mkfifo(&info.join("RECORD"));
    let rules = rules_for(work.path(), &site.join("trap"), FULL);
    let db = work.path().join("b.db");
    assert_ok(&init(&rules, &db));
    std::fs::write(site.join("trap/m.py"), "x = 2\n").unwrap();
    let out = check_unsigned(&db, &["--format", "json"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("RECORD is not read"),
        "{}",
        stderr(&out)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["drift"][0]["origin"]["verdict"], "not-packaged");
}

/// The events the daemon wrote to `file` so far.
fn events_in(file: &Path) -> Vec<Value> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Polls `file` until an event satisfies `want`.
fn wait_event(file: &Path, what: &str, want: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if let Some(e) = events_in(file).into_iter().find(|e| want(e)) {
            return e;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no {what} in {:#?}",
            events_in(file)
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn the_daemon_lowers_what_dpkg_made_and_its_package_vouches_for() {
    let _turn = dpkg_turn();
    let work = tempfile::tempdir().unwrap();
    let name = format!("tripseal-watch-origin-{}", std::process::id());
    let dir = PathBuf::from(format!("/opt/{name}"));
    let tool = format!("opt/{name}/bin/tool");
    let v1 = build_deb(work.path(), &name, "1.0-1", &[(&tool, "one\n")]);
    let v2 = build_deb(work.path(), &name, "2.0-1", &[(&tool, "two\n")]);
    let (_installed, db) = baseline_of_installed(
        work.path(),
        &name,
        &v1,
        r#"["type", "mode", "size", "hash"]"#,
        "critical",
    );
    let events = work.path().join("events.jsonl");
    let mut daemon = Command::new(bin_path())
        .args(["watch", "--allow-unsigned", "--backend", "fanotify", "--db"])
        .arg(&db)
        .arg("--emit")
        .arg(format!("file:{}", events.display()))
        .env_remove("NOTIFY_SOCKET")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_event(&events, "fim-scan-finished", |e| {
        e["type"] == "fim-scan-finished"
    });

    dpkg_install(&v2);
    let path = dir.join("bin/tool");
    let e = wait_event(&events, "the upgrade's event", |e| {
        e["type"] == "fim-file-modified" && e["path"] == path.to_str().unwrap()
    });
    let by_dpkg = actors_named(&e, "dpkg");
    assert!(by_dpkg, "{e}");
    assert_eq!(e["origin"]["verdict"], "matches-package", "{e}");
    assert_eq!(e["severity"], "high", "{e}");
    assert_eq!(e["severity_lowered"]["from"], "critical", "{e}");
    assert!(
        e["severity_lowered"]["why"]
            .as_str()
            .unwrap()
            .contains("made by dpkg"),
        "{e}"
    );

    // The same file edited by hand afterwards: full severity, and why.
    std::fs::write(&path, "three\n").unwrap();
    let e = wait_event(&events, "the hand edit's event", |e| {
        e["type"] == "fim-file-modified" && e["origin"]["verdict"] == "differs-from-package"
    });
    assert_eq!(e["severity"], "critical", "{e}");
    assert!(e.get("severity_lowered").is_none(), "{e}");

    // An intruder's program named dpkg puts the package's content back: the
    // content matches, the name says dpkg, the executable is not dpkg's.
    let fake = work.path().join("dpkg");
    std::os::unix::fs::symlink("/bin/sh", &fake).unwrap();
    run(Command::new(&fake)
        .arg("-c")
        .arg(format!("printf 'two\\n' > {}; sleep 2", path.display())));
    let e = wait_event(&events, "the fake dpkg's event", |e| {
        e["type"] == "fim-file-modified"
            && e["origin"]["verdict"] == "matches-package"
            && actors_named(e, "dpkg")
            && e["actor"][0]["exe"] != "/usr/bin/dpkg"
    });
    assert_eq!(e["severity"], "critical", "{e}");
    assert!(e.get("severity_lowered").is_none(), "{e}");
    let _ = daemon.kill();
    let _ = daemon.wait();
}

fn actors_named(e: &Value, comm: &str) -> bool {
    e["actor"]
        .as_array()
        .is_some_and(|a| !a.is_empty() && a.iter().all(|a| a["comm"] == comm))
}

/// An apt archive of the test's own: a gpg key of `algo`, a flat
/// repository made by `apt-ftparchive` and signed with `gpg --clearsign`,
/// and apt's lists and cache of it, fetched by apt itself (`update`,
/// `install --download-only`) into the test's directory, so the host's apt
/// state is untouched.
struct Archive {
    work: PathBuf,
    gnupg: PathBuf,
    repo: PathBuf,
    lists: PathBuf,
    cache: PathBuf,
    /// The keyrings' directory, as `[origin] apt_keyrings` names it.
    keys: PathBuf,
}

impl Drop for Archive {
    fn drop(&mut self) {
        // gpg leaves an agent running per home directory.
        let _ = Command::new("gpgconf")
            .arg("--homedir")
            .arg(&self.gnupg)
            .args(["--kill", "gpg-agent"])
            .output();
    }
}

impl Archive {
    fn new(work: &Path, algo: &str) -> Archive {
        let a = Archive {
            work: work.to_path_buf(),
            gnupg: work.join("gnupg"),
            repo: work.join("repo"),
            lists: work.join("lists"),
            cache: work.join("archives"),
            keys: work.join("keys"),
        };
        for d in [&a.repo, &a.lists, &a.cache, &a.keys] {
            std::fs::create_dir_all(d.join("partial")).unwrap();
        }
        std::fs::remove_dir(a.keys.join("partial")).unwrap();
        std::fs::create_dir_all(&a.gnupg).unwrap();
        run(Command::new("chmod").arg("700").arg(&a.gnupg));
        a.gpg(&[
            "--passphrase",
            "",
            "--quick-gen-key",
            "tripseal test archive <archive@tripseal.invalid>",
            algo,
            "sign",
            "never",
        ]);
        let key = a.gpg(&["--export"]);
        std::fs::write(a.keys.join("archive.gpg"), key).unwrap();
        std::fs::write(
            work.join("sources.list"),
            format!(
                "deb [signed-by={}] copy:{} ./\n",
                a.keys.join("archive.gpg").display(),
                a.repo.display()
            ),
        )
        .unwrap();
        a
    }

    fn gpg(&self, args: &[&str]) -> Vec<u8> {
        let out = Command::new("gpg")
            .arg("--homedir")
            .arg(&self.gnupg)
            .args(["--batch", "--pinentry-mode", "loopback"])
            .args(args)
            .current_dir(&self.repo)
            .output()
            .unwrap();
        assert!(out.status.success(), "gpg {args:?}: {}", stderr(&out));
        out.stdout
    }

    /// The key's fingerprint, as gpg prints it.
    fn fingerprint(&self) -> String {
        let out = String::from_utf8(self.gpg(&["--with-colons", "--list-keys"])).unwrap();
        out.lines()
            .find_map(|l| l.strip_prefix("fpr:::::::::"))
            .unwrap()
            .trim_end_matches(':')
            .to_string()
    }

    /// Puts `deb` in the repository and signs its index again.
    fn publish(&self, deb: &Path) {
        std::fs::copy(deb, self.repo.join(deb.file_name().unwrap())).unwrap();
        let index = |what: &str| {
            let out = Command::new("apt-ftparchive")
                .args([what, "."])
                .current_dir(&self.repo)
                .output()
                .unwrap();
            assert!(out.status.success(), "apt-ftparchive: {}", stderr(&out));
            out.stdout
        };
        std::fs::write(self.repo.join("Packages"), index("packages")).unwrap();
        let _ = std::fs::remove_file(self.repo.join("Release"));
        let release = index("release");
        std::fs::write(self.repo.join("Release"), release).unwrap();
        let _ = std::fs::remove_file(self.repo.join("InRelease"));
        self.gpg(&[
            "--digest-algo",
            "SHA512",
            "--clearsign",
            "-o",
            "InRelease",
            "Release",
        ]);
    }

    /// apt's `update` and `install --download-only` of `name`, as an
    /// administrator runs them: the `.deb` apt cached.
    fn fetch(&self, name: &str, file: &str) -> PathBuf {
        let apt = |args: &[&str]| {
            let out = Command::new("apt-get")
                .arg("-o")
                .arg(format!(
                    "Dir::Etc::SourceList={}",
                    self.work.join("sources.list").display()
                ))
                .args(["-o", "Dir::Etc::SourceParts=/nonexistent"])
                .arg("-o")
                .arg(format!("Dir::State::Lists={}", self.lists.display()))
                .arg("-o")
                .arg(format!("Dir::Cache::Archives={}", self.cache.display()))
                // apt's sandbox user cannot read the test's directory.
                .args(["-o", "APT::Sandbox::User=root", "-q"])
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .output()
                .unwrap();
            assert!(out.status.success(), "apt-get {args:?}: {}", stderr(&out));
        };
        apt(&["update"]);
        apt(&["install", "--download-only", "-y", name]);
        let deb = self.cache.join(file);
        assert!(deb.exists(), "apt cached no {}", deb.display());
        deb
    }

    /// The file of apt's lists whose name holds `part` (`_InRelease`,
    /// `_Packages`).
    fn lists_file(&self, part: &str) -> PathBuf {
        std::fs::read_dir(&self.lists)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().contains(part))
            .unwrap_or_else(|| panic!("apt fetched no {part}"))
    }

    /// A configuration that looks up origins in this archive.
    fn config(&self) -> PathBuf {
        let path = self.work.join("config.toml");
        std::fs::write(
            &path,
            format!(
                "[origin]\napt_lists = \"{}\"\napt_archives = \"{}\"\napt_keyrings = [\"{}\"]\n\
                 apt_sources = [\"{}\"]\n",
                self.lists.display(),
                self.cache.display(),
                self.keys.display(),
                self.work.join("sources.list").display()
            ),
        )
        .unwrap();
        run(Command::new("chmod").arg("600").arg(&path));
        path
    }
}

/// `check --format json` against a sealed baseline, with `config`: the
/// drift records by path.
fn sealed_check(
    db: &Path,
    config: &Path,
    trust: &Path,
) -> std::collections::BTreeMap<String, Value> {
    let out = tripseal()
        .arg("--config")
        .arg(config)
        .args(["check", "--format", "json", "--trust"])
        .arg(trust)
        .arg("--db")
        .arg(db)
        .output()
        .unwrap();
    drift_by_path(&out)
}

/// A package installed from the test's signed archive, and a sealed
/// baseline of its directory and of the archive's keyring.
struct FromArchive {
    archive: Archive,
    /// Another key, in a keyring the baseline records too, that no source
    /// names.
    other: Archive,
    _installed: Installed,
    name: String,
    tool: String,
    db: PathBuf,
    config: PathBuf,
    public: PathBuf,
    key: PathBuf,
}

fn installed_from_archive(work: &Path, algo: &str) -> FromArchive {
    let name = format!("tripseal-archive-test-{algo}");
    let tool = format!("/opt/{name}/tool");
    let archive = Archive::new(work, algo);
    let other = Archive::new(&work.join("other"), "rsa3072");
    std::fs::copy(
        other.keys.join("archive.gpg"),
        archive.keys.join("other.gpg"),
    )
    .unwrap();
    // Also in apt's default keyring, which vouches for any source that
    // names no Signed-By: an intruder's way around a source's own binding.
    std::fs::copy(
        other.keys.join("archive.gpg"),
        archive.keys.join("trusted.gpg"),
    )
    .unwrap();
    let debs = work.join("debs");
    std::fs::create_dir_all(&debs).unwrap();
    let v1 = build_deb(&debs, &name, "1:1.0", &[(&tool[1..], "shipped\n")]);
    archive.publish(&v1);
    let cached = archive.fetch(&name, &format!("{name}_1%3a1.0_all.deb"));
    let installed = Installed {
        name: name.clone(),
        dir: PathBuf::from(format!("/opt/{name}")),
    };
    dpkg_install(&cached);
    let rules = write_rules(
        work,
        &format!(
            "[[rule]]\nname = \"pkg\"\npaths = [\"/opt/{name}\", \"/opt/{name}/**\", \"{k}\", \
             \"{k}/**\", \"{s}\"]\ncheck = {FULL}\nseverity = \"high\"\n",
            k = archive.keys.display(),
            s = work.join("sources.list").display()
        ),
    );
    let db = work.join("b.db");
    assert_ok(&init(&rules, &db));
    let key = work.join("op.key");
    keygen(&key);
    assert_ok(&sign_with(&key, &db, &[]));
    FromArchive {
        config: archive.config(),
        archive,
        other,
        _installed: installed,
        name,
        tool,
        db,
        public: work.join("op.key.pub"),
        key,
    }
}

impl FromArchive {
    /// Version `v` with `content` in the archive, fetched and installed.
    fn upgrade(&self, version: &str, content: &str) -> PathBuf {
        self.upgrade_compressed(version, content, "xz")
    }

    /// As [`FromArchive::upgrade`], the `.deb` compressed with `z`.
    fn upgrade_compressed(&self, version: &str, content: &str, z: &str) -> PathBuf {
        let debs = self.archive.work.join("debs");
        let deb =
            build_deb_compressed(&debs, &self.name, version, &[(&self.tool[1..], content)], z);
        self.archive.publish(&deb);
        let cached = self.archive.fetch(
            &self.name,
            &format!("{}_{}_all.deb", self.name, version.replace(':', "%3a")),
        );
        dpkg_install(&cached);
        cached
    }

    fn tool_origin(&self) -> Value {
        sealed_check(&self.db, &self.config, &self.public)[&self.tool]["origin"].clone()
    }
}

#[test]
fn a_deb_compressed_as_ubuntu_does_is_vouched_for_by_the_archive_too() {
    let _turn = dpkg_turn();
    let work = tempfile::tempdir().unwrap();
    let f = installed_from_archive(work.path(), "rsa3072");
    let cached = f.upgrade_compressed("1:2.0", "upgraded\n", "zstd");
    let members = Command::new("ar").arg("t").arg(&cached).output().unwrap();
    assert!(
        String::from_utf8_lossy(&members.stdout).contains("control.tar.zst"),
        "{members:?}"
    );
    let o = f.tool_origin();
    assert_eq!(o["verdict"], "matches-package", "{o}");
    assert_eq!(o["evidence"], "verified-by-archive", "{o}");
    // Its md5sums, read from the .deb, are what the edit is measured by.
    std::fs::write(&f.tool, "intruder\n").unwrap();
    std::fs::write(
        format!("/var/lib/dpkg/info/{}.md5sums", f.name),
        format!("{}  {}\n", md5_hex(b"intruder\n"), &f.tool[1..]),
    )
    .unwrap();
    let o = f.tool_origin();
    assert_eq!(o["verdict"], "differs-from-package", "{o}");
    assert_eq!(o["evidence"], "verified-by-archive", "{o}");
}

#[test]
fn the_archive_vouches_through_its_signed_index_where_host_records_lie() {
    let _turn = dpkg_turn();
    let work = tempfile::tempdir().unwrap();
    let f = installed_from_archive(work.path(), "rsa3072");
    let fpr = f.archive.fingerprint();

    // An intruder edits the file and dpkg's md5sums to match: the host's
    // records agree with it, the archive's .deb does not.
    std::fs::write(&f.tool, "intruder\n").unwrap();
    let md5sums = format!("/var/lib/dpkg/info/{}.md5sums", f.name);
    std::fs::write(
        &md5sums,
        format!("{}  {}\n", md5_hex(b"intruder\n"), &f.tool[1..]),
    )
    .unwrap();
    let o = f.tool_origin();
    assert_eq!(o["verdict"], "differs-from-package", "{o}");
    assert_eq!(o["evidence"], "verified-by-archive", "{o}");
    assert!(
        o["note"].as_str().unwrap().contains(&fpr),
        "the note names the key that signed the index: {o}"
    );
    // Without a verified seal nothing anchors the keyring: the host's
    // (forged) records are all there is, and the evidence says so.
    let out = tripseal()
        .arg("--config")
        .arg(&f.config)
        .args(["check", "--allow-unsigned", "--format", "json", "--db"])
        .arg(&f.db)
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let o = &doc["drift"][0]["origin"];
    assert_eq!(o["verdict"], "matches-package", "{o}");
    assert_eq!(o["evidence"], "host-records-only", "{o}");
    assert!(
        o["note"]
            .as_str()
            .unwrap()
            .contains("skipped or did not verify"),
        "{o}"
    );

    // The next version, from the archive: its content is what the signed
    // chain says.
    let cached = f.upgrade("1:2.0", "upgraded\n");
    let o = f.tool_origin();
    assert_eq!(o["verdict"], "matches-package", "{o}");
    assert_eq!(o["evidence"], "verified-by-archive", "{o}");

    // A .deb swapped in apt's cache is not the one the index signs.
    let good = std::fs::read(&cached).unwrap();
    let mut bad = good.clone();
    bad.push(b'\n');
    std::fs::write(&cached, &bad).unwrap();
    let o = f.tool_origin();
    assert_eq!(o["evidence"], "host-records-only", "{o}");
    assert!(
        o["note"]
            .as_str()
            .unwrap()
            .contains("is not the .deb the archive signed"),
        "{o}"
    );
    std::fs::write(&cached, &good).unwrap();
    // A FIFO in its place is never opened: the check ends, and says why.
    std::fs::remove_file(&cached).unwrap();
    mkfifo(&cached);
    let o = f.tool_origin();
    assert_eq!(o["evidence"], "host-records-only", "{o}");
    assert!(o["note"].as_str().unwrap().contains("FIFO"), "{o}");
    std::fs::remove_file(&cached).unwrap();
    std::fs::write(&cached, &good).unwrap();

    // A key planted in the keyring: the keyring is no longer what the
    // verified baseline records, so none of its keys count.
    let keyring = f.archive.keys.join("archive.gpg");
    let genuine = std::fs::read(&keyring).unwrap();
    let planter = Archive::new(&work.path().join("planter"), "rsa3072");
    let mut planted = genuine.clone();
    planted.extend(std::fs::read(planter.keys.join("archive.gpg")).unwrap());
    std::fs::write(&keyring, &planted).unwrap();
    let o = f.tool_origin();
    assert_eq!(o["evidence"], "host-records-only", "{o}");
    std::fs::write(&keyring, &genuine).unwrap();
    // Nor is a symlink to the very same keyring elsewhere: a keyring is
    // read where the baseline recorded it, never through a link.
    let elsewhere = work.path().join("elsewhere.gpg");
    std::fs::write(&elsewhere, &genuine).unwrap();
    std::fs::remove_file(&keyring).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &keyring).unwrap();
    let o = f.tool_origin();
    assert_eq!(o["evidence"], "host-records-only", "{o}");
    std::fs::remove_file(&keyring).unwrap();
    std::fs::write(&keyring, &genuine).unwrap();

    // A key of another keyring the baseline records, which no source names:
    // apt would not take its signature for this source, nor does tripseal.
    let release = f.archive.lists_file("_InRelease");
    let genuine_release = std::fs::read(&release).unwrap();
    let resigned = f.other.work.join("InRelease");
    std::fs::copy(f.archive.repo.join("Release"), f.other.repo.join("Release")).unwrap();
    f.other.gpg(
        &["--clearsign", "-o"]
            .into_iter()
            .chain([resigned.to_str().unwrap(), "Release"])
            .collect::<Vec<_>>(),
    );
    std::fs::copy(&resigned, &release).unwrap();
    let o = f.tool_origin();
    assert_eq!(o["evidence"], "host-records-only", "{o}");
    assert!(
        o["note"]
            .as_str()
            .unwrap()
            .contains("no signature is by a key"),
        "{o}"
    );
    // Nor does a sources file rewritten to name that keyring: the baseline
    // does not record it so, and a sources file it no longer vouches for
    // leaves no key at all, not even apt's default keyring (which holds
    // the other key here).
    let sources = f.archive.work.join("sources.list");
    let genuine_sources = std::fs::read_to_string(&sources).unwrap();
    std::fs::write(
        &sources,
        genuine_sources.replace("archive.gpg", "other.gpg"),
    )
    .unwrap();
    let o = f.tool_origin();
    assert_eq!(o["evidence"], "host-records-only", "{o}");
    std::fs::write(&sources, &genuine_sources).unwrap();
    std::fs::write(&release, &genuine_release).unwrap();

    // An index edited after apt fetched it is not what InRelease signs.
    let packages = f.archive.lists_file("_Packages");
    let index = std::fs::read(&packages).unwrap();
    std::fs::write(&packages, b"").unwrap();
    let o = f.tool_origin();
    assert_eq!(o["evidence"], "host-records-only", "{o}");
    std::fs::write(&packages, &index).unwrap();

    // So is an InRelease edited after apt fetched it.
    let signed = std::fs::read_to_string(&release).unwrap();
    std::fs::write(&release, signed.replacen("Date:", "Dote:", 1)).unwrap();
    let o = f.tool_origin();
    assert_eq!(o["evidence"], "host-records-only", "{o}");
    assert!(
        o["note"].as_str().unwrap().contains("does not verify"),
        "{o}"
    );
    std::fs::write(&release, &signed).unwrap();

    // update accepts the archive's word, and diff shows it.
    let out = tripseal()
        .arg("--config")
        .arg(&f.config)
        .args(["update", "--only-packaged=verified-by-archive", "--trust"])
        .arg(&f.public)
        .args(["--format", "json", "--db"])
        .arg(&f.db)
        .output()
        .unwrap();
    assert_ok(&out);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let accepted: Vec<&str> = doc["drift"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap())
        .collect();
    assert_eq!(accepted, [f.tool.as_str()], "{doc}");
    assert_ok(&sign_with(&f.key, &f.db, &[]));
    let out = tripseal()
        .args(["diff", "--trust"])
        .arg(&f.public)
        .args(["--format", "json"])
        .arg(f.db.with_extension("db.prev"))
        .arg(&f.db)
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        doc["drift"][0]["origin"]["evidence"], "verified-by-archive",
        "{doc}"
    );
    // What is left has no content a package vouches for: the keyring's
    // rewrite above and the package directory's times.
    let left = sealed_check(&f.db, &f.config, &f.public);
    assert!(!left.contains_key(&f.tool), "{left:?}");
    assert!(
        left.values()
            .all(|d| d["type"] != "file" || d["origin"]["verdict"] == "not-packaged"),
        "{left:?}"
    );
}

#[test]
fn an_ed25519_archive_key_verifies_too() {
    let _turn = dpkg_turn();
    let work = tempfile::tempdir().unwrap();
    let f = installed_from_archive(work.path(), "ed25519");
    f.upgrade("1:2.0", "upgraded\n");
    let o = f.tool_origin();
    assert_eq!(o["verdict"], "matches-package", "{o}");
    assert_eq!(o["evidence"], "verified-by-archive", "{o}");
    assert!(
        o["note"]
            .as_str()
            .unwrap()
            .contains(&f.archive.fingerprint())
    );
}
