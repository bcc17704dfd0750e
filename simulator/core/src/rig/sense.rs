//! The rig's electrical measurements (protocol version 2): the reference sense circuit, the
//! order in which the firmware takes the readings, and their conversion to units, written
//! against a small hardware trait so the same sequence runs on the RP2040, against mock
//! hardware in tests, and against a board model in the virtual twin.
//!
//! The data-line sequence: with the line pulled low (mark, as it idles) the edge timers are
//! armed; the line is released and, once it has settled, read with only the sense divider on
//! it, then with the known load switched in; then pulled low again. The timers give the time
//! from each change of the rig's own output to the line crossing the sense threshold. The
//! Request and output levels are read with the line idle, when the board's TTL output sits at
//! its high level.

use heapless::Vec;

use super::{Circuit, MAX_READINGS, Quantity, Reading};

/// The reference rig's data-line sense circuit (rig-firmware/README.md): a 150 kΩ / 150 kΩ
/// divider to ADC0 and GP6 (300 kΩ on the line), a 10 kΩ load switched in by a MOSFET, and GP6's
/// input threshold of about 1.6 V behind the divider: 3.2 V on the line.
pub const RIG_CIRCUIT: Circuit = Circuit { sense_input_ohms: 300_000, known_load_ohms: 10_000, threshold_mv: 3_200 };

/// Every divider in front of the rig's ADC inputs (150 kΩ / 150 kΩ on the data line, Request and
/// the board's output) halves the voltage: the ADC's 3.3 V full scale is 6.6 V on the line, above
/// the 5.5 V the port allows anywhere.
pub const DIVIDER_NUM: u32 = 2;
pub const DIVIDER_DEN: u32 = 1;

/// The ADC's reference and width: 3.3 V, 12 bits.
pub const ADC_REF_MV: u32 = 3_300;
pub const ADC_COUNTS: u32 = 4_096;

/// ADC samples averaged per reading.
pub const ADC_SAMPLES: u32 = 16;

/// How long the line settles after each change before it is read, in microseconds: a 47 kΩ
/// pull-up on 10 m of cable (RC about 25 µs) has settled to a part in 10^17.
pub const SETTLE_US: u32 = 1_000;

/// PIO cycles per iteration of the edge timers' counting loops (`jmp pin` + `jmp x--`).
pub const RISE_LOOP_CYCLES: u32 = 2;
pub const FALL_LOOP_CYCLES: u32 = 2;

/// An ADC input of the rig.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    /// ADC0: the data line's sense divider.
    Line,
    /// ADC1: the Request divider.
    Request,
    /// ADC2: the capture input's divider (the board's TTL output).
    Output,
}

/// Whether the sense divider is fitted, from one raw ADC0 conversion taken with the pad's
/// pull-up (50-80 kΩ to 3.3 V) on and the data line held low. Through the divider the pin sees
/// 75 kΩ to ground and sits at 1.6-2.0 V; without it (first-generation rig hardware running
/// this firmware) it floats up to the rail. The boundary, 2.8 V, leaves room for either.
pub fn divider_fitted(raw: u16) -> bool {
    const BOUNDARY_MV: u32 = 2_800;
    u32::from(raw & 0x0FFF) * ADC_REF_MV / ADC_COUNTS < BOUNDARY_MV
}

/// What the sequence needs from the rig's hardware.
#[allow(async_fn_in_trait)] // The firmware's executor is single-threaded; nothing needs `Send`.
pub trait SenseHw {
    /// Pulls the data line low (the meter sinking: mark, the idle state).
    fn sink(&mut self);
    /// Releases the data line (space): only the board pulls it up.
    fn release(&mut self);
    /// Switches the known load onto the data line, or off.
    fn set_load(&mut self, on: bool);
    /// Arms the edge timers: each starts counting at the rig's next change of the line.
    fn arm_edges(&mut self);
    /// Loop iterations from the last release to the line crossing the threshold upwards, if it
    /// did; disarms that timer.
    fn rise_count(&mut self) -> Option<u32>;
    /// Loop iterations from the last sink to the line falling below the threshold, if it did;
    /// disarms that timer.
    fn fall_count(&mut self) -> Option<u32>;
    /// One raw 12-bit ADC conversion.
    async fn adc(&mut self, input: Input) -> u16;
    async fn delay_us(&mut self, us: u32);
}

/// Millivolts on the line from a sum of `n` raw ADC samples behind the 1:2 divider.
pub fn adc_to_mv(sum: u32, n: u32) -> i32 {
    let n = u64::from(n.max(1));
    let mv = u64::from(sum) * u64::from(ADC_REF_MV) * u64::from(DIVIDER_NUM);
    (mv / (u64::from(ADC_COUNTS) * u64::from(DIVIDER_DEN)) / n) as i32
}

/// The smallest step of a line voltage reading, in millivolts (one ADC count, rounded up).
pub const fn adc_resolution_mv() -> u32 {
    (ADC_REF_MV * DIVIDER_NUM).div_ceil(ADC_COUNTS * DIVIDER_DEN)
}

/// Nanoseconds from a count of timer loop iterations of `cycles` PIO cycles each at `clk_hz`.
pub fn count_to_ns(count: u32, cycles: u32, clk_hz: u32) -> i32 {
    let ns = u64::from(count) * u64::from(cycles) * 1_000_000_000 / u64::from(clk_hz.max(1));
    ns.min(i32::MAX as u64) as i32
}

/// The timers' resolution in nanoseconds: one loop iteration.
pub fn timer_resolution_ns(cycles: u32, clk_hz: u32) -> u32 {
    (u64::from(cycles) * 1_000_000_000).div_ceil(u64::from(clk_hz.max(1))) as u32
}

async fn read_mv<H: SenseHw>(hw: &mut H, input: Input) -> i32 {
    let mut sum = 0u32;
    for _ in 0..ADC_SAMPLES {
        sum += u32::from(hw.adc(input).await & 0x0FFF);
    }
    adc_to_mv(sum, ADC_SAMPLES)
}

/// Takes the data line, Request and output readings, in that order, and leaves the line low
/// (idle) and the load off. `clk_hz` is the PIO clock the edge timers count.
pub async fn measure_line<H: SenseHw>(hw: &mut H, clk_hz: u32) -> Vec<Reading, MAX_READINGS> {
    let mv = adc_resolution_mv();
    hw.set_load(false);
    hw.sink();
    hw.delay_us(SETTLE_US).await;
    hw.arm_edges();
    hw.release();
    hw.delay_us(SETTLE_US).await;
    let rise = hw.rise_count().map(|c| count_to_ns(c, RISE_LOOP_CYCLES, clk_hz));
    let open = read_mv(hw, Input::Line).await;
    hw.set_load(true);
    hw.delay_us(SETTLE_US).await;
    let loaded = read_mv(hw, Input::Line).await;
    hw.set_load(false);
    hw.delay_us(SETTLE_US).await;
    hw.sink();
    hw.delay_us(SETTLE_US).await;
    let fall = hw.fall_count().map(|c| count_to_ns(c, FALL_LOOP_CYCLES, clk_hz));
    let request = read_mv(hw, Input::Request).await;
    let output = read_mv(hw, Input::Output).await;
    let mut out = Vec::new();
    for (quantity, value, resolution) in [
        (Quantity::LineOpen, Some(open), mv),
        (Quantity::LineLoaded, Some(loaded), mv),
        (Quantity::Rise, rise, timer_resolution_ns(RISE_LOOP_CYCLES, clk_hz)),
        (Quantity::Fall, fall, timer_resolution_ns(FALL_LOOP_CYCLES, clk_hz)),
        (Quantity::Request, Some(request), mv),
        (Quantity::OutputHigh, Some(output), mv),
    ] {
        // Six readings into a vector of MAX_READINGS: always room.
        let _ = out.push(Reading { quantity, value, resolution });
    }
    out
}

/// The raw ADC count a line at `mv` gives behind the 1:2 divider (what a model of the rig
/// returns for [`SenseHw::adc`]).
pub fn mv_to_adc(mv: f64) -> u16 {
    let at_pin = mv.max(0.0) * f64::from(DIVIDER_DEN) / f64::from(DIVIDER_NUM);
    let counts = at_pin * f64::from(ADC_COUNTS) / f64::from(ADC_REF_MV);
    (counts as u32).min(ADC_COUNTS - 1) as u16
}

/// A count of timer iterations for `seconds` (what a model returns for the edge timers).
pub fn seconds_to_count(seconds: f64, cycles: u32, clk_hz: u32) -> u32 {
    let count = seconds.max(0.0) * f64::from(clk_hz) / f64::from(cycles.max(1));
    if count >= f64::from(u32::MAX) { u32::MAX } else { count as u32 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::future::Future;
    use core::pin::pin;
    use core::task::{Context, Poll, Waker};

    /// Runs a future that never waits (mock hardware) to its end.
    fn ready<F: Future>(f: F) -> F::Output {
        let mut f = pin!(f);
        match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(v) => v,
            Poll::Pending => panic!("the mock hardware never waits"),
        }
    }

    /// A line with a 4.7 kΩ pull-up to 5 V behind the reference sense circuit, rising in 1.5 µs.
    #[derive(Default)]
    struct Mock {
        released: bool,
        load: bool,
        armed: bool,
        changes: usize,
        log: std::vec::Vec<&'static str>,
    }

    impl SenseHw for Mock {
        fn sink(&mut self) {
            self.released = false;
            self.changes += usize::from(self.armed);
            self.log.push("sink");
        }
        fn release(&mut self) {
            self.released = true;
            self.changes += usize::from(self.armed);
            self.log.push("release");
        }
        fn set_load(&mut self, on: bool) {
            self.load = on;
            self.log.push(if on { "load on" } else { "load off" });
        }
        fn arm_edges(&mut self) {
            self.armed = true;
            self.log.push("arm");
        }
        fn rise_count(&mut self) -> Option<u32> {
            Some(seconds_to_count(1.5e-6, RISE_LOOP_CYCLES, 125_000_000))
        }
        fn fall_count(&mut self) -> Option<u32> {
            (self.changes >= 2).then_some(3)
        }
        async fn adc(&mut self, input: Input) -> u16 {
            let (rp, r) = (4_700.0, 300_000.0);
            let mv = match input {
                Input::Line if !self.released => 5.0,
                Input::Line => {
                    let g = 1.0 / rp + 1.0 / r + if self.load { 1.0 / 10_000.0 } else { 0.0 };
                    5_000.0 / rp / g
                }
                Input::Request => 5_010.0,
                Input::Output => 3_300.0,
            };
            mv_to_adc(mv)
        }
        async fn delay_us(&mut self, _: u32) {}
    }

    #[test]
    fn the_sequence_reads_what_the_circuit_shows() {
        let mut hw = Mock::default();
        let readings = ready(measure_line(&mut hw, 125_000_000));
        let get = |q| readings.iter().find(|r| r.quantity == q).copied().unwrap();
        // 4.7k against the 300k divider: 4923 mV open; with 10k as well: 3365 mV (within two counts).
        let open = get(Quantity::LineOpen).value.unwrap();
        let loaded = get(Quantity::LineLoaded).value.unwrap();
        assert!((open - 4_923).abs() <= 2, "{open}");
        assert!((loaded - 3_365).abs() <= 2, "{loaded}");
        assert_eq!(get(Quantity::Rise).value, Some(1_488), "1.5 us in 16 ns steps, rounded down");
        assert_eq!(get(Quantity::Rise).resolution, 16);
        assert_eq!(get(Quantity::Fall).value, Some(48));
        assert!((get(Quantity::Request).value.unwrap() - 5_010).abs() <= 2);
        assert!((get(Quantity::OutputHigh).value.unwrap() - 3_300).abs() <= 2);
        assert_eq!(get(Quantity::LineOpen).resolution, 2);
        // The line ends low (idle) with the load off, and the load was on only while released.
        assert_eq!(hw.log.last(), Some(&"sink"));
        assert!(!hw.load);
        let on = hw.log.iter().position(|s| *s == "load on").unwrap();
        let release = hw.log.iter().position(|s| *s == "release").unwrap();
        assert!(release < on && hw.log[on..].contains(&"load off"));
    }

    #[test]
    fn conversions_round_trip_within_a_count() {
        for mv in [0.0, 800.0, 2_400.0, 4_999.0] {
            let back = adc_to_mv(u32::from(mv_to_adc(mv)) * 4, 4);
            assert!((f64::from(back) - mv).abs() <= 2.0, "{mv} -> {back}");
        }
        assert_eq!(mv_to_adc(10_000.0), 4_095, "a line above the ADC's range reads full scale");
        assert_eq!(count_to_ns(u32::MAX, 3, 1), i32::MAX);
        assert_eq!(timer_resolution_ns(2, 125_000_000), 16);
        assert_eq!(timer_resolution_ns(3, 125_000_000), 24, "a three-cycle loop would count in 24 ns");
    }

    #[test]
    fn the_divider_probe_tells_a_rig_2_from_bare_pins() {
        // ADC0's pin behind the 75 kΩ divider, against the pad pull-up's range of 50-80 kΩ.
        let at = |pull_up_kohm: f64| (3_300.0 * 75.0 / (75.0 + pull_up_kohm) * 4_096.0 / 3_300.0) as u16;
        assert!(divider_fitted(at(50.0)) && divider_fitted(at(80.0)));
        assert!(!divider_fitted(4_095), "a floating pin pulled to the rail has no divider");
        assert!(!divider_fitted(3_600), "2.9 V is above the boundary");
    }
}
