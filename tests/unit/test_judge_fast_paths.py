"""The http judge's paths of the seventh session against the straightforward judge they
replaced, on random answers: the body decoded (UTF-8 without the codec's Python layer), its
JSON parsed without a ``ParsedJson`` (``json_value``, ``body_json``) and matched without
``subset_mismatch``'s layer (``json_contains``'s str fast path); the same verdict, detail
and class, for every status, Content-Type, body and expectation drawn. Also: ``HttpResponse``
as a named tuple keeps its fields, defaults and immutability."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest
import webencodings
from hypothesis import given, settings, strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

from pingmon.errors import ErrorClass, status_error_class
from pingmon.jsonvalue import JsonRefused, json_value, parse_json
from pingmon.providers.base import (
    HttpResponse,
    PreparedRequest,
    Verdict,
    _chosen_by,
    _declared_charset,
    body_json,
    body_verdict,
    parse_body_json,
    short,
    shown,
    verdict_problem,
)
from pingmon.providers.http import Expect, HttpParams, HttpProvider, HttpSettings, _judge
from tests.unit.test_json_fast_paths import PIECES, SPACE, VALUES
from tests.unit.test_provider_http import straightforward_mismatch


def reference_text(response: HttpResponse) -> tuple[str | None, str]:
    """The body as text or why not, as ``base._decode`` wrote it before: every body
    through webencodings' ``decode`` (its codec's Python ``decode`` where there is no BOM)."""
    label = _declared_charset(response)
    encoding = webencodings.UTF8 if label is None else webencodings.lookup(label)
    if encoding is None or encoding.name == "replacement":
        return None, f"body charset {shown(label)} is not one pingmon can decode"
    try:
        text: str = webencodings.decode(response.body, encoding, errors="strict")[0]
    except UnicodeDecodeError as error:
        return None, f"body is not valid {error.encoding} text ({_chosen_by(response, label)})"
    return text, ""


def reference_judge(expect: Expect, response: HttpResponse) -> Verdict:
    """``http._judge`` before this session, its JSON branch written out: ``parse_body_json``
    as it was (``parse_json`` of the text) and ``subset_mismatch`` as first written."""
    status = response.status
    if not expect.passes(status):
        error_class = status_error_class(status) or ErrorClass.BAD_RESPONSE
        wanted = ", ".join(str(entry) for entry in expect.status)
        return Verdict(error_class, short(f"HTTP {status}, expected {wanted}"))
    if (unreadable := body_verdict(response)) is not None:
        return unreadable
    if expect.json_subset is not None:
        text, problem = reference_text(response)
        if text is None:
            return Verdict(ErrorClass.BAD_RESPONSE, short(problem))
        parsed = parse_json(text)
        if parsed.problem is not None:
            return Verdict(ErrorClass.BAD_RESPONSE, short(f"body is {parsed.problem}"))
        mismatch = straightforward_mismatch(expect.json_subset, parsed.value)
        if mismatch is not None:
            return Verdict(ErrorClass.BAD_RESPONSE, short(f"json mismatch at {mismatch}"))
    return Verdict(ErrorClass.NONE, f"HTTP {status}")


CONTENT_TYPES = st.sampled_from(
    [
        None,
        "application/json",
        "application/json; charset=utf-8",
        "application/json; charset=UTF8",
        "application/json; charset=unicode-1-1-utf-8",
        "application/json; charset=latin1",
        "application/json; charset=utf-16le",
        "application/json; charset=iso-2022-kr",
        "application/json; charset=bogus",
        "text/html",
        "text/plain",
    ]
)
BOMS = st.sampled_from([b"", b"", b"", b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff"])
JSON_TEXTS = st.one_of(
    VALUES.map(json.dumps),
    VALUES.map(lambda value: json.dumps(value, ensure_ascii=False)),
    st.lists(st.one_of(PIECES, SPACE), max_size=8).map("".join),
)
BODIES = st.one_of(
    st.tuples(BOMS, JSON_TEXTS, st.sampled_from(["utf-8", "latin-1", "utf-16-le"])).map(
        lambda drawn: (
            drawn[0] + drawn[1].encode(drawn[2], "surrogatepass")
            if drawn[2] != "latin-1" or drawn[1].isascii()
            else drawn[0] + drawn[1].encode("utf-8")
        )
    ),
    st.binary(max_size=12),
    st.sampled_from([b'{"status":"ok"}', b'{"status":"ok","status":"ok"}', b"\xff{}", b""]),
)
SUBSETS = st.one_of(
    VALUES.filter(lambda value: isinstance(value, dict)),
    st.just({"status": "ok"}),
    st.dictionaries(st.sampled_from(["a", "b", "status"]), VALUES, max_size=3),
)


def response_of(status: int, content_type: str | None, body: bytes, **more: Any) -> HttpResponse:
    headers = CIMultiDict[str]({"Server": "nginx"})
    if content_type is not None:
        headers["Content-Type"] = content_type
    return HttpResponse(status, CIMultiDictProxy(headers), body, **more)


@settings(max_examples=1500, deadline=None)
@given(
    st.sampled_from([200, 200, 201, 204, 302, 404, 429, 500]),
    CONTENT_TYPES,
    BODIES,
    st.one_of(st.none(), SUBSETS),
    st.sampled_from([[200], [200, 201], ["2xx"], [200, 404]]),
)
def test_the_http_judge_says_what_the_straightforward_judge_says(
    status: int,
    content_type: str | None,
    body: bytes,
    subset: dict[str, Any] | None,
    statuses: list[int | str],
) -> None:
    expect = Expect.model_validate({"status": statuses, "json": subset})
    response = response_of(status, content_type, body)
    assert _judge(expect, response) == reference_judge(expect, response)


def outcome(parse: Callable[[Any], Any], given: Any) -> tuple[str | None, str]:
    """``parse(given)`` as ``ParsedJson`` would hold it: the problem it raised (and
    ``null``, a ``ParsedJson``'s value then), or None and its value as JSON text."""
    try:
        value = parse(given)
    except JsonRefused as refused:
        return refused.problem, "null"
    return None, json.dumps(value)


@settings(max_examples=800, deadline=None)
@given(CONTENT_TYPES, BODIES)
def test_body_json_and_parse_body_json_agree_with_the_reference(
    content_type: str | None, body: bytes
) -> None:
    response = response_of(200, content_type, body)
    text, problem = reference_text(response)
    parsed = parse_body_json(response)
    if text is None:
        assert parsed.problem == problem
    else:
        assert parsed == parse_json(text)._replace(
            problem=None if parsed.problem is None else f"body is {parse_json(text).problem}"
        )
    assert outcome(body_json, response) == (parsed.problem, json.dumps(parsed.value))


@settings(max_examples=800, deadline=None)
@given(st.one_of(JSON_TEXTS, st.text(max_size=6)))
def test_json_value_is_parse_json_raising_its_problem(text: str) -> None:
    parsed = parse_json(text)
    assert outcome(json_value, text) == (parsed.problem, json.dumps(parsed.value))


def test_a_deep_body_and_a_duplicate_key_are_refused_by_both() -> None:
    for body, problem in [
        (b"[" * 100_000, "body is JSON nested too deeply"),
        (b'{"status":"ok","status":"down"}', 'body is ambiguous JSON: duplicate key "status"'),
        (b"\xef\xbb\xbf\xef\xbb\xbf{}", "body is not JSON"),
    ]:
        response = response_of(200, "application/json", body)
        assert parse_body_json(response).problem == problem
        with pytest.raises(JsonRefused) as refused:
            body_json(response)
        assert refused.value.problem == problem


def test_an_http_response_keeps_its_fields_defaults_and_immutability() -> None:
    response = HttpResponse(200, {"A": "b"}, b"{}")
    assert (response.status, response.headers, response.body) == (200, {"A": "b"}, b"{}")
    assert (response.truncated, response.body_error) == (False, None)
    assert response == HttpResponse(
        status=200, headers={"A": "b"}, body=b"{}", truncated=False, body_error=None
    )
    assert response != HttpResponse(200, {"A": "b"}, b"{}", truncated=True)
    with pytest.raises(AttributeError):
        response.status = 500  # type: ignore[misc]
    assert not dataclasses.is_dataclass(response)


class _OddJudge(HttpProvider):
    """A subclass whose judge returns what no output can show."""

    def judge(self, params: HttpParams, request: PreparedRequest, response: HttpResponse) -> Any:
        return "fine"


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([200, 404, 500]), CONTENT_TYPES, BODIES, st.one_of(st.none(), SUBSETS))
def test_the_http_types_assess_is_its_judge_and_a_subclass_is_still_checked(
    status: int, content_type: str | None, body: bytes, subset: dict[str, Any] | None
) -> None:
    provider = HttpProvider(HttpSettings(base_url="http://127.0.0.1:9"))
    params = HttpParams.model_validate({"expect": {"json": subset}})
    request = provider.request(params, "")
    response = response_of(status, content_type, body)
    verdict = provider.assess(params, request, response)
    assert verdict == provider.judge(params, request, response)
    assert verdict_problem(verdict) is None
    odd = _OddJudge(provider.settings)
    with pytest.raises(TypeError, match=r"_OddJudge\.judge returned a str, not a Verdict"):
        odd.assess(params, request, response)


def test_a_judge_set_on_the_class_later_is_called_and_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    provider = HttpProvider(HttpSettings(base_url="http://127.0.0.1:9"))
    params = HttpParams.model_validate({})
    request = provider.request(params, "")
    monkeypatch.setattr(HttpProvider, "judge", _OddJudge.judge)
    with pytest.raises(TypeError, match=r"HttpProvider\.judge returned a str, not a Verdict"):
        provider.assess(params, request, response_of(200, None, b""))


def test_a_judge_set_on_one_provider_is_called_and_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``Provider.assess`` calls ``self.judge``: one set on the instance (a test's
    ``monkeypatch.setattr(provider, "judge", ...)``) is the judge, as on the class."""
    provider = HttpProvider(HttpSettings(base_url="http://127.0.0.1:9"))
    params = HttpParams.model_validate({})
    request = provider.request(params, "")
    monkeypatch.setattr(provider, "judge", lambda *args: "fine")
    with pytest.raises(TypeError, match=r"HttpProvider\.judge returned a str, not a Verdict"):
        provider.assess(params, request, response_of(200, None, b""))
