//! `tripseal audit celery` on configurations written the way Celery apps
//! write them: each finding of Celery's security guide, and a clean one.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::*;
use serde_json::Value;

fn audit(app: &Path, extra: &[&str]) -> std::process::Output {
    std::fs::create_dir_all(app.join("none")).unwrap();
    tripseal()
        .args(["audit", "celery", "--app-dir"])
        .arg(app)
        // Never the host's own files: an empty directory of each kind.
        .arg("--celery-config")
        .arg(app.join("none"))
        .arg("--unit")
        .arg(app.join("none"))
        .args(extra)
        .output()
        .unwrap()
}

fn write(path: &Path, text: &str, mode: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// `audit celery --format json` of the app directory `app` with the units
/// in `app/units`, which must find something (exit 1).
fn audit_json_with_units(app: &Path) -> Value {
    std::fs::create_dir_all(app.join("none")).unwrap();
    let out = tripseal()
        .args(["audit", "celery", "--format", "json", "--app-dir"])
        .arg(app)
        .arg("--celery-config")
        .arg(app.join("none"))
        .arg("--unit")
        .arg(app.join("units"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_clean_configuration_exits_0() {
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path();
    write(
        &app.join("celeryconfig.py"),
        "import os\n\
         broker_url = 'amqps://worker:s3cret@broker.internal:5671//'\n\
         broker_use_ssl = {'ca_certs': '/etc/celery/ca.pem', 'cert_reqs': ssl.CERT_REQUIRED}\n\
         accept_content = ['json']\n\
         task_serializer = 'json'\n\
         result_backend = os.environ['RESULT_BACKEND']\n",
        0o600,
    );
    let out = audit(app, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("0 findings in 1 file read; 1 setting computed at run time"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn each_finding_of_the_security_guide_is_reported_with_its_remedy() {
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path();
    write(
        &app.join("celeryconfig.py"),
        "import ssl\n\
         broker_url = 'amqp://worker:s3cret@broker.internal:5672//'\n\
         result_backend = 'rediss://cache.internal:6380/0?ssl_cert_reqs=none'\n\
         accept_content = ['json', 'pickle']\n\
         security_key = '/etc/celery/worker.key'\n\
         security_certificate = '/etc/celery/worker.pem'\n\
         task_serializer = 'json'\n",
        0o644,
    );
    // A Django project: settings under the CELERY_ namespace.
    write(
        &app.join("proj/settings.py"),
        "CELERY_REDIS_BACKEND_USE_SSL = {\n    'cert_reqs': ssl.CERT_NONE,\n}\nCELERY_RESULT_SERIALIZER = 'yaml'\n",
        0o600,
    );
    let unit = app.join("units/celery-worker.service");
    write(
        &unit,
        "[Service]\nExecStart=/srv/app/venv/bin/celery -A proj worker -l INFO\n",
        0o644,
    );
    let doc = audit_json_with_units(app);
    let found: Vec<(String, String, Option<u64>)> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                Path::new(f["file"].as_str().unwrap())
                    .strip_prefix(app)
                    .unwrap()
                    .display()
                    .to_string(),
                f["check"].as_str().unwrap().to_string(),
                f["line"].as_u64(),
            )
        })
        .collect();
    let want =
        |file: &str, check: &str, line: Option<u64>| (file.to_string(), check.to_string(), line);
    assert_eq!(
        found,
        [
            want("celeryconfig.py", "password-readable", None),
            want("celeryconfig.py", "plaintext-broker", Some(2)),
            want("celeryconfig.py", "tls-unverified", Some(3)),
            want("celeryconfig.py", "insecure-serializer", Some(4)),
            want("celeryconfig.py", "auth-incomplete", Some(5)),
            // The key it names is not there.
            want("celeryconfig.py", "key-unreadable", Some(5)),
            want("proj/settings.py", "tls-unverified", Some(1)),
            want("proj/settings.py", "insecure-serializer", Some(4)),
            want("units/celery-worker.service", "worker-as-root", Some(2)),
        ],
        "{doc}"
    );
    assert!(
        doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| !f["remedy"].as_str().unwrap().is_empty())
    );

    // The human report: file:line, the check, and the remedy under it.
    let out = audit(app, &[]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains(&format!(
            "{}:4: insecure-serializer: accept_content allows pickle\n    remedy: accept JSON only",
            app.join("celeryconfig.py").display()
        )),
        "{text}"
    );
}

#[test]
fn a_configuration_is_read_never_run_and_a_fifo_is_never_opened() {
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path();
    let witness = app.join("ran");
    write(
        &app.join("celeryconfig.py"),
        &format!(
            "open({:?}, 'w').write('x')\naccept_content = ['pickle']\n",
            witness.display().to_string()
        ),
        0o600,
    );
    mkfifo(&app.join(".env"));
    let out = audit(app, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(!witness.exists(), "the configuration was executed");
    assert!(stdout(&out).contains(".env: not read"), "{}", stdout(&out));
    assert!(stdout(&out).contains("insecure-serializer"));
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert_ok(&out);
}

/// NAME.key (`algorithm`, PKCS#8 PEM) and NAME.pem, a certificate for it.
fn pair(dir: &Path, name: &str, algorithm: &[&str]) {
    let key = format!("{name}.key");
    let mut args = vec!["genpkey"];
    args.extend_from_slice(algorithm);
    args.extend_from_slice(&["-out", &key]);
    openssl(dir, &args);
    let subj = format!("/CN={name}");
    let pem = format!("{name}.pem");
    openssl(
        dir,
        &[
            "req", "-x509", "-key", &key, "-out", &pem, "-days", "30", "-subj", &subj,
        ],
    );
    std::fs::set_permissions(dir.join(&key), std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[test]
fn keys_are_checked_against_their_certificates_their_mode_and_owner() {
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path();
    let keys = app.join("keys");
    std::fs::create_dir(&keys).unwrap();
    pair(
        &keys,
        "signer",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    );
    pair(
        &keys,
        "client",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    );
    pair(&keys, "edge", &["-algorithm", "ed25519"]);
    // The signing key is readable by every user and owned by another user
    // than the worker's; it is paired with another key's certificate.
    let signer = keys.join("signer.key");
    std::fs::set_permissions(&signer, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::os::unix::fs::chown(&signer, Some(1234), None).unwrap();
    // A key path that is a symlink to a file no rule selects: never
    // followed, so /etc/shadow's mode says nothing here.
    std::os::unix::fs::symlink("/etc/shadow", keys.join("linked.key")).unwrap();
    let k = |n: &str| keys.join(n).display().to_string();
    write(
        &app.join("celeryconfig.py"),
        &format!(
            "security_key = {:?}\nsecurity_certificate = {:?}\n\
             task_serializer = 'auth'\naccept_content = ['auth']\n\
             broker_url = 'amqps://broker.internal//'\n\
             broker_use_ssl = {{'keyfile': {:?}, 'certfile': {:?}, 'ca_certs': '/x'}}\n\
             result_backend = 'rediss://h:6380/0?ssl_keyfile={}&ssl_certfile={}'\n\
             redis_backend_use_ssl = {{'ssl_keyfile': {:?}, 'ssl_certfile': {:?}}}\n",
            k("signer.key"),
            k("client.pem"),
            k("client.key"),
            k("client.pem"),
            k("edge.key"),
            k("edge.pem"),
            k("linked.key"),
            k("edge.pem"),
        ),
        0o600,
    );
    write(
        &app.join("units/w.service"),
        "[Service]\nUser=nobody\nExecStart=/srv/venv/bin/celery -A app worker\n",
        0o644,
    );
    let doc = audit_json_with_units(app);
    let mut found: Vec<(String, String)> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                Path::new(f["file"].as_str().unwrap())
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
                f["check"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    found.sort();
    let want = |f: &str, c: &str| (f.to_string(), c.to_string());
    assert_eq!(
        found,
        [
            want("celeryconfig.py", "key-cert-mismatch"),
            want("signer.key", "key-owner"),
            want("signer.key", "key-readable"),
        ],
        "the EC and Ed25519 pairs match: {doc}"
    );
}

#[test]
fn check_audits_what_a_rule_marks_as_celery_configuration() {
    let tmp = tempfile::tempdir().unwrap();
    let conf = tmp.path().join("celery");
    write(
        &conf.join("celeryconfig.py"),
        "accept_content = ['json', 'pickle']\n",
        0o600,
    );
    write(
        &conf.join("worker.env"),
        "CELERY_BROKER_URL=amqp://u@broker.internal//\n",
        0o600,
    );
    let rules = write_rules(
        tmp.path(),
        &format!(
            "[[rule]]\nname = \"celery-config\"\npaths = [\"{d}\", \"{d}/**\"]\n\
             check = {FULL}\nseverity = \"critical\"\naudit = \"celery\"\n",
            d = conf.display()
        ),
    );
    let db = tmp.path().join("b.db");
    assert_ok(&init(&rules, &db));
    let out = check_unsigned(&db, &["--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "no drift: {}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let checks: Vec<&str> = doc["celery_audit"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["check"].as_str().unwrap())
        .collect();
    assert_eq!(checks, ["insecure-serializer", "plaintext-broker"], "{doc}");

    let out = check_unsigned(&db, &["--format", "events"]);
    let events: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|e: &Value| e["type"] == "fim-celery-config")
        .collect();
    assert_eq!(events.len(), 2, "{}", stdout(&out));
    assert_eq!(
        events[0]["path"],
        conf.join("celeryconfig.py").to_str().unwrap()
    );
    assert_eq!(events[0]["line"], 1);

    // Said in the human report although nothing drifted.
    let out = check_unsigned(&db, &[]);
    assert!(
        stdout(&out).contains("Celery configuration, audited (2 findings):"),
        "{}",
        stdout(&out)
    );

    // A rule that asks for an audit tripseal does not know is refused.
    let bad = write_rules(
        tmp.path(),
        "[[rule]]\nname = \"r\"\npaths = [\"/x\"]\ncheck = \"hash\"\naudit = \"django\"\n",
    );
    let out = tripseal()
        .args(["rules", "check"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(17), "{}", stderr(&out));
    assert!(stderr(&out).contains("django"), "{}", stderr(&out));
}

#[test]
fn config_names_the_celery_configuration_to_audit() {
    let tmp = tempfile::tempdir().unwrap();
    let conf = tmp.path().join("conf/worker_settings.py");
    write(&conf, "task_serializer = 'pickle'\n", 0o600);
    std::fs::create_dir_all(tmp.path().join("none")).unwrap();
    let out = tripseal()
        .arg("audit")
        .arg("celery")
        .arg("--app-dir")
        .arg(tmp.path().join("none"))
        .arg("--unit")
        .arg(tmp.path().join("none"))
        .arg("--config")
        .arg(&conf)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("worker_settings.py:1: insecure-serializer"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_mistyped_path_is_said_not_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path();
    write(
        &app.join("celeryconfig.py"),
        "accept_content = ['json']\n",
        0o600,
    );
    // Clean as it is; a --celery-config that names nothing is not.
    assert_eq!(audit(app, &[]).status.code(), Some(0));
    let typo = app.join("celeryconfg.py");
    let out = audit(app, &["--celery-config", typo.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out)
            .contains("celeryconfg.py: not read: no such file or directory: check the path given"),
        "{}",
        stdout(&out)
    );
}
