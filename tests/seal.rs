//! The seal on real baselines: every tamper refused with exit 26 and its
//! reason, rollback, keys, trust stores, and interop with the openssl binary.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::*;

/// The tree every test here seals.
const ABC: [(&str, &str); 3] = [("a", "a"), ("b", "b"), ("c", "c")];

fn assert_refused(out: &std::process::Output, reason: &str) {
    assert_eq!(
        out.status.code(),
        Some(26),
        "{}{}",
        stdout(out),
        stderr(out)
    );
    let err = stderr(out);
    assert!(err.contains(&format!("seal refused ({reason})")), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        out.stdout.is_empty(),
        "nothing is reported from a refused baseline"
    );
}

#[test]
fn a_signed_untouched_baseline_is_accepted() {
    let s = Sealed::new(&ABC);
    let out = s.check();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = tripseal()
        .arg("verify")
        .arg("--trust")
        .arg(&s.public)
        .arg(&s.db)
        .output()
        .unwrap();
    assert_ok(&out);
    let text = stdout(&out);
    assert!(text.contains("valid  trusted"), "{text}");
    assert!(
        text.contains("accepted: a trusted key signed exactly this content"),
        "{text}"
    );
}

#[test]
fn every_tamper_is_refused_with_its_reason() {
    let cases: [(&str, &str, &str); 11] = [
        (
            "a hash changed in one row",
            "UPDATE entries SET hash = zeroblob(32) WHERE hash IS NOT NULL AND (dir, name) = \
             (SELECT dir, name FROM entries WHERE hash IS NOT NULL LIMIT 1)",
            "altered",
        ),
        (
            "a row deleted",
            "DELETE FROM entries WHERE (dir, name) = (SELECT dir, name FROM entries LIMIT 1)",
            "altered",
        ),
        (
            "a row added",
            "INSERT INTO entries (dir, name, rule, attrs, type, size, mtime_ns, ctime_ns, inode, \
             dev) SELECT min(id), CAST('evil' AS BLOB), 'tree', 1, 'file', 1, 1, 1, 1, 1 FROM dirs",
            "altered",
        ),
        (
            "a directory renamed",
            "UPDATE dirs SET path = CAST('/etc/' AS BLOB) WHERE id = (SELECT max(id) FROM dirs)",
            "altered",
        ),
        (
            // The tree's files as names "tree/a"... of the directory above:
            // the same paths, split otherwise.
            "a directory split otherwise",
            "UPDATE entries SET dir = (SELECT id FROM dirs ORDER BY path LIMIT 1), \
             name = CAST(CAST('tree/' AS BLOB) || name AS BLOB) \
             WHERE dir = (SELECT id FROM dirs ORDER BY path DESC LIMIT 1); \
             DELETE FROM dirs WHERE id = (SELECT id FROM dirs ORDER BY path DESC LIMIT 1)",
            "altered",
        ),
        (
            "a directory no entry names added",
            "INSERT INTO dirs (path, id) VALUES (CAST('/zzz/' AS BLOB), 999999)",
            "altered",
        ),
        (
            "a row moved to another directory",
            "UPDATE entries SET dir = (SELECT min(id) FROM dirs) WHERE (dir, name) = \
             (SELECT dir, name FROM entries WHERE dir != (SELECT min(id) FROM dirs) LIMIT 1)",
            "altered",
        ),
        (
            "the generation changed",
            "UPDATE meta SET value = 7 WHERE key = 'generation'",
            "altered",
        ),
        (
            "the host changed",
            "UPDATE meta SET value = 'other' WHERE key = 'host'",
            "altered",
        ),
        (
            "the signature bytes flipped",
            "UPDATE signatures SET signature = zeroblob(64)",
            "altered",
        ),
        (
            "the signatures removed",
            "DELETE FROM signatures",
            "unsigned",
        ),
    ];
    for (what, statement, reason) in cases {
        let s = Sealed::new(&ABC);
        sql(&s.db, statement);
        let out = s.check();
        assert_refused(&out, reason);
        let out = tripseal()
            .arg("verify")
            .arg("--trust")
            .arg(&s.public)
            .arg(&s.db)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(26), "verify, {what}");
    }
}

/// What the seal does not vouch for, by design: the time a signer says it
/// signed (`verify` shows it as the signer's word; expiry is signed).
const NOT_SEALED: [&str; 1] = ["signatures.signed_at_ns"];

#[test]
fn every_column_of_every_table_is_sealed() {
    let s = Sealed::new(&ABC);
    assert_ok(&sign_with(&s.key, &s.db, &["--expires", "30d"]));
    let pristine = std::fs::read(&s.db).unwrap();
    let tables = sql_text(
        &s.db,
        "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
    );
    let mut tampered = Vec::new();
    for table in tables.lines() {
        let info = format!("pragma_table_info('{table}')");
        let key = sql_text(&s.db, &format!("SELECT name FROM {info} WHERE pk = 1"));
        let key = key.trim();
        let columns = sql_text(&s.db, &format!("SELECT name FROM {info} ORDER BY cid"));
        for column in columns.lines() {
            std::fs::write(&s.db, &pristine).unwrap();
            // One value of one row changed, keeping its type; NULL becomes 1.
            sql(
                &s.db,
                &format!(
                    "UPDATE {table} SET {column} = CASE typeof({column}) \
                     WHEN 'integer' THEN {column} + 1 WHEN 'real' THEN {column} + 1 \
                     WHEN 'text' THEN {column} || 'x' WHEN 'blob' THEN {column} || x'00' \
                     ELSE 1 END WHERE {key} = (SELECT min({key}) FROM {table})"
                ),
            );
            assert_ne!(std::fs::read(&s.db).unwrap(), pristine, "{table}.{column}");
            let name = format!("{table}.{column}");
            let out = verify(&s.public, &s.db);
            if NOT_SEALED.contains(&name.as_str()) {
                assert_eq!(out.status.code(), Some(0), "{name}: {}", stderr(&out));
            } else {
                // Refused: the seal (26), or a file that is no baseline (24).
                let code = out.status.code();
                assert!(
                    matches!(code, Some(24 | 26)),
                    "{name}: {code:?} {}",
                    stderr(&out)
                );
            }
            tampered.push(name);
        }
    }
    // The tables and columns as tripseal makes them, each tried.
    for must in [
        "meta.value",
        "rules.attrs",
        "dirs.path",
        "dirs.id",
        "entries.dir",
        "entries.name",
        "entries.hash",
        "entries.trusted",
        "signatures.expires_ns",
    ] {
        assert!(tampered.iter().any(|t| t == must), "{must}: {tampered:?}");
    }
    assert!(tampered.len() >= 2 + 3 + 20 + 5, "{tampered:?}");
}

#[test]
fn a_signature_copied_from_another_baseline_does_not_fit() {
    let s = Sealed::new(&ABC);
    // Another baseline, of other content, signed by the same trusted key.
    let other_root = s.dir.join("other");
    std::fs::create_dir(&other_root).unwrap();
    std::fs::write(other_root.join("x"), b"x").unwrap();
    let other = s.dir.join("other.db");
    assert_ok(&init(&rules_for(&s.dir, &other_root, "[\"hash\"]"), &other));
    assert_ok(&s.sign(&s.key, &other));
    // An intruder edits our baseline and pastes the other's signature in.
    sql(
        &s.db,
        "UPDATE entries SET hash = zeroblob(32) WHERE hash IS NOT NULL",
    );
    sql(
        &s.db,
        &format!(
            "ATTACH '{}' AS o; DELETE FROM signatures; INSERT INTO signatures SELECT * FROM o.signatures;",
            other.display()
        ),
    );
    assert_refused(&s.check(), "altered");
}

#[test]
fn keys_outside_the_trust_store_and_empty_stores_are_untrusted() {
    let s = Sealed::new(&ABC);
    let stranger = s.dir.join("stranger.key");
    keygen(&stranger);
    // Trusting only another key.
    let out = s.check_with(&s.db, &s.dir.join("stranger.key.pub"), &[]);
    assert_refused(&out, "untrusted");
    // An empty trust store directory.
    let empty = s.dir.join("trusted.d");
    std::fs::create_dir(&empty).unwrap();
    let out = s.check_with(&s.db, &empty, &[]);
    assert_refused(&out, "untrusted");
    assert!(
        stderr(&out).contains("holds no public key"),
        "{}",
        stderr(&out)
    );
    // Re-signed by an intruder's own key after editing: still untrusted.
    sql(&s.db, "DELETE FROM signatures");
    assert_ok(&s.sign(&stranger, &s.db));
    assert_refused(&s.check(), "untrusted");
}

#[test]
fn trust_stores_are_a_file_a_directory_or_a_glob() {
    let s = Sealed::new(&ABC);
    let second = s.dir.join("second.key");
    keygen(&second);
    let store = s.dir.join("trusted.d");
    std::fs::create_dir(&store).unwrap();
    std::fs::copy(&s.public, store.join("ops.pub")).unwrap();
    std::fs::copy(s.dir.join("second.key.pub"), store.join("backup.pub")).unwrap();
    assert_eq!(s.check_with(&s.db, &store, &[]).status.code(), Some(0));
    let glob = store.join("*.pub");
    assert_eq!(s.check_with(&s.db, &glob, &[]).status.code(), Some(0));
    // A file in the store that is not a public key is an error, not ignored.
    std::fs::write(store.join("README"), b"keys go here").unwrap();
    let out = s.check_with(&s.db, &store, &[]);
    assert_eq!(out.status.code(), Some(17), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not an Ed25519 public key"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_rollback_to_an_older_signed_generation_is_refused() {
    let s = Sealed::new(&ABC);
    assert_eq!(s.check().status.code(), Some(0));
    std::fs::write(s.root.join("a"), b"changed").unwrap();
    let out = tripseal()
        .arg("update")
        .arg("--db")
        .arg(&s.db)
        .output()
        .unwrap();
    assert_ok(&out);
    assert!(
        stdout(&out).contains("generation 2 is not signed"),
        "{}",
        stdout(&out)
    );
    assert_refused(&s.check(), "unsigned");
    assert_ok(&s.sign(&s.key, &s.db));
    assert_eq!(s.check().status.code(), Some(0));
    // Generation 1 is validly signed, but older than what was accepted.
    std::fs::copy(s.dir.join("b.db.prev"), &s.db).unwrap();
    assert_refused(&s.check(), "rollback");
    let out = s.check_with(&s.db, &s.public, &["--allow-rollback"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
}

#[test]
fn broken_files_are_refused_too() {
    let s = Sealed::new(&ABC);
    let bytes = std::fs::read(&s.db).unwrap();
    std::fs::write(&s.db, &bytes[..bytes.len() / 2]).unwrap();
    assert_refused(&s.check(), "unreadable");
    std::fs::write(&s.db, "just text, not SQLite at all; ".repeat(50)).unwrap();
    assert_refused(&s.check(), "unreadable");
}

#[test]
fn vacuum_copy_and_dump_keep_the_seal() {
    let s = Sealed::new(&ABC);
    sql(&s.db, "VACUUM");
    assert_eq!(s.check().status.code(), Some(0), "{}", stderr(&s.check()));
    let copy = s.dir.join("copy.db");
    std::fs::copy(&s.db, &copy).unwrap();
    let reloaded = s.dir.join("reloaded.db");
    let dump = Command::new("sqlite3")
        .arg(&s.db)
        .arg(".dump")
        .output()
        .unwrap();
    assert!(dump.status.success());
    let mut load = Command::new("sqlite3")
        .arg(&reloaded)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    load.stdin.take().unwrap().write_all(&dump.stdout).unwrap();
    assert!(load.wait().unwrap().success());
    for db in [&copy, &reloaded] {
        let out = tripseal()
            .arg("verify")
            .arg("--trust")
            .arg(&s.public)
            .arg(db)
            .output()
            .unwrap();
        assert_ok(&out);
    }
    let digest = |db: &Path| stdout(&tripseal().arg("digest").arg(db).output().unwrap());
    assert_eq!(digest(&s.db), digest(&reloaded));
}

#[test]
fn keys_signing_and_a_second_signer() {
    let s = Sealed::new(&ABC);
    let mode = std::fs::metadata(&s.key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // keygen never overwrites a key.
    let out = tripseal()
        .arg("keygen")
        .arg("--out")
        .arg(&s.key)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(14), "{}", stderr(&out));
    // Signing again with the same key changes nothing.
    let out = s.sign(&s.key, &s.db);
    assert_ok(&out);
    assert!(stdout(&out).contains("already signed"), "{}", stdout(&out));
    // A second operator adds a signature.
    let second = s.dir.join("second.key");
    keygen(&second);
    let out = s.sign(&second, &s.db);
    assert!(stdout(&out).contains(" signed by "), "{}", stdout(&out));
    let out = tripseal()
        .arg("verify")
        .arg("--trust")
        .arg(s.dir.join("second.key.pub"))
        .arg(&s.db)
        .output()
        .unwrap();
    assert_ok(&out);
    assert_eq!(
        stdout(&out).matches("signature   ").count(),
        2,
        "{}",
        stdout(&out)
    );
    // A private key others can read is refused, with the fix.
    std::fs::set_permissions(&s.key, std::fs::Permissions::from_mode(0o640)).unwrap();
    let out = s.sign(&s.key, &s.db);
    assert_eq!(out.status.code(), Some(15));
    assert!(stderr(&out).contains("chmod 600"), "{}", stderr(&out));
}

#[test]
fn diff_verifies_its_reference_only() {
    let s = Sealed::new(&ABC);
    std::fs::write(s.root.join("b"), b"new").unwrap();
    assert_ok(
        &tripseal()
            .arg("update")
            .arg("--db")
            .arg(&s.db)
            .output()
            .unwrap(),
    );
    let prev = s.dir.join("b.db.prev");
    // The reference (generation 1) is signed; the new generation is not yet.
    let out = tripseal()
        .arg("diff")
        .arg(&prev)
        .arg(&s.db)
        .arg("--trust")
        .arg(&s.public)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let out = tripseal()
        .arg("diff")
        .arg(&s.db)
        .arg(&prev)
        .arg("--trust")
        .arg(&s.public)
        .output()
        .unwrap();
    assert_refused(&out, "unsigned");
}

fn openssl(args: &[&str]) -> std::process::Output {
    Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl is installed")
}

#[test]
fn openssl_keys_sign_and_openssl_verifies_tripseal_signatures() {
    let s = Sealed::new(&ABC);
    let dir = s.dir.to_str().unwrap().to_string();
    // A key made by openssl signs; its openssl-made public key is trusted.
    let key = format!("{dir}/ossl.key");
    let public = format!("{dir}/ossl.pub");
    assert!(
        openssl(&["genpkey", "-algorithm", "ed25519", "-out", &key])
            .status
            .success()
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(
        openssl(&["pkey", "-in", &key, "-pubout", "-out", &public])
            .status
            .success()
    );
    assert_ok(&s.sign(Path::new(&key), &s.db));
    assert_eq!(
        s.check_with(&s.db, Path::new(&public), &[]).status.code(),
        Some(0)
    );

    // tripseal's signature checks out with openssl alone (the README recipe).
    let msg = format!("{dir}/message.bin");
    let sig = format!("{dir}/signature.bin");
    assert_ok(
        &tripseal()
            .arg("digest")
            .arg(&s.db)
            .arg("--message")
            .arg(&msg)
            .output()
            .unwrap(),
    );
    let fp = stdout(
        &tripseal()
            .arg("verify")
            .arg("--trust")
            .arg(&s.public)
            .arg(&s.db)
            .output()
            .unwrap(),
    );
    let ours = fp
        .lines()
        .find(|l| l.starts_with("signature") && l.contains("trusted") && !l.contains("not trusted"))
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    sql(
        &s.db,
        &format!(
            "SELECT writefile('{sig}', signature) FROM signatures WHERE fingerprint = '{ours}'"
        ),
    );
    let pubkey = s.public.to_str().unwrap();
    let out = openssl(&[
        "pkeyutl", "-verify", "-pubin", "-inkey", pubkey, "-rawin", "-in", &msg, "-sigfile", &sig,
    ]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("Signature Verified Successfully"),
        "{}",
        stdout(&out)
    );
    // After a tamper, the same recipe fails.
    sql(&s.db, "UPDATE meta SET value = 'other' WHERE key = 'host'");
    assert_ok(
        &tripseal()
            .arg("digest")
            .arg(&s.db)
            .arg("--message")
            .arg(&msg)
            .output()
            .unwrap(),
    );
    let out = openssl(&[
        "pkeyutl", "-verify", "-pubin", "-inkey", pubkey, "-rawin", "-in", &msg, "-sigfile", &sig,
    ]);
    assert!(!out.status.success());

    // The fingerprint is the SHA-256 of the SPKI DER, as openssl computes it.
    let der = openssl(&["pkey", "-pubin", "-in", pubkey, "-outform", "DER"]).stdout;
    let expected = {
        use sha2::Digest;
        tripseal::files::hex(&sha2::Sha256::digest(&der))
    };
    assert_eq!(ours, expected);
}

#[test]
fn bad_trust_store_patterns_and_non_baselines_are_clear_errors() {
    let s = Sealed::new(&ABC);
    // Wildcards belong in the file name only.
    let pattern = s.dir.join("*.d").join("ops.pub");
    let out = s.check_with(&s.db, &pattern, &[]);
    assert_eq!(out.status.code(), Some(17), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("only the file name may hold wildcards"),
        "{}",
        stderr(&out)
    );
    // digest and sign read baselines only.
    let text = s.dir.join("notes.txt");
    std::fs::write(&text, "not a baseline, just some text here ".repeat(30)).unwrap();
    let out = tripseal().arg("digest").arg(&text).output().unwrap();
    assert_eq!(out.status.code(), Some(24), "{}", stderr(&out));
    let out = s.sign(&s.key, &text);
    assert_eq!(out.status.code(), Some(24), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(&text).unwrap().len(),
        36 * 30,
        "left untouched"
    );
}

/// Refused as no usable baseline (24) or by the seal (26), saying `why`.
fn assert_refused_saying(out: &std::process::Output, why: &str, context: &str) {
    assert!(
        matches!(out.status.code(), Some(24 | 26)),
        "{context}: {}",
        stderr(out)
    );
    assert!(stderr(out).contains(why), "{context}: {}", stderr(out));
}

/// A directory stored as text rather than bytes, in the signed file: the
/// same bytes, ordered and concatenated alike, but neither looked up nor
/// read as a path. Refused when the file is opened, before any read.
#[test]
fn a_directory_stored_as_text_is_refused() {
    for statement in [
        "UPDATE dirs SET path = CAST(path AS TEXT)",
        "INSERT INTO dirs (path, id) VALUES ('zzz', 999999)",
        "UPDATE dirs SET path = CAST('/nowhere' AS BLOB) WHERE id = (SELECT max(id) FROM dirs)",
    ] {
        let s = Sealed::new(&ABC);
        sql(&s.db, statement);
        assert_refused_saying(
            &verify(&s.public, &s.db),
            "that are no directory (not bytes, or not ending in '/')",
            statement,
        );
        let out = s.check();
        assert!(
            matches!(out.status.code(), Some(24 | 26)),
            "{statement}: {}",
            stderr(&out)
        );
    }
}

/// Schema 3's lookups search entries by key, where the digest walks each
/// directory's from its first: a signed file whose keys are stored out of
/// order (two cells of a page swapped), or that holds an entry no
/// directory claims (never digested), is refused as damaged before any
/// read trusts it.
#[test]
fn keys_out_of_order_or_unclaimed_are_refused() {
    let s = Sealed::new(&ABC);
    let pristine = std::fs::read(&s.db).unwrap();

    sql(
        &s.db,
        "INSERT INTO entries (dir, name, rule, attrs) VALUES (999999, x'67686f7374', 'tree', 1)",
    );
    assert_refused_saying(
        &verify(&s.public, &s.db),
        "damaged: 1 entries no directory claims",
        "an unclaimed entry",
    );

    std::fs::write(&s.db, &pristine).unwrap();
    let root: usize = sql_text(
        &s.db,
        "SELECT rootpage FROM sqlite_master WHERE name = 'entries'",
    )
    .trim()
    .parse()
    .unwrap();
    let mut image = pristine.clone();
    let page = usize::from(u16::from_be_bytes([image[16], image[17]]));
    let at = (root - 1) * page + if root == 1 { 100 } else { 0 };
    // A leaf of an index b-tree (WITHOUT ROWID) holding every entry.
    assert_eq!(image[at], 0x0a);
    let cells = usize::from(u16::from_be_bytes([image[at + 3], image[at + 4]]));
    assert_eq!(cells, 4, "the tree, a, b and c");
    // The last two cells' pointers swapped: c stored before b.
    let (b, c) = (at + 8 + 2 * (cells - 2), at + 8 + 2 * (cells - 1));
    image.swap(b, c);
    image.swap(b + 1, c + 1);
    std::fs::write(&s.db, &image).unwrap();
    for out in [verify(&s.public, &s.db), s.check()] {
        assert_refused_saying(
            &out,
            "damaged: entries stored out of order",
            "two cells swapped",
        );
    }
}
