//! What the meter measures at one instant: the seam between the value model and the renderer.
//!
//! The renderer turns a [`Readings`] into text using a profile's widths; anything that fills a
//! `Readings` (the household model, a test, a replay) can drive any profile. All quantities are
//! integers in a base unit fine enough for every format in use, so rendering never rounds twice.

use alloc::string::String;
use alloc::vec::Vec;

use crate::format::LocalTime;
use crate::profile::{Direction, Energy, PowerKind, PowerQuantity, Register};

/// Per-phase instantaneous values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PhaseValues {
    /// Active power drawn from the grid, W.
    pub import_w: u32,
    /// Active power delivered to the grid, W.
    pub export_w: u32,
    /// Reactive power, var (Q+ inductive import, Q- export).
    pub q_import_var: u32,
    pub q_export_var: u32,
    /// Voltage in 0.1 V.
    pub voltage_dv: u32,
    /// Current in mA (magnitude).
    pub current_ma: u32,
}

/// Energy registers in Wh / varh: the finest resolution any profile shows (kWh with 3 decimals).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Registers {
    /// Active import on tariffs 1 to 4. Meters without tariffs book everything on index 0.
    pub import_wh: [u64; 4],
    pub export_wh: [u64; 4],
    /// Reactive import (Q+) and export (Q-) totals.
    pub q_import_varh: u64,
    pub q_export_varh: u64,
    /// Reactive import and export per tariff (3.8.1, 4.8.2, ... on Austrian meters).
    pub q_import_tariff_varh: [u64; 4],
    pub q_export_tariff_varh: [u64; 4],
    /// Reactive energy per quadrant, Q1 to Q4 (5.8.0 to 8.8.0 on E.ON Hungary's meters).
    pub q_quadrant_varh: [u64; 4],
}

impl Registers {
    pub fn get(&self, r: Register) -> u64 {
        // Rendering asks for a few registers every telegram: no work beyond the one asked for.
        let set = match (r.direction, r.energy) {
            (Direction::Import, Energy::Active) => &self.import_wh,
            (Direction::Export, Energy::Active) => &self.export_wh,
            (Direction::Import, Energy::Reactive) if r.tariff.is_none() => return self.q_import_varh,
            (Direction::Export, Energy::Reactive) if r.tariff.is_none() => return self.q_export_varh,
            (Direction::Import, Energy::Reactive) => &self.q_import_tariff_varh,
            (Direction::Export, Energy::Reactive) => &self.q_export_tariff_varh,
            (_, Energy::Quadrant(q @ 1..=4)) => return self.q_quadrant_varh[usize::from(q) - 1],
            (_, Energy::Quadrant(_)) => return 0,
            (_, Energy::Combined) => return self.import_wh.iter().chain(&self.export_wh).sum(),
        };
        match r.tariff {
            Some(t @ 1..=4) => set[usize::from(t) - 1],
            Some(_) => 0,
            None => set.iter().sum(),
        }
    }
}

/// One entry of the long power-failure log: when power came back and how long it was gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PowerFailure {
    pub end: LocalTime,
    pub duration_s: u32,
}

/// One month of the Belgian peak-demand history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DemandMonth {
    /// Midnight starting the next month: the instant the period closed. Fluvius writes this
    /// first, e.g. `(231101000000W)(231016130000S)(04.927*kW)` for October 2023.
    pub period_end: LocalTime,
    /// When the peak happened; `None` for a month without data (rendered `632525252525W`).
    pub peak_time: Option<LocalTime>,
    pub peak_w: u32,
}

/// Belgian capacity-tariff values (e-MUCS `1.4.0`, `1.6.0`, `98.1.0`).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Demand {
    /// Average demand of the running quarter hour, W.
    pub current_avg_w: u32,
    /// The month's highest completed quarter hour so far: when it ended and its average, W.
    pub month_max: Option<(LocalTime, u32)>,
    /// Completed months, oldest first, at most 13.
    pub history: Vec<DemandMonth>,
}

/// The last captured value of an M-Bus device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MBusValue {
    pub channel: u8,
    /// Thousandths of the unit: litres for m3, MJ for GJ.
    pub milli: u64,
    pub captured: LocalTime,
}

/// A month-end snapshot of the registers and the month's highest quarter-hour demands, as
/// E.ON Hungary's meters send it in `0-0:98.1.0`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Billing {
    /// Local midnight starting the month after the one billed.
    pub period_end: LocalTime,
    pub registers: Registers,
    /// The month's highest quarter-hour averages, W: import total, on tariff 1 and 2, then export
    /// total, on tariff 1 and 2.
    pub peaks_w: [u32; 6],
}

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Readings {
    pub time: LocalTime,
    /// Which tariff register is being booked now: 1 to 4.
    pub tariff: u8,
    pub registers: Registers,
    pub phases: [PhaseValues; 3],
    /// Mains frequency, mHz.
    pub frequency_mhz: u32,
    /// The last month-end billing snapshot, on meters that keep one.
    pub billing: Option<Billing>,
    pub power_failures: u32,
    pub long_power_failures: u32,
    /// Most recent first.
    pub failure_log: Vec<PowerFailure>,
    pub sags: [u32; 3],
    pub swells: [u32; 3],
    /// The long text message (sent hex encoded); empty when there is none.
    pub text_message: String,
    pub text_code: String,
    pub demand: Demand,
    pub mbus: Vec<MBusValue>,
    /// Powers as a meter reported them, where they are not what the phase values make (a
    /// captured telegram whose total is not the sum of its phases, or whose phase shows import
    /// and export at once). They take precedence over [`Readings::power`]'s arithmetic. The
    /// meter model leaves this empty.
    pub measured: Vec<(PowerQuantity, u64)>,
}

impl Readings {
    /// The instantaneous power a `PowerQuantity` names, in W / var / VA.
    ///
    /// Per phase the values are as measured. The totals net the phases, as Dutch and Belgian
    /// meters do: 500 W drawn on L1 while L2 exports 300 W reads 200 W import, 0 W export.
    pub fn power(&self, q: PowerQuantity) -> u64 {
        if let Some(&(_, v)) = self.measured.iter().find(|(m, _)| *m == q) {
            return v;
        }
        let (active, reactive): (i64, i64) = match q.phase {
            Some(n @ 1..=3) => {
                let p = &self.phases[n as usize - 1];
                (i64::from(p.import_w) - i64::from(p.export_w), i64::from(p.q_import_var) - i64::from(p.q_export_var))
            }
            Some(_) => (0, 0),
            None => self.phases.iter().fold((0, 0), |(a, r), p| {
                (
                    a + i64::from(p.import_w) - i64::from(p.export_w),
                    r + i64::from(p.q_import_var) - i64::from(p.q_export_var),
                )
            }),
        };
        let signed = match q.kind {
            PowerKind::Active => active,
            PowerKind::Reactive => reactive,
            PowerKind::Apparent => {
                let s = libm::round(libm::sqrt((active * active + reactive * reactive) as f64)) as i64;
                if active >= 0 { s } else { -s }
            }
            // Reactive power counts in the quadrant the (P, Q) pair lies in, and only there.
            PowerKind::Quadrant(n) => {
                return if quadrant(active, reactive) == n { reactive.unsigned_abs() } else { 0 };
            }
        };
        match q.direction {
            Direction::Import => signed.max(0) as u64,
            Direction::Export => (-signed).max(0) as u64,
        }
    }

    pub fn mbus_value(&self, channel: u8) -> Option<&MBusValue> {
        self.mbus.iter().find(|m| m.channel == channel)
    }

    /// cos(phi) in thousandths, |P| / S, for one phase or (`None`) the whole meter; 1000 when
    /// nothing flows.
    pub fn power_factor_milli(&self, phase: Option<u8>) -> u64 {
        let of = |p: &PhaseValues| {
            (i64::from(p.import_w) - i64::from(p.export_w), i64::from(p.q_import_var) - i64::from(p.q_export_var))
        };
        let (active, reactive) = match phase {
            Some(n @ 1..=3) => of(&self.phases[usize::from(n) - 1]),
            Some(_) => (0, 0),
            None => self.phases.iter().map(of).fold((0, 0), |(a, r), (x, y)| (a + x, r + y)),
        };
        let s = libm::sqrt((active * active + reactive * reactive) as f64);
        if s < 0.5 { 1000 } else { libm::round(active.unsigned_abs() as f64 / s * 1000.0) as u64 }
    }
}

/// The quadrant (1 to 4) of active power `p` and reactive power `q` as IEC 62053 counts them:
/// Q1 import and inductive, Q2 export and inductive, Q3 export and capacitive, Q4 import and
/// capacitive.
pub fn quadrant(p: i64, q: i64) -> u8 {
    match (p >= 0, q >= 0) {
        (true, true) => 1,
        (false, true) => 2,
        (false, false) => 3,
        (true, false) => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_are_sums() {
        let mut r = Readings::default();
        r.registers.import_wh = [1000, 2345, 0, 0];
        r.phases[0].import_w = 100;
        r.phases[1].import_w = 200;
        r.phases[2].import_w = 300;
        let total = Register { direction: Direction::Import, energy: Energy::Active, tariff: None };
        assert_eq!(r.registers.get(total), 3345);
        let p = PowerQuantity { direction: Direction::Import, kind: PowerKind::Active, phase: None };
        assert_eq!(r.power(p), 600);
        assert_eq!(r.power(PowerQuantity { phase: Some(2), ..p }), 200);
        // Export on one phase is netted against import on the others.
        r.phases[2] = PhaseValues { export_w: 500, ..PhaseValues::default() };
        assert_eq!(r.power(p), 0);
        assert_eq!(r.power(PowerQuantity { direction: Direction::Export, ..p }), 200);
    }

    #[test]
    fn measured_powers_override_the_phase_arithmetic() {
        let mut r = Readings::default();
        r.phases[0].import_w = 100;
        let total = PowerQuantity { direction: Direction::Import, kind: PowerKind::Active, phase: None };
        assert_eq!(r.power(total), 100);
        r.measured.push((total, 2027));
        assert_eq!(r.power(total), 2027);
        assert_eq!(r.power(PowerQuantity { phase: Some(1), ..total }), 100);
    }

    #[test]
    fn quadrants_and_power_factor() {
        let mut r = Readings::default();
        r.phases[0] = PhaseValues { import_w: 300, q_import_var: 400, ..PhaseValues::default() };
        let q = |n| PowerQuantity { direction: Direction::Import, kind: PowerKind::Quadrant(n), phase: None };
        assert_eq!((r.power(q(1)), r.power(q(2))), (400, 0), "import with inductive load is Q1");
        assert_eq!(r.power_factor_milli(None), 600, "300 W of 500 VA");
        r.phases[0] = PhaseValues { export_w: 300, q_import_var: 400, ..PhaseValues::default() };
        assert_eq!((r.power(q(1)), r.power(q(2))), (0, 400), "export with inductive load is Q2");
        assert_eq!(Readings::default().power_factor_milli(Some(2)), 1000);
        r.registers.import_wh = [1, 2, 3, 4];
        r.registers.export_wh = [10, 0, 0, 0];
        let reg = |energy, tariff| Register { direction: Direction::Import, energy, tariff };
        assert_eq!(r.registers.get(reg(Energy::Active, Some(4))), 4);
        assert_eq!(r.registers.get(reg(Energy::Active, None)), 10);
        assert_eq!(r.registers.get(reg(Energy::Combined, None)), 20);
    }
}
