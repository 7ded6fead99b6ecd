"""Concurrent callers share one run of a computation; a finished run is not reused."""

from __future__ import annotations

import asyncio

import pytest

from pingmon.singleflight import SingleFlight


class Render:
    """A computation that runs until released, counting its runs by key."""

    def __init__(self) -> None:
        self.runs: list[str] = []
        self.release = asyncio.Event()

    async def __call__(self, key: str) -> str:
        self.runs.append(key)
        await self.release.wait()
        return f"{key}#{len(self.runs)}"


async def test_callers_during_a_run_share_it_and_its_result() -> None:
    render = Render()
    flight: SingleFlight[str, str] = SingleFlight(render)
    callers = [asyncio.create_task(flight("text")) for _ in range(5)]
    await asyncio.sleep(0)
    assert flight.waiting("text") == 5
    render.release.set()
    assert await asyncio.gather(*callers) == ["text#1"] * 5
    assert render.runs == ["text"]
    assert flight.runs == 1
    assert flight.waiting("text") == 0


async def test_each_key_runs_on_its_own() -> None:
    render = Render()
    flight: SingleFlight[str, str] = SingleFlight(render)
    callers = [asyncio.create_task(flight(key)) for key in ("text", "om", "text", "om")]
    await asyncio.sleep(0)
    render.release.set()
    await asyncio.gather(*callers)
    assert sorted(render.runs) == ["om", "text"]


async def test_a_call_after_a_run_finished_runs_again() -> None:
    render = Render()
    render.release.set()
    flight: SingleFlight[str, str] = SingleFlight(render)
    assert await flight("text") == "text#1"
    assert await flight("text") == "text#2"


async def test_a_failure_reaches_every_caller_of_its_run() -> None:
    async def broken(key: str) -> str:
        await asyncio.sleep(0)
        raise ValueError(key)

    flight: SingleFlight[str, str] = SingleFlight(broken)
    results = await asyncio.gather(*(flight("k") for _ in range(3)), return_exceptions=True)
    assert [type(r) for r in results] == [ValueError] * 3
    assert flight.runs == 1


async def test_a_caller_that_goes_away_does_not_cancel_the_run_of_the_others() -> None:
    render = Render()
    flight: SingleFlight[str, str] = SingleFlight(render)
    leaving = asyncio.create_task(flight("text"))
    staying = asyncio.create_task(flight("text"))
    await asyncio.sleep(0)
    leaving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leaving
    render.release.set()
    assert await staying == "text#1"


class Costly:
    """A computation that takes ``cost`` seconds of a fake clock."""

    def __init__(self, cost: float) -> None:
        self.now = 100.0
        self.cost = cost
        self.runs = 0

    def clock(self) -> float:
        return self.now

    async def __call__(self, key: str) -> int:
        self.runs += 1
        self.now += self.cost
        return self.runs


async def test_under_sustained_demand_a_result_is_reused_for_reuse_times_its_cost() -> None:
    costly = Costly(cost=0.1)
    flight: SingleFlight[str, int] = SingleFlight(costly, reuse=4.0, clock=costly.clock)
    assert await flight("k") == 1  # 100.0-100.1, after a quiet moment: not kept
    assert not flight.reusable("k")
    assert await flight("k") == 2  # 100.1-100.2, right after the first: kept until 100.6
    costly.now = 100.55
    assert flight.reusable("k")
    assert await flight("k") == 2
    costly.now = 100.6
    assert not flight.reusable("k")
    assert await flight("k") == 3


async def test_a_call_after_a_quiet_moment_and_the_one_right_after_are_fresh() -> None:
    """A client that changes something and looks again sees its change."""
    costly = Costly(cost=0.1)
    flight: SingleFlight[str, int] = SingleFlight(costly, reuse=4.0, clock=costly.clock)
    await flight("k")
    costly.now += 10.0  # quiet
    assert await flight("k") == 2
    assert not flight.reusable("k")


async def test_forget_drops_what_is_kept() -> None:
    costly = Costly(cost=0.1)
    flight: SingleFlight[str, int] = SingleFlight(costly, reuse=4.0, clock=costly.clock)
    await flight("k")
    await flight("k")
    assert flight.reusable("k")
    flight.forget()
    assert not flight.reusable("k")
    assert await flight("k") == 3


async def test_without_reuse_every_call_after_a_run_runs_again() -> None:
    costly = Costly(cost=0.1)
    flight: SingleFlight[str, int] = SingleFlight(costly, clock=costly.clock)
    assert [await flight("k") for _ in range(3)] == [1, 2, 3]
    assert not flight.reusable("k")


async def test_a_slow_result_is_never_reused_past_max_reuse_seconds() -> None:
    """A render of seconds under sustained scraping: Prometheus's next scrape, seconds later,
    must get fresh samples, not the same ones again."""
    costly = Costly(cost=5.0)
    flight: SingleFlight[str, int] = SingleFlight(
        costly, reuse=9.0, clock=costly.clock, max_reuse_seconds=1.0
    )
    await flight("k")  # 100-105
    costly.now += 10.0  # a scrape 10 s later: sustained (within 9 x 5 s), 115-120
    assert await flight("k") == 2
    costly.now += 0.9
    assert await flight("k") == 2  # a flood right after still shares it
    costly.now += 0.2  # 1.1 s after it was made
    assert not flight.reusable("k")
    assert await flight("k") == 3


async def test_after_forget_a_caller_gets_a_run_that_began_after_it() -> None:
    """A run under way when something changed (a reload) is neither joined by the callers
    that come after ``forget`` nor kept for them when it ends: its own callers get it."""
    release = asyncio.Event()
    begun: list[int] = []

    async def render(key: str) -> int:
        begun.append(len(begun) + 1)
        run = begun[-1]
        await release.wait()
        return run

    flight: SingleFlight[str, int] = SingleFlight(render, reuse=1e9)
    early = asyncio.create_task(flight("k"))
    await asyncio.sleep(0)
    flight.forget()  # e.g. a reload while the run is under way
    late = asyncio.create_task(flight("k"))
    await asyncio.sleep(0)
    release.set()
    assert (await early, await late) == (1, 2)
    assert await flight("k") != 1  # the earlier run's result is never kept for later


async def test_forgets_in_a_row_leave_at_most_two_runs_of_a_key_under_way() -> None:
    """A reload storm during a scrape flood: not one more render per reload."""
    release = asyncio.Event()
    running = peak = 0

    async def render(key: str) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await release.wait()
        running -= 1
        return 0

    flight: SingleFlight[str, int] = SingleFlight(render, reuse=1e9)
    callers = []
    for _ in range(20):
        callers.append(asyncio.create_task(flight("k")))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        flight.forget()
    release.set()
    await asyncio.gather(*callers)
    assert peak == 2
    assert flight.runs == 2
