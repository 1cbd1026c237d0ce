// One load-generator process: many dashboard clients on the official socket.io-client (or
// polling clients on plain HTTP), driven by JSON lines on stdin, answering on stdout.
//
// Commands:
//   {"cmd": "connect", "url", "n", "first", "sources", "swarms", "all_every", "rate", "auth"}
//       open n more websocket clients (global indexes first..first+n-1), each from one of
//       the source addresses, and subscribe each: every all_every-th client to "*", the
//       others to one swarm. Answers {"event": "connected", ...} when all acked or failed.
//   {"cmd": "poll", "url", "n", "first", "sources", "swarms", "all_every", "interval_ms"}
//       start n polling clients: GET /api/v1/events?swarm=..&since=.. every interval_ms.
//   {"cmd": "reset"}    zero the window counters and histograms (not the completeness state)
//   {"cmd": "report"}   {"event": "report", ...} counters, histograms, completeness
//   {"cmd": "close"}    disconnect everything and exit
//
// Every event carries data.sent (epoch ms at publish) and data.seq (per swarm): latency is
// receive time - sent ("incl"); for batches also receive time - the batch's flush timestamp
// ("flush", the batch window excluded). Completeness per client and swarm: events received
// (+ coalesced) against max(seq) - min(seq) + 1.
import http from "node:http";
import readline from "node:readline";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { io } from "socket.io-client";

const now = () => performance.timeOrigin + performance.now();
const BUCKETS = 21801;
const bucket = (ms) => {
  if (!(ms > 0)) return 0;
  if (ms < 1000) return Math.floor(ms * 10);
  if (ms < 60000) return 10000 + Math.floor((ms - 1000) / 5);
  return BUCKETS - 1;
};

let hists = new Map(); // name -> {counts: Uint32Array, max, n}
let counters = {};
const sockets = [];
const pollers = [];
const tracks = []; // per client: Map swarm -> {min, max, count}
let coalesced = 0;
const wire = new Set(); // every TCP socket of every client: bytes on the wire
let wireBase = 0;
const wireBytes = () => { let n = 0; for (const t of wire) n += t.bytesRead + t.bytesWritten; return n; };
let closing = false;
let reportedErrors = 0; // the first few connect errors go to the log (stderr)
const loop = monitorEventLoopDelay({ resolution: 10 });
loop.enable();

function resetWindow() {
  hists = new Map();
  wireBase = wireBytes();
  counters = { messages: 0, events: 0, disconnects: counters.disconnects ?? 0, errors: 0,
               polls: 0, poll_errors: 0 };
  loop.reset();
}
resetWindow();

function record(name, ms) {
  let h = hists.get(name);
  if (!h) hists.set(name, (h = { counts: new Uint32Array(BUCKETS), max: 0, n: 0 }));
  h.counts[bucket(ms)] += 1;
  h.n += 1;
  if (ms > h.max) h.max = ms;
}

function take(track, event, received, flushTs, replay) {
  const data = event.data;
  if (!data || typeof data.sent !== "number") return;
  const channel = event.type;
  counters.events += 1;
  counters[`events_${channel}`] = (counters[`events_${channel}`] ?? 0) + 1;
  if (!replay) {  // a replayed event is a catch-up, not a live delivery: no latency
    record(`${channel}:incl`, received - data.sent);
    if (flushTs !== undefined) record(`${channel}:flush`, received - flushTs * 1000);
  }
  // completeness counts events published after the client was subscribed: all of those
  // must arrive (earlier ones may or may not, depending on the room's open batches)
  if (!(data.sent >= track.since)) return;
  let t = track.get(event.swarm);
  if (!t) track.set(event.swarm, (t = { min: data.seq, max: data.seq, count: 0 }));
  t.count += 1;
  if (data.seq < t.min) t.min = data.seq;
  if (data.seq > t.max) t.max = data.seq;
}

function onMessage(track, message) {
  const received = now();
  counters.messages += 1;
  if (message && Array.isArray(message.batch)) {
    if (message.coalesced) coalesced += message.coalesced;
    for (const event of message.batch) take(track, event, received, message.timestamp, message.replay);
  } else if (message && message.type) {
    take(track, message, received, undefined, message.replay);
  }
}

const subscriptionOf = (index, cmd) =>
  index % cmd.all_every === 0 ? "*" : `swarm-${(index % cmd.swarms) + 1}`;

function connectOne(cmd, index) {
  return new Promise((resolve) => {
    const track = new Map();
    track.since = Infinity;
    tracks.push(track);
    const options = { transports: ["websocket"], reconnection: false, forceNew: true,
                      timeout: 60000, localAddress: cmd.sources[index % cmd.sources.length] };
    if (cmd.auth) options.auth = cmd.auth;
    const socket = io(cmd.url, options);
    sockets.push(socket);
    let settled = false;
    const settle = (ok) => { if (!settled) { settled = true; resolve(ok); } };
    socket.onAny((name, message) => onMessage(track, message));
    socket.on("connect", async () => {
      const tcp = socket.io.engine?.transport?.ws?._socket;
      if (tcp) wire.add(tcp);
      try {
        const ack = await socket.timeout(60000).emitWithAck("subscribe", {
          swarm: subscriptionOf(index, cmd), channels: ["agent", "task", "metric", "log"] });
        if (!ack?.ok) {
          counters.errors += 1;
          if (reportedErrors++ < 5) console.error(`subscribe refused: ${JSON.stringify(ack)}`);
        }
        else track.since = now();
        settle(!!ack?.ok);
      } catch (err) {
        counters.errors += 1;
        if (reportedErrors++ < 5) console.error(`subscribe: ${err?.message}`);
        settle(false);
      }
    });
    socket.on("connect_error", (err) => {
      counters.errors += 1;
      const why = err?.description?.message ?? err?.description?.error?.message ?? err?.description ?? "";
      if (reportedErrors++ < 5) console.error(`connect_error: ${err?.message} ${why} ${err?.context?.statusCode ?? ""}`);
      settle(false);
    });
    socket.on("disconnect", (reason) => {
      if (!closing) {
        counters.disconnects += 1;
        if (reportedErrors++ < 5) console.error(`disconnect: ${reason}`);
      }
      settle(false);
    });
  });
}

async function connectMany(cmd) {
  const pending = [];
  const gap = 1000 / cmd.rate;
  const start = performance.now();
  for (let i = 0; i < cmd.n; i++) {
    pending.push(connectOne(cmd, cmd.first + i));
    const due = start + (i + 1) * gap - performance.now();
    if (due > 0) await new Promise((r) => setTimeout(r, due));
  }
  const results = await Promise.all(pending);
  const ok = results.filter(Boolean).length;
  reply({ event: "connected", ok, failed: results.length - ok, total: sockets.length });
}

function pollOne(cmd, index) {
  const track = new Map();
  track.since = Infinity;
  tracks.push(track);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const url = new URL(cmd.url);
  const swarm = subscriptionOf(index, cmd);
  const localAddress = cmd.sources[index % cmd.sources.length];
  let since = null;
  const poller = { timer: null, agent };
  pollers.push(poller);
  // one request at a time, like a dashboard's fetch loop: the next one starts interval_ms
  // after the previous one started (at once when a full page came back)
  const once = () => {
    if (closing) return;
    const started = performance.now();
    let full = false;
    const next = () => {
      if (closing) return;
      const wait = full ? 0 : Math.max(0, cmd.interval_ms - (performance.now() - started));
      poller.timer = setTimeout(once, wait);
    };
    // the page loads the snapshot first, then follows the events from its cursor
    const params = new URLSearchParams({ swarm });
    if (since) params.set("since", since);
    const path = since ? `/api/v1/events?${params}` : `/api/v1/snapshot?${params}`;
    const req = http.request({ host: url.hostname, port: url.port, agent, localAddress,
                               path, headers: cmd.headers ?? {} }, (res) => {
      wire.add(res.socket);
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => {
        counters.polls += 1;
        record("poll:rtt", performance.now() - started);
        if (res.statusCode !== 200) { counters.poll_errors += 1; next(); return; }
        try {
          const body = JSON.parse(Buffer.concat(chunks).toString());
          const received = now();
          counters.messages += 1;
          if (since) {
            for (const event of body.events) take(track, event, received, undefined, false);
            full = body.events.length >= (cmd.page_limit ?? 1000);
          } else {
            track.since = received;  // complete from here on
          }
          since = body.cursor;
        } catch { counters.poll_errors += 1; }
        next();
      });
    });
    req.on("error", () => { counters.poll_errors += 1; next(); });
    req.end();
  };
  // spread the clients over the interval, like independent browsers
  poller.timer = setTimeout(once, Math.random() * cmd.interval_ms);
}

function histogramsOut() {
  const out = {};
  for (const [name, h] of hists) {
    const sparse = {};
    for (let i = 0; i < BUCKETS; i++) if (h.counts[i]) sparse[i] = h.counts[i];
    out[name] = { counts: sparse, max: h.max, n: h.n };
  }
  return out;
}

function completeness() {
  let expected = 0;
  let received = 0;
  let over = 0;
  for (const track of tracks) {
    for (const t of track.values()) {
      const span = t.max - t.min + 1;
      expected += span;
      received += t.count;
      if (t.count > span) over += t.count - span;
    }
  }
  return { expected, received, coalesced, over };
}

function reply(obj) { process.stdout.write(JSON.stringify(obj) + "\n"); }

const connected = () => sockets.filter((s) => s.connected).length;

const rl = readline.createInterface({ input: process.stdin });
rl.on("line", (line) => {
  const cmd = JSON.parse(line);
  if (cmd.cmd === "connect") connectMany(cmd);
  else if (cmd.cmd === "poll") {
    for (let i = 0; i < cmd.n; i++) pollOne(cmd, cmd.first + i);
    reply({ event: "polling", total: pollers.length });
  } else if (cmd.cmd === "reset") { resetWindow(); reply({ event: "reset" }); }
  else if (cmd.cmd === "report") {
    reply({ event: "report", counters: { ...counters, wire_bytes: wireBytes() - wireBase }, connected: connected(), pollers: pollers.length,
            hists: histogramsOut(), completeness: completeness(),
            loop_delay_p99_ms: loop.percentile(99) / 1e6 });
  } else if (cmd.cmd === "close") shutdown();
});
rl.on("close", shutdown);

function shutdown() {
  if (closing) return;
  closing = true;
  for (const s of sockets) s.disconnect();
  for (const p of pollers) { clearTimeout(p.timer); p.agent.destroy(); }
  setTimeout(() => process.exit(0), 300);
}
process.on("SIGTERM", shutdown);
