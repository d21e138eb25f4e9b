"""The `/ws/events` endpoint: checks a request head, then streams the hub to a WebSocket client.

The front door has already read the request head (it routes on it); it hands over a stream that
replays those bytes (`kt_trio.server.replay_stream.ReplayStream`) and the parsed head. Refusals
are plain HTTP written before any upgrade (DESIGN.md "Handshake refusals are plain HTTP"):

- 404 when `features.websocket.enabled` is off; 400/426 for a malformed upgrade;
- 401 when `require_auth` and neither `?token=` nor a `kt_session` cookie carries a configured token
  or a gateway key with the `events` scope (issue 7; also accepted as `Authorization: Bearer`);
  a key is checked whenever one is presented, so a bad key is refused even without `require_auth`;
- 403 for a key without the `events` scope, or with it but with neither a team nor `admin`: a
  team key sees only its team's events (`EventHub.subscribe(team=...)`), an admin key all;
- 403 when the token came from the cookie and `Origin` is not in `allowed_origins`: a browser
  attaches cookies to a WebSocket opened by any site, so a cookie alone proves nothing about who
  is asking (cross-site WebSocket hijacking). A `?token=` is never sent implicitly by a browser,
  so it needs no Origin check. A non-browser client should use `?token=`;
- 403 for any browser on another origin: an `Origin` header that is neither in `allowed_origins`
  nor the gateway's own (its host equal to the `Host` header), whatever the credentials and even
  with auth off: the stream shows session ids, client addresses and key names (issue 13);
- the console's login cookie (`kt_console`, `kt_trio.admin.auth`) stands for an admin key: all
  events, Origin checked as for any admin request (present: the gateway's own); a stale login 401;
- 503 when `max_connections` authenticated subscribers are open (0 = unlimited); anonymous ones
  (auth off, no credentials) have their own cap, `max_anonymous_connections`, and count against
  `max_connections` too, so anonymous subscribers can never lock out the operator.

A subscriber that presented a gateway key is ended with 1008 "key revoked" / "key expired"
within a second of its key's revocation or expiry (the gateway's poll calls `Subscriber.end`).

Only then does trio-websocket (light traffic: DESIGN.md "Stack") parse the head again from the
replayed bytes and answer 101. The connection is three tasks: a sender (hub → client), a drain of
whatever the client sends (so control frames, i.e. pongs, keep being processed), and a keepalive
that closes with 1011 when a ping's pong does not come within `pong_timeout_secs`; that includes
a ping stuck behind a client that stopped reading, so a dead reader is dropped, not kept forever.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs

import trio
from attrs import define, frozen
from trio_websocket import ConnectionClosed, WebSocketConnection, wrap_server_stream

from kt_trio.config.schema import EventStream
from kt_trio.events.hub import EventHub, Subscription
from kt_trio.events.messages import EVENT_TYPES
from kt_trio.keys.store import KEY_PREFIX
from kt_trio.wire.browser_headers import cookie, is_own_origin
from kt_trio.wire.handshake import RequestHead, error_body, http_response, upgrade_problem

log = logging.getLogger("kt_trio.events")

PATH = "/ws/events"
COOKIE_NAME = "kt_session"
# The client has already sent its whole head; the 101 is one small write. A client that does
# not take it within this long is not worth a slot.
HANDSHAKE_TIMEOUT = 10.0
# Our close frame and the peer's answer (RFC 6455 §7.1.1); after this the TCP connection is
# simply closed: a client that stopped reading would otherwise hold the task forever.
CLOSE_TIMEOUT = 2.0
# The client has nothing to say on this stream; its messages are read and discarded. trio-websocket
# queues at most this many before its reader (which also handles pongs) waits for us to drain.
INCOMING_QUEUE = 4
INCOMING_MAX_MESSAGE = 4096

OnRefused = Callable[[str], None]
# Gateway.check_key: (key info, None) or (None, (status, error type, code, message)).
KeyCheck = Callable[..., Awaitable[tuple[Any, tuple[int, str, str, str] | None]]]
# AdminAuth.console_login: the admin behind a console cookie, a refusal tuple, or None (no cookie).
ConsoleLogin = Callable[[Sequence[tuple[str, str]]], Awaitable[Any]]


@define(eq=False)
class Subscriber:
    """One open subscriber as the gateway sees it: its key (None: no key) and how to end it."""

    key: Any = None  # KeyInfo of the key it presented
    anonymous: bool = True
    close: tuple[int, str] | None = None
    _scope: trio.CancelScope | None = None

    def attach(self, scope: trio.CancelScope | None) -> None:
        """The scope `end` cancels (the running stream's), None once it has ended."""
        self._scope = scope
        if scope is not None and self.close is not None:  # ended during its handshake
            scope.cancel()

    def end(self, code: int, reason: str) -> None:
        """Ends the subscription from outside (its key was revoked or expired)."""
        if self.close is None:
            self.close = (code, reason)
        if self._scope is not None:
            self._scope.cancel()


class Subscribers:
    """The open subscribers of one gateway, by kind: the anonymous cap and the key poll use it."""

    def __init__(self) -> None:
        self.open: set[Subscriber] = set()

    @property
    def anonymous(self) -> int:
        return sum(1 for s in self.open if s.anonymous)

    @property
    def authenticated(self) -> int:
        return sum(1 for s in self.open if not s.anonymous)

    @contextmanager
    def holding(self, subscriber: Subscriber) -> Iterator[Subscriber]:
        self.open.add(subscriber)
        try:
            yield subscriber
        finally:
            self.open.discard(subscriber)


class Refusal(Exception):
    def __init__(self, status: int, code: str, message: str, headers: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


def _token_matches(given: str, tokens: tuple[str, ...]) -> bool:
    """Constant time over the configured tokens: every one is compared, no early exit, so the
    timing says neither which token nor how much of it matched. Empty tokens (an unset `${ENV}`)
    never match."""
    given_bytes = given.encode()
    ok = False
    for token in tokens:
        if token:
            ok |= hmac.compare_digest(given_bytes, token.encode())
    return ok and bool(given)


def _normal_origin(origin: str) -> str:
    return origin.strip().rstrip("/").lower()


def _origin_allowed(origin: str, host: str | None, allowed: tuple[str, ...]) -> bool:
    """A browser's `Origin` is acceptable when listed, or when it is the gateway's own (same host
    and port as the `Host` it asked for: the console served by this gateway)."""
    if _normal_origin(origin) in {_normal_origin(o) for o in allowed}:
        return True
    return is_own_origin(origin, host)


@frozen
class StreamRequest:
    """What a checked head asks for: the filters, and a gateway key still to check (async)."""

    types: frozenset[str] | None
    session: str | None
    key: str | None = None
    anonymous: bool = False


def _bearer(head: RequestHead) -> str | None:
    value = head.header("authorization")
    if value is None or not value.lower().startswith("bearer "):
        return None
    return value[7:].strip() or None


def check_request(
    hub: EventHub,
    settings: EventStream,
    head: RequestHead,
    subscribers: Subscribers | None = None,
    *,
    signed_in: bool = False,
) -> StreamRequest:
    """Pure checks of the head; returns what it asks for or raises `Refusal`. `signed_in`: the
    console's login already stands for an admin key, so no token is looked for."""
    if not settings.enabled:
        raise Refusal(404, "not_found", "the event stream is disabled")
    if not head.is_websocket_upgrade:
        raise Refusal(400, "bad_request", "expected a WebSocket upgrade")
    problem = upgrade_problem(head)
    if problem is not None:
        raise Refusal(400, "bad_request", problem)
    if head.header("sec-websocket-version") != "13":
        raise Refusal(426, "bad_request", "unsupported WebSocket version", (("Sec-WebSocket-Version", "13"),))
    origin = head.header("origin")
    if origin is not None and not _origin_allowed(origin, head.header("host"), settings.allowed_origins):
        raise Refusal(403, "origin_not_allowed", "this Origin may not use the event stream")
    query = parse_qs(head.query)
    token = None if signed_in else query.get("token", [None])[0] or _bearer(head)
    via_cookie = False
    if token is None and not signed_in:
        token = cookie(head.headers, COOKIE_NAME)
        via_cookie = token is not None
    key: str | None = None
    if token is not None and token.startswith(KEY_PREFIX):
        key = token  # checked by the caller against the key store, whatever require_auth says
    elif not signed_in and settings.require_auth and (token is None or not _token_matches(token, settings.tokens)):
        raise Refusal(401, "unauthorized", "a valid event stream token is required")
    if via_cookie and (settings.require_auth or key is not None):
        origin = head.header("origin")
        allowed = {_normal_origin(o) for o in settings.allowed_origins}
        if origin is None or _normal_origin(origin) not in allowed:
            raise Refusal(403, "origin_not_allowed", "this Origin may not use the session cookie")
    types: frozenset[str] | None = None
    if "types" in query:
        types = frozenset(t.strip() for v in query["types"] for t in v.split(",") if t.strip())
        unknown = types - EVENT_TYPES
        if unknown:
            raise Refusal(400, "bad_request", f"unknown event type(s): {', '.join(sorted(unknown))}")
    session = query.get("session", [None])[0] or None
    anonymous = not signed_in and key is None and (token is None or not _token_matches(token, settings.tokens))
    limit = settings.max_connections
    full = bool(limit) and hub.subscriber_count >= limit  # everyone, when nothing is told apart
    if subscribers is not None:
        if anonymous:
            anon_limit = settings.max_anonymous_connections
            full = (bool(anon_limit) and subscribers.anonymous >= anon_limit) or (
                bool(limit) and len(subscribers.open) >= limit
            )
        else:
            full = bool(limit) and subscribers.authenticated >= limit
    if full:
        raise Refusal(
            503, "too_many_subscribers", "the event stream is at its connection limit", (("Retry-After", "5"),)
        )
    return StreamRequest(types, session, key, anonymous)


async def key_for_stream(check_key: KeyCheck | None, key: str) -> Any:
    """The key's info when it is good for the stream (`info.team` narrows the view unless it is an
    admin key); raises `Refusal` otherwise."""
    if check_key is None:
        raise Refusal(401, "unauthorized", "gateway keys are not accepted here")
    info, refusal = await check_key(key, scope="events")
    if refusal is not None:
        status, _, code, message = refusal
        raise Refusal(status, code, message)
    if not info.is_admin and not info.team:
        # Without a team there is nothing to narrow the view to, and the whole stream is for
        # admins: refuse rather than show everything or nothing.
        raise Refusal(403, "key_scope", f"gateway key {info.name!r} has no team; only admin keys see every team")
    return info


async def serve_event_stream(
    hub: EventHub,
    settings: EventStream,
    stream: trio.abc.Stream,
    head: RequestHead,
    *,
    on_refused: OnRefused | None = None,
    check_key: KeyCheck | None = None,
    subscribers: Subscribers | None = None,
    console: ConsoleLogin | None = None,
) -> None:
    """Serves one `/ws/events` connection until either side ends it; always closes `stream`.

    `stream` must replay the request head (the front door's `ReplayStream`). `on_refused(code)`
    is called once per plain-HTTP refusal with a short reason (`unauthorized`, `origin_not_allowed`,
    `too_many_subscribers`, ...), for `Metrics.handshake_rejected`. `check_key` is the gateway's
    key check, for subscribers that present a gateway key (`Gateway.check_key`). `subscribers`:
    the gateway's open subscribers (separate caps, and ending a revoked key's subscriptions).
    `console`: resolves the console's login cookie (`AdminAuth.console_login`).
    """
    try:
        try:
            admin = None if console is None else await console(head.headers)
            if isinstance(admin, tuple):
                status, _, code, message = admin
                raise Refusal(status, code, message)
            request = check_request(hub, settings, head, subscribers, signed_in=admin is not None)
            if admin is not None:
                info = admin.key
            else:
                info = None if request.key is None else await key_for_stream(check_key, request.key)
        except Refusal as refusal:
            log.info(
                "event stream refused: status=%d reason=%s",
                refusal.status,
                refusal.code,
                extra={"fields": {"path": PATH, "status": refusal.status, "reason": refusal.code}},
            )
            if on_refused is not None:
                on_refused(refusal.code)
            body = error_body(refusal.status, "invalid_request_error", refusal.code, refusal.message)
            try:
                await stream.send_all(http_response(refusal.status, body, extra_headers=refusal.headers))
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
            return
        # Subscribed before the upgrade: the slot counts against max_connections from here (no
        # two clients can both pass the check above for the last slot), and nothing published
        # during the handshake is missed.
        types, session = request.types, request.session
        team = None if info is None or info.is_admin else str(info.team)
        subscriber = Subscriber(key=info, anonymous=request.anonymous)
        with (
            (subscribers or Subscribers()).holding(subscriber),
            hub.subscribe(types, session, team) as sub,
            trio.CancelScope() as scope,
        ):
            if hub.listening_ready is not None:  # other instances publish to this one from now on
                await hub.listening_ready()
            async with trio.open_nursery() as nursery:  # trio-websocket's reader task lives here
                ws = await _accept(nursery, stream)
                if ws is not None:
                    log.info(
                        "event subscriber open types=%s session=%s team=%s",
                        ",".join(sorted(types or ())),
                        session,
                        team,
                    )
                    await _run(ws, sub, settings, subscriber)
                scope.cancel()  # the reader task, once our close is done or abandoned
    finally:
        await trio.aclose_forcefully(stream)


async def _accept(nursery: trio.Nursery, stream: trio.abc.Stream) -> WebSocketConnection | None:
    with trio.move_on_after(HANDSHAKE_TIMEOUT):
        try:
            request = await wrap_server_stream(
                nursery, stream, message_queue_size=INCOMING_QUEUE, max_message_size=INCOMING_MAX_MESSAGE
            )
            return await request.accept()
        except ConnectionClosed:
            return None
    return None


async def _run(ws: WebSocketConnection, sub: Subscription, settings: EventStream, subscriber: Subscriber) -> None:
    # Our close code, or None when the client closed first (trio-websocket has answered its close
    # frame already). Each task catches ConnectionClosed itself and ends the others: under trio's
    # strict exception groups, letting it escape would arrive as an ExceptionGroup.
    close: tuple[int, str] | None = (1000, "")

    async def send_events() -> None:
        nonlocal close
        while True:
            try:
                text = await sub.receive()
            except trio.EndOfChannel:  # hub closed: gateway shutdown
                close = (1001, "gateway shutting down")
                break
            try:
                await ws.send_message(text)
            except ConnectionClosed:
                close = None
                break
        nursery.cancel_scope.cancel()

    async def drain_client() -> None:
        nonlocal close
        try:
            while True:
                await ws.get_message()  # nothing a client says here is acted on
        except ConnectionClosed:
            close = None
        nursery.cancel_scope.cancel()

    async def keepalive() -> None:
        nonlocal close
        while True:
            await trio.sleep(settings.ping_interval_secs)
            # trio-websocket's ping() waits for its pong with no timeout of its own.
            with trio.move_on_after(settings.pong_timeout_secs) as pong_wait:
                try:
                    await ws.ping()
                except ConnectionClosed:
                    close = None
                    break
            if pong_wait.cancelled_caught:
                log.info("event subscriber: no pong within %gs", settings.pong_timeout_secs)
                close = (1011, "keepalive timeout")
                break
        nursery.cancel_scope.cancel()

    async with trio.open_nursery() as nursery:
        subscriber.attach(nursery.cancel_scope)
        nursery.start_soon(send_events)
        nursery.start_soon(drain_client)
        nursery.start_soon(keepalive)
    subscriber.attach(None)
    if subscriber.close is not None:
        close = subscriber.close
    if close is not None:
        with trio.move_on_after(CLOSE_TIMEOUT):
            await ws.aclose(*close)
