//! The household behind the meter: what it draws and produces, second by second.
//!
//! Everything here is a pure function of (seed, instant): base load, a daily activity curve,
//! appliances switching on and off, solar production with a day and season shape, EV charging
//! sessions, heating gas and tap water. Per-day schedules are drawn from a generator seeded by
//! (seed, component, day), so the household on a given day is the same however the run got there,
//! and resuming from saved state needs no generator positions.

use alloc::vec::Vec;

use crate::clock::days_from_civil;
use crate::noise::{self, Draws};
use crate::spec::Country;

/// The tunable parameters of a household, from a profile's `[household]` table or the user.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HouseholdConfig {
    /// Yearly electricity use, kWh (the NL average home is about 2,500-3,500).
    pub annual_kwh: f64,
    /// Peak power of the solar installation, kWp; 0 for none.
    pub solar_kwp: f64,
    /// Whether an electric car charges at home.
    pub ev: bool,
    /// Charger power, kW (11 kW three-phase; capped at 7.4 kW on single-phase meters).
    pub ev_charger_kw: f64,
    /// Yearly gas use for heating, hot water and cooking, m3 (about 1,100 in the NL average home).
    pub gas_m3_per_year: f64,
    /// Yearly tap water, m3.
    pub water_m3_per_year: f64,
    /// Latitude for the sun's path, degrees north.
    pub latitude: f64,
    /// Register reading at the start of a run, kWh; drawn from the seed when absent.
    pub start_import_kwh: Option<f64>,
    /// The meter's equipment identifier as text (before any hex encoding), replacing the one
    /// derived from the seed (`identity`).
    pub equipment_id: Option<alloc::string::String>,
}

impl Default for HouseholdConfig {
    fn default() -> Self {
        Self::for_country(Country::NL)
    }
}

impl HouseholdConfig {
    /// Typical homes per market: Swedish houses use more electricity (electric heating) and no gas.
    pub fn for_country(country: Country) -> Self {
        let (annual_kwh, gas, latitude) = match country {
            Country::NL => (3000.0, 1100.0, 52.1),
            Country::BE => (3200.0, 1300.0, 50.8),
            Country::LU => (3800.0, 1400.0, 49.6),
            Country::SE => (9000.0, 0.0, 59.3),
            Country::DE => (3500.0, 1200.0, 51.2),
            Country::HU => (2500.0, 1000.0, 47.5),
            Country::AT => (3500.0, 1100.0, 47.1),
        };
        Self {
            annual_kwh,
            solar_kwp: 0.0,
            ev: false,
            ev_charger_kw: 11.0,
            gas_m3_per_year: gas,
            water_m3_per_year: 55.0,
            latitude,
            start_import_kwh: None,
            equipment_id: None,
        }
    }
}

impl HouseholdConfig {
    /// The accepted range of each number: finite, not negative, and physical for a home behind
    /// one meter. On failure, the key and why.
    pub fn check(&self) -> Result<(), (&'static str, alloc::string::String)> {
        let ranges: [(&'static str, f64, f64, f64, &str); 7] = [
            ("annual_kwh", self.annual_kwh, 0.0, 100_000.0, "kWh a year"),
            ("solar_kwp", self.solar_kwp, 0.0, 90.0, "kWp"),
            ("ev_charger_kw", self.ev_charger_kw, 0.0, 50.0, "kW"),
            ("gas_m3_per_year", self.gas_m3_per_year, 0.0, 100_000.0, "m3 a year"),
            ("water_m3_per_year", self.water_m3_per_year, 0.0, 10_000.0, "m3 a year"),
            ("latitude", self.latitude, -90.0, 90.0, "degrees"),
            ("start_import_kwh", self.start_import_kwh.unwrap_or(0.0), 0.0, 999_999.0, "kWh"),
        ];
        for (key, value, low, high, unit) in ranges {
            if !(value.is_finite() && (low..=high).contains(&value)) {
                return Err((
                    key,
                    alloc::format!("{value} is out of range: give a number from {low} to {high} ({unit})"),
                ));
            }
        }
        if let Some(id) = &self.equipment_id
            && (id.is_empty() || id.len() > 96 || id.contains(['(', ')', '!', '/', '\r', '\n']) || !id.is_ascii())
        {
            return Err((
                "equipment_id",
                alloc::format!(
                    "{id:?}: expected 1 to 96 ASCII characters without brackets, `!`, `/` or line breaks, as the \
                     meter would send them (before hex encoding)"
                ),
            ));
        }
        Ok(())
    }
}

/// Power on one phase at one second: what the home draws and what the panels produce, W.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PhaseFlow {
    pub load_w: f64,
    pub solar_w: f64,
    /// Reactive power of the load, var (inductive, positive).
    pub load_var: f64,
}

/// An interval during which an appliance (or the car) draws a constant power on one phase
/// (or spread over all phases when `phase` is `None`).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Run {
    start: i64,
    end: i64,
    watts: f64,
    /// cos(phi) of the appliance: resistive loads are 1, motors and electronics lower.
    power_factor: f64,
    phase: Option<u8>,
}

/// One kind of appliance: rated power, run length, mean runs a day, the hours it is used in.
struct Appliance {
    watts: f64,
    minutes: f64,
    per_day: f64,
    hours: (u8, u8),
    power_factor: f64,
}

const APPLIANCES: [Appliance; 8] = [
    Appliance { watts: 2000.0, minutes: 3.0, per_day: 3.0, hours: (6, 23), power_factor: 1.0 }, // kettle
    Appliance { watts: 900.0, minutes: 4.0, per_day: 1.5, hours: (7, 22), power_factor: 0.95 }, // microwave
    Appliance { watts: 2200.0, minutes: 45.0, per_day: 0.3, hours: (16, 20), power_factor: 1.0 }, // oven
    Appliance { watts: 1800.0, minutes: 25.0, per_day: 0.8, hours: (17, 20), power_factor: 0.98 }, // hob
    Appliance { watts: 2000.0, minutes: 15.0, per_day: 0.5, hours: (8, 21), power_factor: 0.9 }, // washer heating
    Appliance { watts: 2400.0, minutes: 60.0, per_day: 0.3, hours: (9, 22), power_factor: 0.97 }, // dryer
    Appliance { watts: 1900.0, minutes: 30.0, per_day: 0.6, hours: (19, 24), power_factor: 0.95 }, // dishwasher
    Appliance { watts: 800.0, minutes: 15.0, per_day: 0.2, hours: (9, 18), power_factor: 0.85 }, // vacuum
];

/// The daily activity curve (lights, screens, cooking) by hour of day, mean 1. Shaped after the
/// Dutch standard residential profile: low at night, a morning bump and an evening peak.
const ACTIVITY: [f64; 24] = [
    0.55, 0.45, 0.40, 0.38, 0.38, 0.42, 0.65, 0.95, 0.90, 0.80, 0.75, 0.75, 0.80, 0.75, 0.70, 0.75, 0.95, 1.40, 1.90,
    2.00, 1.90, 1.70, 1.30, 0.85,
];

mod stream {
    pub const APPLIANCE: u64 = 0x0A;
    pub const EV: u64 = 0x0E;
    pub const CLOUD: u64 = 0xC1;
    pub const CLOUD_FAST: u64 = 0xC2;
    pub const ACTIVITY: u64 = 0xAC;
    pub const JITTER: u64 = 0x11;
    pub const WEATHER: u64 = 0x7E;
    pub const WATER: u64 = 0x3A;
    pub const LAYOUT: u64 = 0x1A;
}

/// The household's state: configuration plus the cached schedule of the current day.
#[derive(Clone, Debug)]
pub struct Household {
    cfg: HouseholdConfig,
    seed: u64,
    phases: u8,
    /// Share of standby and activity load per phase.
    split: [f64; 3],
    standby_w: f64,
    activity_w: f64,
    appliance_rate: f64,
    gas_l_per_degree_hour: f64,
    gas_base_l_per_s: f64,
    cached_day: Option<i64>,
    /// The cached day's cloudiness: a base factor and how much it flickers.
    cloud_day: (f64, f64),
    runs: Vec<Run>,
    water_runs: Vec<(i64, i64, f64)>,
}

impl Household {
    pub fn new(cfg: HouseholdConfig, seed: u64, phases: u8) -> Self {
        let mut layout = Draws::new(seed, stream::LAYOUT, 0);
        let split = if phases >= 3 {
            let a = layout.range(0.35, 0.5);
            let b = layout.range(0.25, (1.0 - a) - 0.15);
            [a, b, 1.0 - a - b]
        } else {
            [1.0, 0.0, 0.0]
        };
        let mean_w = cfg.annual_kwh * 1000.0 / 8766.0;
        // About 40% of use comes from the appliance catalogue at its nominal rate; the rest is
        // standby (a quarter) and the activity curve. Scale the catalogue to the home's size.
        let catalogue_w: f64 = APPLIANCES.iter().map(|a| a.watts * a.minutes * 60.0 * a.per_day / 86_400.0).sum();
        let fridge_w = 40.0;
        let appliance_rate = (0.40 * mean_w / catalogue_w).clamp(0.05, 5.0);
        let standby_w = 0.25 * mean_w;
        let activity_w = (mean_w - standby_w - fridge_w - catalogue_w * appliance_rate).max(0.05 * mean_w);
        // Heating gas follows degree hours below 16 C. A year of this climate has about 61,000
        // degree hours; 20% of gas goes to hot water and cooking regardless of season.
        let yearly_degree_hours = 61_000.0;
        let gas_l = cfg.gas_m3_per_year * 1000.0;
        Self {
            seed,
            phases,
            split,
            standby_w,
            activity_w,
            appliance_rate,
            gas_l_per_degree_hour: 0.8 * gas_l / yearly_degree_hours,
            gas_base_l_per_s: 0.2 * gas_l / (365.25 * 86_400.0),
            cfg,
            cached_day: None,
            cloud_day: (1.0, 0.0),
            runs: Vec::new(),
            water_runs: Vec::new(),
        }
    }

    pub fn config(&self) -> &HouseholdConfig {
        &self.cfg
    }

    /// Power flows per phase at Unix second `unix`, with the meter's local clock giving the
    /// time of day (`local_secs`, seconds since local midnight) and the local calendar day.
    pub fn flows(&mut self, unix: i64, local_day: i64, local_secs: i64) -> [PhaseFlow; 3] {
        self.ensure_day(local_day);
        let mut out = [PhaseFlow::default(); 3];
        let hour_f = local_secs as f64 / 3600.0;
        let doy = day_of_year(local_day);

        // Standby and activity, spread over phases, with slow and fast noise.
        let h = (hour_f as usize).min(23);
        let next = (h + 1) % 24;
        let frac = hour_f - h as f64;
        let curve = ACTIVITY[h] + (ACTIVITY[next] - ACTIVITY[h]) * frac;
        let season = 1.0 + 0.25 * libm::cos(core::f64::consts::TAU * (doy - 10.0) / 365.25);
        let slow = 1.0 + 0.25 * noise::smooth(self.seed, stream::ACTIVITY, unix, 600);
        let jitter = 1.0 + 0.02 * noise::signed(noise::key(self.seed, stream::JITTER, unix));
        let spread = (self.standby_w + self.activity_w * curve * season * slow) * jitter;
        // The fridge cycles: 15 minutes on at 120 W, 30 off, on phase 1.
        let fridge = if (unix + (self.seed % 2700) as i64).rem_euclid(2700) < 900 { 120.0 } else { 0.0 };
        for (p, flow) in out.iter_mut().enumerate() {
            flow.load_w = spread * self.split[p];
            flow.load_var = flow.load_w * 0.33;
        }
        out[0].load_w += fridge;
        out[0].load_var += fridge * 0.75;

        // Appliance and EV runs of today and yesterday (a dishwasher may run past midnight).
        for run in &self.runs {
            if run.start <= local_secs_abs(local_day, local_secs) && local_secs_abs(local_day, local_secs) < run.end {
                let tan_phi = libm::sqrt(1.0 / (run.power_factor * run.power_factor) - 1.0);
                match run.phase {
                    Some(p) => {
                        let f = &mut out[usize::from(p.min(self.phases) - 1)];
                        f.load_w += run.watts;
                        f.load_var += run.watts * tan_phi;
                    }
                    None => {
                        let n = f64::from(self.phases.clamp(1, 3));
                        for f in out.iter_mut().take(usize::from(self.phases.clamp(1, 3))) {
                            f.load_w += run.watts / n;
                            f.load_var += run.watts / n * tan_phi;
                        }
                    }
                }
            }
        }

        // Solar: a clear-sky curve from the sun's elevation, times the day's cloudiness.
        if self.cfg.solar_kwp > 0.0 {
            let pv = self.cfg.solar_kwp * 1000.0 * 0.85 * clear_sky(self.cfg.latitude, doy, hour_f) * self.cloud(unix);
            let n = usize::from(self.phases.clamp(1, 3));
            // Single-phase inverters up to 4.6 kW; larger systems are three-phase.
            if n == 1 || self.cfg.solar_kwp <= 4.6 {
                out[0].solar_w = pv;
            } else {
                for f in out.iter_mut().take(n) {
                    f.solar_w = pv / n as f64;
                }
            }
        }
        out
    }

    /// Gas flow at this second, litres per second.
    pub fn gas_l_per_s(&mut self, unix: i64, local_day: i64, local_secs: i64) -> f64 {
        if self.cfg.gas_m3_per_year <= 0.0 {
            return 0.0;
        }
        let hour_f = local_secs as f64 / 3600.0;
        let temp = self.outdoor_temperature(local_day, hour_f, unix);
        // Night setback halves heating between 23:00 and 06:00.
        let setback = if !(6.0..23.0).contains(&hour_f) { 0.5 } else { 1.15 };
        let heating = (16.0 - temp).max(0.0) * self.gas_l_per_degree_hour / 3600.0 * setback;
        // Hot water and cooking happen mostly mornings and evenings.
        let h = (hour_f as usize).min(23);
        let base = self.gas_base_l_per_s * ACTIVITY[h];
        heating + base
    }

    /// Tap water at this second, litres per second.
    pub fn water_l_per_s(&mut self, local_day: i64, local_secs: i64) -> f64 {
        self.ensure_day(local_day);
        let now = local_secs_abs(local_day, local_secs);
        self.water_runs.iter().filter(|(s, e, _)| *s <= now && now < *e).map(|(_, _, r)| r).sum()
    }

    /// Outdoor temperature in C: a seasonal curve, a daily swing and a multi-day weather anomaly.
    pub fn outdoor_temperature(&self, local_day: i64, hour_f: f64, unix: i64) -> f64 {
        let doy = day_of_year(local_day);
        let seasonal = 10.5 - 7.5 * libm::cos(core::f64::consts::TAU * (doy - 20.0) / 365.25);
        let daily = -3.5 * libm::cos(core::f64::consts::TAU * (hour_f - 3.0) / 24.0);
        let weather = 4.0 * noise::smooth(self.seed, stream::WEATHER, unix, 3 * 86_400);
        seasonal + daily + weather
    }

    /// The day's cloud factor times a faster flicker on partly cloudy days, 0.05..=1.
    fn cloud(&self, unix: i64) -> f64 {
        let (base, flicker) = self.cloud_day;
        (base * (1.0 + flicker * noise::smooth(self.seed, stream::CLOUD_FAST, unix, 90))).clamp(0.05, 1.0)
    }

    /// Clear (30%), partly cloudy (40%) or overcast (30%) days.
    fn draw_cloud_day(&self, day: i64) -> (f64, f64) {
        let mut d = Draws::new(self.seed, stream::CLOUD, day);
        let kind = d.unit();
        if kind < 0.3 {
            (0.95, 0.03)
        } else if kind < 0.7 {
            (d.range(0.45, 0.8), 0.35)
        } else {
            (d.range(0.12, 0.3), 0.08)
        }
    }

    fn ensure_day(&mut self, day: i64) {
        if self.cached_day == Some(day) {
            return;
        }
        self.cached_day = Some(day);
        self.cloud_day = self.draw_cloud_day(day);
        self.runs.clear();
        self.water_runs.clear();
        for d in [day - 1, day] {
            self.schedule_appliances(d);
            self.schedule_ev(d);
            self.schedule_water(d);
        }
    }

    fn schedule_appliances(&mut self, day: i64) {
        for (i, a) in APPLIANCES.iter().enumerate() {
            let mut d = Draws::new(self.seed, stream::APPLIANCE + ((i as u64) << 8), day);
            let n = d.poisson(a.per_day * self.appliance_rate);
            let phase = if self.phases >= 3 { (i % 3) as u8 + 1 } else { 1 };
            for _ in 0..n {
                let start_h = d.range(f64::from(a.hours.0), f64::from(a.hours.1));
                let start = day * 86_400 + (start_h * 3600.0) as i64;
                let len = (a.minutes * 60.0 * d.range(0.7, 1.3)) as i64;
                self.runs.push(Run {
                    start,
                    end: start + len,
                    watts: a.watts,
                    power_factor: a.power_factor,
                    phase: Some(phase),
                });
            }
        }
    }

    fn schedule_ev(&mut self, day: i64) {
        if !self.cfg.ev {
            return;
        }
        let mut d = Draws::new(self.seed, stream::EV, day);
        if !d.chance(0.4) {
            return;
        }
        let kw = if self.phases >= 3 { self.cfg.ev_charger_kw } else { self.cfg.ev_charger_kw.min(7.4) };
        let need_kwh = d.range(6.0, 30.0);
        let start = day * 86_400 + (d.range(17.0, 20.5) * 3600.0) as i64;
        let len = (need_kwh / kw * 3600.0) as i64;
        self.runs.push(Run { start, end: start + len, watts: kw * 1000.0, power_factor: 0.99, phase: None });
    }

    fn schedule_water(&mut self, day: i64) {
        if self.cfg.water_m3_per_year <= 0.0 {
            return;
        }
        let mut d = Draws::new(self.seed, stream::WATER, day);
        let daily_l = self.cfg.water_m3_per_year * 1000.0 / 365.25;
        // Showers (about 60 l at 8 l/min) in the morning, the rest as short taps over the day.
        let showers = d.poisson((0.45 * daily_l / 60.0).max(0.0));
        for _ in 0..showers {
            let start = day * 86_400 + (d.range(6.0, 9.5) * 3600.0) as i64;
            self.water_runs.push((start, start + 450, 8.0 / 60.0));
        }
        let taps = d.poisson((0.55 * daily_l / 6.0).max(0.0));
        for _ in 0..taps {
            let start = day * 86_400 + (d.range(6.5, 23.0) * 3600.0) as i64;
            self.water_runs.push((start, start + 45, 6.0 / 45.0));
        }
    }
}

/// Seconds on a continuous local timeline (local day * 86400 + seconds since local midnight).
#[inline]
fn local_secs_abs(local_day: i64, local_secs: i64) -> i64 {
    local_day * 86_400 + local_secs
}

/// Day of the year (0-based, fractional days ignored) from days since 1970-01-01.
fn day_of_year(day: i64) -> f64 {
    let (y, _, _) = crate::clock::civil_from_days(day);
    (day - days_from_civil(y, 1, 1)) as f64
}

/// Relative clear-sky output of a south-facing array, 0..=1, at a latitude, day of year and
/// local solar hour (clock hour without DST; good to about half an hour).
pub fn clear_sky(latitude: f64, doy: f64, hour: f64) -> f64 {
    use core::f64::consts::{PI, TAU};
    let lat = latitude * PI / 180.0;
    let decl = 23.44 * PI / 180.0 * libm::sin(TAU * (284.0 + doy) / 365.0);
    let hour_angle = (hour - 12.5) * 15.0 * PI / 180.0;
    let sin_elev = libm::sin(lat) * libm::sin(decl) + libm::cos(lat) * libm::cos(decl) * libm::cos(hour_angle);
    if sin_elev <= 0.0 {
        return 0.0;
    }
    // Output at solar noon in June at 52N is about 0.9 of the rating; atmosphere cuts low sun.
    libm::pow(sin_elev, 1.25).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annual_consumption_matches_the_configuration() {
        let cfg = HouseholdConfig::for_country(Country::NL);
        let mut h = Household::new(cfg.clone(), 42, 3);
        // Sample a year every 37 s (coprime to the fridge and noise periods).
        let start_day = days_from_civil(2025, 1, 1);
        let mut joules = 0.0;
        let step = 37;
        let mut t = 0i64;
        while t < 365 * 86_400 {
            let day = start_day + t / 86_400;
            let flows = h.flows(start_day * 86_400 + t, day, t % 86_400);
            joules += flows.iter().map(|f| f.load_w).sum::<f64>() * step as f64;
            t += step;
        }
        let kwh = joules / 3.6e6;
        assert!((kwh / cfg.annual_kwh - 1.0).abs() < 0.12, "{kwh} kWh for {} configured", cfg.annual_kwh);
    }

    #[test]
    fn solar_produces_in_daytime_only_and_more_in_summer() {
        assert_eq!(clear_sky(52.0, 172.0, 0.0), 0.0);
        assert!(clear_sky(52.0, 172.0, 12.5) > clear_sky(52.0, 355.0, 12.5) * 2.5);
    }

    #[test]
    fn gas_follows_the_season() {
        let mut h = Household::new(HouseholdConfig::for_country(Country::NL), 1, 1);
        let jan = days_from_civil(2025, 1, 15);
        let jul = days_from_civil(2025, 7, 15);
        let day_sum = |h: &mut Household, day: i64| -> f64 {
            (0..86_400).step_by(60).map(|s| h.gas_l_per_s(day * 86_400 + s, day, s) * 60.0).sum()
        };
        let winter = day_sum(&mut h, jan);
        let summer = day_sum(&mut h, jul);
        assert!(winter > 4.0 * summer, "winter {winter} l vs summer {summer} l");
    }
}
