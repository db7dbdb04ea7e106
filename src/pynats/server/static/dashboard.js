// The pynats dashboard: polls the monitoring endpoints of the server that served this page and
// draws them. Rates are the difference of two /varz samples over the difference of their `now`
// (the server's clock, so a slow poll does not bend a rate). Everything a client controls
// (names, subjects) reaches the page as text, never as markup.
"use strict";

const BASE = document.body.dataset.base || "";
const PARAMS = new URLSearchParams(location.search);
const INTERVAL_MS = Math.max(100, Number(PARAMS.get("interval")) || 1000);
const WINDOW_MS = 5 * 60 * 1000;
const SVG_NS = "http://www.w3.org/2000/svg";

const samples = []; // {t, msgIn, msgOut, byteIn, byteOut, cpu}, the last WINDOW_MS
let previous = null; // the last /varz answer
let polls = 0;
let connections = [];
const sort = { key: "cid", asc: true };

const $ = (id) => document.getElementById(id);

function formatCount(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return "–";
  const abs = Math.abs(n);
  if (abs >= 1e9) return (n / 1e9).toFixed(1) + "G";
  if (abs >= 1e6) return (n / 1e6).toFixed(1) + "M";
  if (abs >= 1e4) return (n / 1e3).toFixed(1) + "K";
  return Number.isInteger(n) || abs >= 100 ? String(Math.round(n)) : n.toFixed(1);
}

function formatBytes(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (Math.abs(n) >= 1024 && i < units.length - 1) {
    n /= 1024;
    i += 1;
  }
  return (i === 0 ? Math.round(n) : n.toFixed(1)) + " " + units[i];
}

// RFC 3339 with nanoseconds -> milliseconds since the epoch (Date.parse keeps milliseconds).
function parseTime(text) {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(.*)$/.exec(text || "");
  if (!m) return NaN;
  const fraction = (m[2] || "0").padEnd(9, "0");
  return Date.parse(m[1] + m[3]) + Number(fraction) / 1e6;
}

async function getJSON(path) {
  const response = await fetch(BASE + path, { cache: "no-store" });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

function cell(row, value, className) {
  const td = document.createElement("td");
  td.textContent = value === undefined || value === null ? "" : String(value);
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function fillTable(id, items, build, emptyText) {
  const body = $(id).tBodies[0];
  const rows = [];
  for (const item of items) rows.push(...build(item));
  if (rows.length === 0) {
    const tr = document.createElement("tr");
    tr.className = "empty";
    const td = cell(tr, emptyText);
    td.colSpan = $(id).tHead.rows[0].cells.length;
    rows.push(tr);
  }
  body.replaceChildren(...rows);
}

// --- server, rates and charts -------------------------------------------------------------

function showServer(varz) {
  $("server-name").textContent = varz.server_name || varz.server_id;
  $("server-id").textContent = varz.server_id;
  $("server-version").textContent =
    "v" + varz.version + (varz.pynats_version ? ` · pynats ${varz.pynats_version}` : "");
  document.title = `${varz.server_name || "pynats"} · dashboard`;
  $("uptime").textContent = varz.uptime;
  $("cpu").textContent = `${Number(varz.cpu || 0).toFixed(1)} %`;
  $("mem").textContent = formatBytes(varz.mem);
  $("connections").textContent = formatCount(varz.connections);
  $("subscriptions").textContent = formatCount(varz.subscriptions);
  $("slow-consumers").textContent = formatCount(varz.slow_consumers);
}

function addSample(varz) {
  const t = parseTime(varz.now);
  if (previous !== null) {
    const seconds = (t - parseTime(previous.now)) / 1000;
    const fell = varz.in_msgs < previous.in_msgs || varz.out_msgs < previous.out_msgs;
    if (seconds > 0 && !fell) {
      samples.push({
        t,
        msgIn: (varz.in_msgs - previous.in_msgs) / seconds,
        msgOut: (varz.out_msgs - previous.out_msgs) / seconds,
        byteIn: (varz.in_bytes - previous.in_bytes) / seconds,
        byteOut: (varz.out_bytes - previous.out_bytes) / seconds,
        cpu: Number(varz.cpu || 0),
      });
    } else if (fell) {
      samples.length = 0; // another server (restarted) behind the same address
    }
  }
  previous = varz;
  while (samples.length && samples[0].t < t - WINDOW_MS) samples.shift();
}

function showRates() {
  const last = samples[samples.length - 1];
  const rates = $("rates");
  rates.dataset.samples = String(samples.length);
  if (!last) return;
  rates.dataset.msgRateIn = last.msgIn.toFixed(2);
  rates.dataset.msgRateOut = last.msgOut.toFixed(2);
  rates.dataset.byteRateIn = last.byteIn.toFixed(2);
  rates.dataset.byteRateOut = last.byteOut.toFixed(2);
  $("msg-rate-in").textContent = formatCount(last.msgIn);
  $("msg-rate-out").textContent = formatCount(last.msgOut);
  $("byte-rate-in").textContent = formatBytes(last.byteIn);
  $("byte-rate-out").textContent = formatBytes(last.byteOut);
  $("cpu-now").textContent = last.cpu.toFixed(1);
  drawChart($("chart-msgs"), [["in", "msgIn"], ["out", "msgOut"]], formatCount);
  drawChart($("chart-bytes"), [["in", "byteIn"], ["out", "byteOut"]], formatBytes);
  drawChart($("chart-cpu"), [["in", "cpu"]], (v) => v.toFixed(0) + " %");
}

function svg(name, attributes, text) {
  const element = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  if (text !== undefined) element.textContent = text;
  return element;
}

// A line chart of the last WINDOW_MS: one polyline per series, a grid at 0, half and the top.
function drawChart(chart, series, format) {
  const width = chart.clientWidth || 400;
  const height = chart.clientHeight || 140;
  const left = 58, top = 8, bottom = 18;
  chart.setAttribute("viewBox", `0 0 ${width} ${height}`);
  // The chart spans what has been seen, up to WINDOW_MS: a page just opened has a chart too.
  const end = samples[samples.length - 1].t;
  const span = Math.min(WINDOW_MS, Math.max(10000, end - samples[0].t));
  const start = end - span;
  let topValue = 0;
  for (const sample of samples) {
    for (const [, key] of series) topValue = Math.max(topValue, sample[key]);
  }
  topValue = topValue > 0 ? topValue * 1.1 : 1;
  const x = (t) => left + ((t - start) / span) * (width - left - 4);
  const y = (v) => top + (1 - v / topValue) * (height - top - bottom);
  const parts = [];
  for (const fraction of [0, 0.5, 1]) {
    const value = topValue * fraction;
    parts.push(svg("line", { class: "grid", x1: left, x2: width, y1: y(value), y2: y(value) }));
    parts.push(svg("text", { class: "label", x: left - 6, y: y(value) + 4, "text-anchor": "end" },
      format(value)));
  }
  const ago = span >= 60000 ? `−${Math.round(span / 60000)} min` : `−${Math.round(span / 1000)} s`;
  parts.push(svg("text", { class: "label", x: left, y: height - 3 }, ago));
  parts.push(svg("text", { class: "label", x: width - 4, y: height - 3, "text-anchor": "end" },
    "now"));
  for (const [kind, key] of series) {
    const points = samples.map((s) => `${x(s.t).toFixed(1)},${y(s[key]).toFixed(1)}`);
    parts.push(svg("polyline", { class: `series ${kind}`, points: points.join(" ") }));
  }
  chart.replaceChildren(...parts);
}

// --- connections (sortable) ---------------------------------------------------------------

function sortValue(conn, key) {
  if (key === "addr") return `${conn.ip}:${conn.port}`;
  if (key === "lang") return `${conn.lang || ""} ${conn.version || ""}`;
  return conn[key] ?? "";
}

function showConnections() {
  const sorted = [...connections].sort((a, b) => {
    const va = sortValue(a, sort.key), vb = sortValue(b, sort.key);
    const order = typeof va === "number" && typeof vb === "number"
      ? va - vb : String(va).localeCompare(String(vb));
    return sort.asc ? order : -order;
  });
  $("connections-count").textContent = `(${connections.length})`;
  fillTable("connections-table", sorted, (c) => {
    const tr = document.createElement("tr");
    tr.dataset.cid = String(c.cid);
    tr.dataset.name = c.name || "";
    tr.dataset.pendingBytes = String(c.pending_bytes);
    tr.dataset.subscriptions = String(c.subscriptions);
    cell(tr, c.cid, "num");
    cell(tr, c.name || "");
    cell(tr, `${c.ip}:${c.port}`);
    cell(tr, [c.lang, c.version].filter(Boolean).join(" "));
    cell(tr, c.account || c.name_tag || ""); // connz names $G only in name_tag
    cell(tr, c.subscriptions, "num");
    cell(tr, formatBytes(c.pending_bytes), "num");
    cell(tr, formatCount(c.in_msgs), "num");
    cell(tr, formatCount(c.out_msgs), "num");
    cell(tr, formatBytes(c.in_bytes), "num");
    cell(tr, formatBytes(c.out_bytes), "num");
    cell(tr, c.uptime);
    const rows = [tr];
    const subjects = c.subscriptions_list || [];
    if (subjects.length) {
      const detail = document.createElement("tr");
      detail.className = "subs-row";
      detail.dataset.cid = String(c.cid);
      const td = cell(detail, subjects.join("  "), "subs");
      td.colSpan = 12;
      rows.push(detail);
    }
    return rows;
  }, "no connections");
}

function setUpSorting() {
  for (const th of $("connections-table").tHead.rows[0].cells) {
    th.addEventListener("click", () => {
      const key = th.dataset.key;
      sort.asc = sort.key === key ? !sort.asc : !("numeric" in th.dataset);
      sort.key = key;
      for (const other of th.parentElement.cells) other.classList.remove("sorted", "asc");
      th.classList.add("sorted");
      if (sort.asc) th.classList.add("asc");
      showConnections();
    });
  }
}

// --- accounts, JetStream, routes, leaf nodes -----------------------------------------------

function showAccounts(accstatz) {
  fillTable("accounts-table", accstatz.account_statz || [], (a) => {
    const tr = document.createElement("tr");
    tr.dataset.account = a.acc;
    tr.dataset.connections = String(a.conns);
    cell(tr, a.acc);
    cell(tr, a.conns, "num");
    cell(tr, a.leafnodes, "num");
    cell(tr, a.num_subscriptions, "num");
    cell(tr, formatCount(a.sent.msgs), "num");
    cell(tr, formatCount(a.received.msgs), "num");
    cell(tr, formatBytes(a.sent.bytes), "num");
    cell(tr, formatBytes(a.received.bytes), "num");
    return [tr];
  }, "no accounts");
}

function showJetStream(jsz) {
  const streams = [];
  const consumers = [];
  for (const account of jsz.account_details || []) {
    for (const stream of account.stream_detail || []) {
      streams.push({ account: account.name, stream });
      for (const consumer of stream.consumer_detail || []) consumers.push(consumer);
    }
  }
  $("jetstream-summary").textContent = jsz.disabled
    ? "(off)"
    : `(${jsz.streams} streams, ${jsz.consumers} consumers, ${formatCount(jsz.messages)} messages,`
      + ` ${formatBytes(jsz.bytes)})`;
  fillTable("streams-table", streams, ({ account, stream }) => {
    const state = stream.state || {};
    const tr = document.createElement("tr");
    tr.dataset.account = account;
    tr.dataset.stream = stream.name;
    tr.dataset.messages = String(state.messages);
    tr.dataset.bytes = String(state.bytes);
    cell(tr, account);
    cell(tr, stream.name);
    cell(tr, formatCount(state.messages), "num");
    cell(tr, formatBytes(state.bytes), "num");
    cell(tr, state.first_seq, "num");
    cell(tr, state.last_seq, "num");
    cell(tr, state.num_subjects, "num");
    cell(tr, state.consumer_count, "num");
    return [tr];
  }, jsz.disabled ? "JetStream is not enabled" : "no streams");
  fillTable("consumers-table", consumers, (c) => {
    const tr = document.createElement("tr");
    tr.dataset.stream = c.stream_name;
    tr.dataset.consumer = c.name;
    tr.dataset.lag = String(c.num_pending);
    tr.dataset.ackPending = String(c.num_ack_pending);
    cell(tr, c.stream_name);
    cell(tr, c.name);
    cell(tr, formatCount(c.num_pending), "num");
    cell(tr, formatCount(c.num_ack_pending), "num");
    cell(tr, formatCount(c.num_redelivered), "num");
    cell(tr, c.num_waiting, "num");
    cell(tr, c.delivered ? c.delivered.stream_seq : "", "num");
    cell(tr, c.ack_floor ? c.ack_floor.stream_seq : "", "num");
    return [tr];
  }, "no consumers");
}

function showRoutes(routez) {
  const routes = routez.routes || [];
  $("routes-count").textContent = `(${routes.length})`;
  fillTable("routes-table", routes, (r) => {
    const tr = document.createElement("tr");
    tr.dataset.rid = String(r.rid);
    tr.dataset.remote = r.remote_name || r.remote_id || "";
    cell(tr, r.rid, "num");
    cell(tr, r.remote_name || r.remote_id);
    cell(tr, `${r.ip}:${r.port}`);
    cell(tr, r.subscriptions, "num");
    cell(tr, formatBytes(r.pending_size), "num");
    cell(tr, formatCount(r.in_msgs), "num");
    cell(tr, formatCount(r.out_msgs), "num");
    return [tr];
  }, "no routes");
}

function showLeafs(leafz) {
  const leafs = leafz.leafs || [];
  $("leafs-count").textContent = `(${leafs.length})`;
  fillTable("leafs-table", leafs, (l) => {
    const tr = document.createElement("tr");
    tr.dataset.leaf = l.name || `${l.ip}:${l.port}`;
    cell(tr, l.name || "");
    cell(tr, l.account);
    cell(tr, `${l.ip}:${l.port}`);
    cell(tr, l.subscriptions, "num");
    cell(tr, l.rtt);
    cell(tr, formatCount(l.in_msgs), "num");
    cell(tr, formatCount(l.out_msgs), "num");
    return [tr];
  }, "no leaf nodes");
}

// --- the poll loop --------------------------------------------------------------------------

async function poll() {
  const status = $("status");
  try {
    const [varz, connz, accstatz, jsz, routez, leafz] = await Promise.all([
      getJSON("/varz"),
      getJSON("/connz?subs=1&auth=1&limit=1024"),
      getJSON("/accstatz?unused=1"),
      getJSON("/jsz?accounts=true&streams=true&consumers=true"),
      getJSON("/routez"),
      getJSON("/leafz"),
    ]);
    showServer(varz);
    addSample(varz);
    showRates();
    connections = connz.connections || [];
    showConnections();
    showAccounts(accstatz);
    showJetStream(jsz);
    showRoutes(routez);
    showLeafs(leafz);
    polls += 1;
    document.body.dataset.polls = String(polls);
    status.textContent = `live · every ${INTERVAL_MS / 1000} s`;
    status.className = "status";
    delete document.body.dataset.error;
  } catch (error) {
    status.textContent = `cannot reach the server: ${error.message}`;
    status.className = "status error";
    document.body.dataset.error = error.message;
  }
  setTimeout(poll, INTERVAL_MS);
}

setUpSorting();
poll();
