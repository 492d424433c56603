//! The rules parser on arbitrary text: an error with a position, never a
//! panic; and what loads can be asked to select any path.
#![no_main]

use std::collections::BTreeMap;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use tripseal::rules::{Rules, RulesSource};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let source = RulesSource {
        name: "fuzz.toml".into(),
        text: text.to_string(),
    };
    if let Ok(rules) = Rules::load(source, &BTreeMap::new()) {
        let _ = rules.digest();
        for p in ["/", "/etc/passwd", "/srv/app/x.py", "/a/b/c/d"] {
            let _ = rules.select(Path::new(p));
        }
        let _ = rules.walk_roots();
    }
});
