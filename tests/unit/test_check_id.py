"""A check's id is a random UUID version 4, as uuid.uuid4().hex writes it."""

from __future__ import annotations

import subprocess
import sys
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


def test_ids_drawn_across_refills_are_all_distinct_and_a_forked_child_draws_its_own() -> None:
    """A parent and its forked child, each taking ids after the fork, share none (the
    child does not reuse the parent's drawn bytes)."""
    script = """
import os, sys
from pingmon.runner import check_id
check_id()  # bytes drawn before the fork
read, write = os.pipe()
pid = os.fork()
if pid == 0:
    os.write(write, " ".join(check_id() for _ in range(300)).encode())
    os._exit(0)
os.close(write)
os.waitpid(pid, 0)
child = b""
while part := os.read(read, 65536):
    child += part
print(" ".join(check_id() for _ in range(300)), "|", child.decode())
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    parent, child = (side.split() for side in done.stdout.split("|"))
    assert len(parent) == len(child) == 300
    assert not set(parent) & set(child)
    assert len(set(parent)) == 300
