"""The Stripe provider against the seed's ping example and PROVIDERS.md 1.2/1.3."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from multidict import CIMultiDict
from pydantic import ValidationError

from pingmon.errors import ErrorClass
from pingmon.fields import Secret
from pingmon.providers import PROVIDER_TYPES
from pingmon.providers.base import HttpResponse, PreparedRequest, Verdict
from pingmon.providers.stripe import (
    DEFAULT_STRIPE_VERSION,
    StripeParams,
    StripeProvider,
    StripeSettings,
)
from pingmon.redaction import Redactor
from pingmon.runner import final_detail
from tests.unit import response

TEST_KEY = "sk_test_51HxSeCrEtVaLuE0000aaaa"
DESTINATION = "ed_test_61RM8ltWcTW4mbsxf16RJyfa2xSQLHJJh1sxm7H0KVT6"
EVENT_ID = "evt_test_65RM8sQH2oXnebF5Rpc16RJyfa2xSQLHJJh1sxm7H0KI92"
CHECK_ID = "0f8c2a4e-5b1d-4c3e-9a7f-2d6e8b1c4a90"
# Six seconds after the seed's "created", so the seed body is a fresh pong.
NOW = datetime(2024, 10, 22, 16, 27, 0, tzinfo=UTC)

SEED_PONG: dict[str, Any] = {
    "id": EVENT_ID,
    "object": "v2.core.event",
    "context": None,
    "created": "2024-10-22T16:26:54.063Z",
    "data": None,
    "livemode": False,
    "reason": None,
    "related_object": {
        "id": DESTINATION,
        "type": "event_destination",
        "url": f"/v2/core/event_destinations/{DESTINATION}",
    },
    "type": "v2.core.event_destination.ping",
}


def make_provider(api_key: str = TEST_KEY, **settings: Any) -> StripeProvider:
    model = StripeSettings.model_validate({"type": "stripe", "api_key": api_key, **settings})
    return StripeProvider(model, now=lambda: NOW)


def params(destination_id: str = DESTINATION) -> StripeParams:
    return StripeParams(destination_id=destination_id)


def judge(
    resp: HttpResponse, provider: StripeProvider | None = None, check_id: str = CHECK_ID
) -> Verdict:
    provider = provider or make_provider()
    request = provider.request(params(), check_id)
    return provider.assess(params(), request, resp)


def pong_with(path: str, value: object) -> dict[str, Any]:
    """The seed pong with one dotted key set to ``value`` (or removed, for ``...``)."""
    body = copy.deepcopy(SEED_PONG)
    *parents, leaf = path.split(".")
    node = body
    for key in parents:
        node = node[key]
    if value is ...:
        del node[leaf]
    else:
        node[leaf] = value
    return body


def error(code: str, message: str, type_: str | None = None) -> dict[str, Any]:
    envelope: dict[str, Any] = {"code": code, "message": message}
    if type_ is not None:
        envelope["type"] = type_
    return {"error": envelope}


# --- the request -------------------------------------------------------------------------


def test_stripe_request_is_a_post_to_the_destination_ping_with_every_header() -> None:
    request = make_provider().request(params(), CHECK_ID)

    assert request == PreparedRequest(
        method="POST",
        url=f"https://api.stripe.com/v2/core/event_destinations/{DESTINATION}/ping",
        headers={
            "Authorization": f"Bearer {TEST_KEY}",
            "Stripe-Version": "2025-09-30.clover",
            "Content-Type": "application/json",
            "Idempotency-Key": CHECK_ID,
            "Accept": "application/json",
        },
        body=b"{}",
    )


def test_stripe_idempotency_key_is_the_check_id_so_retries_reuse_it() -> None:
    provider = make_provider()

    first, retry = provider.request(params(), "check-1"), provider.request(params(), "check-1")
    next_check = provider.request(params(), "check-2")

    assert first == retry
    assert first.headers["Idempotency-Key"] == "check-1"
    assert next_check.headers["Idempotency-Key"] == "check-2"


def test_stripe_destination_id_is_url_quoted_in_the_path() -> None:
    request = make_provider().request(params("ed_a/b?c"), CHECK_ID)

    assert request.url == "https://api.stripe.com/v2/core/event_destinations/ed_a%2Fb%3Fc/ping"


def test_stripe_base_url_and_version_are_configurable() -> None:
    provider = make_provider(base_url="http://127.0.0.1:8111/", stripe_version="2026-01-28.x")

    request = provider.request(params(), CHECK_ID)

    assert request.url == f"http://127.0.0.1:8111/v2/core/event_destinations/{DESTINATION}/ping"
    assert request.headers["Stripe-Version"] == "2026-01-28.x"


def test_stripe_settings_defaults_are_the_public_api_and_a_pinned_version() -> None:
    settings = StripeSettings.model_validate({"api_key": TEST_KEY})

    assert settings.base_url == "https://api.stripe.com"
    assert settings.stripe_version == DEFAULT_STRIPE_VERSION == "2025-09-30.clover"
    assert PROVIDER_TYPES["stripe"] is StripeProvider


# --- configuration errors ----------------------------------------------------------------


def test_stripe_event_id_as_destination_is_refused_naming_the_docs_mistake() -> None:
    with pytest.raises(ValidationError) as caught:
        StripeParams(destination_id=EVENT_ID)

    (problem,) = caught.value.errors()
    assert problem["loc"] == ("destination_id",)
    assert "ed_" in problem["msg"]
    assert "event id" in problem["msg"]


@pytest.mark.parametrize("destination_id", ["", "ed_", "we_123", " ed_123"])
def test_stripe_destination_id_must_start_with_ed(destination_id: str) -> None:
    with pytest.raises(ValidationError) as caught:
        StripeParams(destination_id=destination_id)

    assert caught.value.errors()[0]["loc"] == ("destination_id",)


def test_stripe_settings_without_api_key_name_the_field() -> None:
    with pytest.raises(ValidationError) as caught:
        StripeSettings.model_validate({"type": "stripe"})

    assert caught.value.errors()[0]["loc"] == ("api_key",)


# --- status first (PROVIDERS.md 1.3) -----------------------------------------------------

STATUS_CASES = [
    pytest.param(200, SEED_PONG, {}, ErrorClass.NONE, id="200-seed-pong"),
    pytest.param(
        400,
        error("account_rate_limit_exceeded", "Too many requests", "rate_limit"),
        {},
        ErrorClass.RATE_LIMITED,
        id="400-v2-rate-limit-type",
    ),
    pytest.param(
        400, error("rate_limit", "Too many requests"), {}, ErrorClass.RATE_LIMITED, id="400-code"
    ),
    pytest.param(
        400,
        error("idempotency_error", "An idempotent retry occurred with different parameters"),
        {},
        ErrorClass.CLIENT_ERROR,
        id="400-idempotency-error",
    ),
    pytest.param(
        401,
        {"error": {"type": "invalid_request_error", "message": "Invalid API Key provided"}},
        {"Www-Authenticate": 'Basic realm="Stripe"'},
        ErrorClass.AUTH,
        id="401-invalid-key",
    ),
    pytest.param(402, error("card_declined", "Request failed"), {}, ErrorClass.CLIENT_ERROR),
    pytest.param(403, error("permission_error", "No permission"), {}, ErrorClass.FORBIDDEN),
    pytest.param(
        404, error("not_found", "The resource wasn't found."), {}, ErrorClass.NOT_FOUND, id="404"
    ),
    pytest.param(409, error("conflict", "Same idempotent key"), {}, ErrorClass.CLIENT_ERROR),
    pytest.param(424, error("external", "Dependency failed"), {}, ErrorClass.SERVER_ERROR),
    pytest.param(
        429,
        error("rate_limit", "Too many requests hit the API too quickly.", "rate_limit"),
        {"Stripe-Rate-Limited-Reason": "global-rate"},
        ErrorClass.RATE_LIMITED,
        id="429-global-rate",
    ),
    pytest.param(
        429, error("lock_timeout", "Lock timeout"), {}, ErrorClass.RATE_LIMITED, id="429-lock"
    ),
    pytest.param(500, error("api_error", "Internal"), {}, ErrorClass.SERVER_ERROR, id="500"),
    pytest.param(502, b"<html>Bad Gateway</html>", {}, ErrorClass.SERVER_ERROR, id="502-html"),
    pytest.param(503, {"unexpected": True}, {}, ErrorClass.SERVER_ERROR, id="503-no-envelope"),
    pytest.param(504, b"", {}, ErrorClass.SERVER_ERROR, id="504-empty"),
    pytest.param(302, b"", {"Location": "/elsewhere"}, ErrorClass.CLIENT_ERROR, id="302"),
    pytest.param(200, b"<html>pong</html>", {}, ErrorClass.BAD_RESPONSE, id="200-html"),
    pytest.param(200, [SEED_PONG], {}, ErrorClass.BAD_RESPONSE, id="200-json-array"),
    pytest.param(201, SEED_PONG, {}, ErrorClass.BAD_RESPONSE, id="201-not-200"),
]


@pytest.mark.parametrize(("status", "body", "headers", "expected"), STATUS_CASES)
def test_stripe_response_maps_to_its_documented_class(
    status: int, body: object, headers: dict[str, str], expected: ErrorClass
) -> None:
    assert judge(response(status, body, headers)).error_class is expected


def test_stripe_error_detail_has_code_message_and_request_id() -> None:
    resp = response(
        404, error("not_found", "The resource wasn't found."), {"request-id": "req_7xUZU3GTI1jWm6"}
    )

    verdict = judge(resp)

    assert (
        verdict.detail
        == "HTTP 404 not_found: The resource wasn't found. (request req_7xUZU3GTI1jWm6)"
    )


def test_stripe_truncated_200_is_bad_response_without_parsing() -> None:
    resp = HttpResponse(200, CIMultiDict(), json.dumps(SEED_PONG).encode()[:50], truncated=True)

    assert judge(resp).error_class is ErrorClass.BAD_RESPONSE


def test_stripe_whole_pong_whose_body_then_broke_off_is_bad_response() -> None:
    body = json.dumps(SEED_PONG).encode()
    resp = HttpResponse(200, CIMultiDict(), body, body_error="its chunked framing is broken")

    verdict = judge(resp)

    assert verdict.error_class is ErrorClass.BAD_RESPONSE
    assert "its chunked framing is broken" in verdict.detail


def test_stripe_503_whose_body_broke_off_keeps_its_status_class() -> None:
    resp = HttpResponse(503, CIMultiDict(), b'{"err', body_error="connection closed")

    assert judge(resp).error_class is ErrorClass.SERVER_ERROR


@pytest.mark.parametrize("spelling", ["Stripe-Should-Retry", "stripe-should-retry"])
def test_stripe_should_retry_false_vetoes_the_retry(spelling: str) -> None:
    verdict = judge(response(503, error("api_error", "Busy"), {spelling: "false"}))

    assert verdict.error_class is ErrorClass.SERVER_ERROR
    assert verdict.retry is False


def test_stripe_should_retry_header_is_read_case_insensitively_from_a_plain_dict() -> None:
    resp = HttpResponse(503, {"STRIPE-SHOULD-RETRY": "false"}, b"")

    assert judge(resp).retry is False


@pytest.mark.parametrize("headers", [{}, {"Stripe-Should-Retry": "true"}])
def test_stripe_without_should_retry_false_leaves_the_retry_policy_alone(
    headers: dict[str, str],
) -> None:
    assert judge(response(503, error("api_error", "Busy"), headers)).retry is None


# --- the pong itself (PROVIDERS.md 1.2, P1-P8) ---------------------------------------------


def test_stripe_seed_pong_is_success_naming_the_event() -> None:
    verdict = judge(response(200, SEED_PONG))

    assert verdict.success
    assert verdict.detail == f"pong {EVENT_ID}"


BAD_PONGS = [
    pytest.param("object", "v2.core.account", "object", id="P2-object"),
    pytest.param("type", "v2.core.event_destination.created", "type", id="P3-type"),
    pytest.param("id", ..., "event id", id="P4-no-id"),
    pytest.param("id", "", "event id", id="P4-empty-id"),
    pytest.param("id", 42, "event id", id="P4-number-id"),
    pytest.param("related_object", None, "another destination", id="P5-no-related"),
    pytest.param("related_object.url", "/v2/core/event_destinations/ed_other", "url", id="P5-url"),
    pytest.param("related_object.type", "v2.core.account", "related_object.type", id="P6"),
    pytest.param("livemode", True, "test key", id="P7-live-event-for-test-key"),
    pytest.param("livemode", "false", "boolean", id="P7-string"),
    pytest.param("livemode", ..., "boolean", id="P7-missing"),
    pytest.param("created", "2024-10-22T16:10:00.000Z", "stale", id="P8-old"),
    pytest.param("created", "2024-10-22T16:40:00.000Z", "stale", id="P8-future"),
    pytest.param("created", 1729614414, "RFC 3339", id="P8-v1-unix-time"),
    pytest.param("created", "2024-10-22T16:26:54", "RFC 3339", id="P8-no-offset"),
    pytest.param("created", "yesterday", "RFC 3339", id="P8-garbage"),
]


@pytest.mark.parametrize(("path", "value", "said"), BAD_PONGS)
def test_stripe_200_failing_a_predicate_is_bad_response(
    path: str, value: object, said: str
) -> None:
    verdict = judge(response(200, pong_with(path, value)))

    assert verdict.error_class is ErrorClass.BAD_RESPONSE
    assert said in verdict.detail


def test_stripe_pong_for_another_destination_is_bad_response() -> None:
    other = "ed_test_61OTHERdestination000000000000000000000000000"
    body = pong_with("related_object.id", other)
    body["related_object"]["url"] = f"/v2/core/event_destinations/{other}"

    verdict = judge(response(200, body))

    assert verdict.error_class is ErrorClass.BAD_RESPONSE
    assert "another destination" in verdict.detail


def test_stripe_related_type_as_the_event_types_page_spells_it_is_accepted() -> None:
    body = pong_with("related_object.type", "v2.core.event_destination")

    assert judge(response(200, body)).success


def test_stripe_absolute_related_url_is_accepted() -> None:
    url = f"https://api.stripe.com/v2/core/event_destinations/{DESTINATION}"

    assert judge(response(200, pong_with("related_object.url", url))).success


@pytest.mark.parametrize(
    ("api_key", "livemode", "expected"),
    [
        ("sk_live_abc", True, ErrorClass.NONE),
        ("rk_live_abc", True, ErrorClass.NONE),
        ("rk_test_abc", False, ErrorClass.NONE),
        ("sk_live_abc", False, ErrorClass.BAD_RESPONSE),
        ("rk_test_abc", True, ErrorClass.BAD_RESPONSE),
        ("unknown_prefix", True, ErrorClass.NONE),
        ("unknown_prefix", False, ErrorClass.NONE),
    ],
)
def test_stripe_livemode_must_match_the_key_mode(
    api_key: str, livemode: bool, expected: ErrorClass
) -> None:
    body = pong_with("livemode", livemode)

    assert judge(response(200, body), make_provider(api_key)).error_class is expected


def test_stripe_replayed_pong_from_another_idempotency_key_is_bad_response() -> None:
    body = pong_with(
        "reason", {"type": "request", "request": {"id": "req_1", "idempotency_key": "old"}}
    )

    verdict = judge(response(200, body), check_id="new")

    assert verdict.error_class is ErrorClass.BAD_RESPONSE
    assert "replayed" in verdict.detail


def test_stripe_pong_caused_by_this_checks_idempotency_key_is_success() -> None:
    body = pong_with(
        "reason", {"type": "request", "request": {"id": "req_1", "idempotency_key": "k"}}
    )

    assert judge(response(200, body), check_id="k").success


def test_stripe_reason_without_request_is_accepted() -> None:
    assert judge(response(200, pong_with("reason", {"type": "request", "request": None}))).success


def test_stripe_freshness_reads_the_injected_clock() -> None:
    late = StripeProvider(
        StripeSettings.model_validate({"api_key": TEST_KEY}),
        now=lambda: datetime(2024, 10, 22, 16, 37, 0, tzinfo=UTC),
    )

    assert judge(response(200, SEED_PONG), late).error_class is ErrorClass.BAD_RESPONSE


# --- secrets -----------------------------------------------------------------------------


def test_stripe_settings_repr_never_shows_the_key() -> None:
    settings = StripeSettings.model_validate({"api_key": TEST_KEY})

    assert TEST_KEY not in repr(settings)
    assert TEST_KEY not in str(settings)
    assert TEST_KEY not in settings.model_dump_json()


def test_stripe_key_echoed_by_the_server_is_masked_in_the_detail() -> None:
    resp = response(401, error("invalid_api_key", f"Invalid API Key provided: {TEST_KEY}"))

    verdict = judge(resp)
    detail = final_detail(Redactor(make_provider().wire_secrets()), verdict.detail)

    assert verdict.error_class is ErrorClass.AUTH
    assert TEST_KEY not in detail
    assert "Invalid API Key provided: **********" in detail


def test_stripe_key_in_env_reference_shows_only_its_source(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STRIPE_API_KEY", TEST_KEY)

    settings = StripeSettings.model_validate({"api_key": {"env": "STRIPE_API_KEY"}})

    assert settings.api_key == Secret(TEST_KEY, "env:STRIPE_API_KEY")
    assert "env:STRIPE_API_KEY" in repr(settings)
    assert TEST_KEY not in repr(settings)


def test_stripe_misspelled_key_field_never_echoes_the_literal_key() -> None:
    with pytest.raises(ValidationError) as caught:
        StripeSettings.model_validate({"api_key": TEST_KEY, "apikey": TEST_KEY})

    assert caught.value.errors()[0]["loc"] == ("apikey",)
    assert TEST_KEY not in str(caught.value)


def test_stripe_default_clock_is_the_aware_current_time() -> None:
    provider = StripeProvider(StripeSettings.model_validate({"api_key": TEST_KEY}))

    assert abs(provider.now() - datetime.now(UTC)).total_seconds() < 60
