//! `tripseal rules check` and `tripseal rules explain`.

mod common;

use common::*;

#[test]
fn rules_check_accepts_the_shipped_rules() {
    for file in [
        "rules/celery-worker.toml",
        "rules/example.toml",
        "rules/celery-app-release.toml",
    ] {
        let out = tripseal().args(["rules", "check", file]).output().unwrap();
        assert_ok(&out);
        assert!(stdout(&out).contains(": OK: "), "{}", stdout(&out));
    }
    // The release rules name a role, and --var renames it.
    let out = tripseal()
        .args([
            "rules",
            "check",
            "rules/celery-app-release.toml",
            "--var",
            "role=web",
        ])
        .output()
        .unwrap();
    assert!(
        stdout(&out).contains("  role web: one baseline for every host"),
        "{}",
        stdout(&out)
    );
    // A role that cannot be a name on one line is refused where it is written.
    let tmp = tempfile::tempdir().unwrap();
    let file = write_rules(
        tmp.path(),
        "role = \"${r}\"\n[vars]\nr = \"a\"\n[[rule]]\nname = \"x\"\npaths = [\"/x\"]\ncheck = [\"hash\"]\n",
    );
    let out = tripseal()
        .args(["rules", "check"])
        .arg(&file)
        .args(["--var", "r=two\nlines"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(17), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(":1:8: role must be a printable name"),
        "{}",
        stderr(&out)
    );
    // A role's rule must compare something the hosts share.
    let file = write_rules(
        tmp.path(),
        "role = \"r\"\n[[rule]]\nname = \"x\"\npaths = [\"/x\"]\ncheck = [\"inode\", \"ctime\"]\n",
    );
    let out = tripseal()
        .args(["rules", "check"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(17), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(":5:9: rule \"x\" checks only what differs between the hosts"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn rules_check_points_at_file_line_and_column() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        (
            "[[rule]]\nname = \"x\"\npaths = [\"/etc/x\"]\ncheck = [\"hash\", \"md5\"]\n",
            ":4:9: ",
            "unknown attribute \"md5\"",
        ),
        (
            "[[rule]]\nname = \"x\"\npaths = [\"/etc/x\"]\ncheck = \"hash\"\nrecursive = true\n",
            ":5:1: ",
            "unknown field `recursive`",
        ),
        (
            "[[rule]]\nname = \"x\"\npaths = [\"/etc/x\"\n",
            ":3:18: ",
            "unclosed array",
        ),
        (
            "[[rule]]\nname = \"x\"\npaths = [\"${app}/x\"]\ncheck = \"hash\"\n",
            ":3:10: ",
            "--var app=VALUE",
        ),
        (
            "[groups]\nmine = [\"hash\", \"sha256\"]\n[[rule]]\nname = \"x\"\npaths = [\"/x\"]\ncheck = \"mine\"\n",
            ":2:8: ",
            "unknown attribute \"sha256\"",
        ),
    ];
    for (text, at, says) in cases {
        let file = write_rules(tmp.path(), text);
        let out = tripseal()
            .args(["rules", "check"])
            .arg(&file)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(17), "{text}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains(&format!("{}{at}", file.display())),
            "{text}: {err}"
        );
        assert!(err.contains(says), "{text}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    // init refuses the same way, before touching anything.
    let db = tmp.path().join("b.db");
    let out = init(&tmp.path().join("rules.toml"), &db);
    assert_eq!(out.status.code(), Some(17));
    assert!(!db.exists());
    // A missing rules file is an I/O error.
    let out = tripseal()
        .args(["rules", "check", "/nonexistent/rules.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(18));
}

#[test]
fn explain_shows_the_winner_the_losers_and_the_exclusions() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = write_rules(
        tmp.path(),
        r#"
[vars]
app_dir = "/srv/app"
[[rule]]
name = "app-tree"
paths = ["${app_dir}/**"]
check = ["type", "hash"]
[[rule]]
name = "task-modules"
paths = ["${app_dir}/**/*.py"]
exclude = ["${app_dir}/tests/**"]
check = ["hash", "mode"]
severity = "critical"
"#,
    );
    let out = tripseal()
        .args(["rules", "explain", "/srv/app/tasks/mail.py", "--rules"])
        .arg(&rules)
        .output()
        .unwrap();
    assert_ok(&out);
    let s = stdout(&out);
    assert!(s.contains("governed by rule \"task-modules\""), "{s}");
    assert!(s.contains("severity critical; checks mode hash"), "{s}");
    assert!(
        s.contains("also matched, less specific: rule \"app-tree\""),
        "{s}"
    );

    let out = tripseal()
        .args(["rules", "explain", "/srv/app/tests/t.py", "--rules"])
        .arg(&rules)
        .output()
        .unwrap();
    assert_ok(&out);
    let s = stdout(&out);
    assert!(s.contains("governed by rule \"app-tree\""), "{s}");
    assert!(s.contains("excluded from rule \"task-modules\""), "{s}");
    assert!(s.contains("by exclude /srv/app/tests/**"), "{s}");

    let out = tripseal()
        .args(["rules", "explain", "/etc/passwd", "--rules"])
        .arg(&rules)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("not selected by any rule"));

    // --var moves the selection.
    let out = tripseal()
        .args([
            "rules",
            "explain",
            "/opt/w/a.py",
            "--var",
            "app_dir=/opt/w",
            "--rules",
        ])
        .arg(&rules)
        .output()
        .unwrap();
    assert_ok(&out);
    // Relative paths are taken from the working directory, `.` and `..` resolved.
    let out = tripseal()
        .current_dir(tmp.path())
        .args(["rules", "explain", "app/./x/../a.py", "--rules"])
        .arg(&rules)
        .arg("--var")
        .arg(format!("app_dir={}/app", tmp.path().display()))
        .output()
        .unwrap();
    assert_ok(&out);
    let expected = format!(
        "{}/app/a.py: governed by rule \"task-modules\"",
        tmp.path().display()
    );
    assert!(stdout(&out).starts_with(&expected), "{}", stdout(&out));
}

#[test]
fn the_embedded_rules_serve_when_no_file_is_found() {
    let tmp = tempfile::tempdir().unwrap();
    let explain = ["rules", "explain", "/etc/ld.so.preload"];
    let out = if std::path::Path::new("/etc/tripseal").exists() {
        // A system install's rules win over the embedded ones, by design:
        // hidden here under an empty directory, in a mount namespace of
        // this one command's own (and a user namespace, so that it works
        // for a developer who is not root).
        let empty = tmp.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        std::process::Command::new("unshare")
            .args(["--map-root-user", "--mount", "--propagation", "private"])
            .args(["sh", "-c"])
            .arg("mount --bind \"$0\" /etc/tripseal && exec \"$@\"")
            .arg(&empty)
            .arg(bin_path())
            .args(explain)
            .current_dir(tmp.path())
            .output()
            .unwrap()
    } else {
        tripseal()
            .current_dir(tmp.path())
            .args(explain)
            .output()
            .unwrap()
    };
    assert_ok(&out);
    assert!(
        stdout(&out).contains("governed by rule \"loader\""),
        "{}",
        stdout(&out)
    );
}
