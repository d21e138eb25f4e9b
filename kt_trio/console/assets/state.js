// What the console knows, built from two sources: the session list (`GET /admin/sessions`,
// polled; the truth about what is open and its counters) and the event stream (`/ws/events`,
// live; new and ended sessions between polls, decisions, usage, breakers, system events).
// No DOM here: the view reads this and draws it.

const FEED_LIMIT = 250; // entries kept for the decisions feed; older ones fall off the end
const CLOSED_LIMIT = 12; // recently ended sessions shown under the table
const RATE_WINDOW = 60; // seconds of events-per-second history for the sparkline
// A session the stream announced but the last poll did not list yet (the poll raced the start)
// is kept this long before the list is believed.
const START_GRACE_MS = 3000;

function epochMs(value) {
  if (value === null || value === undefined) return null;
  if (typeof value === "number") return value < 1e12 ? value * 1000 : value; // seconds or ms
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? null : ms;
}

// Session ids are 32 hex digits (uuid4().hex); an admin action's target may also be a key name.
function isSessionId(value) {
  return typeof value === "string" && /^[0-9a-f]{32}$/.test(value);
}

function hhmmss(ms) {
  const d = new Date(ms);
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, "0")).join(":");
}

function num(...values) {
  for (const v of values) if (typeof v === "number" && !Number.isNaN(v)) return v;
  return null;
}

// One session as the table shows it, from a list entry or a `session_start` payload.
export function sessionFrom(raw) {
  const tokens = raw.tokens;
  const usage = raw.usage && typeof raw.usage === "object" ? raw.usage : null;
  return {
    id: raw.id ?? raw.session_id,
    route: raw.route ?? null,
    target: raw.target ?? null,
    model: raw.model ?? null,
    key: raw.key_name ?? raw.key ?? null,
    team: raw.team ?? null,
    clientIp: raw.client_ip ?? null,
    startedAt: epochMs(raw.started_at) ?? Date.now(),
    messagesIn: num(raw.messages_in, raw.messages?.in) ?? 0,
    messagesOut: num(raw.messages_out, raw.messages?.out) ?? 0,
    messages: num(typeof raw.messages === "number" ? raw.messages : null),
    tokens: num(
      typeof tokens === "number" ? tokens : null,
      tokens?.total_tokens,
      tokens?.total,
      raw.total_tokens,
      usage?.total_tokens,
    ) ?? 0,
    costUsd: num(raw.cost_usd),
  };
}

function listOf(body) {
  if (Array.isArray(body)) return body;
  if (body && Array.isArray(body.data)) return body.data;
  if (body && Array.isArray(body.sessions)) return body.sessions;
  return [];
}

function emptyUsage() {
  return { input: 0, output: 0, total: 0, cached: 0, costUsd: null, responses: 0 };
}

export class ConsoleState {
  constructor(now = Date.now()) {
    this.sessions = new Map(); // id -> session
    this.announced = new Map(); // id -> when the stream announced it (ms), until a poll lists it
    this.closing = new Map(); // id -> code asked for, until the session is gone
    this.closed = []; // most recent first
    this.feed = []; // most recent first
    this.byModel = new Map();
    this.byTeam = new Map();
    this.breakers = new Map(); // target -> {state, since, reason}
    this.rateBuckets = new Array(RATE_WINDOW).fill(0);
    this.rateSecond = Math.floor(now / 1000);
    this.eventsTotal = 0;
    this.missedTotal = 0;
    this.lastPoll = null;
    this.since = now;
  }

  // -- the polled session list ----------------------------------------------------------------

  applySessionList(body, now = Date.now()) {
    const listed = new Map();
    // A list asked for before a session ended can arrive after its `session_end`: not revived.
    const ended = new Set(this.closed.map((c) => c.id));
    for (const raw of listOf(body)) {
      const s = sessionFrom(raw);
      if (s.id && !ended.has(s.id)) listed.set(s.id, s);
    }
    for (const id of this.sessions.keys()) {
      const announcedAt = this.announced.get(id);
      if (!listed.has(id) && !(announcedAt && now - announcedAt < START_GRACE_MS)) {
        this.sessions.delete(id);
        this.announced.delete(id);
        this.closing.delete(id);
      }
    }
    for (const [id, s] of listed) {
      // The list has no cost; what the usage events added up so far is kept.
      if (s.costUsd === null) s.costUsd = this.sessions.get(id)?.costUsd ?? null;
      this.sessions.set(id, s);
      this.announced.delete(id);
    }
    this.lastPoll = now;
  }

  // -- the event stream -------------------------------------------------------------------------

  applyMessage(message, now = Date.now()) {
    this.countEvents(1, now);
    const { type, payload = {} } = message;
    const ts = epochMs(message.ts) ?? now;
    switch (type) {
      case "audit":
        this.applyAudit(payload, ts, now);
        break;
      case "usage":
        this.applyUsage(payload);
        break;
      case "budget":
        this.pushFeed({
          kind: "budget",
          ts,
          action: payload.exceeded ? "exceeded" : "threshold",
          title: payload.exceeded ? "budget exceeded" : `budget ${Math.round((payload.threshold ?? 0) * 100)}%`,
          detail: `${payload.used_tokens ?? "?"} / ${payload.max_tokens ?? "?"} tokens`,
          session: payload.session_id ?? null,
        });
        break;
      case "circuit_breaker":
        this.breakers.set(payload.target, { state: payload.to, since: ts, reason: payload.reason ?? "" });
        this.pushFeed({
          kind: "breaker",
          ts,
          action: payload.to,
          title: `breaker ${payload.target}`,
          detail: `${payload.from} → ${payload.to}${payload.reason ? ` (${payload.reason})` : ""}`,
          session: null,
        });
        break;
      case "system": {
        const { event, ...details } = payload;
        if (event === "admin_action") {
          // Every admin API action (kt_trio.admin): who did what to which session or key.
          const { action, admin, target, ...rest } = details;
          this.pushFeed({
            kind: "admin",
            ts,
            action: "admin",
            title: String(action ?? "admin action").replaceAll("_", " "),
            detail: [admin && `by ${admin}`, !isSessionId(target) && target, ...Object.entries(rest).filter(([, v]) => v !== null && v !== undefined && v !== "" && typeof v !== "object").map(([k, v]) => `${k} ${v}`)]
              .filter(Boolean)
              .join(" · "),
            session: isSessionId(target) ? target : null,
          });
          break;
        }
        this.pushFeed({
          kind: "system",
          ts,
          action: "system",
          title: String(event ?? "system"),
          detail: Object.entries(details)
            .filter(([, v]) => v !== null && v !== undefined && typeof v !== "object")
            .map(([k, v]) => `${k}=${v}`)
            .join(" "),
          session: null,
        });
        break;
      }
      case "lagged":
        this.lagged(payload.missed ?? 0, ts, now);
        break;
      default:
        break;
    }
  }

  applyAudit(p, ts, now) {
    switch (p.event) {
      case "session_start": {
        const s = sessionFrom(p);
        if (s.id && !this.sessions.has(s.id)) {
          this.sessions.set(s.id, s);
          this.announced.set(s.id, now);
        }
        return;
      }
      case "session_end": {
        this.sessions.delete(p.session_id);
        this.announced.delete(p.session_id);
        this.closing.delete(p.session_id);
        this.closed.unshift({
          id: p.session_id,
          model: p.model,
          key: p.key_name,
          team: p.team,
          code: p.close_code,
          reason: p.close_reason,
          by: p.closed_by,
          duration: p.duration_secs,
          endedAt: ts,
        });
        this.closed.length = Math.min(this.closed.length, CLOSED_LIMIT);
        return;
      }
      case "policy_decision":
        this.pushFeed({
          kind: "decision",
          ts,
          action: p.action,
          title: p.policy,
          detail: [p.direction, p.event_type, p.redacted_kinds?.length ? p.redacted_kinds.join(",") : null, p.reason]
            .filter(Boolean)
            .join(" · "),
          session: p.session_id ?? null,
        });
        return;
      case "message": {
        // Per-message audit (features.websocket.message_events): only what a policy did is news.
        const acted = (p.decisions ?? []).filter((d) => d.action && d.action !== "allow");
        for (const d of acted) {
          this.pushFeed({
            kind: "decision",
            ts,
            action: d.action,
            title: d.policy,
            detail: [p.direction, p.event_type, d.redacted_kinds?.length ? d.redacted_kinds.join(",") : null]
              .filter(Boolean)
              .join(" · "),
            session: p.session_id ?? null,
          });
        }
        const s = this.sessions.get(p.session_id);
        if (s && p.count) {
          if (p.direction === "client_to_upstream" || p.direction === "input") s.messagesIn += p.count;
          else s.messagesOut += p.count;
        }
        return;
      }
      default:
        // Admin actions and anything newer: shown as they come, by their own name.
        if (p.event) {
          this.pushFeed({
            kind: "admin",
            ts,
            action: "admin",
            title: String(p.event),
            detail: [p.action, p.key_name ?? p.name, p.code, p.reason].filter((v) => v !== undefined && v !== null && v !== "").join(" · "),
            session: p.session_id ?? null,
          });
        }
    }
  }

  applyUsage(p) {
    // Response-scoped usage only: a session's own `usage` at its end is the sum of its responses
    // and would count them twice.
    if (p.scope !== "response") return;
    const u = p.usage ?? {};
    for (const [map, name] of [
      [this.byModel, p.model ?? p.target ?? "unknown"],
      [this.byTeam, p.team ?? "(no team)"],
    ]) {
      const row = map.get(name) ?? emptyUsage();
      row.input += u.input_tokens ?? 0;
      row.output += u.output_tokens ?? 0;
      row.total += u.total_tokens ?? 0;
      row.cached += u.cached_tokens ?? 0;
      row.responses += 1;
      if (typeof p.cost_usd === "number") row.costUsd = (row.costUsd ?? 0) + p.cost_usd;
      map.set(name, row);
    }
    const s = this.sessions.get(p.session_id);
    if (s) {
      s.tokens += u.total_tokens ?? 0;
      if (typeof p.cost_usd === "number") s.costUsd = (s.costUsd ?? 0) + p.cost_usd;
    }
  }

  lagged(missed, ts, now) {
    this.missedTotal += missed;
    this.countEvents(missed, now);
    this.pushFeed({
      kind: "lagged",
      ts,
      action: "lagged",
      title: "stream fell behind",
      detail: `${missed} event${missed === 1 ? "" : "s"} dropped before this page read them; totals below may be low`,
      session: null,
    });
  }

  gap(from, to) {
    this.pushFeed({
      kind: "lagged",
      ts: to,
      action: "gap",
      title: "stream reconnected",
      detail: `events between ${hhmmss(from)} and ${hhmmss(to)} were not seen`,
      session: null,
    });
  }

  pushFeed(entry) {
    this.feed.unshift(entry);
    if (this.feed.length > FEED_LIMIT) this.feed.length = FEED_LIMIT;
  }

  // -- breakers from /metrics ------------------------------------------------------------------

  seedBreakers(states) {
    for (const [target, state] of states) {
      if (!this.breakers.has(target)) this.breakers.set(target, { state, since: null, reason: "" });
    }
  }

  // -- events per second -----------------------------------------------------------------------

  countEvents(n, now = Date.now()) {
    this.advance(now);
    this.rateBuckets[this.rateBuckets.length - 1] += n;
    this.eventsTotal += n;
  }

  advance(now = Date.now()) {
    const second = Math.floor(now / 1000);
    const steps = Math.min(second - this.rateSecond, RATE_WINDOW);
    for (let i = 0; i < steps; i++) {
      this.rateBuckets.shift();
      this.rateBuckets.push(0);
    }
    if (second > this.rateSecond) this.rateSecond = second;
  }

  // Events per second over the last five whole seconds (the current one is still filling).
  eventsPerSecond(now = Date.now()) {
    this.advance(now);
    const done = this.rateBuckets.slice(-6, -1);
    return done.reduce((a, b) => a + b, 0) / done.length;
  }
}

// `kt_circuit_breaker_state{target="..."} 0|1|2` from the Prometheus text: every breaker's state
// when the page opens (the stream only tells transitions).
export function breakerStates(metricsText) {
  const names = ["closed", "half_open", "open"];
  const found = [];
  const line = /^kt_circuit_breaker_state\{([^}]*)\}\s+([0-9.eE+-]+)/;
  for (const text of metricsText.split("\n")) {
    const m = line.exec(text);
    if (!m) continue;
    const target = /target="((?:[^"\\]|\\.)*)"/.exec(m[1]);
    if (!target) continue;
    found.push([target[1].replace(/\\(.)/g, "$1"), names[Math.round(Number(m[2]))] ?? "unknown"]);
  }
  return found;
}
