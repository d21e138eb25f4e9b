"""Several policy packs in one gateway (issue 7): loading, and keys bound to packs through a live gateway."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import trio
from trio_websocket import open_websocket_url

from kt_trio.config import ConfigError, load_config_text
from kt_trio.config.packs import gateway_wide_differences, load_packs, with_gateway_settings_of
from kt_trio.mocks.realtime import MockBehaviour
from tests.conftest import running
from tests.helpers import bearer, make_key, rejected

PHONE = "call me at 415-555-0132"

# The second pack: no policies at all, its own target (a path of its own on the mock, so the
# test can tell which pack's target a session reached), its own chat model.
OPEN_PACK = """\
pack: {name: open}
providers:
  targets:
    - id: open-rt
      provider: openai
      model: gpt-realtime
      base_url: {mock}/open/v1/realtime
    - id: open-chat
      provider: openai
      model: open-chat-model
      base_url: http://127.0.0.1:9/v1
policies:
  chain: []
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def pack_yaml(name: str, chain: str = "[]", extra: str = "") -> str:
    return (
        f"pack: {{name: {name}}}\n"
        "providers:\n  targets:\n    - {id: t, provider: openai, model: m, base_url: 'ws://127.0.0.1:9/v1/realtime'}\n"
        f"policies:\n  chain: {chain}\n{extra}"
    )


# -- loading ---------------------------------------------------------------------------------


def test_a_directory_is_its_packs_in_name_order_and_the_first_is_the_default(tmp_path: Path) -> None:
    write(tmp_path / "20-open.yaml", pack_yaml("open"))
    write(tmp_path / "10-strict.yml", pack_yaml("strict", "[pii-detector]"))
    write(tmp_path / "README.md", "not a config")
    packs = load_packs([tmp_path])
    assert [p.pack.name for p in packs] == ["strict", "open"]
    assert packs[0].policies.chain == ("pii-detector",)


def test_repeated_files_keep_their_order_and_disabled_packs_are_left_out(tmp_path: Path) -> None:
    a = write(tmp_path / "a.yaml", pack_yaml("a"))
    b = write(tmp_path / "b.yaml", pack_yaml("b"))
    off = write(tmp_path / "c.yaml", pack_yaml("off").replace("{name: off}", "{name: off, enabled: false}"))
    assert [p.pack.name for p in load_packs([b, off, a])] == ["b", "a"]


def test_two_packs_with_one_name_is_an_error_at_the_second_name(tmp_path: Path) -> None:
    first = write(tmp_path / "one.yaml", pack_yaml("same"))
    second = write(tmp_path / "two.yaml", "\n" + pack_yaml("same"))
    with pytest.raises(ConfigError) as info:
        load_packs([first, second])
    (issue,) = info.value.issues
    assert (issue.file, issue.line, issue.path) == (str(second), 2, "pack.name")
    assert str(first) in issue.message


def test_errors_of_every_file_are_reported_together(tmp_path: Path) -> None:
    bad1 = write(tmp_path / "bad1.yaml", pack_yaml("x").replace("chain:", "chian:"))
    bad2 = write(tmp_path / "bad2.yaml", pack_yaml("y", "[no-such-policy]"))
    with pytest.raises(ConfigError) as info:
        load_packs([bad1, bad2])
    assert {i.file for i in info.value.issues} == {str(bad1), str(bad2)}


def test_an_empty_directory_and_all_packs_disabled_are_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no config files"):
        load_packs([tmp_path])
    write(tmp_path / "off.yaml", pack_yaml("off").replace("{name: off}", "{name: off, enabled: false}"))
    with pytest.raises(ConfigError, match="every pack is disabled"):
        load_packs([tmp_path])


def test_gateway_wide_settings_come_from_the_default_pack() -> None:
    default = load_config_text(pack_yaml("a", extra="gateway:\n  shutdown_timeout_secs: 3\n"))
    other = load_config_text(
        pack_yaml("b", extra="gateway:\n  shutdown_timeout_secs: 7\nfeatures:\n  websocket:\n    enabled: false\n")
    )
    assert gateway_wide_differences(default, other) == ["gateway", "features"]
    merged = with_gateway_settings_of(default, other)
    assert merged.gateway.shutdown_timeout_secs == 3 and merged.features == default.features
    assert merged.pack.name == "b" and merged.providers.targets == other.providers.targets


# -- a live gateway with two packs -----------------------------------------------------------


async def test_keys_bound_to_two_packs_get_each_packs_chain_and_targets(tmp_path: Path) -> None:
    strict = make_key(tmp_path, "strict-app", pack="test")  # the default pack, named by name
    open_ = make_key(tmp_path, "open-app", pack="open")
    lost = make_key(tmp_path, "lost-app", pack="retired")
    async with running(
        MockBehaviour(mode="echo"),
        state_dir=tmp_path,
        chain=["pii-detector"],
        packs=[OPEN_PACK],
        extra="pack: {name: test}\n",
    ) as gw:
        assert list(gw.gateway.packs) == ["test", "open"]
        replies = {}
        for who, key in (("strict", strict), ("open", open_), ("anonymous", None)):
            headers = bearer(key) if key else []
            async with open_websocket_url(gw.ws_url(), extra_headers=headers) as ws:
                await ws.send_message(json.dumps({"type": "conversation.item.create", "item": {"content": PHONE}}))
                replies[who] = json.loads(await ws.get_message())
        paths = [c.path for c in gw.mock.connections]
        assert paths == ["/v1/realtime", "/open/v1/realtime", "/v1/realtime"]
        got = [json.loads(c.messages[0])["item"]["content"] for c in gw.mock.connections]
        assert got == ["call me at [REDACTED:PHONE]", PHONE, "call me at [REDACTED:PHONE]"]
        assert replies["open"]["item"]["content"] == PHONE
        assert [s.target for s in gw.gateway.recent_summaries] == ["mock", "open-rt", "mock"]

        refused = await rejected(gw.ws_url(), bearer(lost))
        assert refused.status_code == 403
        assert json.loads(refused.body)["error"]["code"] == "unknown_pack"

        async with httpx.AsyncClient(base_url=gw.base_url) as http:
            models = [m["id"] for m in (await http.get("/v1/models", headers=dict(bearer(open_)))).json()["data"]]
            assert models == ["open-chat-model"]
            default_models = (await http.get("/v1/models")).json()["data"]
            assert "open-chat-model" not in [m["id"] for m in default_models]
            lost_chat = await http.get("/v1/models", headers=dict(bearer(lost)))
            assert lost_chat.status_code == 403 and lost_chat.json()["error"]["code"] == "unknown_pack"


async def test_each_pack_has_its_own_breakers(tmp_path: Path) -> None:
    # The second pack's realtime target is a port nothing listens on; one failure opens its breaker.
    dead_pack = OPEN_PACK.replace("{mock}/open/v1/realtime", "ws://127.0.0.1:9/v1/realtime").replace(
        "providers:\n", "providers:\n  circuit_breaker: {failure_threshold: 1}\n"
    )
    open_ = make_key(tmp_path, "open-app", pack="open")
    async with running(MockBehaviour(mode="echo"), state_dir=tmp_path, packs=[dead_pack]) as gw:
        assert (await rejected(gw.ws_url(), bearer(open_))).status_code == 502
        assert (await rejected(gw.ws_url(), bearer(open_))).status_code == 503  # its breaker opened
        async with open_websocket_url(gw.ws_url()) as ws:  # the default pack is untouched
            await ws.send_message("hi")
            assert await ws.get_message() == "hi"
        assert gw.gateway.packs["open"].health.state("open-rt") == "open"
        assert gw.gateway.health.state("mock") == "closed"
        with trio.fail_after(5):
            await gw.gateway.wait_sessions(lambda n: n == 0)
