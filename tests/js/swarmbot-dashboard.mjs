// The original SwarmBot dashboard's socket code, as its page runs it: connect with
// {reconnection: true, transports: ['websocket', 'polling']}, report connection_quality,
// never subscribe, measure latency with ping {ping_id} / pong, and queue what arrives on
// the events it listens for. Here it also joins and leaves a room, and prints one JSON
// line per message and a final summary.
// Usage: node swarmbot-dashboard.mjs URL ROOM EVENTS FINISHED [DROP_AFTER]
//   EVENTS: stream events to receive in batches; FINISHED: task_completed + task_failed;
//   DROP_AFTER: drop the connection once after that many events (it reconnects by itself).
import { io } from "socket.io-client";

const [url, room, eventsText, finishedText, dropText] = process.argv.slice(2);
const wantEvents = Number(eventsText);
const wantFinished = Number(finishedText);
const dropAfter = dropText ? Number(dropText) : Infinity;
let dropped = false;

const config = {
  reconnection: true,
  reconnectionDelay: 1000,
  reconnectionDelayMax: 30000,
  reconnectionAttempts: Infinity,
  timeout: 20000,
  transports: ["websocket", "polling"],
};
const socket = io(url, config);

const ids = [];
const finished = [];
const pongs = [];
const rooms = [];
const show = (line) => console.log(JSON.stringify(line));
const done = (code, reason) => {
  show({ summary: true, ids, finished, pongs, rooms, reason,
         transport: socket.io.engine?.transport?.name ?? null });
  process.exit(code);
};
setTimeout(() => done(1, "timeout"), 60000);

let leaving = false;
const check = () => {
  if (leaving || ids.length < wantEvents || finished.length < wantFinished || !pongs.length) {
    return;
  }
  leaving = true;
  socket.emit("leave_room", { room });  // answered with room_left, then the run is over
};

socket.on("connect", () => {
  show({ connected: socket.id });
  socket.emit("connection_quality", { user_agent: "node", timestamp: new Date().toISOString() });
  socket.emit("join_room", { room });
});
socket.on("connect_error", (error) => show({ connect_error: String(error) }));
socket.on("room_joined", (data) => { rooms.push(["joined", data.room]); show({ room_joined: data }); });
socket.on("room_left", (data) => {
  rooms.push(["left", data.room]);
  show({ room_left: data });
  if (leaving) done(0, "complete");
});

// Latency, as the page measures it (every 30 s there; every 200 ms here).
setInterval(() => {
  if (!socket.connected) return;
  const startTime = Date.now();
  socket.emit("ping", { ping_id: "quality_" + startTime });
  socket.once("pong", (data) => {
    if (data.ping_id === "quality_" + startTime) {
      pongs.push({ ping_id: data.ping_id, timestamp: data.timestamp, latency: Date.now() - startTime });
      check();
    }
  });
}, 200);

// The events the page listens for (websocket_client.py of the original dashboard).
for (const name of ["agent_update_batch", "task_update_batch", "metric_update_batch"]) {
  socket.on(name, (data) => {
    for (const item of data.batch) ids.push(item.id);
    show({ name, count: data.count, swarm: data.swarm });
    if (!dropped && ids.length >= dropAfter) {
      dropped = true;
      show({ dropping: true });
      socket.io.engine.close();  // a network drop: the manager reconnects by itself
    }
    check();
  });
}
for (const name of ["task_completed", "task_failed"]) {
  socket.on(name, (data) => {
    finished.push({ name, ...data });
    show({ name, task_id: data.task_id });
    check();
  });
}
for (const name of ["agent_created", "agent_deleted", "agent_critical_update", "system_alert",
                    "swarm_status_update", "task_queue_update"]) {
  socket.on(name, (data) => show({ name, data }));
}
