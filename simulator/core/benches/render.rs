//! Render + CRC throughput per profile: telegrams per second from fixed readings, the fast path
//! every output uses (`cargo bench --bench render`).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use p1sim_core::builtin;
use p1sim_core::meter::Meter;
use p1sim_core::render::Template;

fn render(c: &mut Criterion) {
    let mut group = c.benchmark_group("render");
    for p in builtin::all().unwrap() {
        let mut meter = Meter::new(&p, p.household.clone(), 1, 1_768_474_800);
        let readings = meter.readings().clone();
        let template = Template::compile(&p);
        let mut out = Vec::with_capacity(4096);
        group.throughput(Throughput::Elements(1));
        group.bench_function(&p.name, |b| {
            b.iter(|| {
                out.clear();
                template.render(&p, black_box(&readings), &mut out);
                black_box(out.len())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, render);
criterion_main!(benches);
