// The operator's dashboard: state from snapshots and live events, drawn at most once per
// animation frame. Events only change plain data structures and mark what is dirty; the
// frame renders what changed, so bursts (thousands of agent updates a second) cost one
// render per frame, and the DOM stays bounded (log tail, task lists and alerts are capped).
// No inline script: configuration comes from the page's data-config attribute (or
// GET /api/v1/config) and the view from the URL fragment (#swarm=..&agent=..&level=..).

import { ChartBoard, MetricStore } from "./charts.js";
import { compareIds, Connection } from "./connection.js";

const STATUSES = ["idle", "busy", "processing", "waiting", "error", "offline"];
const LEVELS = ["debug", "info", "warning", "error", "critical"];
const LOG_BUFFER = 1000; // log events kept in memory
const LOG_ROWS = 200; // log lines in the DOM
const TASK_ROWS = 15;
const FINISHED_KEPT = 500;
const ALERTS_KEPT = 50;
const ALERTS_SHOWN = 4;
const TASK_RENDER_MS = 250;
const CLUSTER_POLL_MS = 5000;

const $ = (id) => document.getElementById(id);

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

const pad = (n, width = 2) => String(n).padStart(width, "0");

/** hh:mm:ss.mmm, local time (cheap: called for every log line drawn). */
function clock(ts) {
  const d = new Date(ts * 1000);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

function isCritical(event) {
  return event.type === "agent" && (event.data.status === "error" ||
                                    event.data.status === "offline");
}

// --- state ------------------------------------------------------------------------------

const state = {
  view: { swarm: "*", agent: null, level: "info" }, // agent: "<swarm>/<agent_id>"
  agents: new Map(), // "<swarm>/<agent_id>" -> latest agent event
  counts: Object.fromEntries(STATUSES.map((s) => [s, 0])),
  tasks: new Map(), // "<swarm>/<task_id>" -> latest task event
  logs: [], // newest last, at most LOG_BUFFER
  alerts: [], // newest first, at most ALERTS_KEPT
  swarms: new Set(),
  statusFilter: null,
  search: "",
  logsPaused: false,
};

const dirty = {
  frame: false, membership: false, agents: new Set(), counts: false, tasks: false,
  logs: [], logsAll: false, alerts: false, detail: false, status: true, swarms: false,
};

const metrics = new MetricStore(300);
const perf = { renders: 0, renderMsTotal: 0, renderMsMax: 0, lastRenderMs: 0, sections: {} };

function agentKey(event) {
  return `${event.swarm}/${event.agent_id}`;
}

function applyAgent(event) {
  const key = agentKey(event);
  const old = state.agents.get(key);
  if (old && compareIds(old.id, event.id) >= 0) return; // older than what is shown
  if (old) state.counts[old.data.status] -= 1;
  else dirty.membership = true;
  state.agents.set(key, event);
  state.counts[event.data.status] += 1;
  dirty.agents.add(key);
  dirty.counts = true;
  if (key === state.view.agent) dirty.detail = true;
  if (!state.swarms.has(event.swarm)) {
    state.swarms.add(event.swarm);
    dirty.swarms = true;
  }
}

function applyTask(event) {
  const key = `${event.swarm}/${event.data.task_id}`;
  const old = state.tasks.get(key);
  if (old && compareIds(old.id, event.id) >= 0) return;
  state.tasks.set(key, event);
  dirty.tasks = true;
}

function pruneTasks() {
  const finished = [...state.tasks.entries()]
    .filter(([, e]) => e.data.status === "completed" || e.data.status === "failed");
  if (finished.length <= FINISHED_KEPT * 1.2) return;
  finished.sort((a, b) => a[1].ts - b[1].ts);
  for (const [key] of finished.slice(0, finished.length - FINISHED_KEPT)) state.tasks.delete(key);
}

const agentMetricIds = new Set(); // the selected agent's points (history and live overlap)

function applyMetric(event, swarmSeries = true) {
  const { name, value, unit } = event.data;
  if (typeof value !== "number") return;
  if (swarmSeries) metrics.add(name, unit, event.swarm, event.ts, value);
  if (state.view.agent && agentKey(event) === state.view.agent && !agentMetricIds.has(event.id)) {
    agentMetricIds.add(event.id);
    metrics.add(name, unit, `agent:${event.agent_id}`, event.ts, value);
  }
}

/** The selected agent's recent metrics, so its chart line does not start empty. */
async function loadAgentHistory(key) {
  const slash = key.indexOf("/");
  const q = new URLSearchParams({ swarm: key.slice(0, slash), agent_id: key.slice(slash + 1),
                                  channels: "metric" });
  try {
    const response = await fetch(`/api/v1/events?${q}`, { headers: { Accept: "application/json" } });
    if (!response.ok || state.view.agent !== key) return;
    for (const event of (await response.json()).events) applyMetric(event, false);
    charts.draw(true);
  } catch {
    // live points only
  }
}

function applyLog(event) {
  if (state.view.agent && agentKey(event) !== state.view.agent) return;
  state.logs.push(event);
  if (state.logs.length > LOG_BUFFER * 1.2) state.logs.splice(0, state.logs.length - LOG_BUFFER);
  dirty.logs.push(event);
  if (dirty.logs.length > LOG_ROWS * 2) dirty.logs.splice(0, dirty.logs.length - LOG_ROWS);
}

function addAlert(event, source) {
  let severity;
  let message;
  if (event.type === "agent") {
    severity = event.data.status === "error" ? "error" : "warning";
    message = `${event.agent_id} is ${event.data.status}` +
      (event.data.message ? `: ${event.data.message}` : "");
  } else {
    severity = event.data?.severity || "warning";
    message = event.data?.message || "";
  }
  state.alerts.unshift({ id: event.id || null, severity, message, swarm: event.swarm,
                         agent: event.agent_id, ts: event.ts || Date.now() / 1000,
                         kind: event.type === "agent" ? "agent" : source, dismissed: false });
  state.alerts.length = Math.min(state.alerts.length, ALERTS_KEPT);
  dirty.alerts = true;
}

function applySnapshot(snapshot) {
  for (const event of snapshot.agents || []) applyAgent(event);
  for (const event of snapshot.tasks || []) applyTask(event);
}

// --- the connection -----------------------------------------------------------------------

function readConfig() {
  try {
    return JSON.parse(document.body.dataset.config || "null");
  } catch {
    return null;
  }
}

let connection;

function onEvents(sub, events, info) {
  for (const event of events) {
    switch (event.type) {
      case "agent":
        applyAgent(event);
        if (isCritical(event) && !info.prefill) addAlert(event, "agent");
        break;
      case "task": applyTask(event); break;
      case "metric": applyMetric(event); break;
      case "log": applyLog(event); break;
      case "alert": if (!info.prefill) addAlert(event, "alert"); break;
      default: break;
    }
  }
  schedule();
}

function onSnapshot(sub, snapshot) {
  applySnapshot(snapshot);
  schedule();
}

function onNotify(alert) {
  addAlert(alert, "notify");
  schedule();
}

/** The subscriptions for what is on screen. */
function subscriptionsFor(view) {
  if (!view.agent) return [{ swarm: view.swarm, channels: ["agent", "task", "metric", "log"] }];
  const slash = view.agent.indexOf("/");
  const agentSwarm = view.agent.slice(0, slash);
  const agentId = view.agent.slice(slash + 1);
  return [
    // the swarm without its log tail (the log panel shows the agent's lines)
    { swarm: view.swarm, channels: ["agent", "task", "metric"] },
    { swarm: agentSwarm, agent_id: agentId, channels: ["log"], prefill: true },
  ];
}

/** May this page's viewer token see every swarm (until the node said otherwise: yes)? */
function allSwarmsAllowed() {
  const viewer = connection?.viewer;
  return !viewer || viewer.swarms === "*";
}

/** The node told us who we are: a token for some swarms shows those, never "all swarms". */
function onViewer(viewer) {
  if (viewer.swarms === "*") return;
  for (const swarm of viewer.swarms) state.swarms.add(swarm);
  dirty.swarms = true;
  if (!viewer.swarms.includes(state.view.swarm) && viewer.swarms.length > 0) {
    setView({ ...state.view, swarm: viewer.swarms[0], agent: null });
  }
  schedule();
}

// --- the view (URL fragment) ----------------------------------------------------------------

function parseHash() {
  const q = new URLSearchParams(location.hash.slice(1));
  const level = LEVELS.includes(q.get("level")) ? q.get("level") : "info";
  return { swarm: q.get("swarm") || "*", agent: q.get("agent") || null, level };
}

function writeHash(view) {
  const q = new URLSearchParams();
  if (view.swarm !== "*") q.set("swarm", view.swarm);
  if (view.agent) q.set("agent", view.agent);
  if (view.level !== "info") q.set("level", view.level);
  const hash = q.toString();
  if (location.hash.slice(1) !== hash) history.replaceState(null, "", hash ? `#${hash}` : " ");
}

function setView(next) {
  const prev = state.view;
  state.view = next;
  writeHash(next);
  if (next.swarm !== prev.swarm) {
    state.agents.clear();
    state.tasks.clear();
    for (const s of STATUSES) state.counts[s] = 0;
    metrics.clear();
    charts.clear();
    state.logs = [];
    dirty.membership = true;
    dirty.counts = true;
    dirty.tasks = true;
    dirty.logsAll = true;
  }
  if (next.agent !== prev.agent) {
    metrics.dropSeries("agent:");
    agentMetricIds.clear();
    if (next.agent) loadAgentHistory(next.agent);
    state.logs = [];
    dirty.logsAll = true;
    dirty.detail = true;
    dirty.agents.add(prev.agent);
    dirty.agents.add(next.agent);
  }
  if (next.level !== prev.level) dirty.logsAll = true;
  dirty.swarms = true;
  connection.setSubscriptions(subscriptionsFor(next));
  schedule();
}

// --- rendering -----------------------------------------------------------------------------

function schedule() {
  if (dirty.frame) return;
  dirty.frame = true;
  requestAnimationFrame(render);
}

const tiles = new Map(); // agent key -> element
let lastTaskRender = 0;
let taskTimer = null;

function timed(name, fn) {
  const t0 = performance.now();
  fn();
  const took = performance.now() - t0;
  const section = perf.sections[name] || (perf.sections[name] = { n: 0, totalMs: 0, maxMs: 0 });
  section.n += 1;
  section.totalMs += took;
  section.maxMs = Math.max(section.maxMs, took);
}

function render() {
  dirty.frame = false;
  const start = performance.now();
  if (dirty.status) timed("status", renderStatus);
  if (dirty.alerts) timed("alerts", renderAlerts);
  if (dirty.swarms) timed("swarms", renderSwarms);
  if (dirty.membership) timed("membership", renderMembership);
  if (dirty.agents.size) timed("tiles", renderTiles);
  if (dirty.counts) timed("counts", renderCounts);
  if (dirty.detail) timed("detail", renderDetail);
  if (dirty.logsAll || dirty.logs.length) timed("logs", renderLogs);
  if (dirty.tasks) {
    if (start - lastTaskRender >= TASK_RENDER_MS) timed("tasks", renderTasks);
    else if (!taskTimer) {
      taskTimer = setTimeout(() => { taskTimer = null; schedule(); }, TASK_RENDER_MS);
    }
  }
  timed("charts", () => charts.draw());
  const took = performance.now() - start;
  perf.renders += 1;
  perf.renderMsTotal += took;
  perf.renderMsMax = Math.max(perf.renderMsMax, took);
  perf.lastRenderMs = took;
}

const STATE_TEXT = {
  websocket: () => "connected · websocket",
  "long-polling": () => "connected · long-polling",
  "store-unavailable": (s) => `connected · ${s.transport || "socket"} · store unavailable, `
    + "live updates resume when it is back",
  connecting: () => "connecting…",
  reconnecting: (s) => `reconnecting (attempt ${s.attempt})`,
  fallback: (s) => `polling fallback · ${s.gaveUp ? "probing the socket" : `socket attempt ${s.attempt}`}`,
  offline: () => "offline",
  "signed-out": (s) => (/expired/.test(s.signedOut || "") ? "sign-in expired" : "not signed in")
    + " · open your sign-in link (swarmdash token)",
};

function renderStatus() {
  dirty.status = false;
  const s = connection.status();
  const box = $("connection");
  box.dataset.state = s.state;
  box.className = `connection conn-${s.state}`;
  const text = STATE_TEXT[s.state](s);
  if ($("connection-text").textContent !== text) $("connection-text").textContent = text;
  box.title = s.signedOut || (s.viewer ? `signed in as ${s.viewer.name}` : "");
  $("serving-node").textContent = s.node || "–";
  $("event-lag").textContent = s.lagMs == null ? "–"
    : s.lagMs < 1000 ? `${s.lagMs} ms` : `${(s.lagMs / 1000).toFixed(1)} s`;
}

function renderAlerts() {
  dirty.alerts = false;
  const list = $("alert-list");
  const shown = state.alerts.filter((a) => !a.dismissed).slice(0, ALERTS_SHOWN);
  const rows = shown.map((a) => {
    const li = el("li", `alert sev-${a.severity}`);
    li.dataset.alertId = a.id || "";
    li.append(el("span", "badge", a.severity.toUpperCase()),
              el("time", "muted", clock(a.ts)),
              el("span", "who", a.kind === "notify" ? "system" : `${a.swarm} / ${a.agent}`),
              el("span", "msg", a.message));
    const close = el("button", "link", "dismiss");
    close.type = "button";
    close.addEventListener("click", () => { a.dismissed = true; dirty.alerts = true; schedule(); });
    li.append(close);
    return li;
  });
  list.replaceChildren(...rows);
  const more = state.alerts.filter((a) => !a.dismissed).length - shown.length;
  if (more > 0) list.append(el("li", "muted small", `+ ${more} more`));
  $("alerts").hidden = shown.length === 0;
}

function renderSwarms() {
  dirty.swarms = false;
  const select = $("swarm-select");
  const names = [...new Set([...state.swarms, ...(state.view.swarm === "*" ? [] : [state.view.swarm])])]
    .sort();
  const wanted = [...(allSwarmsAllowed() ? ["*"] : []), ...names];
  const have = [...select.options].map((o) => o.value);
  if (have.join() !== wanted.join()) {
    select.replaceChildren(...wanted.map((name) => {
      const option = el("option", "", name === "*" ? "all swarms" : name);
      option.value = name;
      return option;
    }));
  }
  select.value = state.view.swarm;
}

function tileFor(key) {
  let tile = tiles.get(key);
  if (!tile) {
    tile = el("button", "agent");
    tile.type = "button";
    tile.dataset.key = key;
    tile.append(el("span", "a-id"), el("span", "a-st"));
    tiles.set(key, tile);
  }
  return tile;
}

function matchesSearch(event) {
  if (!state.search) return true;
  const text = `${event.agent_id} ${event.data.role || ""} ${event.swarm}`.toLowerCase();
  return text.includes(state.search);
}

function renderMembership() {
  dirty.membership = false;
  const grid = $("agent-grid");
  const keys = [...state.agents.keys()].sort();
  for (const [key, tile] of tiles) {
    if (!state.agents.has(key)) {
      tile.remove();
      tiles.delete(key);
    }
  }
  const fragment = document.createDocumentFragment();
  let swarm = null;
  for (const key of keys) {
    const event = state.agents.get(key);
    if (state.view.swarm === "*" && event.swarm !== swarm) {
      swarm = event.swarm;
      fragment.append(el("h3", "swarm-head", swarm)); // all swarms: grouped by swarm
    }
    fragment.append(tileFor(key));
    dirty.agents.add(key);
  }
  grid.replaceChildren(fragment);
  $("agent-total").textContent = `(${keys.length})`;
}

function renderTiles() {
  const selected = state.view.agent;
  for (const key of dirty.agents) {
    const event = state.agents.get(key);
    const tile = tiles.get(key);
    if (!event || !tile) continue;
    const status = event.data.status;
    tile.className = `agent st-${status}${key === selected ? " selected" : ""}`;
    tile.dataset.status = status;
    tile.hidden = !matchesSearch(event);
    const [idSpan, stSpan] = tile.children;
    if (idSpan.textContent !== event.agent_id) idSpan.textContent = event.agent_id;
    if (stSpan.textContent !== status) stSpan.textContent = status;
    tile.title = `${event.swarm} / ${event.agent_id}: ${status}` +
      (event.data.role ? ` · ${event.data.role}` : "") +
      (event.data.task_id ? ` · ${event.data.task_id}` : "");
  }
  dirty.agents.clear();
}

function renderCounts() {
  dirty.counts = false;
  for (const status of STATUSES) {
    const text = String(state.counts[status]);
    const node = $(`count-${status}`);
    if (node.textContent !== text) node.textContent = text;
  }
}

function renderDetail() {
  dirty.detail = false;
  const key = state.view.agent;
  const panel = $("agent-detail");
  panel.hidden = !key;
  document.body.classList.toggle("agent-selected", !!key);
  $("logs-scope").textContent = key ? `· ${key}` : state.view.swarm === "*" ? "· all swarms"
    : `· ${state.view.swarm}`;
  if (!key) return;
  $("detail-id").textContent = key;
  const event = state.agents.get(key);
  const fields = [["status", event?.data.status || "unknown"], ["swarm", key.split("/")[0]]];
  if (event) {
    for (const [name, value] of Object.entries(event.data)) {
      if (name !== "status") fields.push([name, typeof value === "object" ? JSON.stringify(value) : String(value)]);
    }
    fields.push(["updated", clock(event.ts)], ["event", event.id]);
  }
  const dl = $("detail-fields");
  dl.replaceChildren(...fields.map(([name, value]) => {
    const div = el("div");
    const dd = el("dd", name === "status" ? `status-text st-${value}` : "", value);
    div.append(el("dt", "", name), dd);
    return div;
  }));
}

function logRow(event) {
  const level = event.data.level;
  const li = el("li", `lv-${level}`);
  li.dataset.id = event.id;
  li.append(el("time", "", clock(event.ts)), el("span", "lv", level),
            el("span", "who", `${event.swarm}/${event.agent_id}`), el("span", "msg", event.data.message));
  return li;
}

function renderLogs() {
  if (state.logsPaused) return;
  const tail = $("log-tail");
  const min = LEVELS.indexOf(state.view.level);
  const visible = (e) => LEVELS.indexOf(e.data.level) >= min;
  let fresh;
  if (dirty.logsAll) {
    dirty.logsAll = false;
    tail.replaceChildren();
    fresh = state.logs.filter(visible);
  } else {
    fresh = dirty.logs.filter(visible);
  }
  dirty.logs = [];
  if (fresh.length === 0) return;
  fresh = fresh.slice(-LOG_ROWS);
  const fragment = document.createDocumentFragment();
  for (let i = fresh.length - 1; i >= 0; i -= 1) fragment.append(logRow(fresh[i]));
  tail.prepend(fragment);
  while (tail.childElementCount > LOG_ROWS) tail.lastElementChild.remove();
}

function taskRow(event) {
  const li = el("li", `task ts-${event.data.status}`);
  li.append(el("span", "t-st", event.data.status), el("span", "t-id", event.data.task_id),
            el("span", "who muted", event.agent_id));
  return li;
}

function renderTasks() {
  dirty.tasks = false;
  lastTaskRender = performance.now();
  pruneTasks();
  const queue = [];
  const done = [];
  const n = { queued: 0, running: 0, completed: 0, failed: 0 };
  for (const event of state.tasks.values()) {
    n[event.data.status] += 1;
    (event.data.status === "queued" || event.data.status === "running" ? queue : done).push(event);
  }
  const newest = (a, b) => b.ts - a.ts;
  $("task-queue").replaceChildren(...queue.sort(newest).slice(0, TASK_ROWS).map(taskRow));
  $("task-done").replaceChildren(...done.sort(newest).slice(0, TASK_ROWS).map(taskRow));
  $("task-summary").textContent =
    `${n.queued} queued · ${n.running} running · ${n.completed} completed · ${n.failed} failed`;
}

// --- cluster: viewers across nodes ---------------------------------------------------------

let clusterTimer = null;

async function pollCluster() {
  clearTimeout(clusterTimer);
  try {
    const response = await fetch("/api/v1/cluster", { headers: { Accept: "application/json" } });
    if (response.ok) {
      const body = await response.json();
      const t = body.totals || {};
      $("viewers").textContent = `${t.clients ?? "?"} on ${t.nodes ?? "?"} node${t.nodes === 1 ? "" : "s"}`;
    } else {
      $("viewers").textContent = "–"; // not offered by this node (404) or unavailable
    }
  } catch {
    $("viewers").textContent = "–";
  }
  clusterTimer = setTimeout(pollCluster, CLUSTER_POLL_MS);
}

// --- frame timing (for operators and tests) -------------------------------------------------

/** Frame intervals over `ms` milliseconds: {frames, meanMs, p95Ms, maxMs}. */
function measureFrames(ms = 3000) {
  return new Promise((resolve) => {
    const gaps = [];
    let last = performance.now();
    const end = last + ms;
    const tick = (now) => {
      gaps.push(now - last);
      last = now;
      if (now < end) {
        requestAnimationFrame(tick);
        return;
      }
      gaps.sort((a, b) => a - b);
      const mean = gaps.reduce((a, b) => a + b, 0) / gaps.length;
      resolve({ frames: gaps.length, meanMs: mean, p95Ms: gaps[Math.floor(gaps.length * 0.95)],
                maxMs: gaps[gaps.length - 1] });
    };
    requestAnimationFrame(tick);
  });
}

// --- start ---------------------------------------------------------------------------------

let charts;
let lastLink = null;

async function loadConfig() {
  const embedded = readConfig();
  if (embedded) return embedded;
  for (;;) {
    try {
      const response = await fetch("/api/v1/config");
      if (response.ok) return await response.json();
    } catch {
      // retry below
    }
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

function bindControls() {
  $("swarm-select").addEventListener("change", (e) => {
    setView({ ...state.view, swarm: e.target.value, agent: null });
  });
  $("agent-grid").addEventListener("click", (e) => {
    const tile = e.target.closest(".agent");
    if (!tile) return;
    const key = tile.dataset.key;
    setView({ ...state.view, agent: key === state.view.agent ? null : key });
  });
  $("detail-close").addEventListener("click", () => setView({ ...state.view, agent: null }));
  $("log-level").addEventListener("change", (e) => {
    setView({ ...state.view, level: e.target.value });
  });
  $("logs-pause").addEventListener("click", (e) => {
    state.logsPaused = !state.logsPaused;
    e.target.setAttribute("aria-pressed", String(state.logsPaused));
    e.target.textContent = state.logsPaused ? "resume" : "pause";
    if (!state.logsPaused) dirty.logsAll = true;
    schedule();
  });
  $("status-counts").addEventListener("click", (e) => {
    const button = e.target.closest(".count");
    if (!button) return;
    const status = button.dataset.status;
    state.statusFilter = state.statusFilter === status ? null : status;
    for (const b of $("status-counts").querySelectorAll(".count")) {
      b.setAttribute("aria-pressed", String(b.dataset.status === state.statusFilter));
    }
    if (state.statusFilter) $("agent-grid").dataset.filter = state.statusFilter;
    else delete $("agent-grid").dataset.filter;
  });
  $("agent-search").addEventListener("input", (e) => {
    state.search = e.target.value.trim().toLowerCase();
    for (const key of state.agents.keys()) dirty.agents.add(key);
    schedule();
  });
  $("alerts-dismiss").addEventListener("click", () => {
    for (const a of state.alerts) a.dismissed = true;
    dirty.alerts = true;
    schedule();
  });
  window.addEventListener("hashchange", () => {
    const view = parseHash();
    $("log-level").value = view.level;
    setView(view);
  });
}

async function main() {
  const config = await loadConfig();
  charts = new ChartBoard($("charts"), $("charts-empty"), metrics);
  connection = new Connection(config, {
    onEvents, onSnapshot, onNotify, onViewer,
    onStatus: () => {
      dirty.status = true;
      schedule();
      const { state: now, node } = connection.status();
      const link = `${now}|${node}`;
      if (link !== lastLink) {
        lastLink = link;
        if (now === "websocket" || now === "long-polling") {
          // a new connection is counted by its node's next heartbeat
          clearTimeout(clusterTimer);
          clusterTimer = setTimeout(pollCluster, 1500);
        }
      }
    },
    onSubscribeError: (sub, ack) => console.warn("subscribe refused", sub.key, ack.error, ack.detail),
  });
  charts.clockOffset = () => connection.clockOffset;
  const hook = {
    state, connection, perf, metrics, measureFrames,
    status: () => connection.status(),
    stats: () => ({ ...connection.stats, ...perf, domNodes: document.getElementsByTagName("*").length,
                    agents: state.agents.size, logRows: $("log-tail").childElementCount }),
    drop: () => connection.drop(),
    shown: null,
  };
  if (window.__swarmdashRecord) {
    // tests: every event handed to the page, in order, once it passed de-duplication
    hook.shown = [];
    connection.recorder = (event, key, info) => hook.shown.push({ id: event.id, type: event.type,
      swarm: event.swarm, agent_id: event.agent_id, data: event.data, sub: key,
      replay: !!info.replay, poll: !!info.poll });
  }
  window.__swarmdash = hook;
  bindControls();
  const view = parseHash();
  $("log-level").value = view.level;
  state.view = { swarm: "*", agent: null, level: "info" };
  pollCluster();
  connection.start();
  setView(view);
  dirty.detail = true;
  setInterval(() => { dirty.status = true; schedule(); }, 500); // lag and attempt counters
}

main();
