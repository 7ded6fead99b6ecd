"""The provider contract: build a request and judge a response, both pure, no I/O."""

from __future__ import annotations

import codecs
import functools
import hashlib
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import Message
from typing import Any, ClassVar, Generic, NamedTuple, TypeVar
from urllib.parse import SplitResult, unquote, urlsplit

import webencodings
from pydantic import (
    ConfigDict,
    Field,
    PositiveInt,
    ValidationInfo,
    field_serializer,
    field_validator,
)

from pingmon.errors import ErrorClass, status_error_class
from pingmon.fields import NumbersNotBooleans, RatePerSecond, Secret, secrets_in
from pingmon.jsonvalue import (
    SCALAR_MAX_CHARS,
    JsonRefused,
    ParsedJson as ParsedJson,
    json_value,
    shown as shown,
)
from pingmon.outbound import check_base_url, check_ca_file
from pingmon.proxies import PROXY_NONE, check_basic_credentials, check_proxy_url, environment_proxy
from pingmon.redaction import MARKER, basic_token
from pingmon.route import check_server_name
from pingmon.webhooks.kind import AnyWebhookKind
from pingmon.webhooks.settings import WebhookSettings

DETAIL_MAX_CHARS = 200


class TLSSettings(NumbersNotBooleans):
    """How to verify the provider's certificate; verification is on unless switched off."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    insecure_skip_verify: bool = False
    ca_file: str | None = None
    server_name: str | None = Field(
        default=None,
        description="The name for SNI and certificate verification when base_url reaches the "
        "server by an IP address or another name, e.g. pbx.internal.",
        examples=["pbx.internal"],
    )

    @field_validator("server_name")
    @classmethod
    def _server_name(cls, value: str | None) -> str | None:
        return None if value is None else check_server_name(value)

    @field_validator("ca_file")
    @classmethod
    def _holds_certificates(cls, path: str | None) -> str | None:
        return None if path is None else check_ca_file(path)


class ProviderSettings(NumbersNotBooleans):
    """Settings every provider type shares; a type subclasses it with its own fields."""

    # Validation messages must not echo the input: it may hold a literal secret.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    type: str
    base_url: str
    max_concurrency: PositiveInt | None = Field(
        default=None, description="Never more checks in flight to this provider."
    )
    rate_limit: RatePerSecond | None = Field(
        default=None, description="A request budget per credential, e.g. 5/s."
    )
    tls: TLSSettings = TLSSettings()
    proxy_url: str | None = Field(
        default=None,
        validate_default=True,
        description="This provider's own proxy, e.g. http://proxy.internal:3128, or 'none' to "
        "go direct; unset, HTTP_PROXY/HTTPS_PROXY/NO_PROXY decide as curl reads them.",
        examples=["http://proxy.internal:3128", "none"],
    )
    proxy_username: Secret | None = Field(default=None, description="Basic auth to proxy_url.")
    proxy_password: Secret | None = Field(
        default=None, validate_default=True, description="Basic auth to proxy_url."
    )

    @field_validator("tls")
    @classmethod
    def _server_name_needs_https(cls, tls: TLSSettings, info: ValidationInfo) -> TLSSettings:
        base_url = info.data.get("base_url")
        if tls.server_name and isinstance(base_url, str) and base_url.lower().startswith("http:"):
            raise ValueError("server_name applies to an https:// base_url only")
        return tls

    @field_validator("proxy_url")
    @classmethod
    def _proxy_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None:
            return check_proxy_url(value)
        base_url = info.data.get("base_url")
        if isinstance(base_url, str):
            try:
                environment_proxy(base_url)
            except ValueError as error:
                raise ValueError(f"unset, so the environment applies, but {error}") from None
        return None

    @field_validator("proxy_username")
    @classmethod
    def _proxy_username(cls, value: Secret | None) -> Secret | None:
        if value is not None:
            check_basic_credentials(value.reveal(), "")
        return value

    @field_validator("proxy_password")
    @classmethod
    def _proxy_credentials(cls, value: Secret | None, info: ValidationInfo) -> Secret | None:
        if "proxy_username" not in info.data or "proxy_url" not in info.data:
            return value  # the user name or the URL was refused on its own
        username: Secret | None = info.data["proxy_username"]
        if (username is None) != (value is None):
            raise ValueError("proxy_username and proxy_password go together")
        if value is not None and info.data["proxy_url"] in (None, PROXY_NONE):
            raise ValueError("proxy credentials need a proxy_url to be sent to")
        if value is not None:
            check_basic_credentials("", value.reveal())
        return value

    @field_validator("base_url")
    @classmethod
    def _absolute_http_url(cls, url: str) -> str:
        return check_base_url(url)

    def secrets(self) -> tuple[Secret, ...]:
        """Every credential these settings hold (their values never leave the process)."""
        return secrets_in(self)

    def proxy_secrets(self) -> tuple[Secret, ...]:
        """The proxy's credentials: secrets, but not the provider account's."""
        return tuple(s for s in (self.proxy_username, self.proxy_password) if s is not None)

    # A base_url may carry user:password@ (sent as HTTP Basic): its password is shown
    # nowhere, neither in repr() nor in a dump.
    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            yield name, without_password(value) if name == "base_url" else value

    @field_serializer("base_url")
    def _base_url_without_password(self, base_url: str) -> str:
        return without_password(base_url)


# The keys every ``targets[i]`` entry has whatever its type (pingmon.config.TargetSettings):
# the rest of the entry is the type's params_model's, which must not declare these.
COMMON_TARGET_KEYS = frozenset(
    {
        "name",
        "provider",
        "interval",
        "timeout",
        "jitter",
        "failure_interval",
        "retries",
        "max_body_bytes",
    }
)


class TargetParams(NumbersNotBooleans):
    """The per-target parameters a provider type needs (destination id, event id...): the
    keys of a ``targets[i]`` entry other than ``COMMON_TARGET_KEYS``, validated on their own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def secrets(self) -> tuple[Secret, ...]:
        """Every credential the target's own settings hold (its webhook's)."""
        return secrets_in(self)

    @property
    def webhook_settings(self) -> WebhookSettings | None:
        """The webhook the ping makes the provider send; None: it sends none."""
        return None


class WebhookParams(TargetParams):
    """The parameters of a type whose ping sends a webhook (``Provider.webhook`` is set): a
    ``webhook`` field, narrowed by the type to its kind's settings model."""

    webhook: WebhookSettings | None = None

    @property
    def webhook_settings(self) -> WebhookSettings | None:
        return self.webhook


@dataclass(frozen=True, slots=True)
class PreparedRequest:
    """One HTTP request, fully built; retries within a check re-send it unchanged."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None


class HttpResponse(NamedTuple):
    """What came back: the body, decoded from its content coding, is at most
    ``max_body_bytes``; ``truncated`` says if more came.

    ``body_error`` says why the body could not be read whole or decoded after the status
    line arrived (broken framing, a bad content coding, the connection closed or the timeout
    struck mid-body); ``body`` then holds what was read. Bodiless answers (HEAD, 1xx, 204,
    304) have an empty body whatever their Content-Length says.

    A named tuple: one is made for every check, and a frozen dataclass of five fields
    costs about 9,000 instructions to make (an ``object.__setattr__`` a field), this a
    third of it; immutable, its fields and defaults as before.
    """

    status: int
    headers: Mapping[str, str]
    body: bytes
    truncated: bool = False
    body_error: str | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """A provider's judgement of one response.

    ``retry=False`` vetoes an in-check retry the error class would otherwise allow
    (e.g. a provider's "should not retry" header); ``None`` leaves the default policy.
    ``event_id`` names what a successful ping caused at the provider (an event), so its
    webhook can be matched to it (``Match.BY_EVENT_ID``).
    """

    error_class: ErrorClass
    detail: str = ""
    retry: bool | None = None
    event_id: str | None = None

    @property
    def success(self) -> bool:
        return self.error_class is ErrorClass.NONE


def verdict_problem(verdict: object) -> str | None:
    """What makes ``verdict`` not a Verdict every output can show, or None."""
    if not isinstance(verdict, Verdict):
        return f"a {type(verdict).__name__}, not a Verdict"
    if not isinstance(verdict.error_class, ErrorClass):
        return f"an error_class of type {type(verdict.error_class).__name__}, not an ErrorClass"
    if not isinstance(verdict.detail, str):
        return f"a detail of type {type(verdict.detail).__name__}, not a str"
    if verdict.retry is not None and not isinstance(verdict.retry, bool):
        return f"a retry of type {type(verdict.retry).__name__}, not a bool or None"
    if verdict.event_id is not None and not isinstance(verdict.event_id, str):
        return f"an event_id of type {type(verdict.event_id).__name__}, not a str or None"
    return None


SettingsT = TypeVar("SettingsT", bound=ProviderSettings)
ParamsT = TypeVar("ParamsT", bound=TargetParams)


class Provider(ABC, Generic[SettingsT, ParamsT]):
    """A provider type: its settings and target models, and its pure request/judge pair."""

    type_name: ClassVar[str]
    settings_model: ClassVar[type[ProviderSettings]]
    params_model: ClassVar[type[TargetParams]]
    # The webhook a ping makes the provider send, if any; params_model is then a WebhookParams
    # whose ``webhook`` field holds the kind's settings model.
    webhook: ClassVar[AnyWebhookKind | None] = None
    # Whether ``request`` reads its ``check_id``; a type whose requests never carry one
    # sets False and is given "" (making an id costs a check about 6,000 instructions).
    check_ids: ClassVar[bool] = True

    def __init__(self, settings: SettingsT) -> None:
        self.settings = settings
        self._secrets = settings.secrets()  # settings are frozen: collected once, not per check

    @abstractmethod
    def request(self, params: ParamsT, check_id: str) -> PreparedRequest:
        """Build the request for one check; ``check_id`` is fresh per check, not per retry."""

    @abstractmethod
    def judge(self, params: ParamsT, request: PreparedRequest, response: HttpResponse) -> Verdict:
        """Decide the check's error class from the response alone."""

    def assess(self, params: ParamsT, request: PreparedRequest, response: HttpResponse) -> Verdict:
        """``judge``, as the runner calls it. The detail is not masked here: the runner
        masks every detail, transport errors included, before shortening it.

        TypeError when the judge returned something other than a well-formed Verdict (a
        type from another package may): the runner records it as its internal error with
        the status it judged, as when the judge raises, never lets it reach a result."""
        verdict = self.judge(params, request, response)
        problem = verdict_problem(verdict)
        if problem is not None:
            raise TypeError(f"{type(self).__name__}.judge returned {problem}")
        return verdict

    def wire_secrets(self) -> tuple[str, ...]:
        """Every credential as this provider's requests carry it, for masking: each secret
        value, and a ``base_url`` password both as written and as the HTTP Basic header
        aiohttp makes of it. A type that derives other values from its secrets (a Basic
        header of its own) adds them."""
        values = [secret.reveal() for secret in self._secrets]
        return (*values, *url_credentials(self.settings.base_url))

    def credential_key(self) -> str:
        """A stable fingerprint of the credentials, so back-off and rate budgets are shared.

        Two provider entries holding the same key share one fingerprint; the value is a hash
        and never the secret itself.
        """
        digest = hashlib.sha256(self.settings.type.encode())
        proxy = self.settings.proxy_secrets()
        account = [secret for secret in self._secrets if all(secret is not p for p in proxy)]
        for secret in account:
            digest.update(b"\0" + secret.reveal().encode())
        if not account:
            digest.update(b"\0" + self.settings.base_url.encode())
        return digest.hexdigest()[:16]


def url_join(base_url: str, path: str) -> str:
    """``base_url`` and an absolute ``path`` with exactly one slash between them."""
    return base_url.rstrip("/") + "/" + path.lstrip("/")


def judge_status(response: HttpResponse, detail: str = "") -> Verdict | None:
    """The verdict the status alone decides, or None when a 2xx body must be judged.

    Status first (PROVIDERS.md 0.2): a non-2xx keeps its status class whatever the body,
    even one that broke off; a 2xx whose body broke off or is larger than
    ``max_body_bytes`` is a bad_response, never parsed.
    """
    status_class = status_error_class(response.status)
    if status_class is not None:
        return Verdict(status_class, short(detail or f"HTTP {response.status}"))
    return body_verdict(response)


def body_verdict(response: HttpResponse) -> Verdict | None:
    """bad_response when the body cannot be judged: it broke off or is too large."""
    if response.body_error is not None:
        return Verdict(
            ErrorClass.BAD_RESPONSE,
            short(f"HTTP {response.status} with a broken body: {response.body_error}"),
        )
    if response.truncated:
        return Verdict(ErrorClass.BAD_RESPONSE, "body larger than max_body_bytes")
    return None


def body_text(response: HttpResponse) -> str | None:
    """The body as text, or None when it cannot be decoded (``undecodable`` says why).

    The Encoding Standard's "decode" (WHATWG), which RFC 8259 section 8.1 allows for JSON:
    a byte order mark wins and is dropped; else the ``charset`` that Content-Type declares
    (RFC 9110 section 8.3.2), or for HTML without one its ``<meta>`` charset, looked up
    among the Standard's labels as browsers do; else UTF-8. An unknown Content-Type label
    or bytes invalid in the encoding give None, never a guess.
    """
    return _decode(response)[0]


def undecodable(response: HttpResponse) -> str:
    """Why ``body_text`` gave None, as a detail; it names the charset, never the body."""
    return _decode(response)[1]


# The byte order marks the Encoding Standard's decode honours (webencodings' _detect_bom).
_BOMS = (codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_PRESCAN_BYTES = 1024
_UTF8 = webencodings.UTF8  # its codec's ``decode`` is ``bytes.decode("utf-8")`` in Python
_META_CHARSET = re.compile(rb"""<meta\s[^>]*?charset\s*=\s*["']?\s*([-\w.:()+]+)""", re.I)


def _decode(response: HttpResponse) -> tuple[str | None, str]:
    label = _declared_charset(response)
    encoding = webencodings.UTF8 if label is None else webencodings.lookup(label)
    if encoding is None or encoding.name == "replacement":
        # "replacement" is the Standard's decoder for labels unsafe to decode (ISO-2022-KR...).
        return None, f"body charset {shown(label)} is not one pingmon can decode"
    body = response.body
    try:
        if body.startswith(_BOMS):
            text: str = webencodings.decode(body, encoding, errors="strict")[0]
        elif encoding is _UTF8:  # the usual case: the same decoder without a Python layer
            text = body.decode("utf-8")
        else:  # what webencodings.decode does without a BOM, minus its look-ups (~2 µs)
            text = encoding.codec_info.decode(body, "strict")[0]
    except UnicodeDecodeError as error:
        return None, f"body is not valid {error.encoding} text ({_chosen_by(response, label)})"
    return text, ""


def _chosen_by(response: HttpResponse, label: str | None) -> str:
    if response.body.startswith(_BOMS):
        return "as its byte order mark says"
    return f"charset {shown(label)}" if label else "no charset declared, so UTF-8"


def _declared_charset(response: HttpResponse) -> str | None:
    """Content-Type's ``charset`` parameter (quoted or RFC 2231 forms); for HTML without
    one, the charset its ``<meta>`` declares; None when neither says."""
    content_type = header(response.headers, "Content-Type")
    if not content_type:
        return None
    if len(content_type) <= _CACHED_CONTENT_TYPE_CHARS:
        charset, html = _content_type_charset(content_type)
    else:
        charset, html = _content_type_charset.__wrapped__(content_type)
    if charset:
        return charset
    if html:
        return _meta_charset(response.body[:_PRESCAN_BYTES])
    return None


# A server sends the same few Content-Type values on every check: their parse (the email
# package's, ~10 µs) is kept, for values of a usual length only.
_CACHED_CONTENT_TYPE_CHARS = 256


@functools.lru_cache(maxsize=64)
def _content_type_charset(content_type: str) -> tuple[str | None, bool]:
    """A Content-Type value's ``charset`` parameter, and whether its type is HTML."""
    message = Message()
    message["Content-Type"] = content_type
    return message.get_content_charset() or None, message.get_content_type() in _HTML_TYPES


def _meta_charset(head: bytes) -> str | None:
    """The charset a ``<meta charset>`` or ``<meta http-equiv content="...; charset=">``
    declares in the first 1024 bytes: WHATWG HTML's prescan (13.2.3.2), simplified. As
    there, an unknown label is ignored and UTF-16 is read as UTF-8 (ASCII bytes said it)."""
    match = _META_CHARSET.search(head)
    encoding = webencodings.lookup(match.group(1).decode("ascii")) if match else None
    if encoding is None:
        return None
    return "utf-8" if encoding.name in ("utf-16le", "utf-16be") else str(encoding.name)


def parse_body_json(response: HttpResponse) -> ParsedJson:
    """The body decoded (``body_text``) and parsed as any JSON value; never raises.

    ``problem`` is a detail (``body is not JSON``, ``body is JSON nested too deeply``,
    ``body is ambiguous JSON: duplicate key "status"``, or why it did not decode).
    """
    try:
        return ParsedJson(body_json(response))
    except JsonRefused as refused:
        return ParsedJson(problem=refused.problem)


def body_json(response: HttpResponse) -> Any:
    """``parse_body_json(response).value`` without the ``ParsedJson`` (the http judge of
    every check needs the value only); JsonRefused with ``parse_body_json``'s problem."""
    text, problem = _decode(response)
    if text is None:
        raise JsonRefused(problem)
    try:
        return json_value(text)
    except JsonRefused as refused:
        raise JsonRefused(f"body is {refused.problem}") from None


def shown_token(value: str) -> str:
    """A server's identifier (an error code, a request or event id) as a detail shows it:
    bare while short, as providers' identifiers are, else named by its length only."""
    if len(value) <= SCALAR_MAX_CHARS:
        return value
    return f"(an identifier of {len(value)} characters)"


def shown_message(message: str) -> str:
    """A provider's documented human-readable message, quoted whole up to the detail's
    length (the runner cuts details after masking; judges never cut server text), else
    named by its length only."""
    if len(message) <= DETAIL_MAX_CHARS:
        return message
    return f"(a message of {len(message)} characters)"


def short(text: str) -> str:
    """A detail on one line. Not cut: the runner masks secrets first, then cuts every detail
    to ``DETAIL_MAX_CHARS`` (a secret across a cut would otherwise leak all but its end)."""
    return " ".join(text.split())


def url_credentials(url: str) -> tuple[str, ...]:
    """What a URL's userinfo puts on the wire (RFC 3986 §3.2.1): the password as written
    and the ``Basic`` Authorization value aiohttp derives from it (RFC 7617); a user with
    no password is the credential itself (``https://TOKEN@host``). Nothing without one."""
    parts = _split(url)
    if parts is None or parts.username is None:
        return ()
    user, password = parts.username, parts.password
    secret = password or user  # "user:" (as aiohttp writes a proxy's) is a lone user too
    if not secret:
        return ()
    pair = (unquote(user), unquote(password or ""))
    return (secret, "Basic " + basic_token(*pair))


def without_password(url: str) -> str:
    """``url`` with the password (or a lone user, which is a token) of its userinfo masked."""
    parts = _split(url)
    if parts is None or parts.username is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = MARKER if parts.password is None else f"{parts.username}:{MARKER}"
    return parts._replace(netloc=f"{user}@{host}").geturl()


def _split(url: str) -> SplitResult | None:
    try:
        return urlsplit(url)
    except ValueError:
        return None


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header's value by name, case-insensitively even when ``headers`` is a plain dict."""
    value = headers.get(name)
    if value is not None:
        return value
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), None)
