// The log search page: a query with a time range, a histogram to zoom with the mouse, facets to filter
// by clicking, results with highlighting and expandable fields, the lines around a line, and a live tail.
// It talks to the search API of the same server (`/logs/v1/...`) with the API token (`common.js`).

import { $, getJSON, token, tokenForm } from "./common.js";

const FACETS = ["namespace", "pod", "container", "level", "stream"];
const state = { start: null, end: null, cursor: null, tail: null };

function api(path, params) {
  return getJSON(`/logs/v1/${path}`, params);
}

/// The time range the form says, as [start, end] Dates.
function range() {
  const choice = $("range").value;
  if (choice === "custom") {
    const from = new Date($("from").value), to = new Date($("to").value);
    if (!isNaN(from) && !isNaN(to)) return [from, to];
  }
  const hours = { "15m": 0.25, "1h": 1, "6h": 6, "24h": 24, "168h": 168 }[choice] || 1;
  const end = new Date();
  return [new Date(end - hours * 3600e3), end];
}

/// A time in the browser's zone as `YYYY-MM-DDTHH:MM:SS.mmm` (what `datetime-local` inputs take, to
/// the second); a time the browser cannot read stays as it is.
function local(d) {
  const date = new Date(d);
  if (isNaN(date)) return String(d);
  return new Date(date - date.getTimezoneOffset() * 60e3).toISOString().slice(0, 23);
}

function setCustom(from, to) {
  $("range").value = "custom";
  $("custom").hidden = false;
  $("from").value = local(from).slice(0, 19);
  $("to").value = local(to).slice(0, 19);
}

/// Words of the query worth highlighting: free terms and phrases, not `field:value` filters or operators.
function terms() {
  const q = $("query").value;
  const out = [];
  for (const m of q.matchAll(/"([^"]+)"|(\S+)/g)) {
    const word = m[1] || m[2];
    if (!m[1] && (/^(AND|OR|NOT)$/.test(word) || word.includes(":"))) continue;
    out.push(word.replace(/^[+-]/, ""));
  }
  return out.filter((w) => w.length > 0);
}

/// The message with the query's words marked: where the server says they are (search hits carry byte
/// ranges, found by the index's own tokenizer), else by the words of the query (live tail lines).
function highlight(hit) {
  const text = hit.message;
  if (Array.isArray(hit.highlights)) {
    const span = document.createElement("span");
    span.className = "message";
    const bytes = new TextEncoder().encode(text);
    const decode = (a, b) => new TextDecoder().decode(bytes.slice(a, b));
    let last = 0;
    for (const [start, end] of hit.highlights) {
      span.append(decode(last, start));
      const mark = document.createElement("mark");
      mark.textContent = decode(start, end);
      span.append(mark);
      last = end;
    }
    span.append(decode(last, bytes.length));
    return span;
  }
  const span = document.createElement("span");
  span.className = "message";
  const words = terms().map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  if (!words.length) {
    span.textContent = text;
    return span;
  }
  const re = new RegExp(`(${words.join("|")})`, "gi");
  let last = 0;
  for (const m of text.matchAll(re)) {
    span.append(text.slice(last, m.index));
    const mark = document.createElement("mark");
    mark.textContent = m[0];
    span.append(mark);
    last = m.index + m[0].length;
  }
  span.append(text.slice(last));
  return span;
}

/// Adds `field:value` to the query and searches again.
function filter(field, value) {
  const clause = `${field}:"${String(value).replace(/"/g, '\\"')}"`;
  const q = $("query").value.trim();
  $("query").value = q ? `${q} AND ${clause}` : clause;
  search();
}

function row(hit, fresh) {
  const li = document.createElement("li");
  li.tabIndex = 0;
  if (fresh) li.className = "fresh";
  const time = document.createElement("span");
  time.className = "time";
  time.textContent = local(hit.timestamp).replace("T", " ");
  time.title = hit.timestamp;
  const level = document.createElement("span");
  level.className = `level ${hit.level}`;
  level.textContent = hit.level || "·";
  const where = document.createElement("span");
  where.className = "where";
  where.textContent = hit.pod ? `${hit.namespace}/${hit.pod}/${hit.container}` : hit.source;
  li.append(time, level, where, highlight(hit));
  li.addEventListener("click", (e) => {
    if (e.target.closest(".details")) return;
    toggle(li, hit);
  });
  li.addEventListener("keydown", (e) => { if (e.key === "Enter") toggle(li, hit); });
  return li;
}

function toggle(li, hit) {
  const open = li.querySelector(".details");
  if (open) return open.remove();
  const details = document.createElement("div");
  details.className = "details";
  const table = document.createElement("table");
  const fields = { timestamp: hit.timestamp, namespace: hit.namespace, pod: hit.pod, container: hit.container,
    node: hit.node, stream: hit.stream, level: hit.level, source: hit.source };
  for (const [k, v] of Object.entries(hit.attributes || {})) fields[`attributes.${k}`] = typeof v === "object" ? JSON.stringify(v) : v;
  for (const [k, v] of Object.entries(fields)) {
    if (v === "" || v === null || v === undefined) continue;
    const tr = table.insertRow();
    tr.insertCell().textContent = k;
    const cell = tr.insertCell();
    if (k === "timestamp") {
      cell.textContent = v;
      continue;
    }
    const link = document.createElement("a");
    link.textContent = v;
    link.title = `filter on ${k}`;
    link.addEventListener("click", () => filter(k, v));
    cell.append(link);
  }
  const context = document.createElement("a");
  context.textContent = "show the lines around this one";
  context.addEventListener("click", () => {
    const at = new Date(hit.timestamp);
    $("query").value = hit.pod ? `pod:"${hit.pod}"` : `source:"${hit.source}"`;
    setCustom(new Date(at - 30e3), new Date(+at + 30e3));
    search();
  });
  details.append(table, context);
  if (hit.pod) {
    const probes = document.createElement("a");
    probes.textContent = "probe history of this pod";
    probes.href = `probes.html#pod=${encodeURIComponent(`${hit.namespace}/${hit.pod}`)}`;
    details.append(" · ", probes);
  }
  li.append(details);
}

async function facets(params) {
  const aside = $("facets");
  aside.replaceChildren();
  for (const field of FACETS) {
    const { values } = await api(`fields/${field}`, { ...params, limit: 8 });
    if (!values.length) continue;
    const h = document.createElement("h3");
    h.textContent = field;
    aside.append(h);
    for (const { value, count } of values) {
      const b = document.createElement("button");
      b.type = "button";
      b.dataset.field = field;
      b.dataset.value = value;
      b.append(value);
      const n = document.createElement("span");
      n.textContent = count;
      b.append(n);
      b.addEventListener("click", () => filter(field, value));
      aside.append(b);
    }
  }
}

async function histogram(params) {
  const [start, end] = [new Date(params.start), new Date(params.end)];
  const seconds = Math.max(1, Math.ceil((end - start) / 1000 / 60));
  const { buckets } = await api("histogram", { ...params, interval: `${seconds}s` });
  const svg = $("histogram");
  const width = svg.clientWidth || 800, height = 90, max = Math.max(1, ...buckets.map((b) => b.count));
  const w = width / Math.max(1, buckets.length);
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.replaceChildren();
  const ns = "http://www.w3.org/2000/svg";
  buckets.forEach((b, i) => {
    const h = (b.count / max) * (height - 16);
    const rect = document.createElementNS(ns, "rect");
    rect.setAttribute("class", "bar");
    rect.setAttribute("x", i * w + 1);
    rect.setAttribute("y", height - 14 - h);
    rect.setAttribute("width", Math.max(1, w - 2));
    rect.setAttribute("height", h);
    const title = document.createElementNS(ns, "title");
    title.textContent = `${b.count} lines from ${local(b.start).replace("T", " ")}`;
    rect.append(title);
    svg.append(rect);
  });
  for (const [x, d, anchor] of [[2, start, "start"], [width - 2, end, "end"]]) {
    const t = document.createElementNS(ns, "text");
    t.setAttribute("x", x);
    t.setAttribute("y", height - 2);
    t.setAttribute("text-anchor", anchor);
    t.textContent = `${local(d).replace("T", " ").slice(0, 19)} ${Intl.DateTimeFormat().resolvedOptions().timeZone}`;
    svg.append(t);
  }
  svg.dataset.start = start.toISOString();
  svg.dataset.end = end.toISOString();
}

/// Dragging across the histogram zooms into the dragged span.
function brush() {
  const svg = $("histogram");
  let from = null, rect = null;
  const x = (e) => {
    const box = svg.getBoundingClientRect();
    return Math.min(Math.max(0, e.clientX - box.left), box.width) * (svg.viewBox.baseVal.width / box.width);
  };
  svg.addEventListener("mousedown", (e) => {
    from = x(e);
    rect = document.createElementNS("http://www.w3.org/2000/svg", "rect");
    rect.setAttribute("class", "brush");
    rect.setAttribute("y", 0);
    rect.setAttribute("height", 90);
    svg.append(rect);
  });
  window.addEventListener("mousemove", (e) => {
    if (from === null) return;
    const to = x(e);
    rect.setAttribute("x", Math.min(from, to));
    rect.setAttribute("width", Math.abs(to - from));
  });
  window.addEventListener("mouseup", (e) => {
    if (from === null) return;
    const to = x(e), width = svg.viewBox.baseVal.width;
    const [a, b] = [Math.min(from, to), Math.max(from, to)];
    from = null;
    if (b - a < 3) return rect.remove();
    const start = new Date(svg.dataset.start), end = new Date(svg.dataset.end), span = end - start;
    setCustom(new Date(+start + (a / width) * span), new Date(+start + (b / width) * span));
    search();
  });
}

async function search(more = false) {
  if (!token()) {
    $("token").hidden = false;
    return;
  }
  const [start, end] = range();
  const params = { query: $("query").value, start: start.toISOString(), end: end.toISOString() };
  state.start = params.start;
  state.end = params.end;
  const status = $("status");
  try {
    if (!more) {
      state.cursor = null;
      $("results").replaceChildren();
      status.textContent = "searching…";
    }
    const started = performance.now();
    const page = await api("search", { ...params, limit: 100, cursor: more ? state.cursor : null });
    for (const hit of page.hits) $("results").append(row(hit, false));
    state.cursor = page.nextCursor;
    $("more").hidden = !page.nextCursor;
    status.textContent = `${page.total.toLocaleString()} lines · ${Math.round(performance.now() - started)} ms`;
    if (!more) await Promise.all([histogram(params), facets(params)]);
  } catch (e) {
    status.textContent = `Error: ${e.message}`;
  }
}

/// Live tail: new matching lines arrive at the top (server-sent events read through fetch, which can
/// send the token).
async function tail(on) {
  if (state.tail) state.tail.abort();
  state.tail = null;
  if (!on) return;
  const controller = new AbortController();
  state.tail = controller;
  const url = new URL("/logs/v1/tail", location.origin);
  if ($("query").value) url.searchParams.set("query", $("query").value);
  try {
    const response = await fetch(url, { headers: { Authorization: `Bearer ${token()}` }, signal: controller.signal });
    if (!response.ok) {
      $("status").textContent = `Error: ${(await response.json()).error}`;
      $("tail").checked = false;
      return;
    }
    $("status").textContent = "live tail: new lines appear at the top";
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = event.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("\n");
        if (data) $("results").prepend(row(JSON.parse(data), true));
      }
    }
  } catch (e) {
    if (e.name !== "AbortError") $("status").textContent = `Error: ${e.message}`;
  }
}

$("search").addEventListener("submit", (e) => {
  e.preventDefault();
  search();
  if ($("tail").checked) tail(true);
});
$("range").addEventListener("change", () => {
  $("custom").hidden = $("range").value !== "custom";
  if ($("range").value !== "custom") search();
});
$("more").addEventListener("click", () => search(true));
$("tail").addEventListener("change", (e) => tail(e.target.checked));
tokenForm(search);
document.addEventListener("keydown", (e) => {
  if (e.key === "/" && document.activeElement !== $("query")) {
    e.preventDefault();
    $("query").focus();
  } else if (e.key === "Escape") {
    document.activeElement.blur();
  }
});
brush();
$("query").value = new URLSearchParams(location.search).get("query") || "";
search();
