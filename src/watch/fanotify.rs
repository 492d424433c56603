//! The fanotify backend: one filesystem-wide mark per file system the rules
//! reach (`FAN_MARK_FILESYSTEM`, with the directory's file handle and the
//! entry's name reported), filtered here by the directories the daemon
//! watches, as inotify's per-directory watches would be. No watch limit, no
//! kernel memory per directory, and each event names the process that made
//! the change.
//!
//! Guarantees: an event is matched to a watched directory by its file
//! handle, never by a path looked up again (so a bind mount, or a directory
//! renamed since, cannot redirect it), and nothing is opened; the kernel's
//! queue overflowing is said as a rescan, as inotify's is; the reader
//! stopping stops the daemon (systemd restarts it); events of this process
//! (its outbox, its snapshots) are dropped.

use std::collections::{HashMap, HashSet};
use std::ffi::{CString, OsStr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use notify::event::{AccessKind, AccessMode, CreateKind, EventKind, ModifyKind, RemoveKind};
use notify::event::{Flag, RenameMode};

use super::Msg;
use super::actor::Actor;

/// What the daemon hears of: modifications, closes after writing, metadata,
/// and every change to a directory's entries.
const MASK: u64 = libc::FAN_MODIFY
    | libc::FAN_CLOSE_WRITE
    | libc::FAN_ATTRIB
    | libc::FAN_CREATE
    | libc::FAN_DELETE
    | libc::FAN_MOVED_FROM
    | libc::FAN_MOVED_TO
    | libc::FAN_DELETE_SELF
    | libc::FAN_MOVE_SELF
    | libc::FAN_ONDIR;

/// Bytes read from the fanotify descriptor at once.
const READ_BYTES: usize = 64 * 1024;

/// One change as the daemon takes it in.
pub type Sender = std::sync::mpsc::Sender<super::Msg>;

pub struct Fanotify {
    fd: Arc<OwnedFd>,
    /// `st_dev` of each file system marked.
    marked: HashSet<u64>,
    /// `st_dev` of each file system that refused a mark (said once).
    refused: HashSet<u64>,
    shared: Arc<Shared>,
}

/// A directory's identity as fanotify reports it: the file system's id and
/// the directory's file handle (type, then bytes). Stable across renames,
/// and independent of the mount it is seen through (a bind mount that
/// systemd's ProtectSystem= makes would give another path).
type HandleKey = ([i32; 2], i32, Vec<u8>);

/// The directories whose entries are reported, both ways.
#[derive(Default)]
struct Shared {
    dirs: RwLock<Dirs>,
}

#[derive(Default)]
struct Dirs {
    by_handle: HashMap<HandleKey, PathBuf>,
    by_path: HashMap<PathBuf, HandleKey>,
}

impl Fanotify {
    /// Starts the backend, its reader thread sending through `send`, and
    /// marks the file system of `first` (a directory the daemon watches in
    /// any case). Fails (with why) where fanotify cannot report names or
    /// mark a file system: not root (an unprivileged fanotify exists, but
    /// without file system marks), a kernel older than 5.9, a container
    /// without CAP_SYS_ADMIN.
    pub fn start(send: Sender, first: &Path) -> Result<Fanotify, String> {
        // SAFETY: plain syscall; the result is checked.
        let raw = unsafe {
            libc::fanotify_init(
                libc::FAN_CLASS_NOTIF | libc::FAN_CLOEXEC | libc::FAN_REPORT_DFID_NAME,
                (libc::O_RDONLY | libc::O_CLOEXEC | libc::O_LARGEFILE) as u32,
            )
        };
        if raw < 0 {
            let e = std::io::Error::last_os_error();
            return Err(match e.raw_os_error() {
                Some(libc::EPERM) => "fanotify needs CAP_SYS_ADMIN (run as root)".into(),
                Some(libc::EINVAL) => {
                    "this kernel's fanotify cannot report names (Linux 5.9 or later can)".into()
                }
                Some(libc::ENOSYS) => "this kernel has no fanotify".into(),
                _ => format!("fanotify_init: {e}"),
            });
        }
        // SAFETY: `raw` is a descriptor this process just opened and owns.
        let fd = Arc::new(unsafe { OwnedFd::from_raw_fd(raw) });
        let mut f = Fanotify {
            fd,
            marked: HashSet::new(),
            refused: HashSet::new(),
            shared: Arc::new(Shared::default()),
        };
        if let Err(e) = f.mark(first) {
            return Err(match e.raw_os_error() {
                Some(libc::EPERM) => {
                    "marking a file system needs CAP_SYS_ADMIN (run as root)".into()
                }
                _ => format!("cannot mark the file system of {}: {e}", first.display()),
            });
        }
        let (reader_fd, reader_shared) = (Arc::clone(&f.fd), Arc::clone(&f.shared));
        std::thread::Builder::new()
            .name("fanotify".into())
            .spawn(move || {
                let why = read_events(&reader_fd, &reader_shared, &send);
                // The daemon must not go on believing it watches.
                let _ = send.send(Msg::Stopped(format!("the fanotify reader stopped: {why}")));
            })
            .map_err(|e| format!("cannot start the fanotify reader: {e}"))?;
        Ok(f)
    }

    /// Reports the entries of `dir` from now on, marking its file system
    /// when it is the first directory there. An error says why not, once
    /// per file system (`None` after that, and for a directory gone).
    pub fn watch(&mut self, dir: &Path) -> Result<(), Option<String>> {
        use std::os::unix::fs::MetadataExt;
        let dev = std::fs::symlink_metadata(dir).map_err(|_| None)?.dev();
        if self.refused.contains(&dev) {
            return Err(None);
        }
        if !self.marked.contains(&dev)
            && let Err(e) = self.mark(dir)
        {
            if e.kind() == std::io::ErrorKind::NotFound {
                return Err(None);
            }
            self.refused.insert(dev);
            return Err(Some(format!(
                "cannot mark the file system of {} for fanotify: {e}; changes there are \
                     found by rescans only",
                crate::escape::escape_path(dir)
            )));
        }
        let key = handle_of(dir).map_err(|_| None)?;
        let mut dirs = write(&self.shared.dirs);
        if let Some(old) = dirs.by_path.insert(dir.to_path_buf(), key.clone()) {
            dirs.by_handle.remove(&old);
        }
        dirs.by_handle.insert(key, dir.to_path_buf());
        Ok(())
    }

    pub fn unwatch(&mut self, dir: &Path) {
        let mut dirs = write(&self.shared.dirs);
        if let Some(key) = dirs.by_path.remove(dir) {
            dirs.by_handle.remove(&key);
        }
    }

    /// Marks the file system `dir` is on (never through a symlink).
    fn mark(&mut self, dir: &Path) -> std::io::Result<()> {
        use std::os::unix::fs::MetadataExt;
        let c = CString::new(dir.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
        let dev = std::fs::symlink_metadata(dir)?.dev();
        // SAFETY: `c` is a valid C string; the result is checked.
        let rc = unsafe {
            libc::fanotify_mark(
                self.fd.as_raw_fd(),
                libc::FAN_MARK_ADD | libc::FAN_MARK_FILESYSTEM | libc::FAN_MARK_DONT_FOLLOW,
                MASK,
                libc::AT_FDCWD,
                c.as_ptr(),
            )
        };
        if rc < 0 {
            return Err(std::io::Error::last_os_error());
        }
        self.marked.insert(dev);
        Ok(())
    }
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

/// The identity fanotify will report for directory `dir` (not followed if
/// it is a symlink).
fn handle_of(dir: &Path) -> std::io::Result<HandleKey> {
    let c = CString::new(dir.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    let max = libc::MAX_HANDLE_SZ as usize;
    // struct file_handle: handle_bytes, handle_type, then the bytes.
    let mut buf = vec![0u32; 2 + max / 4];
    buf[0] = max as u32;
    let mut mount_id: libc::c_int = 0;
    // SAFETY: `buf` holds a struct file_handle with room for MAX_HANDLE_SZ
    // bytes, as handle_bytes says; the result is checked.
    let rc = unsafe {
        libc::name_to_handle_at(
            libc::AT_FDCWD,
            c.as_ptr(),
            buf.as_mut_ptr().cast(),
            &mut mount_id,
            0,
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let len = (buf[0] as usize).min(max);
    let handle_type = buf[1] as i32;
    // SAFETY: `buf` holds at least 8 + MAX_HANDLE_SZ bytes.
    let bytes: &[u8] = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast(), buf.len() * 4) };
    let handle = bytes[8..8 + len].to_vec();
    // SAFETY: statfs is plain old data; statfs fills it or fails.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fsid_t is two ints, as the kernel's __kernel_fsid_t.
    let fsid = unsafe { std::mem::transmute::<libc::fsid_t, [i32; 2]>(st.f_fsid) };
    Ok((fsid, handle_type, handle))
}

/// The reader thread: events in, changes out, until the descriptor fails
/// (returns why).
fn read_events(fd: &OwnedFd, shared: &Shared, send: &Sender) -> String {
    let me = std::process::id() as i32;
    let mut buf = vec![0u8; READ_BYTES];
    loop {
        // SAFETY: reads into `buf`, at most its length.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return format!("reading fanotify: {e}");
        }
        // Who wrote, read once per buffer: a flood from one process costs
        // one look at /proc.
        let mut actors: HashMap<i32, Actor> = HashMap::new();
        for ev in parse(&buf[..n as usize]) {
            if ev.overflow {
                let rescan = notify::Event::new(EventKind::Other).set_flag(Flag::Rescan);
                let _ = send.send(Msg::Fs(Ok(rescan), None));
                continue;
            }
            if ev.pid == me {
                continue;
            }
            let Some(path) = resolve(shared, &ev) else {
                continue;
            };
            let actor = Box::new(
                actors
                    .entry(ev.pid)
                    .or_insert_with(|| Actor::of(ev.pid as u32))
                    .clone(),
            );
            let mut out = notify::Event::new(kind_of(ev.mask)).add_path(path);
            out.attrs.set_process_id(ev.pid as u32);
            let _ = send.send(Msg::Fs(Ok(out), Some(actor)));
        }
    }
}

/// One event as read: its mask, the process, and the directory handle
/// (with the entry's name) it names.
struct Raw {
    mask: u64,
    pid: i32,
    overflow: bool,
    fsid: [i32; 2],
    handle_type: i32,
    /// The directory's file handle, bytes.
    handle: Vec<u8>,
    name: Vec<u8>,
}

/// The events in one read's bytes; malformed records end the parse.
fn parse(bytes: &[u8]) -> Vec<Raw> {
    let meta_len = std::mem::size_of::<libc::fanotify_event_metadata>();
    let mut out = Vec::new();
    let mut off = 0;
    while off + meta_len <= bytes.len() {
        // SAFETY: `meta_len` bytes are there; read unaligned.
        let m: libc::fanotify_event_metadata =
            unsafe { std::ptr::read_unaligned(bytes[off..].as_ptr().cast()) };
        let len = m.event_len as usize;
        let info_at = m.metadata_len as usize;
        if len < meta_len
            || off + len > bytes.len()
            || info_at < meta_len
            || info_at > len
            || m.vers != libc::FANOTIFY_METADATA_VERSION
        {
            break;
        }
        if m.fd >= 0 {
            // SAFETY: the kernel gave this descriptor to this process.
            drop(unsafe { OwnedFd::from_raw_fd(m.fd) });
        }
        let mut raw = Raw {
            mask: m.mask,
            pid: m.pid,
            overflow: m.mask & libc::FAN_Q_OVERFLOW != 0,
            fsid: [0; 2],
            handle_type: 0,
            handle: Vec::new(),
            name: Vec::new(),
        };
        let info = &bytes[off + info_at..off + len];
        parse_info(info, &mut raw);
        out.push(raw);
        off += len;
    }
    out
}

/// The DFID_NAME record: fsid, file handle, then the NUL-ended name.
fn parse_info(mut info: &[u8], raw: &mut Raw) {
    while info.len() >= 4 {
        let (kind, len) = (info[0], u16::from_ne_bytes([info[2], info[3]]) as usize);
        if len < 4 || len > info.len() {
            return;
        }
        let record = &info[..len];
        info = &info[len..];
        if kind != libc::FAN_EVENT_INFO_TYPE_DFID_NAME && kind != libc::FAN_EVENT_INFO_TYPE_DFID {
            continue;
        }
        // header (4) + fsid (8) + handle_bytes (4) + handle_type (4)
        if record.len() < 20 {
            return;
        }
        let word = |at: usize| <[u8; 4]>::try_from(&record[at..at + 4]).expect("4 bytes");
        let handle_bytes = u32::from_ne_bytes(word(12)) as usize;
        if handle_bytes > libc::MAX_HANDLE_SZ as usize {
            return;
        }
        let Some(handle) = record.get(20..20 + handle_bytes) else {
            return;
        };
        raw.fsid = [i32::from_ne_bytes(word(4)), i32::from_ne_bytes(word(8))];
        raw.handle_type = i32::from_ne_bytes(word(16));
        raw.handle = handle.to_vec();
        if kind == libc::FAN_EVENT_INFO_TYPE_DFID_NAME {
            let name = &record[20 + handle_bytes..];
            let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
            raw.name = name[..end].to_vec();
        }
    }
}

/// The path an event names, if its directory is one the daemon watches
/// (found by its handle: no path is looked up, and no file opened).
fn resolve(shared: &Shared, ev: &Raw) -> Option<PathBuf> {
    if ev.handle.is_empty() {
        return None;
    }
    let dirs = read(&shared.dirs);
    let key = (ev.fsid, ev.handle_type, ev.handle.clone());
    let dir = dirs.by_handle.get(&key)?;
    Some(match ev.name.as_slice() {
        b"" | b"." => dir.clone(),
        name => dir.join(OsStr::from_bytes(name)),
    })
}

/// The change a mask stands for, as inotify's backend names it.
fn kind_of(mask: u64) -> EventKind {
    if mask & (libc::FAN_DELETE | libc::FAN_DELETE_SELF) != 0 {
        EventKind::Remove(RemoveKind::Any)
    } else if mask & (libc::FAN_MOVED_FROM | libc::FAN_MOVE_SELF) != 0 {
        EventKind::Modify(ModifyKind::Name(RenameMode::From))
    } else if mask & libc::FAN_MOVED_TO != 0 {
        EventKind::Modify(ModifyKind::Name(RenameMode::To))
    } else if mask & libc::FAN_CREATE != 0 {
        EventKind::Create(CreateKind::Any)
    } else if mask & libc::FAN_CLOSE_WRITE != 0 {
        EventKind::Access(AccessKind::Close(AccessMode::Write))
    } else {
        EventKind::Modify(ModifyKind::Any)
    }
}
