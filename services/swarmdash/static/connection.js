// The dashboard's link to SwarmDash: one Socket.IO connection (the official client, served by
// the node), the subscriptions of what is on screen, one resume cursor per subscription, and
// the HTTP polling fallback.
//
// Delivery guarantees the page relies on (see docs/protocol.md, "The cursor"):
//  * each subscription keeps the cursor of the last message received for it; after a reconnect
//    it subscribes again with `since`, and the node replays exactly what was missed;
//  * in polling fallback, GET /api/v1/events?since=<the same cursor> continues from there;
//  * belt and braces, events are de-duplicated on the client as well: per subscription and
//    channel by event id (ids increase along the stream, and each channel is delivered in
//    stream order), and alerts / critical agent updates by id across subscriptions (an event
//    matching two subscriptions arrives twice, once per subscription, but is shown once).
//
// Reconnects: the Socket.IO Manager (`socket.io`, not the socket) reconnects with backoff, at
// most `max_reconnect_attempts` times (0 = forever). After `fallback_threshold` failed
// reconnects the page polls GET /api/v1/events with its cursors, while the manager keeps
// trying the socket; once the manager has given up, one probe every `probe_interval_ms`. As
// soon as the socket connects again the page stops polling and subscribes with its cursors.
//
// Store outages: while the node cannot reach Redis and no other node can either, the node
// keeps the connection open and says so with `store_status` {available: false, ...}; the
// page shows "store unavailable" and keeps its subscriptions. With {available: true} the
// live stream goes on by itself, and a subscription refused meanwhile is made again at once.
//
// Sign-in: the page's viewer token is an HttpOnly cookie (set by POST /login), sent
// by the browser with the Socket.IO handshake and the API calls. A connect the node refuses
// (no token, expired, forged), the node's `session_expired` when the token expires on a live
// connection, or an API answer 401 puts the page in the "signed-out" state:
// no reconnect loop, no polling, until the page is reloaded after signing in again.

const SUBSCRIBE_TIMEOUT_MS = 10000;
const RETRY_SUBSCRIBE_MS = 2000;
const IMMEDIATE = new Set(["system_alert", "agent_critical_update"]);
const BATCHES = ["agent_update_batch", "task_update_batch", "metric_update_batch",
                 "log_update_batch"];
const SEEN_IMMEDIATE_MAX = 5000;

/** Compare two stream ids ("<ms>-<seq>") as the pair of integers they are. */
export function compareIds(a, b) {
  const [am, as = "0"] = a.split("-");
  const [bm, bs = "0"] = b.split("-");
  return (Number(am) - Number(bm)) || (Number(as) - Number(bs));
}

/** The base position of a cursor ("<id>" or "<id>;agent=<id>;..."). */
function cursorBase(cursor) {
  return cursor.split(";", 1)[0];
}

function isCritical(event) {
  return event.type === "agent" && (event.data.status === "error" ||
                                    event.data.status === "offline");
}

export function subscriptionKey(swarm, agentId) {
  return `${swarm}|${agentId || ""}`;
}

class Subscription {
  constructor({ swarm, channels, agent_id = null, prefill = false }) {
    this.swarm = swarm;
    this.channels = [...channels];
    this.agent_id = agent_id;
    this.prefill = prefill; // load recent events over HTTP first, then subscribe from there
    this.key = subscriptionKey(swarm, agent_id);
    this.cursor = null;
    this.marks = new Map(); // batched channel -> highest event id delivered
    this.pending = false;
    this.subscribed = false;
    this.retry = null;
  }

  request() {
    const body = { swarm: this.swarm, channels: this.channels };
    if (this.agent_id) body.agent_id = this.agent_id;
    if (this.cursor) body.since = this.cursor;
    return body;
  }

  query() {
    const q = new URLSearchParams({ swarm: this.swarm, channels: this.channels.join(",") });
    if (this.agent_id) q.set("agent_id", this.agent_id);
    return q;
  }

  matches(event) {
    return (this.swarm === "*" || event.swarm === this.swarm) &&
           (!this.agent_id || event.agent_id === this.agent_id);
  }

  sameAs(spec) {
    return this.key === subscriptionKey(spec.swarm, spec.agent_id) &&
           this.channels.join(",") === [...spec.channels].join(",");
  }

  /** Take a newer cursor; never move back to an older position. */
  advance(cursor) {
    if (!cursor) return;
    if (!this.cursor || compareIds(cursorBase(cursor), cursorBase(this.cursor)) >= 0) {
      this.cursor = cursor;
    }
  }
}

export class Connection {
  /**
   * @param {object} config  GET /api/v1/config (or the page's data-config)
   * @param {object} handlers  onEvents(sub, events, {replay}), onSnapshot(sub, snapshot, gap),
   *   onNotify(alert), onStatus(), onSubscribeError(sub, ack)
   */
  constructor(config, handlers) {
    this.config = config;
    this.handlers = handlers;
    this.subs = new Map();
    this.held = null; // messages that arrive while a subscribe waits for its ack
    this.pendingCount = 0;
    this.seenImmediate = new Set();
    this.mode = "connecting"; // connecting | socket | reconnecting | fallback
    this.failures = 0;
    this.attempt = 0;
    this.gaveUp = false;
    this.node = config.node || null;
    this.fallbackNode = null;
    this.pollOk = true;
    this.lastPollAt = 0;
    this.lagMs = null;
    this.viewer = null; // {name, swarms: "*" | [names], expires}: from connection_established
    this.signedOut = null; // why the node refused this page's token, once it has
    this.clockOffset = 0; // server time - local time, seconds
    this.storeOutage = null; // the node's last store_status while the store is unavailable
    this.stats = { messages: 0, events: 0, duplicates: 0, polls: 0, pollErrors: 0,
                   reconnects: 0, fallbacks: 0 };
    this.recorder = null; // set by the test hook: a function called with every event shown
    this.poller = null;
    this.probeTimer = null;
    this.online = navigator.onLine !== false;
    window.addEventListener("online", () => { this.online = true; this.changed(); });
    window.addEventListener("offline", () => { this.online = false; this.changed(); });
  }

  // --- public ------------------------------------------------------------------------

  start() {
    const c = this.config;
    const maxAttempts = Number(c.max_reconnect_attempts) || Infinity; // 0 = forever
    this.socket = window.io({
      transports: c.transports || ["polling", "websocket"],
      reconnectionAttempts: maxAttempts,
      reconnectionDelay: c.reconnect_delay_ms || 1000,
      reconnectionDelayMax: c.reconnect_delay_max_ms || 5000,
    });
    const socket = this.socket;
    const manager = socket.io;
    // Reconnection is the Manager's business: listen there, not on the socket.
    manager.on("open", () => {
      manager.engine.on("upgrade", () => this.changed());
    });
    manager.on("reconnect_attempt", (attempt) => {
      this.attempt = attempt;
      this.stats.reconnects += 1;
      if (this.mode !== "fallback") this.mode = "reconnecting";
      this.changed();
    });
    manager.on("reconnect_error", () => {
      this.failures += 1;
      if (this.failures >= this.threshold()) this.enterFallback();
      this.changed();
    });
    manager.on("reconnect_failed", () => {
      // The manager has given up (max_reconnect_attempts): keep the page alive over HTTP and
      // probe the socket now and then, one attempt at a time.
      this.gaveUp = true;
      manager.reconnection(false);
      this.enterFallback();
      this.scheduleProbe();
      this.changed();
    });
    socket.on("connect", () => this.onConnect());
    socket.on("disconnect", (reason) => this.onDisconnect(reason));
    socket.on("connect_error", (err) => {
      if (err?.data?.error === "unauthorized") {
        this.signOut(err.data.detail || err.message);
        return;
      }
      if (this.gaveUp) this.scheduleProbe();
      this.changed();
    });
    // The node ends a connection whose viewer token has expired, saying so first.
    socket.on("session_expired", (info) => this.signOut(info?.detail || "the sign-in expired"));
    socket.on("connection_established", (info) => {
      this.node = info.node;
      if (info.viewer) {
        this.viewer = info.viewer;
        this.handlers.onViewer?.(info.viewer);
      }
      if (typeof info.server_time === "number") {
        this.clockOffset = info.server_time - Date.now() / 1000;
      }
      this.changed();
    });
    socket.on("store_status", (status) => this.onStoreStatus(status));
    for (const name of BATCHES) socket.on(name, (m) => this.receive(name, m));
    for (const name of IMMEDIATE) socket.on(name, (m) => this.receive(name, m));
  }

  threshold() {
    return Math.max(1, Number(this.config.fallback_threshold) || 5);
  }

  /** The node refused this page's token: stop every attempt, say so. */
  signOut(detail) {
    if (this.signedOut) return;
    this.signedOut = detail || "not signed in";
    clearTimeout(this.probeTimer);
    this.probeTimer = null;
    this.socket?.io.reconnection(false);
    this.socket?.disconnect();
    this.leaveFallback();
    this.mode = "signed-out";
    this.changed();
  }

  /** Make the subscriptions exactly `specs` (what is on screen). */
  setSubscriptions(specs) {
    const wanted = new Map(specs.map((s) => [subscriptionKey(s.swarm, s.agent_id), s]));
    for (const [key, sub] of this.subs) {
      if (!wanted.has(key)) {
        this.subs.delete(key);
        clearTimeout(sub.retry);
        if (this.socket?.connected && sub.subscribed) {
          this.socket.emit("unsubscribe", { swarm: sub.swarm,
                                            ...(sub.agent_id ? { agent_id: sub.agent_id } : {}) });
        }
      }
    }
    for (const [key, spec] of wanted) {
      const current = this.subs.get(key);
      if (current && current.sameAs(spec)) continue;
      const sub = new Subscription(spec);
      if (current) {
        // same (swarm, agent), other channels: the server replaces it; continue its cursor
        sub.cursor = current.cursor;
        sub.marks = current.marks;
        clearTimeout(current.retry);
      }
      this.subs.set(key, sub);
      if (this.mode === "socket" && this.socket.connected) this.subscribe(sub);
      // in fallback the poller picks it up on its next round
    }
    this.changed();
  }

  /** A network drop, as when the connection is lost: the manager reconnects by itself. */
  drop() {
    this.socket?.io.engine?.close();
  }

  status() {
    const s = this.socket;
    let state;
    let transport = null;
    if (this.signedOut) {
      state = "signed-out";
    } else if (s?.connected) {
      transport = s.io.engine?.transport?.name || null;
      state = this.storeOutage ? "store-unavailable"
        : transport === "websocket" ? "websocket" : "long-polling";
    } else if (this.mode === "fallback") {
      state = this.pollOk && this.online ? "fallback" : "offline";
    } else if (!this.online) {
      state = "offline";
    } else {
      state = this.mode === "reconnecting" ? "reconnecting" : "connecting";
    }
    return { state, transport, mode: this.mode, attempt: this.attempt, failures: this.failures,
             gaveUp: this.gaveUp,
             node: state === "fallback" || state === "offline" ? this.fallbackNode : this.node,
             lagMs: this.lagMs, threshold: this.threshold(), signedOut: this.signedOut,
             viewer: this.viewer, store: this.storeOutage,
             maxAttempts: Number(this.config.max_reconnect_attempts) || 0,
             subscriptions: [...this.subs.values()].map((sub) => ({
               key: sub.key, cursor: sub.cursor, pending: sub.pending,
               subscribed: sub.subscribed })) };
  }

  // --- socket ------------------------------------------------------------------------

  async onConnect() {
    this.socket.io.reconnection(true);
    this.gaveUp = false;
    clearTimeout(this.probeTimer);
    this.probeTimer = null;
    this.failures = 0;
    this.attempt = 0;
    await this.leaveFallback(); // no poll may still be running with the cursors
    if (!this.socket.connected) return;
    this.mode = "socket";
    this.changed();
    for (const sub of this.subs.values()) this.subscribe(sub);
  }

  /** The node's store went away (keep the subscriptions, show it) or came back (resume). */
  onStoreStatus(status) {
    this.storeOutage = status && status.available === false ? status : null;
    if (!this.storeOutage && this.socket.connected) {
      for (const sub of this.subs.values()) {
        if (sub.subscribed || sub.pending) continue;
        clearTimeout(sub.retry); // refused while the store was away: again now
        this.subscribe(sub);
      }
    }
    this.changed();
  }

  onDisconnect(reason) {
    this.storeOutage = null; // the next node says whether it reaches the store
    for (const sub of this.subs.values()) {
      sub.subscribed = false;
      clearTimeout(sub.retry);
    }
    if (this.mode === "socket") this.mode = "reconnecting";
    if (reason === "io server disconnect") {
      this.socket.connect(); // the manager does not reconnect after a server-side disconnect
    }
    this.changed();
  }

  async subscribe(sub) {
    if (sub.pending) return;
    sub.pending = true;
    this.hold();
    try {
      if (sub.prefill && !sub.cursor) await this.prefill(sub);
      if (this.subs.get(sub.key) !== sub || !this.socket.connected) return;
      let ack;
      try {
        ack = await this.socket.timeout(SUBSCRIBE_TIMEOUT_MS).emitWithAck("subscribe",
                                                                          sub.request());
      } catch {
        ack = { ok: false, error: "timeout" };
      }
      if (this.subs.get(sub.key) !== sub) return; // replaced or removed meanwhile
      if (ack.ok) {
        if (ack.snapshot) this.handlers.onSnapshot(sub, ack.snapshot, !!ack.gap);
        sub.advance(ack.cursor);
        sub.subscribed = true;
      } else {
        if (ack.error === "invalid_cursor") {
          sub.cursor = null; // the store was emptied: start again from a snapshot
          sub.marks = new Map();
        }
        this.handlers.onSubscribeError?.(sub, ack);
        if (ack.error === "unauthorized") this.signOut(ack.detail);
        // bad_request and forbidden are final: the same request would be refused again
        if (!["bad_request", "disconnected", "forbidden", "unauthorized"].includes(ack.error)) {
          sub.retry = setTimeout(() => {
            if (this.socket.connected && this.subs.get(sub.key) === sub) this.subscribe(sub);
          }, RETRY_SUBSCRIBE_MS);
        }
      }
    } finally {
      sub.pending = false;
      this.release();
      this.changed();
    }
  }

  /** Recent events over HTTP and the head cursor: the subscription continues from there. */
  async prefill(sub) {
    const q = sub.query();
    try {
      const body = await this.fetchJson(`/api/v1/events?${q}`, false);
      if (this.subs.get(sub.key) !== sub) return;
      this.deliver(sub, body.events, { prefill: true });
      sub.advance(body.cursor);
    } catch {
      // subscribe without `since` (with a snapshot) instead
    }
  }

  hold() {
    this.pendingCount += 1;
    if (!this.held) this.held = [];
  }

  release() {
    this.pendingCount -= 1;
    if (this.pendingCount > 0) return;
    const waiting = this.held || [];
    this.held = null;
    for (const [name, message] of waiting) this.receive(name, message);
  }

  receive(name, message) {
    if (this.held) {
      this.held.push([name, message]);
      return;
    }
    this.stats.messages += 1;
    if (IMMEDIATE.has(name)) {
      this.receiveImmediate(name, message);
      return;
    }
    const sub = this.subs.get(subscriptionKey(message.swarm, message.agent_id));
    if (!sub) return; // from a subscription that is no longer on screen
    this.noteLag(message.batch);
    this.deliver(sub, message.batch, { replay: !!message.replay });
    sub.advance(message.cursor);
  }

  receiveImmediate(name, event) {
    if (!event.id) { // `swarmdash notify`: not in the event log, no cursor
      this.handlers.onNotify(event);
      return;
    }
    const { cursor, replay, subscription, ...plain } = event;
    // Several subscriptions may receive this event, each with its own cursor: the message
    // names the one it was sent for.
    const owner = subscription
      ? this.subs.get(subscriptionKey(subscription.swarm, subscription.agent_id))
      : [...this.subs.values()].find((s) => s.matches(event));
    if (!owner) return; // from a subscription that is no longer on screen
    this.noteLag([event]);
    this.deliver(owner, [plain], { replay: !!replay });
    owner.advance(cursor);
  }

  noteLag(events) {
    if (!events || events.length === 0) return;
    const newest = events[events.length - 1];
    if (typeof newest.ts !== "number") return;
    const now = Date.now() / 1000 + this.clockOffset;
    this.lagMs = Math.max(0, Math.round((now - newest.ts) * 1000));
  }

  /** Hand new events to the page, dropping any already delivered. */
  deliver(sub, events, info = {}) {
    const fresh = [];
    for (const event of events || []) {
      if (event.type === "alert" || isCritical(event)) {
        // never batched; may reach several subscriptions: one copy by id
        if (this.seenImmediate.has(event.id)) { this.stats.duplicates += 1; continue; }
        this.seenImmediate.add(event.id);
        if (this.seenImmediate.size > SEEN_IMMEDIATE_MAX) {
          this.seenImmediate.delete(this.seenImmediate.values().next().value);
        }
      } else {
        // batched: each channel of a subscription arrives in stream order
        const mark = sub.marks.get(event.type);
        if (mark && compareIds(event.id, mark) <= 0) { this.stats.duplicates += 1; continue; }
        sub.marks.set(event.type, event.id);
      }
      fresh.push(event);
    }
    this.stats.events += fresh.length;
    if (fresh.length === 0) return;
    if (this.recorder) for (const event of fresh) this.recorder(event, sub.key, info);
    this.handlers.onEvents(sub, fresh, info);
  }

  // --- polling fallback ---------------------------------------------------------------

  enterFallback() {
    if (this.mode === "fallback" || this.socket.connected || this.signedOut) return;
    this.mode = "fallback";
    this.stats.fallbacks += 1;
    this.poller = { stopped: false, wake: null, running: null };
    this.poller.running = this.pollLoop(this.poller);
    this.changed();
  }

  async leaveFallback() {
    const poller = this.poller;
    if (!poller) return;
    this.poller = null;
    poller.stopped = true;
    poller.wake?.();
    await poller.running; // let a request in flight finish and store its cursor
    if (this.mode === "fallback") this.mode = "connecting";
  }

  scheduleProbe() {
    if (this.probeTimer || this.socket.connected) return;
    const every = Number(this.config.probe_interval_ms) || 15000;
    this.probeTimer = setTimeout(() => {
      this.probeTimer = null;
      if (!this.socket.connected) this.socket.connect();
    }, every);
  }

  async pollLoop(poller) {
    const interval = Number(this.config.fallback_poll_interval_ms) || 1000;
    const limit = Number(this.config.events_page_limit) || 1000;
    while (!poller.stopped) {
      let more = false;
      try {
        for (const sub of [...this.subs.values()]) {
          if (poller.stopped) break;
          if (this.subs.get(sub.key) !== sub) continue;
          more = (await this.pollOnce(sub, poller, limit)) || more;
        }
        this.pollOk = true;
      } catch {
        this.pollOk = false;
        this.stats.pollErrors += 1;
      }
      this.changed();
      if (poller.stopped || more) continue;
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, this.pollOk ? interval : interval * 2);
        poller.wake = () => { clearTimeout(timer); resolve(); };
      });
      poller.wake = null;
    }
  }

  /** One page for one subscription; true when there is more to read at once. */
  async pollOnce(sub, poller, limit) {
    if (!sub.cursor) {
      if (sub.prefill) {
        await this.prefill(sub);
      }
      if (!sub.cursor) {
        const q = new URLSearchParams({ swarm: sub.swarm });
        if (sub.agent_id) q.set("agent_id", sub.agent_id);
        const snapshot = await this.fetchJson(`/api/v1/snapshot?${q}`, true);
        if (poller.stopped || this.subs.get(sub.key) !== sub) return false;
        this.handlers.onSnapshot(sub, snapshot, false);
        sub.advance(snapshot.cursor);
        return true;
      }
    }
    const q = sub.query();
    q.set("since", sub.cursor);
    const body = await this.fetchJson(`/api/v1/events?${q}`, true);
    this.stats.polls += 1;
    this.lastPollAt = Date.now();
    // A stopped poller still stores what it fetched: the cursor stays consistent.
    if (this.subs.get(sub.key) !== sub) return false;
    if (body.gap) {
      // events after the cursor are gone: the state comes from a snapshot again
      const s = new URLSearchParams({ swarm: sub.swarm });
      if (sub.agent_id) s.set("agent_id", sub.agent_id);
      const snapshot = await this.fetchJson(`/api/v1/snapshot?${s}`, true);
      this.handlers.onSnapshot(sub, snapshot, true);
    }
    this.noteLag(body.events);
    this.deliver(sub, body.events, { poll: true });
    sub.advance(body.cursor);
    return body.events.length >= limit;
  }

  async fetchJson(url, fallback) {
    const headers = { Accept: "application/json" };
    if (fallback) headers["X-Swarmdash-Mode"] = "fallback";
    const response = await fetch(url, { headers, cache: "no-store" });
    if (response.status === 401) {
      const body = await response.json().catch(() => ({}));
      this.signOut(body.error);
    }
    if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
    const node = response.headers.get("X-Swarmdash-Node");
    if (node) this.fallbackNode = node;
    return response.json();
  }

  changed() {
    this.handlers.onStatus?.();
  }
}
