//! Event sink URLs (what --emit and the configuration take): parsed and
//! checked without a panic, and no password survives in the name the outbox
//! keeps.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tripseal::events::SinkSpec;
use tripseal::events::url::{BrokerUrl, redact, redact_in_error, sink_key};

fuzz_target!(|data: &[u8]| {
    let Ok(spec) = std::str::from_utf8(data) else {
        return;
    };
    let _ = BrokerUrl::parse(spec);
    let shown = redact_in_error(spec);
    let named = redact(spec);
    let key = sink_key(spec);
    let valid = match SinkSpec::new(spec) {
        Ok(s) => {
            assert_eq!(s.key, key);
            true
        }
        Err(_) => false,
    };
    // The password as written in a broker URL never survives where it
    // stood: in a message about any URL, and in the names a sink that
    // opened is given (the outbox's included). The same text elsewhere, in
    // a path or an option, is not a password; a file path is a name.
    if let Some(raw) = password_in(spec)
        && raw != "***"
        && tripseal::events::url::is_broker_url(spec)
    {
        let names = [("shown", &shown), ("named", &named), ("kept", &key)];
        for (what, name) in names.iter().take(if valid { 3 } else { 1 }) {
            let authority = authority_of(name).unwrap_or_default();
            assert!(
                !authority.contains(&format!(":{raw}@")),
                "password {what}: {name}"
            );
        }
    }
});

/// What stands between `://` and the first `/` or `?`.
fn authority_of(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    Some(&rest[..rest.find(['/', '?']).unwrap_or(rest.len())])
}

/// The password as written in the URL's authority, if any.
fn password_in(url: &str) -> Option<&str> {
    let authority = authority_of(url)?;
    let at = authority.rfind('@')?;
    let (_, raw) = authority[..at].split_once(':')?;
    (!raw.is_empty()).then_some(raw)
}
