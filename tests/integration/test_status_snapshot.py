"""/status is written from one snapshot: a result and a 429 that land while the document is
built a slice at a time show in all of it or in none of it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from pingmon.errors import ErrorClass
from pingmon.results import CheckResult
from pingmon.status import TARGETS_PER_SLICE, StatusPages
from tests.integration.conftest import ConfigWriter, StartDaemon, ninepic_target

TARGETS = 3 * TARGETS_PER_SLICE  # three slices, two turns of the event loop between them
TURNS = 12  # landing points tried: before the build, during it, after it


async def test_a_result_and_a_429_during_a_status_build_show_in_all_of_it_or_none(
    config_writer: ConfigWriter, start_daemon: StartDaemon
) -> None:
    names = [f"t{i}" for i in range(TARGETS)]
    config = config_writer.load([ninepic_target(n, interval="1h", timeout="1s") for n in names])
    daemon = (await start_daemon(config)).daemon
    daemon.scheduler.pause()  # no check of its own changes anything meanwhile
    last = daemon.store.get(names[-1])
    assert last is not None
    credential = last.info.credential
    landed_mid_build = 0
    for turns in range(TURNS):
        build = asyncio.ensure_future(StatusPages(daemon).everything())
        for _ in range(turns):
            await asyncio.sleep(0)
        building = not build.done()
        detail = f"recorded after {turns} turns"
        daemon.store.record(
            CheckResult(names[-1], "ninepic", ErrorClass.RATE_LIMITED, 429, 0.1, 1, detail, 0.0)
        )
        daemon.gate.on_rate_limited(credential, "60")
        entries: list[dict[str, Any]] = json.loads(b"".join(await build))["targets"]
        daemon.gate.on_success(credential)
        backoffs = {entry["backoff_seconds"] for entry in entries}
        assert len(backoffs) == 1, f"after {turns} turns: {sorted(backoffs)}"
        shown = entries[-1]["detail"] == detail
        assert shown == (backoffs.pop() > 0), f"after {turns} turns"
        landed_mid_build += building and not shown
    assert landed_mid_build > 0  # the test did land changes while a document was written
