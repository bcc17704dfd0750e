// The live page of p1sim: one event stream from /events, JSON posts to the same origin.
// Everything from the meter is put on the page as text (textContent), never as markup.
'use strict';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
let meter = Number(params.get('meter') || 0);
let source = null;
let updates = 0;
let previous = [];
let points = [];
let requestUp = true;
const WINDOW_S = 600;

const withMeter = (path) => path + (path.includes('?') ? '&' : '?') + 'meter=' + meter;
const fixed = (x, digits) => (typeof x === 'number' ? x.toFixed(digits) : '–');
const kw = (x) => fixed(x, 3) + ' kW';

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

function row(cells, header) {
  const tr = el('tr');
  cells.forEach((c, i) => tr.appendChild(el(i === 0 && header ? 'th' : 'td', c)));
  return tr;
}

function list(dl, pairs) {
  dl.replaceChildren();
  for (const [k, v] of pairs) {
    dl.appendChild(el('dt', k));
    dl.appendChild(el('dd', v));
  }
}

function feedback(text, error) {
  const f = $('feedback');
  f.textContent = text;
  f.className = error ? 'error' : '';
}

// One request at a time per endpoint, and only the newest value waits: a slider moved through a
// hundred steps sends a few requests, and the last one sent is the last value chosen.
const waiting = new Map();
const busy = new Set();

function post(path, body, done) {
  waiting.set(path, { body, done });
  if (!busy.has(path)) drain(path);
}

async function drain(path) {
  busy.add(path);
  while (waiting.has(path)) {
    const { body, done } = waiting.get(path);
    waiting.delete(path);
    await send(path, body, done);
  }
  busy.delete(path);
}

async function send(path, body, done) {
  try {
    const r = await fetch(withMeter(path), {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    const reply = await r.json().catch(() => ({}));
    if (r.ok) feedback(done + ': shows in the next telegram');
    else feedback(reply.error || 'refused (' + r.status + ')', true);
  } catch (e) {
    feedback('p1sim did not answer: ' + e, true);
  }
}

function localTime(t) {
  if (!t) return '';
  const two = (n) => String(n).padStart(2, '0');
  return `${t.year}-${two(t.month)}-${two(t.day)} ${two(t.hour)}:${two(t.minute)}:${two(t.second)} ${t.dst ? 'summer' : 'winter'} time`;
}

function renderValues(t) {
  const r = t.readings;
  $('time').textContent = localTime(r.time) + (t.powered ? '' : ' — no mains');
  $('power-import').textContent = kw(r.power_import_kw);
  $('power-export').textContent = kw(r.power_export_kw);
  $('tariff').textContent = String(r.tariff);
  const phases = $('phases').tBodies[0];
  phases.replaceChildren(...r.phases.map((p, i) =>
    row([`L${i + 1}`, kw(p.import_kw), kw(p.export_kw), fixed(p.voltage_v, 1) + ' V', fixed(p.current_a, 2) + ' A'], true)));
  const g = r.registers;
  $('registers').tBodies[0].replaceChildren(
    row(['import', fixed(g.import_kwh[0], 3) + ' kWh', fixed(g.import_kwh[1], 3) + ' kWh', fixed(g.import_total_kwh, 3) + ' kWh'], true),
    row(['export', fixed(g.export_kwh[0], 3) + ' kWh', fixed(g.export_kwh[1], 3) + ' kWh', fixed(g.export_total_kwh, 3) + ' kWh'], true));
  const extra = [];
  for (const m of r.mbus) {
    if (m.medium !== 'none') extra.push([`${m.medium} (M-Bus ${m.channel})`, `${fixed(m.value, 3)} ${m.unit === 'm3' ? 'm³' : m.unit} at ${localTime(m.captured)}`]);
  }
  if (t.status && t.status.profile && t.status.profile.has_demand) {
    extra.push(['quarter-hour demand', kw(r.demand.current_avg_kw)]);
    extra.push(['month peak', r.demand.month_max ? `${kw(r.demand.month_max_kw)} at ${localTime(r.demand.month_max[0])}` : 'none yet']);
  }
  extra.push(['power failures', `${r.power_failures} short, ${r.long_power_failures} long`]);
  if (r.text_message) extra.push(['text message', r.text_message]);
  if (t.encrypted) extra.push(['frame counter', String(t.frame_counter)]);
  const o = t.overrides || {};
  const forced = [];
  if (o.load_w !== null && o.load_w !== undefined) forced.push(`load ${o.load_w} W`);
  if (o.solar_w !== null && o.solar_w !== undefined) forced.push(`solar ${o.solar_w} W`);
  if (o.ev_until) forced.push(`car ${o.ev_until[1]} W`);
  if (o.tariff) forced.push(`tariff ${o.tariff}`);
  extra.push(['set from here', forced.length ? forced.join(', ') : 'nothing: the household model runs']);
  list($('extra'), extra);
}

function renderChart(t) {
  points.push({ at: t.at, imp: t.readings.power_import_kw, exp: t.readings.power_export_kw });
  points = points.filter((p) => p.at > t.at - WINDOW_S);
  // Until ten minutes have passed, the chart spans what the page has seen (at least a minute).
  const span = Math.min(WINDOW_S, Math.max(60, t.at - points[0].at));
  const top = Math.max(0.5, ...points.map((p) => Math.max(p.imp, p.exp))) * 1.15;
  const x = (p) => (600 * (1 - (t.at - p.at) / span)).toFixed(1);
  const y = (v, sign) => (90 - sign * (v / top) * 86).toFixed(1);
  $('line-import').setAttribute('points', points.map((p) => `${x(p)},${y(p.imp, 1)}`).join(' '));
  $('line-export').setAttribute('points', points.map((p) => `${x(p)},${y(p.exp, -1)}`).join(' '));
  $('chart-max').textContent = `import ${top.toFixed(2)} kW, last ${Math.round(span / 60)} min`;
  $('chart-min').textContent = `export ${top.toFixed(2)} kW`;
}

/// The OBIS code of a telegram line, or the line itself for the header and the CRC line.
function lineKey(line, i) {
  const m = /^(\d+-\d+:\d+\.\d+\.\d+)/.exec(line);
  return m ? m[1] + '#' + i : '@' + i;
}

function renderTelegram(t) {
  const lines = t.telegram.replace(/\r/g, '').split('\n').filter((l, i, a) => l !== '' || i < a.length - 1);
  const before = new Map(previous.map((l, i) => [lineKey(l, previous.slice(0, i).filter((x) => lineKey(x, 0) === lineKey(l, 0)).length), l]));
  const pre = $('telegram');
  pre.replaceChildren(...lines.map((l, i) => {
    const key = lineKey(l, lines.slice(0, i).filter((x) => lineKey(x, 0) === lineKey(l, 0)).length);
    const changed = previous.length > 0 && before.get(key) !== l;
    return el('span', l || ' ', changed ? 'changed' : '');
  }));
  previous = lines;
  $('telegram-count').textContent = String(updates);
}

function renderStatus(s) {
  const p = s.profile || {};
  $('profile-name').textContent = `${p.name} — ${p.spec} ${p.country}`;
  list($('meter-info'), [
    ['profile', `${p.name}: ${p.description}`],
    ['identification', '/' + p.header],
    ['line', `${p.line}, a telegram every ${p.interval_s} s, ${p.phases} phase${p.phases > 1 ? 's' : ''}`],
    ['encryption', p.encrypted ? 'Smarty AES-128-GCM (the plaintext is shown below)' : 'none'],
    ['state file', s.state ? `${s.state.path}: ${s.state.failing ? 'saves FAILING, sending withheld' : s.state.saves + ' saves'}` : 'none (--state not given)'],
  ]);
  const outs = $('outputs');
  outs.replaceChildren(...s.outputs.map((o) => {
    let text = `${o.kind} ${o.name}: ${o.line.completed} telegrams sent`;
    if (o.clients) text += `, ${o.clients.length} client${o.clients.length === 1 ? '' : 's'} connected`;
    return el('li', text);
  }));
  requestUp = s.request;
  const state = $('request-state');
  state.textContent = requestUp ? 'raised: the meter sends' : 'dropped: the meter is silent';
  state.className = 'pill ' + (requestUp ? 'up' : 'down');
  $('request-toggle').textContent = requestUp ? 'drop Request' : 'raise Request';
  const picker = $('meter-picker');
  if (s.meters > 1 && picker.hidden) {
    picker.hidden = false;
    const select = $('meter-select');
    for (let i = 0; i < s.meters; i++) select.appendChild(new Option(`${i}`, String(i)));
    select.value = String(meter);
  }
}

function render(data) {
  updates += 1;
  if (data.status) renderStatus(data.status);
  const t = data.telegram;
  if (!t) return;
  t.status = data.status;
  renderValues(t);
  renderChart(t);
  renderTelegram(t);
}

function connect() {
  if (source) source.close();
  source = new EventSource(withMeter('/events'));
  source.addEventListener('update', (e) => render(JSON.parse(e.data)));
  source.onopen = () => { $('conn').textContent = 'live'; $('conn').className = 'conn up'; };
  source.onerror = () => { $('conn').textContent = 'reconnecting'; $('conn').className = 'conn down'; };
}

function sync(range, number) {
  range.addEventListener('input', () => { number.value = range.value; });
  number.addEventListener('input', () => { range.value = number.value; });
}

async function loadFaults() {
  const r = await fetch('/api/faults');
  const { faults } = await r.json();
  const select = $('fault-select');
  for (const f of faults) {
    const o = new Option(`${f.kind}: ${f.description}`, f.kind);
    select.appendChild(o);
  }
}

function wire() {
  sync($('load-range'), $('load-watts'));
  sync($('solar-range'), $('solar-watts'));
  const watts = (id) => Math.round(Number($(id).value));
  $('load-range').addEventListener('change', () => post('/load', { watts: watts('load-watts') }, 'load set'));
  $('load-set').addEventListener('click', () => post('/load', { watts: watts('load-watts') }, 'load set'));
  $('load-model').addEventListener('click', () => post('/load', { watts: null }, 'load follows the model'));
  $('solar-range').addEventListener('change', () => post('/solar', { watts: watts('solar-watts') }, 'solar set'));
  $('solar-set').addEventListener('click', () => post('/solar', { watts: watts('solar-watts') }, 'solar set'));
  $('solar-model').addEventListener('click', () => post('/solar', { watts: null }, 'solar follows the model'));
  $('ev-start').addEventListener('click', () =>
    post('/ev', { watts: watts('ev-watts'), seconds: Math.round(Number($('ev-minutes').value) * 60) }, 'charging'));
  $('tariff-set').addEventListener('click', () => {
    const v = $('tariff-select').value;
    post('/tariff', { tariff: v === '' ? null : Number(v) }, v === '' ? 'tariff follows the schedule' : 'tariff ' + v);
  });
  $('message-set').addEventListener('click', () => post('/message', { text: $('message-text').value }, 'message sent'));
  $('message-clear').addEventListener('click', () => post('/message', { text: '' }, 'message cleared'));
  $('request-toggle').addEventListener('click', () =>
    post('/request', { raised: !requestUp }, requestUp ? 'Request dropped' : 'Request raised'));
  $('failure-start').addEventListener('click', () =>
    post('/power-failure', { seconds: Math.round(Number($('failure-seconds').value)) }, 'power cut'));
  $('fault-inject').addEventListener('click', () =>
    post('/fault', { kind: $('fault-select').value }, $('fault-select').value + ' queued'));
  $('meter-select').addEventListener('change', (e) => {
    meter = Number(e.target.value);
    previous = [];
    points = [];
    history.replaceState(null, '', '?meter=' + meter);
    connect();
  });
}

wire();
loadFaults().catch((e) => feedback('cannot load the fault catalogue: ' + e, true));
connect();
