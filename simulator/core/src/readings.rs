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
    /// Active import on tariff 1 and 2. Meters without tariffs book everything on index 0.
    pub import_wh: [u64; 2],
    pub export_wh: [u64; 2],
    pub q_import_varh: u64,
    pub q_export_varh: u64,
}

impl Registers {
    pub fn get(&self, r: Register) -> u64 {
        let pair = match (r.direction, r.energy) {
            (Direction::Import, Energy::Active) => self.import_wh,
            (Direction::Export, Energy::Active) => self.export_wh,
            (Direction::Import, Energy::Reactive) => return self.q_import_varh,
            (Direction::Export, Energy::Reactive) => return self.q_export_varh,
        };
        match r.tariff {
            Some(t @ 1..=2) => pair[t as usize - 1],
            Some(_) => 0,
            None => pair[0] + pair[1],
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

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Readings {
    pub time: LocalTime,
    /// Which tariff register is being booked now: 1 or 2.
    pub tariff: u8,
    pub registers: Registers,
    pub phases: [PhaseValues; 3],
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
        };
        match q.direction {
            Direction::Import => signed.max(0) as u64,
            Direction::Export => (-signed).max(0) as u64,
        }
    }

    pub fn mbus_value(&self, channel: u8) -> Option<&MBusValue> {
        self.mbus.iter().find(|m| m.channel == channel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_are_sums() {
        let mut r = Readings::default();
        r.registers.import_wh = [1000, 2345];
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
}
