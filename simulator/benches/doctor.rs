//! temp
use std::time::Instant;
fn main() {
    use p1sim::doctor::predict::Model;
    use p1sim_core::spec::LineSettings;
    for s in ["115200-8N1", "9600-7E1"] {
        let (b, f) = s.split_once('-').unwrap();
        let line = LineSettings { baud: b.parse().unwrap(), framing: f.parse().unwrap() };
        let t = Instant::now();
        let m = Model::build(line).unwrap();
        println!("{s}: {:?} {} predictions", t.elapsed(), m.predictions.len());
    }
    let t = Instant::now();
    let _ = p1sim::doctor::predict::samples();
    println!("samples {:?}", t.elapsed());
}
