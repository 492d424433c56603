//! A regular file's content, hashed with BLAKE3 through plain reads.
//!
//! - No memory maps: a file truncated under a map raises SIGBUS, which would
//!   let any user kill the daemon (see the style guide).
//! - Small files take one thread each and a per-thread buffer: the scan runs
//!   many of them at once, which keeps every core busy.
//! - A large file is read in large blocks, the next block read while the
//!   last is hashed, and each block's hashing is split across the rayon
//!   workers that are idle. When other files keep them busy, the splits run
//!   on this thread, so one big file among many costs nothing extra, and one
//!   big file alone uses every core.
//! - A sparse file's holes are not read: `SEEK_DATA`/`SEEK_HOLE` find them,
//!   and their zeros are hashed from memory that is never written.
//!
//! Every read is positioned (`pread`), so a second attempt at the same
//! descriptor needs no seek, and the hole search (which moves the file
//! offset) cannot disturb a read.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::sync::OnceLock;

/// Read buffer per hashing thread for files below [`WIDE_FROM`]: large
/// enough for BLAKE3's SIMD lanes, small enough to stay in cache.
const SMALL_BUFFER_BYTES: usize = 128 * 1024;
/// Files from this size on are read in [`WIDE_BUFFER_BYTES`] blocks,
/// two at a time, and hashed on several threads. Below it, splitting the
/// work costs more than it saves.
const WIDE_FROM: u64 = 4 << 20;
/// A power of two, so that every block starts on a boundary of BLAKE3's
/// tree and its halves can be hashed apart.
const WIDE_BUFFER_BYTES: usize = 1 << 20;
/// Updates at least this long are worth splitting across threads.
const SPLIT_FROM: usize = 128 * 1024;

/// What reading a file produced.
#[derive(Debug)]
pub struct Hashed {
    pub hash: [u8; 32],
    /// Hash of the first `prefix_len` bytes, if the content was that long.
    pub prefix: Option<[u8; 32]>,
    /// Length of the content hashed.
    pub bytes: u64,
    /// Of it, how much was read from the file (the rest was holes).
    pub read: u64,
}

/// How a file is to be read.
#[derive(Clone, Copy, Debug)]
pub struct Reading {
    /// Its size as `fstat` gave it before the read: it chooses the way of
    /// reading, never where the reading stops.
    pub size: u64,
    /// Whether `fstat` shows fewer blocks than the size needs: only then are
    /// holes looked for.
    pub sparse: bool,
    /// Hash exactly this many bytes (a growing file), else to the end.
    pub limit: Option<u64>,
    /// Also hash the first this many bytes on their own.
    pub prefix_len: Option<u64>,
}

impl Reading {
    /// How to read a file whose `fstat` gave `m`, to its end.
    pub fn of(m: &std::fs::Metadata) -> Reading {
        use std::os::unix::fs::MetadataExt;
        Reading {
            size: m.len(),
            sparse: m.blocks().saturating_mul(512) < m.len(),
            limit: None,
            prefix_len: None,
        }
    }
}

/// Reads `file` from its first byte to its end (or to `limit`) and hashes it.
pub fn hash(file: &File, how: Reading) -> io::Result<Hashed> {
    let mut digest = Digest::new(how.prefix_len);
    let end = how.limit.unwrap_or(u64::MAX);
    let read = if how.size >= WIDE_FROM {
        read_wide(file, &mut digest, end, how.sparse)?
    } else {
        read_small(file, &mut digest, end)?
    };
    Ok(digest.finish(read))
}

/// The whole content and a prefix of it, hashed as they come.
struct Digest {
    hasher: blake3::Hasher,
    prefix: Option<(blake3::Hasher, u64)>,
    prefix_hash: Option<[u8; 32]>,
    total: u64,
}

impl Digest {
    fn new(prefix_len: Option<u64>) -> Digest {
        let empty = *blake3::Hasher::new().finalize().as_bytes();
        Digest {
            hasher: blake3::Hasher::new(),
            prefix: prefix_len
                .filter(|&l| l > 0)
                .map(|l| (blake3::Hasher::new(), l)),
            prefix_hash: (prefix_len == Some(0)).then_some(empty),
            total: 0,
        }
    }

    /// Hashes `bytes` on this thread alone (see [`Digest::feed_wide`]).
    fn feed(&mut self, bytes: &[u8]) {
        self.feed_on(bytes, false);
    }

    /// Hashes `bytes`, splitting the work across idle rayon workers. While
    /// it waits for them this thread may run another file's task, so it is
    /// never called with the per-thread buffer borrowed.
    fn feed_wide(&mut self, bytes: &[u8]) {
        self.feed_on(bytes, true);
    }

    fn feed_on(&mut self, bytes: &[u8], wide: bool) {
        if let Some((p, len)) = self.prefix.as_mut() {
            let take = (*len - self.total).min(bytes.len() as u64) as usize;
            update(p, &bytes[..take], wide);
            if self.total + take as u64 == *len {
                self.prefix_hash = Some(*p.finalize().as_bytes());
                self.prefix = None;
            }
        }
        update(&mut self.hasher, bytes, wide);
        self.total += bytes.len() as u64;
        crate::progress::tick();
    }

    /// `len` zero bytes, hashed from memory nobody writes: its pages are the
    /// kernel's one zero page, so hashing them reads no RAM.
    fn feed_zeros(&mut self, mut len: u64) {
        static ZEROS: OnceLock<Vec<u8>> = OnceLock::new();
        let zeros = ZEROS.get_or_init(|| vec![0; WIDE_BUFFER_BYTES]);
        while len > 0 {
            // Up to the next block boundary, so the blocks that follow stay
            // aligned to BLAKE3's tree.
            let to_boundary = WIDE_BUFFER_BYTES as u64 - self.total % WIDE_BUFFER_BYTES as u64;
            let take = len.min(to_boundary) as usize;
            self.feed_wide(&zeros[..take]);
            len -= take as u64;
        }
    }

    fn finish(self, read: u64) -> Hashed {
        Hashed {
            hash: *self.hasher.finalize().as_bytes(),
            prefix: self.prefix_hash,
            bytes: self.total,
            read,
        }
    }
}

fn update(hasher: &mut blake3::Hasher, bytes: &[u8], wide: bool) {
    if wide && bytes.len() >= SPLIT_FROM {
        hasher.update_rayon(bytes);
    } else {
        hasher.update(bytes);
    }
}

fn read_small(file: &File, digest: &mut Digest, end: u64) -> io::Result<u64> {
    thread_local! {
        static BUFFER: std::cell::RefCell<Vec<u8>> =
            std::cell::RefCell::new(vec![0; SMALL_BUFFER_BYTES]);
    }
    BUFFER.with_borrow_mut(|buf| {
        let mut pos = 0;
        loop {
            let (n, _) = fill(file, buf, pos, end)?;
            if n == 0 {
                return Ok(pos);
            }
            digest.feed(&buf[..n]);
            pos += n as u64;
        }
    })
}

/// Reads up to `end`, region by region: holes (when `sparse`) are hashed
/// as zeros, data is read in blocks. Returns the bytes actually read.
fn read_wide(file: &File, digest: &mut Digest, end: u64, mut sparse: bool) -> io::Result<u64> {
    let mut bufs = [vec![0; WIDE_BUFFER_BYTES], vec![0; WIDE_BUFFER_BYTES]];
    let mut pos = 0;
    let mut read = 0;
    while pos < end {
        let mut data_end = end;
        if sparse {
            match seek(file, pos, libc::SEEK_DATA) {
                // A file system that answers before `pos` is not believed.
                Ok(data) if data < pos => sparse = false,
                Ok(data) => {
                    let hole = data.min(end) - pos;
                    digest.feed_zeros(hole);
                    pos += hole;
                    if pos == end {
                        break;
                    }
                    data_end = match seek(file, pos, libc::SEEK_HOLE) {
                        Ok(hole) if hole > pos => hole.min(end),
                        // No hole after data it just found: read on.
                        _ => {
                            sparse = false;
                            end
                        }
                    };
                }
                // No data from `pos` on: all that is left is a hole, to the
                // end of the file as it is now. Reading on shows that end
                // (and whatever was written since).
                Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
                    let size = file.metadata()?.len().min(end);
                    digest.feed_zeros(size.saturating_sub(pos));
                    pos = pos.max(size);
                    sparse = false;
                    continue;
                }
                // The file system cannot tell: read it all.
                Err(_) => sparse = false,
            }
        }
        let (reached, at_eof) = read_region(file, digest, &mut bufs, pos, data_end)?;
        read += reached - pos;
        pos = reached;
        if at_eof {
            break;
        }
    }
    Ok(read)
}

/// Reads `[from, to)` (or to the end of the file, if sooner), reading each
/// block while the one before is hashed. Returns where it stopped and
/// whether that was the end of the file.
fn read_region(
    file: &File,
    digest: &mut Digest,
    bufs: &mut [Vec<u8>; 2],
    from: u64,
    to: u64,
) -> io::Result<(u64, bool)> {
    let [a, b] = bufs;
    let (mut ready, mut spare) = (a, b);
    let mut pos = from;
    let (mut n, mut eof) = fill(file, ready, pos, to)?;
    while n > 0 {
        let next = pos + n as u64;
        if eof || next >= to {
            digest.feed_wide(&ready[..n]);
            return Ok((next, eof));
        }
        let (filled, ()) = rayon::join(
            || fill(file, spare, next, to),
            || digest.feed_wide(&ready[..n]),
        );
        pos = next;
        (n, eof) = filled?;
        std::mem::swap(&mut ready, &mut spare);
    }
    Ok((pos, eof))
}

/// Fills `buf` from offset `at`, stopping at `to`; returns the bytes read and
/// whether the end of the file came first.
fn fill(file: &File, buf: &mut [u8], at: u64, to: u64) -> io::Result<(usize, bool)> {
    let want = (to.saturating_sub(at)).min(buf.len() as u64) as usize;
    let mut got = 0;
    while got < want {
        match file.read_at(&mut buf[got..want], at + got as u64) {
            Ok(0) => return Ok((got, true)),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok((got, false))
}

fn seek(file: &File, from: u64, whence: libc::c_int) -> io::Result<u64> {
    let from =
        libc::off_t::try_from(from).map_err(|_| io::Error::from_raw_os_error(libc::ENXIO))?;
    // SAFETY: lseek on a descriptor this function borrows; it only moves
    // the file offset, which no read here uses.
    let at = unsafe { libc::lseek(file.as_raw_fd(), from, whence) };
    if at < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(at as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn content(len: usize, seed: u32) -> Vec<u8> {
        (0..len as u32)
            .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 13) as u8)
            .collect()
    }

    fn reading(f: &File) -> Reading {
        Reading::of(&f.metadata().unwrap())
    }

    #[test]
    fn every_size_around_the_block_hashes_as_blake3() {
        let dir = tempfile::tempdir().unwrap();
        let sizes = [
            0,
            1,
            SMALL_BUFFER_BYTES + 1,
            WIDE_FROM as usize - 1,
            WIDE_FROM as usize,
            WIDE_FROM as usize + 7,
            3 * WIDE_BUFFER_BYTES + WIDE_FROM as usize + 12_345,
        ];
        for (i, len) in sizes.into_iter().enumerate() {
            let bytes = content(len, i as u32);
            let p = dir.path().join(format!("f{i}"));
            std::fs::write(&p, &bytes).unwrap();
            let f = File::open(&p).unwrap();
            let h = hash(&f, reading(&f)).unwrap();
            assert_eq!(h.hash, *blake3::hash(&bytes).as_bytes(), "size {len}");
            assert_eq!((h.bytes, h.read), (len as u64, len as u64), "size {len}");
            // A second read of the same descriptor needs no seek.
            assert_eq!(hash(&f, reading(&f)).unwrap().hash, h.hash);
        }
    }

    #[test]
    fn a_limit_and_a_prefix_cut_where_they_say_in_a_large_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        let bytes = content(3 * WIDE_FROM as usize + 99, 5);
        std::fs::write(&p, &bytes).unwrap();
        let f = File::open(&p).unwrap();
        let limit = 2 * WIDE_FROM + 3;
        let prefix = WIDE_FROM + WIDE_BUFFER_BYTES as u64 / 2 + 1;
        let h = hash(
            &f,
            Reading {
                limit: Some(limit),
                prefix_len: Some(prefix),
                ..reading(&f)
            },
        )
        .unwrap();
        assert_eq!(h.bytes, limit);
        assert_eq!(h.hash, *blake3::hash(&bytes[..limit as usize]).as_bytes());
        assert_eq!(
            h.prefix,
            Some(*blake3::hash(&bytes[..prefix as usize]).as_bytes())
        );
        // A prefix longer than the content is no prefix.
        let h = hash(
            &f,
            Reading {
                prefix_len: Some(bytes.len() as u64 + 1),
                ..reading(&f)
            },
        )
        .unwrap();
        assert_eq!(h.prefix, None);
    }

    #[test]
    fn holes_are_hashed_as_zeros_without_being_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sparse");
        let len: u64 = 256 << 20;
        // Data at the start, twice in the middle (once off a block
        // boundary), and none at the end: the file ends in a hole.
        let islands: [(u64, usize); 3] = [(0, 10_000), (100 << 20, 3 << 20), (150_000_001, 5)];
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .read(true)
            .open(&p)
            .unwrap();
        f.set_len(len).unwrap();
        let mut expected = blake3::Hasher::new();
        let mut at = 0u64;
        let zeros = vec![0u8; 1 << 20];
        let zero_to = |h: &mut blake3::Hasher, at: &mut u64, to: u64| {
            while *at < to {
                let n = (to - *at).min(zeros.len() as u64) as usize;
                h.update(&zeros[..n]);
                *at += n as u64;
            }
        };
        for (i, (off, n)) in islands.into_iter().enumerate() {
            let data = content(n, i as u32 + 1);
            f.write_all_at(&data, off).unwrap();
            zero_to(&mut expected, &mut at, off);
            expected.update(&data);
            at += n as u64;
        }
        zero_to(&mut expected, &mut at, len);
        f.flush().unwrap();
        f.sync_all().unwrap();
        let how = reading(&f);
        assert!(how.sparse, "the test's file system made no holes");
        let h = hash(&f, how).unwrap();
        assert_eq!(h.hash, *expected.finalize().as_bytes());
        assert_eq!(h.bytes, len);
        // The file system's blocks round each island out a little; the
        // 250 MiB of holes are never read.
        assert!(h.read < 4 << 20, "read {} bytes", h.read);
    }
}
