//! Write throughput of the hot store paths (audit appends, transaction start/meter/stop) on an
//! in-memory database and on a WAL file with `synchronous=FULL` and `NORMAL`, one caller at a
//! time and with concurrent callers. Results are recorded in BENCHMARKS.md.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use serde_json::json;
use voltgate_store::{open, AuditRecord, NewTransaction, Store};

/// Numbers of concurrent callers each write path is measured with.
const CALLERS: [u64; 3] = [1, 8, 64];

struct Target {
    name: &'static str,
    store: Arc<dyn Store>,
    _dir: Option<tempfile::TempDir>,
}

fn targets(runtime: &tokio::runtime::Runtime) -> Vec<Target> {
    let mut targets = vec![Target {
        name: "memory",
        store: runtime.block_on(open("sqlite::memory:")).unwrap(),
        _dir: None,
    }];
    for (name, query) in [("file-full", ""), ("file-normal", "?synchronous=normal")] {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}{query}", dir.path().join("bench.db").display());
        targets.push(Target {
            name,
            store: runtime.block_on(open(&url)).unwrap(),
            _dir: Some(dir),
        });
    }
    targets
}

fn audit_record(n: u64) -> AuditRecord {
    AuditRecord {
        at: "2025-03-01T10:00:00Z".to_owned(),
        principal: format!("operator-{}", n % 100),
        action: "command.reset".to_owned(),
        resource: format!("charger:CP-{}", n % 1000),
        allowed: true,
        reason: "holds technician on org-1".to_owned(),
        outcome: None,
        request_id: Some(format!("req-{n}")),
    }
}

/// One charging session: start, one meter-values message, stop (three writes).
async fn session(store: &dyn Store, n: u64) {
    let charger = format!("CP-{}", n % 1000);
    let tx = store
        .start_transaction(&NewTransaction {
            charger: charger.clone(),
            key: format!("msg-{n}"),
            connector: 1,
            id_token: Some("RFID-1".to_owned()),
            principal: Some("driver-1".to_owned()),
            meter_start: Some(0.0),
            started_at: "2025-03-01T10:00:00Z".to_owned(),
        })
        .await
        .unwrap();
    store
        .add_meter_values(
            &charger,
            tx.id,
            Some(1),
            &json!([{"sampledValue": [{"value": "1200", "measurand": "Energy.Active.Import.Register"}]}]),
            "2025-03-01T10:05:00Z",
        )
        .await
        .unwrap();
    store
        .stop_transaction(
            &charger,
            tx.id,
            Some(1200.0),
            "2025-03-01T11:00:00Z",
            Some("Local"),
        )
        .await
        .unwrap();
}

/// Runs `iterations` operations split over `callers` tasks and returns the elapsed time.
fn run<F, Fut>(
    runtime: &tokio::runtime::Runtime,
    store: &Arc<dyn Store>,
    counter: &Arc<AtomicU64>,
    iterations: u64,
    callers: u64,
    operation: F,
) -> Duration
where
    F: Fn(Arc<dyn Store>, u64) -> Fut + Copy + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    runtime.block_on(async {
        let start = Instant::now();
        let mut tasks = Vec::new();
        for caller in 0..callers {
            let share = iterations / callers + u64::from(caller < iterations % callers);
            let store = Arc::clone(store);
            let counter = Arc::clone(counter);
            tasks.push(tokio::spawn(async move {
                for _ in 0..share {
                    let n = counter.fetch_add(1, Ordering::Relaxed);
                    operation(Arc::clone(&store), n).await;
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        start.elapsed()
    })
}

fn bench_writes(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let counter = Arc::new(AtomicU64::new(0));
    let targets = targets(&runtime);

    let mut group = c.benchmark_group("audit_append");
    group.throughput(Throughput::Elements(1));
    for target in &targets {
        for callers in CALLERS {
            group.bench_function(
                BenchmarkId::new(target.name, format!("{callers}-callers")),
                |b| {
                    b.iter_custom(|iterations| {
                        run(
                            &runtime,
                            &target.store,
                            &counter,
                            iterations,
                            callers,
                            |store, n| async move {
                                store.append_audit(&audit_record(n)).await.unwrap();
                            },
                        )
                    })
                },
            );
        }
    }
    group.finish();

    let mut group = c.benchmark_group("transaction_session");
    group.throughput(Throughput::Elements(1));
    for target in &targets {
        for callers in CALLERS {
            group.bench_function(
                BenchmarkId::new(target.name, format!("{callers}-callers")),
                |b| {
                    b.iter_custom(|iterations| {
                        run(
                            &runtime,
                            &target.store,
                            &counter,
                            iterations,
                            callers,
                            |store, n| async move {
                                session(store.as_ref(), n).await;
                            },
                        )
                    })
                },
            );
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = bench_writes
}
criterion_main!(benches);
