// p1sim conformance adapter for @athombv/dsmr-parser (node-dsmr-parser), the parser of the Homey
// Energy Dongle, built from a source checkout named by NODE_DSMR_PARSER (build.sh prepares it; see
// conformance/adapters/README.md). The case's bytes go through the library's stream parser
// (UnencryptedDSMRStreamParser, or EncryptedDSMRStreamParser with the key) in 64-byte chunks;
// every result the callback gets without an error is printed, with crc_ok from its crcValid, and
// the structured result mapped back to OBIS codes by meaning: electricity.tariffs[1].received is
// 1-0:1.8.1 in Wh, powerReceivedTotal is 1-0:1.7.0 in W, mBus[n] is channel n. Numbers are
// printed to 15 significant digits (the precision of the doubles they are). Timestamps are Dates
// whose UTC fields hold the meter's wall-clock time without the S/W flag: they are printed as
// that wall-clock time, YYMMDDhhmmss.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { PassThrough } from 'node:stream';
import { pathToFileURL } from 'node:url';

const source = process.env.NODE_DSMR_PARSER ?? '';
const entry = resolve(source, 'dist', 'index.js');
if (!source || !existsSync(entry)) {
  process.stderr.write(
    `no built checkout of @athombv/dsmr-parser in NODE_DSMR_PARSER (${source ? entry + ' is missing' : 'unset'}): ` +
      'git clone https://github.com/athombv/node-dsmr-parser, then conformance/adapters/node-dsmr-parser/build.sh --source DIR\n',
  );
  process.exit(2);
}
const lib = await import(pathToFileURL(entry).href);
const spec = process.env.P1SIM_SPEC ?? '';
const key = process.env.P1SIM_KEY ?? '';
const chunks = [];
for await (const c of process.stdin) chunks.push(c);
const input = Buffer.concat(chunks);

const num = (v) => (typeof v === 'number' ? Number(v.toPrecision(15)) : v);
const val = (value, unit = null) => ({ value: num(value), unit });
const wall = (d) => {
  if (!(d instanceof Date) || isNaN(d)) return typeof d === 'string' ? d : null;
  const p = (n) => String(n).padStart(2, '0');
  return p(d.getUTCFullYear() % 100) + p(d.getUTCMonth() + 1) + p(d.getUTCDate()) + p(d.getUTCHours()) + p(d.getUTCMinutes()) + p(d.getUTCSeconds());
};

function report(r) {
  const o = [];
  const add = (obis, values) => o.push({ obis, values });
  const m = r.metadata ?? {};
  const e = r.electricity ?? {};
  if (m.dsmrVersion !== undefined) add('1-3:0.2.8', [val(Math.round(m.dsmrVersion * 10))]);
  if (m.timestamp !== undefined) add('0-0:1.0.0', [val(wall(m.timestamp))]);
  if (m.equipmentId !== undefined) add('0-0:96.1.1', [val(m.equipmentId)]);
  // An empty message is how the library says there is none.
  if (m.textMessage) add('0-0:96.13.0', [val(m.textMessage)]);
  if (m.numericMessage) add('0-0:96.13.1', [val(m.numericMessage)]);
  const ev = m.events ?? {};
  if (ev.powerFailures !== undefined) add('0-0:96.7.21', [val(ev.powerFailures)]);
  if (ev.longPowerFailures !== undefined) add('0-0:96.7.9', [val(ev.longPowerFailures)]);
  for (const [i, l] of ['l1', 'l2', 'l3'].entries()) {
    const c = 32 + 20 * i;
    if (ev.voltageSags?.[l] !== undefined) add(`1-0:${c}.32.0`, [val(ev.voltageSags[l])]);
    if (ev.voltageSwells?.[l] !== undefined) add(`1-0:${c}.36.0`, [val(ev.voltageSwells[l])]);
    if (e.voltage?.[l] !== undefined) add(`1-0:${c}.7.0`, [val(e.voltage[l], 'V')]);
    if (e.current?.[l] !== undefined) add(`1-0:${c - 1}.7.0`, [val(e.current[l], 'A')]);
    if (e.powerReceived?.[l] !== undefined) add(`1-0:${21 + 20 * i}.7.0`, [val(e.powerReceived[l], 'W')]);
    if (e.powerReturned?.[l] !== undefined) add(`1-0:${22 + 20 * i}.7.0`, [val(e.powerReturned[l], 'W')]);
  }
  if (e.total?.received !== undefined) add('1-0:1.8.0', [val(e.total.received, 'Wh')]);
  if (e.total?.returned !== undefined) add('1-0:2.8.0', [val(e.total.returned, 'Wh')]);
  for (const [t, v] of Object.entries(e.tariffs ?? {})) {
    if (v.received !== undefined) add(`1-0:1.8.${t}`, [val(v.received, 'Wh')]);
    if (v.returned !== undefined) add(`1-0:2.8.${t}`, [val(v.returned, 'Wh')]);
  }
  if (e.currentTariff !== undefined) add('0-0:96.14.0', [val(e.currentTariff)]);
  if (e.powerReceivedTotal !== undefined) add('1-0:1.7.0', [val(e.powerReceivedTotal, 'W')]);
  if (e.powerReturnedTotal !== undefined) add('1-0:2.7.0', [val(e.powerReturnedTotal, 'W')]);
  for (const [n, d] of Object.entries(r.mBus ?? {})) {
    if (d.deviceType !== undefined) add(`0-${n}:24.1.0`, [val(d.deviceType)]);
    if (d.equipmentId !== undefined) add(`0-${n}:96.1.0`, [val(d.equipmentId)]);
    if (d.value === undefined) continue;
    if (d.recordingPeriodMinutes !== undefined) {
      add(`0-${n}:24.3.0`, [val(d.value)]); // the DSMR 2.2/3 record: its reading
    } else {
      const belgianGas = spec === 'e-MUCS' && d.deviceType === 3;
      add(`0-${n}:24.2.${belgianGas ? 3 : 1}`, [val(wall(d.timestamp)), val(d.value, d.unit ?? null)]);
    }
  }
  return { header: `${r.dsmr.header.xxx}${r.dsmr.header.z}${r.dsmr.header.identifier}`, crc_ok: r.crcValid ?? null, objects: o };
}

const stream = new PassThrough();
const callback = (err, result) => {
  if (err) {
    process.stderr.write(`${err.name}: ${err.message}\n`);
    return;
  }
  process.stdout.write(JSON.stringify(report(result)) + '\n');
};
const parser = key
  ? new lib.EncryptedDSMRStreamParser({ stream, callback, decryptionKey: Buffer.from(key, 'hex'), additionalAuthenticatedData: lib.DSMR.ENCRYPTION_DEFAULT_AAD })
  : new lib.UnencryptedDSMRStreamParser({ stream, callback });
for (let i = 0; i < input.length; i += 64) stream.write(input.subarray(i, i + 64));
const ended = new Promise((resolve) => stream.on('end', resolve));
stream.end();
await ended;
parser.destroy();
