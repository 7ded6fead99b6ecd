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
