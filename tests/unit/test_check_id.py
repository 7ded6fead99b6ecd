"""A check's id is a random UUID version 4, as uuid.uuid4().hex writes it."""

from __future__ import annotations

import uuid

from pingmon.runner import check_id


def test_check_id_is_a_version_4_uuid_in_hex() -> None:
    ids = [check_id() for _ in range(2_000)]
    for value in ids:
        parsed = uuid.UUID(value)
        assert parsed.hex == value
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
    assert len(set(ids)) == len(ids)
