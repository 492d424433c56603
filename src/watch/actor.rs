//! Who made a change: the process fanotify names, as `/proc` shows it when
//! the event is read. A process that is already gone keeps its pid and is
//! said to have exited; nothing is guessed.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use crate::shapes::json_path;

/// `/proc/PID/loginuid` and `sessionid` when nobody logged in.
const UNSET: u32 = u32::MAX;
/// What tripseal reads of one `/proc` file at most.
const MAX_PROC_BYTES: u64 = 64 * 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub pid: u32,
    /// `None`: the process was gone when the event was read.
    pub seen: Option<Seen>,
}

/// A live process, as `/proc` showed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub exe: Option<PathBuf>,
    /// The executable's device and inode, as the kernel resolves the link:
    /// what a process runs, whatever its name or its mount namespace says.
    pub exe_id: Option<(u64, u64)>,
    pub comm: String,
    pub uid: u32,
    pub euid: u32,
    pub loginuid: Option<u32>,
    pub session: Option<u32>,
    pub ppid: u32,
    /// The cgroup (v2) path, and the systemd unit it names.
    pub cgroup: Option<String>,
    pub unit: Option<String>,
    /// It was gone by the end of the reading: what was seen stays.
    pub exited: bool,
}

impl Actor {
    /// Reads `/proc/PID` now.
    pub fn of(pid: u32) -> Actor {
        Actor {
            pid,
            seen: Seen::read(Path::new(&format!("/proc/{pid}"))),
        }
    }

    pub fn json(&self) -> Value {
        let Some(s) = &self.seen else {
            return json!({"pid": self.pid, "exited": true});
        };
        let mut o = Map::new();
        o.insert("pid".into(), self.pid.into());
        o.insert("exited".into(), s.exited.into());
        if let Some(exe) = &s.exe {
            json_path(&mut o, "exe", exe.as_os_str().as_encoded_bytes());
        }
        o.insert(
            "comm".into(),
            crate::escape::escape_bytes(s.comm.as_bytes()).into(),
        );
        o.insert("uid".into(), s.uid.into());
        o.insert("euid".into(), s.euid.into());
        o.insert("loginuid".into(), s.loginuid.into());
        o.insert("session".into(), s.session.into());
        o.insert("ppid".into(), s.ppid.into());
        // Names a process or a user's manager may choose: escaped.
        let text = |t: &Option<String>| {
            t.as_deref()
                .map(|t| crate::escape::escape_bytes(t.as_bytes()))
                .into()
        };
        o.insert("cgroup".into(), text(&s.cgroup));
        o.insert("unit".into(), text(&s.unit));
        Value::Object(o)
    }
}

impl Seen {
    fn read(dir: &Path) -> Option<Seen> {
        let status = read(&dir.join("status"))?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(str::trim)
        };
        let mut ids = field("Uid:")?.split_whitespace();
        let uid = ids.next()?.parse().ok()?;
        let euid = ids.next()?.parse().ok()?;
        let ppid = field("PPid:")?.parse().ok()?;
        let comm = field("Name:").unwrap_or("").to_string();
        let id = |f: &str| {
            read(&dir.join(f))
                .and_then(|s| s.trim().parse::<u32>().ok())
                .filter(|&v| v != UNSET)
        };
        let cgroup = read(&dir.join("cgroup")).and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("0::"))
                .map(str::to_string)
        });
        let unit = cgroup.as_deref().and_then(unit_of);
        // Another user's process's executable needs CAP_SYS_PTRACE: absent
        // then, and said as null.
        let exe = std::fs::read_link(dir.join("exe")).ok();
        let exe_id = std::fs::metadata(dir.join("exe")).ok().map(|m| {
            use std::os::unix::fs::MetadataExt;
            (m.dev(), m.ino())
        });
        // Still there after all of it was read, or gone meanwhile.
        let exited = std::fs::symlink_metadata(dir.join("status")).is_err();
        Some(Seen {
            exe,
            exe_id,
            comm,
            uid,
            euid,
            loginuid: id("loginuid"),
            session: id("sessionid"),
            ppid,
            cgroup,
            unit,
            exited,
        })
    }
}

fn read(path: &Path) -> Option<String> {
    crate::files::read_untrusted(path, MAX_PROC_BYTES)
        .ok()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// The systemd unit a cgroup path names: its innermost `*.service` or
/// `*.scope` (a user's session, `session-3.scope`).
fn unit_of(cgroup: &str) -> Option<String> {
    cgroup
        .rsplit('/')
        .find(|c| c.ends_with(".service") || c.ends_with(".scope"))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_seen_as_it_is() {
        let me = Actor::of(std::process::id());
        let s = me.seen.expect("alive");
        assert_eq!(s.exe, std::env::current_exe().ok());
        let uid = unsafe { libc::getuid() };
        assert_eq!(s.uid, uid);
        assert_eq!(s.ppid, std::os::unix::process::parent_id());
    }

    #[test]
    fn a_gone_process_keeps_its_pid() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let a = Actor::of(pid);
        assert_eq!(a.seen, None);
        assert_eq!(a.json(), json!({"pid": pid, "exited": true}));
    }

    #[test]
    fn units_come_from_the_cgroup() {
        assert_eq!(
            unit_of("/system.slice/celery.service").as_deref(),
            Some("celery.service")
        );
        assert_eq!(
            unit_of("/user.slice/user-1000.slice/session-3.scope").as_deref(),
            Some("session-3.scope")
        );
        assert_eq!(unit_of("/"), None);
    }
}
