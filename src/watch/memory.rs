//! What the daemon has reported, per path: a drift is reported once per
//! distinct state, and a path that drifted is reported restored once it is
//! back to its baseline state.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::compare::Drift;
use crate::shapes::drift_json;

#[derive(Debug, Default)]
pub struct DriftMemory {
    /// For each path that drifted: the drift last reported, as its JSON.
    reported: HashMap<PathBuf, String>,
}

/// What to tell about one path after it was compared.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    /// A drift not reported in this state yet.
    Drifted,
    /// It drifted before and is back to its baseline state.
    Restored,
    /// Nothing new.
    Same,
}

impl DriftMemory {
    /// Takes in the comparison of `path` with its baseline entry.
    pub fn judge(&mut self, path: &Path, drift: Option<&Drift>) -> Verdict {
        match drift {
            Some(d) => {
                // The origin is the explanation, not the state: a rescan
                // explains what a single path's check did not.
                let mut state = drift_json(d);
                if let Some(o) = state.as_object_mut() {
                    o.remove("origin");
                }
                let state = state.to_string();
                if self.reported.get(path) == Some(&state) {
                    return Verdict::Same;
                }
                self.reported.insert(path.to_path_buf(), state);
                Verdict::Drifted
            }
            None if self.reported.remove(path).is_some() => Verdict::Restored,
            None => Verdict::Same,
        }
    }

    /// Paths reported as drifted strictly below `dir`.
    pub fn below(&self, dir: &Path) -> Vec<PathBuf> {
        self.reported
            .keys()
            .filter(|p| p.starts_with(dir) && p.as_path() != dir)
            .cloned()
            .collect()
    }

    /// Paths reported as drifted that `still` does not hold.
    pub fn not_in(&self, still: &std::collections::HashSet<PathBuf>) -> Vec<PathBuf> {
        self.reported
            .keys()
            .filter(|p| !still.contains(*p))
            .cloned()
            .collect()
    }

    /// Forgets everything: drift is measured against a new generation.
    pub fn clear(&mut self) {
        self.reported.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::DriftKind;
    use crate::rules::Severity;
    use crate::scan::Entry;

    fn drift(path: &str, kind: DriftKind) -> Drift {
        Drift {
            kind,
            path: PathBuf::from(path),
            rule: "code".into(),
            severity: Severity::High,
            entry: Entry {
                path: PathBuf::from(path),
                rule: 0,
                attrs: Default::default(),
                meta: None,
                link: None,
                hash: None,
                xattrs: None,
                owner: None,
                group: None,
                problem: None,
                prefix_hash: None,
                trusted: false,
            },
            origin: None,
            finding: None,
            changes: Vec::new(),
            problem: None,
        }
    }

    #[test]
    fn each_state_once_then_restored_once() {
        let mut m = DriftMemory::default();
        let p = Path::new("/t/a.py");
        let added = drift("/t/a.py", DriftKind::Added);
        assert_eq!(m.judge(p, Some(&added)), Verdict::Drifted);
        assert_eq!(m.judge(p, Some(&added)), Verdict::Same);
        let changed = drift("/t/a.py", DriftKind::Changed);
        assert_eq!(m.judge(p, Some(&changed)), Verdict::Drifted);
        assert_eq!(m.judge(p, None), Verdict::Restored);
        assert_eq!(m.judge(p, None), Verdict::Same);
    }

    #[test]
    fn below_and_not_in_pick_the_right_paths() {
        let mut m = DriftMemory::default();
        for p in ["/t/d", "/t/d/x", "/t/dx", "/t/e"] {
            m.judge(Path::new(p), Some(&drift(p, DriftKind::Added)));
        }
        assert_eq!(m.below(Path::new("/t/d")), [PathBuf::from("/t/d/x")]);
        let still = ["/t/d", "/t/d/x", "/t/dx"].map(PathBuf::from).into();
        assert_eq!(m.not_in(&still), [PathBuf::from("/t/e")]);
        m.clear();
        assert!(m.below(Path::new("/t")).is_empty());
    }
}
