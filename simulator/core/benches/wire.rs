//! Wire-model throughput as a multiple of real time (`cargo bench --bench wire`): a DSMR 5
//! telegram encoded at 115200 8N1 onto a P1 line and received by the 16× UART model, and the
//! rig's slot encoder alone.
//!
//! Criterion reports characters per second; 11,520 characters per second is real time at
//! 115200 8N1, so the multiple of real time is the reported rate divided by 11,520.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use p1sim_core::spec::{Framing, LineSettings};
use p1sim_core::wire::{FaultPlan, LineEncoder, Polarity, Receiver, ReceiverConfig, Run, SlotConfig, SlotEncoder};

mod common;
use common::stream;

const LINE: LineSettings = LineSettings { baud: 115_200, framing: Framing::EIGHT_N1 };

fn wire(c: &mut Criterion) {
    let bytes = stream("iskra-am550", 20);
    let mut group = c.benchmark_group("wire");
    group.throughput(Throughput::Elements(bytes.len() as u64));

    group.bench_function("encode+receive/115200-8N1", |b| {
        b.iter(|| {
            let mut enc = LineEncoder::new(LINE, Polarity::Inverted, FaultPlan::CLEAN).unwrap();
            let cfg = ReceiverConfig { input: Polarity::Inverted, ..ReceiverConfig::new(LINE) };
            let mut rx = Receiver::new(cfg).unwrap();
            let mut got = 0usize;
            let mut sink = |r: Run| rx.push(r, &mut |c| got += usize::from(c.byte));
            enc.idle(10_000_000, &mut sink);
            enc.encode(black_box(&bytes), &mut sink);
            enc.idle(10_000_000, &mut sink);
            enc.flush(&mut sink);
            black_box(got)
        })
    });

    group.bench_function("slots/115200-8N1-8x", |b| {
        let mut words = vec![0u32; 4096];
        b.iter(|| {
            let mut enc = SlotEncoder::new(SlotConfig::p1(LINE), FaultPlan::CLEAN).unwrap();
            let mut src = black_box(&bytes).iter().copied();
            let mut sum = 0u32;
            loop {
                let f = enc.fill(&mut words, &mut src);
                sum = words[..f.words].iter().fold(sum, |s, w| s.wrapping_add(*w));
                if f.drained {
                    break;
                }
            }
            black_box(sum)
        })
    });
    group.finish();
}

criterion_group!(benches, wire);
criterion_main!(benches);
