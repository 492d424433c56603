//! Event sink URLs (what --emit and the configuration take): parsed and
//! checked without a panic, and no password survives in the name the outbox
//! keeps.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tripseal::events::SinkSpec;
use tripseal::events::url::{BrokerUrl, redact, sink_key};

fuzz_target!(|data: &[u8]| {
    let Ok(spec) = std::str::from_utf8(data) else {
        return;
    };
    let _ = BrokerUrl::parse(spec);
    let shown = redact(spec);
    let key = sink_key(spec);
    if let Ok(s) = SinkSpec::new(spec) {
        assert_eq!(s.key, key);
    }
    // The password as written in the URL never survives in either name.
    if let Some((_, rest)) = spec.split_once("://") {
        let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
        if let Some(at) = authority.rfind('@')
            && let Some((_, raw)) = authority[..at].split_once(':')
            && !raw.is_empty()
            && raw != "***"
        {
            let written = format!(":{raw}@");
            assert!(!shown.contains(&written), "password shown: {shown}");
            assert!(!key.contains(&written), "password kept: {key}");
        }
    }
});
