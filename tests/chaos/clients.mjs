// A pool of dashboard clients on the official socket.io-client, for the chaos suite.
//
// Each client connects through the proxy from its own source address (so `balance source`
// spreads them over the nodes), subscribes to one swarm and, after every reconnect,
// subscribes again with `since` = the cursor of the last message it applied, holding the
// messages that arrive before the ack exactly as docs/protocol.md shows. It checks what it
// receives on the fly: every event carries `data.seq`, the publisher's number of the event
// in its swarm, so a client knows which events it has, which it got twice and which came
// out of order (per channel: each channel is delivered in stream order).
//
// Usage: node clients.mjs '<json config>'   config: {url, clients: [{id, source, swarm}],
//        reconnectDelay, reconnectDelayMax, subscribeRetryMs, channels}
// stdin, one JSON command a line: {"cmd": "report"} prints {"report": [...]};
// {"cmd": "offline", "ids": [...], "seconds": s} drops those clients for s seconds, then they
// reconnect and resume; {"cmd": "exit"} closes every client and exits.
import http from "node:http";
import { createRequire } from "node:module";
import readline from "node:readline";

const require = createRequire(new URL("../js/package.json", import.meta.url));
const { io } = require("socket.io-client");

const config = JSON.parse(process.argv[2]);
const MESSAGES = ["log_update_batch", "metric_update_batch", "agent_update_batch",
                  "task_update_batch", "system_alert", "agent_critical_update"];

const STALL_MS = 1000;  // at the suite's rates a client gets several messages a second
const idKey = (id) => { const [ms, seq] = id.split("-"); return [Number(ms), Number(seq)]; };
const idAfter = (a, b) => a[0] > b[0] || (a[0] === b[0] && a[1] > b[1]);

class Tracker {
  // What one client received: a bitmap of seqs, duplicates, order per channel.
  constructor() {
    this.seen = new Uint8Array(1024);
    this.max = 0;
    this.distinct = 0;
    this.dups = 0;
    this.outOfOrder = 0;
    this.idRegressions = 0;
    this.lastSeq = {};   // channel -> last seq applied
    this.lastId = {};    // channel -> last stream id applied
    this.lastArrival = 0;
    this.maxStall = 0;   // longest time without any message since the first ack, ms
    this.stallStart = 0; // when that longest stall began (epoch ms)
    this.stalls = [];    // [from, to] epoch ms of the last stalls longer than STALL_MS
  }

  apply(event, now) {
    const seq = event.data && event.data.seq;
    if (typeof seq !== "number") return;
    const channel = event.type;
    if (seq >= this.seen.length) {
      let size = this.seen.length;
      while (size <= seq) size *= 2;
      const grown = new Uint8Array(size);
      grown.set(this.seen);
      this.seen = grown;
    }
    if (this.seen[seq]) this.dups += 1;
    else { this.seen[seq] = 1; this.distinct += 1; }
    if (seq > this.max) this.max = seq;
    if (this.lastSeq[channel] !== undefined && seq < this.lastSeq[channel]) this.outOfOrder += 1;
    this.lastSeq[channel] = Math.max(seq, this.lastSeq[channel] ?? 0);
    const key = idKey(event.id);
    if (this.lastId[channel] && !idAfter(key, this.lastId[channel])) this.idRegressions += 1;
    else this.lastId[channel] = key;
  }

  arrived(now) {
    if (this.lastArrival && now - this.lastArrival > STALL_MS) {
      this.stalls.push([this.lastArrival, now]);
      if (this.stalls.length > 20) this.stalls.shift();
    }
    if (this.lastArrival && now - this.lastArrival > this.maxStall) {
      this.maxStall = now - this.lastArrival;
      this.stallStart = this.lastArrival;
    }
    this.lastArrival = now;
  }

  missing(limit = 20) {
    // Ranges of seqs below the highest one received that never arrived.
    const ranges = [];
    let count = 0;
    for (let s = 1; s <= this.max; s++) {
      if (this.seen[s]) continue;
      count += 1;
      const last = ranges[ranges.length - 1];
      if (last && last[1] === s - 1) last[1] = s;
      else if (ranges.length < limit) ranges.push([s, s]);
    }
    return { count, ranges };
  }
}

class Client {
  constructor(spec) {
    this.id = spec.id;
    this.source = spec.source;
    this.swarm = spec.swarm;
    this.tracker = new Tracker();
    this.cursor = null;
    this.held = null;
    this.subscribed = false; // the last subscribe on this connection was acknowledged ok
    this.generation = 0;
    this.node = null;
    this.nodes = [];         // every node this client was served by, in order
    this.connects = 0;
    this.disconnects = [];   // epoch ms of each lost connection
    this.acks = [];          // epoch ms of each successful subscribe ack
    this.refusals = {};      // subscribe error code -> count
    this.gaps = 0;
    this.replayed = 0;
    this.offlineUntil = 0;
    this.trail = [];         // the last connection events, for a failure's explanation
    this.store = [];         // [epoch ms, available] of each store_status the node sent
    this.agent = new http.Agent({ localAddress: this.source });
    this.socket = io(config.url, {
      agent: this.agent,
      reconnectionDelay: config.reconnectDelay,
      reconnectionDelayMax: config.reconnectDelayMax,
    });
    this.socket.on("connect", () => {
      this.connects += 1;
      this.note("connect", this.socket.io.engine.transport.name);
      this.subscribe();
    });
    this.socket.on("connect_error", (err) => this.note("connect_error", err.message));
    this.socket.io.on("open", () => {
      const engine = this.socket.io.engine;
      engine.on("upgrade", (t) => this.note("upgrade", t.name));
      engine.on("upgradeError", (err) => this.note("upgrade_error", err.message));
      engine.on("close", (reason, d) => this.note("engine_close", `${reason} ${d?.message ?? ""}`));
    });
    this.socket.on("disconnect", (reason) => {
      this.note("disconnect", reason);
      this.subscribed = false;
      this.disconnects.push(Date.now());
      this.held = null;
      this.generation += 1;  // an ack still pending belongs to the lost connection
      // Closed by the server on purpose: the manager does not reconnect by itself.
      if (reason === "io server disconnect" && !this.offlineUntil) this.socket.connect();
    });
    this.socket.on("connection_established", (m) => {
      this.note("node", m.node);
      this.node = m.node;
      if (this.nodes[this.nodes.length - 1] !== m.node) this.nodes.push(m.node);
    });
    this.socket.on("store_status", (m) => {
      this.note("store_status", JSON.stringify(m));
      this.store.push([Date.now(), m.available]);
    });
    for (const name of MESSAGES) this.socket.on(name, (m) => this.receive(m));
  }

  note(what, detail = "") {
    this.trail.push([Date.now(), what, String(detail).slice(0, 200)]);
    if (this.trail.length > 120) this.trail.shift();
  }

  receive(message) {
    const now = Date.now();
    if (this.acks.length) this.tracker.arrived(now);
    if (this.held) { this.held.push(message); return; }
    this.apply(message, now);
  }

  apply(message, now) {
    const seqs = (message.batch ?? [message]).map((e) => e.data && e.data.seq);
    this.note(message.replay ? "replay" : "message", `${seqs.join(",")} @ ${message.cursor}`);
    for (const event of message.batch ?? [message]) this.tracker.apply(event, now);
    if (message.cursor) this.cursor = message.cursor;
  }

  async subscribe() {
    if (!this.socket.connected) return;  // the next connect subscribes
    const generation = ++this.generation;
    this.subscribed = false;
    this.held = [];
    const request = { swarm: this.swarm, channels: config.channels };
    if (this.cursor) request.since = this.cursor;
    let ack;
    try {
      ack = await this.socket.timeout(10000).emitWithAck("subscribe", request);
    } catch {
      ack = { ok: false, error: "timeout" };
    }
    if (generation !== this.generation) return;  // superseded by a reconnect
    const waiting = this.held;
    this.held = null;
    this.note("ack", (ack.ok ? `ok replayed=${ack.replayed}` : ack.error)
      + ` ${this.socket.io.engine?.transport?.name}`);
    if (!ack.ok) {
      this.refusals[ack.error] = (this.refusals[ack.error] ?? 0) + 1;
      if (ack.error === "invalid_cursor") this.cursor = null;
      if (ack.error !== "bad_request") setTimeout(() => this.subscribe(), config.subscribeRetryMs);
      return;
    }
    const now = Date.now();
    this.subscribed = true;
    this.acks.push(now);
    this.tracker.arrived(now);
    if (ack.gap) this.gaps += 1;
    this.replayed += ack.replayed || 0;
    this.cursor = ack.cursor;
    for (const message of waiting) this.apply(message, now);
  }

  offline(seconds) {
    this.offlineUntil = Date.now() + seconds * 1000;
    this.socket.disconnect();
    setTimeout(() => { this.offlineUntil = 0; this.socket.connect(); }, seconds * 1000);
  }

  report() {
    const t = this.tracker;
    return {
      id: this.id, swarm: this.swarm, node: this.node, nodes: this.nodes,
      connected: this.socket.connected && this.subscribed,
      connects: this.connects, disconnects: this.disconnects, acks: this.acks,
      refusals: this.refusals, gaps: this.gaps, replayed: this.replayed,
      max: t.max, distinct: t.distinct, dups: t.dups, out_of_order: t.outOfOrder,
      id_regressions: t.idRegressions, missing: t.missing(),
      max_stall_ms: t.maxStall, stall_start: t.stallStart, stalls: t.stalls,
      store: this.store, trail: this.trail,
    };
  }
}

const clients = new Map(config.clients.map((spec) => [spec.id, new Client(spec)]));

readline.createInterface({ input: process.stdin }).on("line", (line) => {
  const command = JSON.parse(line);
  if (command.cmd === "report") {
    console.log(JSON.stringify({ report: [...clients.values()].map((c) => c.report()) }));
  } else if (command.cmd === "offline") {
    for (const id of command.ids) clients.get(id)?.offline(command.seconds);
    console.log(JSON.stringify({ offline: command.ids }));
  } else if (command.cmd === "exit") {
    for (const c of clients.values()) c.socket.disconnect();
    process.exit(0);
  }
});
process.stdin.on("end", () => process.exit(0));
