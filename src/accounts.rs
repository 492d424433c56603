//! User and group names, for what a role baseline compares: the same account
//! has another number on each host of a role, but the same name.
//!
//! Names come from the system's databases (NSS: `/etc/passwd`, `/etc/group`
//! or a directory service) through the reentrant libc calls, and are kept
//! for the length of one scan: a scan asks for the same few owners again and
//! again, and an account renamed meanwhile is seen by the next scan.

use std::collections::HashMap;
use std::ffi::CStr;
use std::io;
use std::sync::Mutex;

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    User,
    Group,
}

/// Each id looked up: its name, `None` for an id without one, or the error
/// the lookup failed with (kept too: a directory service that times out is
/// not asked again for every file of that owner).
type Names = HashMap<(Kind, u32), Result<Option<String>, i32>>;

static NAMES: Mutex<Option<Names>> = Mutex::new(None);

/// Forgets what was looked up: a new scan sees renamed accounts.
pub fn forget() {
    *NAMES.lock().unwrap_or_else(|e| e.into_inner()) = None;
}

/// The name of user `uid`: `None` if the system has no account with that
/// number, an error if it could not tell (a directory service that is down):
/// that is never taken for "no name".
pub fn user_name(uid: u32) -> io::Result<Option<String>> {
    cached(Kind::User, uid)
}

/// The name of group `gid`, likewise.
pub fn group_name(gid: u32) -> io::Result<Option<String>> {
    cached(Kind::Group, gid)
}

fn cached(kind: Kind, id: u32) -> io::Result<Option<String>> {
    let known = |r: &Result<Option<String>, i32>| r.clone().map_err(io::Error::from_raw_os_error);
    if let Some(map) = NAMES.lock().unwrap_or_else(|e| e.into_inner()).as_ref()
        && let Some(name) = map.get(&(kind, id))
    {
        return known(name);
    }
    let name = lookup(kind, id).map_err(|e| e.raw_os_error().unwrap_or(libc::EIO));
    NAMES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(HashMap::new)
        .insert((kind, id), name.clone());
    known(&name)
}

/// getpwuid_r / getgrgid_r, growing the buffer while they ask for more.
fn lookup(kind: Kind, id: u32) -> io::Result<Option<String>> {
    let mut buf = vec![0u8; 1024];
    loop {
        let mut found: *mut libc::c_void = std::ptr::null_mut();
        // SAFETY: the record and the buffer outlive the call; the name read
        // below points into `buf`, which lives until the copy is made.
        let (rc, name) = unsafe {
            match kind {
                Kind::User => {
                    let mut pw: libc::passwd = std::mem::zeroed();
                    let rc = libc::getpwuid_r(
                        id,
                        &mut pw,
                        buf.as_mut_ptr().cast(),
                        buf.len(),
                        (&mut found as *mut *mut libc::c_void).cast(),
                    );
                    (rc, (!found.is_null()).then(|| owned(pw.pw_name)))
                }
                Kind::Group => {
                    let mut gr: libc::group = std::mem::zeroed();
                    let rc = libc::getgrgid_r(
                        id,
                        &mut gr,
                        buf.as_mut_ptr().cast(),
                        buf.len(),
                        (&mut found as *mut *mut libc::c_void).cast(),
                    );
                    (rc, (!found.is_null()).then(|| owned(gr.gr_name)))
                }
            }
        };
        match rc {
            // A group of a directory service can list thousands of members.
            libc::ERANGE if buf.len() < 64 << 20 => buf.resize(buf.len() * 4, 0),
            // glibc says "no such account" as 0 with no record; anything
            // else is a source that could not answer (nslcd says ENOENT
            // when it cannot reach its directory), never "no name".
            0 => return Ok(name.flatten()),
            rc => return Err(io::Error::from_raw_os_error(rc)),
        }
    }
}

/// # Safety
/// `p` is null or a NUL-terminated string.
unsafe fn owned(p: *const libc::c_char) -> Option<String> {
    if p.is_null() {
        return None;
    }
    // SAFETY: as the caller promises.
    let bytes = unsafe { CStr::from_ptr(p) }.to_bytes();
    (!bytes.is_empty()).then(|| String::from_utf8_lossy(bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_root_and_an_unused_id_has_no_name() {
        assert_eq!(user_name(0).unwrap().as_deref(), Some("root"));
        assert_eq!(group_name(0).unwrap().as_deref(), Some("root"));
        assert_eq!(user_name(3_999_999_999).unwrap(), None);
        forget();
        assert_eq!(user_name(0).unwrap().as_deref(), Some("root"));
    }
}
