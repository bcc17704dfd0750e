//! Inputs the benchmarks share: byte streams of real telegrams from built-in profiles.

use p1sim_core::generator::Generator;

/// `n` consecutive telegrams of a built-in profile, concatenated, from a fixed seed and start
/// (2026-01-15 11:00 UTC) so every run measures the same bytes.
pub fn stream(profile: &str, n: usize) -> Vec<u8> {
    let p = p1sim_core::builtin::get(profile).unwrap().unwrap();
    let mut g = Generator::new(p.clone(), p.household.clone(), 1, 1_768_474_800, None).unwrap();
    let mut out = Vec::new();
    for _ in 0..n {
        g.next_into(&mut out);
    }
    out
}
