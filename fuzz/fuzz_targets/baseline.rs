//! The baseline reader on arbitrary bytes as the database file: open it,
//! verify its seal against an empty trust store, read its rules and every
//! entry. Errors are expected; a panic, a hang or a crash is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tripseal::baseline::Baseline;
use tripseal::seal::{self, TrustStore};

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir_in("/dev/shm").expect("a temporary directory");
    let db = dir.path().join("f.db");
    std::fs::write(&db, data).expect("written");
    let Ok(b) = Baseline::open(&db) else {
        return;
    };
    let store = TrustStore {
        source: "fuzz".into(),
        keys: Vec::new(),
    };
    if let Ok(v) = seal::verify(&b, &store, 0) {
        let _ = v.accept(&db, &store);
        let _ = v.expires_ns();
    }
    let _ = b.counts();
    let _ = tripseal::check::stored_rules(&b);
    let _ = b.for_each_entry(None, |_| Ok(()));
    let _ = b.stat_index(&mut tripseal::baseline::StatIndex::new(5.0));
    let _ = b.growing_sizes();
});
