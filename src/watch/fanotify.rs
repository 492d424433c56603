//! The fanotify backend: one filesystem-wide mark per file system the rules
//! reach (`FAN_MARK_FILESYSTEM`, with the directory's file handle and the
//! entry's name reported), filtered here by the directories the daemon
//! watches, as inotify's per-directory watches would be. No watch limit, no
//! kernel memory per directory, and each event names the process that made
//! the change.
//!
//! Guarantees: a directory handle is opened only with `O_PATH` (never
//! read), through a descriptor on its own file system; the kernel's queue
//! overflowing is said as a rescan, as inotify's is; events of this process
//! (its outbox, its snapshots) are dropped.

use std::collections::{HashMap, HashSet};
use std::ffi::{CString, OsStr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use notify::event::{AccessKind, AccessMode, CreateKind, EventKind, ModifyKind, RemoveKind};
use notify::event::{Flag, RenameMode};

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
pub type Sender = Box<dyn Fn(notify::Result<notify::Event>, Option<Box<Actor>>) + Send>;

pub struct Fanotify {
    fd: Arc<OwnedFd>,
    /// `st_dev` of each file system marked.
    marked: HashSet<u64>,
    /// `st_dev` of each file system that refused a mark (said once).
    refused: HashSet<u64>,
    shared: Arc<Shared>,
}

struct Shared {
    /// The directories whose entries are reported.
    dirs: RwLock<HashSet<PathBuf>>,
    /// A descriptor on each marked file system, by its fsid, to open the
    /// directory handles its events carry.
    mounts: RwLock<Vec<([i32; 2], OwnedFd)>>,
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
        let shared = Arc::new(Shared {
            dirs: RwLock::new(HashSet::new()),
            mounts: RwLock::new(Vec::new()),
        });
        let mut f = Fanotify {
            fd,
            marked: HashSet::new(),
            refused: HashSet::new(),
            shared,
        };
        match f.watch(first) {
            Ok(()) => {}
            Err(Some(why)) if why.contains("Operation not permitted") => {
                return Err("marking a file system needs CAP_SYS_ADMIN (run as root)".into());
            }
            Err(Some(why)) => return Err(why),
            Err(None) => return Err(format!("{} is gone", first.display())),
        }
        let (reader_fd, reader_shared) = (Arc::clone(&f.fd), Arc::clone(&f.shared));
        std::thread::Builder::new()
            .name("fanotify".into())
            .spawn(move || read_events(&reader_fd, &reader_shared, &send))
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
        if !self.marked.contains(&dev) {
            if let Err(e) = self.mark(dir) {
                self.refused.insert(dev);
                return Err(Some(format!(
                    "{e}; changes there are found by rescans only"
                )));
            }
            self.marked.insert(dev);
        }
        write(&self.shared.dirs).insert(dir.to_path_buf());
        Ok(())
    }

    pub fn unwatch(&mut self, dir: &Path) {
        write(&self.shared.dirs).remove(dir);
    }

    fn mark(&self, dir: &Path) -> Result<(), String> {
        let c = CString::new(dir.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
        // SAFETY: `c` is a valid C string; the result is checked.
        let rc = unsafe {
            libc::fanotify_mark(
                self.fd.as_raw_fd(),
                libc::FAN_MARK_ADD | libc::FAN_MARK_FILESYSTEM,
                MASK,
                libc::AT_FDCWD,
                c.as_ptr(),
            )
        };
        if rc < 0 {
            return Err(format!(
                "cannot mark the file system of {} for fanotify: {}",
                crate::escape::escape_path(dir),
                std::io::Error::last_os_error()
            ));
        }
        // SAFETY: `c` is a valid C string; the result is checked.
        let raw = unsafe {
            libc::open(
                c.as_ptr(),
                // Not O_PATH: open_by_handle_at refuses such a mount_fd.
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
            )
        };
        if raw < 0 {
            return Err(format!(
                "cannot open {}: {}",
                dir.display(),
                std::io::Error::last_os_error()
            ));
        }
        // SAFETY: just opened, owned here.
        let mount = unsafe { OwnedFd::from_raw_fd(raw) };
        let fsid = fsid_of(&mount)?;
        write(&self.shared.mounts).push((fsid, mount));
        Ok(())
    }
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn fsid_of(fd: &OwnedFd) -> Result<[i32; 2], String> {
    // SAFETY: statfs is plain old data; fstatfs fills it or fails.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstatfs(fd.as_raw_fd(), &mut st) } < 0 {
        return Err(format!("fstatfs: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: fsid_t is two ints, as the kernel's __kernel_fsid_t.
    Ok(unsafe { std::mem::transmute::<libc::fsid_t, [i32; 2]>(st.f_fsid) })
}

/// The reader thread: events in, changes out, until the descriptor fails.
fn read_events(fd: &OwnedFd, shared: &Shared, send: &Sender) {
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
            send(
                Err(notify::Error::generic(&format!("reading fanotify: {e}"))),
                None,
            );
            return;
        }
        // Who wrote, read once per buffer: a flood from one process costs
        // one look at /proc.
        let mut actors: HashMap<i32, Actor> = HashMap::new();
        for ev in parse(&buf[..n as usize]) {
            if ev.overflow {
                let rescan = notify::Event::new(EventKind::Other).set_flag(Flag::Rescan);
                send(Ok(rescan), None);
                continue;
            }
            if ev.pid == me {
                continue;
            }
            let Some(path) = resolve(shared, &ev) else {
                log::trace!(
                    "fanotify: mask {:#x} pid {} not watched or gone",
                    ev.mask,
                    ev.pid
                );
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
            send(Ok(out), Some(actor));
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
    /// `struct file_handle`, as `open_by_handle_at` takes it.
    handle: Vec<u32>,
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
        if len < meta_len || off + len > bytes.len() || m.vers != libc::FANOTIFY_METADATA_VERSION {
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
            handle: Vec::new(),
            name: Vec::new(),
        };
        let info = &bytes[off + m.metadata_len as usize..off + len];
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
        let int = |at: usize| i32::from_ne_bytes(record[at..at + 4].try_into().expect("4 bytes"));
        raw.fsid = [int(4), int(8)];
        let handle_bytes = int(12) as usize;
        let Some(rest) = record.get(20..20 + handle_bytes) else {
            return;
        };
        let mut handle = vec![0u32; 2 + handle_bytes.div_ceil(4)];
        // SAFETY: `handle` holds 8 + handle_bytes bytes or more.
        let dst: &mut [u8] =
            unsafe { std::slice::from_raw_parts_mut(handle.as_mut_ptr().cast(), handle.len() * 4) };
        dst[..8].copy_from_slice(&record[12..20]);
        dst[8..8 + handle_bytes].copy_from_slice(rest);
        raw.handle = handle;
        if kind == libc::FAN_EVENT_INFO_TYPE_DFID_NAME {
            let name = &record[20 + handle_bytes..];
            let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
            raw.name = name[..end].to_vec();
        }
    }
}

/// The path an event names, if the daemon watches its directory (or it is
/// a watched directory itself).
fn resolve(shared: &Shared, ev: &Raw) -> Option<PathBuf> {
    if ev.handle.is_empty() {
        return None;
    }
    let dir = {
        let mounts = read(&shared.mounts);
        let Some((_, mount)) = mounts.iter().find(|(f, _)| *f == ev.fsid) else {
            log::trace!("fanotify: fsid {:?} not marked", ev.fsid);
            return None;
        };
        let mut handle = ev.handle.clone();
        // SAFETY: `handle` is a complete struct file_handle; the result is
        // checked and owned.
        let raw = unsafe {
            libc::open_by_handle_at(
                mount.as_raw_fd(),
                handle.as_mut_ptr().cast(),
                libc::O_PATH | libc::O_CLOEXEC,
            )
        };
        if raw < 0 {
            log::trace!("fanotify: handle: {}", std::io::Error::last_os_error());
            return None; // gone since: its removal is an event of its own
        }
        // SAFETY: just opened, owned here.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).ok()?
    };
    let path = match ev.name.as_slice() {
        b"" | b"." => dir,
        name => dir.join(OsStr::from_bytes(name)),
    };
    log::trace!("fanotify: {}", path.display());
    let dirs = read(&shared.dirs);
    let watched = dirs.contains(&path) || path.parent().is_some_and(|p| dirs.contains(p));
    watched.then_some(path)
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
