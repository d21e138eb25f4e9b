"""The console's model of what it shows (`kt_trio/console/assets/state.js`), run by Node as the
browser would load it (an ES module, no DOM): how session lists and stream events combine, what a
`lagged` message does, usage by model and team, breaker states from `/metrics`, events per second.
The page as a whole is tested in Chromium by tests/test_console.py."""

from __future__ import annotations

import json
import shutil
import subprocess
from importlib import resources
from typing import Any

import pytest

STATE_JS = resources.files("kt_trio.console").joinpath("assets", "state.js")

SCRIPT = """
import { ConsoleState, breakerStates, sessionFrom } from %(module)s;
const out = {};
const t0 = Date.parse("2026-12-03T22:00:00Z");
const sid = "0123456789abcdef0123456789abcdef";
const start = {type: "audit", ts: "2026-12-03T22:00:00.000Z", payload: {
  event: "session_start", session_id: sid, route: "/v1/realtime", target: "rt", model: "gpt-realtime",
  client_ip: "10.0.0.7", key_name: "app", team: "payments", started_at: "2026-12-03T21:59:59.500Z"}};

// A session the stream announced survives a list that does not have it yet, for a grace period.
let s = new ConsoleState(t0);
s.applyMessage(start, t0);
s.applySessionList({object: "list", data: []}, t0 + 1000);
out.keptInGrace = s.sessions.has(sid);
s.applySessionList({object: "list", data: []}, t0 + 4000);
out.droppedAfterGrace = !s.sessions.has(sid);

// The list's shape (kt_trio.admin.sessions) and the cost the usage events added up.
s = new ConsoleState(t0);
s.applyMessage(start, t0);
s.applyMessage({type: "usage", ts: "2026-12-03T22:00:01Z", payload: {scope: "response", session_id: sid,
  model: "gpt-realtime", team: "payments", usage: {input_tokens: 100, output_tokens: 20, total_tokens: 120},
  cost_usd: 0.25}}, t0 + 1000);
s.applyMessage({type: "usage", ts: "2026-12-03T22:00:02Z", payload: {scope: "response", session_id: sid,
  model: "gpt-realtime", team: null, usage: {input_tokens: 10, output_tokens: 5, total_tokens: 15},
  cost_usd: null}}, t0 + 2000);
// A session's own usage at its end repeats its responses': not counted again.
s.applyMessage({type: "usage", ts: "2026-12-03T22:00:03Z", payload: {scope: "session", session_id: sid,
  model: "gpt-realtime", team: "payments", usage: {total_tokens: 135}, cost_usd: 0.25}}, t0 + 3000);
out.tokensFromEvents = s.sessions.get(sid).tokens;
s.applySessionList({object: "list", data: [{id: sid, route: "/v1/realtime", target: "rt", model: "gpt-realtime",
  key_name: "app", team: "payments", client_ip: "10.0.0.7", started_at: "2026-12-03T21:59:59.500Z",
  messages_in: 3, messages_out: 9, tokens: {input: 110, output: 25, total: 135}}]}, t0 + 3000);
const listed = s.sessions.get(sid);
out.listed = {tokens: listed.tokens, in: listed.messagesIn, out: listed.messagesOut, cost: listed.costUsd,
  startedAt: listed.startedAt - t0, key: listed.key, ip: listed.clientIp};
out.byModel = Object.fromEntries(s.byModel);
out.byTeam = Object.fromEntries(s.byTeam);

// The end of a session: gone from the table, first among the recently closed.
s.applyMessage({type: "audit", ts: "2026-12-03T22:00:05Z", payload: {event: "session_end", session_id: sid,
  model: "gpt-realtime", close_code: 4000, close_reason: "bye", closed_by: "gateway", duration_secs: 5.5}}, t0 + 5000);
out.afterEnd = {open: s.sessions.size, closed: s.closed[0]};
// A list asked for before the end but answered after it does not bring the session back.
s.applySessionList({object: "list", data: [{id: sid, started_at: "2026-12-03T21:59:59.500Z"}]}, t0 + 5100);
out.afterEnd.revived = s.sessions.has(sid);

// Decisions, an admin action, a breaker, a lagged notice: all in the feed, newest first.
s.applyMessage({type: "audit", ts: "2026-12-03T22:00:06Z", payload: {event: "policy_decision", session_id: sid,
  policy: "pii-detector", action: "redact", direction: "input", reason: "PII detected: email",
  redacted_kinds: ["EMAIL"], event_type: "conversation.item.create"}}, t0 + 6000);
s.applyMessage({type: "system", ts: "2026-12-03T22:00:07Z", payload: {event: "admin_action",
  action: "session_close", admin: "ops", target: sid, code: 4000, reason: "bye"}}, t0 + 7000);
s.applyMessage({type: "circuit_breaker", ts: "2026-12-03T22:00:08Z", payload: {target: "rt", from: "closed",
  to: "open", reason: "3 failures"}}, t0 + 8000);
s.applyMessage({type: "lagged", ts: "2026-12-03T22:00:09Z", payload: {missed: 7}}, t0 + 9000);
out.feed = s.feed.map((e) => ({kind: e.kind, action: e.action, title: e.title, detail: e.detail, session: e.session}));
out.breaker = s.breakers.get("rt");
out.missedTotal = s.missedTotal;
// Events per second over the last five whole seconds: the lagged notice counts what it missed.
out.rate = s.eventsPerSecond(t0 + 10000);

// Breakers' states when the page opens, from the Prometheus text.
out.breakers = breakerStates([
  '# HELP kt_circuit_breaker_state Circuit breaker state: 0 closed, 1 half-open, 2 open.',
  'kt_circuit_breaker_state{target="rt"} 0.0',
  'kt_circuit_breaker_state{target="odd \\\\"name\\\\""} 2.0',
  'kt_circuit_breaker_state{target="azure"} 1.0',
  'kt_sessions_active 3.0',
].join("\\n"));

// A list entry without tokens or counters still makes a row.
out.bare = sessionFrom({id: "x", started_at: 1764799200});
console.log(JSON.stringify(out));
"""


@pytest.fixture(scope="module")
def state() -> dict[str, Any]:
    node = shutil.which("node")
    assert node is not None, "node is not installed (.ci/run installs Debian's nodejs)"
    with resources.as_file(STATE_JS) as path:
        script = SCRIPT % {"module": json.dumps(path.as_uri())}
        done = subprocess.run(
            [node, "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60, check=False
        )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_a_session_announced_by_the_stream_waits_for_the_list(state: dict[str, Any]) -> None:
    assert state["keptInGrace"] is True
    assert state["droppedAfterGrace"] is True


def test_the_session_list_sets_counters_and_the_events_add_cost(state: dict[str, Any]) -> None:
    assert state["tokensFromEvents"] == 135
    assert state["listed"] == {
        "tokens": 135,
        "in": 3,
        "out": 9,
        "cost": 0.25,
        "startedAt": -500,
        "key": "app",
        "ip": "10.0.0.7",
    }
    assert state["bare"]["tokens"] == 0 and state["bare"]["startedAt"] == 1764799200000


def test_usage_adds_up_responses_by_model_and_team(state: dict[str, Any]) -> None:
    assert state["byModel"] == {
        "gpt-realtime": {"input": 110, "output": 25, "total": 135, "cached": 0, "costUsd": 0.25, "responses": 2}
    }
    assert state["byTeam"] == {
        "payments": {"input": 100, "output": 20, "total": 120, "cached": 0, "costUsd": 0.25, "responses": 1},
        "(no team)": {"input": 10, "output": 5, "total": 15, "cached": 0, "costUsd": None, "responses": 1},
    }


def test_an_ended_session_leaves_the_table_for_the_recent_list(state: dict[str, Any]) -> None:
    assert state["afterEnd"]["open"] == 0
    assert state["afterEnd"]["revived"] is False
    closed = state["afterEnd"]["closed"]
    assert (closed["code"], closed["reason"], closed["by"], closed["duration"]) == (4000, "bye", "gateway", 5.5)


def test_the_feed_shows_decisions_admin_actions_breakers_and_lagged(state: dict[str, Any]) -> None:
    sid = "0123456789abcdef0123456789abcdef"
    kinds = [(e["kind"], e["action"], e["title"]) for e in state["feed"]]
    assert kinds == [
        ("lagged", "lagged", "stream fell behind"),
        ("breaker", "open", "breaker rt"),
        ("admin", "admin", "session close"),
        ("decision", "redact", "pii-detector"),
    ]
    lagged, breaker, admin, decision = state["feed"]
    assert "7 events dropped" in lagged["detail"]
    assert breaker["detail"] == "closed → open (3 failures)"
    assert admin["session"] == sid and admin["detail"] == "by ops · code 4000 · reason bye"
    assert decision["session"] == sid
    assert decision["detail"] == "input · conversation.item.create · EMAIL · PII detected: email"
    assert state["breaker"]["state"] == "open" and state["breaker"]["reason"] == "3 failures"
    assert state["missedTotal"] == 7


def test_events_per_second_counts_the_last_five_seconds(state: dict[str, Any]) -> None:
    # Seconds 5..9 after t0 saw: session_end, decision, admin action, breaker, lagged (1 + 7 missed).
    assert state["rate"] == pytest.approx((1 + 1 + 1 + 1 + 8) / 5)


def test_breaker_states_come_from_the_metrics_text(state: dict[str, Any]) -> None:
    assert state["breakers"] == [["rt", "closed"], ['odd "name"', "open"], ["azure", "half_open"]]
