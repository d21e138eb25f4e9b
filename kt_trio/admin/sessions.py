"""`GET /admin/sessions` and `DELETE /admin/sessions/{id}`: the live WebSocket sessions of this
gateway process, and closing one with a code and reason of the admin's choosing.

The figures are the session's own counters, read when asked: the relay already counts messages
and bytes per direction with one integer add each, and the usage accumulator keeps the token
totals; listing costs nothing per message.

With `serve --workers N`, a request reaches one worker, which asks its siblings
(`kt_trio.admin.siblings`): the list holds every worker's sessions (each row names its `worker`),
and a DELETE closes the session on whichever worker holds it.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

from kt_trio.admin.host import AdminHost, record_action
from kt_trio.admin.router import AdminApp, AdminRequest, Answer
from kt_trio.admin.siblings import Siblings, is_local_only
from kt_trio.events.messages import rfc3339
from kt_trio.providers.errors import refusal

if TYPE_CHECKING:
    from kt_trio.session.session import Session

DEFAULT_CODE = 1008
DEFAULT_REASON = "closed by an administrator"
# RFC 6455 §5.5: a control frame's payload is at most 125 bytes, 2 of them the code.
MAX_REASON_BYTES = 123
# What an application may send (RFC 6455 §7.4): the registered codes that fit an administrator's
# close (normal, going away, policy, server error, try again later) and the private ranges.
ALLOWED_CODES = frozenset({1000, 1001, 1008, 1011, 1013})


def session_row(session: Session, now: float) -> dict[str, Any]:
    usage = session.governor.total
    return {
        "id": session.id,
        "route": session.route,
        "target": session.target,
        "model": session.governor.model or session.model,
        "key_name": session.key_name,
        "team": session.team,
        "client_ip": session.client_ip,
        "started_at": rfc3339(session.started_at),
        "age_secs": round(now - session.started_at, 3),
        "messages_in": session.messages_in,
        "messages_out": session.messages_out,
        "bytes_in": session.bytes_in,
        "bytes_out": session.bytes_out,
        "tokens": {
            "input": usage.input_tokens,
            "output": usage.output_tokens,
            "total": usage.total_tokens,
        },
        "worker": os.getpid(),
    }


def close_code(text: str | None) -> int:
    if text is None or text == "":
        return DEFAULT_CODE
    if not text.isdigit():
        raise refusal(400, "invalid_request_error", "invalid_close_code", f"code must be a number, got {text!r}")
    code = int(text)
    if code not in ALLOWED_CODES and not 3000 <= code <= 4999:
        raise refusal(
            400,
            "invalid_request_error",
            "invalid_close_code",
            f"code {code} cannot be sent: use 1000, 1001, 1008, 1011, 1013 or 3000-4999",
        )
    return code


def close_reason(text: str | None) -> str:
    if text is None or text == "":
        return DEFAULT_REASON
    if len(text.encode("utf-8", "surrogatepass")) > MAX_REASON_BYTES or not text.isprintable():
        raise refusal(
            400,
            "invalid_request_error",
            "invalid_close_reason",
            f"reason must be printable text of at most {MAX_REASON_BYTES} bytes in UTF-8",
        )
    return text


def add_session_routes(app: AdminApp, host: AdminHost, siblings: Siblings) -> None:
    def ask_siblings(request: AdminRequest) -> bool:
        return siblings.enabled and not is_local_only(request.headers)

    async def list_sessions(request: AdminRequest) -> Answer:
        now = time.time()
        rows = [session_row(s, now) for s in list(host.sessions)]
        if ask_siblings(request):
            for status, body in await siblings.ask("GET", request.path, {}, request.headers):
                if status == 200 and isinstance(body, dict) and isinstance(body.get("data"), list):
                    rows.extend(body["data"])
        rows.sort(key=lambda r: str(r.get("started_at")))
        return Answer(200, {"object": "list", "data": rows})

    async def close_session(request: AdminRequest) -> Answer:
        assert request.admin is not None
        session_id = request.params["id"]
        code = close_code(request.arg("code"))
        reason = close_reason(request.arg("reason"))
        session = next((s for s in list(host.sessions) if s.id == session_id), None)
        if session is None and ask_siblings(request):
            params = {"code": str(code), "reason": reason}
            for status, body in await siblings.ask("DELETE", request.path, params, request.headers):
                if status == 200:
                    return Answer(200, body)  # the worker holding it closed it and recorded it
        if session is None:
            raise refusal(404, "invalid_request_error", "session_not_found", f"no open session {session_id!r} here")
        session.terminate(code, reason)
        await record_action(host, request.admin.key.name, "session_close", session_id, code=code, reason=reason)
        return Answer(200, {"id": session_id, "closed": True, "code": code, "reason": reason})

    app.register("GET", "/admin/sessions", list_sessions)
    app.register("DELETE", "/admin/sessions/{id}", close_session)
