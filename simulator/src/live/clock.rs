//! The simulated clock of a live run: maps simulated Unix seconds onto monotonic wall-clock
//! deadlines, X times faster with `--speed X`.
//!
//! Every deadline is computed from one fixed origin, never by adding intervals to the previous
//! deadline, so rounding and late wake-ups never accumulate into drift.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const NS: i128 = 1_000_000_000;

/// Simulated time `sim_origin_ns` (Unix nanoseconds) corresponds to the monotonic instant `origin`.
#[derive(Debug, Clone, Copy)]
pub struct SimClock {
    origin: Instant,
    sim_origin_ns: i128,
    speed: f64,
}

impl SimClock {
    /// A clock whose simulated time runs `speed` times as fast as the wall clock from `sim_origin_ns` on.
    pub fn starting_at(sim_origin_ns: i128, speed: f64) -> SimClock {
        SimClock { origin: Instant::now(), sim_origin_ns, speed: if speed > 0.0 { speed } else { 1.0 } }
    }

    /// A clock that shows the wall clock (at speed 1), from `now` on at `speed`: a 1 s meter then
    /// sends on each second of the wall clock.
    pub fn wall(speed: f64) -> SimClock {
        // Read both clocks back to back: the pair is the mapping.
        let origin = Instant::now();
        let wall_ns = unix_now_ns();
        SimClock { origin, sim_origin_ns: wall_ns, speed: if speed > 0.0 { speed } else { 1.0 } }
    }

    pub fn speed(&self) -> f64 {
        self.speed
    }

    /// The simulated origin in Unix nanoseconds.
    pub fn sim_origin_ns(&self) -> i128 {
        self.sim_origin_ns
    }

    /// The monotonic instant at which simulated second `sim_s` begins. Instants before the origin
    /// are clamped to the origin (they are due at once).
    pub fn deadline(&self, sim_s: i64) -> Instant {
        let sim_ns = i128::from(sim_s) * NS - self.sim_origin_ns;
        if sim_ns <= 0 {
            return self.origin;
        }
        let wall_ns = (sim_ns as f64 / self.speed) as u128;
        let wall_ns = u64::try_from(wall_ns).unwrap_or(u64::MAX);
        self.origin.checked_add(Duration::from_nanos(wall_ns)).unwrap_or(self.origin + Duration::from_secs(1 << 40))
    }

    /// The simulated instant now, in whole Unix seconds (rounded down).
    pub fn sim_now_s(&self) -> i64 {
        let elapsed = self.origin.elapsed().as_nanos() as f64 * self.speed;
        ((self.sim_origin_ns + elapsed as i128).div_euclid(NS)) as i64
    }

    /// Wall time that one simulated interval of `interval_s` seconds lasts.
    pub fn wall_interval(&self, interval_s: u32) -> Duration {
        // Saturates rather than panics for an interval no run lives to see.
        Duration::try_from_secs_f64(f64::from(interval_s) / self.speed).unwrap_or(Duration::MAX)
    }
}

/// The wall clock in Unix nanoseconds.
pub fn unix_now_ns() -> i128 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_come_from_the_origin_not_from_each_other() {
        let c = SimClock::starting_at(1_000 * NS, 1.0);
        assert_eq!(c.deadline(1_000), c.origin);
        assert_eq!(c.deadline(1_001) - c.origin, Duration::from_secs(1));
        assert_eq!(c.deadline(1_000 + 86_400 * 365) - c.origin, Duration::from_secs(86_400 * 365));
        // Instants before the origin are due at once.
        assert_eq!(c.deadline(999), c.origin);
    }

    #[test]
    fn speed_shrinks_intervals() {
        let c = SimClock::starting_at(0, 10.0);
        assert_eq!(c.deadline(10) - c.origin, Duration::from_secs(1));
        assert_eq!(c.wall_interval(1), Duration::from_millis(100));
        // A third of a second is not representable in whole nanoseconds; no drift either way.
        let c = SimClock::starting_at(0, 3.0);
        assert_eq!(c.deadline(3_000_000) - c.origin, Duration::from_secs(1_000_000));
    }

    #[test]
    fn a_nonsense_speed_falls_back_to_real_time() {
        assert_eq!(SimClock::starting_at(0, 0.0).speed(), 1.0);
        assert_eq!(SimClock::starting_at(0, -2.0).speed(), 1.0);
    }
}
