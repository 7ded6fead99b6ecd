"""For every test: no proxy from the machine's environment, so loopback servers are reached
directly unless a test sets a proxy itself (pingmon honours HTTP_PROXY & co. as curl does).

For the run: the whole suite (``pytest`` alone, or any directory) runs in pytest-xdist workers
(``-n auto --dist loadfile`` in pyproject's addopts), one per CPU up to MAX_WORKERS; a run of
named files or tests stays in one process, as readable as ever (``-n 0`` runs anything so).
The scheduler below hands each worker whole units: a test file (its module fixtures are made
once), or a whole directory of SHARED_STACKS, whose session fixtures (the e2e Prometheus +
Alertmanager, the built image) are made once per worker that runs them. (Not ``--dist
loadgroup`` with marks: pytest-xdist 3.8 loses its groups on pytest 9.2, xdist issue 1386.)
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest
from hypothesis import HealthCheck, settings

from tests.e2e.report import take_over, write_summary

PROXY_VARIABLES = tuple(
    name
    for base in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
    for name in (base, base.upper())
)

MAX_WORKERS: Final = 4  # past the longest group (the e2e stack) more workers gain nothing
TESTS: Final = Path(__file__).resolve().parent
SHARED_STACKS: Final = ("e2e", "image")  # directories whose tests share session fixtures


# Hypothesis without its wall-clock checks (no test asserts a wall-clock time): an example
# past the 200 ms deadline or slow data generation is the machine's load (two workers on two
# CPUs and the subprocesses they drive), not a failure. Loaded before any test module is
# imported, so each test's own @settings start from it; the properties are unchanged.
settings.register_profile("pingmon", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("pingmon")


@pytest.fixture(autouse=True)
def no_proxy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def the_collector_as_it_was() -> Iterator[None]:
    """A test that started a daemon (or tuned the collector) leaves the cyclic collector as it
    found it, its garbage collected: the daemon's ``settle`` (pingmon.heap) freezes what lives
    and raises the thresholds, which in this process would keep the test's garbage (an unclosed
    socket, with its ResourceWarning) for whichever later test next collects, and blame that
    one."""
    found = (gc.get_threshold(), gc.isenabled())
    yield
    if gc.get_freeze_count() or (gc.get_threshold(), gc.isenabled()) != found:
        gc.unfreeze()
        gc.collect()
        gc.set_threshold(*found[0])
        if found[1]:
            gc.enable()


def names_only_files_or_tests(config: pytest.Config) -> bool:
    """Whether the command line names test files or tests (``path::name``) and nothing else,
    i.e. no directory and no testpaths."""
    if config.args_source is not pytest.Config.ArgsSource.ARGS:
        return False
    return all(
        "::" in arg or Path(config.invocation_params.dir, arg).is_file() for arg in config.args
    )


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """How many workers ``-n auto`` starts: PYTEST_XDIST_AUTO_NUM_WORKERS if set; none (0: the
    tests run in this process) for named files or tests or on a single CPU; else one per CPU
    this process may use, at most MAX_WORKERS."""
    chosen = os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS")
    if chosen:
        return int(chosen)
    cpus = len(os.sched_getaffinity(0))
    if names_only_files_or_tests(config) or cpus < 2:
        return 0
    return min(cpus, MAX_WORKERS)


def work_unit(nodeid: str) -> str:
    """The unit of work a test belongs to (its worker runs the whole unit): its directory
    under tests/ if that is one of SHARED_STACKS, else its file. ``nodeid`` is pytest's,
    relative to the rootdir: ``tests/unit/test_x.py::test_y[1]``."""
    path = nodeid.split("::", 1)[0]
    parts = path.split("/")
    if len(parts) > 2 and parts[0] == "tests" and parts[1] in SHARED_STACKS:
        return "/".join(parts[:2])
    return path


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In an xdist worker: the SHARED_STACKS units first (the longest start at once, the many
    short files fill in after them), else in the order collected. Every worker collects the
    same, and the controller hands out units in that order (see pytest_xdist_make_scheduler)."""
    if hasattr(config, "workerinput"):
        stacks = {f"tests/{name}" for name in SHARED_STACKS}
        items.sort(key=lambda item: work_unit(item.nodeid) not in stacks)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadfile``, with each SHARED_STACKS directory one unit (work_unit)."""
    if config.getvalue("dist") != "loadfile":
        return None
    config.option.loadscopereorder = False  # in collection order: the stacks first
    from xdist.scheduler import LoadScopeScheduling

    class StackAndFileScheduling(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    return StackAndFileScheduling(config, log)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """In the xdist controller: take the end-to-end figures a worker measured."""
    take_over(node.config, getattr(node, "workeroutput", {}))


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    write_summary(terminalreporter, config)
