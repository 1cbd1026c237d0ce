// The publishing side for the Node.js peer: the same workload as bench/workload.py, sent
// through the Redis adapter from a Socket.IO server that serves no clients (the emitter
// pattern). MODE=perevent emits each event on its own to its swarm's room and the
// all-swarms room; MODE=batched hands each tick's events to every node ("ingest"), which
// batches them like SwarmDash. Stops after DURATION seconds or on SIGTERM and prints one
// JSON line. Usage: node publish.mjs REDIS_URL MODE WORKLOAD_JSON DURATION
import { Server } from "socket.io";
import { createAdapter } from "@socket.io/redis-adapter";
import { createClient } from "redis";

const [redisUrl, mode, workloadText, durationText] = process.argv.slice(2);
const w = JSON.parse(workloadText);
const duration = Number(durationText) * 1000;
const pub = createClient({ url: redisUrl });
const sub = pub.duplicate();
await Promise.all([pub.connect(), sub.connect()]);
const io = new Server({ adapter: createAdapter(pub, sub) });

const TYPES = ["agent", "task", "metric", "log", "alert"];
const STATUSES = ["idle", "busy", "processing", "waiting"];
const TASK_STATUSES = ["queued", "running", "completed"];
const rates = { agent: w.agents * w.agent_rate, task: w.agents * w.task_rate,
                metric: w.agents * w.metric_rate, log: w.agents * w.log_rate, alert: w.alert_rate };
const owed = Object.fromEntries(TYPES.map((t) => [t, 0]));
const nextAgent = Object.fromEntries(TYPES.map((t) => [t, 0]));
const perType = Object.fromEntries(TYPES.map((t) => [t, 0]));
const seq = {};
for (let i = 1; i <= w.swarms; i++) seq[`swarm-${i}`] = 0;
let counter = 0;

function makeEvent(kind, nowMs) {
  const index = nextAgent[kind]++ % w.agents;
  const swarm = `swarm-${(index % w.swarms) + 1}`;
  seq[swarm] += 1;
  const n = ++counter;
  let data;
  if (kind === "agent") data = { status: STATUSES[n % STATUSES.length] };
  else if (kind === "task") data = { task_id: `task-${index}-${n % 7}`, status: TASK_STATUSES[n % 3] };
  else if (kind === "metric") data = { name: "cpu", value: n % 100, unit: "%" };
  else if (kind === "log") data = { level: "info", message: `agent-${index} step ${n}` };
  else data = { severity: "warning", message: `agent-${index} queue is growing` };
  data.seq = seq[swarm];
  data.sent = nowMs;
  perType[kind] += 1;
  return { type: kind, swarm, agent_id: `agent-${index}`, ts: nowMs / 1000, data };
}

const nowMs = () => performance.timeOrigin + performance.now();
const start = performance.now();
let last = start;
let behind = 0;
let stopped = false;
console.log(JSON.stringify({ started: nowMs() / 1000 }));

function tick() {
  if (stopped) return;
  const now = performance.now();
  behind = Math.max(behind, now - last - w.tick_ms);
  const elapsed = (now - last) / 1000;
  last = now;
  const stamp = nowMs();
  const events = [];
  for (const kind of TYPES) {
    owed[kind] += rates[kind] * elapsed;
    while (owed[kind] >= 1) { owed[kind] -= 1; events.push(makeEvent(kind, stamp)); }
  }
  if (mode === "batched") {
    if (events.length) io.serverSideEmit("ingest", events);
  } else {
    for (const e of events) {
      io.to([`swarm:${e.swarm}`, "swarm:*"]).emit(e.type === "alert" ? "system_alert" : `${e.type}_update`, e);
    }
  }
  if (now - start >= duration) return finish();
  setTimeout(tick, Math.max(0, last + w.tick_ms - performance.now()));
}

function finish() {
  if (stopped) return;
  stopped = true;
  console.log(JSON.stringify({ summary: { published: counter, per_swarm: seq, per_type: perType,
    duration: (last - start) / 1000, max_behind_s: behind / 1000 } }));
  setTimeout(() => process.exit(0), 200);  // let the last publishes leave
}
process.on("SIGTERM", finish);
process.on("SIGINT", finish);
setTimeout(tick, w.tick_ms);
