//! `tripseal audit celery`: the Celery configuration checked against
//! Celery's own security guide, read as text and never imported or run.
//!
//! What is read: Python assignments of literal values at the top level of
//! a module (`task_serializer = 'json'`, `CELERY_ACCEPT_CONTENT = [...]`,
//! `app.conf.broker_url = ...`, `app.conf.update(key=value, ...)`),
//! environment files (`CELERY_BROKER_URL=...`), and the worker's systemd
//! units. A value computed at run time (a call, an f-string, a name other
//! than `ssl.CERT_*`) is not known, and a setting given that way is not
//! judged: the report says how many it could not read.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde_json::{Value as Json, json};

use crate::escape::{escape_bytes, escape_path};

/// A file of settings is read up to this size.
const MAX_CONFIG_BYTES: u64 = crate::files::MAX_SMALL_FILE_BYTES;

/// A Python value as far as it can be known without running anything.
#[derive(Clone, Debug, PartialEq)]
pub enum Lit {
    Str(String),
    Num(String),
    Bool(bool),
    None,
    /// A dotted name (`ssl.CERT_NONE`).
    Name(String),
    List(Vec<Lit>),
    Dict(Vec<(Lit, Lit)>),
    /// `f(...)`: a callee, positional and keyword arguments.
    Call(String, Vec<Lit>, Vec<(String, Lit)>),
    /// Anything else: known only at run time.
    Unknown,
}

impl Lit {
    fn strings(&self) -> Vec<&str> {
        match self {
            Lit::Str(s) => vec![s.as_str()],
            Lit::List(items) => items
                .iter()
                .filter_map(|i| match i {
                    Lit::Str(s) => Some(s.as_str()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The entries of a dict literal or a `dict(...)` call.
    fn entries(&self) -> Vec<(String, &Lit)> {
        match self {
            Lit::Dict(kv) => kv
                .iter()
                .filter_map(|(k, v)| match k {
                    Lit::Str(k) => Some((k.clone(), v)),
                    _ => None,
                })
                .collect(),
            Lit::Call(f, _, kw) if f == "dict" => kw.iter().map(|(k, v)| (k.clone(), v)).collect(),
            _ => Vec::new(),
        }
    }
}

/// One setting as a file gives it.
#[derive(Clone, Debug)]
pub struct Setting {
    /// Celery's lowercase name (`CELERY_TASK_SERIALIZER` →
    /// `task_serializer`, `BROKER_URL` → `broker_url`).
    pub name: String,
    pub value: Lit,
    pub file: PathBuf,
    pub line: usize,
}

/// Celery's lowercase name for a setting as written: the Django namespace
/// (`CELERY_`) and the old upper-case names map to the new ones.
fn celery_name(written: &str) -> Option<String> {
    let lower = written.to_ascii_lowercase();
    let name = lower.strip_prefix("celery_").unwrap_or(&lower);
    let known = [
        "accept_content",
        "result_accept_content",
        "task_serializer",
        "result_serializer",
        "event_serializer",
        "broker_url",
        "broker_use_ssl",
        "result_backend",
        "redis_backend_use_ssl",
        "security_key",
        "security_certificate",
        "security_cert_store",
        "security_key_password",
    ];
    known.contains(&name).then(|| name.to_string())
}

// --- A tokenizer for the little of Python that settings are ----------------

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Name(String),
    Str(Option<String>),
    Num(String),
    Op(char),
    Newline,
}

/// The tokens of `src` with their line numbers. Comments are dropped, and
/// newlines inside brackets or after a backslash are not tokens (Python's
/// implicit and explicit line joining). `Str(None)`: an f-string or a
/// string with a prefix whose value is computed.
fn tokens(src: &str) -> Vec<(Tok, usize, bool)> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let (mut i, mut line, mut depth) = (0, 1, 0i32);
    let mut line_start = 0;
    // A statement after `;` on a top-level line is top-level too.
    let mut after_semicolon = false;
    while i < b.len() {
        let c = b[i];
        // A statement at the module's top level begins in column 0.
        let col0 = (i == line_start || after_semicolon) && depth == 0;
        if !matches!(c, b' ' | b'\t' | b'\r' | b'\x0c') {
            after_semicolon = false;
        }
        match c {
            b'\n' => {
                if depth == 0 && !matches!(out.last(), Some((Tok::Newline, _, _)) | None) {
                    out.push((Tok::Newline, line, false));
                }
                line += 1;
                i += 1;
                line_start = i;
            }
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'\\' if b.get(i + 1) == Some(&b'\n') => {
                line += 1;
                i += 2;
            }
            b' ' | b'\t' | b'\r' | b'\x0c' => i += 1,
            b'\'' | b'"' => {
                let (s, next, lines) = string(b, i);
                out.push((Tok::Str(s), line, col0));
                line += lines;
                i = next;
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] >= 0x80)
                {
                    i += 1;
                }
                let word = &src[start..i];
                // A string prefix: r'' and u'' are known, f'' and b'' not.
                if i < b.len() && (b[i] == b'\'' || b[i] == b'"') && word.len() <= 2 {
                    let w = word.to_ascii_lowercase();
                    if ["r", "u", "f", "b", "rb", "br", "fr", "rf"].contains(&w.as_str()) {
                        let (s, next, lines) = string(b, i);
                        let known = !w.contains('f') && !w.contains('b');
                        out.push((Tok::Str(s.filter(|_| known)), line, col0));
                        line += lines;
                        i = next;
                        continue;
                    }
                }
                out.push((Tok::Name(word.to_string()), line, col0));
            }
            c if c.is_ascii_digit() => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.' || b[i] == b'_')
                {
                    i += 1;
                }
                out.push((Tok::Num(src[start..i].to_string()), line, col0));
            }
            b';' if depth == 0 => {
                let top = out
                    .iter()
                    .rev()
                    .take_while(|(t, _, _)| *t != Tok::Newline)
                    .last()
                    .is_some_and(|(_, _, c)| *c);
                out.push((Tok::Newline, line, false));
                after_semicolon = top;
                i += 1;
            }
            _ => {
                let ch = src[i..].chars().next().unwrap_or('?');
                match ch {
                    '(' | '[' | '{' => depth += 1,
                    ')' | ']' | '}' => depth = (depth - 1).max(0),
                    _ => {}
                }
                out.push((Tok::Op(ch), line, col0));
                i += ch.len_utf8();
            }
        }
    }
    out.push((Tok::Newline, line, false));
    out
}

/// A string literal at `b[i]` (its quote): its value (escapes undone for
/// the common ones; `None` when one is not understood), where it ends, and
/// how many newlines it spans.
fn string(b: &[u8], i: usize) -> (Option<String>, usize, usize) {
    let q = b[i];
    let triple = b.len() >= i + 3 && b[i + 1] == q && b[i + 2] == q;
    let mut j = if triple { i + 3 } else { i + 1 };
    let mut out = Vec::new();
    let mut ok = true;
    let mut lines = 0;
    while j < b.len() {
        let c = b[j];
        if c == b'\n' {
            lines += 1;
            if !triple {
                return (None, j, lines - 1);
            }
        }
        if c == b'\\' && j + 1 < b.len() {
            match b[j + 1] {
                b'\\' | b'\'' | b'"' => out.push(b[j + 1]),
                b'n' => out.push(b'\n'),
                b't' => out.push(b'\t'),
                b'\n' => lines += 1,
                _ => ok = false,
            }
            j += 2;
            continue;
        }
        if c == q && (!triple || (j + 2 < b.len() && b[j + 1] == q && b[j + 2] == q)) {
            let end = if triple { j + 3 } else { j + 1 };
            let s = String::from_utf8(out).ok().filter(|_| ok);
            return (s, end, lines);
        }
        out.push(c);
        j += 1;
    }
    (None, j, lines)
}

// --- Statements and expressions -------------------------------------------

struct Parser {
    toks: Vec<(Tok, usize, bool)>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.at.min(self.toks.len() - 1)].0
    }

    fn line(&self) -> usize {
        self.toks[self.at.min(self.toks.len() - 1)].1
    }

    fn col0(&self) -> bool {
        self.toks[self.at.min(self.toks.len() - 1)].2
    }

    fn next(&mut self) -> Tok {
        let t = self.peek().clone();
        self.at += 1;
        t
    }

    fn eat(&mut self, op: char) -> bool {
        if self.peek() == &Tok::Op(op) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn done(&self) -> bool {
        self.at >= self.toks.len()
    }

    /// Skips to the start of the next logical line.
    fn skip_line(&mut self) {
        while !self.done() && self.next() != Tok::Newline {}
    }

    /// A dotted name, if one is next.
    fn dotted(&mut self) -> Option<String> {
        let Tok::Name(first) = self.peek().clone() else {
            return None;
        };
        self.at += 1;
        let mut name = first;
        while self.peek() == &Tok::Op('.') {
            if let Some((Tok::Name(n), _, _)) = self.toks.get(self.at + 1) {
                name.push('.');
                name.push_str(n);
                self.at += 2;
            } else {
                break;
            }
        }
        Some(name)
    }

    /// An expression: a literal, a name, a call; anything beyond (an
    /// operator, a comprehension) makes it `Unknown`, and the rest of it is
    /// skipped to where the enclosing construct goes on.
    fn expr(&mut self) -> Lit {
        let first = self.atom();
        // Operators between atoms: computed at run time.
        let mut lit = first;
        while let Tok::Op(c) = self.peek() {
            if matches!(c, ',' | ')' | ']' | '}' | ':' | '=') {
                break;
            }
            self.at += 1;
            let _ = self.atom();
            lit = Lit::Unknown;
        }
        if let Tok::Name(n) = self.peek()
            && matches!(n.as_str(), "if" | "for" | "and" | "or" | "not" | "in")
        {
            // A conditional or a comprehension: skip to the closing bracket.
            let mut depth = 0;
            while !self.done() {
                match self.peek() {
                    Tok::Op('(' | '[' | '{') => depth += 1,
                    Tok::Op(')' | ']' | '}') if depth == 0 => break,
                    Tok::Op(')' | ']' | '}') => depth -= 1,
                    Tok::Op(',') if depth == 0 => break,
                    Tok::Newline if depth == 0 => break,
                    _ => {}
                }
                self.at += 1;
            }
            lit = Lit::Unknown;
        }
        lit
    }

    fn atom(&mut self) -> Lit {
        match self.next() {
            Tok::Str(s) => {
                let mut value = s;
                // Adjacent literals concatenate.
                while let Tok::Str(more) = self.peek().clone() {
                    self.at += 1;
                    value = match (value, more) {
                        (Some(a), Some(b)) => Some(a + &b),
                        _ => None,
                    };
                }
                value.map_or(Lit::Unknown, Lit::Str)
            }
            Tok::Num(n) => Lit::Num(n),
            Tok::Name(_) => {
                self.at -= 1;
                let name = self.dotted().expect("a name is next");
                match name.as_str() {
                    "True" => return Lit::Bool(true),
                    "False" => return Lit::Bool(false),
                    "None" => return Lit::None,
                    _ => {}
                }
                if self.eat('(') {
                    let (args, kwargs) = self.arguments();
                    Lit::Call(name, args, kwargs)
                } else {
                    Lit::Name(name)
                }
            }
            Tok::Op('[') => Lit::List(self.items(']')),
            Tok::Op('(') => {
                let items = self.items(')');
                if items.len() == 1 {
                    items.into_iter().next().expect("one")
                } else {
                    Lit::List(items)
                }
            }
            Tok::Op('{') => self.braces(),
            Tok::Op('-') => match self.atom() {
                Lit::Num(n) => Lit::Num(format!("-{n}")),
                _ => Lit::Unknown,
            },
            _ => Lit::Unknown,
        }
    }

    fn items(&mut self, close: char) -> Vec<Lit> {
        let mut out = Vec::new();
        while !self.done() && !self.eat(close) {
            out.push(self.expr());
            if !self.eat(',') && !self.eat(close) {
                // Not a literal list: skip to its end.
                self.skip_to(close);
                return vec![Lit::Unknown];
            } else if self.toks[self.at - 1].0 == Tok::Op(close) {
                break;
            }
        }
        out
    }

    fn skip_to(&mut self, close: char) {
        let mut depth = 0;
        while !self.done() {
            match self.next() {
                Tok::Op('(' | '[' | '{') => depth += 1,
                Tok::Op(c) if c == close && depth == 0 => return,
                Tok::Op(')' | ']' | '}') => depth -= 1,
                _ => {}
            }
        }
    }

    /// A dict or a set.
    fn braces(&mut self) -> Lit {
        let mut kv = Vec::new();
        let mut set = Vec::new();
        while !self.done() && !self.eat('}') {
            let k = self.expr();
            if self.eat(':') {
                kv.push((k, self.expr()));
            } else {
                set.push(k);
            }
            if !self.eat(',') {
                if !self.eat('}') {
                    self.skip_to('}');
                    return Lit::Unknown;
                }
                break;
            }
        }
        if set.is_empty() {
            Lit::Dict(kv)
        } else {
            Lit::List(set)
        }
    }

    fn arguments(&mut self) -> (Vec<Lit>, Vec<(String, Lit)>) {
        let (mut args, mut kwargs) = (Vec::new(), Vec::new());
        while !self.done() && !self.eat(')') {
            if let (Tok::Name(n), Some((Tok::Op('='), _, _))) =
                (self.peek().clone(), self.toks.get(self.at + 1))
            {
                self.at += 2;
                kwargs.push((n, self.expr()));
            } else if self.eat('*') {
                let _ = self.eat('*');
                let _ = self.expr();
                args.push(Lit::Unknown);
            } else {
                args.push(self.expr());
            }
            if !self.eat(',') {
                if !self.eat(')') {
                    self.skip_to(')');
                }
                break;
            }
        }
        (args, kwargs)
    }
}

/// The settings a Python module assigns at its top level, and how many
/// setting names it assigns a value that cannot be known without running
/// it.
pub fn python_settings(src: &str, file: &Path) -> (Vec<Setting>, usize) {
    let src = src.strip_prefix('\u{feff}').unwrap_or(src);
    let mut p = Parser {
        toks: tokens(src),
        at: 0,
    };
    let mut out = Vec::new();
    let mut unknown = 0;
    while !p.done() {
        let line = p.line();
        if !p.col0() {
            p.skip_line();
            continue;
        }
        let Some(target) = p.dotted() else {
            p.skip_line();
            continue;
        };
        let last = target.rsplit('.').next().unwrap_or(&target).to_string();
        if p.eat(':') {
            // An annotation: skipped to its `=`, if any.
            while !p.done() && !matches!(p.peek(), Tok::Op('=') | Tok::Newline) {
                p.at += 1;
            }
        }
        if let Tok::Op(op) = p.peek().clone()
            && op != '='
            && matches!(p.toks.get(p.at + 1), Some((Tok::Op('='), _, _)))
        {
            // `+=` and the like: computed from a value given elsewhere.
            if celery_name(&last).is_some() {
                unknown += 1;
            }
        } else if p.eat('=') {
            let value = p.expr();
            // `Celery('proj', broker=..., backend=...)`: settings too.
            if let Lit::Call(f, _, kw) = &value
                && (f == "Celery" || f.ends_with(".Celery"))
            {
                for (k, v) in kw {
                    let name = match k.as_str() {
                        "broker" => "broker_url",
                        "backend" => "result_backend",
                        _ => continue,
                    };
                    match v {
                        Lit::Unknown => unknown += 1,
                        v => out.push(Setting {
                            name: name.into(),
                            value: v.clone(),
                            file: file.to_path_buf(),
                            line,
                        }),
                    }
                }
            }
            // Only module-level names and app.conf.X; an attribute of
            // anything else is not a setting.
            let is_conf = !target.contains('.') || target.ends_with(&format!("conf.{last}"));
            if let (true, Some(name)) = (is_conf, celery_name(&last)) {
                if value == Lit::Unknown {
                    unknown += 1;
                } else {
                    out.push(Setting {
                        name,
                        value,
                        file: file.to_path_buf(),
                        line,
                    });
                }
            }
        } else if p.eat('(') && (target.ends_with("conf.update") || target == "update") {
            let (args, kwargs) = p.arguments();
            let mut given: Vec<(String, Lit)> = kwargs;
            for a in args {
                given.extend(a.entries().into_iter().map(|(k, v)| (k, v.clone())));
            }
            for (k, v) in given {
                if let Some(name) = celery_name(&k) {
                    if v == Lit::Unknown {
                        unknown += 1;
                    } else {
                        out.push(Setting {
                            name,
                            value: v,
                            file: file.to_path_buf(),
                            line,
                        });
                    }
                }
            }
        }
        p.skip_line();
    }
    (out, unknown)
}

/// The settings of an environment file (`NAME=value`, `export NAME=value`,
/// quotes removed).
pub fn env_settings(src: &str, file: &Path) -> Vec<Setting> {
    let mut out = Vec::new();
    for (i, raw) in src.lines().enumerate() {
        let l = raw.trim();
        let l = l.strip_prefix("export ").unwrap_or(l);
        let Some((k, v)) = l.split_once('=') else {
            continue;
        };
        if k.starts_with('#') {
            continue;
        }
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(v);
        if let Some(name) = celery_name(k.trim()) {
            out.push(Setting {
                name,
                value: Lit::Str(v.to_string()),
                file: file.to_path_buf(),
                line: i + 1,
            });
        }
    }
    out
}

// --- The checks -------------------------------------------------------------

/// One finding: where, which check, what, and the remedy in the words of
/// Celery's security guide.
#[derive(Clone, Debug)]
pub struct Finding {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub check: &'static str,
    pub detail: String,
    pub remedy: &'static str,
}

const INSECURE_SERIALIZERS: [&str; 6] = [
    "pickle",
    "yaml",
    "msgpack",
    "application/x-python-serialize",
    "application/x-yaml",
    "application/x-msgpack",
];

/// The findings on a set of settings (those of every file read together:
/// an app's configuration is often spread over several).
pub fn judge(settings: &[Setting]) -> Vec<Finding> {
    let mut out = Vec::new();
    let last: BTreeMap<&str, &Setting> = settings.iter().map(|s| (s.name.as_str(), s)).collect();
    let at = |s: &Setting| (s.file.clone(), Some(s.line));
    for s in settings {
        let serializer_setting = matches!(
            s.name.as_str(),
            "accept_content"
                | "result_accept_content"
                | "task_serializer"
                | "result_serializer"
                | "event_serializer"
        );
        if serializer_setting {
            let bad: Vec<&str> = s
                .value
                .strings()
                .into_iter()
                .filter(|v| INSECURE_SERIALIZERS.contains(&v.to_ascii_lowercase().as_str()))
                .collect();
            if !bad.is_empty() {
                let (file, line) = at(s);
                out.push(Finding {
                    file,
                    line,
                    check: "insecure-serializer",
                    detail: format!("{} allows {}", s.name, bad.join(", ")),
                    remedy: "accept JSON only (accept_content = ['json'], task_serializer = \
                             'json'): a message that deserializes with pickle runs code on the \
                             worker; sign messages with the auth serializer if another format \
                             is needed",
                });
            }
        }
        if s.name == "broker_url" || s.name == "result_backend" {
            for url in s.value.strings() {
                url_findings(s, url, &last, &mut out);
            }
        }
        if s.name == "broker_use_ssl" || s.name == "redis_backend_use_ssl" {
            for (k, v) in s.value.entries() {
                if k == "cert_reqs" && cert_none(v) {
                    let (file, line) = at(s);
                    out.push(Finding {
                        file,
                        line,
                        check: "tls-unverified",
                        detail: format!("{} sets cert_reqs to CERT_NONE", s.name),
                        remedy: "verify the broker's certificate: cert_reqs = ssl.CERT_REQUIRED \
                                 with ca_certs naming the CA that signs it",
                    });
                }
            }
        }
    }
    let security = [
        "security_key",
        "security_certificate",
        "security_cert_store",
    ]
    .iter()
    .find_map(|k| last.get(k).copied());
    if let Some(s) = security {
        let task = last.get("task_serializer").map(|t| t.value.strings());
        let accept = last.get("accept_content").map(|a| a.value.strings());
        let signed =
            task.as_deref() == Some(&["auth"][..]) && accept.as_deref() == Some(&["auth"][..]);
        if !signed {
            let (file, line) = at(s);
            out.push(Finding {
                file,
                line,
                check: "auth-incomplete",
                detail: format!(
                    "{} is set, but task_serializer is not 'auth' or accept_content is not \
                     ['auth']: messages are neither signed nor checked",
                    s.name
                ),
                remedy: "set task_serializer = 'auth', accept_content = ['auth'] (and \
                         event_serializer, result_accept_content alike), and call \
                         app.setup_security()",
            });
        }
    }
    out
}

fn cert_none(v: &Lit) -> bool {
    match v {
        Lit::Name(n) => n.ends_with("CERT_NONE"),
        Lit::Str(s) => s.eq_ignore_ascii_case("CERT_NONE") || s.eq_ignore_ascii_case("none"),
        Lit::Num(n) => n == "0",
        _ => false,
    }
}

fn url_findings(s: &Setting, url: &str, last: &BTreeMap<&str, &Setting>, out: &mut Vec<Finding>) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return;
    };
    let scheme = scheme.to_ascii_lowercase();
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    let local = matches!(host, "" | "localhost" | "127.0.0.1" | "::1") || host.starts_with("127.");
    let tls_scheme = matches!(scheme.as_str(), "amqps" | "rediss" | "sqs" | "https");
    let plain = matches!(
        scheme.as_str(),
        "amqp" | "pyamqp" | "librabbitmq" | "redis" | "redis+socket" | "sentinel" | "mongodb"
    );
    let query = url.split_once('?').map_or("", |(_, q)| q);
    let ssl_setting = if s.name == "broker_url" {
        "broker_use_ssl"
    } else {
        "redis_backend_use_ssl"
    };
    let ssl_set = last
        .get(ssl_setting)
        .is_some_and(|v| !matches!(v.value, Lit::Bool(false) | Lit::None));
    // kombu turns TLS on for amqp:// with ssl=true; ssl_* options alone
    // do nothing on a plain scheme.
    let ssl_in_url = query
        .split('&')
        .any(|kv| matches!(kv, "ssl=true" | "ssl=1" | "ssl=True"));
    if plain && !local && !ssl_set && !ssl_in_url && !tls_scheme {
        out.push(Finding {
            file: s.file.clone(),
            line: Some(s.line),
            check: "plaintext-broker",
            detail: format!(
                "{} connects to {} without TLS ({scheme}://)",
                s.name,
                escape_bytes(host.as_bytes())
            ),
            remedy: "protect the connection: amqps:// or rediss://, or broker_use_ssl with the \
                     CA, as Celery's security guide says for brokers beyond this host",
        });
    }
    for kv in query.split('&') {
        let Some((k, v)) = kv.split_once('=') else {
            continue;
        };
        if k == "ssl_cert_reqs"
            && (v.eq_ignore_ascii_case("none") || v.eq_ignore_ascii_case("CERT_NONE"))
        {
            out.push(Finding {
                file: s.file.clone(),
                line: Some(s.line),
                check: "tls-unverified",
                detail: format!("{} sets ssl_cert_reqs={v}", s.name),
                remedy: "verify the broker's certificate: ssl_cert_reqs=required with \
                         ssl_ca_certs naming the CA that signs it",
            });
        }
    }
}

/// Whether `text` holds a URL with a password (`scheme://user:PASS@`).
fn holds_password(text: &str) -> bool {
    text.split("://").skip(1).any(|rest| {
        let authority = rest
            .split(['/', '?', '\'', '"', ' ', '\n'])
            .next()
            .unwrap_or("");
        authority.rsplit_once('@').is_some_and(|(userinfo, _)| {
            userinfo.split_once(':').is_some_and(|(_, p)| !p.is_empty())
        })
    }) || text.lines().any(|l| {
        let l = l.trim_start();
        (l.starts_with("broker_password")
            || l.to_ascii_lowercase().starts_with("celery_broker_password"))
            && l.contains('=')
    })
}

/// The `User=` of a unit that runs a Celery worker.
fn worker_user(text: &str) -> Option<String> {
    let worker = text.lines().any(|l| {
        l.trim().strip_prefix("ExecStart=").is_some_and(|v| {
            v.contains("celery") && v.split_whitespace().any(|w| w == "worker" || w == "multi")
        })
    });
    worker.then(|| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix("User=").map(|u| u.trim().to_string()))
    })?
}

/// The worker's unit: a `celery ... worker` that runs as root.
fn unit_findings(text: &str, file: &Path) -> Vec<Finding> {
    let mut exec = None;
    let mut user: Option<&str> = None;
    let mut dynamic = false;
    for (i, l) in text.lines().enumerate() {
        let l = l.trim();
        if let Some(v) = l.strip_prefix("ExecStart=")
            && v.contains("celery")
            && v.split_whitespace().any(|w| w == "worker" || w == "multi")
        {
            exec = Some(i + 1);
        }
        if let Some(v) = l.strip_prefix("User=") {
            user = Some(v.trim());
        }
        if l == "DynamicUser=yes" || l == "DynamicUser=true" {
            dynamic = true;
        }
    }
    let Some(line) = exec else {
        return Vec::new();
    };
    let root = match user {
        _ if dynamic => false,
        None => true,
        Some(u) => u == "root" || u == "0",
    };
    if !root {
        return Vec::new();
    }
    vec![Finding {
        file: file.to_path_buf(),
        line: Some(line),
        check: "worker-as-root",
        detail: match user {
            None => "the unit runs a Celery worker without User=, so as root".into(),
            Some(u) => format!(
                "the unit runs a Celery worker as {}",
                escape_bytes(u.as_bytes())
            ),
        },
        remedy: "run the worker as an unprivileged user (User=celery): Celery's guide warns \
                 never to run a worker as root, since a task then runs with root's rights",
    }]
}

// --- The audit --------------------------------------------------------------

/// Where to look.
#[derive(Clone, Debug)]
pub struct Places {
    /// Application directories: `celeryconfig.py`, `celery.py`, Django
    /// settings (`settings.py`, `settings/*.py`), `.env` in them.
    pub app_dirs: Vec<PathBuf>,
    /// Configuration files named on the command line, and the directories
    /// of them (`/etc/celery`).
    pub configs: Vec<PathBuf>,
    /// systemd units (files or directories of them).
    pub units: Vec<PathBuf>,
    /// Of all these, the ones the user named: each must exist (a mistyped
    /// path is said, not skipped as a default that a host lacks is).
    pub named: Vec<PathBuf>,
}

impl Default for Places {
    fn default() -> Places {
        Places {
            app_dirs: vec![PathBuf::from("/srv/app")],
            configs: [
                "/etc/celery",
                "/etc/default",
                "/etc/conf.d",
                "/etc/sysconfig",
            ]
            .map(PathBuf::from)
            .to_vec(),
            units: [
                "/etc/systemd/system",
                "/usr/lib/systemd/system",
                "/lib/systemd/system",
            ]
            .map(PathBuf::from)
            .to_vec(),
            named: Vec::new(),
        }
    }
}

/// What the audit found, and what it read.
#[derive(Debug)]
pub struct Audit {
    pub findings: Vec<Finding>,
    pub files: Vec<PathBuf>,
    /// Settings whose values are computed at run time: not judged.
    pub not_read: usize,
    /// Files that could not be read, and why.
    pub unreadable: Vec<(PathBuf, String)>,
}

enum Kind {
    Python,
    Env,
    Unit,
}

/// Audits what `places` hold.
pub fn audit(places: &Places) -> Audit {
    let missing: Vec<(PathBuf, String)> = places
        .named
        .iter()
        .filter(|p| {
            std::fs::symlink_metadata(p).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
        })
        .map(|p| {
            (
                p.clone(),
                "no such file or directory: check the path given".to_string(),
            )
        })
        .collect();
    let mut files: Vec<(PathBuf, Kind, Option<[u8; 32]>)> = Vec::new();
    for dir in &places.app_dirs {
        for rel in ["celeryconfig.py", "celery.py", "settings.py", "config.py"] {
            files.push((dir.join(rel), Kind::Python, None));
        }
        for sub in list(dir) {
            if sub.is_dir() && !sub.is_symlink() {
                for rel in ["celeryconfig.py", "celery.py", "settings.py"] {
                    files.push((sub.join(rel), Kind::Python, None));
                }
                files.extend(
                    list(&sub.join("settings"))
                        .into_iter()
                        .filter(|p| p.extension().is_some_and(|e| e == "py"))
                        .map(|p| (p, Kind::Python, None)),
                );
            }
        }
        files.push((dir.join(".env"), Kind::Env, None));
    }
    for c in &places.configs {
        let kind_of = |p: &Path| {
            if p.extension().is_some_and(|e| e == "py") {
                Kind::Python
            } else {
                Kind::Env
            }
        };
        match std::fs::symlink_metadata(c) {
            Ok(m) if m.is_dir() => {
                let celery_only = c.file_name().is_some_and(|n| n != "celery");
                files.extend(
                    list(c)
                        .into_iter()
                        .filter(|p| {
                            !celery_only
                                || p.file_name()
                                    .is_some_and(|n| n.to_string_lossy().starts_with("celery"))
                        })
                        .map(|p| {
                            let k = kind_of(&p);
                            (p, k, None)
                        }),
                );
            }
            _ => files.push((c.clone(), kind_of(c), None)),
        }
    }
    for u in &places.units {
        match std::fs::symlink_metadata(u) {
            Ok(m) if m.is_dir() => files.extend(
                list(u)
                    .into_iter()
                    .filter(|p| p.extension().is_some_and(|e| e == "service"))
                    .map(|p| (p, Kind::Unit, None)),
            ),
            _ => files.push((u.clone(), Kind::Unit, None)),
        }
    }
    let mut a = audit_listed(files);
    a.unreadable.extend(missing);
    a
}

/// Audits the files a scan found under rules marked `audit = "celery"`,
/// each with the BLAKE3 the scan recorded: `*.py` as Python settings,
/// `*.service` as units, the rest as environment files. A file whose
/// content is no longer what was hashed is not judged (and said): the
/// report's findings are about the content its drift is about.
pub fn audit_files(scanned: &[(PathBuf, [u8; 32])]) -> Audit {
    let files = scanned
        .iter()
        .map(|(p, hash)| {
            let kind = match p.extension().and_then(|e| e.to_str()) {
                Some("py") => Kind::Python,
                Some("service") => Kind::Unit,
                _ => Kind::Env,
            };
            (p.clone(), kind, Some(*hash))
        })
        .collect();
    audit_listed(files)
}

fn audit_listed(files: Vec<(PathBuf, Kind, Option<[u8; 32]>)>) -> Audit {
    let mut a = Audit {
        findings: Vec::new(),
        files: Vec::new(),
        not_read: 0,
        unreadable: Vec::new(),
    };
    let mut settings = Vec::new();
    let mut workers = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (path, kind, scanned) in files {
        if !seen.insert(path.clone()) {
            continue;
        }
        let (text, mode) = match crate::files::read_no_follow(&path, MAX_CONFIG_BYTES) {
            Ok((v, _)) if scanned.is_some_and(|h| h != *blake3::hash(&v).as_bytes()) => {
                a.unreadable.push((
                    path,
                    "changed since the scan hashed it; judged at the next check".into(),
                ));
                continue;
            }
            Ok((v, meta)) => (String::from_utf8_lossy(&v).into_owned(), meta.mode()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                a.unreadable.push((path, e.to_string()));
                continue;
            }
        };
        a.files.push(path.clone());
        match kind {
            Kind::Python => {
                let (s, unknown) = python_settings(&text, &path);
                a.not_read += unknown;
                settings.extend(s);
            }
            Kind::Env => settings.extend(env_settings(&text, &path)),
            Kind::Unit => {
                a.findings.extend(unit_findings(&text, &path));
                workers.extend(worker_user(&text).and_then(|u| uid_of(&u)));
                continue;
            }
        }
        if holds_password(&text) && mode & 0o044 != 0 {
            a.findings.push(Finding {
                file: path.clone(),
                line: None,
                check: "password-readable",
                detail: format!(
                    "it holds a broker or backend password and is readable by {} (mode {:04o})",
                    if mode & 0o004 != 0 {
                        "every user"
                    } else {
                        "its group"
                    },
                    mode & 0o7777
                ),
                remedy: "make it readable by the worker's user only: chmod 600 (or 640 with a \
                         group of the worker's alone)",
            });
        }
    }
    a.findings.extend(judge(&settings));
    a.findings.extend(key_findings(&settings, &workers));
    a.findings
        .sort_by(|x, y| (&x.file, x.line, x.check).cmp(&(&y.file, y.line, y.check)));
    a
}

fn list(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

impl Audit {
    pub fn json(&self) -> Json {
        json!({
            "findings": self.findings.iter().map(|f| {
                let mut v = json!({
                    "check": f.check,
                    "detail": f.detail,
                    "remedy": f.remedy,
                    "line": f.line,
                });
                if let Json::Object(m) = &mut v {
                    crate::shapes::json_path(m, "file", f.file.as_os_str().as_encoded_bytes());
                }
                v
            }).collect::<Vec<_>>(),
            "files_read": self.files.iter().map(|p| escape_path(p)).collect::<Vec<_>>(),
            "settings_not_read": self.not_read,
            "unreadable": self.unreadable.iter().map(|(p, e)| json!({"file": escape_path(p), "error": e})).collect::<Vec<_>>(),
        })
    }

    pub fn human(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        for f in &self.findings {
            let at = match f.line {
                Some(l) => format!("{}:{l}", escape_path(&f.file)),
                None => escape_path(&f.file),
            };
            writeln!(
                out,
                "{at}: {}: {}",
                f.check,
                escape_bytes(f.detail.as_bytes())
            )?;
            writeln!(out, "    remedy: {}", f.remedy)?;
        }
        for (p, e) in &self.unreadable {
            writeln!(out, "{}: not read: {e}", escape_path(p))?;
        }
        writeln!(
            out,
            "{} finding{} in {} file{} read{}",
            self.findings.len(),
            if self.findings.len() == 1 { "" } else { "s" },
            self.files.len(),
            if self.files.len() == 1 { "" } else { "s" },
            match self.not_read {
                0 => String::new(),
                n => format!(
                    "; {n} setting{} computed at run time, not judged",
                    if n == 1 { "" } else { "s" }
                ),
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_changed_since_the_scan_is_not_judged() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("celeryconfig.py");
        std::fs::write(&conf, "task_serializer = 'pickle'\n").unwrap();
        let scanned = *blake3::hash(b"task_serializer = 'pickle'\n").as_bytes();
        let a = audit_files(&[(conf.clone(), scanned)]);
        assert_eq!(a.findings.len(), 1, "{a:?}");
        assert_eq!(a.findings[0].check, "insecure-serializer");
        // Replaced after the scan hashed it: the findings would be about
        // content the drift report does not show.
        std::fs::write(&conf, "task_serializer = 'json'\n").unwrap();
        let a = audit_files(&[(conf.clone(), scanned)]);
        assert!(a.findings.is_empty(), "{a:?}");
        assert_eq!(a.files, Vec::<PathBuf>::new());
        assert!(
            a.unreadable[0].1.contains("changed since the scan"),
            "{a:?}"
        );
    }

    fn settings(src: &str) -> (Vec<Setting>, usize) {
        python_settings(src, Path::new("c.py"))
    }

    #[test]
    fn literals_are_read_and_computed_values_are_not() {
        let (s, unknown) = settings(
            "import ssl\nfrom kombu import Queue\n\
             accept_content = ['json',\n   'pickle']  # comment\n\
             CELERY_TASK_SERIALIZER = \"json\"\n\
             broker_url = os.environ['URL']\n\
             app.conf.result_serializer = r'yaml'\n\
             broker_use_ssl = {'cert_reqs': ssl.CERT_NONE, 'ca_certs': '/x'}\n\
             app.conf.update(event_serializer='pickle', security_key=f'{d}/k')\n\
             other.thing.task_serializer = 'pickle'\n\
             def f():\n    task_serializer = 'pickle'\n",
        );
        let names: Vec<(&str, usize)> = s.iter().map(|s| (s.name.as_str(), s.line)).collect();
        assert_eq!(
            names,
            [
                ("accept_content", 3),
                ("task_serializer", 5),
                ("result_serializer", 7),
                ("broker_use_ssl", 8),
                ("event_serializer", 9),
            ]
        );
        assert_eq!(unknown, 2, "broker_url and security_key are computed");
        assert_eq!(s[0].value.strings(), ["json", "pickle"]);
        let (s, unknown) = settings(
            "\u{feff}app = Celery('p', broker='amqp://u:p@h//', backend=f'{x}')\n\
             x = 1; task_serializer = 'pickle'\n\
             accept_content: list = ['yaml']\n\
             accept_content += ['pickle']\n",
        );
        let names: Vec<&str> = s.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["broker_url", "task_serializer", "accept_content"]);
        assert_eq!(unknown, 2, "the backend, and the +=");
    }

    #[test]
    fn a_string_that_never_closes_reads_nothing_past_it() {
        let (s, _) = settings("task_serializer = 'json\naccept_content = ['pickle']\n");
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].name, "accept_content");
    }

    #[test]
    fn urls_are_judged_by_host_and_scheme() {
        let s = |v: &str| Setting {
            name: "broker_url".into(),
            value: Lit::Str(v.into()),
            file: "c.py".into(),
            line: 1,
        };
        let checks = |v: &str| -> Vec<&str> { judge(&[s(v)]).iter().map(|f| f.check).collect() };
        assert_eq!(
            checks("amqp://u:p@broker.internal:5672//"),
            ["plaintext-broker"]
        );
        assert!(checks("amqp://guest@localhost//").is_empty());
        assert!(checks("amqps://u:p@broker.internal//").is_empty());
        assert_eq!(
            checks("rediss://h:6379/0?ssl_cert_reqs=none"),
            ["tls-unverified"]
        );
        assert!(holds_password("broker_url = 'amqp://u:secret@h//'"));
        assert!(!holds_password("broker_url = 'amqp://u@h//'"));
    }

    #[test]
    fn a_worker_unit_without_user_runs_as_root() {
        let unit = "[Service]\nExecStart=/srv/venv/bin/celery -A app worker -l info\n";
        assert_eq!(unit_findings(unit, Path::new("w.service")).len(), 1);
        let unit = "[Service]\nUser=celery\nExecStart=/srv/venv/bin/celery -A app worker\n";
        assert!(unit_findings(unit, Path::new("w.service")).is_empty());
        let beat = "[Service]\nExecStart=/srv/venv/bin/celery -A app beat\n";
        assert!(unit_findings(beat, Path::new("b.service")).is_empty());
    }
}

// --- Keys and their certificates --------------------------------------------

/// A public key, as bytes to compare: RSA's modulus and exponent, or an
/// EC point or Ed25519 key.
#[derive(Debug, PartialEq, Eq)]
enum Public {
    Rsa(Vec<u8>, Vec<u8>),
    Point(Vec<u8>),
}

/// One DER element: its tag, its value, and what follows it.
fn tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = b.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |a, &x| (a << 8) | x as usize);
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// The elements of a SEQUENCE's value.
fn items(mut v: &[u8]) -> Option<Vec<(u8, &[u8])>> {
    let mut out = Vec::new();
    while !v.is_empty() {
        let (t, val, rest) = tlv(v)?;
        out.push((t, val));
        v = rest;
    }
    Some(out)
}

fn unsigned(b: &[u8]) -> Vec<u8> {
    let start = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    b[start..].to_vec()
}

const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

fn rsa_private(der: &[u8]) -> Option<Public> {
    let (0x30, v, _) = tlv(der)? else { return None };
    let it = items(v)?;
    Some(Public::Rsa(unsigned(it.get(1)?.1), unsigned(it.get(2)?.1)))
}

fn ec_private(der: &[u8]) -> Result<Public, String> {
    let bad = || "an EC key that does not parse".to_string();
    let (0x30, v, _) = tlv(der).ok_or_else(bad)? else {
        return Err(bad());
    };
    let point = items(v)
        .ok_or_else(bad)?
        .into_iter()
        .find(|(t, _)| *t == 0xa1)
        .and_then(|(_, v)| tlv(v))
        .filter(|(t, _, _)| *t == 0x03)
        .and_then(|(_, bits, _)| bits.get(1..).map(<[u8]>::to_vec))
        .ok_or("an EC key that does not carry its public half: not compared")?;
    Ok(Public::Point(point))
}

/// The public half of the private key in `pem` (PKCS#8, PKCS#1 or SEC1).
fn key_public(pem: &[u8]) -> Result<Public, String> {
    let block = x509_parser::pem::Pem::iter_from_buffer(pem)
        .flatten()
        .find(|p| p.label.ends_with("PRIVATE KEY"))
        .ok_or("no PEM private key in it")?;
    let der = &block.contents;
    match block.label.as_str() {
        "RSA PRIVATE KEY" => {
            rsa_private(der).ok_or_else(|| "an RSA key that does not parse".into())
        }
        "EC PRIVATE KEY" => ec_private(der),
        "PRIVATE KEY" => {
            let bad = || "a PKCS#8 key that does not parse".to_string();
            let (0x30, v, _) = tlv(der).ok_or_else(bad)? else {
                return Err(bad());
            };
            let it = items(v).ok_or_else(bad)?;
            let (_, alg) = it.get(1).ok_or_else(bad)?;
            let (_, oid, _) = tlv(alg).ok_or_else(bad)?;
            let (_, key) = it.get(2).ok_or_else(bad)?;
            match oid {
                OID_RSA => rsa_private(key).ok_or_else(bad),
                OID_EC => ec_private(key),
                OID_ED25519 => {
                    let (0x04, seed, _) = tlv(key).ok_or_else(bad)? else {
                        return Err(bad());
                    };
                    let seed: [u8; 32] = seed.try_into().map_err(|_| bad())?;
                    let k = ed25519_dalek::SigningKey::from_bytes(&seed);
                    Ok(Public::Point(k.verifying_key().to_bytes().to_vec()))
                }
                _ => Err("a key of a kind tripseal does not compare".into()),
            }
        }
        "ENCRYPTED PRIVATE KEY" => Err("an encrypted key: not compared".into()),
        other => Err(format!("a {other}: not compared")),
    }
}

/// The public key of the (first) certificate in `data`, PEM or DER.
fn cert_public(data: &[u8]) -> Result<Public, String> {
    use x509_parser::public_key::PublicKey;
    let der = if data.windows(11).any(|w| w == b"-----BEGIN ") {
        x509_parser::pem::Pem::iter_from_buffer(data)
            .flatten()
            .find(|p| p.label == "CERTIFICATE")
            .map(|p| p.contents)
            .ok_or("no PEM certificate in it")?
    } else {
        data.to_vec()
    };
    let (_, cert) =
        x509_parser::parse_x509_certificate(&der).map_err(|e| format!("not a certificate: {e}"))?;
    let spki = cert.public_key();
    Ok(match spki.parsed() {
        Ok(PublicKey::RSA(k)) => Public::Rsa(unsigned(k.modulus), unsigned(k.exponent)),
        Ok(PublicKey::EC(k)) => Public::Point(k.data().to_vec()),
        _ => Public::Point(spki.subject_public_key.data.to_vec()),
    })
}

fn read_as_is(path: &Path) -> std::io::Result<(Vec<u8>, std::fs::Metadata)> {
    // A path a configuration names is read as it is: never through a
    // symlink (its target may be anything on the host), never a FIFO.
    crate::files::read_no_follow(path, MAX_CONFIG_BYTES)
}

/// The key files the settings name, each with the certificate meant to go
/// with it: (key setting, key, certificate).
fn key_pairs(settings: &[Setting]) -> Vec<(&Setting, String, Option<String>)> {
    let last: BTreeMap<&str, &Setting> = settings.iter().map(|s| (s.name.as_str(), s)).collect();
    let first_str = |s: &Setting| s.value.strings().first().map(|v| v.to_string());
    let mut out = Vec::new();
    if let Some(k) = last.get("security_key")
        && let Some(key) = first_str(k)
    {
        let cert = last.get("security_certificate").and_then(|c| first_str(c));
        out.push((*k, key, cert));
    }
    for name in ["broker_use_ssl", "redis_backend_use_ssl"] {
        if let Some(s) = last.get(name) {
            let e = s.value.entries();
            let get = |keys: [&str; 2]| {
                e.iter()
                    .find(|(k, _)| keys.contains(&k.as_str()))
                    .and_then(|(_, v)| v.strings().first().map(|x| x.to_string()))
            };
            if let Some(key) = get(["keyfile", "ssl_keyfile"]) {
                out.push((*s, key, get(["certfile", "ssl_certfile"])));
            }
        }
    }
    for name in ["broker_url", "result_backend"] {
        if let Some(s) = last.get(name) {
            for url in s.value.strings() {
                let query = url.split_once('?').map_or("", |(_, q)| q);
                let get = |k: &str| {
                    query
                        .split('&')
                        .find_map(|kv| kv.strip_prefix(k).and_then(|v| v.strip_prefix('=')))
                        .map(str::to_string)
                };
                if let Some(key) = get("ssl_keyfile") {
                    out.push((*s, key, get("ssl_certfile")));
                }
            }
        }
    }
    out
}

/// The uid of the user `name`, if there is one.
fn uid_of(name: &str) -> Option<u32> {
    if let Ok(n) = name.parse() {
        return Some(n);
    }
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: getpwnam with a NUL-terminated name; the result is read at
    // once, before any other call could reuse its storage.
    unsafe {
        let pw = libc::getpwnam(c.as_ptr());
        (!pw.is_null()).then(|| (*pw).pw_uid)
    }
}

/// Findings on the private keys the settings name: a key its certificate
/// does not match, a key others can read, a key owned by neither root nor
/// the worker's user (`workers`, from its units).
fn key_findings(settings: &[Setting], workers: &[u32]) -> Vec<Finding> {
    let mut out = Vec::new();
    for (s, key, cert) in key_pairs(settings) {
        let key_path = PathBuf::from(&key);
        let shown = escape_path(&key_path);
        if std::fs::symlink_metadata(&key_path).is_ok_and(|m| m.file_type().is_symlink()) {
            log::info!("{shown} is a symlink: not followed, so not inspected");
            continue;
        }
        let (data, meta) = match read_as_is(&key_path) {
            Ok(x) => x,
            Err(e) => {
                out.push(Finding {
                    file: s.file.clone(),
                    line: Some(s.line),
                    check: "key-unreadable",
                    detail: format!("{} names the key {shown}, which is not read: {e}", s.name),
                    remedy: if e.kind() == std::io::ErrorKind::PermissionDenied {
                        "run the audit as root (or as the worker's user) to inspect the key"
                    } else {
                        "name the key file the worker uses, a regular file"
                    },
                });
                continue;
            }
        };
        let mode = meta.mode();
        if mode & 0o044 != 0 {
            out.push(Finding {
                file: key_path.clone(),
                line: None,
                check: "key-readable",
                detail: format!(
                    "the private key {} names is readable by {} (mode {:04o})",
                    s.name,
                    if mode & 0o004 != 0 {
                        "every user"
                    } else {
                        "its group"
                    },
                    mode & 0o7777
                ),
                remedy: "chmod 600 the key, owned by the worker's user (or root)",
            });
        }
        if meta.uid() != 0 && !workers.is_empty() && !workers.contains(&meta.uid()) {
            out.push(Finding {
                file: key_path.clone(),
                line: None,
                check: "key-owner",
                detail: format!(
                    "the private key {} names is owned by uid {}, neither root nor the \
                     worker's user",
                    s.name,
                    meta.uid()
                ),
                remedy: "chown the key to the worker's user (or root): its owner can replace it",
            });
        }
        let Some(cert) = cert else { continue };
        let cert_path = PathBuf::from(&cert);
        let compared = key_public(&data).and_then(|k| {
            let (c, _) = read_as_is(&cert_path).map_err(|e| {
                format!(
                    "the certificate {} is not read: {e}",
                    escape_path(&cert_path)
                )
            })?;
            cert_public(&c).map(|c| c == k)
        });
        match compared {
            Ok(true) => {}
            Ok(false) => out.push(Finding {
                file: s.file.clone(),
                line: Some(s.line),
                check: "key-cert-mismatch",
                detail: format!(
                    "the key {shown} and the certificate {} that {} pairs it with do not match",
                    escape_path(&cert_path),
                    s.name
                ),
                remedy: "name the key and the certificate issued for it: with another pair \
                         the worker cannot sign, or its TLS connection fails",
            }),
            Err(why) => log::info!("{shown} is not compared with its certificate: {why}"),
        }
    }
    out
}
