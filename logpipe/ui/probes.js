// The probe history page: the pods with probes, and for the one picked, what each probe of each of its
// containers did lately (the pod subresource `probes`: time, outcome, latency, output, which run), the
// probes' settings, the containers' runs and the pod's events, so that "why was this restarted at 03:12"
// has an answer. It reads the Kubernetes API of the same server with the API token (`common.js`).
// Times are the browser's local time.

import { $, getJSON, token, tokenForm } from "./common.js";

const TYPES = ["Startup", "Liveness", "Readiness"];
const FIELDS = { Startup: "startupProbe", Liveness: "livenessProbe", Readiness: "readinessProbe" };
const state = { pods: [], selected: null, busy: false };

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else e[k] = v;
  }
  e.append(...children.filter((c) => c !== null && c !== undefined));
  return e;
}

/// A time in the browser's zone, with milliseconds when it has them (events have whole seconds).
const when = (iso) => {
  const d = new Date(iso);
  if (isNaN(d)) return "";
  const millis = /\.\d+/.test(iso) ? `.${String(d.getMilliseconds()).padStart(3, "0")}` : "";
  return `${d.toLocaleDateString()} ${d.toLocaleTimeString([], { hour12: false })}${millis}`;
};
const ms = (seconds) => `${(seconds * 1000).toFixed(seconds < 0.01 ? 2 : 1)} ms`;

/// The containers of a pod that can have probes: its sidecars, then its app containers.
function containers(pod) {
  const spec = pod.spec || {};
  return [...(spec.initContainers || []).filter((c) => c.restartPolicy === "Always"), ...(spec.containers || [])];
}

function statusOf(pod, name) {
  const s = pod.status || {};
  return [...(s.initContainerStatuses || []), ...(s.containerStatuses || [])].find((c) => c.name === name) || {};
}

/// A probe as `kubectl describe` writes it.
function describeProbe(p) {
  let handler = "no handler";
  if (p.httpGet) {
    const h = p.httpGet;
    handler = `http-get ${(h.scheme || "HTTP").toLowerCase()}://${h.host || ""}:${h.port}${h.path || ""}`;
  } else if (p.tcpSocket) handler = `tcp-socket ${p.tcpSocket.host || ""}:${p.tcpSocket.port}`;
  else if (p.exec) handler = `exec [${(p.exec.command || []).join(" ")}]`;
  else if (p.grpc) handler = `grpc <pod>:${p.grpc.port} ${p.grpc.service || ""}`;
  return `${handler} delay=${p.initialDelaySeconds || 0}s timeout=${p.timeoutSeconds || 1}s period=${p.periodSeconds || 10}s`
    + ` #success=${p.successThreshold || 1} #failure=${p.failureThreshold || 3}`;
}

async function loadPods() {
  const pods = [];
  let next = null;
  do {
    const page = await getJSON("/api/v1/pods", { limit: 500, continue: next });
    pods.push(...(page.items || []));
    next = page.metadata?.continue;
  } while (next);
  state.pods = pods;
  renderPods();
}

function renderPods() {
  const filter = $("filter").value.trim();
  const only = $("only-probed").checked;
  const aside = $("pods");
  aside.replaceChildren(el("h3", {}, "pods"));
  for (const pod of state.pods) {
    const key = `${pod.metadata.namespace}/${pod.metadata.name}`;
    const cs = containers(pod);
    const probes = cs.reduce((n, c) => n + TYPES.filter((t) => c[FIELDS[t]]).length, 0);
    if ((only && probes === 0 && key !== state.selected) || (filter && !key.includes(filter))) continue;
    const statuses = cs.map((c) => statusOf(pod, c.name));
    const ready = statuses.filter((s) => s.ready).length;
    const restarts = statuses.reduce((n, s) => n + (s.restartCount || 0), 0);
    const b = el("button", { type: "button", "data-pod": key, title: `${probes} probes, ${restarts} restarts` },
      key, el("span", {}, `${ready}/${cs.length}${restarts ? ` ↻${restarts}` : ""}`));
    if (key === state.selected) b.className = "selected";
    b.addEventListener("click", () => select(key));
    aside.append(b);
  }
}

function select(key) {
  state.selected = key;
  history.replaceState(null, "", `${location.pathname}#pod=${encodeURIComponent(key)}`);
  renderPods();
  show();
}

async function show() {
  const key = state.selected;
  if (!key) return;
  const [ns, name] = key.split("/");
  const base = `/api/v1/namespaces/${encodeURIComponent(ns)}/pods/${encodeURIComponent(name)}`;
  try {
    const pod = await getJSON(base);
    // This pod's events only: not those of an earlier pod of the same name, nor of another kind.
    const [history, events] = await Promise.all([
      getJSON(`${base}/probes`),
      getJSON(`/api/v1/namespaces/${encodeURIComponent(ns)}/events`,
        { fieldSelector: `involvedObject.kind=Pod,involvedObject.uid=${pod.metadata.uid}` }),
    ]);
    // Another pod was picked while this one loaded.
    if (state.selected !== key) return;
    render(pod, history, events.items || []);
    $("status").textContent = `updated ${new Date().toLocaleTimeString([], { hour12: false })}`;
  } catch (e) {
    $("status").textContent = `Error: ${e.message}`;
  }
}

function render(pod, history, events) {
  const { namespace, name } = pod.metadata;
  const ready = (pod.status?.conditions || []).find((c) => c.type === "Ready");
  const out = [el("h2", {}, `${namespace}/${name} `,
    el("span", { class: "facts" }, `${pod.status?.phase || "Pending"}${ready ? ` · Ready ${ready.status}` : ""}`))];
  for (const c of containers(pod)) {
    const attempts = history.containers?.[c.name] || [];
    if (!TYPES.some((t) => c[FIELDS[t]]) && !attempts.length) continue;
    out.push(container(pod, c, attempts));
  }
  if (out.length === 1) out.push(el("p", {}, "No container of this pod has probes."));
  out.push(eventTable(events));
  $("pod").replaceChildren(...out);
}

function row(cell, values) {
  const tr = document.createElement("tr");
  for (const v of values) tr.append(el(cell, {}, v ?? ""));
  return tr;
}

function container(pod, c, attempts) {
  const s = statusOf(pod, c.name);
  const now = s.state?.running ? `running since ${when(s.state.running.startedAt)}`
    : s.state?.waiting ? `waiting: ${s.state.waiting.reason}`
    : s.state?.terminated ? `ended: ${s.state.terminated.reason} (exit ${s.state.terminated.exitCode})` : "not started";
  const last = s.lastState?.terminated;
  const logs = `./?query=${encodeURIComponent(`pod:"${pod.metadata.name}" AND container:"${c.name}"`)}`;
  const section = el("section", { class: "container", "data-container": c.name },
    el("h3", {}, c.name, " ", el("a", { href: logs }, "logs")),
    el("p", { class: "facts" }, `${now} · started ${s.started ? "yes" : "no"} · ready ${s.ready ? "yes" : "no"}`
      + ` · restarts ${s.restartCount || 0}`
      + (last ? ` · the previous run ended ${when(last.finishedAt)}: ${last.reason} (exit ${last.exitCode})` : "")));
  const settings = el("dl", { class: "settings" });
  for (const t of TYPES) if (c[FIELDS[t]]) settings.append(el("dt", {}, t), el("dd", {}, describeProbe(c[FIELDS[t]])));
  section.append(settings);
  // One strip per probe, oldest attempt on the left.
  for (const t of TYPES) {
    const own = attempts.filter((a) => a.probeType === t).reverse();
    if (!own.length) continue;
    const strip = el("div", { class: "strip", "data-type": t }, el("span", { class: "label" }, t));
    for (const a of own) {
      strip.append(el("span", { class: `tick ${a.outcome}`,
        title: `${when(a.time)}: ${a.outcome}, ${a.result} after it, in ${ms(a.durationSeconds)}${a.output ? `\n${a.output}` : ""}` }));
    }
    section.append(strip);
  }
  const table = el("table", { class: "attempts" }, el("thead", {}, row("th", ["time", "probe", "outcome", "result", "latency", "run", "output"])));
  const body = el("tbody");
  let run = null;
  for (const a of attempts) {
    if (run !== null && a.restartCount !== run) {
      body.append(el("tr", { class: "restart" }, el("td", { colSpan: 7 }, `restarted: run ${run} above, run ${a.restartCount} below`)));
    }
    run = a.restartCount;
    const tr = row("td", [when(a.time), a.probeType, a.outcome, a.result, ms(a.durationSeconds), String(a.restartCount), a.output]);
    tr.className = a.outcome;
    body.append(tr);
  }
  table.append(body);
  section.append(table);
  return section;
}

function eventTable(events) {
  const at = (e) => e.lastTimestamp || e.eventTime || e.firstTimestamp || "";
  const sorted = [...events].sort((a, b) => at(b).localeCompare(at(a)));
  const table = el("table", { class: "events" }, el("thead", {}, row("th", ["last seen", "type", "reason", "object", "message", "count"])));
  const body = el("tbody");
  for (const e of sorted) {
    const tr = row("td", [when(at(e)), e.type, e.reason, e.involvedObject?.fieldPath || "", e.message, String(e.count || 1)]);
    tr.className = (e.type || "").toLowerCase();
    body.append(tr);
  }
  table.append(body);
  return el("section", { class: "container" }, el("h3", {}, "events"), sorted.length ? table : el("p", {}, "No events."));
}

/// Reloads the pod list and the pod shown; a refresh still under way is not started again.
async function refresh() {
  if (!token()) {
    $("token").hidden = false;
    return;
  }
  if (state.busy) return;
  state.busy = true;
  try {
    await loadPods();
    await show();
  } catch (e) {
    $("status").textContent = `Error: ${e.message}`;
  } finally {
    state.busy = false;
  }
}

token();
state.selected = new URLSearchParams(location.hash.slice(1)).get("pod");
$("filter").addEventListener("input", renderPods);
$("only-probed").addEventListener("change", renderPods);
tokenForm(refresh);
setInterval(() => { if ($("follow").checked && token()) refresh(); }, 2000);
refresh();
