//! The attributes a rule can check, and sets of them.
//!
//! An [`AttrSet`] is a small bitmask: it is stored with every baseline entry so
//! that a row says by itself which of its fields were captured and must be
//! compared, whatever rules file is on the disk later.

use std::fmt;

/// One checkable attribute of a file system entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Attr {
    Type,
    Mode,
    Uid,
    Gid,
    Size,
    Mtime,
    Ctime,
    Inode,
    Nlink,
    Dev,
    Link,
    Hash,
    Xattrs,
    Growing,
    /// The owner's user name (a role baseline's `uid`: numbers differ
    /// between hosts, names do not).
    Owner,
    /// The group's name, likewise.
    Group,
}

impl Attr {
    /// Every attribute, in the order reports list them.
    pub const ALL: [Attr; 16] = [
        Attr::Type,
        Attr::Mode,
        Attr::Uid,
        Attr::Gid,
        Attr::Owner,
        Attr::Group,
        Attr::Size,
        Attr::Mtime,
        Attr::Ctime,
        Attr::Inode,
        Attr::Nlink,
        Attr::Dev,
        Attr::Link,
        Attr::Hash,
        Attr::Xattrs,
        Attr::Growing,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Attr::Type => "type",
            Attr::Mode => "mode",
            Attr::Uid => "uid",
            Attr::Gid => "gid",
            Attr::Size => "size",
            Attr::Mtime => "mtime",
            Attr::Ctime => "ctime",
            Attr::Inode => "inode",
            Attr::Nlink => "nlink",
            Attr::Dev => "dev",
            Attr::Link => "link",
            Attr::Hash => "hash",
            Attr::Xattrs => "xattrs",
            Attr::Growing => "growing",
            Attr::Owner => "owner",
            Attr::Group => "group",
        }
    }

    pub fn from_name(name: &str) -> Option<Attr> {
        Attr::ALL.into_iter().find(|a| a.name() == name)
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }

    /// What only one host knows: the same file has another inode, device,
    /// change time and link count on each host of a role.
    pub const HOST_ONLY: [Attr; 4] = [Attr::Inode, Attr::Dev, Attr::Ctime, Attr::Nlink];

    /// What a role baseline compares instead of this attribute: owner and
    /// group by name, nothing for what only one host knows, the rest as is.
    pub fn portable(self) -> Option<Attr> {
        match self {
            Attr::Uid => Some(Attr::Owner),
            Attr::Gid => Some(Attr::Group),
            a if Attr::HOST_ONLY.contains(&a) => None,
            a => Some(a),
        }
    }
}

/// A set of attributes; stored in the baseline as its integer bits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct AttrSet(u16);

impl AttrSet {
    pub const EMPTY: AttrSet = AttrSet(0);

    pub fn contains(self, attr: Attr) -> bool {
        self.0 & attr.bit() != 0
    }

    pub fn insert(&mut self, attr: Attr) {
        self.0 |= attr.bit();
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether capturing this set needs the file's content to be read.
    pub fn needs_content(self) -> bool {
        self.contains(Attr::Hash) || self.contains(Attr::Growing)
    }

    pub fn iter(self) -> impl Iterator<Item = Attr> {
        Attr::ALL.into_iter().filter(move |a| self.contains(*a))
    }

    pub fn bits(self) -> u16 {
        self.0
    }

    /// Rebuilds a set read back from a baseline; `None` if it holds bits that
    /// no attribute of this version has (a newer tool wrote it).
    pub fn from_bits(bits: u16) -> Option<AttrSet> {
        let known = Attr::ALL.iter().fold(0u16, |acc, a| acc | a.bit());
        (bits & !known == 0).then_some(AttrSet(bits))
    }
}

impl FromIterator<Attr> for AttrSet {
    fn from_iter<I: IntoIterator<Item = Attr>>(iter: I) -> Self {
        let mut set = AttrSet::EMPTY;
        for a in iter {
            set.insert(a);
        }
        set
    }
}

impl fmt::Display for AttrSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for a in self.iter() {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(a.name())?;
            first = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for a in Attr::ALL {
            assert_eq!(Attr::from_name(a.name()), Some(a));
        }
        assert_eq!(Attr::from_name("sha256"), None);
    }

    #[test]
    fn bits_round_trip_and_reject_unknown() {
        let set: AttrSet = [Attr::Mode, Attr::Hash, Attr::Growing]
            .into_iter()
            .collect();
        assert_eq!(AttrSet::from_bits(set.bits()), Some(set));
        assert_eq!(set.to_string(), "mode hash growing");
        assert!(set.needs_content());
        assert_eq!(
            AttrSet::from_bits(1 << 15),
            Some([Attr::Group].into_iter().collect())
        );
    }

    #[test]
    fn a_role_compares_names_and_nothing_host_bound() {
        let full: AttrSet = Attr::ALL.into_iter().collect();
        let portable: AttrSet = full.iter().filter_map(Attr::portable).collect();
        assert_eq!(
            portable.to_string(),
            "type mode owner group size mtime link hash xattrs growing"
        );
    }
}
