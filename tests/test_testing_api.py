"""`kt_trio.testing`, the API the README offers users for their own tests."""

from __future__ import annotations

import json

import trio
from trio_websocket import open_websocket_url

from kt_trio.mocks.realtime import MockBehaviour
from kt_trio.testing import open_gateway

# Each test as a whole: far above what it needs, so a lost event fails it instead of hanging.
DEADLINE = 30


async def test_open_gateway_demo_config_round_trip() -> None:
    with trio.fail_after(DEADLINE):
        async with open_gateway(behaviour=MockBehaviour(text="Hello there")) as gw:
            async with open_websocket_url(gw.ws_url("/v1/realtime", model="gpt-realtime")) as ws:
                assert json.loads(await ws.get_message())["type"] == "session.created"
                await ws.send_message(json.dumps({"type": "response.create"}))
                text = ""
                while (event := json.loads(await ws.get_message()))["type"] != "response.done":
                    if event["type"] == "response.output_text.delta":
                        text += event["delta"]
            assert text == "Hello there"
            assert gw.mock is not None and gw.mock.connections[0].path.startswith("/v1/realtime")


async def test_open_gateway_points_a_users_config_at_the_mock() -> None:
    config = """
providers:
  targets:
    - id: prod
      provider: openai
      model: gpt-realtime
      base_url: wss://api.openai.com/v1/realtime
policies:
  chain: [pii-detector]
"""
    with trio.fail_after(DEADLINE):
        async with open_gateway(config) as gw:
            async with open_websocket_url(gw.ws_url(model="gpt-realtime")) as ws:
                await ws.get_message()
                await ws.send_message(
                    json.dumps(
                        {
                            "type": "conversation.item.create",
                            "item": {
                                "type": "message",
                                "role": "user",
                                "content": [{"type": "input_text", "text": "mail me at a.b@example.com"}],
                            },
                        }
                    )
                )
                await ws.get_message()
            received = gw.mock.connections[0].messages[0]
            assert "[REDACTED:EMAIL]" in received and "a.b@example.com" not in received
