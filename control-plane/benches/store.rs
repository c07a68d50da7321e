//! Store throughput, redb against etcd in the same run: writes and reads per second, 64 at a time (the
//! API server's requests arrive concurrently; redb commits concurrent writes together).
//!
//! `scripts/bench.sh` runs it with an etcd started on loopback (`GLASSHOUSE_TEST_ETCD`); without one,
//! only redb is measured.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use control_plane::store::Store;
use control_plane::store::redb::RedbStore;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const BATCH: u64 = 64;

fn value() -> Bytes {
    // About the size of a small Deployment as stored.
    Bytes::from(vec![b'x'; 1500])
}

fn backends(
    runtime: &tokio::runtime::Runtime,
) -> Vec<(&'static str, Arc<dyn Store>, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let redb: Arc<dyn Store> = Arc::new(RedbStore::open(&dir.path().join("bench.redb")).unwrap());
    let mut out = vec![("redb", redb, Some(dir))];
    #[cfg(feature = "etcd")]
    if let Ok(endpoint) = std::env::var("GLASSHOUSE_TEST_ETCD") {
        let prefix = format!("/bench-{}", uuid::Uuid::new_v4());
        let etcd = runtime
            .block_on(control_plane::store::etcd::EtcdStore::connect(
                &[endpoint],
                &prefix,
            ))
            .expect("the etcd named by GLASSHOUSE_TEST_ETCD");
        out.push(("etcd", Arc::new(etcd), None));
    }
    let _ = runtime;
    out
}

fn store_throughput(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for (name, store, _dir) in backends(&runtime) {
        let mut group = c.benchmark_group(format!("store/{name}"));
        group.throughput(Throughput::Elements(BATCH));
        group.sample_size(20);
        let counter = Arc::new(AtomicU64::new(0));
        group.bench_function("create", |b| {
            b.to_async(&runtime).iter(|| {
                let store = store.clone();
                let counter = counter.clone();
                async move {
                    let writes = (0..BATCH).map(|_| {
                        let key = format!("/bench/{:012}", counter.fetch_add(1, Ordering::Relaxed));
                        let store = store.clone();
                        tokio::spawn(async move { store.create(&key, value()).await.unwrap() })
                    });
                    for write in writes.collect::<Vec<_>>() {
                        write.await.unwrap();
                    }
                }
            })
        });
        let written = counter.load(Ordering::Relaxed).max(1);
        group.bench_function("get", |b| {
            let next = AtomicU64::new(0);
            b.to_async(&runtime).iter(|| {
                let store = store.clone();
                let start = next.fetch_add(BATCH, Ordering::Relaxed);
                async move {
                    let reads = (0..BATCH).map(|i| {
                        let key = format!("/bench/{:012}", (start + i) % written);
                        let store = store.clone();
                        tokio::spawn(async move { store.get(&key).await.unwrap().expect("written") })
                    });
                    for read in reads.collect::<Vec<_>>() {
                        read.await.unwrap();
                    }
                }
            })
        });
        group.finish();
    }
}

criterion_group!(benches, store_throughput);
criterion_main!(benches);
