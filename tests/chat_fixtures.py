"""A self-contained chat gateway for the tests: `ChatApp` under hypercorn's trio worker on
127.0.0.1, in front of the conformance mock HTTP upstream. Tests call it with the official
`openai` SDK (sync, in a worker thread), as applications would."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import attrs
import trio

from kt_trio.chat.app import ChatApp
from kt_trio.config import load_config_text
from kt_trio.governance.breaker import UpstreamHealth
from kt_trio.mocks.http import HttpMockBehaviour, MockHttpUpstream, open_mock_http_upstream, serve_asgi
from kt_trio.records import Record

CLIENT_KEY = "kt_gk_client_secret_do_not_forward"
# Every SDK call gives up after this long: the worker thread it blocks cannot be cancelled, so the
# test's own deadline abandons it (see `in_thread`) and this bound ends it.
SDK_TIMEOUT = 20.0
SECRETS = {"oa": "sk-openai-target", "az": "azure-target-key", "claude": "sk-ant-target", "emb": "sk-openai-target"}
T = TypeVar("T")


def chat_config(mock_url: str, chain: list[str], extra: str = "") -> str:
    return f"""
providers:
  targets:
    - id: oa
      provider: openai
      model: gpt-4o-mini
      base_url: {mock_url}/v1
    - id: az
      provider: azure-openai
      model: gpt-az
      base_url: {mock_url}
      deployment: dep-one
      api_version: "2024-10-21"
    - id: claude
      provider: anthropic
      model: claude-test
      base_url: {mock_url}
    - id: realtime
      provider: openai
      model: gpt-realtime
      base_url: ws://127.0.0.1:1/v1/realtime
    - id: emb
      provider: openai
      model: text-embedding-3-small
      base_url: {mock_url}/v1
policies:
  chain: [{", ".join(chain)}]
{extra}"""


@attrs.define
class ChatRig:
    url: str
    mock: MockHttpUpstream
    app: ChatApp
    records: list[tuple[str | None, Record]]

    def client(self, **kw: Any) -> Any:
        return openai_client(self.url, CLIENT_KEY, **kw)


def openai_client(base_url: str, api_key: str, **kw: Any) -> Any:
    """The official sync SDK pointed at `<base_url>/v1`: no retries, and a finite timeout."""
    import openai

    kw.setdefault("timeout", SDK_TIMEOUT)
    return openai.OpenAI(base_url=base_url + "/v1", api_key=api_key, max_retries=0, **kw)


@asynccontextmanager
async def chat_rig(
    behaviour: HttpMockBehaviour | None = None,
    *,
    chain: list[str] | None = None,
    extra: str = "",
    failure_threshold: int = 5,
) -> AsyncIterator[ChatRig]:
    chain = ["prompt-injection", "pii-detector", "safety-filter"] if chain is None else chain
    records: list[tuple[str | None, Record]] = []
    with trio.fail_after(30):
        async with open_mock_http_upstream(behaviour) as mock:
            config = load_config_text(chat_config(mock.url, chain, extra))
            app = ChatApp(
                config,
                secrets=SECRETS,
                health=UpstreamHealth(failure_threshold, 30.0),
                report=lambda sid, rec: records.append((sid, rec)),
            )
            try:
                async with serve_asgi(app) as url:
                    yield ChatRig(url, mock, app, records)
            finally:
                await app.aclose()


async def in_thread(fn: Callable[[], T]) -> T:
    """Runs a blocking SDK call on a worker thread. A deadline of the test abandons the thread
    (which then ends within `SDK_TIMEOUT`) instead of waiting for it, so the deadline can fire."""
    return await trio.to_thread.run_sync(fn, abandon_on_cancel=True)
