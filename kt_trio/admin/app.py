"""`build_admin`: the admin app with every built-in route, for a gateway (`AdminHost`)."""

from __future__ import annotations

from kt_trio.admin.auth import AdminAuth
from kt_trio.admin.config_view import add_config_routes
from kt_trio.admin.host import AdminHost
from kt_trio.admin.keys import add_key_routes
from kt_trio.admin.login import add_login_routes
from kt_trio.admin.router import AdminApp
from kt_trio.admin.sessions import add_session_routes
from kt_trio.admin.siblings import Siblings
from kt_trio.keys.auth import KeyDecision

_NO_STORE = KeyDecision(False, 503, "the key store is not open")


def build_admin(host: AdminHost) -> AdminApp:
    """The admin app for `host`, with every built-in route. The key store is looked up on each
    request: the gateway opens it only once it serves."""

    async def check_key(presented: str, scope: str) -> KeyDecision:
        keys = host.keys
        return _NO_STORE if keys is None else await keys.authenticate(presented, scope=scope)

    async def check_name(name: str, scope: str) -> KeyDecision:
        keys = host.keys
        return _NO_STORE if keys is None else await keys.check_name(name, scope=scope)

    logins = None
    if getattr(host.state, "backend", None) == "redis":  # logins shared by every worker and instance
        from kt_trio.admin.shared_logins import RedisLogins  # coredis only when it is used

        logins = RedisLogins(host.state.link)  # type: ignore[attr-defined]
    auth = AdminAuth(check_key, check_name, logins)
    app = AdminApp(auth, Siblings.from_env())
    add_login_routes(app, host, auth)
    add_session_routes(app, host, app.siblings)
    add_key_routes(app, host)
    add_config_routes(app, host)
    return app
