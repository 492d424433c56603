//! The collector on arbitrary messages from the feed (what a host, or
//! anyone who can publish there, sends): up to 16 messages separated by NUL
//! bytes, each taken into one store in its own transaction, from one of two
//! broker accounts or none; then the fleet as `fleet status`, `fleet drift`
//! and the pages read it, and silence judged. Refusals are expected; a
//! panic, a hang or a crash is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tripseal::fleet::store::Store;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir_in("/dev/shm").expect("a temporary directory");
    let mut store = Store::open(&dir.path().join("c.db"), true).expect("a new store");
    for (n, message) in data.split(|b| *b == 0).take(16).enumerate() {
        let publisher = match n % 3 {
            0 => None,
            1 => Some("a"),
            _ => Some("b"),
        };
        store.begin().expect("a transaction");
        let _ = store.take(message, publisher, n as i64 * 1_000_000_000);
        store.commit().expect("committed");
    }
    store.begin().expect("a transaction");
    let _ = store.judge_silence(1 << 50, 0, 60.0);
    store.commit().expect("committed");
    let hosts = store.hosts().expect("the hosts read");
    for h in &hosts {
        let _ = tripseal::fleet::host_json(h, 1 << 50);
        let _ = store.drift(&h.host, &h.instance);
        let _ = store.resolve(&h.host);
    }
    let _ = store.recent_flags(20);
});
