//! The systemd units in packaging/systemd: `systemd-analyze verify` accepts
//! them without a single warning, with this build as their binary.

mod common;

use std::path::Path;
use std::process::Command;

#[test]
fn systemd_analyze_verify_passes_without_warnings() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/systemd");
    let tmp = tempfile::tempdir().unwrap();
    let bin = common::bin_path();
    let mut units = Vec::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        // verify checks that ExecStart's binary exists: point it at this build.
        let text = text.replace("/usr/bin/tripseal", bin.to_str().unwrap());
        let dest = tmp.path().join(path.file_name().unwrap());
        std::fs::write(&dest, text).unwrap();
        units.push(dest);
    }
    units.sort();
    let names: Vec<_> = units
        .iter()
        .map(|u| u.file_name().unwrap().to_str().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        [
            "tripseal-check.service",
            "tripseal-check.timer",
            "tripseal-watch.service"
        ]
    );
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .args(&units)
        .output()
        .expect("systemd-analyze (scripts/test.sh installs systemd)");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.trim().is_empty(), "warnings: {err}");
}

#[test]
fn the_units_run_what_the_readme_says() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/systemd");
    let watch = std::fs::read_to_string(src.join("tripseal-watch.service")).unwrap();
    assert!(watch.contains("ExecStart=/usr/bin/tripseal watch\n"));
    assert!(watch.contains("ExecReload=/bin/kill -HUP $MAINPID\n"));
    // systemd hears when it is ready, and its watchdog hears it live.
    for notify in ["Type=notify\n", "NotifyAccess=main\n", "WatchdogSec="] {
        assert!(watch.contains(notify), "{notify}");
    }
    for hardening in [
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/tripseal",
        "NoNewPrivileges=yes",
    ] {
        assert!(watch.contains(hardening), "{hardening}");
    }
    let check = std::fs::read_to_string(src.join("tripseal-check.service")).unwrap();
    // Drift (exit 1-7) is not a failed unit; a refused seal (26) is.
    assert!(check.contains("SuccessExitStatus=1 2 3 4 5 6 7\n"));
}
