//! The seal: a canonical digest of a baseline's logical content, Ed25519
//! signatures over it, operator keys, and the trust store.
//!
//! Guarantees:
//! - the digest covers every stored value of the header, the rules and every
//!   entry (up to schema 2 in path byte order; from schema 3 every directory,
//!   then each entry by directory and name), each type-tagged and
//!   length-prefixed, and not the bytes of the SQLite file: `VACUUM`, a copy
//!   or a dump-and-reload keep it, any changed, added or deleted row or
//!   header field breaks it;
//! - from schema 3, whose reads look entries up by key where the digest
//!   walks each directory's, the tables' keys are checked to be stored in
//!   order, unique and all claimed, so that no lookup can find a row the
//!   digest did not see;
//! - the signed message is domain-separated and carries the generation;
//! - signatures live in a table the digest does not cover, so adding one does
//!   not change what the others signed;
//! - a baseline is accepted only when a key of the trust store signed exactly
//!   its content; a private key readable by group or others is refused.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rusqlite::types::ValueRef;
use rusqlite::{OptionalExtension, params};
use sha2::Digest;

use crate::baseline::{Baseline, SIGNATURES_ADD_EXPIRY, SIGNATURES_SCHEMA};
use crate::error::Error;
use crate::escape::{escape_bytes, escape_path};
use crate::files::{create_exclusive, hex, sibling};

const DIGEST_DOMAIN: &[u8] = b"tripseal baseline digest v1\0";
/// A signature without an expiry signs the v1 message; one with an expiry
/// the v2 message, which carries it. The domains differ, so an expiry cannot
/// be stripped by presenting a v2 signature as a v1 one.
const MESSAGE_DOMAIN: &[u8] = b"tripseal seal v1\0";
const MESSAGE_DOMAIN_V2: &[u8] = b"tripseal seal v2\0";
/// Where `check` looks for trusted public keys when `--trust` is not given.
pub const DEFAULT_TRUST_STORE: &str = "/etc/tripseal/trusted.d";

/// The canonical digest of a baseline's logical content.
pub fn digest(baseline: &Baseline) -> Result<[u8; 32], Error> {
    let db_err = |e: rusqlite::Error| Error::Database {
        path: baseline.path().to_path_buf(),
        detail: format!("cannot read it for its digest: {e}"),
    };
    let mut h = Buffered::new();
    h.update(DIGEST_DOMAIN);
    // Every column of `entries` as the one list names them: a column added
    // there is signed without a word here.
    let schema = baseline.header().schema;
    let mut tables = vec![
        ("meta", "SELECT key, value FROM meta ORDER BY key"),
        (
            "rules",
            "SELECT name, severity, attrs FROM rules ORDER BY name",
        ),
    ];
    // Every directory as stored (type and bytes), those no entry names
    // too: whatever a read may meet is sealed. The ids are not: two files
    // of the same content number their directories as their scans went.
    let dirs = crate::baseline::columns::has_dirs(schema);
    let stored = if dirs {
        tables.push(("dirs", "SELECT path FROM dirs ORDER BY path"));
        Some(keys_in_order(baseline)?)
    } else {
        None
    };
    tables.push((
        "entries",
        crate::baseline::columns::Select::Sealed.sql(schema),
    ));
    for (table, sql) in tables {
        put_bytes(&mut h, table.as_bytes());
        let mut stmt = baseline.connection().prepare(sql).map_err(db_err)?;
        let columns = stmt.column_count();
        let mut rows = stmt.query([]).map_err(db_err)?;
        let mut count = 0u64;
        while let Some(row) = rows.next().map_err(db_err)? {
            crate::progress::tick();
            for i in 0..columns {
                put_value(&mut h, row.get_ref(i).map_err(db_err)?);
            }
            count += 1;
        }
        // The row count closes each table, so rows cannot move between tables.
        h.update(&count.to_le_bytes());
        if table == "entries"
            && let Some(stored) = stored
            && stored != count
        {
            return Err(damaged(
                baseline,
                format!(
                    "{} entries no directory claims",
                    stored.saturating_sub(count)
                ),
            ));
        }
    }
    Ok(h.finalize())
}

fn damaged(baseline: &Baseline, what: String) -> Error {
    Error::Database {
        path: baseline.path().to_path_buf(),
        detail: format!(
            "damaged: {what}; tripseal never writes such a file: restore the signed \
             baseline from a copy"
        ),
    }
}

/// Schema 3's keys as stored, walked whole: directories by path, each id
/// once, and entries by (directory id, name), each strictly after the one
/// before. SQLite does not check a b-tree's order as it reads, and the
/// digest walks each directory's entries from its first, while lookups
/// (one entry, the next chunk of a directory) search by key: keys out of
/// order could steer a lookup to a row the digest never reached. Returns
/// how many entries are stored, which the digest's count must equal (a row
/// whose directory is not there is otherwise never digested).
fn keys_in_order(baseline: &Baseline) -> Result<u64, Error> {
    let conn = baseline.connection();
    let db_err = |e: rusqlite::Error| Error::Database {
        path: baseline.path().to_path_buf(),
        detail: format!("cannot read it for its digest: {e}"),
    };
    let mut ids = std::collections::HashSet::new();
    let mut stmt = conn.prepare("SELECT path, id FROM dirs").map_err(db_err)?;
    let mut rows = stmt.query([]).map_err(db_err)?;
    let mut last: Option<Vec<u8>> = None;
    while let Some(row) = rows.next().map_err(db_err)? {
        let (ValueRef::Blob(path), ValueRef::Integer(id)) = (
            row.get_ref(0).map_err(db_err)?,
            row.get_ref(1).map_err(db_err)?,
        ) else {
            return Err(damaged(
                baseline,
                "a directory that is not bytes and a number".into(),
            ));
        };
        if last.as_deref().is_some_and(|l| l >= path) {
            return Err(damaged(baseline, "directories stored out of order".into()));
        }
        if !ids.insert(id) {
            return Err(damaged(baseline, format!("directory id {id} given twice")));
        }
        last = Some(path.to_vec());
    }
    let mut stmt = conn
        .prepare("SELECT dir, name FROM entries")
        .map_err(db_err)?;
    let mut rows = stmt.query([]).map_err(db_err)?;
    let mut last: Option<(i64, Vec<u8>)> = None;
    let mut count = 0u64;
    while let Some(row) = rows.next().map_err(db_err)? {
        crate::progress::tick();
        let (ValueRef::Integer(dir), ValueRef::Blob(name)) = (
            row.get_ref(0).map_err(db_err)?,
            row.get_ref(1).map_err(db_err)?,
        ) else {
            return Err(damaged(
                baseline,
                "an entry key that is not a number and bytes".into(),
            ));
        };
        if last
            .as_ref()
            .is_some_and(|(d, n)| (*d, n.as_slice()) >= (dir, name))
        {
            return Err(damaged(baseline, "entries stored out of order".into()));
        }
        match &mut last {
            Some((d, n)) => {
                *d = dir;
                n.clear();
                n.extend_from_slice(name);
            }
            None => last = Some((dir, name.to_vec())),
        }
        count += 1;
    }
    Ok(count)
}

/// BLAKE3 fed in 64 KiB slices: the digest is the same as feeding every
/// value directly, without the cost of ~20 tiny updates per row.
struct Buffered {
    hasher: blake3::Hasher,
    buf: Vec<u8>,
}

impl Buffered {
    const FLUSH_BYTES: usize = 64 * 1024;

    fn new() -> Buffered {
        Buffered {
            hasher: blake3::Hasher::new(),
            buf: Vec::with_capacity(Self::FLUSH_BYTES * 2),
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= Self::FLUSH_BYTES {
            self.hasher.update(&self.buf);
            self.buf.clear();
        }
    }

    fn finalize(mut self) -> [u8; 32] {
        self.hasher.update(&self.buf);
        *self.hasher.finalize().as_bytes()
    }
}

fn put_bytes(h: &mut Buffered, bytes: &[u8]) {
    h.update(&(bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

/// One SQLite value, tagged with its type so that NULL, 0, "" and x'' differ.
fn put_value(h: &mut Buffered, v: ValueRef<'_>) {
    match v {
        ValueRef::Null => {
            h.update(&[0]);
        }
        ValueRef::Integer(i) => {
            h.update(&[1]);
            h.update(&i.to_le_bytes());
        }
        ValueRef::Real(f) => {
            h.update(&[2]);
            h.update(&f.to_bits().to_le_bytes());
        }
        ValueRef::Text(t) => {
            h.update(&[3]);
            put_bytes(h, t);
        }
        ValueRef::Blob(b) => {
            h.update(&[4]);
            put_bytes(h, b);
        }
    }
}

/// The exact bytes a signature covers: domain, generation, digest (v1); or
/// domain, generation, expiry in nanoseconds since the epoch, digest (v2).
pub fn message(generation: i64, expires_ns: Option<i64>, digest: &[u8; 32]) -> Vec<u8> {
    let mut m = Vec::with_capacity(MESSAGE_DOMAIN_V2.len() + 16 + 32);
    match expires_ns {
        None => m.extend_from_slice(MESSAGE_DOMAIN),
        Some(_) => m.extend_from_slice(MESSAGE_DOMAIN_V2),
    }
    m.extend_from_slice(&generation.to_le_bytes());
    if let Some(t) = expires_ns {
        m.extend_from_slice(&t.to_le_bytes());
    }
    m.extend_from_slice(digest);
    m
}

/// A key's fingerprint: SHA-256 of its SubjectPublicKeyInfo DER, in hex; the
/// same as `openssl pkey -pubin -in KEY.pub -outform DER | sha256sum`.
pub fn fingerprint(key: &VerifyingKey) -> String {
    let der = key
        .to_public_key_der()
        .expect("an Ed25519 public key always encodes");
    hex(&sha2::Sha256::digest(der.as_bytes()))
}

/// Writes a new key pair: `out` (PKCS#8 PEM, mode 0600) and `out.pub` (SPKI PEM).
pub fn keygen(out: &Path) -> Result<(PathBuf, String), Error> {
    let mut seed = zeroize::Zeroizing::new([0u8; 32]);
    getrandom::fill(seed.as_mut()).map_err(|e| Error::Write {
        path: out.to_path_buf(),
        source: std::io::Error::other(format!("no randomness for the key: {e}")),
    })?;
    let key = SigningKey::from_bytes(&seed);
    let pem = key
        .to_pkcs8_pem(Default::default())
        .expect("an Ed25519 key always encodes");
    let public = key
        .verifying_key()
        .to_public_key_pem(Default::default())
        .expect("an Ed25519 public key always encodes");
    let pub_path = sibling(out, ".pub");
    let werr = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Write { path, source }
    };
    // Never overwrite a key, and never write through a planted link.
    create_exclusive(out, 0o600)
        .and_then(|mut f| f.write_all(pem.as_bytes()).and_then(|()| f.sync_all()))
        .map_err(werr(out))?;
    create_exclusive(&pub_path, 0o644)
        .and_then(|mut f| f.write_all(public.as_bytes()).and_then(|()| f.sync_all()))
        .map_err(werr(&pub_path))?;
    Ok((pub_path, fingerprint(&key.verifying_key())))
}

/// Reads an operator's private key, refusing one that others can read.
pub fn load_signing_key(path: &Path) -> Result<SigningKey, Error> {
    let bytes = crate::files::read_strict_checked(path, MAX_KEY_FILE_BYTES, |meta| {
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(Error::invalid(format!(
                "the private key {} is readable by group or others (mode {:04o}); \
                 run `chmod 600 {}` and keep it off the monitored hosts",
                escape_path(path),
                meta.permissions().mode() & 0o7777,
                escape_path(path)
            )));
        }
        Ok(())
    })?;
    let text = zeroize::Zeroizing::new(String::from_utf8(bytes).map_err(|_| {
        Error::invalid(format!(
            "{} is not an Ed25519 private key in PKCS#8 PEM (not text)",
            escape_path(path)
        ))
    })?);
    SigningKey::from_pkcs8_pem(&text).map_err(|e| {
        Error::invalid(format!(
            "{} is not an Ed25519 private key in PKCS#8 PEM ({e}); make one with \
             `tripseal keygen --out KEY` or `openssl genpkey -algorithm ed25519 -out KEY`",
            escape_path(path)
        ))
    })
}

/// A key file is a few hundred bytes; more is not a key.
const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;

fn load_public_key(path: &Path) -> Result<VerifyingKey, Error> {
    let bytes = match crate::files::read_strict(path, MAX_KEY_FILE_BYTES) {
        Ok(b) => b,
        Err(Error::Read { source, .. })
            if !matches!(
                source.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied
            ) =>
        {
            return Err(Error::TrustStore {
                detail: format!("{}: {source}", escape_path(path)),
            });
        }
        Err(e) => return Err(e),
    };
    let text = String::from_utf8(bytes).map_err(|_| Error::TrustStore {
        detail: format!("{} is not text", escape_path(path)),
    })?;
    VerifyingKey::from_public_key_pem(&text).map_err(|e| Error::TrustStore {
        detail: format!(
            "{} is not an Ed25519 public key in SPKI PEM ({e})",
            escape_path(path)
        ),
    })
}

/// The public keys a host trusts.
#[derive(Debug)]
pub struct TrustStore {
    /// What was given (for messages).
    pub source: String,
    pub keys: Vec<(VerifyingKey, PathBuf)>,
}

impl TrustStore {
    /// A public key file, a directory of them (every regular file in it), or
    /// a glob of files. A file that is not a public key is an error: a trust
    /// store is configuration, and half of one must not pass silently.
    pub fn load(spec: &str) -> Result<TrustStore, Error> {
        let path = Path::new(spec);
        // The directory that holds the keys: whoever can write there can
        // add a key (sshd's StrictModes).
        let dir = if path.is_dir() {
            path
        } else {
            crate::files::parent_dir(path)
        };
        if let Ok(meta) = std::fs::metadata(dir) {
            crate::files::strict_mode(dir, &meta).map_err(|detail| Error::Unsafe { detail })?;
        }
        let files: Vec<PathBuf> = if path.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|source| Error::Read {
                    path: path.to_path_buf(),
                    source,
                })?
                .flatten()
                .map(|e| e.path())
                .collect();
            v.sort();
            // Every entry is read as a key: something else planted there (a
            // FIFO, a directory) is an error of load_public_key, not skipped.
            v
        } else if spec.contains(['*', '?', '[']) {
            glob_files(spec)?
        } else if path.exists() {
            vec![path.to_path_buf()]
        } else {
            Vec::new()
        };
        let keys = files
            .into_iter()
            .map(|f| load_public_key(&f).map(|k| (k, f)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TrustStore {
            source: spec.to_string(),
            keys,
        })
    }

    fn trusts(&self, key: &VerifyingKey) -> bool {
        self.keys.iter().any(|(k, _)| k == key)
    }
}

fn glob_files(spec: &str) -> Result<Vec<PathBuf>, Error> {
    let bad = |e: String| Error::TrustStore {
        detail: format!("trust store pattern {spec:?}: {e}"),
    };
    let glob = globset::GlobBuilder::new(spec)
        .literal_separator(true)
        .build()
        .map_err(|e| bad(e.to_string()))?
        .compile_matcher();
    // The directory part has no wildcards in any pattern worth supporting:
    // like Celery's security_cert_store, `/etc/ssl/celery/*.pub`.
    let dir = Path::new(spec)
        .parent()
        .filter(|d| !d.as_os_str().to_string_lossy().contains(['*', '?', '[']))
        .ok_or_else(|| bad("only the file name may hold wildcards".into()))?;
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| glob.is_match(p))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(source) => {
            return Err(Error::Read {
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    files.sort();
    Ok(files)
}

/// One signature found in a baseline.
#[derive(Debug, Clone)]
pub struct SignatureInfo {
    pub fingerprint: String,
    pub signed_at_ns: i64,
    /// When the signer said it stops vouching (`None`: never).
    pub expires_ns: Option<i64>,
    /// Its expiry has passed.
    pub expired: bool,
    /// The signature verifies over this baseline's present content.
    pub valid: bool,
    /// Its key is in the trust store.
    pub trusted: bool,
}

pub use crate::error::SealFailure;

/// What verifying a baseline found.
#[derive(Debug)]
pub struct Verification {
    pub digest: [u8; 32],
    pub generation: i64,
    pub signatures: Vec<SignatureInfo>,
}

impl Verification {
    /// `Ok` when a trusted key signed exactly this content; otherwise the
    /// refusal, with its reason and who signed what.
    pub fn accept(&self, db: &Path, trust: &TrustStore) -> Result<(), Error> {
        let Some(reason) = self.failure() else {
            return Ok(());
        };
        let who = |f: &dyn Fn(&SignatureInfo) -> bool| {
            self.signatures
                .iter()
                .filter(|s| f(s))
                .map(|s| short_fingerprint(&s.fingerprint))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let spec = &trust.source;
        let detail = match reason {
            SealFailure::Unsigned => "it carries no signature".to_string(),
            SealFailure::Untrusted if trust.keys.is_empty() => {
                format!("the trust store {spec} holds no public key")
            }
            SealFailure::Untrusted => format!(
                "signed only by keys not in the trust store {spec} ({})",
                who(&|_| true)
            ),
            SealFailure::Expired => {
                let last = self
                    .signatures
                    .iter()
                    .filter(|s| s.valid && s.trusted)
                    .filter_map(|s| s.expires_ns)
                    .max()
                    .unwrap_or_default();
                format!(
                    "generation {} was signed to be trusted until {}, and that has passed \
                     ({}); an old signed generation is not replayed for ever",
                    self.generation,
                    crate::units::iso8601(last),
                    who(&|s| s.valid && s.trusted)
                )
            }
            _ => format!(
                "its content (generation {}, digest {}) is not what was signed ({})",
                self.generation,
                &hex(&self.digest)[..16],
                who(&|s| !s.valid)
            ),
        };
        Err(Error::Seal {
            path: db.to_path_buf(),
            reason,
            detail,
        })
    }

    /// When the seal stops being accepted: the latest expiry among the
    /// signatures that vouch for this content now (`None`: never).
    pub fn expires_ns(&self) -> Option<i64> {
        let vouching = self
            .signatures
            .iter()
            .filter(|s| s.valid && s.trusted && !s.expired);
        let mut latest = None;
        for s in vouching {
            match s.expires_ns {
                None => return None,
                Some(t) => latest = latest.max(Some(t)),
            }
        }
        latest
    }

    /// `None` when a trusted key signed exactly this content, and that
    /// signature has not expired.
    pub fn failure(&self) -> Option<SealFailure> {
        let vouches = |s: &&SignatureInfo| s.valid && s.trusted;
        if self.signatures.iter().filter(vouches).any(|s| !s.expired) {
            None
        } else if self.signatures.iter().any(|s| vouches(&s)) {
            Some(SealFailure::Expired)
        } else if self.signatures.is_empty() {
            Some(SealFailure::Unsigned)
        } else if self.signatures.iter().any(|s| s.trusted || !s.valid) {
            // A trusted key signed other content (the rows changed, or the
            // signature came from another baseline), or a signature is broken.
            Some(SealFailure::Altered)
        } else {
            Some(SealFailure::Untrusted)
        }
    }
}

/// At most the first 16 characters of a fingerprint read from a baseline
/// (which may hold anything there), escaped.
fn short_fingerprint(fp: &str) -> String {
    escape_bytes(fp.chars().take(16).collect::<String>().as_bytes())
}

/// Checks every signature of `baseline` against its content and `trust`, at
/// the time `now_ns`.
pub fn verify(baseline: &Baseline, trust: &TrustStore, now_ns: i64) -> Result<Verification, Error> {
    let digest = digest(baseline)?;
    let generation = baseline.header().generation;
    let signatures = stored_signatures(baseline)?
        .into_iter()
        .map(|s| s.judge(generation, &digest, trust, now_ns))
        .collect();
    Ok(Verification {
        digest,
        generation,
        signatures,
    })
}

/// One row of the signatures table, as far as it could be read.
struct StoredSignature {
    fingerprint: String,
    public_key: Vec<u8>,
    signature: Vec<u8>,
    signed_at_ns: i64,
    /// `Err`: a value that cannot be what a signer signed.
    expires_ns: Result<Option<i64>, ()>,
}

impl StoredSignature {
    /// Each value as SQLite holds it, borrowed, never converted: a row of
    /// the wrong types (TEXT that is not UTF-8, a giant BLOB where text
    /// belongs) is a signature that does not verify, not an error.
    fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredSignature> {
        let text = |i: usize| -> rusqlite::Result<String> {
            Ok(match r.get_ref(i)? {
                ValueRef::Text(t) if t.len() <= 128 => String::from_utf8_lossy(t).into_owned(),
                _ => "(not a fingerprint)".to_string(),
            })
        };
        let blob = |i: usize| -> rusqlite::Result<Vec<u8>> {
            Ok(match r.get_ref(i)? {
                ValueRef::Blob(b) if b.len() <= 64 => b.to_vec(),
                _ => Vec::new(),
            })
        };
        Ok(StoredSignature {
            fingerprint: text(0)?,
            public_key: blob(1)?,
            signature: blob(2)?,
            signed_at_ns: match r.get_ref(3)? {
                ValueRef::Integer(i) => i,
                _ => 0,
            },
            // NULL is "no expiry".
            expires_ns: match r.get_ref(4)? {
                ValueRef::Null => Ok(None),
                ValueRef::Integer(i) => Ok(Some(i)),
                _ => Err(()),
            },
        })
    }

    /// Whether it signs exactly `digest` of `generation`, by a key `trust`
    /// holds, and whether it has expired at `now_ns`.
    fn judge(
        self,
        generation: i64,
        digest: &[u8; 32],
        trust: &TrustStore,
        now_ns: i64,
    ) -> SignatureInfo {
        let mut info = SignatureInfo {
            fingerprint: self.fingerprint,
            signed_at_ns: self.signed_at_ns,
            expires_ns: None,
            expired: false,
            valid: false,
            trusted: false,
        };
        let Ok(expires_ns) = self.expires_ns else {
            return info;
        };
        info.expires_ns = expires_ns;
        info.expired = expires_ns.is_some_and(|t| t <= now_ns);
        let key = <[u8; 32]>::try_from(self.public_key.as_slice())
            .ok()
            .and_then(|b| VerifyingKey::from_bytes(&b).ok());
        let sig = <[u8; 64]>::try_from(self.signature.as_slice())
            .ok()
            .map(|b| Signature::from_bytes(&b));
        if let (Some(k), Some(s)) = (key, sig) {
            let msg = message(generation, expires_ns, digest);
            info.valid = fingerprint(&k) == info.fingerprint && k.verify_strict(&msg, &s).is_ok();
            info.trusted = trust.trusts(&k);
        }
        info
    }
}

/// The rows of the signatures table, in fingerprint order (none without one).
fn stored_signatures(baseline: &Baseline) -> Result<Vec<StoredSignature>, Error> {
    let failed = |e| db_err(baseline.path(), e);
    let conn = baseline.connection();
    let Some(table) = signatures_table(conn).map_err(failed)? else {
        return Ok(Vec::new());
    };
    // Signatures tables made before expiries existed have no such column.
    let expiry = if table.contains("expires_ns") {
        "expires_ns"
    } else {
        "NULL"
    };
    let sql = format!(
        "SELECT fingerprint, public_key, signature, signed_at_ns, {expiry} FROM signatures \
         ORDER BY fingerprint"
    );
    let mut stmt = conn.prepare(&sql).map_err(failed)?;
    let rows = stmt.query_map([], StoredSignature::read).map_err(failed)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(failed)
}

/// What `sign` did.
#[derive(Debug, PartialEq, Eq)]
pub enum Signed {
    Added { fingerprint: String },
    AlreadySigned { fingerprint: String },
}

/// Adds `key`'s signature over the present content of the baseline at `db`.
/// The schema is checked, the content digested and the signature added in
/// one write transaction on one connection: what is signed is what was
/// checked, and nothing the file carries runs (triggers are off).
pub fn sign(
    db: &Path,
    key: &SigningKey,
    now_ns: i64,
    expires_ns: Option<i64>,
) -> Result<Signed, Error> {
    // What `show`, `diff` and `verify` read (the file alone, into memory) is
    // what is signed: the file opened in place must hold the same content.
    let reviewed = digest(&Baseline::open(db)?)?;
    let baseline = Baseline::open_for_signing(db)?;
    let digest = digest(&baseline)?;
    if digest != reviewed {
        return Err(Error::Database {
            path: db.to_path_buf(),
            detail: "its content changed between reading and signing; sign it again once \
                     nothing writes it"
                .into(),
        });
    }
    let msg = message(baseline.header().generation, expires_ns, &digest);
    let public = key.verifying_key();
    let fp = fingerprint(&public);
    let signature = key.sign(&msg);
    let conn = baseline.connection();
    signatures_table_with_expiry(conn).map_err(|e| write_err(db, e))?;
    if signed_already(conn, &public, &fp, expires_ns, &msg).map_err(|e| write_err(db, e))? {
        return Ok(Signed::AlreadySigned { fingerprint: fp });
    }
    // A stale signature by the same key (older content, another expiry) is
    // replaced.
    conn.execute(
        "INSERT OR REPLACE INTO signatures \
         (fingerprint, public_key, signature, signed_at_ns, expires_ns) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            fp,
            public.as_bytes().as_slice(),
            signature.to_bytes().as_slice(),
            now_ns,
            expires_ns
        ],
    )
    .map_err(|e| write_err(db, e))?;
    conn.execute_batch("COMMIT").map_err(|e| write_err(db, e))?;
    Ok(Signed::Added { fingerprint: fp })
}

/// Makes the signatures table, with its expiry column, where it lacks them.
fn signatures_table_with_expiry(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    conn.execute_batch(SIGNATURES_SCHEMA)?;
    if !signatures_table(conn)?.is_some_and(|t| t.contains("expires_ns")) {
        conn.execute_batch(SIGNATURES_ADD_EXPIRY)?;
    }
    Ok(())
}

/// Whether `public` (fingerprint `fp`) already signed `msg` with this expiry.
fn signed_already(
    conn: &rusqlite::Connection,
    public: &VerifyingKey,
    fp: &str,
    expires_ns: Option<i64>,
    msg: &[u8],
) -> rusqlite::Result<bool> {
    let existing: Option<(Vec<u8>, Option<i64>)> = conn
        .query_row(
            "SELECT signature, expires_ns FROM signatures WHERE fingerprint = ?1",
            [fp],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    Ok(existing.is_some_and(|(old, old_expiry)| {
        old_expiry == expires_ns
            && <[u8; 64]>::try_from(old.as_slice()).is_ok_and(|old| {
                public
                    .verify_strict(msg, &Signature::from_bytes(&old))
                    .is_ok()
            })
    }))
}

/// How `check` and `diff` treat the seal of the baseline they start from.
#[derive(Debug, Clone, Default)]
pub struct SealPolicy {
    /// A key file, a directory or a glob; [`DEFAULT_TRUST_STORE`] when `None`.
    pub trust: Option<String>,
    /// Skip the seal altogether (first set-up, tests); said loudly.
    pub allow_unsigned: bool,
    /// Accept a validly signed generation older than one already accepted.
    pub allow_rollback: bool,
    /// Refuse, as a rollback, any generation below this one whatever
    /// `<db>.accepted` says: the generation a running daemon verified.
    pub min_generation: Option<i64>,
}

/// A baseline whose seal was verified (or skipped, on purpose).
pub struct Opened {
    pub baseline: Baseline,
    /// The canonical digest that was verified (`None`: the seal was skipped).
    pub digest: Option<[u8; 32]>,
    /// When the seal stops being accepted (`None`: never, or skipped).
    pub expires_ns: Option<i64>,
}

/// The expiry `expires_ns`, when it falls within `window` of `now_ns`:
/// time to sign the next generation.
pub fn expiring_within(
    expires_ns: Option<i64>,
    now_ns: i64,
    window: std::time::Duration,
) -> Option<i64> {
    let window_ns = i64::try_from(window.as_nanos()).unwrap_or(i64::MAX);
    expires_ns.filter(|&t| t.saturating_sub(now_ns) <= window_ns)
}

/// Opens the baseline at `db` (read once, held as `keep` says) and accepts it only
/// if its seal verifies under `policy` at the time `now_ns`. With
/// `record_generation`, also refuses a rollback below the highest generation
/// accepted for this path, and records a higher one.
pub fn open_sealed(
    db: &Path,
    policy: &SealPolicy,
    record_generation: bool,
    now_ns: i64,
    keep: crate::baseline::Keep,
) -> Result<Opened, Error> {
    let refuse = |reason, detail: String| Error::Seal {
        path: db.to_path_buf(),
        reason,
        detail,
    };
    let baseline = match Baseline::open_keeping(db, keep) {
        Ok(b) => b,
        Err(Error::Database { detail, .. }) if !policy.allow_unsigned => {
            return Err(refuse(SealFailure::Unreadable, detail));
        }
        Err(e) => return Err(e),
    };
    if policy.allow_unsigned {
        return Ok(Opened {
            baseline,
            digest: None,
            expires_ns: None,
        });
    }
    let trust = TrustStore::load(policy.trust.as_deref().unwrap_or(DEFAULT_TRUST_STORE))?;
    let v = verify(&baseline, &trust, now_ns).map_err(|e| match e {
        Error::Database { detail, .. } => refuse(SealFailure::Unreadable, detail),
        e => e,
    })?;
    v.accept(db, &trust)?;
    if let Some(floor) = policy.min_generation
        && v.generation < floor
    {
        return Err(refuse(
            SealFailure::Rollback,
            format!(
                "generation {} is older than generation {floor}, which the daemon verified \
                 and holds; it watches on with {floor}",
                v.generation
            ),
        ));
    }
    if record_generation {
        guard_rollback(db, &v, policy.allow_rollback)?;
    }
    Ok(Opened {
        baseline,
        digest: Some(v.digest),
        expires_ns: v.expires_ns(),
    })
}

/// The digest of `baseline` (read from `db`) when its seal verifies with
/// the keys of `trust`: what `update` asks before it trusts anything
/// generation N records (apt's keyrings).
pub fn verified_digest(baseline: &Baseline, db: &Path, trust: &str) -> Result<[u8; 32], Error> {
    let trust = TrustStore::load(trust)?;
    let v = verify(baseline, &trust, crate::units::now_ns())?;
    v.accept(db, &trust)?;
    // An older generation, however validly signed, may record a keyring
    // with a key retired since: never an anchor.
    guard_rollback(db, &v, false)?;
    Ok(v.digest)
}

/// Refuses `v` when its generation is below the highest accepted before
/// for `db` (unless `allow_rollback`), and records a higher one.
fn guard_rollback(db: &Path, v: &Verification, allow_rollback: bool) -> Result<(), Error> {
    let refuse = |reason, detail: String| Error::Seal {
        path: db.to_path_buf(),
        reason,
        detail,
    };
    let state = accepted_state_path(db);
    let accepted = read_accepted(&state).map_err(|detail| {
        refuse(
            SealFailure::AcceptedUnreadable,
            format!(
                "the record of the generation accepted before, {}, {detail}",
                escape_path(&state)
            ),
        )
    })?;
    match accepted {
        Some(highest) if highest > v.generation && !allow_rollback => Err(refuse(
            SealFailure::Rollback,
            format!(
                "generation {} is older than generation {highest}, accepted before",
                v.generation
            ),
        )),
        Some(highest) if highest >= v.generation => Ok(()),
        _ => {
            if let Err(e) = record_accepted(db, v.generation, &v.digest) {
                log::warn!(
                    "cannot record the accepted generation in {} ({e}); rollback protection \
                     needs that file",
                    escape_path(&state)
                );
            }
            Ok(())
        }
    }
}

/// The generation recorded in `<db>.accepted`: `None` only when there is no
/// such file. Anything else that is not exactly what tripseal writes there
/// (`GENERATION DIGEST\n`) is an error, never "no record": a check fails
/// closed.
pub(crate) fn read_accepted(state: &Path) -> Result<Option<i64>, String> {
    let bytes = match crate::files::read_untrusted(state, 4096) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot be read ({e})")),
    };
    let garbled = || {
        format!(
            "is garbled ({:?}, where tripseal writes a generation and a digest)",
            crate::escape::escape_bytes(&bytes[..bytes.len().min(80)])
        )
    };
    let text = std::str::from_utf8(&bytes).map_err(|_| garbled())?;
    let line = text.strip_suffix('\n').ok_or_else(garbled)?;
    let (generation, digest) = line.split_once(' ').ok_or_else(garbled)?;
    let generation: i64 = generation.parse().map_err(|_| garbled())?;
    if generation < 1
        || digest.len() != 64
        || !digest
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err(garbled());
    }
    Ok(Some(generation))
}

/// Records `generation` (with its digest) as the highest accepted for the
/// baseline at `db`, atomically.
pub(crate) fn record_accepted(
    db: &Path,
    generation: i64,
    digest: &[u8; 32],
) -> std::io::Result<()> {
    use crate::files::Companion;
    // Per process: a check and the daemon writing at once never rename each
    // other's half-written file into place; a killed one's is removed.
    crate::files::remove_dead(db, Companion::AcceptedTmp);
    let tmp = Companion::AcceptedTmp.with_pid(db, std::process::id());
    let _ = std::fs::remove_file(&tmp);
    let mut f = create_exclusive(&tmp, 0o644)?;
    f.write_all(format!("{generation} {}\n", hex(digest)).as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, accepted_state_path(db))
}

/// Where the highest accepted generation of the baseline at `db` is kept.
pub fn accepted_state_path(db: &Path) -> PathBuf {
    sibling(db, ".accepted")
}

/// The SQL of the signatures table, if the baseline has one (the schema
/// check made sure it is one of the forms tripseal makes: with the
/// `expires_ns` column, or from before expiries).
fn signatures_table(conn: &rusqlite::Connection) -> rusqlite::Result<Option<String>> {
    conn.query_row(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'signatures'",
        [],
        |r| r.get(0),
    )
    .optional()
}

fn db_err(path: &Path, e: rusqlite::Error) -> Error {
    Error::Database {
        path: path.to_path_buf(),
        detail: format!("cannot read its signatures: {e}"),
    }
}

fn write_err(path: &Path, e: rusqlite::Error) -> Error {
    Error::Write {
        path: path.to_path_buf(),
        source: std::io::Error::other(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_is_domain_separated_and_carries_the_generation() {
        let d = [7u8; 32];
        let m1 = message(1, None, &d);
        let m2 = message(2, None, &d);
        let m3 = message(1, Some(0), &d);
        assert_ne!(m1, m3);
        assert!(m3.starts_with(MESSAGE_DOMAIN_V2));
        assert_ne!(m1, m2);
        assert!(m1.starts_with(MESSAGE_DOMAIN));
        assert!(m1.ends_with(&d));
    }

    #[test]
    fn values_are_type_tagged() {
        let digest_of = |v: ValueRef<'_>| {
            let mut h = Buffered::new();
            put_value(&mut h, v);
            h.finalize()
        };
        let all = [
            digest_of(ValueRef::Null),
            digest_of(ValueRef::Integer(0)),
            digest_of(ValueRef::Text(b"")),
            digest_of(ValueRef::Blob(b"")),
            digest_of(ValueRef::Text(b"0")),
        ];
        for i in 0..all.len() {
            for j in i + 1..all.len() {
                assert_ne!(all[i], all[j], "{i} vs {j}");
            }
        }
    }

    #[test]
    fn failure_reasons() {
        let sig = |valid, trusted| SignatureInfo {
            fingerprint: String::new(),
            signed_at_ns: 0,
            expires_ns: None,
            expired: false,
            valid,
            trusted,
        };
        let v = |signatures| Verification {
            digest: [0; 32],
            generation: 1,
            signatures,
        };
        assert_eq!(v(vec![]).failure(), Some(SealFailure::Unsigned));
        assert_eq!(
            v(vec![sig(true, false)]).failure(),
            Some(SealFailure::Untrusted)
        );
        assert_eq!(
            v(vec![sig(false, true)]).failure(),
            Some(SealFailure::Altered)
        );
        assert_eq!(
            v(vec![sig(false, false)]).failure(),
            Some(SealFailure::Altered)
        );
        assert_eq!(v(vec![sig(false, true), sig(true, true)]).failure(), None);
    }
}
