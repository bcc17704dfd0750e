// The p1sim rig in rp2040js 1.4.1 (pinned exactly: this file patches its internals).
//
// What stock rp2040js 1.4.1 gets wrong for this firmware, and what is done about it here (read
// from the package's dist/esm/peripherals/pio.js and its USB CDC host, then confirmed by running):
// - PIO runs on a setTimeout loop decoupled from simulated time and ignores CLKDIV and [delay]:
//   `pio.run` is disabled and every enabled state machine is stepped from the CPU loop at its
//   own divided clock (16.8 fixed point), with [delay] cycles turned into stall ticks; waits are
//   event-driven in rp2040js, so waiting machines are not stepped, only kept in phase.
// - The OSR shift count starts at 0 (the first autopull OUT would shift 32 zeros): set to 32.
// - FJOIN is ignored: changing it now resizes and flushes the FIFOs, as hardware does (embassy's
//   clear_fifos toggles FJOIN_RX).
// - USB bug A: the OUT buffer's AVAILABLE bit is cleared when a transfer starts, which embassy
//   reads as "done": AVAILABLE now stays set until the data arrives.
// - USB bug B: the simulated host answers every armed OUT buffer at once with an empty packet:
//   reads are now held until the host has data, as a real host NAKs.
// - SEV is a no-op (it only logs "SEV"): embassy's executor wakes itself with SEV when a task
//   wakes another from thread mode, so that wake was lost until the next interrupt, and with the
//   line held by Request (no PIO or USB interrupts) forever. The log call now sets the event
//   register, as the instruction does on hardware.
// - Boot without a bootrom: PC=0x10000000 (boot2), SP=0x20042000, LR=0.
// - A watchdog reset is reported as a test failure instead of being ignored.

import { readFileSync } from 'node:fs';
import { ConsoleLogger, LogLevel, RP2040, USBCDC } from 'rp2040js';

export const PIN = { data: 0, request: 3, capture: 5, led: 25 };

const SHIFTCTRL = 0x0d0 - 0x0c8;
/** IC_RAW_INTR_STAT.TX_EMPTY of the RP2040 I2C block. */
const I2C_TX_EMPTY = 1 << 4;

/** Loads a UF2 image into flash. */
function loadUF2(mcu, path) {
  const uf2 = readFileSync(path);
  if (uf2.length % 512 !== 0) throw new Error(`${path}: not a UF2 file (size ${uf2.length})`);
  for (let off = 0; off < uf2.length; off += 512) {
    const b = uf2.subarray(off, off + 512);
    const dv = new DataView(b.buffer, b.byteOffset, 512);
    if (dv.getUint32(0, true) !== 0x0a324655 || dv.getUint32(508, true) !== 0x0ab16f30) {
      throw new Error(`${path}: block ${off / 512} has bad UF2 magic`);
    }
    const addr = dv.getUint32(12, true);
    const size = dv.getUint32(16, true);
    mcu.flash.set(b.subarray(32, 32 + size), addr - 0x10000000);
  }
}

export class Rig {
  constructor(uf2Path) {
    const mcu = (this.mcu = new RP2040());
    // rp2040js logs every unimplemented register; only errors matter here. The core reports SEV
    // to the logger and does nothing else: the event register is set here (see the top).
    const logger = new ConsoleLogger(LogLevel.Error);
    const info = logger.info.bind(logger);
    logger.info = (component, message) => {
      if (message === 'SEV') mcu.core.eventRegistered = true;
      else info(component, message);
    };
    mcu.logger = logger;
    loadUF2(mcu, uf2Path);
    this.cyc256 = 0; // system clock cycles since boot, times 256
    this.ns0 = 0; // time and cycle count at the last clk_sys change
    this.cyc0 = 0;
    this.clkSys = mcu.clkSys;
    this.tickNs = 0; // timestamp pin listeners see
    this.busyNs = 0; // simulated time the core spent executing rather than waiting (WFI/WFE)
    this.failed = null;
    this.patchPio();
    this.patchUsb();
    // rp2040js keeps the watchdog only in its peripheral map (WATCHDOG_BASE, 0x40058000).
    const watchdog = mcu.peripherals[0x40058];
    watchdog.onWatchdogTrigger = () => {
      this.failed = 'the watchdog reset the rig (a task hung or panicked)';
    };
    mcu.core.SP = 0x20042000;
    mcu.core.LR = 0;
    mcu.core.PC = 0x10000000;
    // An empty I2C bus: every address is NACKed, as on a rig without a current monitor
    // (rp2040js waits forever for a device that never answers).
    for (const i2c of mcu.i2c) {
      // rp2040js flushes the TX FIFO on an abort (a NACK) but never raises TX_EMPTY, which
      // the hardware does once the FIFO is empty; drivers that wait for it would hang.
      const abort = i2c.abort.bind(i2c);
      i2c.abort = (reason) => {
        abort(reason);
        i2c.setInterrupts(I2C_TX_EMPTY);
      };
      i2c.onStart = () => i2c.completeStart();
      i2c.onConnect = () => i2c.completeConnect(false);
      i2c.onStop = () => i2c.completeStop();
    }
    // No sense divider on ADC0 until `attachBoard` fits one: the pin floats, and the firmware's
    // probe (with the pad pull-up on) reads the rail, as on a first-generation rig.
    mcu.adc.channelValues[0] = 4095;
    this.connected = false;
    this.fromDevice = [];
    this.cdc.onDeviceConnected = () => (this.connected = true);
    this.cdc.onSerialData = (buf) => this.fromDevice.push(...buf);
  }

  get nanos() {
    return this.mcu.clock.nanos;
  }

  patchPio() {
    this.machines = [];
    for (const pio of this.mcu.pio) {
      pio.run = () => {}; // stepped from the CPU loop instead
      for (const sm of pio.machines) {
        sm.outputShiftCount = 32;
        const st = { pio, sm, next: 0, stall: 0, lastCycles: sm.cycles, wasEnabled: false };
        this.machines.push(st);
        const write = sm.writeUint32.bind(sm);
        sm.writeUint32 = (offset, value) => {
          if (offset === SHIFTCTRL) {
            const before = sm.shiftCtrl >>> 30;
            write(offset, value);
            const join = sm.shiftCtrl >>> 30;
            if (join !== before) this.resizeFifos(sm, join);
            return;
          }
          write(offset, value);
        };
        sm.clkDivRestart = () => {
          st.next = this.cyc256;
        };
      }
    }
  }

  resizeFifos(sm, join) {
    const FIFO = sm.txFIFO.constructor;
    const tx = join & 2 ? 8 : join & 1 ? 0 : 4;
    const rx = join & 1 ? 8 : join & 2 ? 0 : 4;
    sm.txFIFO = new FIFO(Math.max(tx, 1));
    sm.rxFIFO = new FIFO(Math.max(rx, 1));
    sm.updateDMATx();
    sm.updateDMARx();
    sm.pio.checkInterrupts();
  }

  div256(sm) {
    const int = sm.clockDivInt || 65536;
    return int * 256 + sm.clockDivFrac;
  }

  /** Nanoseconds at cycle count c (×256). */
  nsAt(c) {
    return this.ns0 + ((c - this.cyc0) / 256) * (1e9 / this.clkSys);
  }

  /** Steps every enabled, non-waiting state machine through the ticks due by now. */
  stepPio() {
    for (const st of this.machines) {
      const { sm } = st;
      if (!sm.enabled) {
        st.wasEnabled = false;
        continue;
      }
      if (!st.wasEnabled) {
        st.wasEnabled = true;
        st.next = this.cyc256;
        st.lastCycles = sm.cycles;
      }
      const div = this.div256(sm);
      while (st.next <= this.cyc256) {
        const t = st.next;
        st.next += div;
        // Cycles added by events since the last tick (a wait completed with a [delay]).
        st.stall += sm.cycles - st.lastCycles;
        st.lastCycles = sm.cycles;
        if (st.stall > 0) {
          st.stall--;
          continue;
        }
        if (sm.waiting) {
          // Waits complete on events (pin, FIFO, IRQ) in rp2040js: skip to now, in phase.
          if (st.next <= this.cyc256) st.next += Math.ceil((this.cyc256 - st.next + 1) / div) * div;
          continue;
        }
        const before = sm.cycles;
        sm.step();
        st.stall += Math.max(0, sm.cycles - before - 1);
        st.lastCycles = sm.cycles;
        this.tickNs = this.nsAt(t);
        st.pio.checkChangedPins();
      }
    }
  }

  /** The earliest PIO tick that needs stepping, in cycles ×256. */
  nextPioTick() {
    let next = Infinity;
    for (const st of this.machines) {
      if (st.sm.enabled && !st.sm.waiting) next = Math.min(next, st.next);
    }
    return next;
  }

  patchUsb() {
    const usb = this.mcu.usbCtrl;
    const AVAILABLE = 1 << 10;
    const dpram = () => this.mcu.usbDPRAMView;
    const updated = usb.DPRAMUpdated.bind(usb);
    usb.DPRAMUpdated = (offset, value) => {
      updated(offset, value);
      const ep = (offset - 0x80) >> 3;
      if (value & AVAILABLE && offset >= 0x88 && offset <= 0xfc && offset & 4 && ep !== 0) {
        dpram().setUint32(offset, dpram().getUint32(offset, true) | AVAILABLE, true); // bug A
      }
    };
    const finishRead = usb.finishRead.bind(usb);
    usb.finishRead = (endpoint, buffer) => {
      const reg = 0x84 + endpoint * 8;
      if (endpoint !== 0) dpram().setUint32(reg, dpram().getUint32(reg, true) & ~AVAILABLE, true);
      finishRead(endpoint, buffer);
    };
    this.cdc = new USBCDC(usb);
    this.toDevice = [];
    this.pendingRead = null;
    usb.onEndpointRead = (endpoint, size) => {
      if (endpoint !== this.cdc.outEndpoint) return;
      this.pendingRead = { endpoint, size };
      this.serveRead(); // bug B: held until there is data
    };
  }

  serveRead() {
    if (!this.pendingRead || this.toDevice.length === 0) return;
    const { endpoint, size } = this.pendingRead;
    this.pendingRead = null;
    const n = Math.min(size, this.toDevice.length);
    this.mcu.usbCtrl.endpointReadDone(endpoint, Uint8Array.from(this.toDevice.splice(0, n)));
  }

  /** Queues bytes from the host to the rig. */
  write(bytes) {
    this.toDevice.push(...bytes);
    this.serveRead();
  }

  /** Runs the simulation for `ns` nanoseconds of simulated time. */
  run(ns) {
    const { mcu } = this;
    const { core, clock } = mcu;
    const end = clock.nanos + ns;
    while (clock.nanos < end) {
      if (this.failed) throw new Error(this.failed);
      if (mcu.clkSys !== this.clkSys) {
        this.ns0 = clock.nanos;
        this.cyc0 = this.cyc256;
        this.clkSys = mcu.clkSys;
      }
      const cycNs = 1e9 / this.clkSys;
      if (core.waiting) {
        let target = end;
        if (clock.nextAlarm) target = Math.min(target, clock.nextAlarm.nanos);
        const pio = this.nextPioTick();
        if (pio !== Infinity) target = Math.min(target, this.nsAt(pio));
        const dt = Math.max(target - clock.nanos, cycNs);
        clock.tick(dt);
        this.cyc256 += (dt / cycNs) * 256;
      } else {
        const cycles = core.executeInstruction();
        clock.tick(cycles * cycNs);
        this.busyNs += cycles * cycNs;
        this.cyc256 += cycles * 256;
        this.tickNs = clock.nanos;
        for (const pio of mcu.pio) pio.checkChangedPins();
      }
      this.stepPio();
      this.serveRead();
    }
  }

  /** Runs until `pred()` holds, checking every `stepNs`; throws after `timeoutNs`. */
  runUntil(pred, timeoutNs, what, stepNs = 100_000) {
    const end = this.nanos + timeoutNs;
    while (!pred()) {
      if (this.nanos >= end) throw new Error(`timed out after ${timeoutNs / 1e6} ms (simulated) waiting for ${what}`);
      this.run(stepNs);
    }
  }

  /** Records the level changes of a pin: [ns, state] with rp2040js GPIOPinState values. */
  recordPin(pin) {
    const edges = [[this.nanos, this.mcu.gpio[pin].value]];
    this.mcu.gpio[pin].addListener((state) => edges.push([this.tickNs, state]));
    return edges;
  }

  setInput(pin, high) {
    this.mcu.gpio[pin].setInputValue(high);
  }
}

// ---------------------------------------------------------------------------------------------
// The host-rig protocol (p1sim_core::rig): COBS(version ‖ postcard ‖ CRC-32C) 0x00.

export const PROTOCOL_VERSION = 2;

const CRC32C = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return (bytes) => {
    let c = 0xffffffff;
    for (const b of bytes) c = t[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
})();

function cobsEncode(src) {
  const out = [0];
  let code = 1;
  let codeAt = 0;
  for (const b of src) {
    if (b === 0) {
      out[codeAt] = code;
      codeAt = out.length;
      out.push(0);
      code = 1;
    } else {
      out.push(b);
      code++;
      if (code === 0xff) {
        out[codeAt] = code;
        codeAt = out.length;
        out.push(0);
        code = 1;
      }
    }
  }
  out[codeAt] = code;
  return out;
}

function cobsDecode(src) {
  const out = [];
  let i = 0;
  while (i < src.length) {
    const code = src[i++];
    if (code === 0) throw new Error('COBS: zero inside a frame');
    for (let k = 1; k < code; k++) {
      if (i >= src.length) throw new Error('COBS: truncated');
      out.push(src[i++]);
    }
    if (code < 0xff && i < src.length) out.push(0);
  }
  return out;
}

/** Postcard writer for the subset the protocol uses. */
class W {
  constructor() {
    this.b = [];
  }
  u8(v) {
    this.b.push(v & 0xff);
    return this;
  }
  varint(v) {
    let x = BigInt(v);
    do {
      let byte = Number(x & 0x7fn);
      x >>= 7n;
      if (x) byte |= 0x80;
      this.b.push(byte);
    } while (x);
    return this;
  }
  i32(v) {
    return this.varint(v >= 0 ? 2 * v : -2 * v - 1);
  }
  bool(v) {
    return this.u8(v ? 1 : 0);
  }
  bytes(a) {
    this.varint(a.length);
    this.b.push(...a);
    return this;
  }
}

/** Postcard reader. */
class R {
  constructor(b) {
    this.b = b;
    this.i = 0;
  }
  u8() {
    if (this.i >= this.b.length) throw new Error('postcard: truncated');
    return this.b[this.i++];
  }
  varint() {
    let x = 0n;
    let shift = 0n;
    for (;;) {
      const byte = this.u8();
      x |= BigInt(byte & 0x7f) << shift;
      if (!(byte & 0x80)) return Number(x);
      shift += 7n;
    }
  }
  bool() {
    return this.u8() !== 0;
  }
  bytes() {
    const n = this.varint();
    const out = this.b.slice(this.i, this.i + n);
    this.i += n;
    return out;
  }
  str() {
    return Buffer.from(this.bytes()).toString('utf8');
  }
}

const PARITY = { N: 0, E: 1, O: 2 };

function framing(w, f) {
  w.u8(Number(f[0])).varint(PARITY[f[1]]).u8(Number(f[2]));
}

function readFraming(r) {
  return `${r.u8()}${'NEO'[r.varint()]}${r.u8()}`;
}

/** Encodes a host message: { hello } | { line } | { request } | { capture } | { send } | { cancel }. */
export function encodeHost(msg) {
  const w = new W();
  if (msg.hello) w.varint(0);
  else if (msg.line) {
    const l = msg.line;
    w.varint(1).varint(l.baud);
    framing(w, l.framing);
    w.varint(l.inverted ? 1 : 0).varint(l.openDrain ? 1 : 0).u8(l.oversampling ?? 8);
  } else if (msg.request) w.varint(2).varint(msg.request === 'ignore' ? 1 : 0);
  else if (msg.capture) {
    const c = msg.capture;
    w.varint(3).bool(c.enabled ?? true).varint(c.baud);
    framing(w, c.framing);
    w.varint(c.inverted ? 1 : 0);
  } else if (msg.send) {
    const s = msg.send;
    const plan = s.plan ?? {};
    w.varint(4).varint(s.id).varint(s.offset ?? 0).bool(s.last ?? true);
    w.i32(plan.skew_ppm ?? 0).varint(plan.gap ?? 0);
    const faults = plan.faults ?? [];
    w.varint(faults.length);
    for (const f of faults) {
      if (f.flip) w.varint(0).varint(f.flip.char).u8(f.flip.bit);
      else if (f.glitch) w.varint(1).varint(f.glitch.char).varint(f.glitch.at).varint(f.glitch.width).bool(f.glitch.mark);
      else if (f.idle) w.varint(2).varint(f.idle.after).varint(f.idle.length);
      else if (f.break) w.varint(3).varint(f.break.after).varint(f.break.length);
    }
    w.bytes(s.data);
  } else if (msg.cancel) w.varint(5);
  else if (msg.measure) w.varint(6).varint(msg.measure.windowMs ?? 500);
  else throw new Error(`unknown host message ${JSON.stringify(msg)}`);
  const body = [PROTOCOL_VERSION, ...w.b];
  const crc = CRC32C(body);
  body.push(crc & 0xff, (crc >>> 8) & 0xff, (crc >>> 16) & 0xff, crc >>> 24);
  return [...cobsEncode(body), 0];
}

function readLine(r) {
  return {
    baud: r.varint(),
    framing: readFraming(r),
    inverted: r.varint() === 1,
    openDrain: r.varint() === 1,
    oversampling: r.u8(),
  };
}

function readStatus(r) {
  const line = readLine(r);
  const capture = { enabled: r.bool(), baud: r.varint(), framing: readFraming(r), inverted: r.varint() === 1 };
  return { line, capture, requestMode: r.varint() === 0 ? 'honour' : 'ignore', requestHigh: r.bool() };
}

const ERRORS = ['Cobs', 'Oversize', 'Crc', 'Version', 'Message', 'Config', 'Sequence', 'Unsupported', 'FaultPlan', 'Sensor'];

export const QUANTITIES = [
  'lineOpen',
  'lineLoaded',
  'rise',
  'fall',
  'request',
  'outputHigh',
  'supplyAverage',
  'supplyPeak',
  'supplyVoltage',
];

function decodeDevice(body) {
  const r = new R(body);
  switch (r.varint()) {
    case 0: {
      const hello = { protocol: r.u8(), firmware: r.str(), mode: r.varint() === 0 ? 'host' : 'standalone' };
      hello.profile = r.str();
      hello.pins = { data: r.u8(), request: r.u8(), capture: r.u8(), led: r.u8() };
      hello.capabilities = r.varint();
      hello.maxChunk = r.varint();
      hello.status = readStatus(r);
      return { hello };
    }
    case 1:
      return { status: readStatus(r) };
    case 2:
      return { requestEdge: { high: r.bool(), atUs: r.varint() } };
    case 3: {
      const n = r.varint();
      const chars = [];
      for (let i = 0; i < n; i++) chars.push({ byte: r.u8(), flags: r.u8(), atUs: r.varint() });
      return { captured: chars };
    }
    case 4:
      return { sendComplete: { id: r.varint(), bytes: r.varint() } };
    case 5:
      return { sendAborted: { id: r.varint(), bytes: r.varint(), reason: r.varint() === 0 ? 'request' : 'cancel' } };
    case 6:
      return { overrun: { buffer: r.varint(), lost: r.varint() } };
    case 7:
      return { error: { code: ERRORS[r.varint()], arg: r.varint() } };
    case 8: {
      const circuit = { senseInputOhms: r.varint(), knownLoadOhms: r.varint(), thresholdMv: r.varint() };
      const n = r.varint();
      const readings = {};
      for (let i = 0; i < n; i++) {
        const q = QUANTITIES[r.varint()];
        let value = null;
        if (r.u8() === 1) {
          const z = r.varint();
          value = z & 1 ? -(z + 1) / 2 : z / 2;
        }
        readings[q] = { value, resolution: r.varint() };
      }
      return { measured: { circuit, readings } };
    }
    default:
      throw new Error('unknown device message');
  }
}

/** Splits received bytes into frames and decodes them; leaves a partial frame in `buf`. */
export function takeMessages(buf) {
  const out = [];
  for (;;) {
    const z = buf.indexOf(0);
    if (z < 0) return out;
    const frame = buf.splice(0, z + 1).slice(0, z);
    if (frame.length === 0) continue;
    const body = cobsDecode(frame);
    const crc = CRC32C(body.slice(0, -4));
    const got = body[body.length - 4] | (body[body.length - 3] << 8) | (body[body.length - 2] << 16) | (body[body.length - 1] << 24);
    if (crc >>> 0 !== got >>> 0) throw new Error('frame from the rig failed its CRC');
    if (body[0] < 1 || body[0] > PROTOCOL_VERSION) throw new Error(`rig speaks protocol ${body[0]}`);
    out.push(decodeDevice(body.slice(1, -4)));
  }
}

// ---------------------------------------------------------------------------------------------
// A board under test on the emulated pins, with the rig's sensors (the `sensors` firmware):
// the data line's level behind the 150k/150k sense divider (ADC0, and GP6 for the edge timers),
// the 10 kΩ known load switched by GP7, Request and the board's output behind their dividers
// (ADC1, ADC2), and an INA219 current monitor answering on I2C0 at 0x40.

export const SENSE = { inputOhms: 300_000, loadOhms: 10_000, thresholdVolts: 3.2, ratio: 0.5 };
export const PINS = { sense: 6, load: 7 };

/**
 * The board: a pull-up of `pullUpOhms` to `pullUpVolts` (null: none) on `capacitancePf` of line,
 * Request driven to `requestVolts`, a TTL output at `outputVolts`, `supplyMa` drawn from +5 V with
 * bursts to `supplyPeakMa` (a tenth of the time), and a loopback of the data into the capture
 * input, inverted, as a working board delivers it.
 */
export function boardModel({
  pullUpOhms = 4_700,
  pullUpVolts = 5,
  capacitancePf = 115,
  requestVolts = 5,
  outputVolts = 3.3,
  supplyMa = 1.1,
  supplyPeakMa = supplyMa,
} = {}) {
  const g = (load) => (pullUpOhms ? 1 / pullUpOhms : 0) + 1 / SENSE.inputOhms + (load ? 1 / SENSE.loadOhms : 0);
  const level = (load) => (pullUpOhms ? pullUpVolts / pullUpOhms / g(load) : 0);
  const open = level(false);
  const tau = (capacitancePf * 1e-12) / g(false);
  const riseNs = open > SENSE.thresholdVolts ? tau * Math.log(open / (open - SENSE.thresholdVolts)) * 1e9 : null;
  return { open, loaded: level(true), riseNs, requestVolts, outputVolts, supplyMa, supplyPeakMa };
}

/** Puts `board` (from boardModel) on the rig's pins. */
export function attachBoard(rig, board) {
  const { mcu } = rig;
  const adc = (volts) => Math.max(0, Math.min(4095, Math.floor((volts * SENSE.ratio * 4096) / 3.3)));
  let released = false;
  let load = false;
  const updateLine = () => {
    mcu.adc.channelValues[0] = adc(released ? (load ? board.loaded : board.open) : 0);
  };
  mcu.adc.channelValues[1] = adc(board.requestVolts);
  mcu.adc.channelValues[2] = adc(board.outputVolts);
  updateLine();
  rig.setInput(PIN.request, board.requestVolts >= 2);
  rig.setInput(PIN.capture, true);
  rig.setInput(PINS.sense, false);
  const edge = mcu.clock.createAlarm(() => rig.setInput(PINS.sense, released));
  mcu.gpio[PIN.data].addListener((state) => {
    const nowReleased = state !== GPIOPinStateLow;
    // The board inverts the data line into the capture input (a TTL mark is high).
    rig.setInput(PIN.capture, !nowReleased);
    if (nowReleased === released) return;
    released = nowReleased;
    updateLine();
    edge.cancel();
    if (released) {
      if (board.riseNs !== null) edge.schedule(Math.max(1, Math.round(board.riseNs)));
    } else {
      // The rig's open drain sinks the line in a few nanoseconds.
      edge.schedule(8);
    }
  });
  mcu.gpio[PINS.load].addListener((state) => {
    load = state === GPIOPinStateHigh;
    updateLine();
  });
  attachIna219(rig, board);
}

const GPIOPinStateLow = 0;
const GPIOPinStateHigh = 1;

/** An INA219 at 0x40 on I2C0 with a 0.1 Ω shunt, converting every 532 µs (12 bits, continuous). */
function attachIna219(rig, board) {
  const { mcu } = rig;
  const i2c = mcu.i2c[0];
  const CONVERSION_NS = 532_000;
  const RESET_CONFIG = 0x399f;
  const regs = { config: RESET_CONFIG, calibration: 0 };
  let pointer = 0;
  let writing = null;
  let reading = 0;
  let lastRead = -1;
  // Bursts to the peak a tenth of the time, around a base that keeps the average.
  const base = board.supplyPeakMa > board.supplyMa ? Math.max(0, (board.supplyMa - 0.1 * board.supplyPeakMa) / 0.9) : board.supplyMa;
  const currentAt = (k) => (k % 10 === 3 ? board.supplyPeakMa : base) / 1000;
  const conversion = () => Math.floor(mcu.clock.nanos / CONVERSION_NS);
  const shuntRaw = () => Math.round((currentAt(conversion()) * 0.1) / 10e-6);
  const currentRaw = () => Math.round((shuntRaw() * regs.calibration) / 4096);
  const register = (r) => {
    switch (r) {
      case 0:
        return regs.config;
      case 1:
        return shuntRaw() & 0xffff;
      case 2: {
        const ready = conversion() > lastRead ? 2 : 0;
        return ((Math.round(4968 / 4) << 3) | ready) & 0xffff;
      }
      case 3:
        // Reading the power register clears the conversion-ready flag.
        lastRead = conversion();
        return Math.round((currentRaw() * Math.round(4968 / 4)) / 5000) & 0xffff;
      case 4:
        return currentRaw() & 0xffff;
      case 5:
        return regs.calibration;
      default:
        return 0;
    }
  };
  i2c.onStart = () => i2c.completeStart();
  i2c.onConnect = (address) => {
    if (address !== 0x40) {
      i2c.completeConnect(false);
      return;
    }
    writing = null;
    reading = 0;
    i2c.completeConnect(true);
  };
  // The controller sends a repeated start wherever a transfer changes direction (IC_RESTART_EN),
  // which rp2040js does not model: the device sees a new transfer at each change.
  i2c.onWriteByte = (value) => {
    if (!writing) {
      writing = [];
      reading = 0;
    }
    writing.push(value);
    if (writing.length === 1) pointer = value;
    if (writing.length === 3) {
      const v = (writing[1] << 8) | writing[2];
      if (pointer === 0) regs.config = v & 0x8000 ? RESET_CONFIG : v;
      if (pointer === 0 && v & 0x8000) regs.calibration = 0;
      if (pointer === 5) regs.calibration = v & 0xfffe;
    }
    i2c.completeWrite(true);
  };
  i2c.onReadByte = () => {
    if (writing) {
      writing = null;
      reading = 0;
    }
    const v = register(pointer);
    i2c.completeRead(reading++ === 0 ? v >> 8 : v & 0xff);
  };
  i2c.onStop = () => i2c.completeStop();
}
