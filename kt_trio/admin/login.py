"""`POST /console/login` and `POST /console/logout`: the console's cookie (`kt_trio.admin.auth`).

Login takes an admin key as JSON `{"key": "kt_gk_..."}` or as a form field `key=...`, checks it
like any admin request, and answers `Set-Cookie: kt_console=<opaque token>; HttpOnly;
SameSite=Strict; Path=/; Max-Age=...` (plus `Secure` on https). The browser never sees the key
again; the gateway keeps only the token's hash, the key's name and the expiry. A login sent from
a page of another origin is refused (login CSRF: logging a victim in as the attacker).
Logout forgets the token and expires the cookie; it always succeeds.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from kt_trio.admin.auth import COOKIE_NAME, LOGINS_UNAVAILABLE, Admin, AdminAuth, cookie, header
from kt_trio.admin.host import AdminHost, record_action
from kt_trio.admin.router import AdminApp, AdminRequest, Answer
from kt_trio.events.messages import rfc3339
from kt_trio.providers.errors import HttpRefusal, error_body, refusal
from kt_trio.state.base import StateUnavailable
from kt_trio.wire.browser_headers import is_own_origin

LOGIN_PATH = "/console/login"
LOGOUT_PATH = "/console/logout"


def _set_cookie(value: str, max_age: int, secure: bool) -> tuple[bytes, bytes]:
    attributes = f"{COOKIE_NAME}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}"
    return (b"set-cookie", (attributes + ("; Secure" if secure else "")).encode())


def _check_origin(request: AdminRequest) -> None:
    origin = header(request.headers, "origin")
    if origin is not None and not is_own_origin(origin, header(request.headers, "host")):
        raise refusal(403, "permission_error", "origin_not_allowed", "log in from the console this gateway serves")


async def _presented_key(request: AdminRequest) -> str | None:
    content_type = (header(request.headers, "content-type") or "").split(";")[0].strip().lower()
    if content_type == "application/x-www-form-urlencoded":
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        values = form.get("key")
        return values[0] if values else None
    found = (await request.json_object()).get("key")
    return found if isinstance(found, str) else None


def add_login_routes(app: AdminApp, host: AdminHost, auth: AdminAuth) -> None:
    async def login(request: AdminRequest) -> Answer:
        _check_origin(request)
        verdict = await auth.key(await _presented_key(request))
        if not isinstance(verdict, Admin):
            status, err_type, code, message = verdict
            raise HttpRefusal(status, error_body(err_type, code, message))
        try:
            token, expires_at = await auth.logins.open(verdict.key.name)
        except StateUnavailable:
            raise HttpRefusal(503, error_body(*LOGINS_UNAVAILABLE[1:])) from None
        await record_action(host, verdict.key.name, "console_login", None, client_ip=request.client_ip)
        secure = request.scheme == "https"
        body = {"key_name": verdict.key.name, "expires_at": rfc3339(expires_at)}
        return Answer(200, body, (_set_cookie(token, int(auth.logins.ttl_secs), secure),))

    async def logout(request: AdminRequest) -> Answer:
        _check_origin(request)
        token = cookie(request.headers)
        try:
            name = await auth.logins.close(token) if token is not None else None
        except StateUnavailable:
            raise HttpRefusal(503, error_body(*LOGINS_UNAVAILABLE[1:])) from None
        if name is not None:
            await record_action(host, name, "console_logout", None)
        return Answer(200, {"logged_out": name is not None}, (_set_cookie("", 0, request.scheme == "https"),))

    app.register("POST", LOGIN_PATH, login, public=True)
    app.register("POST", LOGOUT_PATH, logout, public=True)
