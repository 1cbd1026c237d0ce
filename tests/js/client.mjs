// A dashboard-like client on the official socket.io-client: subscribe, keep the cursor,
// resume with `since` after a reconnect. Prints one JSON line per received message and a
// final summary. Usage: node client.mjs URL SWARM COUNT [transport] [--drop-after N]
// The viewer token, if any, comes from SWARMDASH_TOKEN (sent in the connect's auth payload);
// a refused connect prints {connect_error: {message, data}} and exits with status 2.
import { io } from "socket.io-client";

const [url, swarm, countText, transport = "", ...rest] = process.argv.slice(2);
const wanted = Number(countText);
const dropAfter = rest[0] === "--drop-after" ? Number(rest[1]) : Infinity;
const options = { reconnectionDelay: 100, reconnectionDelayMax: 500 };
if (transport) options.transports = [transport];
if (process.env.SWARMDASH_TOKEN) options.auth = { token: process.env.SWARMDASH_TOKEN };
const socket = io(url, options);
const ids = [];
let cursor = null;
let dropped = false;
let acks = 0;
// Complete once every wanted event arrived and, if a drop was asked for, after the resume.
const complete = () => ids.length >= wanted && (dropAfter === Infinity || acks >= 2);
const done = (code, reason) => {
  console.log(JSON.stringify({ summary: true, ids, cursor, reason }));
  process.exit(code);
};
setTimeout(() => done(1, "timeout"), 30000);

socket.on("connect_error", (err) => {
  // Refused by the server (e.g. no valid token): the client does not retry by itself.
  console.log(JSON.stringify({ connect_error: { message: err.message, data: err.data ?? null },
                               active: socket.active }));
  if (!socket.active) done(2, "connect_error");
});

socket.on("connect", async () => {
  const request = { swarm, channels: ["agent", "log"] };
  if (cursor) request.since = cursor;
  const ack = await socket.timeout(10000).emitWithAck("subscribe", request);
  console.log(JSON.stringify({ ack: { ok: ack.ok, replayed: ack.replayed, gap: ack.gap,
                                      transport: socket.io.engine.transport.name } }));
  if (!ack.ok) done(1, ack.error);
  acks += 1;
  if (!cursor) cursor = ack.cursor;
  if (complete()) done(0, "complete");
});

const take = (name) => (message) => {
  const events = message.batch ?? [message];
  for (const event of events) ids.push(event.id);
  if (message.cursor) cursor = message.cursor;
  console.log(JSON.stringify({ name, count: events.length, replay: !!message.replay }));
  if (!dropped && ids.length >= dropAfter) {
    dropped = true;
    socket.io.engine.close();  // a network drop: the manager reconnects by itself
  }
  if (complete()) done(0, "complete");
};
for (const name of ["agent_update_batch", "log_update_batch", "system_alert",
                    "agent_critical_update"]) {
  socket.on(name, take(name));
}
