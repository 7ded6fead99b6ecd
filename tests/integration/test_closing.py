"""The tests' own TLS servers close their sockets at teardown, whatever the peer does
(tests/integration/closing.py): a peer that holds its connection without a word (a proxy that
has not yet relayed pingmon's close) must not leave a socket to the collector of a later test."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from pathlib import Path

import trustme

from tests.integration.conftest import eventually
from tests.integration.origin import serve_origin

ESTABLISHED = "01"  # /proc/net/tcp's states, as include/net/tcp_states.h numbers them
CLOSE_WAIT = "08"  # the peer closed its socket (its FIN came), this end has not


def tcp_state(connection: socket.socket) -> str | None:
    """The kernel's state of ``connection`` (IPv4, its two ports: the table lists every
    socket of the network namespace, and a local port may be reused toward another peer)."""
    ports = (connection.getsockname()[1], connection.getpeername()[1])
    for line in Path("/proc/net/tcp").read_text(encoding="ascii").splitlines()[1:]:
        fields = line.split()
        if tuple(int(end.rsplit(":", 1)[1], 16) for end in fields[1:3]) == ports:
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
    try:
        client.sendall(b"GET /healthz HTTP/1.1\r\nHost: pbx.internal\r\n\r\n")
        answer = b""
        while not answer.endswith(b'{"status": "ok"}'):
            received = client.recv(4096)
            assert received, f"the origin closed after {answer!r}"
            answer += received
    except BaseException:
        client.close()
        raise
    return client


async def test_a_tls_origin_closes_a_silent_clients_connection_at_teardown() -> None:
    ca = trustme.CA()
    with contextlib.ExitStack() as held:
        async with serve_origin(ca.issue_cert("pbx.internal")) as origin:
            client = held.enter_context(await asyncio.to_thread(silent_client, origin.url, ca))
            assert tcp_state(client) == ESTABLISHED
            assert len(origin.requests) == 1

        def the_origin_closed_it() -> bool:  # the client got its FIN: the origin's socket is gone
            return tcp_state(client) == CLOSE_WAIT

        await eventually(the_origin_closed_it, timeout=3)
