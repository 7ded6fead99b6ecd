"""Bodies decoded with their declared charset (issue 10 section 1), for body_regex and JSON."""

from __future__ import annotations

import codecs
import json
from typing import Any

import pytest
from hypothesis import given, strategies as st

from pingmon.errors import ErrorClass
from pingmon.providers.base import HttpResponse, body_text, parse_body_json, undecodable
from pingmon.providers.http import HttpParams, HttpProvider, HttpSettings
from pingmon.providers.ninepic import NinepicParams, NinepicProvider, NinepicSettings
from tests.unit import response


def text_response(body: bytes, content_type: str | None) -> HttpResponse:
    return response(200, body, {"Content-Type": content_type} if content_type else {})


def judge_http(resp: HttpResponse, expect: dict[str, Any]) -> tuple[ErrorClass, str]:
    provider = HttpProvider(HttpSettings(base_url="https://status.example.com"))
    params = HttpParams.model_validate({"expect": expect})
    verdict = provider.judge(params, provider.request(params, "check-1"), resp)
    return verdict.error_class, verdict.detail


def test_windows_1251_page_matches_a_cyrillic_body_regex() -> None:
    body = "Статус: работает".encode("cp1251")
    resp = text_response(body, "text/plain; charset=windows-1251")

    assert judge_http(resp, {"body_regex": "Статус: работает"}) == (ErrorClass.NONE, "HTTP 200")


CHARSETS = [
    pytest.param("Système opérationnel", "iso-8859-1", "latin-1", id="iso-8859-1"),
    pytest.param("Système opérationnel", "latin1", "latin-1", id="latin1-alias"),
    pytest.param("システム正常", "shift_jis", "shift_jis", id="shift_jis"),
    pytest.param("系统正常", "GBK", "gbk", id="gbk-upper-case"),
    pytest.param("Статус: работает", "KOI8-R", "koi8-r", id="koi8-r"),
    pytest.param("Статус: работает", '"windows-1251"', "cp1251", id="quoted-label"),
    pytest.param("état: ok", "utf-8", "utf-8", id="utf-8-declared"),
    pytest.param("état: ok", None, "utf-8", id="utf-8-when-none-declared"),
]


@pytest.mark.parametrize(("text", "label", "codec"), CHARSETS)
def test_text_in_its_declared_charset_decodes(text: str, label: str | None, codec: str) -> None:
    content_type = f"text/plain; charset={label}" if label else "text/plain"
    resp = text_response(text.encode(codec), content_type)

    assert body_text(resp) == text
    assert judge_http(resp, {"body_regex": text})[0] is ErrorClass.NONE


@pytest.mark.parametrize(
    ("bom_codec", "declared"),
    [
        ("utf-16", None),  # Python writes a BOM in the machine's order
        ("utf-16", "utf-16"),
        ("utf-16-be", "windows-1251"),
        ("utf-8-sig", None),
        ("utf-8-sig", "iso-8859-1"),
    ],
)
def test_a_byte_order_mark_wins_over_the_declared_charset(
    bom_codec: str, declared: str | None
) -> None:
    body = "Статус: работает".encode(bom_codec)
    if bom_codec == "utf-16-be":
        body = codecs.BOM_UTF16_BE + body
    resp = text_response(body, f"text/plain; charset={declared}" if declared else None)

    assert body_text(resp) == "Статус: работает"  # the mark itself is dropped


@pytest.mark.parametrize(
    ("encoded", "content_type"),
    [
        ('{"status": "работает"}'.encode("cp1251"), "application/json; charset=windows-1251"),
        ('{"status": "работает"}'.encode("utf-16"), "application/json; charset=utf-16"),
        ('{"status": "работает"}'.encode("utf-8-sig"), "application/json"),
        ('{"status": "Système"}'.encode("latin-1"), "application/json; charset=ISO-8859-1"),
    ],
)
def test_json_in_a_declared_or_marked_charset_is_parsed(encoded: bytes, content_type: str) -> None:
    resp = text_response(encoded, content_type)

    expected = json.loads(body_text(resp) or "null")
    assert parse_body_json(resp).value == expected
    assert judge_http(resp, {"json": expected})[0] is ErrorClass.NONE


HTML_DECLARATIONS = [
    pytest.param('<meta charset="windows-1251">', "cp1251", id="meta-charset"),
    pytest.param("<META CHARSET=GBK>", "gbk", id="upper-case-unquoted"),
    pytest.param(
        '<meta http-equiv="Content-Type" content="text/html; charset=koi8-r">',
        "koi8-r",
        id="http-equiv",
    ),
]


@pytest.mark.parametrize(("declaration", "codec"), HTML_DECLARATIONS)
def test_html_without_a_content_type_charset_is_read_in_its_meta_charset(
    declaration: str, codec: str
) -> None:
    text = "系统正常" if codec == "gbk" else "Статус: работает"
    page = f"<html><head>{declaration}</head><body>{text}</body></html>"
    resp = text_response(page.encode(codec), "text/html")

    assert body_text(resp) == page


@pytest.mark.parametrize(
    ("content_type", "head", "expected"),
    [
        pytest.param("text/html; charset=utf-8", '<meta charset="windows-1251">', "utf-8",
                     id="content-type-wins"),
        pytest.param("text/plain", '<meta charset="windows-1251">', "utf-8", id="not-html"),
        pytest.param("text/html", '<meta charset="x-klingon">', "utf-8", id="unknown-ignored"),
        pytest.param("text/html", '<meta charset="utf-16">', "utf-8", id="utf-16-is-utf-8"),
        pytest.param("text/html", " " * 1024 + '<meta charset="koi8-r">', "utf-8",
                     id="after-1024-bytes"),
    ],
)  # fmt: skip
def test_a_meta_charset_is_read_only_where_the_html_prescan_reads_it(
    content_type: str, head: str, expected: str
) -> None:
    page = f"{head}état: ok"

    assert body_text(text_response(page.encode(expected), content_type)) == page


def test_a_providers_json_message_in_a_declared_charset_reaches_the_detail() -> None:
    provider = NinepicProvider(NinepicSettings(api_key="k"))
    params = NinepicParams(org_id=1, event_id=2)
    body = '{"message": "Доступ запрещён"}'.encode("cp1251")
    resp = response(403, body, {"Content-Type": "application/json; charset=windows-1251"})

    verdict = provider.judge(params, provider.request(params, "c"), resp)

    assert verdict.detail == "HTTP 403: Доступ запрещён"


@pytest.mark.parametrize("label", ["x-unknown-charset", "utf-32", "unicode_escape"])
def test_an_unknown_charset_is_bad_response_naming_it(label: str) -> None:
    resp = text_response(b"ok", f"text/plain; charset={label}")

    error_class, detail = judge_http(resp, {"body_regex": "ok"})

    assert body_text(resp) is None
    assert error_class is ErrorClass.BAD_RESPONSE
    assert detail == f'body charset "{label}" is not one pingmon can decode'


def test_a_charset_the_standard_refuses_to_decode_is_bad_response() -> None:
    # ISO-2022-KR maps to the Encoding Standard's "replacement" decoder: never decoded.
    resp = text_response(b"ok", "text/plain; charset=iso-2022-kr")

    assert judge_http(resp, {"body_regex": "ok"})[0] is ErrorClass.BAD_RESPONSE


def test_an_unknown_charset_on_a_json_body_is_bad_response() -> None:
    resp = text_response(b'{"status": "ok"}', "application/json; charset=x-klingon")

    error_class, detail = judge_http(resp, {"json": {"status": "ok"}})

    assert error_class is ErrorClass.BAD_RESPONSE
    assert "x-klingon" in detail


@pytest.mark.parametrize(
    ("body", "content_type", "detail"),
    [
        (b"caf\xe9", None, "body is not valid utf-8 text (no charset declared, so UTF-8)"),
        (b"ok \x82", "text/plain; charset=shift_jis", 'charset "shift_jis"'),
        (b"\xff\xfe ok", None, "as its byte order mark says"),
    ],
)
def test_bytes_invalid_in_the_charset_are_bad_response_never_a_guess(
    body: bytes, content_type: str | None, detail: str
) -> None:
    resp = text_response(body, content_type)

    error_class, said = judge_http(resp, {"body_regex": "."})

    assert body_text(resp) is None
    assert error_class is ErrorClass.BAD_RESPONSE
    assert detail in said
    assert said == undecodable(resp)


def test_a_body_not_read_for_text_is_never_decoded() -> None:
    # Without body_regex or json the http provider judges the status alone.
    resp = text_response(b"\xff\xff", "text/plain; charset=x-unknown")

    assert judge_http(resp, {})[0] is ErrorClass.NONE


@given(content_type=st.text(max_size=80), body=st.binary(max_size=64))
def test_decoding_is_total_over_any_content_type_and_body(content_type: str, body: bytes) -> None:
    resp = HttpResponse(200, {"Content-Type": content_type}, body)

    text = body_text(resp)

    assert text is not None or undecodable(resp).startswith("body ")
    parse_body_json(resp)  # never raises either
