//! A verified baseline kept on disk rather than in memory, for the daemon,
//! which holds one for weeks.
//!
//! The bytes read from `--db` are written, as they are read and hashed, to
//! a private unnamed file (`O_TMPFILE`) beside it, and the BLAKE3 of each
//! 4 KiB block of that copy stays in memory (32 bytes per block: 120 KB for
//! a 15 MB baseline). SQLite reads the copy through a VFS of tripseal's own
//! that checks every block it reads against its hash. So the copy costs
//! page cache (reclaimable where the directory is on a disk; still charged
//! to the unit's cgroup), not the daemon's heap, and a byte changed in the
//! file (root reaches it through `/proc/PID/fd`) makes the next read of its
//! block fail, and every read after it, never answer differently. It does
//! not guard against root editing the daemon's memory, which holds the
//! hashes (as it held the whole baseline before). The copy, not `--db`
//! itself, because `--db` may be rewritten in place (a signature added, a
//! generation copied over it) while the daemon still compares with the
//! generation it verified.

use std::collections::HashMap;
use std::ffi::{CStr, c_char, c_int, c_void};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use rusqlite::{Connection, OpenFlags, ffi};

/// What one hash covers. Independent of the SQLite page size: a read of
/// part of a block checks the whole block.
const BLOCK: usize = 4096;
const VFS_NAME: &CStr = c"tripseal-verified-copy";
/// The names under which copies are handed to SQLite; nothing on disk.
const PREFIX: &str = "/tripseal-verified-copy/";

/// A private copy of a baseline's bytes and the hash of each block.
pub struct Copy {
    file: File,
    len: u64,
    blocks: Vec<[u8; 32]>,
    /// Why a read of the copy failed its check, once one has.
    altered: Mutex<Option<String>>,
    /// A read the disk refused: no tampering, but no answer either.
    io_error: Mutex<Option<String>>,
}

impl Copy {
    /// Why the copy is not what was written, once a read found it so:
    /// every read after that fails too.
    pub fn altered(&self) -> Option<String> {
        lock(&self.altered).clone()
    }

    /// The error of a read the disk refused, if one was.
    pub fn io_error(&self) -> Option<String> {
        lock(&self.io_error).clone()
    }

    fn fail(&self, why: String) {
        lock(&self.altered).get_or_insert(why);
    }

    /// Fills `out` from `off`, checking every block it touches. `Ok(false)`
    /// when `out` reaches past the end (the rest zeroed, as SQLite wants).
    /// On an error `out` holds zeros, never unchecked bytes.
    fn read(&self, out: &mut [u8], off: u64, scratch: &mut Vec<u8>) -> Result<bool, Failed> {
        let r = self.read_checked(out, off, scratch);
        if r.is_err() {
            out.fill(0);
        }
        r
    }

    fn read_checked(
        &self,
        out: &mut [u8],
        off: u64,
        scratch: &mut Vec<u8>,
    ) -> Result<bool, Failed> {
        // Looked at on every read: no copy of the reason, only whether.
        if lock(&self.altered).is_some() {
            return Err(Failed::Altered);
        }
        let end = off.saturating_add(out.len() as u64);
        let have_end = end.min(self.len);
        if off >= have_end {
            out.fill(0);
            return Ok(out.is_empty());
        }
        let b = BLOCK as u64;
        let first = off / b;
        let span_start = first * b;
        let span_end = (have_end.div_ceil(b) * b).min(self.len);
        let span_len = (span_end - span_start) as usize;
        // SQLite's page reads are whole blocks: read straight into its buffer.
        let direct = off == span_start && have_end == span_end;
        let span: &mut [u8] = if direct {
            &mut out[..span_len]
        } else {
            scratch.resize(span_len, 0);
            &mut scratch[..]
        };
        match self.file.read_exact_at(span, span_start) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                self.fail("it is shorter than what was verified".into());
                return Err(Failed::Altered);
            }
            Err(e) => {
                lock(&self.io_error).get_or_insert(e.to_string());
                return Err(Failed::Io);
            }
        }
        for (i, block) in span.chunks(BLOCK).enumerate() {
            let n = first as usize + i;
            if blake3::hash(block).as_bytes() != &self.blocks[n] {
                self.fail(format!(
                    "its block at byte {} is not what was verified",
                    n as u64 * b
                ));
                return Err(Failed::Altered);
            }
        }
        let got = (have_end - off) as usize;
        if !direct {
            let from = (off - span_start) as usize;
            out[..got].copy_from_slice(&scratch[from..from + got]);
        }
        out[got..].fill(0);
        Ok(have_end == end)
    }
}

/// Why a read of the copy gave nothing.
#[derive(Debug, PartialEq, Eq)]
enum Failed {
    /// Not the bytes that were written (see [`Copy::altered`]).
    Altered,
    /// The disk refused the read.
    Io,
}

/// Writes a copy: the bytes given to [`io::Write`] go to the file, and
/// each whole block's hash is taken on the way.
pub struct CopyWriter {
    file: File,
    len: u64,
    blocks: Vec<[u8; 32]>,
    partial: Vec<u8>,
}

impl CopyWriter {
    /// An unnamed file in `dir` with room for `len` bytes, readable by this
    /// process only; it disappears with the last descriptor, so no crash
    /// leaves it behind, and it can never be given a name (`O_EXCL`).
    pub fn create(dir: &Path, len: u64) -> io::Result<CopyWriter> {
        use std::os::fd::AsRawFd;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_TMPFILE | libc::O_EXCL | libc::O_CLOEXEC)
            .open(dir)?;
        // The room is taken before a byte is read, so a full disk is known
        // at once (and the caller can hold the baseline otherwise).
        let len_off = libc::off_t::try_from(len).map_err(|_| io::ErrorKind::FileTooLarge)?;
        // SAFETY: fallocate on a descriptor this function owns.
        while len_off > 0 && unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len_off) } != 0 {
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                // tmpfs gives up when a signal (a SIGHUP) is pending.
                Some(libc::EINTR) => continue,
                // A file system without fallocate (ext2) still takes the
                // copy; the caller survives a write that finds no room.
                Some(libc::EOPNOTSUPP) => break,
                _ => return Err(e),
            }
        }
        Ok(CopyWriter {
            file,
            len: 0,
            blocks: Vec::new(),
            partial: Vec::with_capacity(BLOCK),
        })
    }

    pub fn finish(mut self) -> Arc<Copy> {
        if !self.partial.is_empty() {
            self.blocks.push(*blake3::hash(&self.partial).as_bytes());
        }
        Arc::new(Copy {
            file: self.file,
            len: self.len,
            blocks: self.blocks,
            altered: Mutex::new(None),
            io_error: Mutex::new(None),
        })
    }
}

impl Write for CopyWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write_all_at(buf, self.len)?;
        self.len += buf.len() as u64;
        let mut rest = buf;
        while !rest.is_empty() {
            let take = rest.len().min(BLOCK - self.partial.len());
            if self.partial.is_empty() && take == BLOCK {
                self.blocks.push(*blake3::hash(&rest[..BLOCK]).as_bytes());
            } else {
                self.partial.extend_from_slice(&rest[..take]);
                if self.partial.len() == BLOCK {
                    self.blocks.push(*blake3::hash(&self.partial).as_bytes());
                    self.partial.clear();
                }
            }
            rest = &rest[take..];
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A read-only connection to `copy`, through the checking VFS.
pub fn connect(copy: &Arc<Copy>) -> rusqlite::Result<Connection> {
    register()?;
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = format!("{PREFIX}{}", NEXT.fetch_add(1, Ordering::Relaxed));
    lock(registry()).insert(name.clone(), Arc::clone(copy));
    // SQLite opens the file within this call, and takes its own reference.
    let conn = Connection::open_with_flags_and_vfs(
        format!("file:{name}?immutable=1"),
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
        VFS_NAME,
    );
    lock(registry()).remove(&name);
    // The copy's pages are in the kernel's cache already; SQLite's own
    // needs little more than the trees' inner pages (about 40 for a 15 MB
    // baseline), which 512 KiB holds many times over. Temporary tables and
    // sorts stay in memory: nothing read back unchecked from a file.
    conn.and_then(|c| {
        c.execute_batch("PRAGMA cache_size = -512; PRAGMA temp_store = MEMORY")
            .map(|()| c)
    })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The copies being opened, by the name SQLite is given.
fn registry() -> &'static Mutex<HashMap<String, Arc<Copy>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<String, Arc<Copy>>>> = OnceLock::new();
    REGISTRY.get_or_init(Mutex::default)
}

/// SQLite's own VFS, to which everything but the copies goes (temporary
/// files, for one); set once, when ours is registered.
static DEFAULT: AtomicPtr<ffi::sqlite3_vfs> = AtomicPtr::new(std::ptr::null_mut());

fn default_vfs() -> *mut ffi::sqlite3_vfs {
    DEFAULT.load(Ordering::Acquire)
}

fn register() -> rusqlite::Result<()> {
    static REGISTERED: OnceLock<c_int> = OnceLock::new();
    let rc = *REGISTERED.get_or_init(|| {
        // SAFETY: sqlite3_vfs_find initializes SQLite and returns a VFS that
        // lives as long as the process; ours is leaked for the same reason.
        unsafe {
            let default = ffi::sqlite3_vfs_find(std::ptr::null());
            if default.is_null() {
                return ffi::SQLITE_ERROR;
            }
            DEFAULT.store(default, Ordering::Release);
            let mut vfs = *default;
            vfs.iVersion = vfs.iVersion.min(3);
            vfs.szOsFile = vfs.szOsFile.max(std::mem::size_of::<VFile>() as c_int);
            vfs.pNext = std::ptr::null_mut();
            vfs.zName = VFS_NAME.as_ptr();
            vfs.xOpen = Some(x_open);
            vfs.xAccess = Some(x_access);
            vfs.xFullPathname = Some(x_full_pathname);
            vfs.xDelete = Some(x_delete);
            ffi::sqlite3_vfs_register(Box::leak(Box::new(vfs)), 0)
        }
    });
    if rc == ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(rusqlite::Error::SqliteFailure(ffi::Error::new(rc), None))
    }
}

/// SAFETY (for the callers): `name` is null or a C string that outlives
/// the answer.
unsafe fn ours<'a>(name: *const c_char) -> Option<&'a str> {
    if name.is_null() {
        return None;
    }
    // SAFETY: SQLite passes a NUL-terminated name.
    let name = unsafe { CStr::from_ptr(name) }.to_str().ok()?;
    name.starts_with(PREFIX).then_some(name)
}

#[repr(C)]
struct VFile {
    base: ffi::sqlite3_file,
    copy: *const Copy,
    scratch: Vec<u8>,
}

unsafe extern "C" fn x_open(
    _vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let default = default_vfs();
    // SAFETY: the arguments are SQLite's, passed on unchanged.
    let Some(name) = (unsafe { ours(name) }) else {
        // Only unnamed files (temporary ones) go to SQLite's own VFS: a
        // connection to a copy opens no other file by name.
        if !name.is_null() {
            // SAFETY: `file` is SQLite's, for this open.
            unsafe { (*file).pMethods = std::ptr::null() };
            return ffi::SQLITE_CANTOPEN;
        }
        return unsafe {
            ((*default).xOpen.expect("a VFS opens"))(default, name, file, flags, out_flags)
        };
    };
    // SAFETY: `file` is szOsFile bytes SQLite allocated for this open.
    unsafe { (*file).pMethods = std::ptr::null() };
    let main_read_only = flags & ffi::SQLITE_OPEN_MAIN_DB != 0
        && flags & (ffi::SQLITE_OPEN_READWRITE | ffi::SQLITE_OPEN_CREATE) == 0;
    let copy = lock(registry()).get(name).cloned();
    let (true, Some(copy)) = (main_read_only, copy) else {
        return ffi::SQLITE_CANTOPEN;
    };
    // SAFETY: as above; VFile fits (szOsFile), and SQLite aligns it for a
    // pointer.
    unsafe {
        std::ptr::write(
            file.cast::<VFile>(),
            VFile {
                base: ffi::sqlite3_file { pMethods: &METHODS },
                copy: Arc::into_raw(copy),
                scratch: Vec::new(),
            },
        );
        if !out_flags.is_null() {
            *out_flags = flags;
        }
    }
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_access(
    _vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    flags: c_int,
    out: *mut c_int,
) -> c_int {
    let default = default_vfs();
    // SAFETY: SQLite's arguments; no journal or WAL exists beside a copy.
    unsafe {
        if ours(name).is_some() {
            *out = 0;
            return ffi::SQLITE_OK;
        }
        ((*default).xAccess.expect("a VFS answers access"))(default, name, flags, out)
    }
}

unsafe extern "C" fn x_full_pathname(
    _vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    n_out: c_int,
    out: *mut c_char,
) -> c_int {
    let default = default_vfs();
    // SAFETY: SQLite's arguments; `out` holds `n_out` bytes.
    unsafe {
        if let Some(ours) = ours(name) {
            let bytes = ours.as_bytes();
            if bytes.len() + 1 > n_out as usize {
                return ffi::SQLITE_CANTOPEN;
            }
            std::ptr::copy_nonoverlapping(bytes.as_ptr().cast(), out, bytes.len());
            *out.add(bytes.len()) = 0;
            return ffi::SQLITE_OK;
        }
        ((*default).xFullPathname.expect("a VFS names paths"))(default, name, n_out, out)
    }
}

unsafe extern "C" fn x_delete(
    _vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    sync_dir: c_int,
) -> c_int {
    let default = default_vfs();
    // SAFETY: SQLite's arguments; a copy is never deleted by name.
    unsafe {
        if ours(name).is_some() {
            return ffi::SQLITE_IOERR_DELETE;
        }
        ((*default).xDelete.expect("a VFS deletes"))(default, name, sync_dir)
    }
}

static METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 1,
    xClose: Some(x_close),
    xRead: Some(x_read),
    xWrite: Some(x_write),
    xTruncate: Some(x_truncate),
    xSync: Some(x_sync),
    xFileSize: Some(x_file_size),
    xLock: Some(x_lock),
    xUnlock: Some(x_lock),
    xCheckReservedLock: Some(x_check_reserved_lock),
    xFileControl: Some(x_file_control),
    xSectorSize: Some(x_sector_size),
    xDeviceCharacteristics: Some(x_device_characteristics),
    xShmMap: None,
    xShmLock: None,
    xShmBarrier: None,
    xShmUnmap: None,
    xFetch: None,
    xUnfetch: None,
};

/// SAFETY (for the callers): `file` was opened by [`x_open`] as a copy.
unsafe fn vfile<'a>(file: *mut ffi::sqlite3_file) -> &'a mut VFile {
    // SAFETY: see above.
    unsafe { &mut *file.cast::<VFile>() }
}

unsafe extern "C" fn x_close(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: closed once, by SQLite; the Arc was leaked into it at open.
    unsafe {
        let f = file.cast::<VFile>();
        drop(Arc::from_raw((*f).copy));
        std::ptr::drop_in_place(&mut (*f).scratch);
        (*f).base.pMethods = std::ptr::null();
    }
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_read(
    file: *mut ffi::sqlite3_file,
    buf: *mut c_void,
    amount: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    if amount <= 0 || buf.is_null() || offset < 0 {
        return ffi::SQLITE_IOERR_READ;
    }
    // SAFETY: `buf` holds `amount` bytes; the file is one of ours.
    let (f, out) = unsafe {
        (
            vfile(file),
            std::slice::from_raw_parts_mut(buf.cast::<u8>(), amount as usize),
        )
    };
    // SAFETY: the Arc lives until x_close.
    let copy = unsafe { &*f.copy };
    match copy.read(out, offset as u64, &mut f.scratch) {
        Ok(true) => ffi::SQLITE_OK,
        Ok(false) => ffi::SQLITE_IOERR_SHORT_READ,
        // The code SQLite's checksum VFS gives a page that fails its check.
        Err(Failed::Altered) => ffi::SQLITE_IOERR_DATA,
        Err(Failed::Io) => ffi::SQLITE_IOERR_READ,
    }
}

unsafe extern "C" fn x_write(
    _file: *mut ffi::sqlite3_file,
    _buf: *const c_void,
    _amount: c_int,
    _offset: ffi::sqlite3_int64,
) -> c_int {
    ffi::SQLITE_READONLY
}

unsafe extern "C" fn x_truncate(_file: *mut ffi::sqlite3_file, _size: ffi::sqlite3_int64) -> c_int {
    ffi::SQLITE_READONLY
}

unsafe extern "C" fn x_sync(_file: *mut ffi::sqlite3_file, _flags: c_int) -> c_int {
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_file_size(
    file: *mut ffi::sqlite3_file,
    size: *mut ffi::sqlite3_int64,
) -> c_int {
    // SAFETY: one of ours; `size` is SQLite's out-parameter.
    unsafe { *size = (*vfile(file).copy).len as ffi::sqlite3_int64 };
    ffi::SQLITE_OK
}

/// Nobody else writes the copy: there is nothing to lock against.
unsafe extern "C" fn x_lock(_file: *mut ffi::sqlite3_file, _level: c_int) -> c_int {
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_check_reserved_lock(
    _file: *mut ffi::sqlite3_file,
    out: *mut c_int,
) -> c_int {
    // SAFETY: SQLite's out-parameter.
    unsafe { *out = 0 };
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_file_control(
    _file: *mut ffi::sqlite3_file,
    _op: c_int,
    _arg: *mut c_void,
) -> c_int {
    ffi::SQLITE_NOTFOUND
}

unsafe extern "C" fn x_sector_size(_file: *mut ffi::sqlite3_file) -> c_int {
    BLOCK as c_int
}

unsafe extern "C" fn x_device_characteristics(_file: *mut ffi::sqlite3_file) -> c_int {
    ffi::SQLITE_IOCAP_IMMUTABLE
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An SQLite file of `page_size` holding `rows` rows, and its sum.
    fn database(dir: &Path, page_size: u32, rows: i64) -> (Vec<u8>, i64) {
        let path = dir.join(format!("src-{page_size}.db"));
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(&format!(
            "PRAGMA page_size = {page_size}; CREATE TABLE t(k INTEGER PRIMARY KEY, v BLOB);"
        ))
        .unwrap();
        for k in 0..rows {
            conn.execute("INSERT INTO t VALUES (?1, randomblob(?1 % 300))", [k])
                .unwrap();
        }
        let sum = conn
            .query_row("SELECT sum(k * length(v)) FROM t", [], |r| r.get(0))
            .unwrap();
        drop(conn);
        (std::fs::read(&path).unwrap(), sum)
    }

    /// `bytes` copied aside in pieces of `piece` bytes, as a reader gives them.
    fn copy_of(dir: &Path, bytes: &[u8], piece: usize) -> Arc<Copy> {
        let mut w = CopyWriter::create(dir, bytes.len() as u64).unwrap();
        for chunk in bytes.chunks(piece) {
            w.write_all(chunk).unwrap();
        }
        w.finish()
    }

    fn sum(copy: &Arc<Copy>) -> rusqlite::Result<i64> {
        connect(copy)?.query_row("SELECT sum(k * length(v)) FROM t", [], |r| r.get(0))
    }

    #[test]
    fn reads_back_what_was_written_at_any_page_size() {
        let dir = tempfile::tempdir().unwrap();
        // 512: SQLite reads parts of a block; 65536: several blocks at once;
        // 1000 rows of 512-byte pages end inside a block.
        for (page_size, piece) in [(512, 1000), (4096, 4096), (65536, 7)] {
            let (bytes, want) = database(dir.path(), page_size, 1000);
            if page_size == 512 {
                assert_ne!(bytes.len() % BLOCK, 0, "the last block is a part");
            }
            let copy = copy_of(dir.path(), &bytes, piece);
            assert_eq!(sum(&copy).unwrap(), want, "page size {page_size}");
            assert_eq!(copy.altered(), None);
        }
    }

    #[test]
    fn a_changed_byte_or_a_shorter_copy_fails_every_read_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let (bytes, want) = database(dir.path(), 4096, 3000);
        assert!(bytes.len() > 5 * BLOCK);

        let copy = copy_of(dir.path(), &bytes, 65536);
        assert_eq!(sum(&copy).unwrap(), want);
        // Through the descriptor, as root could through /proc/PID/fd.
        let at = 3 * BLOCK as u64 + 17;
        copy.file
            .write_all_at(&[bytes[at as usize] ^ 1], at)
            .unwrap();
        let e = sum(&copy).unwrap_err();
        assert_eq!(
            e.sqlite_error().map(|e| e.extended_code),
            Some(ffi::SQLITE_IOERR_DATA),
            "{e}"
        );
        assert_eq!(
            copy.altered().as_deref(),
            Some("its block at byte 12288 is not what was verified")
        );
        // Nor is any other block believed after that, though it is intact.
        let mut page = vec![7u8; BLOCK];
        assert_eq!(
            copy.read(&mut page, 0, &mut Vec::new()),
            Err(Failed::Altered)
        );
        assert!(
            page.iter().all(|&b| b == 0),
            "nothing unchecked is handed over"
        );

        let copy = copy_of(dir.path(), &bytes, 65536);
        copy.file.set_len(bytes.len() as u64 - 1).unwrap();
        assert!(sum(&copy).is_err());
        assert_eq!(
            copy.altered().as_deref(),
            Some("it is shorter than what was verified")
        );
    }

    #[test]
    fn a_read_past_the_end_is_short_and_zero_filled() {
        let dir = tempfile::tempdir().unwrap();
        let bytes: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
        let copy = copy_of(dir.path(), &bytes, 3000);
        let mut out = vec![9u8; 2000];
        assert_eq!(copy.read(&mut out, 4000, &mut Vec::new()), Ok(false));
        assert_eq!(&out[..1000], &bytes[4000..]);
        assert!(out[1000..].iter().all(|&b| b == 0));
        assert_eq!(copy.read(&mut out, 6000, &mut Vec::new()), Ok(false));
        assert!(out.iter().all(|&b| b == 0));
        let mut out = vec![0u8; 100];
        assert_eq!(copy.read(&mut out, 4090, &mut Vec::new()), Ok(true));
        assert_eq!(&out[..], &bytes[4090..4190]);
    }

    #[test]
    fn the_copy_has_no_name_and_is_this_process_s_alone() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let copy = copy_of(dir.path(), b"x", 1);
        let meta = copy.file.metadata().unwrap();
        assert_eq!((meta.nlink(), meta.mode() & 0o777), (0, 0o600));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        // Nothing is opened under a copy's name but the copy itself.
        let conn = Connection::open_with_flags_and_vfs(
            format!("file:{PREFIX}none?immutable=1"),
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI,
            VFS_NAME,
        )
        .and_then(|c| c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0)));
        assert!(conn.is_err());
        // Nor any other file by name: only temporary ones, which have none.
        let (bytes, _) = database(dir.path(), 4096, 10);
        let plain = dir.path().join("plain.db");
        std::fs::write(&plain, bytes).unwrap();
        register().unwrap();
        let other =
            Connection::open_with_flags_and_vfs(&plain, OpenFlags::SQLITE_OPEN_READ_ONLY, VFS_NAME)
                .and_then(|c| c.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0)));
        assert!(other.is_err(), "{other:?}");
        let copy = copy_of(dir.path(), &std::fs::read(&plain).unwrap(), 4096);
        assert_eq!(
            connect(&copy)
                .and_then(|c| c.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0)))
                .unwrap(),
            10
        );
    }
}
