//! Engine benchmarks on a generated estate of 100,000 stations, 10,000 principals and
//! 50,000 role assignments under the `virta` preset.
//!
//! Layout: root → group → 100 organisations → 10 sub-organisations each → 100 stations each.
//! Every principal holds five roles, mostly on sub-organisations and sometimes on an
//! organisation, chosen by a fixed pseudo-random sequence so runs are comparable.
//!
//! Every benchmark runs twice: once timed by the wall clock (criterion's default) and once by
//! the CPU time of the benchmarking thread (`*-cpu` groups), which stays meaningful on a
//! machine shared with other busy processes.

use std::hint::black_box;
use std::sync::OnceLock;
use std::time::Duration;

use cpu_time::ThreadTime;
use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use voltgate_policy::{Action, Engine, Preset, PrincipalKind, Resource};

const ORGANISATIONS: usize = 100;
const SUB_ORGANISATIONS_PER_ORGANISATION: usize = 10;
const STATIONS_PER_SUB_ORGANISATION: usize = 100;
const PRINCIPALS: usize = 10_000;
const ROLES_PER_PRINCIPAL: usize = 5;
const REGULAR_ROLES: [&str; 6] = [
    "driver-manager",
    "charging-manager",
    "technician",
    "financial-support",
    "viewer",
    "paid-module-activator",
];

/// A fixed xorshift sequence.
struct Sequence(u64);

impl Sequence {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }
}

struct Estate {
    engine: Engine,
    /// (principal, station) pairs where `charger.view` is allowed.
    allowed: Vec<(String, Resource)>,
    /// (principal, station) pairs where it is denied.
    denied: Vec<(String, Resource)>,
}

fn sub_organisation(organisation: usize, sub: usize) -> String {
    format!("org-{organisation}-{sub}")
}

fn station(organisation: usize, sub: usize, index: usize) -> String {
    format!("st-{organisation}-{sub}-{index}")
}

fn build_estate() -> Estate {
    let preset = Preset::builtin("virta").expect("virta preset loads");
    let mut engine = Engine::new(preset);
    engine
        .add_scope("group", "organisation", "root")
        .expect("group");
    for organisation in 0..ORGANISATIONS {
        let organisation_id = format!("org-{organisation}");
        engine
            .add_scope(&organisation_id, "organisation", "group")
            .expect("organisation");
        for sub in 0..SUB_ORGANISATIONS_PER_ORGANISATION {
            let sub_id = sub_organisation(organisation, sub);
            engine
                .add_scope(&sub_id, "organisation", &organisation_id)
                .expect("sub-organisation");
            for index in 0..STATIONS_PER_SUB_ORGANISATION {
                engine
                    .add_scope(&station(organisation, sub, index), "station", &sub_id)
                    .expect("station");
            }
        }
    }

    let mut sequence = Sequence(0x9e37_79b9_7f4a_7c15);
    let mut held_sub_organisations: Vec<Vec<(usize, usize)>> = Vec::with_capacity(PRINCIPALS);
    for principal in 0..PRINCIPALS {
        let id = format!("user-{principal}");
        let organisation = sequence.below(ORGANISATIONS);
        let home = sub_organisation(
            organisation,
            sequence.below(SUB_ORGANISATIONS_PER_ORGANISATION),
        );
        engine
            .add_principal(&id, PrincipalKind::Operator, &home)
            .expect("principal");
        let mut held = Vec::new();
        for _ in 0..ROLES_PER_PRINCIPAL {
            let role = REGULAR_ROLES[sequence.below(REGULAR_ROLES.len())];
            let organisation = sequence.below(ORGANISATIONS);
            if sequence.below(10) == 0 {
                engine
                    .assign(&id, role, &format!("org-{organisation}"))
                    .expect("organisation assignment");
            } else {
                let sub = sequence.below(SUB_ORGANISATIONS_PER_ORGANISATION);
                engine
                    .assign(&id, role, &sub_organisation(organisation, sub))
                    .expect("sub-organisation assignment");
                if role != "paid-module-activator" {
                    held.push((organisation, sub));
                }
            }
        }
        held_sub_organisations.push(held);
    }
    engine
        .add_principal("group-admin", PrincipalKind::Operator, "group")
        .expect("group admin");
    engine
        .assign("group-admin", "administrator", "group")
        .expect("group admin role");

    let mut allowed = Vec::new();
    let mut denied = Vec::new();
    for (principal, held) in held_sub_organisations.iter().enumerate().take(2048) {
        let id = format!("user-{principal}");
        if let Some(&(organisation, sub)) = held.first() {
            let target = Resource::scope(station(
                organisation,
                sub,
                sequence.below(STATIONS_PER_SUB_ORGANISATION),
            ));
            if engine.check(&id, Action::ChargerView, &target) {
                allowed.push((id.clone(), target));
            }
        }
        let target = Resource::scope(station(
            sequence.below(ORGANISATIONS),
            sequence.below(SUB_ORGANISATIONS_PER_ORGANISATION),
            sequence.below(STATIONS_PER_SUB_ORGANISATION),
        ));
        if !engine.check(&id, Action::ChargerView, &target) {
            denied.push((id, target));
        }
    }
    assert!(
        allowed.len() > 1000 && denied.len() > 1000,
        "estate gives both outcomes"
    );
    Estate {
        engine,
        allowed,
        denied,
    }
}

fn estate() -> &'static Estate {
    static ESTATE: OnceLock<Estate> = OnceLock::new();
    ESTATE.get_or_init(build_estate)
}

/// Criterion measurement: CPU time of the benchmarking thread.
struct ThreadCpuTime;

struct NanosecondFormatter;

impl ValueFormatter for NanosecondFormatter {
    fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
        let (factor, unit) = if typical < 1e3 {
            (1.0, "ns")
        } else if typical < 1e6 {
            (1e-3, "µs")
        } else if typical < 1e9 {
            (1e-6, "ms")
        } else {
            (1e-9, "s")
        };
        for value in values {
            *value *= factor;
        }
        unit
    }

    fn scale_throughputs(
        &self,
        _typical: f64,
        throughput: &Throughput,
        values: &mut [f64],
    ) -> &'static str {
        let per_iteration = match throughput {
            Throughput::Elements(count)
            | Throughput::Bytes(count)
            | Throughput::BytesDecimal(count) => *count as f64,
        };
        for value in values {
            *value = per_iteration * 1e9 / *value;
        }
        "elem/s"
    }

    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

impl Measurement for ThreadCpuTime {
    type Intermediate = ThreadTime;
    type Value = u64;

    fn start(&self) -> ThreadTime {
        ThreadTime::now()
    }

    fn end(&self, started: ThreadTime) -> u64 {
        u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn add(&self, first: &u64, second: &u64) -> u64 {
        first + second
    }

    fn zero(&self) -> u64 {
        0
    }

    fn to_f64(&self, value: &u64) -> f64 {
        *value as f64
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        &NanosecondFormatter
    }
}

fn bench_check<M: Measurement>(criterion: &mut Criterion<M>, suffix: &str) {
    let estate = estate();
    let mut group = criterion.benchmark_group(format!("check{suffix}"));
    for (name, cases, expected) in [
        ("allowed", &estate.allowed, true),
        ("denied", &estate.denied, false),
    ] {
        let mut next = 0usize;
        group.bench_function(name, |bencher| {
            bencher.iter(|| {
                let (principal, resource) = &cases[next % cases.len()];
                next = next.wrapping_add(1);
                let outcome = estate.engine.check(
                    black_box(principal),
                    black_box(Action::ChargerView),
                    black_box(resource),
                );
                debug_assert_eq!(outcome, expected);
                outcome
            });
        });
    }
    group.finish();
}

fn bench_visible<M: Measurement>(criterion: &mut Criterion<M>, suffix: &str) {
    let estate = estate();
    let mut group = criterion.benchmark_group(format!("visible{suffix}"));
    group.sample_size(20);
    assert_eq!(
        estate.engine.visible("group-admin", "station").len(),
        ORGANISATIONS * SUB_ORGANISATIONS_PER_ORGANISATION * STATIONS_PER_SUB_ORGANISATION
    );
    group.bench_function("all-stations", |bencher| {
        bencher.iter(|| {
            estate
                .engine
                .visible(black_box("group-admin"), black_box("station"))
        });
    });
    group.bench_function("typical-operator", |bencher| {
        bencher.iter(|| {
            estate
                .engine
                .visible(black_box("user-42"), black_box("station"))
        });
    });
    group.finish();
}

/// Issue #14: a site admin builds a chain of 24,000 nested sites under `connect`, whose site
/// admins see upwards. `per-scope-can-see` is how `GET /scopes` listed them before (one
/// `can_see` per stored scope, each walking up the chain); `visible-scopes` is the one-pass
/// listing it uses now.
const CHAIN: usize = 24_000;

fn deep_chain() -> &'static Engine {
    static CHAIN_ENGINE: OnceLock<Engine> = OnceLock::new();
    CHAIN_ENGINE.get_or_init(|| {
        let mut engine = Engine::new(Preset::builtin("connect").expect("builtin preset loads"));
        engine.add_scope("site-0", "site", "root").unwrap();
        for index in 1..CHAIN {
            engine
                .add_scope(
                    &format!("site-{index}"),
                    "site",
                    &format!("site-{}", index - 1),
                )
                .unwrap();
        }
        engine
            .add_principal("builder", PrincipalKind::Operator, "site-0")
            .unwrap();
        engine.assign("builder", "site-admin", "site-0").unwrap();
        engine
    })
}

fn bench_deep_tree<M: Measurement>(criterion: &mut Criterion<M>, suffix: &str) {
    let engine = deep_chain();
    let ids: Vec<String> = engine.scopes().map(|(id, _, _)| id.to_owned()).collect();
    let mut group = criterion.benchmark_group(format!("deep-tree{suffix}"));
    group.sample_size(10);
    assert_eq!(engine.visible_scopes("builder", None).len(), CHAIN);
    group.bench_function("per-scope-can-see", |bencher| {
        bencher.iter(|| {
            ids.iter()
                .filter(|id| engine.can_see(black_box("builder"), &Resource::scope(id.as_str())))
                .count()
        });
    });
    group.bench_function("visible-scopes", |bencher| {
        bencher.iter(|| engine.visible_scopes(black_box("builder"), None).len());
    });
    group.finish();
}

fn bench_preset_load<M: Measurement>(criterion: &mut Criterion<M>, suffix: &str) {
    let mut group = criterion.benchmark_group(format!("preset-load{suffix}"));
    group.sample_size(30);
    for &name in Preset::BUILTIN {
        group.bench_function(name, |bencher| {
            bencher.iter(|| Preset::builtin(black_box(name)).expect("builtin preset loads"));
        });
    }
    group.finish();
}

fn wall_clock(criterion: &mut Criterion<WallTime>) {
    bench_check(criterion, "");
    bench_visible(criterion, "");
    bench_deep_tree(criterion, "");
    bench_preset_load(criterion, "");
}

fn cpu_time(criterion: &mut Criterion<ThreadCpuTime>) {
    bench_check(criterion, "-cpu");
    bench_visible(criterion, "-cpu");
    bench_deep_tree(criterion, "-cpu");
    bench_preset_load(criterion, "-cpu");
}

criterion_group! {
    name = wall;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = wall_clock
}
criterion_group! {
    name = cpu;
    config = Criterion::default()
        .with_measurement(ThreadCpuTime)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = cpu_time
}
criterion_main!(wall, cpu);
