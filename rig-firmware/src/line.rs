//! The data output: telegrams from the queue become slot words (the shared core's oversampled
//! slot encoder, via `slots`), PIO0 SM0 shifts them onto the data pin, and the Request line
//! decides when.
//!
//! Request, as the DSMR P1 Companion Standard 5.0.2 §5.7.1 has it (docs/wiring.md#request-pin-2): a
//! telegram starts only while Request is high; when Request drops mid-telegram the state machine
//! holds the line idle at the next slot (the gated program checks the pin before every slot), this
//! task then throws away what is queued for that telegram and reports how many whole characters
//! went out; the next telegram waits for Request to rise again. With `RequestMode::Ignore` the
//! ungated program runs and Request only produces events.

use core::future::poll_fn;
use core::task::Poll;

use embassy_futures::select::{Either3, select3};
use embassy_rp::clocks::clk_sys_freq;
use embassy_rp::gpio::{Input, Level, Pull};
use embassy_rp::pac;
use embassy_rp::peripherals::PIO0;
use embassy_rp::pio::{Common, Config, Direction, LoadedProgram, Pin, ShiftConfig, ShiftDirection, StateMachine};
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::watch;
use embassy_time::{Duration, Instant, Timer};
use fixed::FixedU32;
use fixed::types::extra::U8;
use heapless::Vec as HVec;
use p1sim_core::rig::pins::{RequestInput, may_send};
use p1sim_core::rig::{
    AbortReason, Buffer, ConfigError, DeviceMsg, Drive, ErrorCode, LineConfig, MAX_FAULTS, MeasureRequest, Polarity,
    RequestMode,
};
use p1sim_core::wire::{BitFault, WireError};

use crate::feed::{self, TX, TX_SPACE};
use crate::programs::{self, MOV_ISR_Y, MOV_Y_NOT_NULL, PUSH_NOBLOCK, TX_CYCLES_PER_SLOT, TxShape};
use crate::shared::{self, CONTROL, Control, JOBS, Job, PINS, REQUEST};
use crate::slots::{self, BURST, Src, TxEncoder};

type RequestRx = watch::Receiver<'static, CriticalSectionRawMutex, bool, 2>;

/// The argument of an `Error { FaultPlan }`: the index of the offending fault, or 0xFFFF for
/// a plan-wide problem (skew, settings).
fn plan_error_arg(e: WireError) -> u32 {
    match e {
        WireError::FlipBit { index, .. } | WireError::GlitchTooNarrow { index, .. } | WireError::Unsorted { index } => {
            index as u32
        }
        WireError::TooManyGlitches { char } | WireError::TooManyExtras { char } => 0x1_0000 | char.min(0xFFFF),
        _ => 0xFFFF,
    }
}

/// Refuses settings the transmitter cannot make.
pub fn check(cfg: &LineConfig) -> Result<(), ConfigError> {
    cfg.validate()?;
    clkdiv(cfg.baud, cfg.oversampling).map(|_| ()).ok_or(ConfigError::Baud)
}

/// The clock divider for `oversampling` slots per bit at three PIO cycles per slot.
fn clkdiv(baud: u32, oversampling: u8) -> Option<FixedU32<U8>> {
    let rate = u64::from(baud) * u64::from(oversampling) * u64::from(TX_CYCLES_PER_SLOT);
    if rate == 0 {
        return None;
    }
    let div256 = (u64::from(clk_sys_freq()) * 256 + rate / 2) / rate;
    (256..=65536 * 256).contains(&div256).then(|| FixedU32::from_bits(div256 as u32))
}

/// The Request pin's level, read straight from the SIO input register.
fn request_high() -> bool {
    pac::SIO.gpio_in(0).read() & (1 << PINS.request) != 0
}

/// Reports Request changes to the host and to the line task.
#[embassy_executor::task]
pub async fn request_task(pin: Input<'static>) {
    let sender = REQUEST.sender();
    // embassy-rp's pins cannot fail (`Infallible`).
    let Ok(mut request) = RequestInput::new(pin);
    sender.send(request.is_high());
    shared::update_status(|s| s.request_high = request.is_high());
    loop {
        let Ok(high) = request.changed().await;
        sender.send(high);
        shared::update_status(|s| s.request_high = high);
        shared::emit(DeviceMsg::RequestEdge { high, at_us: Instant::now().as_micros() });
    }
}

/// How a telegram left the line.
enum End {
    Complete,
    Aborted(AbortReason),
}

/// The sensors, in a build that has them.
#[cfg(feature = "sensors")]
pub type Sensors = crate::sensors::Sensors;
/// A build without sensors has none to hand over.
#[cfg(not(feature = "sensors"))]
pub type Sensors = core::convert::Infallible;

struct Line {
    common: Common<'static, PIO0>,
    #[cfg_attr(not(feature = "sensors"), allow(dead_code))]
    sensors: Option<Sensors>,
    /// A measurement asked for, taken once the line is idle.
    measure: Option<MeasureRequest>,
    sm: StateMachine<'static, PIO0, 0>,
    pin: Pin<'static, PIO0>,
    program: Option<LoadedProgram<'static, PIO0>>,
    cfg: LineConfig,
    mode: RequestMode,
    request: RequestRx,
    /// Whether the state machine's program has the Request gate.
    gated: bool,
    /// A command that cut a telegram short, applied once the line is idle again.
    pending: Option<Control>,
}

#[embassy_executor::task]
pub async fn task(
    common: Common<'static, PIO0>,
    sm: StateMachine<'static, PIO0, 0>,
    pin: Pin<'static, PIO0>,
    sensors: Option<Sensors>,
) {
    let status = shared::status();
    let Some(request) = REQUEST.receiver() else { return };
    let mut line = Line {
        common,
        sensors,
        measure: None,
        sm,
        pin,
        program: None,
        cfg: status.line,
        mode: status.request_mode,
        request,
        gated: false,
        pending: None,
    };
    line.apply();
    // A chunk that continues a telegram this task is not sending (it was cut off, or the host
    // got out of step) is dropped; this is the telegram being dropped.
    let mut dropping: Option<u16> = None;
    loop {
        if let Some(request) = line.measure.take() {
            line.take_measurements(request).await;
        }
        match embassy_futures::select::select(CONTROL.receive(), JOBS.receive()).await {
            embassy_futures::select::Either::First(c) => line.control(c),
            embassy_futures::select::Either::Second(job) => {
                if job.offset != 0 {
                    if dropping != Some(job.id) {
                        shared::flag_error();
                        shared::emit(DeviceMsg::Error { code: ErrorCode::Sequence, arg: 0 });
                    }
                    if job.last {
                        dropping = None;
                    }
                    continue;
                }
                let (id, bytes, end) = line.send(job).await;
                match end {
                    End::Complete => {
                        dropping = None;
                        shared::emit(DeviceMsg::SendComplete { id, bytes });
                    }
                    End::Aborted(reason) => {
                        dropping = Some(id);
                        shared::emit(DeviceMsg::SendAborted { id, bytes, reason });
                    }
                }
            }
        }
    }
}

impl Line {
    /// Applies a command that arrived between telegrams.
    fn control(&mut self, c: Control) {
        match c {
            Control::Line(cfg) => {
                self.cfg = cfg;
                self.apply();
            }
            Control::Request(mode) => {
                self.mode = mode;
                self.apply();
            }
            Control::Cancel => {}
            Control::Measure(request) => {
                self.measure = Some(request);
                return;
            }
        }
        let status = shared::update_status(|s| {
            s.line = self.cfg;
            s.request_mode = self.mode;
        });
        if !matches!(c, Control::Cancel) {
            shared::emit(DeviceMsg::Status(status));
        }
    }

    /// Measures with the sensors: the line's state machine stops (the line stays low, idle),
    /// the sensors' sequence drives the line through their own timers, then the line is reset
    /// to idle and its state machine started again. The answer waits for room in the event
    /// queue: the host asked.
    #[allow(unused_variables)]
    async fn take_measurements(&mut self, request: MeasureRequest) {
        #[cfg(feature = "sensors")]
        if let Some(sensors) = self.sensors.as_mut() {
            feed::stop_tx();
            self.sm.set_enable(false);
            let measured = sensors.measure(request).await;
            self.reset_to_idle();
            self.sm.set_enable(true);
            shared::EVENTS.send(DeviceMsg::Measured(measured)).await;
            return;
        }
        shared::emit(DeviceMsg::Error { code: ErrorCode::Unsupported, arg: 0 });
    }

    fn shape(&self) -> TxShape {
        let open_drain = self.cfg.drive == Drive::OpenDrain;
        // Idle is mark; inverted, mark is a low pin; open drain drives a low pin (dir = 1).
        let idle_level = self.cfg.polarity == Polarity::Normal;
        let idle = if open_drain { !idle_level } else { idle_level };
        TxShape { open_drain, idle, gated: self.mode == RequestMode::Honour }
    }

    /// Loads the program for the current settings and leaves the line idle, counter reset.
    fn apply(&mut self) {
        let shape = self.shape();
        self.sm.set_enable(false);
        if let Some(old) = self.program.take() {
            // SAFETY: the state machine that ran the program is stopped and gets the new one.
            unsafe { self.common.free_instr(old.used_memory) };
        }
        let program = self.common.load_program(&programs::tx_program(shape));
        let mut c = Config::default();
        c.use_program(&program, &[]);
        c.set_out_pins(&[&self.pin]);
        c.set_set_pins(&[&self.pin]);
        c.shift_out = ShiftConfig { threshold: 32, direction: ShiftDirection::Right, auto_fill: true };
        c.shift_in = ShiftConfig { threshold: 32, direction: ShiftDirection::Right, auto_fill: false };
        // `check` refused what does not divide; the P1 default always does.
        c.clock_divider = clkdiv(self.cfg.baud, self.cfg.oversampling).unwrap_or(FixedU32::from_num(1));
        self.sm.set_config(&c);
        // The gate reads the Request input, which stays an ordinary (SIO) input for its edges.
        pac::PIO0.sm(0).execctrl().modify(|w| w.set_jmp_pin(PINS.request));
        // No pull-up on an open-drain pin: behind the level shifter it would pull a released data
        // line towards 3.3 V, and a board without a pull-up of its own would look as if it had one.
        self.pin.set_pull(Pull::None);
        if shape.open_drain {
            // The level is always low; the slots switch the driver on (low) and off.
            self.sm.set_pins(Level::Low, &[&self.pin]);
        } else {
            self.sm.set_pin_dirs(Direction::Out, &[&self.pin]);
        }
        self.program = Some(program);
        self.gated = shape.gated;
        self.reset_to_idle();
        self.sm.set_enable(true);
    }

    /// With the state machine stopped: empties the slot ring, its FIFOs and shift registers,
    /// forces the line idle, restarts the program and the slot counter.
    fn reset_to_idle(&mut self) {
        let shape = self.shape();
        feed::stop_tx();
        TX.clear();
        self.sm.clear_fifos();
        self.sm.restart();
        let origin = self.program.as_ref().map_or(0, |p| p.origin);
        // SAFETY: the state machine is stopped; these only set its pin, Y and PC.
        unsafe {
            self.sm.exec_instr(programs::set_instr(shape.open_drain, shape.idle));
            self.sm.exec_instr(MOV_Y_NOT_NULL);
            self.sm.exec_instr(programs::jmp_instr(origin));
        }
    }

    /// Slots the state machine has shifted out since the last reset. Stops it; the caller
    /// resets or re-enables it.
    fn slots_out(&mut self) -> u32 {
        feed::stop_tx();
        self.sm.set_enable(false);
        while self.sm.rx().try_pull().is_some() {}
        // SAFETY: the state machine is stopped; this copies Y to the RX FIFO.
        unsafe {
            self.sm.exec_instr(MOV_ISR_Y);
            self.sm.exec_instr(PUSH_NOBLOCK);
        }
        !self.sm.rx().try_pull().unwrap_or(u32::MAX)
    }

    /// Time one 32-slot word takes on the line.
    fn word_time(&self) -> Duration {
        let slots_per_s = u64::from(self.cfg.baud) * u64::from(self.cfg.oversampling);
        Duration::from_micros((32 * 1_000_000 / slots_per_s.max(1)).max(1))
    }

    /// Waits until Request is high (honour mode), following commands meanwhile. Returns the
    /// reason to give up the telegram, if any.
    async fn wait_for_request(&mut self) -> Option<AbortReason> {
        loop {
            if may_send(self.mode, request_high()) {
                return None;
            }
            match select3(self.request.changed_and(|&high| high), CONTROL.receive(), core::future::pending::<()>())
                .await
            {
                Either3::First(_) | Either3::Third(()) => {}
                Either3::Second(Control::Request(mode)) => self.control(Control::Request(mode)),
                Either3::Second(c) => {
                    self.control(c);
                    return Some(AbortReason::Cancelled);
                }
            }
        }
    }

    /// Puts one telegram on the line, `first` being its opening chunk.
    async fn send(&mut self, first: Job) -> (u16, u32, End) {
        let id = first.id;
        if let Some(reason) = self.wait_for_request().await {
            return (id, 0, End::Aborted(reason));
        }
        let mut faults = [BitFault::Flip { char: 0, bit: 0 }; MAX_FAULTS];
        let n = slots::wire_faults(&first.plan, &mut faults);
        let mut enc = match TxEncoder::new(&self.cfg, &first.plan, &faults[..n]) {
            Ok(enc) => enc,
            Err(e) => {
                shared::flag_error();
                shared::emit(DeviceMsg::Error { code: ErrorCode::FaultPlan, arg: plan_error_arg(e) });
                return (id, 0, End::Aborted(AbortReason::Cancelled));
            }
        };
        shared::set_sending(true);
        // Every telegram starts from an idle line, an empty ring and a fresh slot counter.
        self.sm.set_enable(false);
        self.reset_to_idle();
        self.sm.set_enable(true);
        // Forget Request changes from before this telegram; only a drop from now on counts.
        let _ = self.request.try_changed();
        // In honour mode a telegram opens with one idle word: if Request drops just as the
        // state machine takes it, that slot goes out unchecked, and it is harmless idle.
        let lead: u32 = if self.gated { 32 } else { 0 };
        if lead > 0 {
            TX.push(enc.idle_word());
        }
        let mut job = first;
        let mut bytes = 0u32;
        let mut carry: HVec<u8, { slots::KEEP }> = HVec::new();
        let mut stall_cleared = false;
        let end = 'telegram: loop {
            let mut src = Src::new(&carry, &job.data);
            let drained = loop {
                if TX.len() + BURST > enc.max_queued()
                    && let Some(end) = self.wait_space(enc.max_queued()).await
                {
                    break 'telegram end;
                }
                let mut words = [0u32; BURST];
                let (n, drained) = enc.next_words(&mut src, &mut words, job.last);
                for &w in &words[..n] {
                    // Room was checked above; the interrupt only ever makes more.
                    TX.push(w);
                }
                if n > 0 {
                    feed::kick_tx();
                    if !stall_cleared {
                        // From here on the stall flag means the line ran dry mid-telegram.
                        let _ = self.sm.tx().stalled();
                        stall_cleared = true;
                    }
                }
                if drained || n == 0 {
                    break drained;
                }
            };
            bytes += job.data.len() as u32;
            if drained || job.last {
                break 'telegram self.drain().await;
            }
            let rest = src.rest();
            carry = rest;
            // The next chunk, racing Request and commands; a line that ran dry meanwhile is an
            // underrun (a gap the host did not ask for).
            let next = JOBS.receive();
            let gate = wait_drop(&mut self.request, self.mode);
            match select3(next, gate, CONTROL.receive()).await {
                Either3::First(next) if next.id == id && next.offset == bytes => {
                    if self.sm.tx().stalled() {
                        shared::emit(DeviceMsg::Overrun { buffer: Buffer::TxUnderrun, lost: 1 });
                    }
                    job = next;
                }
                Either3::First(_) => {
                    shared::flag_error();
                    shared::emit(DeviceMsg::Error { code: ErrorCode::Sequence, arg: bytes });
                    break 'telegram End::Aborted(AbortReason::Cancelled);
                }
                Either3::Second(()) => break 'telegram End::Aborted(AbortReason::RequestDropped),
                Either3::Third(c) => {
                    self.pending = Some(c);
                    break 'telegram End::Aborted(AbortReason::Cancelled);
                }
            }
        };
        shared::set_sending(false);
        let sent = match end {
            End::Complete => bytes,
            End::Aborted(_) => {
                let slots = self.slots_out().saturating_sub(lead);
                self.reset_to_idle();
                self.sm.set_enable(true);
                enc.chars_within(slots)
            }
        };
        if let Some(c) = self.pending.take() {
            self.control(c);
        }
        (id, sent, end)
    }

    /// Waits until the slot ring has room for a burst below `max_queued` words, racing
    /// Request and commands. Returns how the telegram ended if it ended here.
    async fn wait_space(&mut self, max_queued: usize) -> Option<End> {
        let space = poll_fn(|cx| {
            TX_SPACE.register(cx.waker());
            if TX.len() + BURST <= max_queued { Poll::Ready(()) } else { Poll::Pending }
        });
        let Line { request, mode, pending, .. } = self;
        match select3(space, wait_drop(request, *mode), CONTROL.receive()).await {
            Either3::First(()) => None,
            Either3::Second(()) => Some(End::Aborted(AbortReason::RequestDropped)),
            Either3::Third(c) => {
                *pending = Some(c);
                Some(End::Aborted(AbortReason::Cancelled))
            }
        }
    }

    /// Waits for the last slot to leave the pin: the ring and the FIFO empty and the state
    /// machine stalled on the empty FIFO.
    async fn drain(&mut self) -> End {
        let poll = (self.word_time() / 4).max(Duration::from_micros(10));
        let mut cleared = false;
        loop {
            let queued = !TX.is_empty();
            if !queued {
                // Cleared once the ring is empty, the stall flag then means the state machine
                // has shifted out the last word.
                if !cleared {
                    let _ = self.sm.tx().stalled();
                    cleared = true;
                } else if self.sm.tx().empty() && self.sm.tx().stalled() {
                    return End::Complete;
                }
            }
            // The interrupt wakes this task when the ring runs empty; the last few words in
            // the FIFO are polled for.
            let wait = async {
                if queued {
                    poll_fn(|cx| {
                        TX_SPACE.register(cx.waker());
                        if TX.is_empty() { Poll::Ready(()) } else { Poll::Pending }
                    })
                    .await
                } else {
                    Timer::after(poll).await
                }
            };
            let Line { request, mode, pending, .. } = self;
            match select3(wait, wait_drop(request, *mode), CONTROL.receive()).await {
                Either3::First(()) => {}
                Either3::Second(()) => return End::Aborted(AbortReason::RequestDropped),
                Either3::Third(c) => {
                    *pending = Some(c);
                    return End::Aborted(AbortReason::Cancelled);
                }
            }
        }
    }
}

/// Resolves when Request drops (honour mode only; never in ignore mode).
async fn wait_drop(request: &mut RequestRx, mode: RequestMode) {
    if mode == RequestMode::Ignore {
        return core::future::pending().await;
    }
    if !request_high() {
        return;
    }
    request.changed_and(|&high| !high).await;
}
