//! Broker URLs in kombu's style, so that a Celery app's `broker_url` can be
//! pasted: `amqp://user:password@host:port/vhost?option=value`.
//!
//! Read as kombu reads them (`kombu.utils.url.url_to_parts`): the user and
//! password are percent-decoded, the path after the first `/` is the virtual
//! host (`//` names vhost `/`, an empty path means `/` too) or, for Redis, the
//! database number. Options go in the query string; an option this tripseal
//! does not know is an error, never ignored, so that a misspelt TLS option
//! cannot silently turn verification into something else.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::error::Error;

/// A parsed broker URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerUrl {
    /// `amqp`, `amqps`, `redis` or `rediss` (`pyamqp` reads as `amqp`).
    pub scheme: String,
    pub user: Option<String>,
    pub password: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    /// The path after the first `/`, percent-decoded.
    pub path: String,
    pub options: BTreeMap<String, String>,
}

/// TLS settings, named as Celery's `broker_use_ssl` names them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// PEM file of the certificate authorities that may sign the broker's
    /// certificate (`ssl_ca_certs`); the system's store when absent.
    pub ca_certs: Option<PathBuf>,
    /// PEM client certificate and key (`ssl_certfile`, `ssl_keyfile`).
    pub certfile: Option<PathBuf>,
    pub keyfile: Option<PathBuf>,
}

impl BrokerUrl {
    pub fn parse(spec: &str) -> Result<BrokerUrl, Error> {
        let bad = |why: &str| {
            Error::invalid(format!(
                "event sink {}: {why}",
                escape_url(&redact_in_error(spec))
            ))
        };
        let (scheme, rest) = spec
            .split_once("://")
            .ok_or_else(|| bad("not a URL (scheme://host)"))?;
        let scheme = match scheme {
            "pyamqp" => "amqp",
            s => s,
        }
        .to_string();
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        // The password may hold '@': the host follows the last one.
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
            None => (None, authority),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(u) => match u.split_once(':') {
                Some((user, pw)) => (non_empty(decode(user)?), Some(decode(pw)?)),
                None => (non_empty(decode(u)?), None),
            },
        };
        let (host, port) = split_host_port(hostport).map_err(|why| bad(&why))?;
        let mut options = BTreeMap::new();
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            options.insert(decode(k)?, decode(v)?);
        }
        Ok(BrokerUrl {
            scheme,
            user,
            password,
            host: if host.is_empty() {
                "localhost".into()
            } else {
                host
            },
            port,
            path: decode(path)?,
            options,
        })
    }

    /// Takes option `name` out of the URL's options.
    pub fn take(&mut self, name: &str) -> Option<String> {
        self.options.remove(name)
    }

    /// Takes a boolean option as kombu reads one.
    pub fn take_bool(&mut self, name: &str) -> Result<Option<bool>, Error> {
        match self.take(name) {
            None => Ok(None),
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => Ok(Some(true)),
                "0" | "false" | "no" | "off" => Ok(Some(false)),
                _ => Err(Error::invalid(format!(
                    "event sink option {name}={v:?}: say true or false"
                ))),
            },
        }
    }

    /// Takes the TLS options; refuses to turn verification off.
    pub fn take_tls(&mut self) -> Result<TlsOptions, Error> {
        let path = |v: String| Some(PathBuf::from(v));
        let tls = TlsOptions {
            ca_certs: self.take("ssl_ca_certs").and_then(path),
            certfile: self.take("ssl_certfile").and_then(path),
            keyfile: self.take("ssl_keyfile").and_then(path),
        };
        if let Some(reqs) = self.take("ssl_cert_reqs") {
            let required = matches!(
                reqs.to_ascii_lowercase().as_str(),
                "required" | "cert_required"
            );
            if !required {
                return Err(Error::invalid(format!(
                    "event sink option ssl_cert_reqs={reqs:?}: tripseal always verifies the \
                     broker's certificate; give the CA that signed it with ssl_ca_certs=FILE"
                )));
            }
        }
        if tls.certfile.is_some() != tls.keyfile.is_some() {
            return Err(Error::invalid(
                "event sink options: ssl_certfile and ssl_keyfile go together (the client \
                 certificate and its key)",
            ));
        }
        Ok(tls)
    }

    /// Takes `auth_key` and `auth_cert`: sign each event as Celery's `auth`
    /// serializer does (see [`crate::events::auth`]).
    pub fn take_auth(&mut self) -> Result<Option<crate::events::auth::AuthSigner>, Error> {
        match (self.take("auth_key"), self.take("auth_cert")) {
            (None, None) => Ok(None),
            (Some(k), Some(c)) => Ok(Some(crate::events::auth::AuthSigner::load(
                std::path::Path::new(&k),
                std::path::Path::new(&c),
            )?)),
            _ => Err(Error::invalid(
                "event sink options: auth_key and auth_cert go together (the RSA key that \
                 signs and its certificate, which the consumer's security_cert_store holds)",
            )),
        }
    }

    /// Fails if options remain that nothing took.
    pub fn no_more_options(&self, known: &str) -> Result<(), Error> {
        match self.options.keys().next() {
            None => Ok(()),
            // Only a name is repeated: anything else may be the tail of a
            // password holding an unencoded '?'.
            Some(k) if k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
                Err(Error::invalid(format!(
                    "event sink option {k:?} is not known for {}://; known: {known}",
                    self.scheme
                )))
            }
            Some(_) => Err(Error::invalid(format!(
                "event sink URL for {}://: its query holds something that is not an option \
                 name (percent-encode '/', '?' and '@' in a password); known: {known}",
                self.scheme
            ))),
        }
    }

    /// `host:port` for messages.
    pub fn endpoint(&self, default_port: u16) -> String {
        format!("{}:{}", self.host, self.port.unwrap_or(default_port))
    }
}

/// The URL with its password replaced by `***`: how a sink is named in the
/// outbox and in every message, so that no password is written to disk or
/// to a terminal by tripseal.
pub fn redact(spec: &str) -> String {
    let Some((scheme, rest)) = spec.split_once("://") else {
        return spec.to_string();
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let Some(at) = authority.rfind('@') else {
        return spec.to_string();
    };
    let userinfo = &authority[..at];
    match userinfo.split_once(':') {
        Some((user, pw)) if !pw.is_empty() => {
            format!("{scheme}://{user}:***@{}", &rest[at + 1..])
        }
        _ => spec.to_string(),
    }
}

/// [`redact`] for a URL that was refused: one whose '@' stands after a '/'
/// or '?' may hold a password with those characters unencoded, so nothing
/// after the scheme is shown. (For a URL that parsed, such an '@' belongs to
/// the virtual host or an option, and [`redact`] names it exactly.)
pub fn redact_in_error(spec: &str) -> String {
    let redacted = redact(spec);
    match spec.split_once("://") {
        Some((scheme, rest)) if redacted == spec && rest.contains('@') => format!(
            "{scheme}://*** (an '@' stands where no password can; percent-encode '/', '?' \
             and '@' in a password)"
        ),
        _ => redacted,
    }
}

/// How the outbox names a sink: its URL without the password (see
/// [`redact`]) and without the TLS file options, which say how to reach the
/// broker, not which broker it is; a corrected CA file then still delivers
/// the events that waited for it.
pub fn sink_key(spec: &str) -> String {
    // Only a broker URL has a password or TLS options; any other sink (a
    // file path may hold '?' or '://') is named exactly as given.
    if !is_broker_url(spec) {
        return spec.to_string();
    }
    let redacted = redact(spec);
    let Some((base, query)) = redacted.split_once('?') else {
        return redacted;
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("ssl_") && !p.starts_with("auth_"))
        .collect();
    if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    }
}

/// Whether `spec` names a broker (AMQP or Redis), whose URL may hold a
/// password and options.
pub fn is_broker_url(spec: &str) -> bool {
    spec.split_once("://").is_some_and(|(scheme, _)| {
        matches!(
            scheme,
            "amqp" | "pyamqp" | "amqps" | "redis" | "rediss" | "redis+stream" | "rediss+stream"
        )
    })
}

/// Whether `key` (a sink as the outbox names it) had a password taken out.
pub fn is_redacted(key: &str) -> bool {
    redact(key) == key && key.contains(":***@")
}

fn escape_url(s: &str) -> String {
    crate::escape::escape_bytes(s.as_bytes()).to_string()
}

fn non_empty(s: String) -> Option<String> {
    if s.is_empty() { None } else { Some(s) }
}

fn split_host_port(s: &str) -> Result<(String, Option<u16>), String> {
    // An IPv6 literal in brackets keeps its colons.
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest
            .split_once(']')
            .ok_or_else(|| "an IPv6 address needs its closing ']'".to_string())?;
        (h.to_string(), after.strip_prefix(':'))
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (s.to_string(), None),
        }
    };
    let port = match port {
        None | Some("") => None,
        Some(p) => Some(
            p.parse::<u16>()
                // The text is not repeated: it may be part of a password
                // holding a '/' or '?' that was not percent-encoded.
                .map_err(|_| "the port is not a number from 1 to 65535".to_string())?,
        ),
    };
    Ok((host, port))
}

/// Percent-decoding; the result must be UTF-8.
fn decode(s: &str) -> Result<String, Error> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        if b[i] == b'%'
            && let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out)
        .map_err(|_| Error::invalid("event sink URL: a percent-escape does not decode to UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_urls_as_kombu_does() {
        let u = BrokerUrl::parse("amqp://guest:p%40ss@127.0.0.1:5673//").unwrap();
        assert_eq!(u.scheme, "amqp");
        assert_eq!(u.user.as_deref(), Some("guest"));
        assert_eq!(u.password.as_deref(), Some("p@ss"));
        assert_eq!(u.host, "127.0.0.1");
        assert_eq!(u.port, Some(5673));
        assert_eq!(u.path, "/");
        let u = BrokerUrl::parse("pyamqp://h/prod%2Feu?queue=fim").unwrap();
        assert_eq!((u.scheme.as_str(), u.path.as_str()), ("amqp", "prod/eu"));
        assert_eq!(u.options["queue"], "fim");
        let u = BrokerUrl::parse("redis://:secret@[::1]:6380/3").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("::1", Some(6380), "3")
        );
        assert_eq!(u.user, None);
        assert!(BrokerUrl::parse("redis://h:99999/0").is_err());
    }

    #[test]
    fn passwords_never_reach_the_outbox_name() {
        assert_eq!(
            redact("amqp://guest:s3cr@t@host:5672//?x=1"),
            "amqp://guest:***@host:5672//?x=1"
        );
        assert_eq!(redact("redis://:pw@h/0"), "redis://:***@h/0");
        assert_eq!(redact("redis://h/0"), "redis://h/0");
        // A password with an unencoded '?' or '/': nothing of it is shown.
        for bad in [
            "redis://:pa?xyzzy@h/0",
            "amqp://u:p/xyzzy@h//",
            "redis://:1234?xyzzy@h/0",
        ] {
            let shown = redact_in_error(bad);
            assert!(!shown.contains("xyzzy"), "{shown}");
            let e = match crate::events::sink::open(bad) {
                Ok(_) => panic!("{bad} opened"),
                Err(e) => e.to_string(),
            };
            assert!(!e.contains("xyzzy"), "{e}");
        }
        assert_eq!(redact("file:/var/log/x"), "file:/var/log/x");
        assert!(is_redacted("redis://:***@h/0"));
        assert!(!is_redacted("redis://h/0"));
        assert_eq!(
            sink_key("amqps://u:p@h//?ssl_ca_certs=/a&queue=q&ssl_certfile=/c"),
            "amqps://u:***@h//?queue=q"
        );
        assert_eq!(sink_key("rediss://h/0?ssl_ca_certs=/a"), "rediss://h/0");
        assert_eq!(sink_key("file:/x?ssl_y"), "file:/x?ssl_y");
        assert_eq!(
            sink_key("file:/a?ssl_c://:pw@h&b"),
            "file:/a?ssl_c://:pw@h&b",
            "a file path is a name, never rewritten"
        );
    }

    #[test]
    fn an_at_sign_in_a_virtual_host_keeps_sinks_apart() {
        // Valid URLs: the '@' is in the vhost, not a password; each sink
        // keeps a name of its own in the outbox.
        let a = sink_key("amqp://h/team@prod");
        let b = sink_key("amqp://h/team@test");
        assert_ne!(a, b);
        assert_eq!(a, "amqp://h/team@prod");
    }

    #[test]
    fn tls_verification_cannot_be_turned_off() {
        let mut u = BrokerUrl::parse("amqps://h//?ssl_cert_reqs=none").unwrap();
        assert!(u.take_tls().is_err());
        let mut u = BrokerUrl::parse("amqps://h//?ssl_certfile=/c").unwrap();
        assert!(u.take_tls().is_err());
        let mut u =
            BrokerUrl::parse("rediss://h/0?ssl_cert_reqs=required&ssl_ca_certs=/ca.pem").unwrap();
        let tls = u.take_tls().unwrap();
        assert_eq!(tls.ca_certs, Some(PathBuf::from("/ca.pem")));
        assert!(u.no_more_options("").is_ok());
    }
}
