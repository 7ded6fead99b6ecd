"""A real forward proxy for the tests: Debian's tinyproxy on a free loopback port, with its own
configuration and log in a temporary folder, started and stopped by its PID (TOOLING.md 6)."""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from pathlib import Path

from tests.processes import Process, eventually, free_port
from tests.tools import require_tool


@dataclass
class Tinyproxy:
    """tinyproxy 1.11: forwards plain http requests (adding ``Via: 1.1 tinyproxy``) and
    tunnels https ones with CONNECT; with ``basic_auth`` it answers 407 to anyone else."""

    folder: Path
    basic_auth: tuple[str, str] | None = None
    port: int = 0
    process: Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.folder / "tinyproxy.log"

    def start(self) -> Tinyproxy:
        binary = require_tool("tinyproxy")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        lines = [
            f"Port {self.port}",
            "Listen 127.0.0.1",
            "Allow 127.0.0.1",
            f'PidFile "{self.folder / "tinyproxy.pid"}"',
            f'LogFile "{self.log}"',
            "LogLevel Connect",
            "MaxClients 16",
            "Timeout 10",
        ]
        if self.basic_auth is not None:
            lines.append("BasicAuth {} {}".format(*self.basic_auth))
        config = self.folder / "tinyproxy.conf"
        config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        command = [binary, "-d", "-c", str(config)]
        self.process = Process("tinyproxy", command, self.folder / "tinyproxy.out")
        self.process.start()
        eventually(lambda: _accepts(self.port), "tinyproxy listening", self.process.tail, 10)
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def requests(self) -> list[str]:
        """What the proxy was asked, in order: ``GET http://host:port/path`` for a forwarded
        request, ``CONNECT host:port`` for a tunnel."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return re.findall(r"Request \(file descriptor \d+\): (\S+ \S+)", text)


def _accepts(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0
