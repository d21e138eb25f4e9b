"""TLS on the listener (issue 13, DESIGN.md): `wss://` and `https://` on one port, with `trustme`
certificates; a client that fails the TLS handshake never disturbs another open session."""

from __future__ import annotations

import re
import signal
import ssl
import sys
from pathlib import Path

import httpx
import pytest
import trio
import trustme
from trio_websocket import open_websocket_url

from conformance.mock_upstream import MockBehaviour
from tests.conftest import running, serve_process


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


def server_files(ca: trustme.CA, where: Path) -> tuple[Path, Path]:
    cert = ca.issue_cert("127.0.0.1", "localhost")
    certfile, keyfile = where / "gateway.pem", where / "gateway.key"
    certfile.write_bytes(b"".join(p.bytes() for p in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(str(keyfile))
    return certfile, keyfile


def trusting(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


async def test_wss_and_https_on_one_port_and_failed_handshakes_disturb_no_one(ca: trustme.CA, tmp_path: Path) -> None:
    certfile, keyfile = server_files(ca, tmp_path)
    tls = f"  tls:\n    certfile: {certfile}\n    keyfile: {keyfile}\n"
    async with running(MockBehaviour(mode="echo"), gateway_extra=tls) as gw:
        ctx = trusting(ca)
        async with open_websocket_url(f"wss://127.0.0.1:{gw.port}/v1/realtime", ssl_context=ctx) as ws:
            await ws.send_message("over tls")
            assert await ws.get_message() == "over tls"
            # Plain HTTP to the TLS port: that connection fails, alone.
            plain = await trio.open_tcp_stream("127.0.0.1", gw.port)
            await plain.send_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            try:
                assert b"HTTP/1.1 200" not in await plain.receive_some(4096)
            except trio.BrokenResourceError:
                pass
            await plain.aclose()
            # A client that does not trust our certificate gives up during the handshake.
            with pytest.raises(trio.BrokenResourceError) as refused:
                await trio.SSLStream(
                    await trio.open_tcp_stream("127.0.0.1", gw.port),
                    ssl.create_default_context(),
                    server_hostname="127.0.0.1",
                ).do_handshake()
            assert isinstance(refused.value.__cause__, ssl.SSLCertVerificationError)
            await ws.send_message("still here")
            assert await ws.get_message() == "still here"
            async with httpx.AsyncClient(verify=ctx) as client:
                resp = await client.get(f"https://127.0.0.1:{gw.port}/healthz")
            assert resp.status_code == 200 and resp.json() == {"status": "ok"}
            async with open_websocket_url(f"wss://127.0.0.1:{gw.port}/ws/events", ssl_context=ctx) as events:
                assert events.is_client
            await ws.send_message("and still")
            assert await ws.get_message() == "and still"


async def test_client_ca_requires_a_client_certificate(ca: trustme.CA, tmp_path: Path) -> None:
    certfile, keyfile = server_files(ca, tmp_path)
    client_ca = trustme.CA()
    cafile = tmp_path / "clients.pem"
    client_ca.cert_pem.write_to_path(str(cafile))
    tls = f"  tls:\n    certfile: {certfile}\n    keyfile: {keyfile}\n    client_ca: {cafile}\n"
    async with running(MockBehaviour(mode="echo"), gateway_extra=tls) as gw:
        url = f"wss://127.0.0.1:{gw.port}/v1/realtime"
        # Without a client certificate: under TLS 1.3 the client's side of the handshake ends
        # first; the gateway's refusal shows on the first read. No answer comes, only the end.
        bare = trio.SSLStream(
            await trio.open_tcp_stream("127.0.0.1", gw.port), trusting(ca), server_hostname="127.0.0.1"
        )
        try:
            await bare.do_handshake()
            await bare.send_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            assert await bare.receive_some(4096) == b""
        except trio.BrokenResourceError:
            pass
        ctx = trusting(ca)
        client_ca.issue_cert("client.example").configure_cert(ctx)
        async with open_websocket_url(url, ssl_context=ctx) as ws:
            await ws.send_message("with a certificate")
            assert await ws.get_message() == "with a certificate"


async def test_serve_certfile_and_keyfile(ca: trustme.CA, tmp_path: Path) -> None:
    certfile, keyfile = server_files(ca, tmp_path)
    args = ("--port", "0", "--certfile", str(certfile), "--keyfile", str(keyfile))
    async with serve_process(*args, ready=b"try it:", cwd=tmp_path) as (proc, out):
        url = re.search(rb"connect to:\s+(\S+)", out).group(1).decode()
        assert url.startswith("wss://")
        with trio.fail_after(30):
            async with open_websocket_url(url, ssl_context=trusting(ca)) as ws:
                assert b"session.created" in (await ws.get_message()).encode()
        proc.send_signal(signal.SIGTERM)
        with trio.fail_after(15):
            assert await proc.wait() == 0


async def test_serve_with_a_missing_keyfile_is_a_config_error(tmp_path: Path) -> None:
    result = await trio.run_process(
        [*serve_argv(), "--certfile", str(tmp_path / "nope.pem"), "--keyfile", str(tmp_path / "nope.key")],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
    assert result.returncode == 2
    assert b"nope.pem" in result.stderr and b"Traceback" not in result.stderr


def serve_argv() -> list[str]:
    return [sys.executable, "-m", "kt_trio", "serve", "--port", "0"]
