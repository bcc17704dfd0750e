//! The meter: integrates the household's power into registers second by second, keeps the
//! clock, the tariff, counters, event logs, M-Bus captures and Belgian demand, and fills the
//! [`Readings`] the renderer writes.
//!
//! Energy is integrated exactly: power is a whole number of watts for each whole second, so the
//! registers hold joules (W*s) and a register's change equals the integrated power exactly.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::clock::{ClockRule, days_from_civil, local_from_offset};
use crate::format::LocalTime;
use crate::household::{Household, HouseholdConfig, PhaseFlow};
use crate::identity::Identity;
use crate::noise::{self, Draws};
use crate::profile::{Energy, Kind, Medium, Profile, StartState};
use crate::readings::{Billing, DemandMonth, MBusValue, PhaseValues, PowerFailure, Readings, Registers, quadrant};
use crate::spec::Country;
use crate::tariff::{MAX_TARIFFS, tariff_at};

/// A failure shorter than this is "short" (`96.7.21`), longer ones are logged (`96.7.9`,
/// `99.97.0`).
pub const LONG_FAILURE_S: u32 = 180;

/// Joules per watt-hour.
const J_PER_WH: u64 = 3600;

/// The most power a command may set (load, solar, a charging car): 99.999 kW, the most the
/// `2.3` kW fields of DSMR telegrams show and beyond any household connection (3 x 80 A is 55 kW).
pub const MAX_POWER_W: u32 = 99_999;

/// The longest power failure or charging session a command may start: a leap year.
pub const MAX_DURATION_S: u32 = 366 * 86_400;

/// The version [`MeterState`] is written with. Version 1 (before per-meter identities, four
/// tariffs and billing snapshots) still loads: its meter keeps the ids the profile wrote.
pub const STATE_VERSION: u32 = 2;

/// A Smarty frame counter at this value is used up: the next frame would reuse an AES-GCM nonce.
pub const FRAME_COUNTER_EXHAUSTED: u32 = u32::MAX;

/// The part of the meter that must survive a restart: save it, and a later run resumes where
/// this one stopped. Everything else is recomputed from the profile and the seed.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MeterState {
    /// Format version of this structure.
    pub version: u32,
    /// The profile the meter was created from; a state file is refused by any other.
    #[serde(default)]
    pub profile: String,
    /// The seed the household was built from.
    pub seed: u64,
    /// The instant (Unix seconds) up to which power has been integrated.
    pub now: i64,
    /// Active import and export per tariff register (1 to 4), in joules. Version 1 files hold two.
    #[serde(deserialize_with = "tariff_registers")]
    pub import_j: [u64; 4],
    #[serde(deserialize_with = "tariff_registers")]
    pub export_j: [u64; 4],
    /// Reactive energy in var*s.
    pub q_import: u64,
    pub q_export: u64,
    /// Reactive import and export per tariff register, var*s.
    #[serde(default)]
    pub q_tariff: [[u64; 4]; 2],
    /// Reactive energy per quadrant Q1-Q4, var*s.
    #[serde(default)]
    pub q_quadrant: [u64; 4],
    pub power_failures: u32,
    pub long_power_failures: u32,
    /// Most recent first, at most 10.
    pub failure_log: Vec<PowerFailure>,
    pub sags: [u32; 3],
    pub swells: [u32; 3],
    pub mbus: Vec<MBusState>,
    pub demand: DemandState,
    pub text_message: String,
    pub text_code: String,
    /// Smarty's invocation counter: incremented once per encrypted frame.
    pub frame_counter: u32,
    /// While the mains is down: the instant power comes back.
    pub outage_until: Option<i64>,
    /// When the current outage began.
    pub outage_since: Option<i64>,
    /// Overrides set by scenario events or the control API.
    pub overrides: Overrides,
    /// The ids the meter sends; `None` in version 1 files, whose meters keep the profile's ids.
    #[serde(default)]
    pub identity: Option<Identity>,
    /// The last month-end billing snapshot (meters that send one).
    #[serde(default)]
    pub billing: Option<Billing>,
    /// The running month's quarter-hour peaks for the billing snapshot.
    #[serde(default)]
    pub peaks: PeakState,
}

/// Quarter-hour demand bookkeeping for month-end billing: the running quarter's energy and the
/// month's highest averages (import total, tariff 1, 2, export total, tariff 1, 2), W.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PeakState {
    pub quarter_import_j: u64,
    pub quarter_export_j: u64,
    pub month_w: [u32; 6],
}

/// Reads a tariff register array of up to four entries; missing ones are zero.
fn tariff_registers<'de, D: serde::Deserializer<'de>>(d: D) -> Result<[u64; 4], D::Error> {
    let v: Vec<u64> = serde::Deserialize::deserialize(d)?;
    if v.len() > 4 {
        return Err(serde::de::Error::invalid_length(v.len(), &"at most 4 tariff registers"));
    }
    let mut out = [0; 4];
    out[..v.len()].copy_from_slice(&v);
    Ok(out)
}

/// Why a saved [`MeterState`] cannot be resumed: the field and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateError {
    pub field: &'static str,
    pub message: String,
}

impl core::fmt::Display for StateError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "field `{}`: {}", self.field, self.message)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for StateError {}

/// The instants a state may hold: years 1970 to 9999, what telegram timestamps can show.
const STATE_INSTANTS: core::ops::RangeInclusive<i64> = 0..=253_402_300_799;

impl MeterState {
    /// Checks a state read from outside against the meter it claims to be, so that resuming it
    /// can neither panic nor hang: the version, the M-Bus channels the profile has, tariff and
    /// power overrides, outage and charging spans, the sizes of the logs.
    pub fn check(&self, profile: &Profile) -> Result<(), StateError> {
        let fail = |field: &'static str, message: String| Err(StateError { field, message });
        if !(1..=STATE_VERSION).contains(&self.version) {
            return fail(
                "version",
                format!("version {} is not one this p1sim reads (1 to {STATE_VERSION})", self.version),
            );
        }
        if !STATE_INSTANTS.contains(&self.now) {
            return fail("now", format!("{} is not an instant between 1970 and 9999", self.now));
        }
        let channels: Vec<u8> = self.mbus.iter().map(|m| m.channel).collect();
        let expected: Vec<u8> = profile.mbus.iter().map(|d| d.channel).collect();
        if channels != expected {
            return fail(
                "mbus",
                format!("M-Bus channels {channels:?}, but profile {} has channels {expected:?}", profile.name),
            );
        }
        if let Some(t) = self.overrides.tariff.filter(|t| !(1..=MAX_TARIFFS).contains(t)) {
            return fail("overrides.tariff", format!("tariff {t}: meters have tariffs 1 to {MAX_TARIFFS}"));
        }
        if let Some(id) = &self.identity {
            let texts = id.objects.iter().map(|(o, v)| (o, v)).chain(id.mbus.iter().map(|(_, v)| (v, v)));
            if id.objects.len() > 32 || id.mbus.len() > 4 {
                return fail(
                    "identity",
                    format!("{} ids and {} M-Bus ids; at most 32 and 4", id.objects.len(), id.mbus.len()),
                );
            }
            for (a, b) in texts {
                if a.len() > 96 || b.len() > 96 || b.contains(['\r', '\n', '(', ')']) {
                    return fail(
                        "identity",
                        format!("id {b:?}: an id is at most 96 characters, without brackets or line breaks"),
                    );
                }
            }
        }
        for (field, w) in [("overrides.load_w", self.overrides.load_w), ("overrides.solar_w", self.overrides.solar_w)] {
            if let Some(w) = w.filter(|w| *w > MAX_POWER_W) {
                return fail(field, format!("{w} W; at most {MAX_POWER_W} W"));
            }
        }
        let within = |t: i64| t.checked_sub(self.now).is_some_and(|d| d <= i64::from(MAX_DURATION_S));
        if let Some((until, w)) = self.overrides.ev_until
            && (w > MAX_POWER_W || !within(until))
        {
            return fail(
                "overrides.ev_until",
                format!("charging at {w} W until {until}: at most {MAX_POWER_W} W for a year"),
            );
        }
        match (self.outage_since, self.outage_until) {
            (None, None) => {}
            (Some(since), Some(until)) if since <= self.now && within(until) && since <= until => {}
            (since, until) => {
                return fail(
                    "outage_until",
                    format!(
                        "an outage from {since:?} until {until:?} at {}: it must have begun and last at most a year",
                        self.now
                    ),
                );
            }
        }
        if self.failure_log.len() > 10 {
            return fail("failure_log", format!("{} entries; a meter keeps 10", self.failure_log.len()));
        }
        if self.demand.history.len() > 13 {
            return fail("demand.history", format!("{} months; a meter keeps 13", self.demand.history.len()));
        }
        if self.demand.quarter_s > 900 {
            return fail("demand.quarter_s", format!("{} s; a quarter hour has 900", self.demand.quarter_s));
        }
        for (field, text) in [("text_message", &self.text_message), ("text_code", &self.text_code)] {
            if text.chars().count() > 1024 || text.contains(['\r', '\n']) {
                return fail(field, "a text is one line of at most 1024 characters".into());
            }
        }
        let times = self
            .failure_log
            .iter()
            .map(|f| f.end)
            .chain(self.mbus.iter().filter_map(|m| m.captured.map(|c| c.captured)))
            .chain(self.demand.month_max.map(|(t, _)| t))
            .chain(self.demand.history.iter().flat_map(|m| [Some(m.period_end), m.peak_time]).flatten());
        for t in times {
            if !(1..=12).contains(&t.month)
                || !(1..=31).contains(&t.day)
                || t.hour > 23
                || t.minute > 59
                || t.second > 60
            {
                return fail("failure_log", format!("{t:?} is not a date and time"));
            }
        }
        if let Some(b) = &self.billing
            && (!(1..=12).contains(&b.period_end.month) || !(1..=31).contains(&b.period_end.day))
        {
            return fail("billing.period_end", format!("{:?} is not a date", b.period_end));
        }
        Ok(())
    }
}

/// Values forced from outside the household model (scenario events, the control API).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Overrides {
    /// Household load, W (spread over the phases like the modelled load).
    pub load_w: Option<u32>,
    /// Solar production, W.
    pub solar_w: Option<u32>,
    /// Extra charging load, W, until the given instant.
    pub ev_until: Option<(i64, u32)>,
    /// Forced tariff register, 1 to 4.
    pub tariff: Option<u8>,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MBusState {
    pub channel: u8,
    /// Total volume in micro-units (microlitres for m3 meters).
    pub total_micro: u64,
    pub captured: Option<MBusValue>,
}

/// Belgian quarter-hour demand bookkeeping (e-MUCS capacity tariff).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DemandState {
    /// Import energy of the running quarter hour, J, and its elapsed seconds.
    pub quarter_j: u64,
    pub quarter_s: u32,
    pub month_max: Option<(LocalTime, u32)>,
    /// Completed months, oldest first, at most 13.
    pub history: Vec<DemandMonth>,
}

/// Things the meter can be told to do, by a scenario or the control API.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Command {
    SetLoad(Option<u32>),
    SetSolar(Option<u32>),
    /// Charge a car at this power for this many seconds.
    StartCharging {
        watts: u32,
        seconds: u32,
    },
    /// Cut the mains for this many seconds.
    PowerFailure {
        seconds: u32,
    },
    TextMessage(String),
    /// Force a tariff register (1 to the meter's tariff count), or `None` to follow the schedule.
    SetTariff(Option<u8>),
}

/// A simulated meter: profile constants, the household and the evolving state.
#[derive(Clone, Debug)]
pub struct Meter {
    country: Country,
    clock: ClockRule,
    phases: u8,
    has_tariffs: bool,
    /// Tariff registers the profile sends (2 for most, 4 in Hungary); forced tariffs stay within.
    tariffs: u8,
    /// Whether the meter keeps a month-end billing snapshot (E.ON Hungary's 98.1.0).
    billing: bool,
    /// Whether the telegram shows the mains frequency; it is only computed then.
    frequency: bool,
    /// Whether the telegram shows reactive energy per tariff or per quadrant (or a billing
    /// record holding them); those registers are only converted then.
    reactive_detail: bool,
    mbus: Vec<(u8, Medium, u32)>,
    household: Household,
    state: MeterState,
    readings: Readings,
    /// Cached UTC offset and DST flag, valid from the instant it was looked up until the next
    /// zone transition.
    offset: OffsetCache,
    tariff: u8,
    tariff_valid_until: i64,
    events_day: Option<i64>,
    day_events: DayEvents,
    last_flows: [PhaseFlow; 3],
    /// Scripted commands, sorted by instant; `next_scripted` indexes the first not yet applied.
    script: Vec<(i64, Command)>,
    next_scripted: usize,
}

#[derive(Clone, Copy, Debug)]
struct OffsetCache {
    offset: i32,
    dst: bool,
    from: i64,
    until: i64,
}

/// Mains events drawn for one day: an outage and voltage sags/swells per phase.
#[derive(Clone, Debug, Default)]
struct DayEvents {
    outage: Option<(i64, u32)>,
    dips: Vec<(i64, u8, bool)>,
}

mod stream {
    pub const INSTALL: u64 = 0x15;
    pub const MAINS: u64 = 0x4D;
    pub const VOLTAGE: u64 = 0x56;
    pub const FREQUENCY: u64 = 0xF5;
}

impl Meter {
    /// A meter at `start` (Unix seconds) with a plausible history drawn from `seed`.
    pub fn new(profile: &Profile, household: HouseholdConfig, seed: u64, start: i64) -> Meter {
        let mut meter = Meter::blank(profile, household.clone(), seed, start);
        meter.state.identity = Some(Identity::derive(profile, seed, household.equipment_id.as_deref()));
        meter.install_history(&household, start);
        if let Some(s) = &profile.start {
            meter.start_from(s, start);
        }
        meter.last_flows = meter.flows_at(start);
        meter
    }

    /// Puts the meter in the state a capture showed (a learned profile's `[start]`): what is
    /// given replaces the history drawn from the seed.
    fn start_from(&mut self, s: &StartState, start: i64) {
        if let Some(wh) = s.import_wh {
            self.state.import_j = self.book(wh);
        }
        if let Some(wh) = s.export_wh {
            self.state.export_j = self.book(wh);
        }
        let st = &mut self.state;
        if let Some(v) = s.q_import_varh {
            st.q_import = v * J_PER_WH;
        }
        if let Some(v) = s.q_export_varh {
            st.q_export = v * J_PER_WH;
        }
        if let Some(v) = s.q_import_tariff_varh {
            st.q_tariff[0] = v.map(|x| x * J_PER_WH);
        }
        if let Some(v) = s.q_export_tariff_varh {
            st.q_tariff[1] = v.map(|x| x * J_PER_WH);
        }
        if let Some(v) = s.q_quadrant_varh {
            st.q_quadrant = v.map(|x| x * J_PER_WH);
        }
        if let Some(n) = s.power_failures {
            st.power_failures = n;
        }
        if let Some(n) = s.long_power_failures {
            st.long_power_failures = n;
        }
        if let Some(log) = &s.failure_log {
            st.failure_log.clone_from(log);
        }
        if let Some(v) = s.sags {
            st.sags = v;
        }
        if let Some(v) = s.swells {
            st.swells = v;
        }
        if let Some(t) = &s.text_message {
            st.text_message.clone_from(t);
        }
        if let Some(t) = &s.text_code {
            st.text_code.clone_from(t);
        }
        if let Some(fc) = s.frame_counter {
            st.frame_counter = fc;
        }
        for value in &s.mbus {
            if let Some(m) = st.mbus.iter_mut().find(|m| m.channel == value.channel) {
                // The device's own total continues from its last reading.
                m.total_micro = value.milli * 1000;
                m.captured = Some(*value);
            }
        }
        if let Some(peak) = s.month_max {
            st.demand.month_max = Some(peak);
        }
        if let Some(h) = &s.demand_history {
            st.demand.history.clone_from(h);
        }
        if let Some(t) = s.tariff {
            // Shown until the next whole hour, when the schedule takes over again.
            self.tariff = t;
            self.tariff_valid_until = start - start.rem_euclid(3600) + 3600;
        }
    }

    /// Registers in joules for readings in Wh, on the tariff registers the meter books on.
    fn book(&self, wh: [u64; 4]) -> [u64; 4] {
        if self.has_tariffs {
            wh.map(|w| w * J_PER_WH)
        } else {
            let mut j = [0; 4];
            j[0] = wh.iter().sum::<u64>() * J_PER_WH;
            j
        }
    }

    /// Resumes a saved meter. The profile and household must be the ones it was saved with; the
    /// state is checked against the profile first (see [`MeterState::check`]). A state saved
    /// before meters had their own ids keeps the ids the profile writes; an `equipment_id` in
    /// the household replaces the saved one.
    pub fn resume(profile: &Profile, household: HouseholdConfig, mut state: MeterState) -> Result<Meter, StateError> {
        state.check(profile)?;
        let mut identity = state.identity.take().unwrap_or_else(|| Identity::of_profile(profile));
        if let Some(e) = &household.equipment_id {
            identity.set_primary(e);
        }
        state.identity = Some(identity);
        state.version = STATE_VERSION;
        let mut m = Meter::blank(profile, household, state.seed, state.now);
        m.state = state;
        m.last_flows = m.flows_at(m.state.now);
        Ok(m)
    }

    /// The ids this meter sends.
    pub fn identity(&self) -> Option<&Identity> {
        self.state.identity.as_ref()
    }

    /// A meter with zeroed state: the common part of [`Meter::new`] and [`Meter::resume`].
    fn blank(profile: &Profile, household: HouseholdConfig, seed: u64, start: i64) -> Meter {
        Meter {
            country: profile.country,
            clock: profile.clock,
            phases: profile.phases.clamp(1, 3),
            has_tariffs: profile.has_tariffs(),
            tariffs: profile.tariff_count().clamp(1, MAX_TARIFFS),
            billing: profile.objects.iter().any(|o| matches!(o.kind, Kind::Billing { .. })),
            frequency: profile.objects.iter().any(|o| matches!(o.kind, Kind::Frequency { .. })),
            reactive_detail: profile.objects.iter().any(|o| match o.kind {
                Kind::Energy { register, .. } => {
                    matches!(register.energy, Energy::Quadrant(_))
                        || register.tariff.is_some() && register.energy == Energy::Reactive
                }
                Kind::Billing { .. } => true,
                _ => false,
            }),
            mbus: profile.mbus.iter().map(|d| (d.channel, d.medium, d.capture_s.max(1))).collect(),
            household: Household::new(household, seed, profile.phases),
            state: MeterState {
                version: STATE_VERSION,
                profile: profile.name.clone(),
                seed,
                now: start,
                import_j: [0; 4],
                export_j: [0; 4],
                q_import: 0,
                q_export: 0,
                q_tariff: [[0; 4]; 2],
                q_quadrant: [0; 4],
                power_failures: 0,
                long_power_failures: 0,
                failure_log: Vec::new(),
                sags: [0; 3],
                swells: [0; 3],
                mbus: Vec::new(),
                demand: DemandState::default(),
                text_message: String::new(),
                text_code: String::new(),
                frame_counter: 0,
                outage_until: None,
                outage_since: None,
                overrides: Overrides::default(),
                identity: None,
                billing: None,
                peaks: PeakState::default(),
            },
            readings: Readings::default(),
            offset: OffsetCache { offset: 0, dst: false, from: i64::MAX, until: i64::MIN },
            tariff: 1,
            tariff_valid_until: i64::MIN,
            events_day: None,
            day_events: DayEvents::default(),
            last_flows: [PhaseFlow::default(); 3],
            script: Vec::new(),
            next_scripted: 0,
        }
    }

    pub fn state(&self) -> &MeterState {
        &self.state
    }

    pub fn now(&self) -> i64 {
        self.state.now
    }

    /// False while the mains is down: a meter without power sends nothing.
    pub fn is_powered(&self) -> bool {
        self.state.outage_until.is_none()
    }

    pub fn clock(&self) -> &ClockRule {
        &self.clock
    }

    pub fn household(&self) -> &Household {
        &self.household
    }

    /// The Smarty frame counter to use for the next frame, advancing it; `None` once the counter
    /// is used up, since wrapping to 0 would reuse AES-GCM nonces under the same key.
    pub fn next_frame_counter(&mut self) -> Option<u32> {
        let fc = self.state.frame_counter;
        if fc == FRAME_COUNTER_EXHAUSTED {
            return None;
        }
        self.state.frame_counter = fc + 1;
        Some(fc)
    }

    /// Whether the Smarty frame counter is used up (a meter then needs a new key).
    pub fn frame_counter_exhausted(&self) -> bool {
        self.state.frame_counter == FRAME_COUNTER_EXHAUSTED
    }

    /// When the mains comes back, while it is down.
    pub fn power_returns_at(&self) -> Option<i64> {
        self.state.outage_until
    }

    /// Applies a command. Values beyond [`MAX_POWER_W`] and [`MAX_DURATION_S`] are clamped here;
    /// the control API and the events parser refuse them with an error before they get here.
    pub fn apply(&mut self, cmd: Command) {
        let now = self.state.now;
        let power = |w: Option<u32>| w.map(|w| w.min(MAX_POWER_W));
        match cmd {
            Command::SetLoad(w) => self.state.overrides.load_w = power(w),
            Command::SetSolar(w) => self.state.overrides.solar_w = power(w),
            Command::StartCharging { watts, seconds } => {
                let until = now + i64::from(seconds.min(MAX_DURATION_S));
                self.state.overrides.ev_until = Some((until, watts.min(MAX_POWER_W)));
            }
            Command::PowerFailure { seconds } => {
                if self.state.outage_until.is_none() {
                    self.state.outage_since = Some(now);
                }
                let until = now + i64::from(seconds.clamp(1, MAX_DURATION_S));
                // A failure during a failure extends it, never past a year from its start.
                let since = self.state.outage_since.unwrap_or(now);
                self.state.outage_until = Some(until.min(since + i64::from(MAX_DURATION_S)));
            }
            // A meter stores one message of at most 1024 characters (DSMR 5.0.2 §7.2).
            Command::TextMessage(text) => self.state.text_message = text.chars().take(1024).collect(),
            Command::SetTariff(t) => {
                self.state.overrides.tariff = t.filter(|t| (1..=self.tariffs.max(2)).contains(t));
                self.tariff_valid_until = i64::MIN;
            }
        }
        self.last_flows = self.flows_at(now);
    }

    /// Scripts commands to happen at given instants (a scenario's `[[events]]`). Commands at or
    /// before the current instant are dropped: the past cannot be changed.
    pub fn script(&mut self, mut commands: Vec<(i64, Command)>) {
        commands.retain(|(at, _)| *at > self.state.now);
        commands.sort_by_key(|(at, _)| *at);
        self.script = commands;
        self.next_scripted = 0;
    }

    /// Integrates the household's power up to instant `t` (Unix seconds), one second at a time,
    /// applying scripted commands at their second.
    ///
    /// While the mains is down nothing is integrated, so the seconds up to the end of the outage
    /// (or the next scripted command) pass in one step: a year-long failure costs no more than a
    /// second of it.
    pub fn advance_to(&mut self, t: i64) {
        while self.state.now < t {
            let s = self.state.now;
            self.run_script(s);
            self.step(s);
            self.state.now = s + 1;
            if let Some(until) = self.state.outage_until {
                let script = self.script.get(self.next_scripted).map_or(i64::MAX, |(at, _)| *at);
                let resume = until.min(t).min(script);
                if resume > self.state.now {
                    self.state.now = resume;
                }
            }
        }
        self.run_script(t);
        // Power that comes back at `t` is back for a telegram at `t`.
        if let Some(until) = self.state.outage_until
            && t >= until
        {
            self.end_outage(until);
        }
        self.last_flows = self.flows_at(t);
    }

    fn run_script(&mut self, now: i64) {
        while let Some((at, cmd)) = self.script.get(self.next_scripted) {
            if *at > now {
                break;
            }
            let cmd = cmd.clone();
            self.next_scripted += 1;
            self.apply(cmd);
        }
    }

    /// The meter's values at the current instant.
    pub fn readings(&mut self) -> &Readings {
        self.fill_readings();
        &self.readings
    }

    /// Local time at `t`, from the cached offset (refreshed at zone transitions).
    pub fn local(&mut self, t: i64) -> LocalTime {
        let (offset, dst) = self.offset_at(t);
        local_from_offset(t, offset, dst)
    }

    fn offset_at(&mut self, t: i64) -> (i32, bool) {
        let c = self.offset;
        if c.from <= t && t < c.until {
            return (c.offset, c.dst);
        }
        let offset = self.clock.offset_seconds(t);
        let dst = self.clock.local(t).dst;
        let until = self.clock.next_transition(t).unwrap_or(t + 366 * 86_400);
        self.offset = OffsetCache { offset, dst, from: t, until };
        (offset, dst)
    }

    /// Local day number and seconds since local midnight.
    fn local_day_secs(&mut self, t: i64) -> (i64, i64) {
        let (off, _) = self.offset_at(t);
        let l = t + i64::from(off);
        (l.div_euclid(86_400), l.rem_euclid(86_400))
    }

    fn flows_at(&mut self, t: i64) -> [PhaseFlow; 3] {
        let (day, secs) = self.local_day_secs(t);
        let mut flows = self.household.flows(t, day, secs);
        let o = &self.state.overrides;
        if let Some(w) = o.load_w {
            let modelled: f64 = flows.iter().map(|f| f.load_w).sum();
            for f in flows.iter_mut() {
                let share = if modelled > 0.0 { f.load_w / modelled } else { 1.0 / f64::from(self.phases) };
                f.load_w = f64::from(w) * share;
                f.load_var = f.load_w * 0.3;
            }
        }
        if let Some(w) = o.solar_w {
            let n = usize::from(self.phases);
            for f in flows.iter_mut().take(n) {
                f.solar_w = f64::from(w) / n as f64;
            }
        }
        if let Some((until, w)) = o.ev_until
            && t < until
        {
            let n = usize::from(self.phases);
            for f in flows.iter_mut().take(n) {
                f.load_w += f64::from(w) / n as f64;
            }
        }
        if self.state.outage_until.is_some() {
            flows = [PhaseFlow::default(); 3];
        }
        flows
    }

    fn step(&mut self, t: i64) {
        self.mains_events(t);
        if let Some(until) = self.state.outage_until {
            if t >= until {
                self.end_outage(until);
            } else {
                return;
            }
        }
        if let Some((until, _)) = self.state.overrides.ev_until
            && t >= until
        {
            self.state.overrides.ev_until = None;
        }
        let flows = self.flows_at(t);
        let tariff_index = usize::from(self.tariff_at(t).clamp(1, MAX_TARIFFS) - 1);
        let mut net: i64 = 0;
        let mut q: i64 = 0;
        for f in flows.iter().take(usize::from(self.phases)) {
            net += libm::round(f.load_w - f.solar_w) as i64;
            q += libm::round(f.load_var) as i64;
        }
        // Dutch and Belgian meters net the phases: import and export registers integrate the sum.
        // Saturating: a register at its end stays there rather than wrap to zero.
        let st = &mut self.state;
        if net >= 0 {
            st.import_j[tariff_index] = st.import_j[tariff_index].saturating_add(net as u64);
        } else {
            st.export_j[tariff_index] = st.export_j[tariff_index].saturating_add(net.unsigned_abs());
        }
        if q >= 0 {
            st.q_import = st.q_import.saturating_add(q as u64);
            st.q_tariff[0][tariff_index] = st.q_tariff[0][tariff_index].saturating_add(q as u64);
        } else {
            st.q_export = st.q_export.saturating_add(q.unsigned_abs());
            st.q_tariff[1][tariff_index] = st.q_tariff[1][tariff_index].saturating_add(q.unsigned_abs());
        }
        let quadrant_register = &mut st.q_quadrant[usize::from(quadrant(net, q)) - 1];
        *quadrant_register = quadrant_register.saturating_add(q.unsigned_abs());
        self.demand_step(t, net.max(0) as u64);
        if self.billing {
            self.billing_step(t, net);
        }
        self.mbus_step(t);
    }

    /// Quarter-hour averages of import and export, the month's peaks per tariff, and at each
    /// month's end the snapshot E.ON Hungary's meters send in `0-0:98.1.0`.
    fn billing_step(&mut self, t: i64, net: i64) {
        let p = &mut self.state.peaks;
        p.quarter_import_j += net.max(0) as u64;
        p.quarter_export_j += (-net).max(0) as u64;
        // Quarter hours end on :00, :15, :30 and :45 local time; offsets are whole hours.
        if (t + 1).rem_euclid(900) != 0 {
            return;
        }
        let tariff = self.tariff_at(t);
        let p = &mut self.state.peaks;
        let averages = [(p.quarter_import_j / 900) as u32, (p.quarter_export_j / 900) as u32];
        p.quarter_import_j = 0;
        p.quarter_export_j = 0;
        for (d, avg) in averages.into_iter().enumerate() {
            p.month_w[3 * d] = p.month_w[3 * d].max(avg);
            if (1..=2).contains(&tariff) {
                let slot = 3 * d + usize::from(tariff);
                p.month_w[slot] = p.month_w[slot].max(avg);
            }
        }
        let end = self.local(t + 1);
        if end.day == 1 && end.hour == 0 && end.minute == 0 {
            let peaks_w = core::mem::take(&mut self.state.peaks.month_w);
            self.state.billing = Some(Billing { period_end: end, registers: self.registers(), peaks_w });
        }
    }

    fn tariff_at(&mut self, t: i64) -> u8 {
        if let Some(forced) = self.state.overrides.tariff {
            return forced;
        }
        if !self.has_tariffs {
            return 1;
        }
        if t >= self.tariff_valid_until || t < self.tariff_valid_until - 3600 {
            let local = self.local(t);
            self.tariff = tariff_at(self.country, &local).unwrap_or(1);
            // Schedules switch on whole hours; the offset is whole hours too.
            self.tariff_valid_until = t - t.rem_euclid(3600) + 3600;
        }
        self.tariff
    }

    fn demand_step(&mut self, t: i64, import_w: u64) {
        if self.country != Country::BE {
            return;
        }
        let d = &mut self.state.demand;
        d.quarter_j = d.quarter_j.saturating_add(import_w);
        d.quarter_s = d.quarter_s.saturating_add(1);
        // Quarter hours end on :00, :15, :30 and :45 local time; offsets are whole hours.
        if (t + 1).rem_euclid(900) == 0 {
            let avg = (d.quarter_j / 900) as u32;
            d.quarter_j = 0;
            d.quarter_s = 0;
            let end = self.local(t + 1);
            let d = &mut self.state.demand;
            if d.month_max.is_none_or(|(_, w)| avg > w) {
                d.month_max = Some((end, avg));
            }
            if end.day == 1 && end.hour == 0 && end.minute == 0 {
                self.close_demand_month(end);
            }
        }
    }

    fn close_demand_month(&mut self, period_end: LocalTime) {
        let d = &mut self.state.demand;
        let (peak_time, peak_w) = match d.month_max.take() {
            Some((t, w)) => (Some(t), w),
            None => (None, 0),
        };
        d.history.push(DemandMonth { period_end, peak_time, peak_w });
        if d.history.len() > 13 {
            d.history.remove(0);
        }
    }

    fn mbus_step(&mut self, t: i64) {
        if self.mbus.is_empty() {
            return;
        }
        let (day, secs) = self.local_day_secs(t);
        let gas = self.household.gas_l_per_s(t, day, secs);
        let water = self.household.water_l_per_s(day, secs);
        for i in 0..self.mbus.len() {
            let (channel, medium, capture_s) = self.mbus[i];
            let rate = match medium {
                Medium::Gas => gas,
                Medium::Water => water,
                // District heat: about 0.4 MJ per litre of gas-equivalent demand.
                Medium::Heat => gas * 0.035,
                Medium::Ghost => continue,
            };
            let micro = libm::round(rate * 1e6) as u64;
            let next = t + 1;
            let captured = if next.rem_euclid(i64::from(capture_s)) == 0 { Some(self.local(next)) } else { None };
            let st = &mut self.state.mbus[i];
            debug_assert_eq!(st.channel, channel);
            st.total_micro = st.total_micro.saturating_add(micro);
            if let Some(time) = captured {
                // The device reports whole thousandths of its unit (litres of m3).
                st.captured = Some(MBusValue { channel, milli: st.total_micro / 1_000_000, captured: time });
            }
        }
    }

    /// Outages, sags and swells drawn per local day.
    fn mains_events(&mut self, t: i64) {
        let (day, _) = self.local_day_secs(t);
        if self.events_day != Some(day) {
            self.events_day = Some(day);
            self.day_events = self.draw_day_events(day);
        }
        if let Some((start, seconds)) = self.day_events.outage
            && t == start
            && self.state.outage_until.is_none()
        {
            self.state.outage_since = Some(t);
            self.state.outage_until = Some(t + i64::from(seconds));
        }
        for &(when, phase, swell) in &self.day_events.dips {
            if when == t && self.state.outage_until.is_none() {
                let counters = if swell { &mut self.state.swells } else { &mut self.state.sags };
                counters[usize::from(phase)] = counters[usize::from(phase)].wrapping_add(1) % 100_000;
            }
        }
    }

    fn draw_day_events(&mut self, day: i64) -> DayEvents {
        let seed = self.state.seed;
        let mut d = Draws::new(seed, stream::MAINS, day);
        let (off, _) = self.offset_at(day * 86_400);
        let day_start = day * 86_400 - i64::from(off);
        let mut ev = DayEvents::default();
        // About three interruptions a year; a third of them long.
        if d.chance(3.0 / 365.0) {
            let start = day_start + d.int(0, 86_400);
            let seconds = if d.chance(0.35) { d.int(i64::from(LONG_FAILURE_S), 3 * 3600) } else { d.int(2, 150) };
            ev.outage = Some((start, seconds as u32));
        }
        for phase in 0..self.phases {
            if d.chance(1.0 / 12.0) {
                ev.dips.push((day_start + d.int(0, 86_400), phase, false));
            }
            if d.chance(1.0 / 45.0) {
                ev.dips.push((day_start + d.int(0, 86_400), phase, true));
            }
        }
        ev
    }

    fn end_outage(&mut self, until: i64) {
        let since = self.state.outage_since.unwrap_or(until);
        let seconds = (until - since).max(0) as u32;
        self.state.outage_until = None;
        self.state.outage_since = None;
        if seconds >= LONG_FAILURE_S {
            self.state.long_power_failures = (self.state.long_power_failures + 1) % 100_000;
            let end = self.local(until);
            self.state.failure_log.insert(0, PowerFailure { end, duration_s: seconds });
            self.state.failure_log.truncate(10);
        } else {
            self.state.power_failures = (self.state.power_failures + 1) % 100_000;
        }
    }

    /// Gives a new meter a past: registers, counters, a failure log, gas, demand history.
    fn install_history(&mut self, cfg: &HouseholdConfig, start: i64) {
        let seed = self.state.seed;
        let mut d = Draws::new(seed, stream::INSTALL, 0);
        let years = d.range(0.5, 8.0);
        let import_wh = match cfg.start_import_kwh {
            Some(kwh) => (kwh * 1000.0) as u64,
            None => (cfg.annual_kwh * years * d.range(0.85, 1.15) * 1000.0) as u64,
        };
        // NL books about 45% on low (nights and weekends); BE about 55% on day; Hungary and
        // Austria about three quarters on day (the Austrian sample of dsmr_parser: 77%).
        let t1_share = match self.country {
            Country::NL => 0.45,
            Country::BE => 0.55,
            Country::HU | Country::AT => 0.75,
            Country::LU | Country::SE | Country::DE => 1.0,
        };
        let t1 = if self.has_tariffs { (import_wh as f64 * t1_share) as u64 } else { import_wh };
        self.state.import_j = [t1 * J_PER_WH, (import_wh - t1) * J_PER_WH, 0, 0];
        if cfg.solar_kwp > 0.0 {
            let export_wh = (cfg.solar_kwp * 850.0 * 0.6 * years.min(5.0) * 1000.0) as u64;
            let e1 = if self.has_tariffs { export_wh * 4 / 10 } else { export_wh };
            self.state.export_j = [e1 * J_PER_WH, (export_wh - e1) * J_PER_WH, 0, 0];
        }
        self.state.q_import = (import_wh as f64 * 0.28) as u64 * J_PER_WH;
        self.state.q_export = (import_wh as f64 * 0.02) as u64 * J_PER_WH;
        // Reactive energy follows the active split over tariffs; inductive reactive energy falls
        // in Q1 while importing and Q2 while exporting, capacitive in Q4 and Q3.
        let share = |total: u64, part: u64| (total as f64 * part as f64 / import_wh.max(1) as f64) as u64;
        let (qi, qe) = (self.state.q_import, self.state.q_export);
        self.state.q_tariff = [[share(qi, t1), qi - share(qi, t1), 0, 0], [share(qe, t1), qe - share(qe, t1), 0, 0]];
        let exporting = if cfg.solar_kwp > 0.0 { 0.1 } else { 0.0 };
        let q2 = (qi as f64 * exporting) as u64;
        let q3 = (qe as f64 * exporting) as u64;
        self.state.q_quadrant = [qi - q2, q2, q3, qe - q3];
        self.state.power_failures = (years * d.range(1.0, 6.0)) as u32;
        self.state.long_power_failures = (years * d.range(0.2, 1.2)) as u32;
        for p in 0..usize::from(self.phases) {
            self.state.sags[p] = (years * d.range(1.0, 12.0)) as u32;
            self.state.swells[p] = (years * d.range(0.0, 3.0)) as u32;
        }
        // Logged long failures, spread over the installed years, most recent first.
        let logged = self.state.long_power_failures.min(10);
        let mut when = start;
        for _ in 0..logged {
            when -= d.int(86_400 * 20, (years * 365.0 * 86_400.0 / f64::from(logged.max(1))) as i64 + 86_400 * 21);
            let end = self.local(when);
            self.state
                .failure_log
                .push(PowerFailure { end, duration_s: d.int(i64::from(LONG_FAILURE_S), 20_000) as u32 });
        }
        // M-Bus devices: volume so far, and the last capture before the start.
        for &(channel, medium, capture_s) in &self.mbus.clone() {
            let per_year_l = match medium {
                Medium::Gas => cfg.gas_m3_per_year * 1000.0,
                Medium::Water => cfg.water_m3_per_year * 1000.0,
                Medium::Heat => cfg.gas_m3_per_year * 35.0,
                Medium::Ghost => 0.0,
            };
            let total_micro = (per_year_l * years * d.range(0.8, 1.2) * 1e6) as u64;
            let last = start - start.rem_euclid(i64::from(capture_s));
            let captured = (medium != Medium::Ghost).then(|| MBusValue {
                channel,
                milli: total_micro / 1_000_000,
                captured: self.local(last),
            });
            self.state.mbus.push(MBusState { channel, total_micro, captured });
        }
        // Belgian demand history: the months before the start, with peaks of 2.5-6 kW, and the
        // running month's peak so far.
        if self.country == Country::BE {
            let local = self.local(start);
            let month_start = unix_of_local_midnight(&self.clock, i32::from(local.year), local.month, 1);
            let quarters = (start - month_start) / 900;
            if quarters > 0 {
                let peak_end = month_start + 900 * d.int(1, quarters + 1);
                let peak = self.local(peak_end);
                self.state.demand.month_max = Some((peak, d.int(1500, 5000) as u32));
            }
            let months = ((years * 12.0) as u32).min(13);
            for k in (1..=months).rev() {
                let (y, m) = months_back(local.year, local.month, k - 1);
                let (py, pm) = months_back(y, m, 1);
                let period_end = self.local(unix_of_local_midnight(&self.clock, i32::from(y), m, 1));
                let peak_day = d.int(1, 29) as u8;
                let peak_quarter = d.int(28, 88);
                let peak_start = unix_of_local_midnight(&self.clock, i32::from(py), pm, peak_day) + peak_quarter * 900;
                let peak = self.local(peak_start);
                self.state.demand.history.push(DemandMonth {
                    period_end,
                    peak_time: Some(peak),
                    peak_w: d.int(2500, 6000) as u32,
                });
            }
        }
        if self.billing {
            self.install_billing(cfg, start, &mut d);
        }
    }

    /// The registers in Wh and varh, as the telegram shows them.
    fn registers(&self) -> Registers {
        let s = &self.state;
        let wh = |j: &[u64; 4]| j.map(|v| v / J_PER_WH);
        let mut r = Registers {
            import_wh: wh(&s.import_j),
            export_wh: wh(&s.export_j),
            q_import_varh: s.q_import / J_PER_WH,
            q_export_varh: s.q_export / J_PER_WH,
            ..Registers::default()
        };
        if self.reactive_detail {
            r.q_import_tariff_varh = wh(&s.q_tariff[0]);
            r.q_export_tariff_varh = wh(&s.q_tariff[1]);
            r.q_quadrant_varh = wh(&s.q_quadrant);
        }
        r
    }

    /// A new meter's last month-end snapshot: its registers less this month's share of the
    /// year's use, and peaks of 2-5 kW.
    fn install_billing(&mut self, cfg: &HouseholdConfig, start: i64, d: &mut Draws) {
        let local = self.local(start);
        let month_start = unix_of_local_midnight(&self.clock, i32::from(local.year), local.month, 1);
        let elapsed_j = cfg.annual_kwh * 3.6e6 * (start - month_start) as f64 / (365.25 * 86_400.0);
        let import_j: u64 = self.state.import_j.iter().sum();
        let keep = (1.0 - elapsed_j / import_j.max(1) as f64).clamp(0.0, 1.0);
        let mut registers = self.registers();
        let scale = |v: &mut u64| *v = (*v as f64 * keep) as u64;
        registers.import_wh.iter_mut().chain(registers.export_wh.iter_mut()).for_each(scale);
        registers.q_import_tariff_varh.iter_mut().chain(registers.q_export_tariff_varh.iter_mut()).for_each(scale);
        registers.q_quadrant_varh.iter_mut().for_each(scale);
        scale(&mut registers.q_import_varh);
        scale(&mut registers.q_export_varh);
        let mut peaks_w = [0u32; 6];
        for w in &mut peaks_w[..3] {
            *w = d.int(2000, 5000) as u32;
        }
        peaks_w[0] = peaks_w[1].max(peaks_w[2]);
        if cfg.solar_kwp > 0.0 {
            for w in &mut peaks_w[4..] {
                *w = (d.range(0.3, 0.8) * cfg.solar_kwp * 1000.0) as u32;
            }
            peaks_w[3] = peaks_w[4].max(peaks_w[5]);
        }
        let period_end = self.local(month_start);
        self.state.billing = Some(Billing { period_end, registers, peaks_w });
    }

    fn fill_readings(&mut self) {
        let t = self.state.now;
        let time = self.local(t);
        let tariff = self.tariff_at(t);
        let registers = self.registers();
        let s = &self.state;
        let r = &mut self.readings;
        r.time = time;
        r.tariff = tariff;
        r.registers = registers;
        if self.billing {
            r.billing = s.billing;
        }
        if self.frequency {
            // The grid holds 50 Hz within a few tens of mHz, wandering over minutes.
            r.frequency_mhz = libm::round(50_000.0 + 25.0 * noise::smooth(s.seed, stream::FREQUENCY, t, 120)) as u32;
        }
        r.power_failures = s.power_failures;
        r.long_power_failures = s.long_power_failures;
        if r.failure_log != s.failure_log {
            r.failure_log.clone_from(&s.failure_log);
        }
        r.sags = s.sags;
        r.swells = s.swells;
        if r.text_message != s.text_message {
            r.text_message.clone_from(&s.text_message);
        }
        if r.text_code != s.text_code {
            r.text_code.clone_from(&s.text_code);
        }
        r.mbus.clear();
        r.mbus.extend(s.mbus.iter().filter_map(|m| m.captured));
        r.demand.current_avg_w =
            if s.demand.quarter_s > 0 { (s.demand.quarter_j / u64::from(s.demand.quarter_s)) as u32 } else { 0 };
        r.demand.month_max = s.demand.month_max;
        if r.demand.history != s.demand.history {
            r.demand.history.clone_from(&s.demand.history);
        }

        // Instantaneous values: net power per phase, voltage with noise, current from S/V.
        let seed = s.seed;
        let powered = s.outage_until.is_none();
        for p in 0..3 {
            let phase = &mut r.phases[p];
            if p >= usize::from(self.phases) || !powered {
                *phase = PhaseValues::default();
                continue;
            }
            let f = self.last_flows[p];
            let net = libm::round(f.load_w - f.solar_w) as i64;
            let q = libm::round(f.load_var) as i64;
            phase.import_w = net.max(0) as u32;
            phase.export_w = (-net).max(0) as u32;
            phase.q_import_var = q.max(0) as u32;
            phase.q_export_var = (-q).max(0) as u32;
            // Each phase sits at its own level near 230 V, wanders slowly, and drops with the
            // current drawn (about 0.25 ohm of grid impedance) or rises with export.
            let level = 230.0 + 3.0 * noise::signed(noise::key(seed, stream::VOLTAGE, p as i64));
            let wander = 2.5 * noise::smooth(seed, stream::VOLTAGE + 1 + p as u64, t, 900);
            let jitter = 0.3 * noise::signed(noise::key(seed, stream::VOLTAGE + 8 + p as u64, t));
            let v = level + wander + jitter - 0.25 * (net as f64 / 230.0);
            phase.voltage_dv = libm::round(v * 10.0).max(0.0) as u32;
            let s_va = libm::sqrt((net * net + q * q) as f64);
            phase.current_ma = libm::round(s_va / v.max(1.0) * 1000.0) as u32;
        }
    }
}

fn months_back(year: u16, month: u8, k: u32) -> (u16, u8) {
    let idx = i64::from(year) * 12 + i64::from(month) - 1 - i64::from(k);
    ((idx / 12) as u16, (idx % 12 + 1) as u8)
}

/// Unix seconds of local midnight on a civil date, for tests and scenario parsing.
pub fn unix_of_local_midnight(clock: &ClockRule, year: i32, month: u8, day: u8) -> i64 {
    let guess = days_from_civil(year, month, day) * 86_400;
    guess - i64::from(clock.offset_seconds(guess))
}
