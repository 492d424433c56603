//! A role baseline's host-local stat cache, `<db>.stat`: what `check --fast`
//! needs to know on this host and the signed baseline cannot hold (each host
//! of a role has its own inodes and change times).
//!
//! Trust model: the cache is unsigned, written by this host's checks, and
//! vouches for one thing only: at the last check, the entry at this path
//! had these stat fields (type, size, mtime, ctime, inode, dev) and what its
//! rule compares was the signed baseline's. `check --fast` skips reading an
//! entry whose stat fields still match; anything that rewrites a file moves
//! its ctime, which only the kernel sets. So, as with a host's baseline,
//! whoever wants a changed file skipped must forge a stat match: there, by
//! setting the clock back to fake a ctime; here, by writing a row into this
//! file. Both need root; a root intruder defeats `--fast` either way. What
//! bounds them is the same: every `--fast` run re-reads a random share of the
//! entries whatever the cache says (`--reread`), and a check without `--fast`
//! reads everything. The cache is bound to the digest of the baseline it was
//! written against, so a new generation never inherits it; a cache that is
//! missing, torn, of another baseline or malformed is not used (the check
//! reads everything, and says why), never trusted in part.
//!
//! Format: a magic line, the baseline's digest, then per entry the path
//! (length-prefixed bytes), the type, the attribute bits and the stat
//! fields, then the count, all little-endian; a BLAKE3 of all that closes it
//! (against torn writes, not intruders: whoever can write the file can
//! recompute it).

use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::attrs::AttrSet;
use crate::baseline::StatIndex;
use crate::escape::escape_path;
use crate::files::{Companion, create_exclusive};
use crate::scan::{FileKind, Meta};

const MAGIC: &[u8] = b"tripseal stat cache 1\n";
/// A cache larger than this is refused rather than read: a million entries
/// take about 120 MB.
const MAX_BYTES: u64 = 4 * 1024 * 1024 * 1024;
/// Longer than any path the kernel resolves (PATH_MAX is 4096): a larger
/// length is no path, and would only make the reader allocate it.
const MAX_PATH: u32 = 64 * 1024;

/// Where the stat cache of the baseline at `db` is.
pub fn path(db: &Path) -> PathBuf {
    Companion::StatCache.beside(db)
}

/// A new cache for the baseline at `db` (whose digest it is bound to),
/// written beside it a row at a time and renamed into place by
/// [`CacheWriter::finish`]; dropped unfinished, or after any error, it
/// leaves nothing and the cache in place stays. It cannot fail a check: what
/// goes wrong is said once, as a warning.
pub struct CacheWriter {
    tmp: PathBuf,
    target: PathBuf,
    out: Option<Hashing<io::BufWriter<std::fs::File>>>,
    count: u64,
    row: Vec<u8>,
}

impl CacheWriter {
    /// Never through a link: the temporary is created exclusively. `None`
    /// (said) when it cannot be made.
    pub fn create(db: &Path, digest: &[u8; 32]) -> Option<CacheWriter> {
        // A dead check's temporary went before the scan (see
        // `BaselineWriter::create_snapshot`).
        let tmp = Companion::StatCacheTmp.with_pid(db, std::process::id());
        let _ = std::fs::remove_file(&tmp);
        let target = path(db);
        let opened = create_exclusive(&tmp, 0o600).and_then(|file| {
            let mut out = Hashing {
                out: io::BufWriter::new(file),
                hasher: blake3::Hasher::new(),
            };
            out.write_all(MAGIC)?;
            out.write_all(digest)?;
            Ok(out)
        });
        let mut w = CacheWriter {
            tmp,
            target,
            out: None,
            count: 0,
            row: Vec::new(),
        };
        match opened {
            Ok(out) => {
                w.out = Some(out);
                Some(w)
            }
            Err(e) => {
                w.give_up(&e);
                None
            }
        }
    }

    /// One entry that matched the signed baseline, with its stat fields.
    pub fn row(&mut self, path: &Path, meta: &Meta, attrs: AttrSet) {
        let Some(out) = self.out.as_mut() else {
            return; // given up already
        };
        self.row.clear();
        put_row(&mut self.row, path.as_os_str().as_bytes(), meta, attrs);
        match out.write_all(&self.row) {
            Ok(()) => self.count += 1,
            Err(e) => self.give_up(&e),
        }
    }

    /// Closes the cache and renames it into place.
    pub fn finish(mut self) {
        let Some(mut out) = self.out.take() else {
            return;
        };
        let done = (|| {
            out.write_all(&self.count.to_le_bytes())?;
            let sum = out.hasher.finalize();
            out.out.write_all(sum.as_bytes())?;
            out.out
                .into_inner()
                .map_err(|e| e.into_error())?
                .sync_all()?;
            std::fs::rename(&self.tmp, &self.target)
        })();
        match done {
            Ok(()) => log::debug!(
                "stat cache {} written: {} entries",
                escape_path(&self.target),
                self.count
            ),
            Err(e) => self.give_up(&e),
        }
    }

    /// Says why, once, and removes the temporary.
    fn give_up(&mut self, e: &io::Error) {
        self.out = None;
        let _ = std::fs::remove_file(&self.tmp);
        log::warn!(
            "cannot write the stat cache {} ({e}); until a check can, check --fast reads every \
             entry: clear what stands at that name, or let the user running the checks write \
             its directory",
            escape_path(&self.target)
        );
    }
}

impl Drop for CacheWriter {
    fn drop(&mut self) {
        if self.out.is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// A writer that hashes what it writes.
struct Hashing<W: Write> {
    out: W,
    hasher: blake3::Hasher,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

fn put_row(out: &mut Vec<u8>, path: &[u8], m: &Meta, attrs: AttrSet) {
    out.extend_from_slice(&(path.len() as u32).to_le_bytes());
    out.extend_from_slice(path);
    let kind = FileKind::ALL.iter().position(|k| *k == m.kind).unwrap_or(0) as u8;
    out.push(kind);
    out.extend_from_slice(&attrs.bits().to_le_bytes());
    for v in [m.size, m.mtime_ns as u64, m.ctime_ns as u64, m.inode, m.dev] {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// Reads the cache of the baseline at `db` whose digest is `digest` into
/// `index`. `Err` says, in words, why it cannot be used.
pub fn read(db: &Path, digest: &[u8; 32], index: &mut StatIndex) -> Result<u64, String> {
    let cache = path(db);
    let (mut file, meta) = crate::files::open_untrusted(&cache, MAX_BYTES, false).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            "there is none yet (a check writes it)".to_string()
        } else {
            e.to_string()
        }
    })?;
    // Only root (or the user running the checks) may have written it, in a
    // directory nobody else may write: otherwise anyone could vouch for a
    // file they changed.
    crate::files::strict_mode(&cache, &meta)?;
    let dir = crate::files::parent_dir(db);
    let dir_meta = std::fs::metadata(dir).map_err(|e| e.to_string())?;
    crate::files::strict_mode(dir, &dir_meta)?;
    parse(
        io::BufReader::new(crate::progress::Ticking(&mut file)),
        meta.len(),
        digest,
        index,
    )
}

/// Parses a cache of `len` bytes from `input` into `index`, a row at a time.
/// Rows go into `index` before the checksum at the end is known: on `Err`
/// the caller discards the index whole.
fn parse(
    input: impl io::Read,
    len: u64,
    digest: &[u8; 32],
    index: &mut StatIndex,
) -> Result<u64, String> {
    const ROW_FIXED: u64 = 4 + 1 + 2 + 5 * 8;
    let head = MAGIC.len() as u64 + 32;
    let tail = 8 + 32;
    let rows_len = len
        .checked_sub(head + tail)
        .ok_or("it ends before its first row")?;
    let mut r = Reader {
        input,
        hasher: blake3::Hasher::new(),
    };
    if r.take(MAGIC.len())? != MAGIC {
        return Err("it is not a tripseal stat cache of this version".into());
    }
    if r.take(32)? != digest {
        return Err("it was written for another baseline (or generation)".into());
    }
    let (mut left, mut count) = (rows_len, 0u64);
    let mut path = Vec::new();
    while left > 0 {
        let path_len = u32::from_le_bytes(r.array()?);
        if path_len > MAX_PATH {
            return Err("it holds a path longer than any tripseal records".into());
        }
        let row_len = ROW_FIXED + u64::from(path_len);
        if row_len > left {
            return Err("it ends in the middle of a row".into());
        }
        left -= row_len;
        r.take_into(&mut path, path_len as usize)?;
        let kind = *FileKind::ALL
            .get(usize::from(r.array::<1>()?[0]))
            .ok_or("it names an unknown type")?;
        let bits = u16::from_le_bytes(r.array()?);
        let attrs = AttrSet::from_bits(bits).ok_or("it holds unknown attributes")?;
        let meta = Meta {
            kind,
            mode: 0,
            uid: 0,
            gid: 0,
            size: r.u64()?,
            mtime_ns: r.u64()? as i64,
            ctime_ns: r.u64()? as i64,
            inode: r.u64()?,
            nlink: 0,
            dev: r.u64()?,
        };
        index.insert(&path, &meta, attrs);
        count += 1;
    }
    if r.u64()? != count {
        return Err("its count of rows is not the rows it holds".into());
    }
    let sum = *r.hasher.finalize().as_bytes();
    let mut stored = [0u8; 32];
    r.input
        .read_exact(&mut stored)
        .map_err(|_| "it ends in the middle of a row".to_string())?;
    if sum != stored {
        return Err("it is torn or damaged".into());
    }
    Ok(count)
}

/// Reads the cache's fields, hashing them on the way.
struct Reader<R: io::Read> {
    input: R,
    hasher: blake3::Hasher,
}

impl<R: io::Read> Reader<R> {
    fn take(&mut self, n: usize) -> Result<Vec<u8>, String> {
        let mut buf = Vec::new();
        self.take_into(&mut buf, n)?;
        Ok(buf)
    }

    /// Reads `n` bytes into `buf`, reusing its allocation.
    fn take_into(&mut self, buf: &mut Vec<u8>, n: usize) -> Result<(), String> {
        buf.resize(n, 0);
        self.input
            .read_exact(buf)
            .map_err(|_| "it ends in the middle of a row".to_string())?;
        self.hasher.update(buf);
        Ok(())
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut buf = [0u8; N];
        self.input
            .read_exact(&mut buf)
            .map_err(|_| "it ends in the middle of a row".to_string())?;
        self.hasher.update(&buf);
        Ok(buf)
    }

    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.array()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(inode: u64) -> Meta {
        Meta {
            kind: FileKind::File,
            mode: 0,
            uid: 0,
            gid: 0,
            size: 3,
            mtime_ns: 1,
            ctime_ns: 2,
            inode,
            nlink: 0,
            dev: 9,
        }
    }

    /// A cache of `rows` for `digest`, sealed with its checksum.
    fn cache(digest: &[u8; 32], rows: &[u8], count: u64) -> Vec<u8> {
        let mut b = [MAGIC, &digest[..], rows, &count.to_le_bytes()].concat();
        let sum = *blake3::hash(&b).as_bytes();
        b.extend_from_slice(&sum);
        b
    }

    #[test]
    fn rows_round_trip_and_anything_else_is_refused_whole() {
        use crate::scan::KnownEntries;
        let attrs: AttrSet = [crate::attrs::Attr::Hash].into_iter().collect();
        let mut rows = Vec::new();
        put_row(&mut rows, b"/a", &meta(7), attrs);
        put_row(&mut rows, b"/b", &meta(8), attrs);
        let d = [1u8; 32];
        let good = cache(&d, &rows, 2);
        let mut index = StatIndex::new(0.0);
        let parsed =
            |bytes: &[u8], index: &mut StatIndex| parse(bytes, bytes.len() as u64, &d, index);
        assert_eq!(parsed(&good, &mut index), Ok(2));
        assert!(index.unchanged(Path::new("/a"), &meta(7), attrs));
        assert!(!index.unchanged(Path::new("/a"), &meta(8), attrs));

        let refused = |bytes: &[u8]| parsed(bytes, &mut StatIndex::new(0.0)).unwrap_err();
        assert!(refused(&cache(&[2; 32], &rows, 2)).contains("another baseline"));
        for cut in 0..good.len() {
            refused(&good[..cut]);
        }
        let mut flipped = good.clone();
        flipped[MAGIC.len() + 40] ^= 1;
        assert!(refused(&flipped).contains("torn"));
        // Well sealed, badly formed: counts, lengths, types.
        assert!(refused(&cache(&d, &rows, 3)).contains("count of rows"));
        assert!(refused(&cache(&d, &rows, 1)).contains("count of rows"));
        let mut long = rows.clone();
        long[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(refused(&cache(&d, &long, 2)).contains("longer than any"));
        long[..4].copy_from_slice(&MAX_PATH.to_le_bytes());
        assert!(refused(&cache(&d, &long, 2)).contains("middle of a row"));
        let mut kind = rows.clone();
        kind[4 + 2] = 200;
        assert!(refused(&cache(&d, &kind, 2)).contains("unknown type"));
    }
}
