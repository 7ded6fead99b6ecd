"""Child processes with log files, small HTTP calls, and polling that fails with the logs: for
the tests that drive real programs (Prometheus, Alertmanager, pingmon, the image)."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

import pytest

T = TypeVar("T")

POLL_SECONDS: Final = 0.15
STEP_TIMEOUT: Final = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def http_json(url: str, method: str = "GET", body: object = None, timeout: float = 5.0) -> Any:
    """Send a request and decode its JSON answer; HTTP errors raise urllib's HTTPError."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.load(response)


def eventually(
    condition: Callable[[], T | None],
    what: str,
    details: Callable[[], str] = lambda: "",
    timeout: float = STEP_TIMEOUT,
) -> T:
    """Poll until ``condition`` returns something truthy and return it, or fail saying what."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
        except (OSError, ValueError):  # not listening yet, or a half-written answer
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout:.0f} s\n{details()}", pytrace=False)
        time.sleep(POLL_SECONDS)


@dataclass
class Process:
    """A child process with its output in a log file; stopped by its own PID."""

    name: str
    command: list[str]
    log: Path
    env: dict[str, str] | None = None
    stdout: Path | None = None
    cwd: Path | None = None
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as err:
            out = self.stdout.open("wb") if self.stdout else err
            with out:
                self.popen = subprocess.Popen(
                    self.command,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err if self.stdout else subprocess.STDOUT,
                    env=self.env,
                    cwd=self.cwd,
                )

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, wait for the exit status; SIGKILL only if it does not exit in time."""
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout)
        return self.popen.returncode

    def tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        status = "running" if self.running else f"exited {self.popen and self.popen.poll()}"
        last = "\n".join(text.splitlines()[-lines:])
        return f"--- {self.name} ({status}), {self.log}:\n{last}"


def http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:
        return bool(response.status == 200)
