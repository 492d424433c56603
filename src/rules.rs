//! Rules: parsing, variables, validation with file/line/column, and selection.
//!
//! Guarantees:
//! - a rules file either loads completely or fails with an error that names the
//!   file, line and column of the offending text; unknown keys, attributes,
//!   groups and variables are errors, never ignored;
//! - selecting the rule for a path is deterministic: among the patterns that
//!   match (and that their rule does not exclude), the most specific wins
//!   (longest literal directory prefix, then most literal characters, then the
//!   rule written first); [`Rules::explain`] shows the same decision;
//! - walking starts at the literal prefix of each glob and only descends into
//!   directories below which some pattern could still match.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use globset::{Candidate, Glob, GlobBuilder, GlobMatcher, GlobSet, GlobSetBuilder};
use serde::Deserialize;
use toml::Spanned;

use crate::attrs::{Attr, AttrSet};

/// The rules shipped with tripseal, used when no other rules file is found.
pub const EMBEDDED_RULES: &str = include_str!("../rules/celery-worker.toml");
/// The name the embedded rules are reported under.
pub const EMBEDDED_RULES_NAME: &str = "<embedded rules/celery-worker.toml>";

/// How serious a finding under a rule is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    #[default]
    Medium,
    High,
    Critical,
}

impl Severity {
    /// One step down (`info` stays `info`).
    pub fn lower(self) -> Severity {
        match self {
            Severity::Info | Severity::Low => Severity::Info,
            Severity::Medium => Severity::Low,
            Severity::High => Severity::Medium,
            Severity::Critical => Severity::High,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// A rules file that failed to load, located at file, line and column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct RulesError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Where the text of a rules file came from, and the text itself.
#[derive(Debug, Clone)]
pub struct RulesSource {
    /// Shown in messages: a path, or [`EMBEDDED_RULES_NAME`].
    pub name: String,
    pub text: String,
}

impl RulesSource {
    pub fn embedded() -> Self {
        RulesSource {
            name: EMBEDDED_RULES_NAME.to_string(),
            text: EMBEDDED_RULES.to_string(),
        }
    }
}

/// One rule after variables were expanded and its attributes resolved.
#[derive(Debug)]
pub struct Rule {
    pub name: String,
    /// What the rule compares: as written, or, in a role's rules, the
    /// portable counterparts ([`Attr::portable`]).
    pub attrs: AttrSet,
    /// In a role's rules: what the rule asks for that no role baseline
    /// compares (inode, dev, ctime, nlink).
    pub host_only: AttrSet,
    pub severity: Severity,
    /// Whether walks for this rule may descend into other file systems.
    pub cross_filesystems: bool,
    /// The expanded `paths` globs, as written after variable expansion.
    pub paths: Vec<String>,
    /// The expanded `exclude` globs.
    pub excludes: Vec<String>,
    exclude_set: GlobSet,
    /// `audit = "celery"`: the files this rule selects are a Celery
    /// configuration, and `check` audits them (see [`crate::audit`]).
    pub audit: Option<AuditKind>,
}

/// What a rule's files are audited as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditKind {
    Celery,
}

/// One `paths` glob of one rule, with what the walk needs to know about it.
#[derive(Debug)]
pub struct Pattern {
    pub rule: usize,
    pub glob: String,
    /// The directory (or exact path) a walk for this pattern starts at.
    pub root: PathBuf,
    /// Components after `root`, for deciding whether to descend.
    components: Vec<Component_>,
    /// Bytes of literal directory prefix: the main specificity key.
    pub literal_prefix: usize,
    /// Literal (non-wildcard) characters in the whole glob: the tie-breaker.
    pub literal_chars: usize,
}

#[derive(Debug)]
enum Component_ {
    Literal(Vec<u8>),
    Wild(GlobMatcher),
    AnyDepth,
}

/// A place a walk starts, after nested roots were merged into their ancestors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalkRoot {
    pub path: PathBuf,
    /// True when some rule below this root may cross into other file systems.
    pub cross_filesystems: bool,
}

/// The loaded rules: validated, expanded and compiled for selection.
#[derive(Debug)]
pub struct Rules {
    pub source: RulesSource,
    /// `role = "NAME"`: the baselines made with these rules serve every host
    /// of the role (see [`Attr::portable`]); `None` (or empty): one host's.
    pub role: Option<String>,
    /// The effective variables (file values with `--var` overrides applied).
    pub vars: BTreeMap<String, String>,
    /// The `--var` overrides given, kept so a baseline can reproduce the rules.
    pub overrides: BTreeMap<String, String>,
    pub rules: Vec<Rule>,
    pub patterns: Vec<Pattern>,
    pattern_set: GlobSet,
}

/// The rule that governs a path, and the pattern that made it win.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Selection {
    pub rule: usize,
    pub pattern: usize,
}

/// Everything [`Rules::explain`] found out about one path.
#[derive(Debug)]
pub struct Explanation {
    pub winner: Option<Selection>,
    /// Patterns that match, most specific first (the winner among them).
    pub matched: Vec<usize>,
    /// Patterns that match but whose rule excludes the path, with the exclude glob.
    pub excluded: Vec<(usize, String)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    role: Option<Spanned<String>>,
    #[serde(default)]
    vars: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    groups: BTreeMap<String, Spanned<Vec<String>>>,
    #[serde(default, rename = "rule")]
    rules: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: Spanned<String>,
    paths: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    exclude: Vec<Spanned<String>>,
    check: Spanned<toml::Value>,
    #[serde(default)]
    severity: Severity,
    #[serde(default)]
    cross_filesystems: bool,
    #[serde(default)]
    audit: Option<AuditKind>,
}

/// Locates errors in the rules text: a byte span becomes a line and column.
struct Locator<'a> {
    source: &'a RulesSource,
}

impl Locator<'_> {
    fn err(&self, span: Option<std::ops::Range<usize>>, message: String) -> RulesError {
        let (line, column) = line_column(&self.source.text, span.map_or(0, |s| s.start));
        RulesError {
            file: self.source.name.clone(),
            line,
            column,
            message,
        }
    }
}

/// The patterns of every rule, as they are compiled into one set.
struct PatternsBuilder {
    patterns: Vec<Pattern>,
    globs: GlobSetBuilder,
}

impl Rules {
    /// Parses and validates `source`, applying `overrides` to its `[vars]`.
    pub fn load(
        source: RulesSource,
        overrides: &BTreeMap<String, String>,
    ) -> Result<Rules, RulesError> {
        let at = Locator { source: &source };
        let raw: RawFile = toml::from_str(&source.text).map_err(|e| {
            at.err(
                e.span(),
                e.message().trim_end().replace('\n', "; ").to_string(),
            )
        })?;
        let vars = resolve_vars(&raw.vars, overrides, &at)?;
        let groups = resolve_groups(&raw.groups, &at)?;
        let role = resolve_role(raw.role.as_ref(), &vars, &at)?;
        if raw.rules.is_empty() {
            return Err(at.err(
                None,
                "no [[rule]] tables: a rules file must select something".to_string(),
            ));
        }
        let mut rules: Vec<Rule> = Vec::with_capacity(raw.rules.len());
        let mut patterns = PatternsBuilder {
            patterns: Vec::new(),
            globs: GlobSetBuilder::new(),
        };
        for (index, r) in raw.rules.iter().enumerate() {
            let name = r.name.get_ref().trim();
            if name.is_empty() || name.chars().any(char::is_control) {
                return Err(at.err(
                    Some(r.name.span()),
                    "rule name must be non-empty and printable".to_string(),
                ));
            }
            if rules.iter().any(|x| x.name == name) {
                return Err(at.err(
                    Some(r.name.span()),
                    format!(
                        "a rule named \"{name}\" is already defined; rule names must be unique"
                    ),
                ));
            }
            let mut rule = build_rule(index, r, &vars, &groups, &at, &mut patterns)?;
            if role.is_some() {
                rule.host_only = rule
                    .attrs
                    .iter()
                    .filter(|a| a.portable().is_none())
                    .collect();
                rule.attrs = rule.attrs.iter().filter_map(Attr::portable).collect();
                if rule.attrs.is_empty() {
                    return Err(at.err(
                        Some(r.check.span()),
                        format!(
                            "rule \"{name}\" checks only what differs between the hosts of a \
                             role ({}); check something a role shares, such as hash or mode",
                            rule.host_only
                        ),
                    ));
                }
            }
            rules.push(rule);
        }
        let pattern_set = patterns
            .globs
            .build()
            .map_err(|e| at.err(None, e.to_string()))?;
        Ok(Rules {
            role,
            vars,
            overrides: overrides.clone(),
            rules,
            patterns: patterns.patterns,
            pattern_set,
            source,
        })
    }

    /// The rule that governs `path`, if any.
    pub fn select(&self, path: &Path) -> Option<Selection> {
        let candidate = Candidate::new(path);
        let mut best: Option<usize> = None;
        for i in self.pattern_set.matches_candidate(&candidate) {
            let p = &self.patterns[i];
            if self.rules[p.rule]
                .exclude_set
                .is_match_candidate(&candidate)
            {
                continue;
            }
            if best.is_none_or(|b| self.more_specific(i, b)) {
                best = Some(i);
            }
        }
        best.map(|i| Selection {
            rule: self.patterns[i].rule,
            pattern: i,
        })
    }

    /// Like [`Rules::select`], with every pattern that took part in the decision.
    pub fn explain(&self, path: &Path) -> Explanation {
        let candidate = Candidate::new(path);
        let mut matched = Vec::new();
        let mut excluded = Vec::new();
        for i in self.pattern_set.matches_candidate(&candidate) {
            let rule = &self.rules[self.patterns[i].rule];
            let hit = rule.exclude_set.matches_candidate(&candidate);
            match hit.first() {
                Some(&x) => excluded.push((i, rule.excludes[x].clone())),
                None => matched.push(i),
            }
        }
        matched.sort_by_key(|&i| std::cmp::Reverse(self.specificity(i)));
        Explanation {
            winner: matched.first().map(|&i| Selection {
                rule: self.patterns[i].rule,
                pattern: i,
            }),
            matched,
            excluded,
        }
    }

    fn more_specific(&self, a: usize, b: usize) -> bool {
        self.specificity(a) > self.specificity(b)
    }

    /// Larger is more specific; earlier rules and patterns win ties.
    fn specificity(&self, i: usize) -> (usize, usize, Reverse<usize>, Reverse<usize>) {
        let p = &self.patterns[i];
        (
            p.literal_prefix,
            p.literal_chars,
            Reverse(p.rule),
            Reverse(i),
        )
    }

    /// The places to walk: every pattern's root, with roots that lie inside
    /// another root merged into it so that no entry is visited twice.
    pub fn walk_roots(&self) -> Vec<WalkRoot> {
        let mut roots: Vec<&Path> = self.patterns.iter().map(|p| p.root.as_path()).collect();
        roots.sort();
        roots.dedup();
        let mut merged: Vec<WalkRoot> = Vec::new();
        for root in roots {
            // Sorted order puts an ancestor before its descendants.
            if merged.iter().any(|m| root.starts_with(&m.path)) {
                continue;
            }
            let cross_filesystems = self
                .patterns
                .iter()
                .any(|p| p.root.starts_with(root) && self.rules[p.rule].cross_filesystems);
            merged.push(WalkRoot {
                path: root.to_path_buf(),
                cross_filesystems,
            });
        }
        merged
    }

    /// The first pattern that needs a walk to descend into directory `dir`,
    /// either because a match may lie below it or because a deeper root does.
    pub fn descend_pattern(&self, dir: &Path) -> Option<usize> {
        self.patterns
            .iter()
            .position(|p| p.may_contain_matches(dir))
    }

    /// Whether `rule` lets its walks leave the walk root's file system.
    pub fn crosses_filesystems(&self, rule: usize) -> bool {
        self.rules[rule].cross_filesystems
    }

    /// A stable digest of what determines selection: the text and the overrides.
    pub fn digest(&self) -> [u8; 32] {
        let mut h = blake3::Hasher::new();
        h.update(b"tripseal-rules-v1\0");
        h.update(&(self.source.text.len() as u64).to_le_bytes());
        h.update(self.source.text.as_bytes());
        for (k, v) in &self.overrides {
            for s in [k, v] {
                h.update(&(s.len() as u64).to_le_bytes());
                h.update(s.as_bytes());
            }
        }
        *h.finalize().as_bytes()
    }
}

impl Pattern {
    fn new(rule: usize, glob: &str) -> Result<Pattern, String> {
        check_absolute(glob)?;
        let meta = glob.find(['*', '?', '[', '{', '\\']);
        let literal_chars = glob.chars().filter(|c| !"*?[]{}\\".contains(*c)).count();
        let (root, rest) = match meta {
            None => (glob, ""),
            Some(at) => {
                let slash = glob[..at].rfind('/').expect("absolute glob has a slash");
                (
                    if slash == 0 { "/" } else { &glob[..slash] },
                    &glob[slash + 1..],
                )
            }
        };
        let components = if rest.contains(['{', '\\']) {
            // Alternations may span slashes and escapes hide them: descend
            // everywhere below the root and let the full glob decide.
            vec![Component_::AnyDepth]
        } else {
            rest.split('/')
                .filter(|c| !c.is_empty())
                .map(|c| {
                    if c == "**" {
                        Ok(Component_::AnyDepth)
                    } else if c.contains(['*', '?', '[']) {
                        compile(c).map(|g| Component_::Wild(g.compile_matcher()))
                    } else {
                        Ok(Component_::Literal(c.as_bytes().to_vec()))
                    }
                })
                .collect::<Result<_, _>>()?
        };
        Ok(Pattern {
            rule,
            glob: glob.to_string(),
            root: PathBuf::from(root),
            components,
            literal_prefix: root.len(),
            literal_chars,
        })
    }

    /// Whether a path matching this pattern could lie strictly below `dir`.
    fn may_contain_matches(&self, dir: &Path) -> bool {
        if self.root.starts_with(dir) && self.root != dir {
            return true;
        }
        let Ok(rel) = dir.strip_prefix(&self.root) else {
            return false;
        };
        // A small NFA over the components: states are positions in the pattern.
        let closure = |states: &mut Vec<usize>| {
            let mut i = 0;
            while i < states.len() {
                let s = states[i];
                if matches!(self.components.get(s), Some(Component_::AnyDepth))
                    && !states.contains(&(s + 1))
                {
                    states.push(s + 1);
                }
                i += 1;
            }
        };
        let mut states = vec![0usize];
        closure(&mut states);
        for comp in rel.components() {
            let name = comp.as_os_str().as_bytes();
            let mut next = Vec::new();
            for &s in &states {
                let advance = match self.components.get(s) {
                    None => None,
                    Some(Component_::AnyDepth) => {
                        if !next.contains(&s) {
                            next.push(s);
                        }
                        None
                    }
                    Some(Component_::Literal(l)) => (l == name).then_some(s + 1),
                    Some(Component_::Wild(g)) => g
                        .is_match(Path::new(OsStr::from_bytes(name)))
                        .then_some(s + 1),
                };
                if let Some(n) = advance
                    && !next.contains(&n)
                {
                    next.push(n);
                }
            }
            closure(&mut next);
            if next.is_empty() {
                return false;
            }
            states = next;
        }
        states.iter().any(|&s| s < self.components.len())
    }
}

fn compile(glob: &str) -> Result<Glob, String> {
    GlobBuilder::new(glob)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map_err(|e| format!("invalid glob \"{glob}\": {}", e.kind()))
}

fn check_absolute(glob: &str) -> Result<(), String> {
    let path = Path::new(glob);
    if !path.is_absolute() {
        return Err(format!(
            "\"{glob}\" is not an absolute path; rules select absolute paths (start it with /)"
        ));
    }
    let normal = path
        .components()
        .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
    if !normal || glob.contains("//") || (glob.len() > 1 && glob.ends_with('/')) {
        return Err(format!(
            "\"{glob}\" is not a normal path: remove \".\", \"..\", doubled or trailing slashes"
        ));
    }
    Ok(())
}

fn parse_attr_list<'a>(names: impl Iterator<Item = &'a str>) -> Result<AttrSet, String> {
    let mut set = AttrSet::EMPTY;
    for name in names {
        let attr = Attr::from_name(name).ok_or_else(|| {
            format!(
                "unknown attribute \"{name}\" (attributes: {})",
                Attr::ALL.map(Attr::name).join(" ")
            )
        })?;
        set.insert(attr);
    }
    if set.is_empty() {
        return Err("the attribute list is empty".to_string());
    }
    Ok(set)
}

fn resolve_check(check: &toml::Value, groups: &BTreeMap<&str, AttrSet>) -> Result<AttrSet, String> {
    match check {
        toml::Value::String(name) => {
            if let Some(set) = groups.get(name.as_str()) {
                Ok(*set)
            } else if let Some(attr) = Attr::from_name(name) {
                Ok([attr].into_iter().collect())
            } else {
                let known: Vec<&str> = groups.keys().copied().collect();
                Err(format!(
                    "\"{name}\" is neither a group nor an attribute (groups: {})",
                    if known.is_empty() {
                        "none defined".to_string()
                    } else {
                        known.join(" ")
                    }
                ))
            }
        }
        toml::Value::Array(items) => {
            let mut names = Vec::with_capacity(items.len());
            for item in items {
                match item.as_str() {
                    Some(s) => names.push(s),
                    None => return Err("check list must hold attribute names (strings)".into()),
                }
            }
            parse_attr_list(names.into_iter())
        }
        _ => Err("check must be a group name or a list of attribute names".to_string()),
    }
}

/// The `role`, expanded (`role = "${role}"` lets `--var role=NAME` choose
/// it); empty means none. A role is a name in headers and reports: printable,
/// on one line.
fn resolve_role(
    raw: Option<&Spanned<String>>,
    vars: &BTreeMap<String, String>,
    at: &Locator<'_>,
) -> Result<Option<String>, RulesError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let located = |m| at.err(Some(raw.span()), m);
    let role = expand(raw.get_ref(), vars).map_err(located)?;
    let role = role.trim();
    if role.chars().any(char::is_control) || role.len() > 128 {
        return Err(located(
            "role must be a printable name of at most 128 bytes, on one line".to_string(),
        ));
    }
    Ok((!role.is_empty()).then(|| role.to_string()))
}

/// Expands `${name}` references; `$$` is a literal `$`.
fn expand(text: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        if let Some(r) = rest.strip_prefix("$$") {
            out.push('$');
            rest = r;
        } else if let Some(r) = rest.strip_prefix("${") {
            let end = r
                .find('}')
                .ok_or_else(|| format!("unterminated \"${{\" in \"{text}\""))?;
            let name = &r[..end];
            let value = vars.get(name).ok_or_else(|| {
                format!(
                    "undefined variable \"{name}\": define it under [vars] or pass --var {name}=VALUE"
                )
            })?;
            out.push_str(value);
            rest = &r[end + 1..];
        } else {
            out.push('$');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The `[vars]`, with `overrides` set; values must be literal.
fn resolve_vars(
    raw: &BTreeMap<String, Spanned<String>>,
    overrides: &BTreeMap<String, String>,
    at: &Locator<'_>,
) -> Result<BTreeMap<String, String>, RulesError> {
    if let Some((k, v)) = raw.iter().find(|(_, v)| v.get_ref().contains("${")) {
        return Err(at.err(
            Some(v.span()),
            format!("variable \"{k}\" refers to another variable; values must be literal"),
        ));
    }
    let mut vars: BTreeMap<String, String> = raw
        .iter()
        .map(|(k, v)| (k.clone(), v.get_ref().clone()))
        .collect();
    vars.extend(overrides.iter().map(|(k, v)| (k.clone(), v.clone())));
    Ok(vars)
}

/// The `[groups]` of attributes, by name.
fn resolve_groups<'a>(
    raw: &'a BTreeMap<String, Spanned<Vec<String>>>,
    at: &Locator<'_>,
) -> Result<BTreeMap<&'a str, AttrSet>, RulesError> {
    let mut groups = BTreeMap::new();
    for (name, members) in raw {
        if Attr::from_name(name).is_some() {
            return Err(at.err(
                Some(members.span()),
                format!("group \"{name}\" has the name of an attribute; choose another name"),
            ));
        }
        let set = parse_attr_list(members.get_ref().iter().map(String::as_str))
            .map_err(|m| at.err(Some(members.span()), format!("group \"{name}\": {m}")))?;
        groups.insert(name.as_str(), set);
    }
    Ok(groups)
}

/// Rule number `index`, its patterns added to `patterns`.
fn build_rule(
    index: usize,
    r: &RawRule,
    vars: &BTreeMap<String, String>,
    groups: &BTreeMap<&str, AttrSet>,
    at: &Locator<'_>,
    patterns: &mut PatternsBuilder,
) -> Result<Rule, RulesError> {
    let name = r.name.get_ref().trim();
    let attrs =
        resolve_check(r.check.get_ref(), groups).map_err(|m| at.err(Some(r.check.span()), m))?;
    if r.paths.get_ref().is_empty() {
        return Err(at.err(
            Some(r.paths.span()),
            format!("rule \"{name}\" has no paths"),
        ));
    }
    let mut paths = Vec::new();
    for p in r.paths.get_ref() {
        let located = |m| at.err(Some(p.span()), m);
        let expanded = expand(p.get_ref(), vars).map_err(located)?;
        let pattern = Pattern::new(index, &expanded).map_err(located)?;
        patterns.globs.add(compile(&expanded).map_err(located)?);
        patterns.patterns.push(pattern);
        paths.push(expanded);
    }
    let mut excludes = Vec::new();
    let mut exclude_builder = GlobSetBuilder::new();
    for x in &r.exclude {
        let located = |m| at.err(Some(x.span()), m);
        let expanded = expand(x.get_ref(), vars).map_err(located)?;
        check_absolute(&expanded).map_err(located)?;
        exclude_builder.add(compile(&expanded).map_err(located)?);
        excludes.push(expanded);
    }
    Ok(Rule {
        name: name.to_string(),
        attrs,
        host_only: AttrSet::EMPTY,
        severity: r.severity,
        cross_filesystems: r.cross_filesystems,
        audit: r.audit,
        paths,
        excludes,
        exclude_set: exclude_builder
            .build()
            .map_err(|e| at.err(None, e.to_string()))?,
    })
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// Parses a `NAME=VALUE` override as given to `--var`.
pub fn parse_var(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("--var wants NAME=VALUE, got \"{text}\""))?;
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!(
            "--var name \"{name}\" must be letters, digits and underscores"
        ));
    }
    Ok((name.to_string(), value.to_string()))
}

impl fmt::Display for WalkRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Rules, RulesError> {
        Rules::load(
            RulesSource {
                name: "t.toml".into(),
                text: text.into(),
            },
            &BTreeMap::new(),
        )
    }

    const SAMPLE: &str = r#"
[vars]
app_dir = "/srv/app"

[groups]
full = ["type", "mode", "uid", "gid", "size", "mtime", "ctime", "inode", "nlink", "link", "hash", "xattrs"]

[[rule]]
name = "app"
paths = ["${app_dir}/**"]
check = "full"
severity = "medium"

[[rule]]
name = "task-modules"
paths = ["${app_dir}/**/*.py", "${app_dir}/**/*.pth"]
exclude = ["${app_dir}/tests/**"]
check = "full"
severity = "high"

[[rule]]
name = "worker-logs"
paths = ["/var/log/celery/*.log"]
check = ["type", "mode", "uid", "gid", "growing"]
severity = "medium"
"#;

    fn rule_of(rules: &Rules, path: &str) -> Option<String> {
        rules
            .select(Path::new(path))
            .map(|s| rules.rules[s.rule].name.clone())
    }

    #[test]
    fn most_specific_pattern_wins() {
        let rules = load(SAMPLE).unwrap();
        assert_eq!(
            rule_of(&rules, "/srv/app/tasks.py").as_deref(),
            Some("task-modules")
        );
        assert_eq!(
            rule_of(&rules, "/srv/app/a/b/c.py").as_deref(),
            Some("task-modules")
        );
        assert_eq!(rule_of(&rules, "/srv/app/README").as_deref(), Some("app"));
        // Excluded from task-modules, so the broader rule governs it.
        assert_eq!(
            rule_of(&rules, "/srv/app/tests/t.py").as_deref(),
            Some("app")
        );
        assert_eq!(
            rule_of(&rules, "/var/log/celery/w1.log").as_deref(),
            Some("worker-logs")
        );
        // `*` does not cross a slash.
        assert_eq!(rule_of(&rules, "/var/log/celery/old/w1.log"), None);
        assert_eq!(rule_of(&rules, "/etc/passwd"), None);
    }

    #[test]
    fn explain_lists_matches_and_exclusions() {
        let rules = load(SAMPLE).unwrap();
        let e = rules.explain(Path::new("/srv/app/tests/t.py"));
        assert_eq!(rules.rules[e.winner.unwrap().rule].name, "app");
        assert_eq!(e.excluded.len(), 1);
        assert_eq!(e.excluded[0].1, "/srv/app/tests/**");
        let e = rules.explain(Path::new("/srv/app/x.py"));
        assert_eq!(e.matched.len(), 2);
        assert_eq!(rules.patterns[e.matched[0]].glob, "/srv/app/**/*.py");
    }

    #[test]
    fn ties_go_to_the_rule_written_first() {
        let rules = load(
            r#"
[[rule]]
name = "first"
paths = ["/a/*"]
check = ["hash"]
[[rule]]
name = "second"
paths = ["/a/?"]
check = ["mode"]
"#,
        )
        .unwrap();
        // "/a/*" and "/a/?" have the same literal prefix and literal characters.
        assert_eq!(rule_of(&rules, "/a/x").as_deref(), Some("first"));
    }

    #[test]
    fn walk_roots_are_literal_prefixes_merged() {
        let rules = load(SAMPLE).unwrap();
        let roots: Vec<String> = rules
            .walk_roots()
            .iter()
            .map(|r| r.path.display().to_string())
            .collect();
        assert_eq!(roots, ["/srv/app", "/var/log/celery"]);
    }

    #[test]
    fn descent_is_pruned_where_nothing_can_match() {
        let rules = load(
            r#"
[[rule]]
name = "certs"
paths = ["/etc/ssl/private/*.key", "/home/*/.ssh/authorized_keys", "/opt/app/**/*.py"]
check = ["hash"]
"#,
        )
        .unwrap();
        let may = |d: &str| rules.descend_pattern(Path::new(d)).is_some();
        assert!(may("/etc"));
        assert!(may("/etc/ssl"));
        assert!(may("/etc/ssl/private"));
        assert!(!may("/etc/ssl/private/sub"));
        assert!(!may("/etc/ssl/certs"));
        assert!(may("/home"));
        assert!(may("/home/alice"));
        assert!(may("/home/alice/.ssh"));
        assert!(!may("/home/alice/docs"));
        assert!(!may("/home/alice/.ssh/deeper"));
        assert!(may("/opt/app/a/b/c"));
        assert!(!may("/opt/other"));
    }

    #[test]
    fn errors_point_at_line_and_column() {
        let e = load("[[rule]]\nname = \"x\"\npaths = [\"/a\"]\ncheck = [\"hash\", \"sha1\"]\n")
            .unwrap_err();
        assert_eq!((e.line, e.column), (4, 9));
        assert!(e.message.contains("unknown attribute \"sha1\""), "{e}");

        let e = load("[[rule]]\nname = \"x\"\npaths = [\"/a\"]\ncheck = [\"hash\"]\ncolour = 1\n")
            .unwrap_err();
        assert_eq!(e.line, 5);
        assert!(e.message.contains("unknown field `colour`"), "{e}");

        let e = load("[[rule]]\nname = \"x\"\npaths = [\"${nope}/a\"]\ncheck = \"hash\"\n")
            .unwrap_err();
        assert_eq!((e.line, e.column), (3, 10));
        assert!(e.message.contains("undefined variable \"nope\""), "{e}");

        let e =
            load("[[rule]]\nname = \"x\"\npaths = [\"etc/a\"]\ncheck = \"hash\"\n").unwrap_err();
        assert!(e.message.contains("not an absolute path"), "{e}");

        let e = load("[[rule]]\nname = \"x\"\npaths = [\"/a\"]\ncheck = \"full\"\n").unwrap_err();
        assert!(
            e.message.contains("neither a group nor an attribute"),
            "{e}"
        );

        let e = load("[[rule]]\nname = \"x\"\npaths = [\"/a/[\"]\ncheck = \"hash\"\n").unwrap_err();
        assert!(e.message.contains("invalid glob"), "{e}");

        let e = load(
            "[[rule]]\nname = \"x\"\npaths = [\"/a\"]\ncheck = \"hash\"\nseverity = \"dire\"\n",
        )
        .unwrap_err();
        assert_eq!(e.line, 5);

        let e = load("[[rule]\n").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.to_string().starts_with("t.toml:1:"), "{e}");

        let e = load(
            "[[rule]]\nname = \"x\"\npaths = [\"/a\"]\ncheck = \"hash\"\n[[rule]]\nname = \"x\"\npaths = [\"/b\"]\ncheck = \"hash\"\n",
        )
        .unwrap_err();
        assert_eq!(e.line, 6);
        assert!(e.message.contains("already defined"), "{e}");
    }

    #[test]
    fn overrides_replace_variables_and_change_the_digest() {
        let base = load(SAMPLE).unwrap();
        let mut o = BTreeMap::new();
        o.insert("app_dir".to_string(), "/opt/w".to_string());
        let over = Rules::load(
            RulesSource {
                name: "t.toml".into(),
                text: SAMPLE.into(),
            },
            &o,
        )
        .unwrap();
        assert_eq!(
            rule_of(&over, "/opt/w/x.py").as_deref(),
            Some("task-modules")
        );
        assert_eq!(rule_of(&over, "/srv/app/x.py"), None);
        assert_ne!(base.digest(), over.digest());
    }

    #[test]
    fn expand_handles_dollars() {
        let mut vars = BTreeMap::new();
        vars.insert("a".to_string(), "X".to_string());
        assert_eq!(expand("/p/${a}/$$/$b", &vars).unwrap(), "/p/X/$/$b");
        assert!(expand("/p/${a", &vars).is_err());
    }

    #[test]
    fn parse_var_validates() {
        assert_eq!(
            parse_var("app_dir=/x=y").unwrap(),
            ("app_dir".into(), "/x=y".into())
        );
        assert!(parse_var("novalue").is_err());
        assert!(parse_var("bad name=1").is_err());
    }

    #[test]
    fn shipped_rules_load() {
        let rules = Rules::load(RulesSource::embedded(), &BTreeMap::new()).unwrap();
        assert!(rules.rules.len() > 5);
        assert_eq!(
            rule_of(&rules, "/etc/ld.so.preload").as_deref(),
            Some("loader")
        );
    }
}
