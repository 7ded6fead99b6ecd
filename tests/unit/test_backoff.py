"""Back-off after a 429: Retry-After parsing, the per-credential gate and the token bucket."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given, strategies as st

from pingmon.backoff import RateLimitGate, TokenBucket, parse_retry_after
from pingmon.config import BackoffSettings
from pingmon.fields import Secret
from pingmon.providers.stripe import StripeProvider, StripeSettings

WALL_START = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
NOW = WALL_START.timestamp()
POLICY = BackoffSettings(initial=30.0, multiplier=2.0, max=900.0)


@dataclass
class FakeClock:
    """A clock the test moves by hand."""

    now: float

    def __call__(self) -> float:
        return self.now


def http_date(moment: datetime) -> str:
    return format_datetime(moment, usegmt=True)


def make_gate(policy: BackoffSettings = POLICY, seed: int = 0) -> tuple[RateLimitGate, FakeClock]:
    clock = FakeClock(1000.0)
    gate = RateLimitGate(policy, clock=clock, wall_clock=FakeClock(NOW), rand=random.Random(seed))
    return gate, clock


# parse_retry_after


def test_retry_after_delta_seconds_is_read_as_seconds() -> None:
    assert parse_retry_after("120", NOW) == 120.0


def test_retry_after_delta_seconds_may_be_surrounded_by_spaces() -> None:
    assert parse_retry_after(" 120 ", NOW) == 120.0


def test_retry_after_http_date_in_the_future_is_the_seconds_until_then() -> None:
    assert parse_retry_after(http_date(WALL_START + timedelta(seconds=90)), NOW) == 90.0


def test_retry_after_http_date_in_the_obsolete_asctime_form_is_read_as_gmt() -> None:
    assert parse_retry_after("Sun Mar  1 12:01:30 2026", NOW) == 90.0


def test_retry_after_http_date_in_the_obsolete_rfc850_form_is_read() -> None:
    assert parse_retry_after("Sunday, 01-Mar-26 12:01:30 GMT", NOW) == 90.0


@pytest.mark.parametrize("seconds", [-3600, -1, 0])
def test_retry_after_http_date_not_in_the_future_gives_none(seconds: int) -> None:
    assert parse_retry_after(http_date(WALL_START + timedelta(seconds=seconds)), NOW) is None


@pytest.mark.parametrize("value", ["soon", "1.5", "5s", "0x10", "Wed, 99 Foo 2026", "²", "١٢"])
def test_retry_after_garbage_gives_none(value: str) -> None:
    assert parse_retry_after(value, NOW) is None


@pytest.mark.parametrize("value", ["-5", "-0", " -120"])
def test_retry_after_negative_gives_none(value: str) -> None:
    assert parse_retry_after(value, NOW) is None


@pytest.mark.parametrize("value", ["", "   ", None])
def test_retry_after_empty_or_missing_gives_none(value: str | None) -> None:
    assert parse_retry_after(value, NOW) is None


@given(st.integers(min_value=0, max_value=2**31))
def test_retry_after_any_non_negative_integer_up_to_2_31_parses_to_itself(seconds: int) -> None:
    assert parse_retry_after(str(seconds), NOW) == seconds


@pytest.mark.parametrize("digits", [str(2**31 + 1), "9" * 20, "9" * 4301, "9" * 8000])
def test_retry_after_beyond_2_31_seconds_is_read_as_2_31_never_infinite(digits: str) -> None:
    # RFC 9111 section 1.2.2: a delta-seconds too large to represent is taken as 2^31.
    assert parse_retry_after(digits, NOW) == 2**31


@pytest.mark.parametrize(
    "value",
    [
        "Fri, 31 Dec 99999999999 23:59:59 GMT",
        "Mon, 01 Jan 99999999999 00:00:00 GMT",
        "Mon, 01 Jan 10000 00:00:00 GMT",
        "Mon, 01 Jan 2026 99999999999:00:00 GMT",
        "Mon, 01 Jan 2026 00:00:00 +99999999999",
    ],
)
def test_retry_after_date_no_calendar_holds_is_garbage(value: str) -> None:
    assert parse_retry_after(value, NOW) is None


def test_429_with_a_date_no_calendar_holds_backs_off_exponentially() -> None:
    gate, _ = make_gate()

    decision = gate.on_rate_limited("key", "Fri, 31 Dec 99999999999 23:59:59 GMT")

    assert decision.retry_after is None
    assert POLICY.initial * 0.9 <= decision.delay <= POLICY.initial * 1.1
    assert gate.is_closed("key")


def test_429_with_8000_digits_of_retry_after_is_capped_and_logged_finite() -> None:
    gate, _ = make_gate()

    decision = gate.on_rate_limited("key", "9" * 8000)

    assert (decision.delay, decision.capped, decision.retry_after) == (POLICY.max, True, 2**31)


def _http_date_shaped(day: str, number: int, month: str, year: int, clock: str, zone: str) -> str:
    return f"{day}, {number:02d} {month} {year} {clock} {zone}"


HTTP_DATE_SHAPED = st.builds(
    _http_date_shaped,
    st.sampled_from(["Mon", "Fri", "Sun", "Xyz"]),
    st.integers(min_value=-10, max_value=10**12),
    st.sampled_from(["Jan", "Feb", "Dec", "Foo"]),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.from_regex(r"\A\d{1,12}:\d{1,12}:\d{1,12}\Z"),
    st.sampled_from(["GMT", "UTC", "+0000", "-9999", "+99999999999", "EST", ""]),
)


@given(st.one_of(st.text(), HTTP_DATE_SHAPED, st.from_regex(r"\A\s*\d{1,9000}\s*\Z")))
def test_retry_after_is_total_over_arbitrary_text(value: str) -> None:
    parsed = parse_retry_after(value, NOW)
    assert parsed is None or 0 <= parsed < 10**12  # finite: the year 9999 at most


@given(
    st.datetimes(
        min_value=datetime(2026, 3, 1, 12, 0, 2),
        max_value=datetime(9999, 12, 31, 23, 59, 59),
        timezones=st.just(UTC),
    )
)
def test_retry_after_any_future_http_date_round_trips_within_a_second(moment: datetime) -> None:
    parsed = parse_retry_after(http_date(moment), NOW)
    assert parsed == pytest.approx(moment.timestamp() - NOW, abs=1.0)


# RateLimitGate


def test_429_with_retry_after_closes_the_gate_for_at_least_that_long() -> None:
    gate, _ = make_gate()
    decision = gate.on_rate_limited("key", "120")
    assert 120.0 <= decision.delay <= 132.0
    assert decision.retry_after == 120.0
    assert gate.is_closed("key")
    assert gate.remaining("key") == pytest.approx(decision.delay)


@given(
    retry_after=st.integers(min_value=1, max_value=900),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_429_delay_is_never_below_retry_after_and_at_most_ten_percent_above(
    retry_after: int, seed: int
) -> None:
    gate, _ = make_gate(seed=seed)
    delay = gate.on_rate_limited("key", str(retry_after)).delay
    assert retry_after <= delay <= min(POLICY.max, retry_after * 1.1)


def test_429_with_http_date_retry_after_closes_the_gate_until_that_date() -> None:
    gate, _ = make_gate()
    decision = gate.on_rate_limited("key", http_date(WALL_START + timedelta(minutes=2)))
    assert 120.0 <= decision.delay <= 132.0


@pytest.mark.parametrize(("consecutive", "base"), [(1, 30.0), (2, 60.0), (3, 120.0), (4, 240.0)])
def test_429_without_retry_after_waits_initial_times_multiplier_to_the_n_minus_1(
    consecutive: int, base: float
) -> None:
    gate, _ = make_gate()
    decisions = [gate.on_rate_limited("key", None) for _ in range(consecutive)]
    assert decisions[-1].consecutive == consecutive
    assert base * 0.9 <= decisions[-1].delay <= base * 1.1


def test_429_without_retry_after_is_capped_at_max() -> None:
    gate, _ = make_gate()
    decisions = [gate.on_rate_limited("key", None) for _ in range(10)]
    assert (decisions[-1].delay, decisions[-1].capped) == (POLICY.max, True)


@given(
    consecutive=st.integers(min_value=1, max_value=60),
    initial=st.floats(min_value=0.5, max_value=600.0),
    multiplier=st.floats(min_value=1.0, max_value=10.0),
    extra=st.floats(min_value=0.0, max_value=3600.0),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_429_delay_never_exceeds_max_for_any_policy_and_count(
    consecutive: int, initial: float, multiplier: float, extra: float, seed: int
) -> None:
    policy = BackoffSettings(initial=initial, multiplier=multiplier, max=initial + extra)
    gate, _ = make_gate(policy, seed)
    decisions = [gate.on_rate_limited("key", None) for _ in range(consecutive)]
    assert 0 < decisions[-1].delay <= policy.max


def test_exponential_back_off_after_days_of_429s_stays_at_max_without_overflow() -> None:
    gate, _ = make_gate(BackoffSettings(initial=30.0, multiplier=10.0, max=900.0))

    decisions = [gate.on_rate_limited("key", None) for _ in range(400)]  # 10^399 overflows

    assert (decisions[-1].delay, decisions[-1].capped) == (900.0, True)


def test_absurd_retry_after_is_capped_at_max_and_says_so() -> None:
    gate, _ = make_gate()
    decision = gate.on_rate_limited("key", str(10**9))
    assert (decision.delay, decision.capped, decision.retry_after) == (POLICY.max, True, 1e9)


def test_retry_after_below_max_is_not_reported_as_capped() -> None:
    gate, _ = make_gate()
    assert not gate.on_rate_limited("key", "60").capped


@pytest.mark.parametrize("retry_after", ["soon", "-5", "", "1.5"])
def test_unusable_retry_after_falls_back_to_the_exponential_rule(retry_after: str) -> None:
    gate, _ = make_gate()
    decision = gate.on_rate_limited("key", retry_after)
    assert decision.retry_after is None
    assert POLICY.initial * 0.9 <= decision.delay <= POLICY.initial * 1.1


def test_success_opens_the_gate() -> None:
    gate, _ = make_gate()
    gate.on_rate_limited("key", "120")
    gate.on_success("key")
    assert (gate.is_closed("key"), gate.remaining("key"), gate.delay_in_force("key")) == (
        False,
        0.0,
        0.0,
    )


def test_success_restarts_the_exponential_count() -> None:
    gate, _ = make_gate()
    for _ in range(3):
        gate.on_rate_limited("key", None)
    gate.on_success("key")
    assert gate.on_rate_limited("key", None).consecutive == 1


def test_delay_in_force_and_remaining_are_zero_once_the_clock_passes_the_deadline() -> None:
    gate, clock = make_gate()
    decision = gate.on_rate_limited("key", "120")
    clock.now += decision.delay
    assert (gate.is_closed("key"), gate.remaining("key"), gate.delay_in_force("key")) == (
        False,
        0.0,
        0.0,
    )


def test_remaining_counts_down_with_the_clock_while_the_delay_in_force_stays() -> None:
    gate, clock = make_gate()
    decision = gate.on_rate_limited("key", "120")
    clock.now += 100.0
    assert gate.remaining("key") == pytest.approx(decision.delay - 100.0)
    assert gate.delay_in_force("key") == decision.delay


def test_a_shorter_second_429_never_reopens_the_gate_earlier() -> None:
    gate, _ = make_gate()
    first = gate.on_rate_limited("key", "600")
    gate.on_rate_limited("key", "10")
    assert gate.remaining("key") == pytest.approx(first.delay)
    assert gate.delay_in_force("key") == first.delay  # the gauge shows the wait in force


def test_delays_lists_only_credentials_whose_gate_is_closed() -> None:
    gate, clock = make_gate()
    short = gate.on_rate_limited("short", "10")
    long = gate.on_rate_limited("long", "600")
    clock.now += short.delay
    assert gate.delays() == {"long": long.delay}


def stripe_key(api_key: str) -> str:
    settings = StripeSettings(api_key=Secret(api_key, "literal"))
    return StripeProvider(settings).credential_key()


def test_targets_sharing_a_credential_share_the_gate() -> None:
    gate, _ = make_gate()
    live, also_live = stripe_key("sk_live_shared"), stripe_key("sk_live_shared")
    gate.on_rate_limited(live, "120")
    assert also_live == live
    assert gate.is_closed(also_live)


def test_a_429_for_one_credential_leaves_another_open() -> None:
    gate, _ = make_gate()
    gate.on_rate_limited(stripe_key("sk_live_one"), "120")
    assert not gate.is_closed(stripe_key("sk_live_two"))


def test_retain_forgets_credentials_no_longer_configured() -> None:
    gate, _ = make_gate()
    gate.on_rate_limited("kept", "120")
    gate.on_rate_limited("removed", "120")
    gate.retain({"kept"})
    assert (gate.is_closed("kept"), gate.is_closed("removed")) == (True, False)


# TokenBucket


def test_token_bucket_allows_a_burst_of_its_rate_then_asks_to_wait() -> None:
    bucket = TokenBucket(5.0, clock=FakeClock(0.0))
    waits = [bucket.reserve() for _ in range(8)]
    assert waits == pytest.approx([0.0] * 5 + [0.2, 0.4, 0.6])


def test_token_bucket_refills_with_time() -> None:
    clock = FakeClock(0.0)
    bucket = TokenBucket(5.0, clock=clock)
    for _ in range(5):
        bucket.reserve()
    clock.now += 0.4
    assert [bucket.reserve() for _ in range(3)] == pytest.approx([0.0, 0.0, 0.2])


def test_token_bucket_never_holds_more_than_one_second_of_tokens() -> None:
    clock = FakeClock(0.0)
    bucket = TokenBucket(5.0, clock=clock)
    clock.now += 3600.0
    assert [bucket.reserve() for _ in range(6)] == pytest.approx([0.0] * 5 + [0.2])


def test_token_bucket_below_one_per_second_allows_one_then_spaces_them() -> None:
    bucket = TokenBucket(0.5, clock=FakeClock(0.0))
    assert [bucket.reserve() for _ in range(3)] == pytest.approx([0.0, 2.0, 4.0])
