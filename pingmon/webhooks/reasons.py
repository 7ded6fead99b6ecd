"""Why a webhook request was not counted as a delivery: a closed set, a metric label."""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Each reason and, in ``STATUS``, what the sender is answered."""

    UNKNOWN_TARGET = "unknown_target"
    FORBIDDEN_SOURCE = "forbidden_source"
    TOO_LARGE = "too_large"
    UNSIGNED = "unsigned"
    BAD_SIGNATURE = "bad_signature"
    STALE = "stale"
    REPLAYED = "replayed"
    BAD_PAYLOAD = "bad_payload"
    # Authentic, but not a delivery of an awaited ping: acknowledged with a 200, so the
    # provider does not retry what pingmon has no use for.
    DUPLICATE = "duplicate"
    LATE = "late"
    UNMATCHED = "unmatched"


STATUS: dict[Reason, int] = {
    Reason.UNKNOWN_TARGET: 404,
    Reason.FORBIDDEN_SOURCE: 403,
    Reason.TOO_LARGE: 413,
    Reason.UNSIGNED: 400,
    Reason.BAD_SIGNATURE: 400,
    Reason.STALE: 400,
    Reason.REPLAYED: 409,
    Reason.BAD_PAYLOAD: 400,
    Reason.DUPLICATE: 200,
    Reason.LATE: 200,
    Reason.UNMATCHED: 200,
}
