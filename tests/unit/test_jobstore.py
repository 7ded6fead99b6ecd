"""HeapJobStore answers every question as APScheduler's MemoryJobStore does."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.jobstores.base import BaseJobStore, ConflictingIdError, JobLookupError
from apscheduler.jobstores.memory import MemoryJobStore
from hypothesis import given, settings, strategies as st

from pingmon.jobstore import HeapJobStore

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class Job:
    """What a job store reads of a job: its id and next run time (None: paused)."""

    id: str
    next_run_time: datetime | None


def at(seconds: int) -> datetime:
    return EPOCH + timedelta(seconds=seconds)


def maybe_at(seconds: int | None) -> datetime | None:
    """A next run time, or None for a paused job."""
    return None if seconds is None else at(seconds)


IDS = st.sampled_from(["a", "b", "c", "d", "e", "f"])
TIMES = st.one_of(st.none(), st.integers(min_value=0, max_value=20))
OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), IDS, TIMES),
        st.tuples(st.just("update"), IDS, TIMES),
        st.tuples(st.just("remove"), IDS, st.none()),
        st.tuples(st.just("due"), st.just(""), st.integers(min_value=0, max_value=20)),
        st.tuples(st.just("clear"), st.just(""), st.none()),
    ),
    max_size=60,
)


def apply(store: BaseJobStore, operation: tuple[str, str, int | None]) -> object:
    """What the store answers to one operation (an exception's type for a refusal)."""
    kind, job_id, seconds = operation
    try:
        if kind == "add":
            store.add_job(Job(job_id, maybe_at(seconds)))
        elif kind == "update":
            store.update_job(Job(job_id, maybe_at(seconds)))
        elif kind == "remove":
            store.remove_job(job_id)
        elif kind == "due":
            return [job.id for job in store.get_due_jobs(at(seconds or 0))]
        else:
            store.remove_all_jobs()
    except (ConflictingIdError, JobLookupError) as error:
        return type(error)
    return None


def state(store: BaseJobStore) -> object:
    jobs = [(job.id, job.next_run_time) for job in store.get_all_jobs()]
    looked_up = {name: store.lookup_job(name) for name in "abcdef"}
    found = {name: (job.id, job.next_run_time) for name, job in looked_up.items() if job}
    return jobs, store.get_next_run_time(), found


@settings(max_examples=300, deadline=None)
@given(OPERATIONS)
def test_every_sequence_of_operations_is_answered_as_the_memory_store_answers_it(
    operations: list[tuple[str, str, int | None]],
) -> None:
    heap, memory = HeapJobStore(), MemoryJobStore()
    for operation in operations:
        assert apply(heap, operation) == apply(memory, operation), operation
        assert state(heap) == state(memory), operation


def test_due_jobs_come_earliest_first_then_by_id_and_stay_until_updated() -> None:
    store = HeapJobStore()
    for job in (Job("b", at(5)), Job("a", at(5)), Job("c", at(1)), Job("p", None)):
        store.add_job(job)
    assert [job.id for job in store.get_due_jobs(at(5))] == ["c", "a", "b"]
    assert [job.id for job in store.get_due_jobs(at(5))] == ["c", "a", "b"]
    store.update_job(Job("c", at(9)))
    assert [job.id for job in store.get_due_jobs(at(5))] == ["a", "b"]
    assert store.get_next_run_time() == at(5)
    assert [job.id for job in store.get_all_jobs()] == ["a", "b", "c", "p"]


@settings(max_examples=200, deadline=None)
@given(OPERATIONS, st.integers(min_value=0, max_value=20), st.integers(min_value=1, max_value=5))
def test_taking_the_due_jobs_and_updating_each_is_a_scheduler_run(
    operations: list[tuple[str, str, int | None]], now: int, step: int
) -> None:
    """What ``LoopScheduler`` does per run (take the due jobs, move each to its next time)
    leaves the store as ``get_due_jobs`` and ``update_job`` leave the memory store."""
    heap, left, memory = HeapJobStore(), HeapJobStore(), MemoryJobStore()
    for operation in operations:
        for store in (heap, left, memory):
            apply(store, operation)
    due = [job.id for job in memory.get_due_jobs(at(now))]
    taken = heap.take_due_jobs(at(now).timestamp())
    assert [job.id for job, _ in taken] == due
    assert [when for _, when in taken] == [job.next_run_time.timestamp() for job, _ in taken]
    assert [job.id for job in left.get_due_jobs(at(now))] == due
    assert heap.take_due_jobs(at(now).timestamp()) == []  # taken: not due twice
    for job_id in due:
        for store in (heap, left, memory):
            store.update_job(Job(job_id, at(now + step)))
    assert len(heap._heap) == len(left._heap) - len(due)  # no stale entry left behind
    assert state(heap) == state(memory)


def test_stale_entries_are_dropped_once_they_outnumber_the_jobs() -> None:
    store = HeapJobStore()
    store.add_job(Job("kept", at(1)))
    for step in range(1000):  # each reschedule to a later time leaves a stale entry
        store.update_job(Job("kept", at(10 + step)))
    assert len(store._heap) <= 2 * 1 + 64 + 1
    assert [job.id for job in store.get_due_jobs(at(2000))] == ["kept"]


def test_a_job_that_is_not_there_cannot_be_updated_or_removed() -> None:
    store = HeapJobStore()
    with pytest.raises(JobLookupError):
        store.update_job(Job("x", at(1)))
    with pytest.raises(JobLookupError):
        store.remove_job("x")
    store.add_job(Job("x", at(1)))
    with pytest.raises(ConflictingIdError):
        store.add_job(Job("x", at(2)))
