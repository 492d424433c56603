//! X.509 certificates among what the rules select: what each is (subject,
//! issuer, serial, SHA-256 fingerprint, validity, key), and whether it
//! expired or expires soon.
//!
//! The files are those a scan hashed whose name says certificate (`.pem`,
//! `.crt`, `.cer`, `.cert`, `.der`); each is read again (never through a
//! symlink, never a FIFO or a device) and parsed only if its BLAKE3 is the
//! scanned one, so what is reported is what the scan recorded.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sha2::Digest;

/// A certificate file is read up to this size (a CA bundle is some
/// hundreds of KiB).
pub const MAX_CERT_FILE_BYTES: u64 = 4 << 20;

/// Whether a path's name says it holds certificates.
pub fn is_candidate(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
        ["pem", "crt", "cer", "cert", "der"]
            .iter()
            .any(|c| e.eq_ignore_ascii_case(c))
    })
}

/// One certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cert {
    pub subject: String,
    pub issuer: String,
    /// Hex, colon-separated, as openssl prints it.
    pub serial: String,
    /// SHA-256 of the DER, hex.
    pub sha256: String,
    /// Seconds since the epoch.
    pub not_before: i64,
    pub not_after: i64,
    /// `rsa`, `ec`, `ed25519`, `ed448`, `dsa`, or the algorithm's OID.
    pub key_type: String,
    pub key_bits: Option<usize>,
}

/// Where a certificate stands at a moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Valid,
    NotYetValid,
    Expiring,
    Expired,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Valid => "valid",
            Status::NotYetValid => "not-yet-valid",
            Status::Expiring => "expiring",
            Status::Expired => "expired",
        }
    }
}

impl Cert {
    /// Its status at `now` (seconds), expiring when it ends within `window`.
    pub fn status(&self, now: i64, window: i64) -> Status {
        if self.not_after < now {
            Status::Expired
        } else if self.not_before > now {
            Status::NotYetValid
        } else if self.not_after - now <= window {
            Status::Expiring
        } else {
            Status::Valid
        }
    }

    pub fn json(&self, now: i64, window: i64) -> Value {
        json!({
            "subject": self.subject,
            "issuer": self.issuer,
            "serial": self.serial,
            "sha256": self.sha256,
            "not_before": crate::units::iso8601(self.not_before.saturating_mul(1_000_000_000)),
            "not_after": crate::units::iso8601(self.not_after.saturating_mul(1_000_000_000)),
            "key_type": self.key_type,
            "key_bits": self.key_bits,
            "status": self.status(now, window).name(),
        })
    }
}

/// The certificates of one file.
#[derive(Clone, Debug)]
pub struct CertFile {
    pub path: PathBuf,
    pub certs: Vec<Cert>,
    /// A store of roots others publish (the system's, certifi's): its
    /// expired roots are listed, never reported, since nothing validates
    /// with them and nobody on this host renews them.
    pub trust_store: bool,
}

/// Where the system keeps the roots its packages publish (a site's own
/// certificates go beside them in `/etc/ssl/certs`, so only the bundle
/// there counts).
const SYSTEM_TRUST_STORES: [&str; 3] = [
    "/usr/share/ca-certificates/",
    "/etc/pki/ca-trust/extracted/",
    "/etc/ssl/certs/ca-certificates.crt",
];

/// Whether `certs` of the file at `path` are a store of published roots:
/// in the system's store, or a bundle of many roots, each its own issuer
/// (certifi's `cacert.pem`); a few self-signed certificates are a site's
/// own, and said.
fn is_trust_store(path: &Path, certs: &[Cert]) -> bool {
    let p = path.as_os_str().as_encoded_bytes();
    SYSTEM_TRUST_STORES
        .iter()
        .any(|d| p.starts_with(d.as_bytes()))
        || (certs.len() >= 10 && certs.iter().all(|c| c.subject == c.issuer))
}

/// Parses the certificates in `data`: every `CERTIFICATE` block of PEM
/// text, or one DER certificate. A block that does not parse is skipped
/// (and said); a file with none is no certificate file.
pub fn parse(data: &[u8]) -> Vec<Cert> {
    let mut out = Vec::new();
    if data.windows(11).any(|w| w == b"-----BEGIN ") {
        for pem in x509_parser::pem::Pem::iter_from_buffer(data) {
            // Each error has consumed the lines it read: go on to the next.
            let pem = match pem {
                Ok(pem) => pem,
                Err(e) => {
                    log::debug!("a PEM block that does not parse, skipped: {e}");
                    continue;
                }
            };
            if pem.label != "CERTIFICATE" && pem.label != "TRUSTED CERTIFICATE" {
                continue;
            }
            if let Some(c) = der(&pem.contents) {
                out.push(c);
            }
        }
    } else if let Some(c) = der(data) {
        out.push(c);
    }
    out
}

fn der(der: &[u8]) -> Option<Cert> {
    use x509_parser::public_key::PublicKey;
    let (rest, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    // The certificate alone: OpenSSL's trust data or trailing bytes are not
    // part of what its fingerprint names.
    let der = &der[..der.len() - rest.len()];
    let spki = cert.public_key();
    let (key_type, key_bits) = match spki.parsed() {
        Ok(PublicKey::RSA(k)) => ("rsa".to_string(), Some(k.key_size())),
        Ok(PublicKey::EC(k)) => ("ec".to_string(), Some(k.key_size())),
        Ok(PublicKey::DSA(_)) => ("dsa".to_string(), None),
        _ => {
            let oid = spki.algorithm.algorithm.to_id_string();
            match oid.as_str() {
                "1.3.101.112" => ("ed25519".to_string(), Some(256)),
                "1.3.101.113" => ("ed448".to_string(), Some(456)),
                _ => (oid, None),
            }
        }
    };
    let v = cert.validity();
    Some(Cert {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        serial: cert.raw_serial_as_string(),
        sha256: crate::files::hex(&sha2::Sha256::digest(der)),
        not_before: v.not_before.timestamp(),
        not_after: v.not_after.timestamp(),
        key_type,
        key_bits,
    })
}

/// Reads and parses each candidate `(path, scanned BLAKE3)`: only content
/// that still hashes to what the scan recorded.
pub fn inspect(candidates: &[(PathBuf, [u8; 32])]) -> Vec<CertFile> {
    let mut out = Vec::new();
    for (path, scanned) in candidates {
        let Ok((data, _)) = crate::files::read_no_follow(path, MAX_CERT_FILE_BYTES) else {
            continue;
        };
        if blake3::hash(&data).as_bytes() != scanned {
            log::debug!(
                "{}: changed since the scan; its certificates are said at the next",
                crate::escape::escape_path(path)
            );
            continue;
        }
        let certs = parse(&data);
        if !certs.is_empty() {
            out.push(CertFile {
                trust_store: is_trust_store(path, &certs),
                path: path.clone(),
                certs,
            });
        }
    }
    // The scan's threads finish in any order; reports go in path order.
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// The certificates of a baseline entry, read from the file at its path
/// when that file is still the content the entry records (`show`).
pub fn of_entry(e: &crate::scan::Entry) -> Option<Vec<Cert>> {
    let m = e.meta?;
    if m.kind != crate::scan::FileKind::File
        || m.size > MAX_CERT_FILE_BYTES
        || !is_candidate(&e.path)
    {
        return None;
    }
    let files = inspect(&[(e.path.clone(), e.hash?)]);
    files.into_iter().next().map(|f| f.certs)
}

/// The certificates of `files` that expired or expire within `window` at
/// `now`: (file, certificate, status). Trust stores are left out.
pub fn due(files: &[CertFile], now: i64, window: i64) -> Vec<(&CertFile, &Cert, Status)> {
    let mut out = Vec::new();
    for f in files.iter().filter(|f| !f.trust_store) {
        for c in &f.certs {
            let s = c.status(now, window);
            if matches!(s, Status::Expired | Status::Expiring) {
                out.push((f, c, s));
            }
        }
    }
    out
}
