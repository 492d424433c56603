//! Micro-benchmarks of hashing a file's content (`src/content.rs`) beside
//! BLAKE3 over the same bytes already in memory, the most any reader can
//! reach. `cargo bench --bench hash`; `cargo test --benches` runs each once.

use std::fs::File;
use std::os::unix::fs::FileExt;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tripseal::content::{Reading, hash};

fn reading(f: &File) -> Reading {
    Reading::of(&f.metadata().unwrap())
}

fn files(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("hash");
    for (name, len) in [
        ("4KiB", 4 << 10),
        ("256KiB", 256 << 10),
        ("64MiB", 64 << 20),
    ] {
        let bytes: Vec<u8> = (0..len as u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let path = dir.path().join(name);
        std::fs::write(&path, &bytes).unwrap();
        let file = File::open(&path).unwrap();
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_with_input(BenchmarkId::new("file", name), &file, |b, f| {
            b.iter(|| hash(f, reading(f)).unwrap().hash)
        });
        group.bench_with_input(BenchmarkId::new("in-memory", name), &bytes, |b, bytes| {
            b.iter(|| {
                let mut h = blake3::Hasher::new();
                if bytes.len() >= 128 << 10 {
                    h.update_rayon(bytes);
                } else {
                    h.update(bytes);
                }
                *h.finalize().as_bytes()
            })
        });
    }
    // 1 GiB that is all hole but for 1 MiB: what a sparse file costs.
    let path = dir.path().join("sparse");
    let file = File::create(&path).unwrap();
    file.set_len(1 << 30).unwrap();
    file.write_all_at(&[1; 1 << 20], 512 << 20).unwrap();
    let file = File::open(&path).unwrap();
    group.throughput(Throughput::Bytes(1 << 30));
    group.sample_size(10);
    group.bench_with_input(BenchmarkId::new("file", "sparse-1GiB"), &file, |b, f| {
        b.iter(|| hash(f, reading(f)).unwrap().hash)
    });
    group.finish();
}

criterion_group!(benches, files);
criterion_main!(benches);
