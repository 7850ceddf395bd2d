// The admin page's live view: polls /stats/summary, turns counter differences between two
// polls into rates and latency percentiles, draws them as inline SVG, lists cluster health.
// Hand-written, no dependencies and no build step (served as package data by the admin).
"use strict";

(function () {
  const params = new URLSearchParams(window.location.search);
  const INTERVAL_MS = clamp(Number(params.get("interval")) || 1000, 100, 60000);
  const TIMEOUT_MS = Math.max(2 * INTERVAL_MS, 3000);
  const MAX_ROWS = clamp(Number(params.get("rows")) || 50, 1, 1000);
  const POINTS = 120;
  const CLASSES = ["1xx", "2xx", "3xx", "4xx", "5xx"];
  const COLORS = {
    total: "#2563eb", p50: "#16a34a", p90: "#d97706", p99: "#dc2626",
    "1xx": "#64748b", "2xx": "#16a34a", "3xx": "#2563eb", "4xx": "#d97706", "5xx": "#dc2626",
  };
  const SVG_NS = "http://www.w3.org/2000/svg";
  const WIDTH = 600, HEIGHT = 180, LEFT = 60, RIGHT = 8, TOP = 12, BOTTOM = 12;

  const history = [];  // one point per pair of successive polls
  let previous = null;  // the last poll's sample
  let polls = 0, failures = 0, lastOk = null;

  function clamp(value, low, high) { return Math.min(Math.max(value, low), high); }

  function $(id) { return document.getElementById(id); }

  function svg(name, attrs) {
    const node = document.createElementNS(SVG_NS, name);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    return node;
  }

  // The q-quantile (0..1) of bucket counts, interpolated inside the bucket that holds it,
  // as the admin's Python does (meshcore/admin/histogram.py `quantile`); null if empty.
  function quantile(bounds, counts, q) {
    const total = counts.reduce((a, b) => a + b, 0);
    if (total <= 0) return null;
    const rank = q * total;
    let below = 0;
    for (let i = 0; i < counts.length; i++) {
      const n = counts[i];
      if (n > 0 && below + n >= rank) {
        if (i === bounds.length) return bounds[bounds.length - 1];
        const lower = i > 0 ? bounds[i - 1] : 0;
        const fraction = clamp((rank - below) / n, 0, 1);
        return lower + (bounds[i] - lower) * fraction;
      }
      below += n;
    }
    return bounds[bounds.length - 1];
  }

  // What one poll says: totals over every connection manager, and per-cluster counters.
  function sample(doc) {
    const total = { rq_total: 0, buckets: doc.bounds_ms.map(() => 0).concat([0]) };
    for (const c of CLASSES) total["rq_" + c] = 0;
    for (const hcm of doc.http) {
      total.rq_total += hcm.rq_total;
      for (const c of CLASSES) total["rq_" + c] += hcm["rq_" + c];
      hcm.rq_time.forEach((n, i) => { total.buckets[i] += n; });
    }
    const clusters = new Map();
    const col = doc.clusters;
    col.name.forEach((name, i) => {
      clusters.set(name, {
        rq_total: col.rq_total[i], rq_2xx: col.rq_2xx[i], rq_4xx: col.rq_4xx[i],
        rq_5xx: col.rq_5xx[i],
      });
    });
    return { t: doc.time_s, uptime: doc.server.uptime_s, total, clusters, bounds: doc.bounds_ms };
  }

  function addPoint(prev, cur) {
    const dt = cur.t - prev.t;
    if (!(dt > 0)) return;
    const counts = { total: cur.total.rq_total - prev.total.rq_total };
    for (const c of CLASSES) counts[c] = cur.total["rq_" + c] - prev.total["rq_" + c];
    if (counts.total < 0 || cur.uptime < prev.uptime) {  // the proxy restarted
      history.length = 0;
      return;
    }
    const delta = cur.total.buckets.map((n, i) => n - prev.total.buckets[i]);
    const point = { t: cur.t, dt, counts, latency: {} };
    for (const [name, q] of [["p50", 0.5], ["p90", 0.9], ["p99", 0.99]]) {
      point.latency[name] = quantile(cur.bounds, delta, q);
    }
    history.push(point);
    if (history.length > POINTS) history.shift();
  }

  function niceMax(value) {
    if (!(value > 0)) return 1;
    const step = Math.pow(10, Math.floor(Math.log10(value)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * step >= value) return m * step;
    return 10 * step;
  }

  function format(value) {
    if (value === null || value === undefined || Number.isNaN(value)) return "–";
    if (value === 0) return "0";
    const abs = Math.abs(value);
    if (abs >= 100) return value.toFixed(0);
    if (abs >= 10) return value.toFixed(1);
    return value.toFixed(2);
  }

  // series: [{name, values: [number|null], count?}]; newest value at the right edge.
  function drawChart(id, series, emptyText) {
    const figure = $(id);
    const chart = figure.querySelector("svg");
    const legend = figure.querySelector(".legend");
    chart.replaceChildren();
    legend.replaceChildren();
    const max = niceMax(Math.max(0, ...series.flatMap((s) => s.values.filter((v) => v !== null))));
    const plotW = WIDTH - LEFT - RIGHT, plotH = HEIGHT - TOP - BOTTOM;
    const y = (v) => TOP + plotH - (v / max) * plotH;
    const x = (i, n) => LEFT + plotW - (n - 1 - i) * (plotW / (POINTS - 1));
    for (const frac of [0, 0.5, 1]) {
      const value = max * frac;
      chart.append(svg("line", { class: "grid", x1: LEFT, x2: WIDTH - RIGHT, y1: y(value), y2: y(value) }));
      const label = svg("text", { class: "axis-label", x: LEFT - 6, y: y(value) + 6, "text-anchor": "end" });
      label.textContent = format(value);
      chart.append(label);
    }
    if (series.every((s) => s.values.length === 0)) {
      const text = svg("text", { class: "empty", x: LEFT + plotW / 2, y: TOP + plotH / 2, "text-anchor": "middle" });
      text.textContent = emptyText;
      chart.append(text);
    }
    for (const s of series) {
      let d = "", pen = "M";
      s.values.forEach((v, i) => {
        if (v === null) { pen = "M"; return; }
        d += `${pen}${x(i, s.values.length).toFixed(1)},${y(v).toFixed(1)} `;
        pen = "L";
      });
      const path = svg("path", { d: d.trim(), stroke: COLORS[s.name] || "#000" });
      path.dataset.series = s.name;
      path.dataset.values = s.values.map((v) => (v === null ? "" : +v.toFixed(3))).join(",");
      if (s.count !== undefined) path.dataset.count = String(s.count);
      chart.append(path);
      const item = document.createElement("li");
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = COLORS[s.name] || "#000";
      const last = s.values.length ? s.values[s.values.length - 1] : null;
      item.append(swatch, `${s.name} ${format(last)}`);
      item.dataset.series = s.name;
      legend.append(item);
    }
  }

  function drawCharts() {
    const waiting = polls < 2 ? "waiting for a second poll…" : "no data";
    const sum = (key) => history.reduce((a, p) => a + p.counts[key], 0);
    drawChart("chart-rps", [
      { name: "total", values: history.map((p) => p.counts.total / p.dt), count: sum("total") },
    ], waiting);
    drawChart("chart-latency", ["p50", "p90", "p99"].map((name) => ({
      name, values: history.map((p) => p.latency[name]),
    })), waiting);
    drawChart("chart-classes", CLASSES.map((c) => ({
      name: c, values: history.map((p) => p.counts[c] / p.dt), count: sum(c),
    })), waiting);
  }

  function drawServer(doc) {
    const server = doc.server;
    const items = [
      ["state", server.state], ["uptime", `${server.uptime_s} s`],
      ["connections", server.connections], ["workers", server.concurrency],
      ["memory", `${(server.memory_bytes / 1048576).toFixed(1)} MiB`],
      ["clusters", doc.clusters.count],
    ];
    $("clusters-p99").title = "p99 of upstream_rq_time over the last "
      + `${server.stats_flush_interval_s} s stats flush interval`;
    const list = $("server");
    list.replaceChildren();
    for (const [name, value] of items) {
      const div = document.createElement("div");
      const dt = document.createElement("dt");
      const dd = document.createElement("dd");
      dt.textContent = name;
      dd.textContent = String(value);
      dd.dataset.field = name;
      div.append(dt, dd);
      list.append(div);
    }
  }

  function clusterRows(doc, cur, prev) {
    const col = doc.clusters;
    const dt = prev ? cur.t - prev.t : 0;
    const rate = (name, key, i) => {
      const before = prev && prev.clusters.get(name);
      if (!before || !(dt > 0)) return null;
      return Math.max(col[key][i] - before[key], 0) / dt;
    };
    return col.name.map((name, i) => {
      const open = ["cx", "rq", "rq_pending", "rq_retry"].filter((b) => col[`cb_${b}_open`][i]);
      const ejected = col.ejected[i];
      const row = {
        name, hosts: col.hosts[i], healthy: col.healthy[i], ejected, open,
        rps: rate(name, "rq_total", i), r2xx: rate(name, "rq_2xx", i),
        r4xx: rate(name, "rq_4xx", i), r5xx: rate(name, "rq_5xx", i),
        active: col.rq_active[i], p99: col.p99_ms[i], total: col.rq_total[i],
      };
      row.problem = row.healthy < row.hosts || (ejected || 0) > 0 || open.length > 0;
      return row;
    });
  }

  function drawClusters(doc, cur, prev) {
    const rows = clusterRows(doc, cur, prev);
    rows.sort((a, b) => (b.rps || 0) - (a.rps || 0) || b.total - a.total || (a.name < b.name ? -1 : 1));
    const shown = rows.slice(0, MAX_ROWS);
    const extra = rows.slice(MAX_ROWS).filter((r) => r.problem).slice(0, MAX_ROWS);
    const body = $("clusters").querySelector("tbody");
    body.replaceChildren();
    for (const row of shown.concat(extra)) {
      const tr = document.createElement("tr");
      tr.dataset.cluster = row.name;
      if (row.problem) tr.className = "problem";
      const cells = [
        ["name", row.name], ["health", `${row.healthy} / ${row.hosts}`],
        ["ejected", row.ejected === null ? "–" : String(row.ejected)],
        ["breakers", row.open.length ? row.open.join(", ") : "–"],
        ["rps", format(row.rps)], ["2xx", format(row.r2xx)], ["4xx", format(row.r4xx)],
        ["5xx", format(row.r5xx)], ["active", String(row.active)], ["p99", format(row.p99)],
      ];
      for (const [key, text] of cells) {
        const td = document.createElement("td");
        td.dataset.col = key;
        td.textContent = text;
        tr.append(td);
      }
      body.append(tr);
    }
    const problems = rows.filter((r) => r.problem).length;
    let note = `${rows.length} clusters, ${problems} with unhealthy hosts, ejections or open breakers.`;
    if (rows.length > shown.length) {
      note = `Showing the ${shown.length} busiest of ${rows.length} clusters`
        + (extra.length ? `, and ${extra.length} more with unhealthy hosts, ejections or open breakers.` : ".");
    }
    $("clusters-note").textContent = note;
  }

  function setStatus(state, text) {
    document.body.dataset.state = state;
    document.body.dataset.polls = String(polls);
    document.body.dataset.failures = String(failures);
    $("status").textContent = text;
  }

  function clock(date) { return date.toLocaleTimeString(); }

  async function fetchSummary() {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), TIMEOUT_MS);
    try {
      const response = await fetch("/stats/summary", { cache: "no-store", signal: abort.signal });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const doc = await response.json();
      if (doc.version !== 1) throw new Error(`unknown summary version ${doc.version}`);
      return doc;
    } catch (error) {
      throw new Error(error.name === "AbortError" ? `no answer in ${TIMEOUT_MS / 1000} s` : error.message);
    } finally {
      clearTimeout(timer);
    }
  }

  async function poll() {
    let doc;
    try {
      doc = await fetchSummary();
    } catch (error) {
      failures += 1;
      const since = lastOk ? `; last data at ${clock(lastOk)}` : "";
      setStatus("offline", `unreachable: ${error.message}${since}; retrying every ${INTERVAL_MS / 1000} s`);
      window.setTimeout(poll, INTERVAL_MS);
      return;
    }
    // Drawing errors are bugs: they surface in the console, and polling goes on.
    window.setTimeout(poll, INTERVAL_MS);
    polls += 1;
    lastOk = new Date();
    const cur = sample(doc);
    const prev = previous;
    if (prev) addPoint(prev, cur);
    previous = cur;
    setStatus("live", `live · updated ${clock(lastOk)} · every ${INTERVAL_MS / 1000} s`);
    drawServer(doc);
    drawCharts();
    drawClusters(doc, cur, prev);
  }

  drawCharts();
  poll();
})();
