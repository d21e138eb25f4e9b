"""The admin API's ASGI app: `/admin/...` and the console's `/console/login|logout`, on the
gateway's one port (the HTTP app hands these paths here, `kt_trio.server.http_app`).

Every `/admin/` request is authenticated first (`kt_trio.admin.auth`: an admin key, or the
console's login cookie under the Origin rule), then routed by method and path to a handler:
`async handler(AdminRequest) -> Answer`. A handler refuses by raising `HttpRefusal`
(`kt_trio.providers.errors`, the gateway's one error body). Other parts of the gateway add their
routes with `AdminApp.register` (`POST /admin/reload` is the reload module's).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from typing import Any
from urllib.parse import parse_qs

from attrs import define, frozen

from kt_trio.admin.auth import Admin, AdminAuth
from kt_trio.admin.siblings import Siblings
from kt_trio.chat.asgi_io import ClientGone, respond
from kt_trio.chat.body import BodyLimits, parse_json, read_body
from kt_trio.providers.errors import HttpRefusal, error_body, refusal

log = logging.getLogger("kt_trio.admin")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

PREFIX = "/admin/"
# Admin bodies are a key's settings or a login: a few hundred bytes. 64 KiB is room to spare and
# keeps a hostile body from costing anything.
ADMIN_LIMITS = BodyLimits(max_bytes=64 * 1024, max_depth=8, max_elements=4096)


@frozen
class Answer:
    """A handler's answer: a status and a JSON body (headers for cookies and the like)."""

    status: int
    body: Any
    headers: tuple[tuple[bytes, bytes], ...] = ()


@define
class AdminRequest:
    method: str
    path: str
    params: Mapping[str, str]  # from the route's {placeholders}
    query: Mapping[str, list[str]]
    headers: Sequence[tuple[str, str]]  # names lower-cased
    admin: Admin | None  # None only on the login route, before anyone is known
    client_ip: str | None
    scheme: str
    _receive: Receive

    def arg(self, name: str) -> str | None:
        """A query parameter given once; 400 when it is repeated."""
        values = self.query.get(name)
        if not values:
            return None
        if len(values) > 1:
            raise refusal(400, "invalid_request_error", "duplicate_parameter", f"{name} is given more than once")
        return values[0]

    async def body(self) -> bytes:
        return bytes(await read_body(self._receive, ADMIN_LIMITS))

    async def json_object(self) -> dict[str, Any]:
        """The body as a JSON object (400 `invalid_json` otherwise)."""
        value = await parse_json(await self.body(), ADMIN_LIMITS)
        if not isinstance(value, dict):
            raise refusal(400, "invalid_request_error", "invalid_json", "the body must be a JSON object")
        return value


Handler = Callable[[AdminRequest], Awaitable[Answer]]


@frozen
class _Route:
    method: str
    pattern: re.Pattern[str]
    template: str
    handler: Handler
    public: bool  # no admin needed (the login itself)


def _compile(template: str) -> re.Pattern[str]:
    """`/admin/sessions/{id}` -> a regex with a named group per placeholder (one path segment)."""
    parts = re.split(r"\{(\w+)\}", template)
    regex = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>[^/]+)" for i, p in enumerate(parts))
    return re.compile(f"^{regex}$")


class AdminApp:
    """Routes admin requests; built by the gateway with its `AdminAuth`."""

    def __init__(self, auth: AdminAuth, siblings: Siblings | None = None) -> None:
        self.auth = auth
        # `serve --workers`: the other workers, asked by the sessions routes (kt_trio.admin.siblings).
        self.siblings = siblings or Siblings()
        self._routes: list[_Route] = []

    def register(self, method: str, template: str, handler: Handler, *, public: bool = False) -> None:
        """Serve `method template` (e.g. `POST /admin/reload`) with `handler`, behind admin auth
        unless `public` (only the login route is). A second registration of a route replaces the
        first, so a module can re-register after a reload."""
        method = method.upper()
        self._routes = [r for r in self._routes if (r.method, r.template) != (method, template)]
        self._routes.append(_Route(method, _compile(template), template, handler, public))

    def handles(self, path: str) -> bool:
        return path.startswith(PREFIX) or any(r.public and r.pattern.match(path) for r in self._routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        path = scope["path"]
        headers = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope.get("headers", ())]
        try:
            answer = await self._answer(scope, receive, method, path, headers)
        except HttpRefusal as exc:
            await respond(send, exc.status, exc.body, exc.headers)
            return
        except ClientGone:
            return
        body = json.dumps(answer.body, separators=(",", ":"), ensure_ascii=False).encode()
        await respond(send, answer.status, body, [(b"cache-control", b"no-store"), *answer.headers])

    async def _answer(
        self, scope: Scope, receive: Receive, method: str, path: str, headers: list[tuple[str, str]]
    ) -> Answer:
        matches = [(r, m) for r in self._routes if (m := r.pattern.match(path)) is not None]
        public = bool(matches) and all(r.public for r, _ in matches)
        admin: Admin | None = None
        if not public:
            verdict = await self.auth.authenticate(method, headers)
            if not isinstance(verdict, Admin):
                status, err_type, code, message = verdict
                raise HttpRefusal(status, error_body(err_type, code, message))
            admin = verdict
        if not matches:
            raise refusal(404, "invalid_request_error", "not_found", f"no admin route for {method} {path}")
        found = next(((r, m) for r, m in matches if r.method == method), None)
        if found is None:
            allowed = ", ".join(sorted({r.method for r, _ in matches}))
            raise refusal(405, "invalid_request_error", "method_not_allowed", f"{path} takes {allowed}", allow=allowed)
        route, match = found
        client = scope.get("client")
        request = AdminRequest(
            method=method,
            path=path,
            params=match.groupdict(),
            query=parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True),
            headers=headers,
            admin=admin,
            client_ip=client[0] if client else None,
            scheme=scope.get("scheme", "http"),
            receive=receive,
        )
        try:
            return await route.handler(request)
        except (HttpRefusal, ClientGone):
            raise
        except Exception:
            # A bug in one handler answers 500 for that request; the gateway goes on.
            log.exception("admin handler failed: %s %s", method, route.template)
            raise refusal(500, "server_error", "internal_error", "the admin request failed") from None
