// The Node.js peer: one Socket.IO server node with the Redis adapter, as most Node users
// would write it. Several of these run behind the same HAProxy as SwarmDash.
//
//   MODE=perevent  the publisher emits every event to the swarm's room through the adapter;
//                  each node forwards it to its own members (one packet per event).
//   MODE=batched   the publisher hands events to every node (serverSideEmit "ingest"); each
//                  node batches them per room and channel with SwarmDash's windows (slots of
//                  the clock; leading edge, then one batch at each window's end) and emits
//                  locally, like SwarmDash does.
//
//   PER_MESSAGE_DEFLATE=true  permessage-deflate on, as `perMessageDeflate: true` turns it
//                  on. A connection that agrees to context takeover (the official clients
//                  do) has every message compressed, whatever its size (ws applies its 1 KB
//                  threshold only without takeover), in a compression context of its own
//                  made at its first message. Unset: off, socket.io's default.
//
// Environment: HOST, PORT, REDIS_URL, MODE, BATCH_WINDOWS (JSON {channel: ms}), NODE_ID,
// PER_MESSAGE_DEFLATE.
import http from "node:http";
import { Server } from "socket.io";
import { createAdapter } from "@socket.io/redis-adapter";
import { createClient } from "redis";

const host = process.env.HOST ?? "127.0.0.1";
const port = Number(process.env.PORT ?? 8050);
const mode = process.env.MODE ?? "perevent";
const nodeId = process.env.NODE_ID ?? `${host}:${port}`;
const windows = JSON.parse(process.env.BATCH_WINDOWS ?? '{"agent":200,"task":200,"metric":500,"log":1000}');
const deflate = process.env.PER_MESSAGE_DEFLATE === "true";
const TICK_MS = 20;
const IMMEDIATE = new Set(["alert"]);
const CRITICAL = new Set(["error", "offline"]);

const server = http.createServer((req, res) => {
  if (req.url === "/health") {
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ status: "ok", node: nodeId, clients: io.engine.clientsCount }));
    return;
  }
  res.writeHead(404, { "Content-Type": "application/json" });
  res.end('{"error": "not found"}');
});

const pub = createClient({ url: process.env.REDIS_URL });
const sub = pub.duplicate();
await Promise.all([pub.connect(), sub.connect()]);
const io = new Server(server, {
  adapter: createAdapter(pub, sub),
  transports: ["polling", "websocket"],
  perMessageDeflate: deflate,
});

const roomOf = (swarm) => `swarm:${swarm}`;

io.on("connection", (socket) => {
  socket.emit("connection_established", { sid: socket.id, node: nodeId, server_time: Date.now() / 1000 });
  socket.on("subscribe", (request, ack) => {
    const swarm = request?.swarm;
    if (typeof swarm !== "string" || !swarm) {
      if (typeof ack === "function") ack({ ok: false, error: "bad_request" });
      return;
    }
    socket.join(roomOf(swarm));
    if (typeof ack === "function") ack({ ok: true, rooms: [roomOf(swarm)] });
  });
});

// --- batched mode: per room, per channel buffers with SwarmDash's windows -----------------
const buffers = new Map(); // room -> {channel -> {events, last}}

function hasLocalMembers(room) {
  return io.of("/").adapter.rooms.has(room);
}

// The end of the window in which a channel last sent (windows are slots of the clock, as
// in SwarmDash's batching.py; 1 ms of slack against rounding).
function windowEnd(last, window) {
  return window > 0 ? (Math.floor((last + 1) / window) + 1) * window : last;
}

function flush(room, channel, state, now) {
  if (state.events.length === 0) return;
  const batch = state.events;
  state.events = [];
  state.last = now;
  io.local.to(room).emit(`${channel}_update_batch`, {
    type: channel, batch, count: batch.length, timestamp: now / 1000,
  });
}

function offer(room, event, now) {
  const channel = event.type;
  if (IMMEDIATE.has(channel) || (channel === "agent" && CRITICAL.has(event.data?.status))) {
    const pending = buffers.get(room)?.[channel];
    if (pending) flush(room, channel, pending, now);
    io.local.to(room).emit(channel === "alert" ? "system_alert" : "agent_critical_update", event);
    return;
  }
  let perRoom = buffers.get(room);
  if (!perRoom) buffers.set(room, (perRoom = {}));
  let state = perRoom[channel];
  if (!state) perRoom[channel] = (state = { events: [], last: 0 });
  state.events.push(event);
  if (now + 1 >= windowEnd(state.last, windows[channel] ?? 0)) flush(room, channel, state, now); // leading edge
}

if (mode === "batched") {
  io.on("ingest", (events) => {
    const now = Date.now();
    for (const event of events) {
      for (const room of [roomOf(event.swarm), roomOf("*")]) {
        if (hasLocalMembers(room)) offer(room, event, now);
      }
    }
  });
  setInterval(() => {
    const now = Date.now();
    for (const [room, perRoom] of buffers) {
      if (!hasLocalMembers(room)) { buffers.delete(room); continue; }
      for (const [channel, state] of Object.entries(perRoom)) {
        if (state.events.length && now + 1 >= windowEnd(state.last, windows[channel] ?? 0)) flush(room, channel, state, now);
      }
    }
  }, TICK_MS);
}

const compression = deflate ? ", permessage-deflate" : "";
server.listen(port, host, () => console.log(`node peer ${nodeId} (${mode}${compression}) on ${host}:${port}`));
const stop = () => { io.close(); pub.quit().catch(() => {}); sub.quit().catch(() => {}); process.exit(0); };
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
