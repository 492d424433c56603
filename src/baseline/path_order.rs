//! A schema-3 baseline's entries in path byte order, without a sort.
//!
//! The file keeps entries by directory ([`columns::tree_order`]), where
//! `/etc/ssh/sshd_config` comes after `/etc/sudoers`. In path order a
//! directory's block of entries (every path that starts with its path)
//! goes in among its parent's entries, and so on down the tree: a merge of
//! nested runs. Each directory on the way down from the root is a level
//! of a stack, read in chunks of [`columns::DIR_CHUNK_ROWS`] by name, so
//! that no SQLite cursor outlives a call and the entries held are bounded
//! by the depth, not by the size of a directory (the list of directories
//! is held whole: a few MB for a host's). Sorting the join instead costs a
//! quarter of a second per 100,000 entries.

use std::collections::VecDeque;
use std::os::unix::ffi::OsStrExt;

use rusqlite::params;

use super::{Baseline, RuleIndex, columns};
use crate::error::Error;
use crate::scan::Entry;

enum Step {
    Yield,
    Enter,
    Leave,
}

struct Level {
    /// The directory part its entries share (see [`columns::split`]).
    dir: Vec<u8>,
    /// Read, not yet yielded.
    ahead: VecDeque<Entry>,
    /// The name of the last entry read; `None` before the first chunk.
    last: Option<Vec<u8>>,
    /// Whether the directory has nothing more to read.
    done: bool,
}

/// The entries of a schema-3 baseline in path byte order.
pub(super) struct PathOrder<'b> {
    base: &'b Baseline,
    index: RuleIndex,
    /// The directories still to enter, in byte order.
    dirs: std::iter::Peekable<std::vec::IntoIter<Vec<u8>>>,
    stack: Vec<Level>,
}

impl<'b> PathOrder<'b> {
    /// Every entry of `base`, or those whose directory part starts with
    /// `below` (a directory's path and a `/`).
    pub(super) fn new(base: &'b Baseline, below: Option<&[u8]>) -> Result<PathOrder<'b>, Error> {
        let read_err = |e: rusqlite::Error| base.db_err(format!("cannot read directories: {e}"));
        let mut dirs = Vec::new();
        let mut push = |row: &rusqlite::Row<'_>| -> rusqlite::Result<()> {
            dirs.push(row.get::<_, Vec<u8>>(0)?);
            Ok(())
        };
        match below {
            None => {
                let mut stmt = base
                    .conn
                    .prepare("SELECT path FROM dirs ORDER BY path")
                    .map_err(read_err)?;
                let mut rows = stmt.query([]).map_err(read_err)?;
                while let Some(row) = rows.next().map_err(read_err)? {
                    push(row).map_err(read_err)?;
                }
            }
            Some(prefix) => {
                // Up to the prefix with '0' (the byte after '/') for its '/'.
                let mut end = prefix.to_vec();
                match end.last_mut() {
                    Some(last @ b'/') => *last = b'0',
                    _ => unreachable!("a prefix here is a directory's path and a '/'"),
                }
                let mut stmt = base
                    .conn
                    .prepare("SELECT path FROM dirs WHERE path >= ?1 AND path < ?2 ORDER BY path")
                    .map_err(read_err)?;
                let mut rows = stmt.query(params![prefix, end]).map_err(read_err)?;
                while let Some(row) = rows.next().map_err(read_err)? {
                    push(row).map_err(read_err)?;
                }
            }
        }
        Ok(PathOrder {
            base,
            index: base.rule_index(),
            dirs: dirs.into_iter().peekable(),
            stack: Vec::new(),
        })
    }

    /// The next entry in path byte order.
    pub(super) fn next(&mut self) -> Result<Option<Entry>, Error> {
        loop {
            if let Some(top) = self.stack.last_mut()
                && top.ahead.is_empty()
                && !top.done
            {
                Self::refill(self.base, &self.index, top)?;
            }
            let front = self
                .stack
                .last()
                .and_then(|l| l.ahead.front())
                .map(|e| e.path.as_os_str().as_bytes());
            let step = match (self.dirs.peek(), front) {
                // The top's next entry comes before the next directory's
                // block (or no directory is left): a directory's path
                // precedes every path of its block.
                (None, Some(_)) => Step::Yield,
                (Some(dir), Some(path)) if path < dir.as_slice() => Step::Yield,
                // It comes after: that directory lies below the top, and
                // its block goes first.
                (Some(_), Some(_)) => Step::Enter,
                // The top is read out: its parent goes on (and yields what
                // it has before the next directory's block).
                (_, None) if !self.stack.is_empty() => Step::Leave,
                (Some(_), None) => Step::Enter,
                (None, None) => return Ok(None),
            };
            match step {
                Step::Yield => {
                    let top = self.stack.last_mut().expect("a front has a level");
                    return Ok(top.ahead.pop_front());
                }
                Step::Enter => self.enter(),
                Step::Leave => {
                    self.stack.pop();
                }
            }
        }
    }

    fn enter(&mut self) {
        let dir = self.dirs.next().expect("entered only when one is next");
        self.stack.push(Level {
            dir,
            ahead: VecDeque::new(),
            last: None,
            done: false,
        });
    }

    fn refill(base: &Baseline, index: &RuleIndex, level: &mut Level) -> Result<(), Error> {
        let read_err = |e: rusqlite::Error| base.db_err(format!("cannot read entries: {e}"));
        let mut stmt = base
            .conn
            .prepare_cached(columns::dir_chunk(level.last.is_some()))
            .map_err(read_err)?;
        let mut rows = match &level.last {
            Some(last) => stmt.query(params![level.dir, last]),
            None => stmt.query(params![level.dir]),
        }
        .map_err(read_err)?;
        let mut read = 0;
        while let Some(e) = base.next_entry(&mut rows, index)? {
            read += 1;
            level.ahead.push_back(e);
        }
        level.done = read < columns::DIR_CHUNK_ROWS;
        if let Some(e) = level.ahead.back() {
            let (_, name) = columns::split(e.path.as_os_str().as_bytes());
            level.last = Some(name.to_vec());
        }
        Ok(())
    }
}
