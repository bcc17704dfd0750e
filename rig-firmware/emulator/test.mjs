// Hardware-in-the-loop tests of the rig firmware in the rp2040js emulator: the host talks to the
// firmware over emulated USB CDC, the tests read the data pin's levels and drive the Request and
// capture pins. Run by `cargo xtask firmware-test` as `node test.mjs HOST.uf2 STANDALONE.uf2`.

import assert from 'node:assert/strict';
import test from 'node:test';
import { GPIOPinState } from 'rp2040js';
import { PIN, Rig, attachBoard, boardModel, encodeHost, takeMessages } from './harness.mjs';

const [hostUf2, pocketUf2] = process.argv.slice(2);
if (!hostUf2 || !pocketUf2) {
  console.error('usage: node test.mjs HOST.uf2 STANDALONE.uf2 (cargo xtask firmware-test builds both)');
  process.exit(2);
}

const MS = 1e6;

function crc16(bytes) {
  let crc = 0;
  for (const b of bytes) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0xa001 : crc >>> 1;
  }
  return crc;
}

/** A DSMR 5 telegram of about `lines` data lines, with its CRC. */
function telegram(lines = 20) {
  let s = '/ISK5\\2M550T-1012\r\n\r\n1-3:0.2.8(50)\r\n0-0:1.0.0(260101000000W)\r\n';
  for (let i = 0; i < lines; i++) s += `1-0:${21 + i}.7.0(${String(i * 37).padStart(2, '0')}.${String(i * 7 % 1000).padStart(3, '0')}*kW)\r\n`;
  s += '!';
  const crc = crc16(Buffer.from(s, 'latin1')).toString(16).toUpperCase().padStart(4, '0');
  return [...Buffer.from(`${s}${crc}\r\n`, 'latin1')];
}

/** Boots a rig (on `board`, if given, wired before power-up), waits for USB, says hello. */
function boot(uf2, { request = true, board = null } = {}) {
  const rig = new Rig(uf2);
  rig.setInput(PIN.request, request);
  rig.setInput(PIN.capture, true);
  if (board) attachBoard(rig, board);
  rig.runUntil(() => rig.connected, 200 * MS, 'USB enumeration');
  rig.events = [];
  rig.send = (msg) => rig.write(encodeHost(msg));
  rig.poll = () => rig.events.push(...takeMessages(rig.fromDevice));
  rig.expect = (key, timeoutNs = 50 * MS) => {
    let found;
    rig.runUntil(
      () => {
        rig.poll();
        const i = rig.events.findIndex((e) => key in e);
        if (i >= 0) found = rig.events.splice(i, 1)[0][key];
        return found !== undefined;
      },
      timeoutNs,
      `a ${key} event`,
      20_000,
    );
    return found;
  };
  rig.send({ hello: true });
  rig.hello = rig.expect('hello');
  return rig;
}

/** The symbol on the data pin: open drain inverted P1, so driven low = mark, released = space. */
const p1Mark = (state) => state === GPIOPinState.Low;

/**
 * A software UART over recorded edges: returns { chars: [{byte, framing, parity, start}], bitNs }.
 * `mark(state)` maps a pin state to the logical mark level.
 */
function decodeUart(edges, { baud, dataBits = 8, parity = 'N', mark = p1Mark }) {
  const bit = 1e9 / baud;
  const levelAt = (t) => {
    let lo = 0;
    let hi = edges.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (edges[mid][0] <= t) lo = mid;
      else hi = mid - 1;
    }
    return mark(edges[lo][1]);
  };
  const nbits = dataBits + (parity === 'N' ? 0 : 1) + 1;
  const chars = [];
  let i = 1;
  while (i < edges.length) {
    // A start bit: a transition to space.
    if (mark(edges[i][1]) || !mark(edges[i - 1][1])) {
      i++;
      continue;
    }
    const t0 = edges[i][0];
    let byte = 0;
    let ones = 0;
    for (let k = 0; k < dataBits; k++) {
      if (levelAt(t0 + (k + 1.5) * bit)) {
        byte |= 1 << k;
        ones++;
      }
    }
    let parityError = false;
    if (parity !== 'N') {
      const p = levelAt(t0 + (dataBits + 1.5) * bit) ? 1 : 0;
      parityError = (ones + p) % 2 !== (parity === 'E' ? 0 : 1);
    }
    const stopAt = t0 + (nbits + 0.5) * bit;
    const framing = !levelAt(stopAt);
    chars.push({ byte, framing, parity: parityError, start: t0 });
    while (i < edges.length && edges[i][0] <= stopAt) i++;
  }
  return chars;
}

/** Mean bit period from edge spacings, each divided by its nearest whole number of bits. */
function bitPeriod(edges, baud) {
  const nominal = 1e9 / baud;
  let total = 0;
  let bits = 0;
  for (let i = 2; i < edges.length; i++) {
    const d = edges[i][0] - edges[i - 1][0];
    const n = Math.round(d / nominal);
    if (n >= 1 && n <= 10) {
      total += d;
      bits += n;
    }
  }
  return total / bits;
}

function sendTelegram(rig, bytes, id, plan) {
  const chunk = rig.hello.maxChunk;
  for (let off = 0; off < bytes.length; off += chunk) {
    const data = bytes.slice(off, off + chunk);
    rig.send({ send: { id, offset: off, last: off + chunk >= bytes.length, plan: off === 0 ? plan : undefined, data } });
  }
}

const figures = {};

/** Sensor capability bits of the Hello: line, request, supply, output. */
const SENSE_BITS = (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8);

test('boots, enumerates over USB and says hello', () => {
  const rig = boot(hostUf2);
  assert.equal(rig.hello.protocol, 2);
  assert.equal(rig.hello.mode, 'host');
  assert.deepEqual(rig.hello.pins, { data: 0, request: 3, capture: 5, led: 25 });
  assert.equal(rig.hello.status.line.baud, 115200);
  assert.equal(rig.hello.status.line.inverted, true);
  assert.equal(rig.hello.status.line.openDrain, true);
  assert.equal(rig.hello.status.requestHigh, true);
  // A first-generation rig: no sense divider on ADC0 and no INA219 on the I2C bus, so no
  // sensor is announced (and none would be read from floating pins).
  assert.equal(rig.hello.capabilities & SENSE_BITS, 0);
  rig.send({ measure: { windowMs: 5 } });
  assert.equal(rig.expect('error').code, 'Unsupported');
  // A garbled frame is answered with an error, and the rig still answers afterwards.
  rig.write([1, 2, 3, 4, 5, 0]);
  assert.ok(['Cobs', 'Crc', 'Message'].includes(rig.expect('error').code));
  rig.send({ hello: true });
  assert.equal(rig.expect('hello').protocol, 2);
});

test('a 115200 8N1 telegram appears inverted and open drain, bit periods within 1 %', () => {
  const rig = boot(hostUf2);
  const edges = rig.recordPin(PIN.data);
  assert.equal(rig.mcu.gpio[PIN.data].value, GPIOPinState.Low, 'idle P1 line is driven low');
  const t = telegram(20);
  sendTelegram(rig, t, 1);
  const done = rig.expect('sendComplete', 200 * MS);
  assert.deepEqual(done, { id: 1, bytes: t.length });
  const states = new Set(edges.map((e) => e[1]));
  assert.ok(states.has(GPIOPinState.Input), 'space releases the pin (open drain, no pull-up)');
  assert.ok(!states.has(GPIOPinState.High), 'the pin is never driven high');
  const chars = decodeUart(edges, { baud: 115200 });
  assert.deepEqual(chars.map((c) => c.byte), t);
  assert.equal(chars.filter((c) => c.framing).length, 0);
  const period = bitPeriod(edges, 115200);
  const err = (period * 115200) / 1e9 - 1;
  figures.bitError115200 = err;
  assert.ok(Math.abs(err) < 0.01, `bit period ${period} ns is ${(err * 100).toFixed(3)} % off`);
});

test('9600 7E1: parity and bit periods within 1 %', () => {
  const rig = boot(hostUf2);
  rig.send({ line: { baud: 9600, framing: '7E1', inverted: true, openDrain: true, oversampling: 8 } });
  assert.equal(rig.expect('status').line.framing, '7E1');
  const edges = rig.recordPin(PIN.data);
  const t = telegram(3);
  sendTelegram(rig, t, 2);
  rig.expect('sendComplete', 400 * MS);
  const chars = decodeUart(edges, { baud: 9600, dataBits: 7, parity: 'E' });
  assert.deepEqual(chars.map((c) => c.byte), t);
  assert.equal(chars.filter((c) => c.parity || c.framing).length, 0);
  const err = (bitPeriod(edges, 9600) * 9600) / 1e9 - 1;
  figures.bitError9600 = err;
  assert.ok(Math.abs(err) < 0.01, `bit period ${(err * 100).toFixed(3)} % off`);
});

test('a planned stop-bit flip is exactly one framing error', () => {
  const rig = boot(hostUf2);
  const edges = rig.recordPin(PIN.data);
  const t = telegram(5);
  // One bit of extra idle after the bad character gives the next start bit its edge; without
  // it a receiver that waits for a falling edge would also misframe the following character.
  sendTelegram(rig, t, 3, { faults: [{ flip: { char: 10, bit: 9 } }, { idle: { after: 10, length: 256 } }] });
  rig.expect('sendComplete', 100 * MS);
  const chars = decodeUart(edges, { baud: 115200 });
  const bad = chars.map((c, i) => (c.framing ? i : -1)).filter((i) => i >= 0);
  assert.deepEqual(bad, [10]);
  assert.deepEqual(chars.map((c) => c.byte), t);
});

test('Request low sends nothing; a drop mid-telegram stops it; the next telegram follows the rise', () => {
  const rig = boot(hostUf2, { request: false });
  const edges = rig.recordPin(PIN.data);
  const t = telegram(20);
  sendTelegram(rig, t, 4);
  rig.run(20 * MS);
  assert.equal(edges.length, 1, 'no edge while Request is low');
  rig.setInput(PIN.request, true);
  assert.equal(rig.expect('requestEdge').high, true);
  rig.run(15 * MS); // about a quarter of the telegram
  rig.setInput(PIN.request, false);
  const droppedAt = rig.nanos;
  const aborted = rig.expect('sendAborted', 20 * MS);
  assert.equal(aborted.reason, 'request');
  rig.run(5 * MS);
  const last = edges[edges.length - 1];
  assert.equal(last[1], GPIOPinState.Low, 'line idle after the drop');
  assert.ok(last[0] - droppedAt < 1e9 / 115200, `stopped ${(last[0] - droppedAt) / 1000} us after the drop`);
  // Characters whose stop bit ended before the drop went out whole; the one cut short may
  // still decode (the idle line reads as 1s), so it is told apart by time, not by its flags.
  const chars = decodeUart(edges, { baud: 115200 });
  const complete = chars.filter((c) => c.start + (10 * 1e9) / 115200 <= droppedAt).length;
  assert.ok(complete > 50 && complete < t.length, `${complete} characters before the drop`);
  assert.deepEqual(chars.slice(0, complete).map((c) => c.byte), t.slice(0, complete));
  assert.ok(chars.length <= complete + 1, 'nothing after the character the drop cut');
  // The rig counts from its slot counter and the slot each frame ends at: exact.
  assert.equal(aborted.bytes, complete, `reported ${aborted.bytes}, on the pin ${complete}`);
  // The next telegram waits for Request and then goes out whole.
  const before = edges.length;
  sendTelegram(rig, t.slice(0, 50), 5);
  rig.run(10 * MS);
  assert.equal(edges.length, before);
  rig.setInput(PIN.request, true);
  assert.deepEqual(rig.expect('sendComplete', 50 * MS), { id: 5, bytes: 50 });
  const after = decodeUart(edges.slice(before - 1), { baud: 115200 });
  assert.deepEqual(after.map((c) => c.byte), t.slice(0, 50));
});

test('looped back through an inverter, the capture returns the telegram byte-exact', () => {
  const rig = boot(hostUf2);
  // The board under test: inverts the P1 line to TTL (idle high).
  rig.mcu.gpio[PIN.data].addListener((state) => rig.setInput(PIN.capture, p1Mark(state)));
  const t = telegram(20);
  const busy0 = rig.busyNs;
  const t0 = rig.nanos;
  sendTelegram(rig, t, 6);
  rig.expect('sendComplete', 200 * MS);
  figures.loopbackCpu = (rig.busyNs - busy0) / (rig.nanos - t0);
  const got = [];
  rig.runUntil(
    () => {
      rig.poll();
      for (let i = rig.events.length - 1; i >= 0; i--) {
        if (rig.events[i].captured) got.push(...rig.events.splice(i, 1)[0].captured);
      }
      return got.length >= t.length;
    },
    50 * MS,
    'captured bytes',
  );
  got.sort((a, b) => a.atUs - b.atUs);
  assert.deepEqual(got.map((c) => c.byte), t);
  assert.equal(got.filter((c) => c.flags).length, 0);
  assert.deepEqual(rig.events.filter((e) => e.overrun), [], 'no capture FIFO or queue overrun');
  // Timestamps come from the interrupt that empties the receiver's FIFO: one character time
  // apart while the telegram streams.
  const steps = got.slice(1).map((c, i) => c.atUs - got[i].atUs);
  assert.ok(Math.max(...steps) < 200, `captured characters ${Math.max(...steps)} us apart at most`);
  // A flipped stop bit comes back flagged.
  sendTelegram(rig, t.slice(0, 20), 7, { faults: [{ flip: { char: 5, bit: 9 } }] });
  rig.expect('sendComplete', 50 * MS);
  const flagged = [];
  rig.runUntil(
    () => {
      rig.poll();
      for (let i = rig.events.length - 1; i >= 0; i--) {
        if (rig.events[i].captured) flagged.push(...rig.events.splice(i, 1)[0].captured);
      }
      return flagged.some((c) => c.flags & 1);
    },
    50 * MS,
    'a framing error flag',
  );
});

test('a full chunk goes out with no gap between characters at 115200', () => {
  const rig = boot(hostUf2);
  const edges = rig.recordPin(PIN.data);
  const n = rig.hello.maxChunk;
  const bytes = Array.from({ length: n }, (_, i) => 0x20 + (i % 90));
  sendTelegram(rig, bytes, 8);
  rig.expect('sendComplete', 100 * MS);
  const chars = decodeUart(edges, { baud: 115200 });
  assert.deepEqual(chars.map((c) => c.byte), bytes);
  const bit = 1e9 / 115200;
  let maxGap = 0;
  for (let i = 1; i < chars.length; i++) maxGap = Math.max(maxGap, chars[i].start - chars[i - 1].start - 10 * bit);
  const span = chars[n - 1].start - chars[0].start + 10 * bit;
  figures.busy = (n * 10 * bit) / span;
  figures.maxGapBits = maxGap / bit;
  assert.ok(maxGap < 0.25 * bit, `a gap of ${(maxGap / bit).toFixed(2)} bits between characters`);
});

test('the count of characters sent before a Request drop is exact wherever the drop falls', () => {
  const rig = boot(hostUf2);
  const edges = rig.recordPin(PIN.data);
  const t = telegram(20);
  const bit = 1e9 / 115200;
  // Drops 2 ms into the telegram, at eleven phases across one character time.
  for (let k = 0; k < 11; k++) {
    const id = 20 + k;
    const from = edges.length;
    sendTelegram(rig, t, id);
    rig.runUntil(() => edges.length > from, 20 * MS, 'the telegram to start');
    const startedAt = edges[from][0];
    rig.run(startedAt + 2 * MS + (k * 10 * bit) / 11 - rig.nanos);
    rig.setInput(PIN.request, false);
    const droppedAt = rig.nanos;
    const aborted = rig.expect('sendAborted', 20 * MS);
    const chars = decodeUart(edges.slice(from - 1), { baud: 115200 });
    const complete = chars.filter((c) => c.start + 10 * bit <= droppedAt).length;
    assert.ok(complete > 10, `${complete} characters before the drop`);
    assert.equal(aborted.bytes, complete, `drop ${k}: reported ${aborted.bytes}, on the pin ${complete}`);
    rig.setInput(PIN.request, true);
    rig.run(1 * MS);
  }
});

test('a 4 KiB telegram streamed in 8 chunks keeps the line 100 % busy at 115200', () => {
  const rig = boot(hostUf2);
  const edges = rig.recordPin(PIN.data);
  const n = 4096;
  const bytes = Array.from({ length: n }, (_, i) => 0x20 + ((i * 7) % 90));
  const busy0 = rig.busyNs;
  const t0 = rig.nanos;
  // All eight frames are queued at once, as the host client writes them; USB delivers them
  // while the line is sending.
  sendTelegram(rig, bytes, 9);
  assert.deepEqual(rig.expect('sendComplete', 600 * MS), { id: 9, bytes: n });
  const cpu = (rig.busyNs - busy0) / (rig.nanos - t0);
  rig.poll();
  assert.deepEqual(rig.events.filter((e) => e.overrun), [], 'no underrun or other overrun');
  const chars = decodeUart(edges, { baud: 115200 });
  assert.deepEqual(chars.map((c) => c.byte), bytes);
  const bit = 1e9 / 115200;
  let maxGap = 0;
  for (let i = 1; i < chars.length; i++) maxGap = Math.max(maxGap, chars[i].start - chars[i - 1].start - 10 * bit);
  const span = chars[n - 1].start - chars[0].start + 10 * bit;
  figures.streamBusy = (n * 10 * bit) / span;
  figures.streamMaxGapBits = maxGap / bit;
  figures.streamCharsPerS = n / (span / 1e9);
  figures.streamCpu = cpu;
  assert.ok(maxGap < 0.25 * bit, `a gap of ${(maxGap / bit).toFixed(2)} bits between characters`);
});

test('the standalone pocket meter sends a valid telegram on its own', () => {
  const rig = boot(pocketUf2);
  assert.equal(rig.hello.mode, 'standalone');
  const edges = rig.recordPin(PIN.data);
  // Recording starts after USB enumeration, so the first telegram may be cut: wait for a whole one.
  const whole = /(\/[^!]*!)([0-9A-F]{4})\r\n/;
  const text = () => Buffer.from(decodeUart(edges, { baud: 115200 }).map((c) => c.byte)).toString('latin1');
  rig.runUntil(() => whole.test(text().slice(text().indexOf('/'))), 2500 * MS, 'a telegram from the pocket meter', 20 * MS);
  const all = text();
  const m = whole.exec(all.slice(all.indexOf('/')));
  assert.ok(m, `no complete telegram in ${JSON.stringify(all.slice(0, 80))}`);
  assert.equal(crc16(Buffer.from(m[1], 'latin1')).toString(16).toUpperCase().padStart(4, '0'), m[2]);
  assert.ok(m[1].startsWith(`/${rig.hello.profile === 'iskra-am550' ? 'ISK5' : ''}`));
});


test('measures a simulated board: pull-up with and without the load, edges, Request, output, supply', () => {
  // 4.7 kΩ to 5 V on 2 nF of line: a slow rising edge of about 10 µs to 3.2 V.
  const board = boardModel({ pullUpOhms: 4_700, capacitancePf: 2_000, supplyMa: 80, supplyPeakMa: 310, outputVolts: 3.3 });
  const rig = boot(hostUf2, { board });
  assert.equal(rig.hello.capabilities & SENSE_BITS, SENSE_BITS, 'every sensor, the INA219 found at boot');
  const t0 = rig.nanos;
  rig.send({ measure: { windowMs: 40 } });
  const m = rig.expect('measured', 300 * MS);
  figures.measureMs = (rig.nanos - t0) / 1e6;
  const r = m.readings;
  assert.deepEqual(m.circuit, { senseInputOhms: 300_000, knownLoadOhms: 10_000, thresholdMv: 3_200 });
  // Levels through the 1:2 dividers and the 12-bit ADC: within two millivolt steps.
  const near = (got, want, tol, what) => assert.ok(Math.abs(got - want) <= tol, `${what}: ${got}, expected ${want} ± ${tol}`);
  near(r.lineOpen.value, board.open * 1000, 4, 'released line');
  near(r.lineLoaded.value, board.loaded * 1000, 4, 'with the 10 kΩ load');
  near(r.request.value, 5_000, 4, 'Request');
  near(r.outputHigh.value, 3_300, 4, 'board output');
  assert.equal(r.lineOpen.resolution, 2);
  // The rise, timed by the PIO from the release to GP6: within two 16 ns steps.
  near(r.rise.value, board.riseNs, 32, 'rise time (ns)');
  assert.equal(r.rise.resolution, 16);
  figures.riseErrorNs = r.rise.value - board.riseNs;
  assert.ok(r.fall.value !== null && r.fall.value < 100, `fall ${r.fall.value} ns`);
  // The INA219: 80 mA on average with bursts to 310 mA, in 100 µA steps.
  near(r.supplyAverage.value, 80_000, 3_000, 'supply average (µA)');
  near(r.supplyPeak.value, 310_000, 100, 'supply peak (µA)');
  near(r.supplyVoltage.value, 4_968, 4, 'supply voltage (mV)');
  // The line goes back to idle (driven low) and telegrams flow again.
  assert.equal(rig.mcu.gpio[PIN.data].value, GPIOPinState.Low, 'idle after measuring');
  const t = telegram(3);
  sendTelegram(rig, t, 40);
  assert.deepEqual(rig.expect('sendComplete', 50 * MS), { id: 40, bytes: t.length });
});

test('a board without a pull-up: the line never rises, the rise is not reached', () => {
  const rig = boot(hostUf2, { board: boardModel({ pullUpOhms: null }) });
  rig.send({ measure: { windowMs: 5 } });
  const m = rig.expect('measured', 300 * MS);
  assert.equal(m.readings.lineOpen.value, 0);
  assert.equal(m.readings.rise.value, null, 'the edge timer never saw the line cross');
});

test.after(() => {
  console.log(`rig figures: ${JSON.stringify(figures)}`);
});
