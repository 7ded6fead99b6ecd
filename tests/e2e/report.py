"""The figures the end-to-end tests measure, kept in the run's stash and printed at its end.

Under pytest-xdist the tests run in a worker process: the worker hands its figures over in
``workeroutput`` when it ends and the controller, which prints the summary, merges them.
Nothing here starts anything, so the top conftest can import it cheaply.
"""

from __future__ import annotations

from typing import Any, Final

import pytest

DELAYS: Final = pytest.StashKey[list[tuple[str, float]]]()
RESOLVED: Final = pytest.StashKey[list[tuple[str, float]]]()
NOTES: Final = pytest.StashKey[list[str]]()
WORKER_OUTPUT: Final = "pingmon_e2e"  # the key in an xdist worker's workeroutput


def hand_over(config: pytest.Config) -> None:
    """In an xdist worker, put this worker's figures in its ``workeroutput`` (plain lists);
    a no-op in a run without workers."""
    output: dict[str, Any] | None = getattr(config, "workeroutput", None)
    if output is None or not config.stash.get(NOTES, []):
        return
    output[WORKER_OUTPUT] = {
        "notes": config.stash[NOTES],
        "delays": [list(pair) for pair in config.stash.get(DELAYS, [])],
        "resolved": [list(pair) for pair in config.stash.get(RESOLVED, [])],
    }


def take_over(config: pytest.Config, workeroutput: dict[str, Any]) -> None:
    """In the xdist controller, add the figures one worker handed over to the stash."""
    figures = workeroutput.get(WORKER_OUTPUT)
    if not figures:
        return
    config.stash.setdefault(NOTES, []).extend(figures["notes"])
    for key, name in ((DELAYS, "delays"), (RESOLVED, "resolved")):
        config.stash.setdefault(key, []).extend((a, float(s)) for a, s in figures[name])


def write_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """The "pingmon end to end" section: nothing if no stack ever started."""
    notes = config.stash.get(NOTES, [])
    if not notes:
        return
    terminalreporter.section("pingmon end to end")
    for title, key in (("failure->alert", DELAYS), ("recovery->resolved", RESOLVED)):
        figures = ", ".join(
            f"{name} {seconds:.2f} s" for name, seconds in config.stash.get(key, [])
        )
        terminalreporter.write_line(f"e2e {title}: {figures or 'none measured'}")
    for note in notes:
        terminalreporter.write_line(note)
