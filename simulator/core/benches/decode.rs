//! Decode throughput in bytes per second, every object parsed: the reference decoder against the
//! `dsmr5` crate on the same DSMR 5 telegram (`cargo bench --bench decode`).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use p1sim_core::decode::{Decoder, Event};

mod common;
use common::stream;

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    for profile in ["iskra-am550", "sagemcom-t210d", "sagemcom-s211-be", "sagemcom-t211-se", "kamstrup-162"] {
        let bytes = stream(profile, 1000);
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(format!("p1sim/{profile}"), |b| {
            let mut d = Decoder::new();
            b.iter(|| {
                let mut objects = 0usize;
                d.feed(black_box(&bytes), |ev| {
                    if let Event::Telegram(f) = ev {
                        // Touch every object and value, as a consumer would.
                        for o in f.objects() {
                            objects += o.values().map(|(t, _)| t.len()).sum::<usize>() + usize::from(o.obis.is_some());
                        }
                    }
                });
                black_box(objects)
            })
        });
    }
    // The same telegram through dsmr5 (which needs exactly one telegram per Reader).
    let one = stream("iskra-am550", 1);
    group.throughput(Throughput::Bytes(one.len() as u64));
    group.bench_function("dsmr5/iskra-am550", |b| {
        b.iter(|| {
            let mut objects = 0usize;
            // dsmr5 0.4 reads from an iterator of io-style results.
            let bytes = black_box(one.iter().map(|&b| Ok::<u8, ()>(b)));
            for readout in dsmr5::Reader::new(bytes) {
                let readout = readout.expect("dsmr5 reads the telegram");
                let telegram = readout.to_telegram().expect("dsmr5 parses the telegram");
                for obj in telegram.objects() {
                    objects += usize::from(obj.is_ok());
                }
            }
            black_box(objects)
        })
    });
    group.bench_function("p1sim/iskra-am550-single", |b| {
        let mut d = Decoder::new();
        b.iter(|| {
            let mut objects = 0usize;
            d.feed(black_box(&one), |ev| {
                if let Event::Telegram(f) = ev {
                    for o in f.objects() {
                        objects += o.values().map(|(t, _)| t.len()).sum::<usize>() + usize::from(o.obis.is_some());
                    }
                }
            });
            black_box(objects)
        })
    });
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
