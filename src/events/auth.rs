//! Events signed the way Celery's `auth` serializer signs a message
//! (`celery/security/serialization.py`, Celery 5.5 and later), for a
//! consumer that accepts nothing else (`app.setup_security()`,
//! `accept=['auth']`).
//!
//! The message body is base64 of five fields joined by `\x00\x01`: base64
//! of the signer's id (the certificate's issuer attribute values, space
//! separated, then its serial in decimal), base64 of the signature,
//! `application/json`, `utf-8`, and the event's JSON as it is. The
//! signature is RSA-PSS with MGF1 and the longest salt (what Celery's
//! `PSS.MAX_LENGTH` asks for on both sides) over that JSON, with SHA-256,
//! Celery's default `security_digest`. The message's content type is
//! `application/data`.
//!
//! RSA is the `rsa` crate from 0.10 on: constant-time arithmetic (the
//! Marvin timing advisory, RUSTSEC-2023-0071, is about 0.9 and before).

use std::path::Path;

use base64::Engine;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};

use crate::error::Error;
use crate::escape::escape_path;

/// Celery's separator of the packed fields; JSON never holds it.
const SEPARATOR: &[u8] = b"\x00\x01";

/// The message content type the `auth` serializer registers.
pub const CONTENT_TYPE: &str = "application/data";

/// Signs events as one certificate's holder.
pub struct AuthSigner {
    key: rsa::pss::SigningKey<sha2::Sha256>,
    /// The certificate's id, as Celery's `Certificate.get_id()` says it.
    signer: String,
}

impl std::fmt::Debug for AuthSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthSigner")
            .field("signer", &self.signer)
            .finish_non_exhaustive()
    }
}

impl AuthSigner {
    /// The key at `key` (PEM, PKCS#8 or PKCS#1, not readable by group or
    /// others) and the certificate at `cert` (PEM), which must be the key's.
    pub fn load(key: &Path, cert: &Path) -> Result<AuthSigner, Error> {
        let bad = |what: &Path, why: String| {
            Error::invalid(format!(
                "event sink option auth_key/auth_cert: {}: {why}",
                escape_path(what)
            ))
        };
        let (file, meta) =
            crate::files::open_untrusted(key, crate::files::MAX_SMALL_FILE_BYTES, true)
                .map_err(|e| bad(key, e.to_string()))?;
        use std::os::unix::fs::MetadataExt;
        // As for tripseal's own signing key: whoever may write it chooses
        // what signs, whoever may read it can sign.
        let mode = meta.mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(bad(
                key,
                format!(
                    "a private key {} by {} (mode {mode:04o}); chmod 600 {}",
                    if mode & 0o044 != 0 {
                        "readable"
                    } else {
                        "writable"
                    },
                    if mode & 0o007 != 0 {
                        "every user"
                    } else {
                        "its group"
                    },
                    escape_path(key)
                ),
            ));
        }
        let mut pem = String::new();
        std::io::Read::read_to_string(
            &mut std::io::Read::take(file, crate::files::MAX_SMALL_FILE_BYTES),
            &mut pem,
        )
        .map_err(|e| bad(key, e.to_string()))?;
        let private = rsa::PrivateKey::from_pkcs8_pem(&pem)
            .or_else(|_| rsa::PrivateKey::from_pkcs1_pem(&pem))
            .map_err(|_| bad(key, "not an RSA private key in PEM (PKCS#8 or PKCS#1); Celery's auth serializer signs with RSA only".into()))?;
        let cert_pem = crate::files::read_untrusted(cert, crate::files::MAX_SMALL_FILE_BYTES)
            .map_err(|e| bad(cert, e.to_string()))?;
        let (signer, modulus) = certificate_id(&cert_pem).map_err(|why| bad(cert, why))?;
        use rsa::traits::PublicKeyParts;
        let n = private.n().to_be_bytes();
        let trim = |b: &[u8]| {
            b.iter()
                .skip_while(|&&x| x == 0)
                .copied()
                .collect::<Vec<u8>>()
        };
        if trim(&n) != trim(&modulus) {
            return Err(bad(
                cert,
                format!("it is not the certificate of the key {}", escape_path(key)),
            ));
        }
        // RFC 8017, 9.1.1: emLen = ceil((modBits - 1) / 8); the longest
        // salt leaves room for the hash and two bytes.
        let bits = private.n().bit_width() as usize;
        if bits < 2048 {
            return Err(bad(
                key,
                format!("an RSA key of {bits} bits; sign with 2048 bits or more"),
            ));
        }
        let salt = (bits - 1).div_ceil(8) - 32 - 2;
        Ok(AuthSigner {
            key: rsa::pss::SigningKey::new_with_salt_len(private, salt),
            signer,
        })
    }

    /// The `auth` message body for the event JSON `body`.
    pub fn seal(&self, body: &[u8]) -> Result<String, String> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let signature = self
            .key
            .try_sign(body)
            .map_err(|e| format!("cannot sign the event: {e}"))?;
        let signer = b64.encode(self.signer.as_bytes());
        let signature = b64.encode(signature.to_vec());
        let fields: [&[u8]; 5] = [
            signer.as_bytes(),
            signature.as_bytes(),
            b"application/json",
            b"utf-8",
            body,
        ];
        Ok(b64.encode(fields.join(SEPARATOR)))
    }
}

/// Celery's id of the (first) certificate in `pem`, and its RSA modulus.
fn certificate_id(pem: &[u8]) -> Result<(String, Vec<u8>), String> {
    use x509_parser::public_key::PublicKey;
    let block = x509_parser::pem::Pem::iter_from_buffer(pem)
        .flatten()
        .find(|p| p.label == "CERTIFICATE")
        .ok_or("no PEM certificate in it")?;
    let (_, cert) = x509_parser::parse_x509_certificate(&block.contents)
        .map_err(|e| format!("not a certificate: {e}"))?;
    let modulus = match cert.public_key().parsed() {
        Ok(PublicKey::RSA(k)) => k.modulus.to_vec(),
        _ => return Err("not an RSA certificate; Celery's auth serializer takes RSA only".into()),
    };
    // cryptography's `' '.join(x.value for x in cert.issuer)`: every
    // attribute's value, in the order the name holds them.
    let mut values = Vec::new();
    for rdn in cert.issuer().iter() {
        for attr in rdn.iter() {
            let v = attr
                .as_str()
                .map_err(|_| "an issuer attribute that is not a string")?;
            values.push(v.to_string());
        }
    }
    let serial = cert.tbs_certificate.serial.to_str_radix(10);
    Ok((format!("{} {serial}", values.join(" ")), modulus))
}
