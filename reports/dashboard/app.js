// Reports dashboard: plain JavaScript, no dependencies, served from the
// adserver binary. Every number comes from GET /v1/reports with the
// signed-in key as a bearer token.
'use strict';

(() => {
  const KEY_STORE = 'adserver.reports.key';
  const DAY_MS = 86400000;
  const HOUR_MS = 3600000;
  const MAX_HOURLY_DAYS = 31;

  const $ = (id) => document.getElementById(id);
  const state = {
    key: sessionStorage.getItem(KEY_STORE) || '',
    gran: 'day',
    granManual: false,
    tab: 'campaign',
    sort: { campaign: { col: 'spend', dir: -1 }, creative: { col: 'spend', dir: -1 } },
    tz: '',
    fromInstant: '',
    toInstant: '',
    series: null,
    tables: { campaign: null, creative: null },
    loadSeq: 0,
  };

  // ---- API ---------------------------------------------------------

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  async function fetchReport(params, format) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) {
      if (v !== undefined && v !== '') q.set(k, v);
    }
    if (format) q.set('format', format);
    for (let attempt = 0; ; attempt++) {
      const res = await fetch('/v1/reports?' + q.toString(), {
        headers: { Authorization: 'Bearer ' + state.key },
        cache: 'no-store',
        credentials: 'omit',
      });
      if (res.ok) return res;
      let code = 'http_' + res.status;
      let message = res.statusText || 'request failed';
      try {
        const body = await res.json();
        code = body.error.code;
        message = body.error.message;
      } catch (_) { /* not JSON */ }
      if (res.status === 503 && attempt < 3) {
        await sleep(700 * (attempt + 1));
        continue;
      }
      throw new ApiError(res.status, code, message);
    }
  }

  async function report(params) {
    const res = await fetchReport(params);
    const text = await res.text();
    const data = JSON.parse(text);
    data.rawTotals = rawTotals(text);
    data.from = res.headers.get('X-Report-From') || '';
    data.to = res.headers.get('X-Report-To') || '';
    data.tz = res.headers.get('X-Report-Timezone') || '';
    return data;
  }

  // rawTotals keeps the totals exactly as the server wrote them (money
  // decimals are exact there; JavaScript numbers might not be).
  function rawTotals(text) {
    const m = /"totals":\{([^{}]*)\}/.exec(text);
    const out = {};
    if (!m) return out;
    for (const part of m[1].split(',')) {
      const i = part.indexOf(':');
      out[JSON.parse(part.slice(0, i))] = part.slice(i + 1);
    }
    return out;
  }

  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  // ---- Dates -------------------------------------------------------

  const ymdToMs = (s) => Date.UTC(+s.slice(0, 4), +s.slice(5, 7) - 1, +s.slice(8, 10));
  const msToYmd = (ms) => new Date(ms).toISOString().slice(0, 10);
  const addDays = (ymd, n) => msToYmd(ymdToMs(ymd) + n * DAY_MS);
  const daysBetween = (a, b) => Math.round((ymdToMs(b) - ymdToMs(a)) / DAY_MS) + 1;

  // todayIn returns today's date in the report time zone.
  function todayIn(tz) {
    try {
      const parts = new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit' }).formatToParts(new Date());
      const get = (t) => parts.find((p) => p.type === t).value;
      return `${get('year')}-${get('month')}-${get('day')}`;
    } catch (_) {
      return msToYmd(Date.now());
    }
  }

  function hourFormatter(tz) {
    try {
      return new Intl.DateTimeFormat('en-US', { timeZone: tz || 'UTC', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
    } catch (_) {
      return new Intl.DateTimeFormat('en-US', { timeZone: 'UTC', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
    }
  }

  const dayFormatter = new Intl.DateTimeFormat('en-US', { timeZone: 'UTC', month: 'short', day: 'numeric' });
  const dayYearFormatter = new Intl.DateTimeFormat('en-US', { timeZone: 'UTC', year: 'numeric', month: 'short', day: 'numeric' });
  const dayLongFormatter = new Intl.DateTimeFormat('en-US', { timeZone: 'UTC', weekday: 'short', year: 'numeric', month: 'short', day: 'numeric' });

  // ---- Number formats ----------------------------------------------

  const intFmt = new Intl.NumberFormat('en-US');
  const moneyFmt = new Intl.NumberFormat('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  const rateFmt = new Intl.NumberFormat('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 4 });
  const compactFmt = new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 1 });
  const pct = (v) => (v * 100).toFixed(2) + '%';

  const METRICS = [
    { key: 'impressions', label: 'Impressions', fmt: (v) => intFmt.format(v) },
    { key: 'clicks', label: 'Clicks', fmt: (v) => intFmt.format(v) },
    { key: 'ctr', label: 'CTR', fmt: pct },
    { key: 'spend', label: 'Spend', fmt: (v) => moneyFmt.format(v) },
    { key: 'ecpm', label: 'eCPM', fmt: (v) => rateFmt.format(v) },
    { key: 'ecpc', label: 'eCPC', fmt: (v) => rateFmt.format(v) },
    { key: 'conversions', label: 'Conv.', fmt: (v) => intFmt.format(v) },
    { key: 'conversion_rate', label: 'Conv. rate', fmt: pct },
    { key: 'cpa', label: 'CPA', fmt: (v) => rateFmt.format(v) },
  ];
  const METRIC = Object.fromEntries(METRICS.map((m) => [m.key, m]));

  // ---- Views -------------------------------------------------------

  function showSignin(message) {
    $('app').hidden = true;
    $('who').hidden = true;
    $('signin').hidden = false;
    const err = $('signin-error');
    err.hidden = !message;
    err.textContent = message || '';
    $('key').value = '';
    $('key').focus();
    document.body.dataset.state = 'signin';
  }

  function showApp() {
    $('signin').hidden = true;
    $('app').hidden = false;
    $('who').hidden = false;
  }

  function setStatus(text, bad) {
    const s = $('status');
    s.textContent = text || '';
    s.classList.toggle('bad', !!bad);
  }

  function setGran(g, manual) {
    state.gran = g;
    if (manual) state.granManual = true;
    $('gran-day').setAttribute('aria-pressed', String(g === 'day'));
    $('gran-hour').setAttribute('aria-pressed', String(g === 'hour'));
  }

  // ---- Loading -----------------------------------------------------

  function rangeParams() {
    const from = $('from').value;
    const to = $('to').value;
    return from && to ? { from, to } : {};
  }

  async function load(opts) {
    const seq = ++state.loadSeq;
    const first = opts && opts.first;
    const params = first ? {} : rangeParams();
    if (!first) {
      if (!params.from || !params.to) {
        setStatus('Pick both dates.', true);
        return;
      }
      if (params.from > params.to) {
        setStatus('The start date is after the end date.', true);
        return;
      }
      const days = daysBetween(params.from, params.to);
      if (!state.granManual) setGran(days <= 3 ? 'hour' : 'day');
      if (state.gran === 'hour' && days > MAX_HOURLY_DAYS) {
        setGran('day');
        setStatus(`Hourly view covers at most ${MAX_HOURLY_DAYS} days; showing days.`);
      }
    }
    document.body.dataset.state = 'loading';
    $('totals').dataset.state = 'loading';
    $('apply').disabled = true;
    if (first || !$('status').textContent) setStatus('Loading…');
    try {
      const series = await report({ ...params, group_by: state.gran });
      if (seq !== state.loadSeq) return;
      state.series = series;
      state.tz = series.tz;
      state.fromInstant = series.from;
      state.toInstant = series.to;
      if (first) {
        // The server chose the default range in the advertiser's zone.
        $('from').value = series.from.slice(0, 10);
        $('to').value = addDays(series.to.slice(0, 10), -1);
      }
      $('tz-label').textContent = series.tz;
      sessionStorage.setItem(KEY_STORE, state.key);
      showApp();
      renderTotals(series);
      renderChart();
      const range = { from: $('from').value, to: $('to').value };
      state.tables.campaign = await report({ ...range, group_by: 'campaign' });
      if (seq !== state.loadSeq) return;
      state.tables.creative = await report({ ...range, group_by: 'campaign,creative' });
      if (seq !== state.loadSeq) return;
      renderTable();
      setStatus(`${fmtRange()} · ${series.rows.length} ${state.gran === 'day' ? 'days' : 'hours'} with data`);
      document.body.dataset.state = 'ready';
    } catch (e) {
      if (seq !== state.loadSeq) return;
      if (e instanceof ApiError && e.status === 401) {
        signOut('That key was not accepted.');
        return;
      }
      document.body.dataset.state = 'error';
      setStatus(e instanceof ApiError ? e.message : 'Cannot reach the server.', true);
    } finally {
      if (seq === state.loadSeq) $('apply').disabled = false;
    }
  }

  function fmtRange() {
    const a = $('from').value;
    const b = $('to').value;
    return a === b ? dayLongFormatter.format(ymdToMs(a)) : `${dayFormatter.format(ymdToMs(a))} – ${dayYearFormatter.format(ymdToMs(b))}`;
  }

  function signOut(message) {
    sessionStorage.removeItem(KEY_STORE);
    state.key = '';
    state.series = null;
    state.tables = { campaign: null, creative: null };
    state.loadSeq++;
    showSignin(message);
  }

  // ---- Totals ------------------------------------------------------

  function renderTotals(data) {
    const box = $('totals');
    for (const el of box.querySelectorAll('.metric')) {
      const k = el.dataset.metric;
      const v = data.totals[k];
      const value = el.querySelector('.value');
      value.textContent = METRIC[k].fmt(v);
      value.title = data.rawTotals[k] !== undefined ? data.rawTotals[k] : String(v);
      el.dataset.raw = value.title;
    }
    box.dataset.range = `${$('from').value}/${$('to').value}`;
    box.dataset.state = 'ready';
  }

  // ---- Chart -------------------------------------------------------

  const SVGNS = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs, parent) {
    const el = document.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
    if (parent) parent.appendChild(el);
    return el;
  }

  // buckets returns every day or hour of the range, with the rows that
  // have data filled in and zeros elsewhere.
  function buckets() {
    const s = state.series;
    const zero = { impressions: 0, clicks: 0, spend: 0 };
    const out = [];
    if (state.gran === 'day') {
      const byDay = new Map(s.rows.map((r) => [r.day, r]));
      const first = s.from.slice(0, 10);
      const last = addDays(s.to.slice(0, 10), -1);
      for (let d = first, i = 0; d <= last && i < 5000; d = addDays(d, 1), i++) {
        out.push({ label: dayFormatter.format(ymdToMs(d)), long: dayLongFormatter.format(ymdToMs(d)), v: byDay.get(d) || zero });
      }
    } else {
      const fmt = hourFormatter(state.tz);
      const byHour = new Map(s.rows.map((r) => [Date.parse(r.hour), r]));
      const start = Date.parse(s.from);
      const end = Date.parse(s.to);
      for (let t = start, i = 0; t < end && i < 24 * 400; t += HOUR_MS, i++) {
        const label = fmt.format(t);
        out.push({ label, long: label, v: byHour.get(t) || zero });
      }
    }
    return out;
  }

  function niceMax(v) {
    if (v <= 0) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  function renderChart() {
    const box = $('chart');
    box.textContent = '';
    $('chart-title').textContent = state.gran === 'day' ? 'Daily performance' : 'Hourly performance';
    const data = buckets();
    if (!state.series.rows.length) {
      const p = document.createElement('p');
      p.className = 'empty';
      p.textContent = 'No impressions, clicks or spend in this range.';
      box.appendChild(p);
      return;
    }
    const W = Math.max(480, box.clientWidth || 960);
    const padL = 64;
    const padR = 16;
    const panelH = 110;
    const gap = 40;
    const axisH = 26;
    const series = [
      { key: 'impressions', label: 'Impressions', color: getCss('--imp') },
      { key: 'clicks', label: 'Clicks', color: getCss('--clk') },
      { key: 'spend', label: 'Spend', color: getCss('--spend') },
    ];
    const H = series.length * (panelH + gap) + axisH;
    const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'Impressions, clicks and spend over time' }, box);
    const n = data.length;
    const plotW = W - padL - padR;
    const x = (i) => padL + (n === 1 ? plotW / 2 : (i * plotW) / (n - 1));

    series.forEach((s, si) => {
      const top = si * (panelH + gap) + 26;
      const g = svg('g', { 'data-series': s.key }, root);
      const max = niceMax(Math.max(...data.map((d) => Number(d.v[s.key]) || 0)));
      const y = (v) => top + panelH - (v / max) * panelH;
      svg('text', { x: 0, y: top - 14, class: 'title' }, g).textContent = s.label;
      for (const f of [0, 0.5, 1]) {
        const yy = y(max * f);
        svg('line', { x1: padL, x2: W - padR, y1: yy, y2: yy, class: f === 0 ? 'axis' : 'grid' }, g);
        const t = svg('text', { x: padL - 8, y: yy + 4, 'text-anchor': 'end' }, g);
        t.textContent = axisLabel(max * f, max);
      }
      let line = '';
      data.forEach((d, i) => {
        line += (i ? 'L' : 'M') + x(i).toFixed(1) + ' ' + y(Number(d.v[s.key]) || 0).toFixed(1);
      });
      const area = `${line}L${x(n - 1).toFixed(1)} ${y(0)}L${x(0).toFixed(1)} ${y(0)}Z`;
      svg('path', { d: area, fill: s.color, 'fill-opacity': '0.12', stroke: 'none' }, g);
      svg('path', { d: line, fill: 'none', stroke: s.color, 'stroke-width': '2', 'stroke-linejoin': 'round', class: 'series-line' }, g);
      if (n <= 62) {
        data.forEach((d, i) => svg('circle', { cx: x(i), cy: y(Number(d.v[s.key]) || 0), r: 2.5, fill: s.color }, g));
      }
    });

    // X axis labels: about eight, evenly spread.
    const step = Math.max(1, Math.ceil(n / 8));
    const axisY = series.length * (panelH + gap) + 4;
    for (let i = 0; i < n; i += step) {
      const t = svg('text', { x: x(i), y: axisY, 'text-anchor': n === 1 ? 'middle' : i === 0 ? 'start' : 'middle' }, root);
      t.textContent = data[i].label;
    }

    // Hover: a cursor line and a tooltip with the bucket's numbers.
    const cursor = svg('line', { y1: 10, y2: H - axisH, class: 'cursor', visibility: 'hidden' }, root);
    const overlay = svg('rect', { x: padL, y: 0, width: plotW, height: H - axisH, fill: 'transparent' }, root);
    const tip = $('tooltip');
    overlay.addEventListener('mousemove', (ev) => {
      const rect = root.getBoundingClientRect();
      const px = ((ev.clientX - rect.left) / rect.width) * W;
      const i = n === 1 ? 0 : Math.max(0, Math.min(n - 1, Math.round(((px - padL) / plotW) * (n - 1))));
      cursor.setAttribute('x1', x(i));
      cursor.setAttribute('x2', x(i));
      cursor.setAttribute('visibility', 'visible');
      const d = data[i];
      tip.textContent = '';
      const head = document.createElement('div');
      head.textContent = d.long;
      tip.appendChild(head);
      for (const s of series) {
        const row = document.createElement('div');
        const sw = document.createElement('span');
        sw.className = 'sw';
        sw.style.background = s.color;
        row.appendChild(sw);
        row.appendChild(document.createTextNode(`${s.label}: ${METRIC[s.key].fmt(Number(d.v[s.key]) || 0)}`));
        tip.appendChild(row);
      }
      tip.hidden = false;
      const card = box.parentElement.getBoundingClientRect();
      const left = ev.clientX - card.left + 14;
      tip.style.left = Math.min(left, card.width - tip.offsetWidth - 8) + 'px';
      tip.style.top = ev.clientY - card.top + 14 + 'px';
    });
    overlay.addEventListener('mouseleave', () => {
      cursor.setAttribute('visibility', 'hidden');
      tip.hidden = true;
    });
  }

  // axisLabel formats a tick value with as many decimals as the scale needs.
  function axisLabel(v, max) {
    if (max >= 1000) return compactFmt.format(v);
    const decimals = max >= 10 ? 0 : Math.min(5, 2 - Math.floor(Math.log10(max)));
    return String(Number(v.toFixed(decimals)));
  }

  function getCss(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  // ---- Table -------------------------------------------------------

  function columns() {
    const cols = [{ key: 'campaign_id', label: 'Campaign', text: true }];
    if (state.tab === 'creative') cols.push({ key: 'creative_id', label: 'Creative', text: true });
    return cols.concat(METRICS.map((m) => ({ key: m.key, label: m.label, fmt: m.fmt })));
  }

  function renderTable() {
    const data = state.tables[state.tab];
    const table = $('table');
    const cols = columns();
    const sort = state.sort[state.tab];
    const thead = table.tHead;
    thead.textContent = '';
    const hr = thead.insertRow();
    for (const c of cols) {
      const th = document.createElement('th');
      th.textContent = c.label;
      th.dataset.col = c.key;
      th.scope = 'col';
      if (c.text) th.className = 'text';
      if (sort.col === c.key) th.setAttribute('aria-sort', sort.dir > 0 ? 'ascending' : 'descending');
      th.addEventListener('click', () => {
        const cur = state.sort[state.tab];
        state.sort[state.tab] = cur.col === c.key ? { col: c.key, dir: -cur.dir } : { col: c.key, dir: c.text ? 1 : -1 };
        renderTable();
      });
      hr.appendChild(th);
    }
    const tbody = table.tBodies[0];
    tbody.textContent = '';
    const rows = data ? data.rows.slice() : [];
    rows.sort((a, b) => {
      const va = a[sort.col];
      const vb = b[sort.col];
      const c = typeof va === 'string' ? va.localeCompare(vb) : va - vb;
      return c * sort.dir || String(a.campaign_id).localeCompare(b.campaign_id);
    });
    if (!rows.length) {
      const td = tbody.insertRow().insertCell();
      td.colSpan = cols.length;
      td.className = 'empty';
      td.textContent = 'No rows in this range.';
    }
    for (const r of rows) {
      const tr = tbody.insertRow();
      for (const c of cols) {
        const td = tr.insertCell();
        td.textContent = c.fmt ? c.fmt(r[c.key]) : r[c.key];
        if (c.text) td.className = 'text';
      }
    }
    const tfoot = table.tFoot;
    tfoot.textContent = '';
    if (data && rows.length) {
      const tr = tfoot.insertRow();
      for (const c of cols) {
        const td = tr.insertCell();
        if (c.key === 'campaign_id') td.textContent = 'Total';
        else if (c.fmt) td.textContent = c.fmt(data.totals[c.key]);
        if (c.text) td.className = 'text';
      }
    }
    table.dataset.tab = state.tab;
    table.dataset.rows = String(rows.length);
  }

  // ---- CSV ---------------------------------------------------------

  async function downloadCSV(groupBy) {
    try {
      const res = await fetchReport({ ...rangeParams(), group_by: groupBy }, 'csv');
      const blob = await res.blob();
      const cd = res.headers.get('Content-Disposition') || '';
      const m = /filename="([^"]+)"/.exec(cd);
      const a = document.createElement('a');
      a.href = URL.createObjectURL(blob);
      a.download = m ? m[1] : 'report.csv';
      document.body.appendChild(a);
      a.click();
      setTimeout(() => {
        URL.revokeObjectURL(a.href);
        a.remove();
      }, 1000);
    } catch (e) {
      setStatus(e instanceof ApiError ? e.message : 'Cannot reach the server.', true);
    }
  }

  // ---- Wiring ------------------------------------------------------

  document.addEventListener('DOMContentLoaded', () => {
    $('signin-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const key = $('key').value.trim();
      if (!key) return;
      state.key = key;
      $('signin-error').hidden = true;
      load({ first: true });
    });
    $('signout').addEventListener('click', () => signOut(''));
    $('range').addEventListener('submit', (ev) => {
      ev.preventDefault();
      setStatus('');
      load();
    });
    for (const b of document.querySelectorAll('.presets button')) {
      b.addEventListener('click', () => {
        const to = todayIn(state.tz || 'UTC');
        $('to').value = to;
        $('from').value = addDays(to, -(Number(b.dataset.days) - 1));
        setStatus('');
        load();
      });
    }
    for (const b of document.querySelectorAll('.seg button')) {
      b.addEventListener('click', () => {
        setGran(b.dataset.gran, true);
        setStatus('');
        load();
      });
    }
    for (const b of document.querySelectorAll('.tabs button')) {
      b.addEventListener('click', () => {
        state.tab = b.dataset.tab;
        for (const o of document.querySelectorAll('.tabs button')) o.setAttribute('aria-selected', String(o === b));
        renderTable();
      });
    }
    $('csv-series').addEventListener('click', () => downloadCSV(state.gran));
    $('csv-table').addEventListener('click', () => downloadCSV(state.tab === 'creative' ? 'campaign,creative' : 'campaign'));
    let resizeTimer = 0;
    window.addEventListener('resize', () => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(() => state.series && renderChart(), 150);
    });

    if (state.key) {
      showApp();
      load({ first: true });
    } else {
      showSignin('');
    }
  });
})();
