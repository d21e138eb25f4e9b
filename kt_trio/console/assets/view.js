// Drawing the state. Rows of the sessions table are kept per session id and updated in place,
// so a row under the pointer does not jump when the list refreshes every second.

import { $, age, clock, count, h, rate, setText, shortId, usd } from "./dom.js";

const rows = new Map(); // session id -> {tr, cells}

function sessionRow(s, onClose, onFilter) {
  const cells = {
    id: h("button", { class: "link mono", title: `${s.id}\n(click to filter on this session)`, text: shortId(s.id) }),
    route: h("td", { class: "mono dim" }),
    target: h("td"),
    key: h("td"),
    team: h("td"),
    ip: h("td", { class: "mono" }),
    age: h("td", { class: "num mono" }),
    messages: h("td", { class: "num mono" }),
    tokens: h("td", { class: "num mono" }),
    cost: h("td", { class: "num mono" }),
    close: h("button", { class: "danger small", type: "button", title: "Close this session with a code and reason", text: "Close" }),
  };
  cells.id.addEventListener("click", () => onFilter(s.id));
  cells.close.addEventListener("click", () => onClose(s.id));
  const tr = h(
    "tr",
    { data: { session: s.id }, class: "fresh" },
    h("td", {}, cells.id),
    cells.route,
    cells.target,
    cells.key,
    cells.team,
    cells.ip,
    cells.age,
    cells.messages,
    cells.tokens,
    cells.cost,
    h("td", { class: "actions" }, cells.close),
  );
  // The highlight of a new row fades once; removing the class lets a re-added row flash again.
  setTimeout(() => tr.classList.remove("fresh"), 2500);
  return { tr, cells };
}

function matches(s, filter) {
  if (!filter) return true;
  const f = filter.toLowerCase();
  return [s.id, s.route, s.target, s.model, s.key, s.team, s.clientIp].some((v) => v && String(v).toLowerCase().includes(f));
}

export function renderSessions(state, now, filter, onClose, onFilter) {
  const tbody = $("#sessions");
  const shown = [...state.sessions.values()].filter((s) => matches(s, filter)).sort((a, b) => a.startedAt - b.startedAt);
  const keep = new Set(shown.map((s) => s.id));
  for (const [id, row] of rows) {
    if (!keep.has(id)) {
      row.tr.remove();
      rows.delete(id);
    }
  }
  let previous = null;
  for (const s of shown) {
    let row = rows.get(s.id);
    if (!row) {
      row = sessionRow(s, onClose, onFilter);
      rows.set(s.id, row);
    }
    const c = row.cells;
    setText(c.route, s.route ?? "–");
    const target = s.model && s.target && s.model !== s.target ? `${s.target} · ${s.model}` : (s.model ?? s.target ?? "–");
    setText(c.target, target);
    setText(c.key, s.key ?? "–");
    setText(c.team, s.team ?? "–");
    setText(c.ip, s.clientIp ?? "–");
    setText(c.age, age(now - s.startedAt));
    const messages = s.messages !== null && !s.messagesIn && !s.messagesOut ? count(s.messages) : `${count(s.messagesIn)} / ${count(s.messagesOut)}`;
    setText(c.messages, messages);
    setText(c.tokens, count(s.tokens));
    setText(c.cost, s.costUsd === null ? "–" : usd(s.costUsd));
    const closing = state.closing.get(s.id);
    row.tr.classList.toggle("closing", closing !== undefined);
    c.close.disabled = closing !== undefined;
    setText(c.close, closing !== undefined ? `Closing ${closing}…` : "Close");
    // Keep DOM order equal to the sorted order, moving only what is out of place.
    const expected = previous ? previous.nextSibling : tbody.firstChild;
    if (expected !== row.tr) tbody.insertBefore(row.tr, expected);
    previous = row.tr;
  }
  $("#sessions-empty").hidden = shown.length > 0;
  setText($("#sessions-empty"), state.sessions.size && filter ? `No open session matches “${filter}”.` : "No open sessions.");
  setText($("#stat-sessions"), String(state.sessions.size));
}

export function renderClosed(state) {
  const list = $("#closed");
  list.replaceChildren(
    ...state.closed.map((c) =>
      h(
        "li",
        { title: [c.id, c.model, c.key && `key ${c.key}`, c.team && `team ${c.team}`].filter(Boolean).join("\n") },
        h("span", { class: "mono", text: shortId(c.id) }),
        h("span", { class: `code code-${c.code}`, text: String(c.code ?? "–") }),
        h("span", { class: "dim mono right", text: clock(c.endedAt) }),
        h("span", {
          class: "why dim",
          text: [c.by && `by ${c.by}`, c.reason, typeof c.duration === "number" ? `after ${age(c.duration * 1000)}` : null]
            .filter(Boolean)
            .join(" · "),
        }),
      ),
    ),
  );
  $("#closed-empty").hidden = state.closed.length > 0;
}

let feedDrawn = null; // what was drawn last: the state, its newest entry, the filter
export function renderFeed(state, showAllow, onFilter) {
  const newest = state.feed[0] ?? null;
  if (feedDrawn && feedDrawn.state === state && feedDrawn.newest === newest && feedDrawn.showAllow === showAllow) return;
  feedDrawn = { state, newest, showAllow };
  const entries = state.feed.filter((e) => showAllow || !(e.kind === "decision" && e.action === "allow"));
  $("#feed").replaceChildren(
    ...entries.map((e) => {
      const session = e.session
        ? h("button", { class: "link mono", title: `${e.session}\n(click to filter on this session)`, text: shortId(e.session) })
        : null;
      session?.addEventListener("click", () => onFilter(e.session));
      return h(
        "li",
        { class: `entry kind-${e.kind}` },
        h("time", { class: "mono dim", text: clock(e.ts) }),
        h("span", { class: `badge action-${e.action}`, text: e.action }),
        h(
          "div",
          { class: "what", title: e.detail ? `${e.title}\n${e.detail}` : e.title },
          h("div", { class: "line" }, h("strong", { text: e.title }), session),
          e.detail ? h("div", { class: "detail dim", text: e.detail }) : null,
        ),
      );
    }),
  );
  $("#feed-empty").hidden = entries.length > 0;
}

function usageTable(tbody, map) {
  const sorted = [...map.entries()].sort((a, b) => b[1].total - a[1].total);
  tbody.replaceChildren(
    ...sorted.map(([name, u]) =>
      h(
        "tr",
        {},
        h("td", { text: name, title: name }),
        h("td", { class: "num mono", text: count(u.responses) }),
        h("td", { class: "num mono", text: count(u.input) }),
        h("td", { class: "num mono", text: count(u.output) }),
        h("td", { class: "num mono", text: usd(u.costUsd) }),
      ),
    ),
  );
  return sorted.length;
}

export function renderUsage(state) {
  const models = usageTable($("#usage-model"), state.byModel);
  const teams = usageTable($("#usage-team"), state.byTeam);
  $("#usage-model").closest("table").hidden = models === 0;
  $("#usage-team").closest("table").hidden = teams === 0;
  $("#usage-empty").hidden = models + teams > 0;
  let tokens = 0;
  let cost = null;
  for (const u of state.byModel.values()) {
    tokens += u.total;
    if (u.costUsd !== null) cost = (cost ?? 0) + u.costUsd;
  }
  setText($("#stat-tokens"), count(tokens));
  setText($("#stat-cost"), usd(cost));
}

export function renderBreakers(state, now) {
  const sorted = [...state.breakers.entries()].sort((a, b) => a[0].localeCompare(b[0]));
  $("#breakers").replaceChildren(
    ...sorted.map(([target, b]) =>
      h(
        "li",
        { class: `breaker state-${b.state}`, title: b.reason || "" },
        h("span", { class: "dot" }),
        h("span", { class: "mono", text: target }),
        h("span", { class: "state", text: b.state.replace("_", "-") }),
        h("span", { class: "dim mono right", text: b.since ? age(now - b.since) : "" }),
      ),
    ),
  );
  $("#breakers-empty").hidden = sorted.length > 0;
}

export function renderRate(state, now) {
  setText($("#stat-rate"), rate(state.eventsPerSecond(now)));
  const canvas = $("#spark");
  const ctx = canvas.getContext("2d");
  const scale = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  if (canvas.width !== Math.round(width * scale)) {
    canvas.width = Math.round(width * scale);
    canvas.height = Math.round(height * scale);
  }
  ctx.setTransform(scale, 0, 0, scale, 0, 0);
  ctx.clearRect(0, 0, width, height);
  const values = state.rateBuckets.slice(0, -1);
  const max = Math.max(1, ...values);
  const step = width / (values.length - 1);
  ctx.beginPath();
  values.forEach((v, i) => {
    const x = i * step;
    const y = height - 2 - (v / max) * (height - 4);
    if (i === 0) ctx.moveTo(x, y);
    else ctx.lineTo(x, y);
  });
  ctx.strokeStyle = getComputedStyle(canvas).color;
  ctx.lineWidth = 1.5;
  ctx.stroke();
}

export function renderStatus(stream, poll) {
  const pill = $("#stream-status");
  const labels = { live: "live", connecting: "connecting…", reconnecting: "reconnecting…", down: "stream down", stopped: "stopped" };
  setText(pill, labels[stream.state] ?? stream.state);
  pill.className = `pill status-${stream.state}`;
  pill.title = stream.detail ? `${stream.detail.why}; retrying in ${(stream.detail.retryInMs / 1000).toFixed(1)} s` : "Live event stream (/ws/events)";
  const note = $("#poll-status");
  if (poll.error) {
    setText(note, `session list: ${poll.error}`);
    note.className = "error";
  } else {
    setText(note, poll.at ? `updated ${clock(poll.at)}` : "");
    note.className = "dim";
  }
}

export function showBanner(text) {
  const banner = $("#banner");
  banner.hidden = !text;
  setText(banner, text ?? "");
}
