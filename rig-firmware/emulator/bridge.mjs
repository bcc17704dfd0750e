// The rig firmware in rp2040js, reachable as a rig over TCP: `p1sim bench --rig tcp://127.0.0.1:PORT`
// (or `p1sim rig info`, `p1sim rig measure`, `p1sim run --rig`) talks to it as to a Pico on USB.
// A board stands on the emulated pins: by default a working one (harness.mjs `boardModel`: a
// 4.7 kΩ pull-up to 5 V, Request tied high, a 3.3 V TTL output fed back inverted into the capture
// input, drawing 1.1 mA), with the rig's sensors reading it.
//
//   node bridge.mjs HOST.uf2 [--board loopback|none] [--pull-up OHMS] [--supply-ma MA]
//
// Prints `listening 127.0.0.1:PORT` once the firmware has enumerated, then runs the emulation as
// fast as it can, passing the CDC bytes to and from one TCP client at a time (the next one may
// connect when it leaves, as with ser2net). It exits when standard input closes or after
// --limit-s seconds of wall time (default 600), and prints `simulated S s in W s wall` on exit.

import net from 'node:net';
import { PIN, Rig, attachBoard, boardModel } from './harness.mjs';

const args = process.argv.slice(2);
const uf2 = args.find((a) => !a.startsWith('--'));
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
if (!uf2) {
  console.error('usage: node bridge.mjs HOST.uf2 [--board loopback|none] [--pull-up OHMS] [--supply-ma MA] [--limit-s S]');
  process.exit(2);
}
const board = opt('board', 'loopback');
const limitMs = Number(opt('limit-s', '600')) * 1000;

const MS = 1e6;
const rig = new Rig(uf2);
rig.setInput(PIN.request, false);
rig.setInput(PIN.capture, true);
if (board === 'loopback') {
  const supplyMa = Number(opt('supply-ma', '1.1'));
  attachBoard(rig, boardModel({ pullUpOhms: Number(opt('pull-up', '4700')), supplyMa }));
}
rig.runUntil(() => rig.connected, 200 * MS, 'USB enumeration');

let client = null;
const wallStart = Date.now();
const simStart = rig.nanos;

function finish(code) {
  const sim = (rig.nanos - simStart) / 1e9;
  const wall = (Date.now() - wallStart) / 1000;
  console.log(`simulated ${sim.toFixed(3)} s in ${wall.toFixed(1)} s wall`);
  process.exit(code);
}

const server = net.createServer((sock) => {
  if (client) {
    sock.destroy();
    return;
  }
  client = sock;
  sock.setNoDelay(true);
  sock.on('data', (b) => rig.write([...b]));
  const leave = () => {
    if (client !== sock) return;
    client = null;
    // What the rig says to nobody is dropped, as a USB port nobody has open drops it.
    rig.fromDevice.length = 0;
  };
  sock.on('close', leave);
  sock.on('error', leave);
});
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  console.log(`listening 127.0.0.1:${port}`);
});
process.stdin.on('end', () => finish(0));
process.stdin.resume();

// Emulate in slices of 2 ms of simulated time, letting socket events in between.
function step() {
  if (Date.now() - wallStart > limitMs) {
    console.error('bridge: time limit reached');
    finish(1);
    return;
  }
  try {
    rig.run(2 * MS);
  } catch (e) {
    console.error(`bridge: the emulation stopped: ${e.message}`);
    finish(1);
    return;
  }
  if (client && rig.fromDevice.length > 0) {
    client.write(Buffer.from(rig.fromDevice.splice(0, rig.fromDevice.length)));
  }
  setImmediate(step);
}
setImmediate(step);
