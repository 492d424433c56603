//! The little of OpenPGP that checking an apt archive's `InRelease` needs:
//! public keys from a keyring (binary or armored), and the verification of
//! a cleartext-signed message by one of them.
//!
//! Verification only, with public keys only: RSA (PKCS#1 v1.5, the
//! encoded message compared whole, never parsed) and Ed25519 (legacy EdDSA
//! and RFC 9580's own), over SHA-256/384/512. Anything else (SHA-1, MD5,
//! DSA, a critical subpacket it does not know, text outside the signed
//! part) is refused, never skipped: a message verifies or it is an error.
//!
//! Not done: key expiry, revocation and subkey binding signatures. The
//! keys come from keyrings tripseal trusts only when a verified baseline
//! records them as they are (see `apt`), so every key in them is one the
//! operator sealed.

use base64::Engine;
use num_bigint::BigUint;
use sha1::Digest as _;

/// A key that may sign: a primary key or a subkey of a keyring.
pub struct Key {
    /// The v4 fingerprint (SHA-1 of the key packet).
    pub fingerprint: [u8; 20],
    material: Material,
}

enum Material {
    Rsa { n: BigUint, e: BigUint },
    Ed25519(ed25519_dalek::VerifyingKey),
}

impl Key {
    /// The fingerprint in hex, as `gpg --fingerprint` prints it (no spaces).
    pub fn hex(&self) -> String {
        crate::files::hex(&self.fingerprint).to_uppercase()
    }

    fn key_id(&self) -> [u8; 8] {
        self.fingerprint[12..].try_into().expect("20 bytes")
    }
}

/// The OID of Ed25519 in a legacy EdDSA key (RFC 9580, 9.2).
const ED25519_OID: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0xda, 0x47, 0x0f, 0x01];

/// The public keys of a keyring: binary packets (`gpg --export`) or an
/// armored `PUBLIC KEY BLOCK`. Keys of kinds that cannot sign an archive
/// here (DSA, ElGamal, ECDH, v3, v6) are left out; a keyring with none
/// left is an error.
pub fn keys(data: &[u8]) -> Result<Vec<Key>, String> {
    let binary;
    let data = if data.starts_with(b"-----BEGIN PGP PUBLIC KEY BLOCK-----") {
        binary = dearmor(data, "PUBLIC KEY BLOCK")?;
        &binary[..]
    } else {
        data
    };
    let mut out = Vec::new();
    for packet in packets(data)? {
        let (tag, body) = packet?;
        if tag != 6 && tag != 14 {
            continue;
        }
        if let Some(key) = key(body)? {
            out.push(key);
        }
    }
    if out.is_empty() {
        return Err("it holds no OpenPGP key that can sign (RSA or Ed25519, version 4)".into());
    }
    Ok(out)
}

fn key(body: &[u8]) -> Result<Option<Key>, String> {
    let mut r = Reader(body);
    if r.byte()? != 4 {
        return Ok(None);
    }
    r.take(4)?; // creation time
    let material = match r.byte()? {
        1 | 3 => {
            let n = r.mpi()?;
            let e = r.mpi()?;
            Material::Rsa {
                n: BigUint::from_bytes_be(n),
                e: BigUint::from_bytes_be(e),
            }
        }
        22 => {
            let len = r.byte()? as usize;
            if r.take(len)? != ED25519_OID {
                return Ok(None);
            }
            let point = r.mpi()?;
            // The native point, prefixed with 0x40.
            match point.split_first() {
                Some((0x40, p)) if p.len() == 32 => Material::Ed25519(ed25519(p)?),
                _ => return Err("an Ed25519 key whose point is malformed".into()),
            }
        }
        27 => Material::Ed25519(ed25519(r.take(32)?)?),
        _ => return Ok(None),
    };
    let mut sha = sha1::Sha1::new();
    sha.update([0x99]);
    sha.update((body.len() as u16).to_be_bytes());
    sha.update(body);
    Ok(Some(Key {
        fingerprint: sha.finalize().into(),
        material,
    }))
}

fn ed25519(bytes: &[u8]) -> Result<ed25519_dalek::VerifyingKey, String> {
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| "an Ed25519 key of bad length")?;
    ed25519_dalek::VerifyingKey::from_bytes(&bytes)
        .map_err(|_| "an Ed25519 key that is not a point of the curve".into())
}

/// What a cleartext-signed message said, once its signature verified.
pub struct Verified {
    /// The signed text, dash-escaping undone, lines ending in `\n`.
    pub text: Vec<u8>,
    /// The key whose signature verified.
    pub signer: String,
}

/// Verifies the cleartext-signed `message` (an `InRelease`) with `keys`:
/// at least one signature must be by one of them and verify; a signature
/// by one of them that does not verify fails the whole. The message must
/// be the signed block alone (nothing before or after it).
pub fn verify_cleartext(message: &[u8], keys: &[&Key]) -> Result<Verified, String> {
    let text = std::str::from_utf8(message).map_err(|_| "it is not UTF-8 text")?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    if lines.next() != Some("-----BEGIN PGP SIGNED MESSAGE-----") {
        return Err("it does not begin with a signed message's header".into());
    }
    for line in lines.by_ref() {
        if line.is_empty() {
            break;
        }
        // The only armor header of a cleartext message; apt refuses others.
        if !line.starts_with("Hash: ") {
            return Err(format!("an unexpected header line: {line:?}"));
        }
    }
    let mut signed: Vec<&str> = Vec::new();
    let mut ended = false;
    for line in lines.by_ref() {
        if line == "-----BEGIN PGP SIGNATURE-----" {
            ended = true;
            break;
        }
        match line.strip_prefix('-') {
            Some(rest) => match rest.strip_prefix(' ') {
                Some(unescaped) => signed.push(unescaped),
                None => return Err(format!("a line that is not dash-escaped: {line:?}")),
            },
            None => signed.push(line),
        }
    }
    if !ended {
        return Err("it has no signature".into());
    }
    let mut armored = String::from("-----BEGIN PGP SIGNATURE-----\n");
    let mut closed = false;
    for line in lines.by_ref() {
        armored.push_str(line);
        armored.push('\n');
        if line == "-----END PGP SIGNATURE-----" {
            closed = true;
            break;
        }
    }
    if !closed || lines.any(|l| !l.trim().is_empty()) {
        return Err("its signature block is not closed, or text follows it".into());
    }
    // What is signed: trailing blanks of each line removed, lines joined by
    // CRLF, no line ending after the last (RFC 9580, 7.2).
    let lines: Vec<&str> = signed
        .iter()
        .map(|l| l.trim_end_matches([' ', '\t']))
        .collect();
    let canonical = lines.join("\r\n");
    let sigs = dearmor(armored.as_bytes(), "SIGNATURE")?;
    let mut signer = None;
    for packet in packets(&sigs)? {
        let (tag, body) = packet?;
        if tag != 2 {
            return Err(format!("a packet of type {tag} among the signatures"));
        }
        if let Some(key) = verify(body, canonical.as_bytes(), keys)? {
            signer.get_or_insert(key.hex());
        }
    }
    let signer = signer.ok_or("no signature is by a key of the trusted keyrings")?;
    let mut text = Vec::with_capacity(canonical.len());
    for l in lines {
        text.extend_from_slice(l.as_bytes());
        text.push(b'\n');
    }
    Ok(Verified { text, signer })
}

/// Verifies one signature packet over `data`: `Some(key)` when it is by a
/// key of `keys` and verifies, `None` when it is by none of them.
fn verify<'k>(sig: &[u8], data: &[u8], keys: &[&'k Key]) -> Result<Option<&'k Key>, String> {
    let mut r = Reader(sig);
    if r.byte()? != 4 {
        return Ok(None);
    }
    if r.byte()? != 0x01 {
        return Err("a signature that is not of a canonical text document".into());
    }
    let algo = r.byte()?;
    let hash = r.byte()?;
    let hashed_len = r.u16()? as usize;
    let hashed = r.take(hashed_len)?;
    let unhashed_len = r.u16()? as usize;
    let unhashed = r.take(unhashed_len)?;
    let left16 = r.take(2)?;
    let mut issuer: Option<Vec<u8>> = None;
    for (critical, kind, value) in subpackets(hashed)? {
        match kind {
            2 | 3 | 16 | 33 | 20 | 27 | 28 | 30 | 31 | 32 => {}
            _ if critical => return Err(format!("a critical subpacket of unknown type {kind}")),
            _ => {}
        }
        if kind == 33 && value.len() == 21 && value[0] == 4 {
            issuer = Some(value[1..].to_vec());
        }
    }
    if issuer.is_none() {
        // The key id is outside the signed part: a hint, checked by the
        // signature itself.
        for (_, kind, value) in subpackets(unhashed)? {
            if kind == 16 && value.len() == 8 {
                issuer = Some(value.to_vec());
            }
        }
    }
    let issuer = issuer.ok_or("a signature that names no issuer")?;
    let Some(&key) = keys.iter().find(|k| {
        if issuer.len() == 20 {
            k.fingerprint[..] == issuer[..]
        } else {
            k.key_id()[..] == issuer[..]
        }
    }) else {
        return Ok(None);
    };
    let digest = match hash {
        8 => hashed_digest::<sha2::Sha256>(data, &sig[..6 + hashed_len]),
        9 => hashed_digest::<sha2::Sha384>(data, &sig[..6 + hashed_len]),
        10 => hashed_digest::<sha2::Sha512>(data, &sig[..6 + hashed_len]),
        other => {
            return Err(format!(
                "a signature by hash algorithm {other} (SHA-256, SHA-384 or SHA-512 only)"
            ));
        }
    };
    let bad = || {
        Err(format!(
            "the signature by key {} does not verify",
            key.hex()
        ))
    };
    if digest[..2] != left16[..] {
        return bad();
    }
    let good = match (&key.material, algo) {
        (Material::Rsa { n, e }, 1 | 3) => {
            let s = r.mpi()?;
            rsa_pkcs1v15(n, e, s, hash, &digest)
        }
        (Material::Ed25519(k), 22) => {
            let (rr, ss) = (r.mpi()?, r.mpi()?);
            if rr.len() > 32 || ss.len() > 32 {
                return bad();
            }
            let mut raw = [0u8; 64];
            raw[32 - rr.len()..32].copy_from_slice(rr);
            raw[64 - ss.len()..].copy_from_slice(ss);
            k.verify_strict(&digest, &ed25519_dalek::Signature::from_bytes(&raw))
                .is_ok()
        }
        (Material::Ed25519(k), 27) => {
            let raw: [u8; 64] = r.take(64)?.try_into().expect("64 bytes");
            k.verify_strict(&digest, &ed25519_dalek::Signature::from_bytes(&raw))
                .is_ok()
        }
        _ => false,
    };
    if good { Ok(Some(key)) } else { bad() }
}

fn hashed_digest<D: sha2::Digest>(data: &[u8], head: &[u8]) -> Vec<u8> {
    let mut d = D::new();
    d.update(data);
    d.update(head);
    d.update([0x04, 0xff]);
    d.update((head.len() as u32).to_be_bytes());
    d.finalize().to_vec()
}

/// RSASSA-PKCS1-v1_5 verification (RFC 8017, 8.2.2): the encoded message
/// the signature opens to must be, byte for byte, the one built here.
fn rsa_pkcs1v15(n: &BigUint, e: &BigUint, sig: &[u8], hash: u8, digest: &[u8]) -> bool {
    let prefix: &[u8] = match hash {
        8 => &[
            0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x01, 0x05, 0x00, 0x04, 0x20,
        ],
        9 => &[
            0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x02, 0x05, 0x00, 0x04, 0x30,
        ],
        10 => &[
            0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x03, 0x05, 0x00, 0x04, 0x40,
        ],
        _ => return false,
    };
    let k = n.to_bytes_be().len();
    // A modulus under 2048 bits is no archive key of today.
    if k < 256 || *e < BigUint::from(3u8) {
        return false;
    }
    let s = BigUint::from_bytes_be(sig);
    if &s >= n {
        return false;
    }
    let m = s.modpow(e, n).to_bytes_be();
    let t_len = prefix.len() + digest.len();
    if k < t_len + 11 || m.len() > k {
        return false;
    }
    let mut expected = vec![0xffu8; k];
    expected[0] = 0x00;
    expected[1] = 0x01;
    expected[k - t_len - 1] = 0x00;
    expected[k - t_len..k - digest.len()].copy_from_slice(prefix);
    expected[k - digest.len()..].copy_from_slice(digest);
    let mut em = vec![0u8; k - m.len()];
    em.extend_from_slice(&m);
    em == expected
}

/// The data of an ASCII-armored block of `kind` (`SIGNATURE`, `PUBLIC KEY
/// BLOCK`); its checksum line is not needed (what it guards is signed, or
/// anchored by a verified baseline).
fn dearmor(text: &[u8], kind: &str) -> Result<Vec<u8>, String> {
    let text = std::str::from_utf8(text).map_err(|_| "armor that is not UTF-8")?;
    let begin = format!("-----BEGIN PGP {kind}-----");
    let end = format!("-----END PGP {kind}-----");
    let mut lines = text.lines().map(str::trim_end);
    if lines.next() != Some(begin.as_str()) {
        return Err(format!("it does not begin with {begin}"));
    }
    // Armor headers end at the first empty line.
    for line in lines.by_ref() {
        if line.is_empty() {
            break;
        }
        if !line.contains(": ") {
            return Err(format!("an armor header line that is not one: {line:?}"));
        }
    }
    let mut b64 = String::new();
    for line in lines.by_ref() {
        if line == end {
            return base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| format!("its armor is not base64: {e}"));
        }
        if line.starts_with('=') && line.len() == 5 {
            continue;
        }
        b64.push_str(line);
    }
    Err(format!("it does not end with {end}"))
}

type Packet<'a> = Result<(u8, &'a [u8]), String>;

/// The packets of `data`: (tag, body). Partial lengths and indeterminate
/// ones (used for literal and compressed data, never for keys and
/// signatures) are refused.
fn packets(data: &[u8]) -> Result<impl Iterator<Item = Packet<'_>>, String> {
    if data.is_empty() {
        return Err("it is empty".into());
    }
    let mut r = Reader(data);
    Ok(std::iter::from_fn(move || {
        if r.0.is_empty() {
            return None;
        }
        let next = (|| {
            let head = r.byte()?;
            if head & 0x80 == 0 {
                return Err("it is not OpenPGP data (a keybox, or another format?)".into());
            }
            let (tag, len) = if head & 0x40 != 0 {
                let tag = head & 0x3f;
                let first = r.byte()? as usize;
                let len = match first {
                    0..=191 => first,
                    192..=223 => ((first - 192) << 8) + r.byte()? as usize + 192,
                    255 => r.u32()? as usize,
                    _ => return Err("a packet of partial length".to_string()),
                };
                (tag, len)
            } else {
                let tag = (head >> 2) & 0x0f;
                let len = match head & 3 {
                    0 => r.byte()? as usize,
                    1 => r.u16()? as usize,
                    2 => r.u32()? as usize,
                    _ => return Err("a packet of indeterminate length".to_string()),
                };
                (tag, len)
            };
            Ok((tag, r.take(len)?))
        })();
        if next.is_err() {
            r.0 = &[];
        }
        Some(next)
    }))
}

/// One subpacket of a signature: whether it is critical, its type, its value.
type Subpacket<'a> = (bool, u8, &'a [u8]);

/// The subpackets of a signature's subpacket area.
fn subpackets(mut area: &[u8]) -> Result<Vec<Subpacket<'_>>, String> {
    let mut out = Vec::new();
    while !area.is_empty() {
        let mut r = Reader(area);
        let first = r.byte()? as usize;
        let len = match first {
            0..=191 => first,
            192..=254 => ((first - 192) << 8) + r.byte()? as usize + 192,
            _ => r.u32()? as usize,
        };
        let body = r.take(len)?;
        let (&kind, value) = body.split_first().ok_or("an empty subpacket")?;
        out.push((kind & 0x80 != 0, kind & 0x7f, value));
        area = r.0;
    }
    Ok(out)
}

/// Reads a packet's fields, every read bounded by what is left.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("a packet cut short".into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, String> {
        Ok(u16::from_be_bytes(self.take(2)?.try_into().expect("2")))
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().expect("4")))
    }

    /// A multiprecision integer: its bit count, then its bytes.
    fn mpi(&mut self) -> Result<&'a [u8], String> {
        let bits = self.u16()? as usize;
        self.take(bits.div_ceil(8))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_cut_short_or_of_unknown_shape_are_errors() {
        assert!(keys(b"").is_err());
        assert!(keys(&[0x99, 0x01]).is_err(), "cut short");
        assert!(keys(&[0x3f, 0x00]).is_err(), "no packet at all");
        assert!(keys(&[0xc6, 0xe0]).is_err(), "partial length");
    }

    #[test]
    fn a_message_with_text_outside_its_signed_part_is_refused() {
        let before = b"Origin: evil\n-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\nx\n";
        assert!(verify_cleartext(before, &[]).is_err());
        let unescaped = b"-----BEGIN PGP SIGNED MESSAGE-----\n\n-----BEGIN PGP MESSAGE-----\n\
                          -----BEGIN PGP SIGNATURE-----\n\nAAAA\n-----END PGP SIGNATURE-----\n";
        let e = verify_cleartext(unescaped, &[]).err().unwrap();
        assert!(e.contains("dash-escaped"), "{e}");
        let after = b"-----BEGIN PGP SIGNED MESSAGE-----\n\nx\n-----BEGIN PGP SIGNATURE-----\n\n\
                      AAAA\n-----END PGP SIGNATURE-----\nOrigin: evil\n";
        let e = verify_cleartext(after, &[]).err().unwrap();
        assert!(e.contains("text follows"), "{e}");
    }

    #[test]
    fn rsa_refuses_a_signature_not_below_the_modulus() {
        let n = BigUint::from_bytes_be(&[0xff; 256]);
        let e = BigUint::from(65537u32);
        assert!(!rsa_pkcs1v15(&n, &e, &[0xff; 256], 8, &[0; 32]));
        assert!(!rsa_pkcs1v15(&n, &e, &[0x01], 2, &[0; 20]), "SHA-1");
    }
}
