//! The Debian package: built here with cargo-deb from this build, installed
//! with `dpkg -i` on this machine, looked at the way an administrator would
//! (`tripseal --version`, `man`, the units, the conffile, the directories,
//! bash completion), then purged, leaving nothing behind.
//!
//! It installs into the real system (as root, which scripts/test.sh is), so
//! it refuses to run where a tripseal package or its directories already
//! exist, and purges on the way out even when an assertion fails. Test
//! binaries run one after another, so no other test sees the installed files.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{stderr, stdout};

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: exit {:?}\n{}{}",
        out.status.code(),
        stdout(&out),
        stderr(&out)
    );
    out
}

/// The package installed; purged when dropped, however the test ends.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = Command::new("dpkg").args(["--purge", "tripseal"]).output();
    }
}

fn build_package(out_dir: &Path) -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    // The binary cargo built for these tests (the dev profile): building a
    // release here would compile everything a second time.
    let built = Command::new("cargo")
        .args([
            "deb",
            "--no-build",
            "--no-strip",
            "--profile",
            "dev",
            "--fast",
            "--locked",
        ])
        .arg("--output")
        .arg(out_dir)
        .current_dir(manifest)
        .output()
        .expect("cargo runs");
    assert!(
        built.status.success(),
        "cargo deb failed (scripts/test.sh installs it: cargo install --locked cargo-deb \
         --version 3.7.0): {}",
        stderr(&built)
    );
    let debs: Vec<PathBuf> = std::fs::read_dir(out_dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .collect();
    assert_eq!(debs.len(), 1, "{debs:?}");
    debs.into_iter().next().unwrap()
}

#[test]
fn the_debian_package_installs_works_and_purges() {
    // Anything but never installed or purged ("not-installed") is not ours
    // to purge: installed, removed with its conffiles kept, half-done.
    let status = Command::new("dpkg-query")
        .args(["-W", "-f=${db:Status-Status}", "tripseal"])
        .output()
        .unwrap();
    let status = stdout(&status);
    assert!(
        ["", "not-installed"].contains(&status.trim()),
        "a tripseal package is on this machine ({status}); this test installs and purges its \
         own: run it where there is none (a run killed half-way leaves its own: \
         dpkg --purge tripseal)"
    );
    for dir in ["/etc/tripseal", "/var/lib/tripseal"] {
        assert!(
            !Path::new(dir).exists(),
            "{dir} exists on this machine; this test installs and purges the package: run it \
             where there is none"
        );
    }
    let tmp = tempfile::tempdir().unwrap();
    let deb = build_package(tmp.path());
    let name = deb.file_name().unwrap().to_str().unwrap();
    assert!(
        name.starts_with(&format!("tripseal_{}", env!("CARGO_PKG_VERSION"))),
        "{name}"
    );

    // What it holds before it is installed: the one conffile; scripts that
    // start nothing (they re-enable on upgrade only what was enabled).
    let control = tmp.path().join("control");
    run(Command::new("dpkg-deb")
        .arg("--control")
        .arg(&deb)
        .arg(&control));
    assert_eq!(
        std::fs::read_to_string(control.join("conffiles"))
            .unwrap()
            .trim(),
        "/etc/tripseal/rules.toml"
    );
    let postinst = std::fs::read_to_string(control.join("postinst")).unwrap();
    assert!(!postinst.contains("deb-systemd-invoke start"), "{postinst}");

    let _purge = Installed;
    run(Command::new("dpkg").arg("-i").arg(&deb));

    // The binary these tests built, not a stale one.
    assert!(
        std::fs::read("/usr/bin/tripseal").unwrap()
            == std::fs::read(env!("CARGO_BIN_EXE_tripseal")).unwrap(),
        "the package holds another binary than the one under test"
    );
    let version = run(Command::new("/usr/bin/tripseal").arg("--version"));
    assert_eq!(
        stdout(&version).trim(),
        format!("tripseal {}", env!("CARGO_PKG_VERSION"))
    );
    // A man page per command, found the way `man` finds it.
    for page in [
        "tripseal",
        "tripseal-check",
        "tripseal-watch",
        "tripseal-rules-explain",
    ] {
        let out = run(Command::new("man").args(["-w", page]));
        assert_eq!(
            stdout(&out).trim(),
            format!("/usr/share/man/man1/{page}.1.gz")
        );
    }
    // The shipped rules, as the conffile the installed tripseal reads.
    assert_eq!(
        std::fs::read_to_string("/etc/tripseal/rules.toml").unwrap(),
        std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/celery-worker.toml")
        )
        .unwrap()
    );
    let explained =
        run(Command::new("/usr/bin/tripseal").args(["rules", "explain", "/etc/shadow"]));
    assert!(
        stdout(&explained).contains("governed by rule"),
        "{}",
        stdout(&explained)
    );
    // The directories: a trust store only root may change, the baselines'.
    for (dir, mode) in [
        ("/etc/tripseal/trusted.d", 0o755),
        ("/var/lib/tripseal", 0o750),
    ] {
        let meta = std::fs::metadata(dir).unwrap_or_else(|e| panic!("{dir}: {e}"));
        assert!(meta.is_dir());
        assert_eq!(meta.permissions().mode() & 0o7777, mode, "{dir}");
    }
    // The units, in place and verified as systemd would load them; none
    // enabled.
    let system = Path::new("/usr/lib/systemd/system");
    let verify_dir = tmp.path().join("units");
    std::fs::create_dir(&verify_dir).unwrap();
    let mut units = Vec::new();
    for unit in [
        "tripseal-check.service",
        "tripseal-check.timer",
        "tripseal-check@.service",
        "tripseal-check@.timer",
        "tripseal-watch.service",
        "tripseal-watch@.service",
        "tripseal-collect.service",
    ] {
        let text =
            std::fs::read_to_string(system.join(unit)).unwrap_or_else(|e| panic!("{unit}: {e}"));
        let dest = verify_dir.join(unit.replace("@.", "@app."));
        std::fs::write(&dest, text).unwrap();
        units.push(dest);
    }
    let verified = Command::new("systemd-analyze")
        .arg("verify")
        .args(&units)
        .output()
        .unwrap();
    assert!(verified.status.success(), "{}", stderr(&verified));
    assert!(stderr(&verified).trim().is_empty(), "{}", stderr(&verified));
    let enabled = run(Command::new("find").args(["/etc/systemd/system", "-name", "tripseal*"]));
    assert_eq!(stdout(&enabled).trim(), "", "units enabled by the install");

    // Bash completion loads, and completes a command.
    let completed = run(Command::new("bash").args([
        "-c",
        "source /usr/share/bash-completion/completions/tripseal && complete -p tripseal && \
         COMP_WORDS=(tripseal ch) COMP_CWORD=1 COMP_LINE='tripseal ch' COMP_POINT=11 && \
         _tripseal tripseal ch tripseal && printf '%s\\n' \"${COMPREPLY[@]}\"",
    ]));
    let completed = stdout(&completed);
    assert!(completed.contains("-F _tripseal tripseal"), "{completed}");
    assert!(completed.lines().any(|l| l == "check"), "{completed}");
    for shell_file in [
        "/usr/share/zsh/vendor-completions/_tripseal",
        "/usr/share/fish/vendor_completions.d/tripseal.fish",
    ] {
        assert!(Path::new(shell_file).is_file(), "{shell_file}");
    }

    // An instance of a template enabled, as `systemctl enable
    // tripseal-check@app.timer` does it.
    let wants = Path::new("/etc/systemd/system/timers.target.wants");
    std::fs::create_dir_all(wants).unwrap();
    let instance = wants.join("tripseal-check@app.timer");
    std::os::unix::fs::symlink(system.join("tripseal-check@.timer"), &instance).unwrap();

    // Purged: nothing of it is left.
    run(Command::new("dpkg").args(["--purge", "tripseal"]));
    assert!(
        std::fs::symlink_metadata(&instance).is_err(),
        "the enabled instance is left"
    );
    for gone in [
        "/usr/bin/tripseal",
        "/etc/tripseal",
        "/var/lib/tripseal",
        "/usr/lib/systemd/system/tripseal-watch.service",
        "/usr/share/man/man1/tripseal-check.1.gz",
    ] {
        assert!(!Path::new(gone).exists(), "{gone} is left after the purge");
    }
}
