"""The tests' own TLS servers close their sockets at teardown, whatever the peer does
(tests/integration/closing.py): a peer that holds its connection without a word (a proxy that
has not yet relayed pingmon's close) must not leave a socket to the collector of a later test."""

from __future__ import annotations

import asyncio
import socket
import ssl
from pathlib import Path

import trustme

from tests.integration.conftest import eventually
from tests.integration.origin import serve_origin

ESTABLISHED = "01"  # /proc/net/tcp's states, as include/net/tcp_states.h numbers them
CLOSE_WAIT = "08"  # the peer closed its socket (its FIN came), this end has not


def tcp_state(local_port: int) -> str | None:
    """The kernel's state of this process's IPv4 TCP socket bound to ``local_port``."""
    for line in Path("/proc/net/tcp").read_text(encoding="ascii").splitlines()[1:]:
        fields = line.split()
        if int(fields[1].rsplit(":", 1)[1], 16) == local_port:
            return fields[3]
    return None


def silent_client(url: str, ca: trustme.CA) -> ssl.SSLSocket:
    """A TLS client that sends one request, reads its answer and then holds the connection
    without reading or closing: it never answers the server's close_notify."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    host, port = url.removeprefix("https://").split(":")
    client = context.wrap_socket(
        socket.create_connection((host, int(port)), timeout=5), server_hostname="pbx.internal"
    )
    client.sendall(b"GET /healthz HTTP/1.1\r\nHost: pbx.internal\r\n\r\n")
    answer = b""
    while not answer.endswith(b'{"status": "ok"}'):
        answer += client.recv(4096)
    return client


async def test_a_tls_origin_closes_a_silent_clients_connection_at_teardown() -> None:
    ca = trustme.CA()
    async with serve_origin(ca.issue_cert("pbx.internal")) as origin:
        client = await asyncio.to_thread(silent_client, origin.url, ca)
        local_port = client.getsockname()[1]
        assert tcp_state(local_port) == ESTABLISHED
        assert len(origin.requests) == 1
    try:

        def server_closed() -> bool:
            return tcp_state(local_port) == CLOSE_WAIT

        await eventually(server_closed, timeout=3)
    finally:
        client.close()
