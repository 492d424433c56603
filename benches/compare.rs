//! Micro-benchmarks of comparing two baselines and of the seal's canonical
//! digest, on baselines of a 20,000-file tree made by the real binary (one
//! in a hundred files edited between the two). `cargo bench --bench
//! compare`; `cargo test --benches` runs each once.

use std::path::Path;
use std::process::Command;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tripseal::baseline::Baseline;

const FILES: usize = 20_000;

fn init(rules: &Path, db: &Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_tripseal"))
        .args(["init", "--force", "--rules"])
        .arg(rules)
        .arg("--db")
        .arg(db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn baselines(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    for i in 0..FILES {
        let sub = tree.join(format!("d{:03}", i % 200));
        if i < 200 {
            std::fs::create_dir_all(&sub).unwrap();
        }
        std::fs::write(
            sub.join(format!("f{i:05}.py")),
            format!("def task_{i}():\n    return {i}\n"),
        )
        .unwrap();
    }
    let rules = dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        format!(
            "[[rule]]\nname = \"tree\"\npaths = [\"{0}\", \"{0}/**\"]\ncheck = [\"type\", \"mode\", \"uid\", \"gid\", \"size\", \"mtime\", \"ctime\", \"inode\", \"nlink\", \"link\", \"hash\"]\n",
            tree.display()
        ),
    )
    .unwrap();
    let (old_db, new_db) = (dir.path().join("old.db"), dir.path().join("new.db"));
    init(&rules, &old_db);
    for i in (0..FILES).step_by(100) {
        let f = tree.join(format!("d{:03}/f{i:05}.py", i % 200));
        std::fs::write(f, "edited\n").unwrap();
    }
    init(&rules, &new_db);
    let old = Baseline::open(&old_db).unwrap();
    let new = Baseline::open(&new_db).unwrap();

    let mut group = c.benchmark_group("baseline");
    group.throughput(Throughput::Elements(FILES as u64));
    group.sample_size(20);
    group.bench_function("compare", |b| {
        b.iter(|| {
            let mut drifted = 0;
            tripseal::compare::compare(&old, &new, |_| {
                drifted += 1;
                Ok(())
            })
            .unwrap();
            assert_eq!(drifted, FILES / 100);
        })
    });
    group.bench_function("digest", |b| {
        b.iter(|| tripseal::seal::digest(&old).unwrap())
    });
    group.finish();
}

criterion_group!(benches, baselines);
criterion_main!(benches);
