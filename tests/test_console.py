"""`/console`: the page and its files as served (headers, no inline code), and the page itself in a
real headless Chromium against a real gateway: log in with an admin key, see a live WebSocket
session appear within a second, watch its counters move, and close it with a chosen code that the
client then receives."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from trio_websocket import WebSocketConnection, open_websocket_url

from kt_trio.console.serve import ASSETS, CSP, PAGE
from kt_trio.events.messages import SystemEvent
from kt_trio.mocks.realtime import MockBehaviour
from tests.browser import Page, find_chromium, group_running, open_browser
from tests.conftest import running
from tests.helpers import bearer, closed_with, make_key

# The bar: a session opened by a client is on the page within one second.
SHOWN_WITHIN = 1.0
# Everything else the page does (login, a response's usage, a close) gets a generous deadline:
# the suite shares two cores with other work.
STEP = 10.0


# -- the files, over plain HTTP -------------------------------------------------------------------


class _InlineCode(HTMLParser):
    """Collects what a strict CSP would block: inline scripts, style attributes and blocks,
    event-handler attributes, and any resource not from this origin."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self.modules: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name, _ in attrs:
            if name.startswith("on") or name == "style":
                self.problems.append(f"<{tag} {name}=...>")
        if tag == "style":
            self.problems.append("<style> block")
        if tag == "script":
            self._in_script = True
            if not values.get("src"):
                self.problems.append("<script> without src")
            else:
                self.modules.append(str(values["src"]))
        for name in ("src", "href"):
            value = values.get(name)
            if value and re.match(r"^(https?:)?//", value):
                self.problems.append(f"<{tag} {name}={value}>: not this origin")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.problems.append("inline script text")


async def test_console_page_and_files_are_served_with_strict_headers(tmp_path: Path) -> None:
    async with running(state_dir=tmp_path) as gw, httpx.AsyncClient(base_url=gw.base_url) as http:
        for path in ("/console", "/console/"):
            page = await http.get(path)
            assert page.status_code == 200
            assert page.headers["content-type"] == "text/html; charset=utf-8"
            assert page.headers["content-security-policy"] == CSP
            assert "'unsafe-inline'" not in CSP and "'unsafe-eval'" not in CSP and "*" not in CSP
            assert page.headers["x-content-type-options"] == "nosniff"
            assert page.headers["cache-control"] == "no-store"
            assert page.headers["x-frame-options"] == "DENY"
        parser = _InlineCode()
        parser.feed(page.text)
        assert parser.problems == []
        assert parser.modules == ["/console/assets/app.js"]
        assert "<form" in page.text and "kt_gk_" not in page.text.replace("kt_gk_…", "")

        for name, content_type in ASSETS.items():
            asset = await http.get(f"/console/assets/{name}")
            assert asset.status_code == 200, name
            assert asset.headers["content-type"] == content_type.decode()
            assert asset.headers["x-content-type-options"] == "nosniff"
            assert asset.headers["content-security-policy"] == CSP
            assert asset.headers["cache-control"] == "no-cache"
            again = await http.get(f"/console/assets/{name}", headers={"if-none-match": asset.headers["etag"]})
            assert again.status_code == 304 and again.content == b""
        head = await http.head("/console/assets/app.js")
        assert head.status_code == 200 and head.content == b""
        assert int(head.headers["content-length"]) == len((await http.get("/console/assets/app.js")).content)

        for missing in ("/console/assets/nope.js", "/console/assets/", "/console/assets/../__init__.py"):
            assert (await http.get(missing)).status_code == 404, missing
        assert (await http.get("/console/assets/%2e%2e/serve.py")).status_code in (400, 404)
        # Other methods under /console are not the static files' (the login is the admin API's).
        assert (await http.post("/console", content=b"x")).status_code in (404, 405)


def test_every_console_file_is_listed_and_every_import_resolves() -> None:
    """A file added to assets but not to ASSETS would 404 in the browser; an import of a module
    that is not served would break the page only at run time."""
    folder = resources.files("kt_trio.console").joinpath("assets")
    shipped = {entry.name for entry in folder.iterdir() if entry.is_file()}
    assert shipped == set(ASSETS) | {PAGE}
    for name in ASSETS:
        if name.endswith(".js"):
            source = folder.joinpath(name).read_text()
            for imported in re.findall(r"""from\s+["']\./([^"']+)["']""", source):
                assert imported in ASSETS, f"{name} imports {imported}, which is not served"
            assert not re.search(r"\.innerHTML\s*=|\binsertAdjacentHTML\b|\beval\(", source), name


# -- the page in a browser -------------------------------------------------------------------------


def _chromium_or_skip() -> None:
    if find_chromium() is None:
        pytest.skip("no Chromium on this machine (apt-get install chromium; .ci/run installs it)")


def _row(session_id: str) -> str:
    return f'document.querySelector("tr[data-session=\\"{session_id}\\"]")'


def _cell_text(session_id: str, column: int) -> str:
    return f"{_row(session_id)}?.children[{column}]?.textContent"


async def _response(ws: WebSocketConnection) -> dict[str, Any]:
    await ws.send_message(json.dumps({"type": "response.create"}))
    while True:
        event = json.loads(await ws.get_message())
        if event["type"] == "response.done":
            return event  # type: ignore[no-any-return]


def _unexpected(errors: list[str]) -> list[str]:
    """Page errors other than the refusals the test provokes: the 401 of the first look at the
    session list before login (that is how the page learns it must show the login form) and the
    403 of a login with a key that is not an admin's."""
    expected = re.compile(r"^network: .* status of (401 .*/admin/sessions|403 .*/console/login)$")
    return [e for e in errors if not expected.match(e)]


async def _log_in(page: Page, base_url: str, key: str) -> None:
    await page.navigate(f"{base_url}/console")
    await page.wait_for("!document.querySelector('#login').hidden", STEP, "the login form")
    await page.type("#login-key", key)
    await page.click("#login-submit")
    await page.wait_for("!document.querySelector('#app').hidden", STEP, "the console after login")
    await page.wait_for("document.querySelector('#stream-status').textContent === 'live'", STEP, "the live stream")


async def test_console_shows_a_live_session_and_closes_it_with_the_chosen_code(tmp_path: Path) -> None:
    _chromium_or_skip()
    admin = make_key(tmp_path, "ops", scopes=["admin"])
    user = make_key(tmp_path, "app", team="payments")
    # The stream refuses anyone without credentials: the page's must be its login cookie.
    locked = "features:\n  websocket:\n    require_auth: true\n    tokens: [a-token-the-page-never-has]\n"
    async with (
        running(MockBehaviour(), state_dir=tmp_path, extra=locked) as gw,
        open_browser(width=1280, height=800) as page,
    ):
        # A key without the admin scope is refused on the form, and the key is not kept anywhere.
        await page.navigate(f"{gw.base_url}/console")
        await page.wait_for("!document.querySelector('#login').hidden", STEP, "the login form")
        await page.type("#login-key", user)
        await page.click("#login-submit")
        refusal = await page.wait_for("document.querySelector('#login-error').textContent", STEP, "the refusal")
        assert "admin" in refusal and user not in refusal
        assert await page.evaluate("document.querySelector('#app').hidden") is True

        await page.type("#login-key", admin)
        await page.click("#login-submit")
        await page.wait_for("!document.querySelector('#app').hidden", STEP, "the console after login")
        assert await page.evaluate("document.querySelector('#login-key').value") == ""
        # The cookie is HttpOnly: the page's scripts cannot read it.
        assert await page.evaluate("document.cookie") == ""
        await page.wait_for("document.querySelector('#stream-status').textContent === 'live'", STEP, "the stream")
        (subscriber,) = gw.gateway.subscribers.open
        assert not subscriber.anonymous and subscriber.key.name == "ops"

        async with open_websocket_url(gw.ws_url(model="gpt-realtime"), extra_headers=bearer(user)) as ws:
            (session,) = gw.gateway.sessions
            opened = trio.current_time()
            await page.wait_for(f"!!{_row(session.id)}", SHOWN_WITHIN, "the new session's row within one second")
            shown_after = trio.current_time() - opened
            print(f"session shown on the page {shown_after * 1000:.0f} ms after the client connected")
            cells = await page.evaluate(f"[...{_row(session.id)}.children].map(td => td.textContent)")
            assert cells[1:6] == ["/v1/realtime", "mock · gpt-realtime", "app", "payments", "127.0.0.1"]

            # Counters move: a response's usage reaches the row, the usage tables and the rate.
            done = await _response(ws)
            total = done["response"]["usage"]["total_tokens"]
            assert total > 0
            await page.wait_for(f"{_cell_text(session.id, 8)} === '{total}'", STEP, "the session's tokens")
            await page.wait_for(f"{_cell_text(session.id, 7)} !== '0 / 0'", STEP, "the session's message counts")
            await page.wait_for(
                "[...document.querySelectorAll('#usage-model td')].some(td => td.textContent === 'gpt-realtime')",
                STEP,
                "usage by model",
            )
            await page.wait_for(
                "[...document.querySelectorAll('#usage-team td')].some(td => td.textContent === 'payments')",
                STEP,
                "usage by team",
            )
            await page.wait_for("document.querySelector('#stat-rate').textContent !== '0.0'", STEP, "events/s")
            breakers = await page.evaluate("document.querySelector('#breakers').textContent")
            assert "mock" in breakers and "closed" in breakers

            # Close it from the page with a code of our choosing; the client gets exactly that.
            await page.click(f'tr[data-session="{session.id}"] button.danger')
            await page.wait_for("document.querySelector('#close-dialog').open", STEP, "the close dialog")
            await page.evaluate(
                "(() => { const s = document.querySelector('#close-code'); s.value = 'custom';"
                " s.dispatchEvent(new Event('change')); })()"
            )
            await page.type("#close-custom", "4000")
            await page.type("#close-reason", "closed from the console test")
            await page.screenshot(tmp_path / "console-close-dialog.png")
            await page.click("#close-confirm")
            with trio.fail_after(STEP):
                code, reason = await closed_with(ws)
            assert (code, reason) == (4000, "closed from the console test")

        await page.wait_for(f"!{_row(session.id)}", STEP, "the closed session's row to go")
        await page.wait_for(
            "document.querySelector('#closed').textContent.includes('4000')", STEP, "the close among recent ones"
        )
        await page.wait_for(
            "document.querySelector('#feed').textContent.includes('session close')", STEP, "the admin action"
        )
        shot = await page.screenshot(tmp_path / "console.png")
        assert shot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") and shot.stat().st_size > 10_000
        assert _unexpected(page.errors) == []
    # Nothing of the browser outlives the test: its process group is gone, its profile removed.
    assert not group_running(page.process_group)
    assert not page.profile.exists()


async def test_console_reconnects_reports_what_it_missed_and_logs_out(tmp_path: Path) -> None:
    _chromium_or_skip()
    admin = make_key(tmp_path, "ops", scopes=["admin"])
    # One slot per subscriber: a burst published without a checkpoint overflows it at once.
    one_slot = "features:\n  websocket:\n    channel_capacity: 1\n"
    async with running(state_dir=tmp_path, extra=one_slot) as gw, open_browser() as page:
        await _log_in(page, gw.base_url, admin)
        (subscriber,) = gw.gateway.subscribers.open
        subscriber.end(1001, "test drops the stream")
        await page.wait_for(
            "document.querySelector('#feed').textContent.includes('stream reconnected')", STEP, "the gap noted"
        )
        await page.wait_for("document.querySelector('#stream-status').textContent === 'live'", STEP, "live again")
        assert len(gw.gateway.subscribers.open) == 1

        # 50 system events in one go: the page's ring keeps the newest, then it is told it lagged.
        for n in range(50):
            gw.gateway.hub.publish(None, SystemEvent("config_reloaded", {"trigger": "test", "n": n}))
        banner = await page.wait_for(
            "!document.querySelector('#banner').hidden && document.querySelector('#banner').textContent",
            STEP,
            "the lagged banner",
        )
        assert "dropped 49 event(s)" in banner
        await page.wait_for(
            "document.querySelector('#feed').textContent.includes('49 events dropped')", STEP, "the lagged entry"
        )
        await page.wait_for(
            "document.querySelector('#feed').textContent.includes('n=49')", STEP, "the newest event kept"
        )
        assert "n=48" not in await page.evaluate("document.querySelector('#feed').textContent")
        await page.screenshot(tmp_path / "console-lagged.png")

        # Logging out forgets the login: the page asks for a key again and its cookie opens nothing.
        await page.click("#logout")
        await page.wait_for("!document.querySelector('#login').hidden", STEP, "the login form again")
        assert await page.evaluate("fetch('/admin/sessions').then(r => r.status)") == 401
        with trio.fail_after(STEP):  # the page closed its stream
            while gw.gateway.subscribers.open:
                await trio.sleep(0.02)
        assert _unexpected(page.errors) == []
