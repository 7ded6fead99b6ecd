"""The runner draws a check id only for a provider type that reads it (``Provider.check_ids``):
the http type's requests carry none, so it is given ""; a type that reads them gets a fresh
one per check, the same for the check's retries, as before."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from pingmon.errors import ErrorClass
from pingmon.providers.base import PreparedRequest
from pingmon.providers.http import HttpParams, HttpProvider
from tests.integration.origin import Origin, serve_origin
from tests.integration.rawhttp import checking, site_config


class CountingHttp(HttpProvider):
    """The http type, keeping the check ids its requests were built with (reading none:
    ``check_ids`` False as the http type's, said again since it overrides ``request``)."""

    check_ids = False

    def request(self, params: HttpParams, check_id: str) -> PreparedRequest:
        self.seen.append(check_id)
        return super().request(params, check_id)

    seen: list[str]


class ReadingIds(CountingHttp):
    check_ids = True


@pytest.fixture
async def origin() -> AsyncIterator[Origin]:
    async with serve_origin() as running:
        yield running


@pytest.mark.parametrize("kind", [CountingHttp, ReadingIds])
async def test_only_a_type_that_reads_check_ids_is_given_them(
    tmp_path: Path, origin: Origin, kind: type[CountingHttp]
) -> None:
    assert HttpProvider.check_ids is False
    seen = await ids_of_three_checks(tmp_path, origin, kind)
    if kind.check_ids:
        assert len(set(seen)) == 3
        assert all(uuid.UUID(one).version == 4 for one in seen)
    else:
        assert seen == ["", "", ""]


async def ids_of_three_checks(tmp_path: Path, origin: Origin, kind: Any) -> list[str]:
    """The check ids a provider of ``kind`` was given in three passing checks of a target."""
    config = site_config(tmp_path / "c.yaml", origin.url, [{"name": "t"}])
    async with checking(config) as (runner, plans):
        provider = kind(plans["t"].provider.settings)
        provider.seen = []
        plan = dataclasses.replace(plans["t"], provider=provider)
        results = [await runner.run(plan) for _ in range(3)]
    assert [r.error_class for r in results if r is not None] == [ErrorClass.NONE] * 3
    return list(provider.seen)


class KeyedHttp(HttpProvider):
    """A type derived from the http type whose requests carry the check id (an idempotency
    key, as docs/providers.md describes ``check_id``), saying nothing of ``check_ids``."""

    def request(self, params: HttpParams, check_id: str) -> PreparedRequest:
        self.seen.append(check_id)
        request = super().request(params, check_id)
        return dataclasses.replace(
            request, headers={**request.headers, "Idempotency-Key": check_id}
        )

    seen: list[str]


async def test_a_type_derived_from_http_whose_request_reads_the_check_id_is_given_one(
    tmp_path: Path, origin: Origin
) -> None:
    """Only the http type's own ``request`` carries no id: a subclass that builds its
    requests itself is given a fresh id per check, as every type was before, unless it
    says it reads none (``check_ids = False``): an id of "" in every check's request would
    be one idempotency key for them all."""
    assert KeyedHttp.check_ids is True
    seen = await ids_of_three_checks(tmp_path, origin, KeyedHttp)
    assert len(set(seen)) == 3
    assert all(uuid.UUID(one).version == 4 for one in seen)
