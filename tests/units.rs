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
        // A template is verified as an instance of it, as systemd runs it.
        let name = path.file_name().unwrap().to_str().unwrap();
        let dest = tmp.path().join(name.replace("@.", "@app."));
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
            "tripseal-check@app.service",
            "tripseal-check@app.timer",
            "tripseal-collect.service",
            "tripseal-watch.service",
            "tripseal-watch@app.service",
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
    // The collector takes its feeds from the configuration file, which
    // holds the broker's password; it needs no capability at all.
    let collect = std::fs::read_to_string(src.join("tripseal-collect.service")).unwrap();
    assert!(collect.contains("ExecStart=/usr/bin/tripseal collect\n"));
    assert!(collect.contains("CapabilityBoundingSet=\n"));
    let check = std::fs::read_to_string(src.join("tripseal-check.service")).unwrap();
    // Drift (exit 1-7) is not a failed unit; a refused seal (26) is.
    assert!(check.contains("SuccessExitStatus=1 2 3 4 5 6 7\n"));
    // The templates: the same units for the baseline NAME, with its own
    // trust store, and nothing else changed.
    for (template, plain, flags) in [
        (
            "tripseal-check@.service",
            "tripseal-check.service",
            "check --format json",
        ),
        ("tripseal-watch@.service", "tripseal-watch.service", "watch"),
    ] {
        let t = std::fs::read_to_string(src.join(template)).unwrap();
        let p = std::fs::read_to_string(src.join(plain)).unwrap();
        let exec = format!(
            "ExecStart=/usr/bin/tripseal {flags} --db /var/lib/tripseal/%i.db \
             --trust /etc/tripseal/%i.trusted.d\n"
        );
        assert!(t.contains(&exec), "{template}: {exec}");
        let service = |u: &str| -> Vec<String> {
            let body = &u[u.find("[Service]").unwrap()..];
            body.lines()
                .filter(|l| !l.starts_with("ExecStart=") && !l.starts_with('#'))
                .map(str::to_string)
                .collect()
        };
        assert_eq!(service(&t), service(&p), "{template} differs from {plain}");
    }
}
