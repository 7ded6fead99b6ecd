"""The web configuration file (``--web.config.file``): exporter-toolkit's web-config.yml.

The format Prometheus, Alertmanager, node_exporter and blackbox_exporter share
(prometheus/exporter-toolkit docs/web-configuration.md, web/tls_config.go): TLS with optional
client certificates, bcrypt basic auth, and response headers. Like exporter-toolkit, unknown
keys are refused (it decodes with ``yaml.UnmarshalStrict``) and relative file names are taken
from the web configuration file's directory. A file is refused as a whole with one Problem per
fault, each naming its path (``tls_server_config.cert_file: ...``).

pingmon's own extension, which other exporter-toolkit programs would refuse:
``pingmon: {basic_auth_exempt_paths: [/-/healthy, /-/ready]}`` serves those paths without
basic auth, for kubelet probes (which cannot send a password without writing it in the pod).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from hashlib import sha256
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from pingmon.errors import ConfigError, Problem
from pingmon.loading import read_text
from pingmon.problems import validation_problems
from pingmon.watch import file_signature
from pingmon.webtls import TLS_VERSIONS, ClientAuth, TLSSettings, tls_problems

log = logging.getLogger("pingmon")

MAX_FILE_BYTES = 1 << 20
EXEMPTABLE_PATHS = ("/-/healthy", "/-/ready")

# A bcrypt hash as exporter-toolkit's bcrypt.Cost() accepts it: $2a$, $2b$ or $2y$ (htpasswd
# -B writes $2y$), a two-digit cost, 22 characters of salt and 31 of hash.
_BCRYPT = re.compile(r"\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}")

# exporter-toolkit's extraHTTPHeaders (web/handler.go): the only headers it lets a file set,
# with the only values it accepts where it restricts them.
HEADER_VALUES: Mapping[str, tuple[str, ...] | None] = {
    "Strict-Transport-Security": None,
    "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-XSS-Protection": None,
    "Content-Security-Policy": None,
}

# Keys exporter-toolkit knows and pingmon does not implement: refused when they hold a value, so
# a file never silently loses a protection it asks for; empty means unset, as there.
UNSUPPORTED: Mapping[str, str] = {
    "cert": "an inline certificate; write it to a file and name it in cert_file",
    "key": "an inline key; write it to a file and name it in key_file",
    "client_ca": "inline client CAs; write them to a file and name it in client_ca_file",
    "client_allowed_sans": "a SAN allow-list; give those clients a CA of their own",
    "cipher_suites": "Go cipher suite names; min_version: TLS13 narrows the ciphers",
    "curve_preferences": "Go curve names; OpenSSL's defaults apply",
    "rate_limit": "a request rate limit; pingmon bounds its own server",
}


def _refuse_unsupported(value: object, info: ValidationInfo) -> object:
    if value in (None, "", [], {}):
        return value
    raise ValueError(f"not supported by pingmon: {UNSUPPORTED[str(info.field_name)]}")


def _bcrypt_hash(value: str) -> str:
    if not _BCRYPT.fullmatch(value):
        raise ValueError(
            "is not a bcrypt hash ($2y$10$ followed by 53 characters; make one with "
            "htpasswd -nBC 10 \"\" | tr -d ':\\n')"
        )
    return value


BcryptHash = Annotated[str, AfterValidator(_bcrypt_hash)]
TLSVersionName = Literal["TLS10", "TLS11", "TLS12", "TLS13"]


class TLSServerConfigModel(BaseModel):
    """``tls_server_config``: the certificate pingmon serves and what it asks of clients."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cert_file: str
    key_file: str
    client_auth_type: ClientAuth = ClientAuth.NO_CLIENT_CERT
    client_ca_file: str | None = None
    min_version: TLSVersionName = "TLS12"
    max_version: TLSVersionName = "TLS13"
    prefer_server_cipher_suites: bool = True
    cert: Any = None
    key: Any = None
    client_ca: Any = None
    client_allowed_sans: Any = None
    cipher_suites: Any = None
    curve_preferences: Any = None

    _unsupported = field_validator(
        "cert", "key", "client_ca", "client_allowed_sans", "cipher_suites", "curve_preferences"
    )(_refuse_unsupported)

    @field_validator("client_auth_type", mode="before")
    @classmethod
    def _legacy_name(cls, value: object) -> object:
        # exporter-toolkit keeps "RequireClientCert" as an alias, for backwards compatibility.
        return ClientAuth.REQUIRE_ANY_CLIENT_CERT if value == "RequireClientCert" else value

    @field_validator("client_auth_type")
    @classmethod
    def _verifiable(cls, value: ClientAuth) -> ClientAuth:
        if value is ClientAuth.REQUIRE_ANY_CLIENT_CERT:
            raise ValueError(
                "RequireAnyClientCert is not supported by pingmon: Python's ssl module checks "
                "every client certificate it requires; use RequireAndVerifyClientCert with "
                "client_ca_file (exporter-toolkit calls the unverified modes insecure)"
            )
        return value


class HTTPServerConfigModel(BaseModel):
    """``http_server_config``: headers added to every response."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Accepted for files shared with other exporters; pingmon serves HTTP/1.1 only.
    http2: bool = True
    headers: dict[str, str] = {}


class PingmonWebModel(BaseModel):
    """``pingmon``: pingmon's extension of the format."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    basic_auth_exempt_paths: list[Literal["/-/healthy", "/-/ready"]] = []


SectionModel = TypeVar("SectionModel", bound=BaseModel)


class WebConfigModel(BaseModel):
    """The whole file, as written."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tls_server_config: TLSServerConfigModel | None = None
    http_server_config: HTTPServerConfigModel = HTTPServerConfigModel()
    basic_auth_users: dict[str, BcryptHash] = {}
    rate_limit: Any = None
    pingmon: PingmonWebModel = PingmonWebModel()

    _unsupported = field_validator("rate_limit")(_refuse_unsupported)

    @field_validator("tls_server_config", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # exporter-toolkit serves plain HTTP when no TLS key is set at all.
        return None if value in ({}, None) else value

    @field_validator("basic_auth_users", mode="before")
    @classmethod
    def _no_users(cls, value: object) -> object:
        return {} if value is None else value


@dataclass(frozen=True, slots=True)
class BasicAuthUser:
    """One user: the sha256 of the name (compared in constant time) and the bcrypt hash."""

    name_digest: bytes
    hashed: bytes

    @classmethod
    def of(cls, name: str, hashed: str) -> BasicAuthUser:
        return cls(sha256(name.encode()).digest(), hashed.encode())


@dataclass(frozen=True, slots=True)
class WebConfig:
    """A loaded, fully validated web configuration."""

    source: str
    tls: TLSSettings | None = None
    users: tuple[BasicAuthUser, ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    exempt_paths: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class WebOptions:
    """What the command line says about pingmon's own server (Prometheus' flag names)."""

    listen_address: str | None = None  # --web.listen-address: overrides the file's listen
    config: WebConfig | None = None  # --web.config.file, loaded
    enable_lifecycle: bool = False  # --web.enable-lifecycle: POST /-/reload answers


def load_web_config(path: str | Path) -> WebConfig:
    """Read and check a web configuration file, its certificates and keys included;
    ConfigError lists every problem. Each section is also checked on its own, so that one
    bad section does not hide another's problems."""
    source = str(path)
    raw = _read_yaml(source)
    problems: list[Problem] = []
    model = None
    try:
        model = WebConfigModel.model_validate(raw)
    except ValidationError as error:
        problems += [_worded(problem) for problem in validation_problems(error)]
    http = _section(HTTPServerConfigModel, raw.get("http_server_config"))
    if http is not None:
        problems += _header_problems(http.headers)
    tls_model = _section(TLSServerConfigModel, raw.get("tls_server_config"))
    tls = None if tls_model is None else _tls_settings(tls_model, Path(source).parent)
    if tls is not None:
        problems += tls_problems(tls)
    if isinstance(users := raw.get("basic_auth_users"), dict):
        problems += _user_problems(users)
    if problems or model is None:
        raise ConfigError(source, problems)
    return WebConfig(
        source=source,
        tls=tls,
        users=tuple(
            BasicAuthUser.of(name, hashed) for name, hashed in model.basic_auth_users.items()
        ),
        headers={name: value for name, value in model.http_server_config.headers.items() if value},
        exempt_paths=frozenset(model.pingmon.basic_auth_exempt_paths),
    )


def _section(model: type[SectionModel], value: object) -> SectionModel | None:
    """The section validated on its own, or None when it is absent, empty or refused."""
    if value in (None, {}):
        return None
    try:
        return model.model_validate(value)
    except ValidationError:
        return None


def _worded(problem: Problem) -> Problem:
    if problem.message.startswith("unknown key"):
        return Problem(problem.path, "unknown key (exporter-toolkit refuses it too)")
    return problem


class _Loader(yaml.SafeLoader):
    """YAML without aliases: a web configuration has no use for them, and an alias bomb
    ("billion laughs") would expand in memory."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(None, None, "aliases are not allowed", mark)
        return super().compose_node(parent, index)


def _read_yaml(source: str) -> dict[str, Any]:
    """The file's mapping: a regular file (never a FIFO or a device) of at most
    MAX_FILE_BYTES, UTF-8 YAML without aliases; ConfigError says what it is instead."""
    text = read_text(source, MAX_FILE_BYTES)
    try:
        raw = yaml.load(text, Loader=_Loader)  # a SafeLoader without aliases
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        reason = getattr(error, "problem", None) or "not valid YAML"
        raise ConfigError(source, [Problem("", f"{where}{reason}")]) from None
    except RecursionError:
        raise ConfigError(source, [Problem("", "nested too deeply")]) from None
    if raw is None:
        return {}  # an empty file: plain HTTP, no authentication (as exporter-toolkit)
    if not isinstance(raw, dict):
        raise ConfigError(source, [Problem("", "the file must hold a mapping of settings")])
    return raw


def _header_problems(headers: Mapping[str, str]) -> list[Problem]:
    problems = []
    for name, value in headers.items():
        where = f"http_server_config.headers.{name}"
        if name not in HEADER_VALUES:
            allowed = ", ".join(HEADER_VALUES)
            problems.append(Problem(where, f"cannot be configured (allowed: {allowed})"))
            continue
        allowed_values = HEADER_VALUES[name]
        if allowed_values is not None and value not in allowed_values:
            expected = " or ".join(allowed_values)
            problems.append(Problem(where, f"must be {expected}, got {value!r}"))
        elif any(ord(char) < 0x20 or ord(char) == 0x7F for char in value):
            problems.append(Problem(where, "must not hold control characters (RFC 9110 5.5)"))
    return problems


def _user_problems(users: Mapping[object, object]) -> list[Problem]:
    # RFC 7617 section 2: the user-id cannot contain a colon, so such a user could never log in.
    return [
        Problem(f"basic_auth_users.{name}", "a user name cannot contain ':' (RFC 7617)")
        for name in users
        if isinstance(name, str) and ":" in name
    ]


def _tls_settings(model: TLSServerConfigModel, directory: Path) -> TLSSettings:
    def resolve(name: str) -> str:
        return str(directory / name) if name else name

    return TLSSettings(
        cert_file=resolve(model.cert_file),
        key_file=resolve(model.key_file),
        client_auth=model.client_auth_type,
        client_ca_file=None if not model.client_ca_file else resolve(model.client_ca_file),
        min_version=TLS_VERSIONS[model.min_version],
        max_version=TLS_VERSIONS[model.max_version],
        prefer_server_ciphers=model.prefer_server_cipher_suites,
    )


class LiveWebConfig:
    """The web configuration in force, re-read when its file changes (exporter-toolkit reads
    it on every request, so a new password or header needs no restart). A changed file that is
    refused, or that would turn TLS on or off (the listening socket is made at start), is
    logged once and the last good configuration stays."""

    def __init__(self, config: WebConfig) -> None:
        self._config = config
        self._signature = file_signature(config.source)

    def current(self) -> WebConfig:
        """The configuration for this request or connection; costs a ``stat`` when unchanged."""
        signature = file_signature(self._config.source)
        if signature != self._signature:
            self._signature = signature
            self._reload()
        return self._config

    def tls(self) -> TLSSettings:
        """The TLS settings in force; only called when the server was started with TLS."""
        tls = self.current().tls
        assert tls is not None, "TLS is on or off for the process' lifetime"
        return tls

    def _reload(self) -> None:
        source = self._config.source
        try:
            config = load_web_config(source)
        except ConfigError as error:
            for line in error.lines():
                log.error(
                    "web configuration refused; the last good one stays", extra={"problem": line}
                )
            return
        if (config.tls is None) != (self._config.tls is None):
            log.error(
                "web configuration refused; the last good one stays",
                extra={"problem": f"{source}: turning TLS on or off takes a restart"},
            )
            return
        self._config = config
        log.info("web configuration reloaded", extra={"source": source})
