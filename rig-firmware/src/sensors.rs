//! The rig's sensors (the `sensors` feature): the data line's sense input (ADC0, and GP6 for the
//! edge timers, behind a 150k/150k divider), the known 10 kΩ load switched by GP7, the levels of
//! Request (ADC1) and the board's output (ADC2), two PIO state machines that time the line's
//! edges, and an INA219 current monitor on I2C0 in the board's +5 V.
//!
//! The order of the readings is the shared core's (`p1sim_core::rig::sense::measure_line`);
//! this module is the hardware it runs on. The ADC and the I2C bus are used blocking, a reading
//! at a time with the executor free in between: a conversion takes 2 µs, an INA219 read about
//! 200 µs at 400 kHz.

use embassy_rp::Peri;
use embassy_rp::adc::{Adc, Blocking, Channel};
use embassy_rp::clocks::clk_sys_freq;
use embassy_rp::gpio::{Level, Output, Pull};
use embassy_rp::i2c::{self, I2c};
use embassy_rp::peripherals::{ADC, I2C0, PIN_7, PIN_8, PIN_9, PIN_26, PIN_27, PIN_28, PIO0};
use embassy_rp::pio::{Common, Config, Pin, StateMachine};
use embassy_time::{Duration, Instant, Timer};
use fixed::FixedU32;
use heapless::Vec;
use ina219::SyncIna219;
use ina219::address::Address;
use ina219::calibration::{IntCalibration, MicroAmpere};
use p1sim_core::rig::sense::{self, Input, RIG_CIRCUIT, SenseHw};
use p1sim_core::rig::{MAX_READINGS, MeasureRequest, Measured, Quantity, Reading, caps};

use crate::programs;

/// The INA219's shunt in the +5 V path: 0.1 Ω, as the common breakout boards carry.
const SHUNT_MICRO_OHMS: u32 = 100_000;

/// Its current register's step: 100 µA (3.2 A full scale).
const CURRENT_LSB_UA: i64 = 100;

/// The INA219's bus voltage register's step.
const BUS_LSB_MV: u32 = 4;

type Ina = SyncIna219<I2c<'static, I2C0, i2c::Blocking>, IntCalibration>;

/// The peripherals the sensors take, handed over by `main`.
pub struct Parts {
    pub adc: Peri<'static, ADC>,
    pub line: Peri<'static, PIN_26>,
    pub request: Peri<'static, PIN_27>,
    pub output: Peri<'static, PIN_28>,
    pub load: Peri<'static, PIN_7>,
    pub i2c: Peri<'static, I2C0>,
    pub sda: Peri<'static, PIN_8>,
    pub scl: Peri<'static, PIN_9>,
}

pub struct Sensors {
    adc: Adc<'static, Blocking>,
    line: Channel<'static>,
    request: Channel<'static>,
    output: Channel<'static>,
    load: Output<'static>,
    rise: StateMachine<'static, PIO0, 2>,
    fall: StateMachine<'static, PIO0, 3>,
    rise_origin: u8,
    fall_origin: u8,
    ina: Option<Ina>,
    /// Whether the dividers in front of the ADC inputs are fitted (a Rig 2): without them the
    /// line, Request and output readings would be of floating pins.
    divider: bool,
    /// The edge timers wait for their go: the next release starts the rise timer, the next sink
    /// the fall timer.
    armed: (bool, bool),
}

impl Sensors {
    /// Sets the sensors up; the edge timers drive `data` (GP0) and read GP6. A rig without the
    /// sense dividers (found by a probe of ADC0) measures no levels, and one whose INA219 does
    /// not answer at 0x40 no supply: this firmware runs on first-generation rigs too.
    pub fn new(
        parts: Parts,
        common: &mut Common<'static, PIO0>,
        mut rise: StateMachine<'static, PIO0, 2>,
        mut fall: StateMachine<'static, PIO0, 3>,
        data: &Pin<'static, PIO0>,
    ) -> Sensors {
        let mut origins = [0u8; 2];
        for (i, is_rise) in [true, false].into_iter().enumerate() {
            let program = common.load_program(&programs::edge_timer(is_rise));
            origins[i] = program.origin;
            let mut c = Config::default();
            c.use_program(&program, &[]);
            c.set_set_pins(&[data]);
            c.clock_divider = FixedU32::from_num(1);
            if is_rise {
                rise.set_config(&c);
            } else {
                fall.set_config(&c);
            }
        }
        // Both timers read the sense input (GP6) through `jmp pin`.
        embassy_rp::pac::PIO0.sm(2).execctrl().modify(|w| w.set_jmp_pin(SENSE_PIN));
        embassy_rp::pac::PIO0.sm(3).execctrl().modify(|w| w.set_jmp_pin(SENSE_PIN));
        let mut config = i2c::Config::default();
        config.frequency = 400_000;
        let bus = I2c::new_blocking(parts.i2c, parts.scl, parts.sda, config);
        let calibration = IntCalibration::new(MicroAmpere(CURRENT_LSB_UA), SHUNT_MICRO_OHMS);
        let ina = match (Address::from_byte(0x40), calibration) {
            (Ok(address), Some(calibration)) => SyncIna219::new_calibrated(bus, address, calibration).ok(),
            _ => None,
        };
        let mut adc = Adc::new_blocking(parts.adc, Default::default());
        let mut line = parts.line;
        // The data line held low by the fall timer's pin direction, ADC0 is read once with its
        // pad pull-up on: whether the sense divider is there (p1sim_core::rig::sense).
        // SAFETY: the fall timer is stopped; this only sets GP0's direction (driven low).
        unsafe { fall.exec_instr(programs::set_instr(true, true)) };
        embassy_time::block_for(Duration::from_micros(u64::from(sense::SETTLE_US)));
        let divider = {
            let mut probe = Channel::new_pin(line.reborrow(), Pull::Up);
            adc.blocking_read(&mut probe).is_ok_and(sense::divider_fitted)
        };
        Sensors {
            adc,
            divider,
            line: Channel::new_pin(line, Pull::None),
            request: Channel::new_pin(parts.request, Pull::None),
            output: Channel::new_pin(parts.output, Pull::None),
            load: Output::new(parts.load, Level::Low),
            rise,
            fall,
            rise_origin: origins[0],
            fall_origin: origins[1],
            ina,
            armed: (false, false),
        }
    }

    /// The sensor capability bits to announce.
    pub fn capabilities(&self) -> u32 {
        let levels = caps::SENSE_LINE | caps::SENSE_REQUEST | caps::SENSE_OUTPUT;
        (if self.divider { levels } else { 0 }) | if self.ina.is_some() { caps::SENSE_SUPPLY } else { 0 }
    }

    /// Everything the sensors measure, with the data line idle and the line's own state
    /// machine stopped by the caller; leaves the line pulled low (idle).
    pub async fn measure(&mut self, request: MeasureRequest) -> Measured {
        let mut readings: Vec<Reading, MAX_READINGS> =
            if self.divider { sense::measure_line(self, clk_sys_freq()).await } else { Vec::new() };
        self.stop_timers();
        let window = Duration::from_millis(u64::from(request.supply_window_ms.clamp(1, MeasureRequest::MAX_WINDOW_MS)));
        if let Some((average, peak, volts)) = self.supply(window).await {
            for (quantity, value, resolution) in [
                (Quantity::SupplyAverage, average, CURRENT_LSB_UA as u32),
                (Quantity::SupplyPeak, peak, CURRENT_LSB_UA as u32),
                (Quantity::SupplyVoltage, volts, BUS_LSB_MV),
            ] {
                let _ = readings.push(Reading { quantity, value: Some(value), resolution });
            }
        }
        Measured { circuit: RIG_CIRCUIT, readings }
    }

    /// Average and peak supply current (µA) and the bus voltage (mV) over `window`, sampling
    /// as fast as the INA219 converts (532 µs at 12 bits).
    async fn supply(&mut self, window: Duration) -> Option<(i32, i32, i32)> {
        let ina = self.ina.as_mut()?;
        let end = Instant::now() + window;
        let (mut sum, mut n, mut peak, mut volts) = (0i64, 0i64, 0i64, 0i32);
        while Instant::now() < end {
            match ina.next_measurement() {
                Ok(Some(m)) => {
                    let ua = m.current.0;
                    sum += ua;
                    n += 1;
                    peak = peak.max(ua);
                    volts = i32::from(m.bus_voltage.voltage_mv());
                }
                Ok(None) => Timer::after_micros(100).await,
                Err(_) => return None,
            }
        }
        (n > 0).then(|| ((sum / n) as i32, peak.min(i64::from(i32::MAX)) as i32, volts))
    }

    fn stop_timers(&mut self) {
        self.rise.set_enable(false);
        self.fall.set_enable(false);
        self.armed = (false, false);
    }
}

/// The GPIO of the data line's sense input.
pub const SENSE_PIN: u8 = 6;

impl SenseHw for Sensors {
    fn sink(&mut self) {
        if self.armed.1 {
            self.armed.1 = false;
            let _ = self.fall.tx().try_push(0);
        } else {
            // SAFETY: the fall timer is stopped or waiting at `pull`; this only sets GP0's
            // direction (driven low).
            unsafe { self.fall.exec_instr(programs::set_instr(true, true)) };
        }
    }

    fn release(&mut self) {
        if self.armed.0 {
            self.armed.0 = false;
            let _ = self.rise.tx().try_push(0);
        } else {
            // SAFETY: as in `sink`; releases GP0.
            unsafe { self.rise.exec_instr(programs::set_instr(true, false)) };
        }
    }

    fn set_load(&mut self, on: bool) {
        self.load.set_level(if on { Level::High } else { Level::Low });
    }

    fn arm_edges(&mut self) {
        for (sm_rise, origin) in [(true, self.rise_origin), (false, self.fall_origin)] {
            if sm_rise {
                restart(&mut self.rise, origin);
            } else {
                restart(&mut self.fall, origin);
            }
        }
        self.armed = (true, true);
    }

    fn rise_count(&mut self) -> Option<u32> {
        let x = self.rise.rx().try_pull();
        self.rise.set_enable(false);
        x.map(|x| !x)
    }

    fn fall_count(&mut self) -> Option<u32> {
        let x = self.fall.rx().try_pull();
        self.fall.set_enable(false);
        x.map(|x| !x)
    }

    async fn adc(&mut self, input: Input) -> u16 {
        let ch = match input {
            Input::Line => &mut self.line,
            Input::Request => &mut self.request,
            Input::Output => &mut self.output,
        };
        // A failed conversion reads as nothing on the line.
        self.adc.blocking_read(ch).unwrap_or(0)
    }

    async fn delay_us(&mut self, us: u32) {
        Timer::after_micros(u64::from(us)).await;
    }
}

/// Stops a timer, empties its FIFOs and starts it again at its program's first instruction,
/// waiting for its go.
fn restart<const N: usize>(sm: &mut StateMachine<'static, PIO0, N>, origin: u8) {
    sm.set_enable(false);
    sm.clear_fifos();
    sm.restart();
    // SAFETY: the state machine is stopped; this sets its program counter.
    unsafe { sm.exec_instr(programs::jmp_instr(origin)) };
    sm.set_enable(true);
}
