"""``bench/vs_blackbox.py``'s floor of a scheduled check, run for real at a tiny rate: its GETs
are started by pingmon's scheduler (the runs' lag is what tells), the bare client's are not.
No time is asserted: the benchmark's figures are for a human to read."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.integration.echo_server import echo_server

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import vs_blackbox

RATE, INTERVAL = "20", "0.5"  # ten jobs, every half second


async def test_the_floor_is_the_bare_get_started_by_the_scheduler(tmp_path: Path) -> None:
    argv = ["--rate", RATE, "--interval", INTERVAL, "--warmup", "0.3", "--window", "0.6"]
    args = vs_blackbox.parse_args([*argv, "--pingmon", "unused"])
    variants = dict(vs_blackbox.variants(args))
    floor_name = next(name for name in variants if name.startswith("aiohttp-apscheduler-"))

    async with echo_server() as url:
        floor = await variants[floor_name](url, args, tmp_path)
        bare = await variants["aiohttp-asyncio"](url, args, tmp_path)

    assert floor.variant == floor_name
    assert floor.checks > 0
    assert floor.failures == 0
    assert floor.lag_p99_ms is not None  # only a scheduler's runs have a lag
    assert bare.checks > 0
    assert bare.lag_p99_ms is None
