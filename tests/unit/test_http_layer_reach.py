"""The HTTP layer reads the daemon through its read model only: server.py and status.py
import no collaborator of the daemon and reach into nothing through one."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pingmon

ROOT = Path(pingmon.__file__).parent
HTTP_LAYER = ("server.py", "status.py")
# The daemon and what it owns: the HTTP layer sees them through readmodel.Snapshot.
COLLABORATORS = frozenset(
    {
        "pingmon.daemon",
        "pingmon.scheduler",
        "pingmon.backoff",
        "pingmon.metrics",
        "pingmon.config",
        "pingmon.webhooks.tracker",
    }
)
REACH = re.compile(r"\bdaemon\s*\.|\bDAEMON\b")


def imported(source: str) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            modules.add(node.module)
    return modules


def offenders(source: str) -> list[str]:
    found = sorted(imported(source) & COLLABORATORS)
    found += [line.strip() for line in source.splitlines() if REACH.search(line)]
    return found


def test_server_and_status_import_no_collaborator_of_the_daemon() -> None:
    for module in HTTP_LAYER:
        assert offenders((ROOT / module).read_text("utf-8")) == [], module


def test_the_check_finds_an_import_and_a_reach_through_the_daemon() -> None:
    source = (
        "from pingmon.daemon import Daemon\n"
        "def ready(request):\n"
        "    return request.app[DAEMON].store.get(name)\n"
        "next_run = daemon.scheduler.next_run(name)\n"
    )
    assert offenders(source) == [
        "pingmon.daemon",
        "return request.app[DAEMON].store.get(name)",
        "next_run = daemon.scheduler.next_run(name)",
    ]
