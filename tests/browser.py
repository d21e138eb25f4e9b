"""Headless Chromium driven over the DevTools protocol (CDP), for the console's browser tests.

No driver library: Chromium is started with `--remote-debugging-port=0`, writes the port it
chose and its browser endpoint's path to `DevToolsActivePort` in its profile directory, and we
speak CDP's JSON messages over a trio-websocket connection to that endpoint. One page target is
created and attached with `flatten: true`, so its commands travel on the same connection tagged
with a `sessionId`.

Chromium runs in a process group of its own (`start_new_session`), so the browser, its zygote,
renderers and GPU process all die together with one `killpg`, and its profile lives in a
temporary directory removed afterwards. Nothing of a test's browser outlives the test.

What the page reports as an error (an uncaught exception, `console.error`, a Content Security
Policy violation, a failed load) is collected in `Page.errors`, so a test can assert there was
none: a console that silently breaks in the browser would otherwise pass every DOM check that
does not happen to look at the broken part.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, open_websocket_url

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome-stable", "google-chrome")
# Chromium takes a second or two to start on an idle machine; on a loaded CI box much longer.
START_TIMEOUT = 60.0
COMMAND_TIMEOUT = 30.0
# A 1280x800 PNG screenshot is a few hundred KiB of base64; leave room for larger pages.
MAX_MESSAGE = 64 * 1024 * 1024
# Chromium's helpers die with the browser's process group; on a loaded machine that takes a moment.
GROUP_EXIT_TIMEOUT = 5.0
# Errors kept per page: enough to explain a failure, bounded however noisy the page is.
MAX_ERRORS = 100


def find_chromium() -> str | None:
    """The Chromium to drive: `$KT_CHROMIUM`, else the first of the usual names on PATH."""
    explicit = os.environ.get("KT_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).exists() else shutil.which(explicit)
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


class CdpError(Exception):
    """A CDP command failed, or the page threw while evaluating an expression."""


class _Connection:
    """One CDP WebSocket: commands by id, their answers matched up by a reader task."""

    def __init__(self, ws: WebSocketConnection) -> None:
        self._ws = ws
        self._ids = itertools.count(1)
        self._waiting: dict[int, tuple[trio.Event, list[dict[str, Any]]]] = {}
        self.pages: dict[str, Page] = {}
        self.closed = False

    async def send(self, method: str, params: dict[str, Any] | None = None, session_id: str | None = None) -> Any:
        call_id = next(self._ids)
        message: dict[str, Any] = {"id": call_id, "method": method, "params": params or {}}
        if session_id is not None:
            message["sessionId"] = session_id
        done = trio.Event()
        slot: list[dict[str, Any]] = []
        self._waiting[call_id] = (done, slot)
        try:
            await self._ws.send_message(json.dumps(message))
            with trio.fail_after(COMMAND_TIMEOUT):
                await done.wait()
        finally:
            self._waiting.pop(call_id, None)
        if not slot:
            raise CdpError(f"{method}: the browser connection closed")
        answer = slot[0]
        if "error" in answer:
            raise CdpError(f"{method}: {answer['error'].get('message')} {answer['error'].get('data', '')}".strip())
        return answer.get("result", {})

    async def read(self) -> None:
        try:
            while True:
                message = json.loads(await self._ws.get_message())
                if "id" in message:
                    waiting = self._waiting.get(message["id"])
                    if waiting is not None:
                        waiting[1].append(message)
                        waiting[0].set()
                elif "sessionId" in message and message["sessionId"] in self.pages:
                    self.pages[message["sessionId"]]._event(message.get("method", ""), message.get("params", {}))
        except ConnectionClosed:
            pass
        finally:
            self.closed = True
            for done, _ in self._waiting.values():
                done.set()


class Page:
    """One tab: evaluate JavaScript, wait for a condition, click, type, take a screenshot."""

    def __init__(self, connection: _Connection, session_id: str) -> None:
        self._connection = connection
        self._session_id = session_id
        self.errors: list[str] = []
        # The browser's process group and profile directory: gone once `open_browser` returns.
        self.process_group = 0
        self.profile = Path()

    async def send(self, method: str, **params: Any) -> Any:
        return await self._connection.send(method, params, self._session_id)

    def _event(self, method: str, params: dict[str, Any]) -> None:
        text = None
        if method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            text = details.get("exception", {}).get("description") or details.get("text")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            text = f"{entry.get('source')}: {entry.get('text')} {entry.get('url', '')}".strip()
        if text is not None and len(self.errors) < MAX_ERRORS:
            self.errors.append(text)

    async def navigate(self, url: str, timeout: float = 30.0) -> None:
        """Loads `url` and waits until the document has finished loading."""
        result = await self.send("Page.navigate", url=url)
        if result.get("errorText"):
            raise CdpError(f"navigating to {url}: {result['errorText']}")
        await self.wait_for(f"location.href === {json.dumps(url)} && document.readyState === 'complete'", timeout)

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises awaited), as JSON data."""
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise CdpError(details.get("exception", {}).get("description") or details.get("text", "exception"))
        return result.get("result", {}).get("value")

    async def wait_for(self, expression: str, timeout: float, what: str | None = None) -> Any:
        """Polls the DOM until `expression` is truthy; its value. Fails with `what` (or the
        expression) when `timeout` seconds pass first. This is the only way tests wait on the page."""
        value: Any = None
        with trio.move_on_after(timeout):
            while True:
                value = await self.evaluate(expression)
                if value:
                    return value
                await trio.sleep(0.02)  # the poll interval, not a wait for timing
        raise AssertionError(
            f"waited {timeout} s for {what or expression}; last value {value!r}; page errors: {self.errors}"
        )

    async def click(self, selector: str) -> None:
        """A real mouse click at the centre of the element (hit-tested: a covered or hidden
        element is not clicked, as a user could not click it either)."""
        box = await self.evaluate(
            f"(() => {{ const el = document.querySelector({json.dumps(selector)}); if (!el) return null;"
            " el.scrollIntoView({block: 'center'}); const r = el.getBoundingClientRect();"
            " return r.width && r.height ? [r.left + r.width / 2, r.top + r.height / 2] : null; })()"
        )
        if not box:
            raise CdpError(f"nothing visible to click at {selector!r}")
        x, y = box
        for kind in ("mousePressed", "mouseReleased"):
            await self.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    async def type(self, selector: str, text: str) -> None:
        """Focuses the field, empties it and types `text` as keyboard input would."""
        await self.evaluate(
            f"(() => {{ const el = document.querySelector({json.dumps(selector)}); el.focus(); el.select?.(); }})()"
        )
        await self.send("Input.insertText", text=text)

    async def screenshot(self, path: Path) -> Path:
        result = await self.send("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(result["data"]))
        return path


@asynccontextmanager
async def open_browser(*, width: int = 1280, height: int = 800) -> AsyncIterator[Page]:
    """A headless Chromium with one page of `width`x`height` CSS pixels; killed (its whole
    process group) and its profile removed on the way out. Raises `FileNotFoundError` when no
    Chromium can be found (the caller decides whether that is a skip)."""
    binary = find_chromium()
    if binary is None:
        raise FileNotFoundError("no Chromium found (tried $KT_CHROMIUM, " + ", ".join(CHROMIUM_NAMES) + ")")
    profile = tempfile.mkdtemp(prefix="kt_trio_chromium_")
    args = [
        binary,
        "--headless=new",
        "--remote-debugging-port=0",
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-gpu",
        "--disable-dev-shm-usage",  # containers often have a tiny /dev/shm
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-sync",
        "--disable-component-update",
        "--password-store=basic",
        "--use-mock-keychain",
        "--hide-scrollbars",
        "--mute-audio",
        "about:blank",
    ]
    if os.geteuid() == 0:
        args.insert(1, "--no-sandbox")  # Chromium's sandbox refuses to run as root
    proc = await trio.lowlevel.open_process(
        args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        endpoint = await _devtools_endpoint(Path(profile), proc)
        async with open_websocket_url(endpoint, max_message_size=MAX_MESSAGE, message_queue_size=64) as ws:
            connection = _Connection(ws)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(connection.read)
                target = await connection.send("Target.createTarget", {"url": "about:blank"})
                attached = await connection.send(
                    "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
                )
                page = Page(connection, attached["sessionId"])
                page.process_group, page.profile = proc.pid, Path(profile)
                connection.pages[attached["sessionId"]] = page
                for domain in ("Page", "Runtime", "Log"):
                    await page.send(f"{domain}.enable")
                await page.send(
                    "Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False
                )
                try:
                    yield page
                finally:
                    nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):  # reaped even when the test's deadline fired
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            await proc.wait()
            # The renderers and helpers die with the group; wait (bounded) until the kernel has
            # them all, so none writes into the profile while it is removed.
            with trio.move_on_after(GROUP_EXIT_TIMEOUT):
                while group_running(proc.pid):
                    await trio.sleep(0.02)
            shutil.rmtree(profile, ignore_errors=True)


def group_running(pgid: int) -> bool:
    """Whether any process of the group still runs. Zombies do not count: they are dead, and
    reaping them is init's business (some container inits take their time)."""
    proc = Path("/proc")
    if not proc.is_dir():  # not Linux: the kernel's answer, zombies included
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so split after it.
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            return True
    return False


async def _devtools_endpoint(profile: Path, proc: trio.Process) -> str:
    """`ws://127.0.0.1:PORT/devtools/browser/ID` from the `DevToolsActivePort` file Chromium
    writes once it listens (first line the port, second the path)."""
    port_file = profile / "DevToolsActivePort"
    with trio.move_on_after(START_TIMEOUT):
        while True:
            if proc.returncode is not None or proc.poll() is not None:
                raise RuntimeError(f"chromium exited with {proc.returncode} before listening")
            try:
                lines = port_file.read_text().split()
            except FileNotFoundError:
                lines = []
            if len(lines) >= 2:
                return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
            await trio.sleep(0.05)  # polling a file Chromium writes once; no event to wait on
    raise RuntimeError(f"chromium did not write {port_file} within {START_TIMEOUT} s")
