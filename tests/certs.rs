//! Certificates among what the rules select, made by openssl here: what
//! each is, and which expired or expire soon, from `check` and the daemon.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::Value;

fn openssl(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "openssl {args:?}: {}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A self-signed RSA certificate `NAME.pem` for CN=NAME valid `days` from
/// now (negative: it ended that many days ago).
fn cert(dir: &Path, name: &str, days: i32) {
    let key = format!("{name}.key");
    let pem = format!("{name}.pem");
    let subj = format!("/CN={name}");
    openssl(
        dir,
        &[
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &pem,
            "-days", "1", "-subj", &subj,
        ],
    );
    let csr = format!("{name}.csr");
    openssl(
        dir,
        &[
            "x509",
            "-x509toreq",
            "-in",
            &pem,
            "-signkey",
            &key,
            "-out",
            &csr,
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-signkey",
            &key,
            "-days",
            &days.to_string(),
            "-out",
            &pem,
        ],
    );
    std::fs::remove_file(dir.join(csr)).unwrap();
    std::fs::rename(dir.join(&key), dir.join(format!("{name}.key.txt"))).unwrap();
}

/// A tree of certificates and its baseline.
fn certificates() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("tree");
    std::fs::create_dir(&root).unwrap();
    cert(&root, "soon", 10);
    cert(&root, "old", -1);
    cert(&root, "far", 365);
    openssl(
        &root,
        &[
            "x509", "-in", "far.pem", "-outform", "DER", "-out", "far.der",
        ],
    );
    // A site's own pair of certificates, and a bundle of published roots.
    let pair = [
        std::fs::read(root.join("far.pem")).unwrap(),
        std::fs::read(root.join("soon.pem")).unwrap(),
    ]
    .concat();
    std::fs::write(root.join("pair.crt"), &pair).unwrap();
    // A damaged block first (not base64) hides nothing after it.
    let damaged = [
        b"-----BEGIN CERTIFICATE-----\n@@ not base64 @@\n-----END CERTIFICATE-----\n".to_vec(),
        std::fs::read(root.join("far.pem")).unwrap(),
    ]
    .concat();
    std::fs::write(root.join("damaged.crt"), damaged).unwrap();
    let roots = tmp.path().join("roots");
    std::fs::create_dir(&roots).unwrap();
    let mut bundle = pair.clone();
    for i in 0..8 {
        let pem = roots.join(format!("r{i}.pem"));
        openssl(
            &roots,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "/dev/null",
                "-out",
                pem.to_str().unwrap(),
                "-days",
                "30",
                "-subj",
                &format!("/CN=root {i}"),
            ],
        );
        bundle.extend(std::fs::read(&pem).unwrap());
    }
    std::fs::write(root.join("bundle.crt"), bundle).unwrap();
    std::fs::write(root.join("notes.pem"), "not a certificate\n").unwrap();
    mkfifo(&root.join("fifo.pem"));
    let rules = rules_for(tmp.path(), &root, FULL);
    let db = tmp.path().join("b.db");
    assert_ok(&init(&rules, &db));
    (tmp, root, db)
}

#[test]
fn check_says_what_each_certificate_is_and_which_expire() {
    let (_tmp, root, db) = certificates();
    let out = check_unsigned(&db, &["--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "no drift: {}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let certs = doc["certificates"].as_array().unwrap();
    let of = |file: &str| -> Vec<&Value> {
        certs
            .iter()
            .filter(|c| c["path"] == root.join(file).to_str().unwrap())
            .collect()
    };
    // Ten roots, each its own issuer: a trust store, listed but never
    // reported (nothing on this host renews a published root); a site's
    // pair of certificates is no store.
    assert_eq!(of("bundle.crt").len(), 10, "{doc}");
    assert!(of("bundle.crt").iter().all(|c| c["trust_store"] == true));
    assert_eq!(of("pair.crt").len(), 2, "{doc}");
    assert!(of("pair.crt").iter().all(|c| c["trust_store"] == false));
    assert_eq!(of("soon.pem")[0]["trust_store"], false);
    assert!(of("notes.pem").is_empty() && of("fifo.pem").is_empty());
    assert_eq!(of("damaged.crt").len(), 1, "{doc}");
    assert_eq!(of("damaged.crt")[0]["sha256"], of("far.pem")[0]["sha256"]);
    let soon = of("soon.pem")[0];
    assert_eq!(soon["subject"], "CN=soon", "{soon}");
    assert_eq!(soon["issuer"], "CN=soon");
    assert_eq!(soon["key_type"], "rsa");
    assert_eq!(soon["key_bits"], 2048);
    assert_eq!(soon["status"], "expiring");
    let fingerprint = openssl(
        &root,
        &[
            "x509",
            "-in",
            "soon.pem",
            "-noout",
            "-fingerprint",
            "-sha256",
        ],
    );
    let fingerprint = fingerprint
        .trim()
        .rsplit('=')
        .next()
        .unwrap()
        .replace(':', "")
        .to_lowercase();
    assert_eq!(soon["sha256"], fingerprint.as_str());
    let serial = openssl(&root, &["x509", "-in", "soon.pem", "-noout", "-serial"]);
    let serial = serial.trim().trim_start_matches("serial=").to_lowercase();
    assert_eq!(
        soon["serial"]
            .as_str()
            .unwrap()
            .replace(':', "")
            .to_lowercase()
            .trim_start_matches('0'),
        serial.trim_start_matches('0')
    );
    assert_eq!(of("old.pem")[0]["status"], "expired");
    assert_eq!(of("far.pem")[0]["status"], "valid");
    assert_eq!(of("far.der")[0]["sha256"], of("far.pem")[0]["sha256"]);

    // The events: one per certificate due, none for the valid ones.
    let out = check_unsigned(&db, &["--format", "events"]);
    let events = event_lines(&out);
    let due: Vec<(String, String)> = events
        .iter()
        .filter(|e| e["type"].as_str().unwrap().starts_with("fim-cert-"))
        .map(|e| {
            let p = Path::new(e["path"].as_str().unwrap());
            (
                e["type"].as_str().unwrap().to_string(),
                p.file_name().unwrap().to_string_lossy().into_owned(),
            )
        })
        .collect();
    let want = |t: &str, f: &str| (t.to_string(), f.to_string());
    assert_eq!(
        due,
        [
            want("fim-cert-expired", "old.pem"),
            want("fim-cert-expiring", "pair.crt"),
            want("fim-cert-expiring", "soon.pem"),
        ],
        "{events:?}"
    );

    // --fast reads nothing that did not change, and says them all the same.
    let out = tripseal()
        .args([
            "check",
            "--fast",
            "--allow-unsigned",
            "--format",
            "events",
            "--db",
        ])
        .arg(&db)
        .output()
        .unwrap();
    let fast = stdout(&out)
        .lines()
        .filter(|l| l.contains("\"fim-cert-"))
        .count();
    assert_eq!(fast, due.len(), "{}", stdout(&out));

    // A shorter window: nothing expiring, the expired one still said; the
    // human report says it although nothing drifted.
    let out = check_unsigned(&db, &["--cert-warning", "5d"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(
        text.contains("certificates expired or expiring within 5 days (1):"),
        "{text}"
    );
    assert!(text.contains("old.pem  CN=old  not after"), "{text}");
    assert!(!text.contains("soon.pem"), "{text}");
}

#[test]
fn show_says_what_each_certificate_is_while_the_file_is_what_it_records() {
    let (_tmp, root, db) = certificates();
    let entries = entries(&db);
    let soon = &entries[root.join("soon.pem").as_os_str().as_encoded_bytes()];
    assert_eq!(soon["certificates"][0]["subject"], "CN=soon", "{soon}");
    assert_eq!(soon["certificates"][0]["status"], "expiring");
    let out = tripseal().arg("show").arg(&db).output().unwrap();
    assert!(
        stdout(&out).contains("cert CN=soon  issuer CN=soon"),
        "{}",
        stdout(&out)
    );
    // Another certificate in its place: the baseline does not record it,
    // so show says nothing of it.
    std::fs::copy(root.join("far.pem"), root.join("soon.pem")).unwrap();
    let entries = common::entries(&db);
    let soon = &entries[root.join("soon.pem").as_os_str().as_encoded_bytes()];
    assert!(soon.get("certificates").is_none(), "{soon}");
}
