"""The provider contract: build a request and judge a response, both pure, no I/O."""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, field_validator

from pingmon.errors import ErrorClass, status_error_class
from pingmon.fields import RatePerSecond, Secret, secrets_in
from pingmon.outbound import check_base_url, check_ca_file
from pingmon.webhooks.settings import WebhookSettings

DETAIL_MAX_CHARS = 200


class TLSSettings(BaseModel):
    """How to verify the provider's certificate; verification is on unless switched off."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    insecure_skip_verify: bool = False
    ca_file: str | None = None

    @field_validator("ca_file")
    @classmethod
    def _holds_certificates(cls, path: str | None) -> str | None:
        return None if path is None else check_ca_file(path)


class ProviderSettings(BaseModel):
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

    @field_validator("base_url")
    @classmethod
    def _absolute_http_url(cls, url: str) -> str:
        return check_base_url(url)

    def secrets(self) -> tuple[Secret, ...]:
        """Every credential these settings hold (their values never leave the process)."""
        return secrets_in(self)


class TargetParams(BaseModel):
    """The per-target parameters a provider type needs (destination id, event id...)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def secrets(self) -> tuple[Secret, ...]:
        """Every credential the target's own settings hold (its webhook's)."""
        return secrets_in(self)

    @property
    def webhook_settings(self) -> WebhookSettings | None:
        """The webhook the ping makes the provider send, for the types whose ping sends one
        (they declare a ``webhook`` field)."""
        webhook = getattr(self, "webhook", None)
        return webhook if isinstance(webhook, WebhookSettings) else None


@dataclass(frozen=True, slots=True)
class PreparedRequest:
    """One HTTP request, fully built; retries within a check re-send it unchanged."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """What came back: the body is at most ``max_body_bytes``; ``truncated`` says if more came."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class Verdict:
    """A provider's judgement of one response.

    ``retry=False`` vetoes an in-check retry the error class would otherwise allow
    (e.g. Stripe's ``Stripe-Should-Retry: false``); ``None`` leaves the default policy.
    ``event_id`` names what a successful ping caused at the provider (Stripe's event), so
    its webhook can be matched to it.
    """

    error_class: ErrorClass
    detail: str = ""
    retry: bool | None = None
    event_id: str | None = None

    @property
    def success(self) -> bool:
        return self.error_class is ErrorClass.NONE


SettingsT = TypeVar("SettingsT", bound=ProviderSettings)
ParamsT = TypeVar("ParamsT", bound=TargetParams)


class Provider(ABC, Generic[SettingsT, ParamsT]):
    """A provider type: its settings and target models, and its pure request/judge pair."""

    type_name: ClassVar[str]
    settings_model: ClassVar[type[ProviderSettings]]
    params_model: ClassVar[type[TargetParams]]

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
        """``judge``, with every credential masked in the detail: a server may echo what it
        was sent, and the detail goes to logs, /status and `check` output."""
        verdict = self.judge(params, request, response)
        detail = redact(verdict.detail, self._secrets)
        return verdict if detail == verdict.detail else replace(verdict, detail=detail)

    def credential_key(self) -> str:
        """A stable fingerprint of the credentials, so back-off and rate budgets are shared.

        Two provider entries holding the same key share one fingerprint; the value is a hash
        and never the secret itself.
        """
        digest = hashlib.sha256(self.settings.type.encode())
        for secret in self._secrets:
            digest.update(b"\0" + secret.reveal().encode())
        if not self._secrets:
            digest.update(b"\0" + self.settings.base_url.encode())
        return digest.hexdigest()[:16]


def url_join(base_url: str, path: str) -> str:
    """``base_url`` and an absolute ``path`` with exactly one slash between them."""
    return base_url.rstrip("/") + "/" + path.lstrip("/")


def judge_status(response: HttpResponse, detail: str = "") -> Verdict | None:
    """The verdict the status alone decides, or None when a 2xx body must be judged.

    Status first (PROVIDERS.md 0.2): a non-2xx keeps its status class whatever the body;
    a 2xx body larger than ``max_body_bytes`` is a bad_response, never parsed.
    """
    status_class = status_error_class(response.status)
    if status_class is not None:
        return Verdict(status_class, short(detail or f"HTTP {response.status}"))
    if response.truncated:
        return Verdict(ErrorClass.BAD_RESPONSE, "body larger than max_body_bytes")
    return None


def parse_json_object(body: bytes) -> dict[str, Any] | None:
    """The body as a JSON object, or None when it is not one."""
    try:
        value = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def short(text: str) -> str:
    """A detail string bounded in length, on one line."""
    flat = " ".join(text.split())
    if len(flat) <= DETAIL_MAX_CHARS:
        return flat
    return flat[: DETAIL_MAX_CHARS - 3] + "..."


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header's value by name, case-insensitively even when ``headers`` is a plain dict."""
    value = headers.get(name)
    if value is not None:
        return value
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), None)


def redact(text: str, secrets: Iterable[Secret]) -> str:
    """``text`` with every secret value masked: details may quote what a server sent back."""
    for secret in secrets:
        value = secret.reveal()
        if value:
            text = text.replace(value, "**********")
    return text
