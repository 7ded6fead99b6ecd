"""TLS for pingmon's own server: a server SSLContext from the web configuration's files, and
one that follows those files when they are replaced (cert-manager rotates them).

exporter-toolkit re-reads the certificate and key on every handshake (its GetConfigForClient);
here every new connection looks at the files' signatures (a few ``stat`` calls) and builds a
fresh context only when one changed. A context that cannot be built (a key written before its
certificate, say) is logged and the last good one keeps serving.
"""

from __future__ import annotations

import logging
import os
import ssl
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from pingmon.errors import Problem
from pingmon.watch import Signature, file_signature

log = logging.getLogger("pingmon")

TLS_VERSIONS: Mapping[str, ssl.TLSVersion] = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}


class ClientAuth(StrEnum):
    """exporter-toolkit's client_auth_type values (Go's tls.ClientAuthType)."""

    NO_CLIENT_CERT = "NoClientCert"
    REQUEST_CLIENT_CERT = "RequestClientCert"
    REQUIRE_ANY_CLIENT_CERT = "RequireAnyClientCert"
    VERIFY_CLIENT_CERT_IF_GIVEN = "VerifyClientCertIfGiven"
    REQUIRE_AND_VERIFY_CLIENT_CERT = "RequireAndVerifyClientCert"

    @property
    def verify_mode(self) -> ssl.VerifyMode:
        """What the server's SSLContext does with a client certificate. RequestClientCert
        asks for one that nothing ever reads or checks: without the request, the handshake and
        what pingmon serves are the same, so it maps to CERT_NONE."""
        if self is ClientAuth.REQUIRE_AND_VERIFY_CLIENT_CERT:
            return ssl.CERT_REQUIRED
        if self is ClientAuth.VERIFY_CLIENT_CERT_IF_GIVEN:
            return ssl.CERT_OPTIONAL
        return ssl.CERT_NONE

    @property
    def verifies(self) -> bool:
        return self.verify_mode is not ssl.CERT_NONE


@dataclass(frozen=True, slots=True)
class TLSSettings:
    """TLS as the server applies it: absolute file names and OpenSSL's terms."""

    cert_file: str
    key_file: str
    client_auth: ClientAuth
    client_ca_file: str | None
    min_version: ssl.TLSVersion
    max_version: ssl.TLSVersion
    prefer_server_ciphers: bool

    def files(self) -> tuple[str, ...]:
        """The files the server context is built from: a change to one calls for a rebuild."""
        ca = () if self.client_ca_file is None else (self.client_ca_file,)
        return (self.cert_file, self.key_file, *ca)


def tls_problems(tls: TLSSettings) -> list[Problem]:
    """What keeps these settings from making a server context: unreadable or mismatched
    files, a policy that needs client CAs without them (or CAs no policy uses)."""
    where = "tls_server_config"
    problems = []
    if tls.min_version > tls.max_version:
        problems.append(Problem(f"{where}.min_version", "must not be above max_version"))
    if tls.client_auth.verifies and tls.client_ca_file is None:
        message = (
            f"{tls.client_auth} needs client_ca_file, the CAs client certificates must chain to"
        )
        problems.append(Problem(f"{where}.client_ca_file", message))
    if tls.client_ca_file is not None and not tls.client_auth.verifies:
        message = (
            "client CAs are configured but client_auth_type does not verify client certificates "
            "(use RequireAndVerifyClientCert)"
        )
        problems.append(Problem(f"{where}.client_auth_type", message))
    if problems:
        return problems
    try:
        server_context(tls)
    except TLSFileError as error:
        problems.append(Problem(f"{where}.{error.key}", error.reason))
    return problems


class TLSFileError(Exception):
    """A certificate, key or CA file cannot be used; ``key`` names its setting."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


class _Encrypted(Exception):
    pass


def _no_passphrase() -> str:
    # Without a callback OpenSSL would prompt on the terminal for an encrypted key's passphrase.
    raise _Encrypted


def server_context(tls: TLSSettings) -> ssl.SSLContext:
    """A server SSLContext from the files as they are now; TLSFileError names the bad one."""
    for key in ("cert_file", "key_file", "client_ca_file"):
        name = getattr(tls, key)
        if name is not None and (reason := _unreadable(name)):
            raise TLSFileError(key, f"{name}: {reason}")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = tls.min_version
    context.maximum_version = tls.max_version
    if not tls.prefer_server_ciphers:
        context.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    _load_pair(context, tls.cert_file, tls.key_file)
    if tls.client_ca_file is not None:
        try:
            context.load_verify_locations(cafile=tls.client_ca_file)
        except (ssl.SSLError, ValueError):
            raise TLSFileError(
                "client_ca_file", f"{tls.client_ca_file}: holds no PEM certificate"
            ) from None
        except OSError as error:  # replaced between the look and the read
            raise TLSFileError(
                "client_ca_file", f"{tls.client_ca_file}: {error.strerror}"
            ) from None
    context.verify_mode = tls.client_auth.verify_mode
    return context


def _unreadable(name: str) -> str | None:
    """Why a certificate, key or CA file cannot be read, or None. Only a regular file is
    read: OpenSSL would read a FIFO or a device such as /dev/zero without end."""
    try:
        if not stat.S_ISREG(os.stat(name).st_mode):
            return "is not a regular file"
    except FileNotFoundError:
        return "no such file"
    except OSError as error:
        return str(error.strerror)
    return None if os.access(name, os.R_OK) else "cannot be read"


def _load_pair(context: ssl.SSLContext, cert_file: str, key_file: str) -> None:
    try:
        context.load_cert_chain(cert_file, key_file, password=_no_passphrase)
    except _Encrypted:
        raise TLSFileError(
            "key_file", f"{key_file}: is encrypted; pingmon needs a key without a passphrase"
        ) from None
    except ssl.SSLError as error:
        if "KEY_VALUES_MISMATCH" in str(error):
            raise TLSFileError(
                "key_file", f"{key_file}: does not match the certificate in cert_file"
            ) from None
        if not _holds_certificate(cert_file):
            raise TLSFileError("cert_file", f"{cert_file}: holds no PEM certificate") from None
        raise TLSFileError("key_file", f"{key_file}: holds no PEM private key") from None
    except OSError as error:  # replaced between the look and the read
        raise TLSFileError("cert_file", f"{cert_file}: {error.strerror}") from None


def _holds_certificate(cert_file: str) -> bool:
    try:
        ssl.create_default_context(cafile=cert_file)
    except (ssl.SSLError, ValueError, OSError):
        return False
    return True


class RotatingServerContext(ssl.SSLContext):
    """The context handed to the listening socket: each connection it wraps gets the context
    built from the current settings and files. asyncio wraps every accepted connection with
    ``wrap_bio``, so that is where the current context is chosen."""

    def __new__(cls, settings: Callable[[], TLSSettings]) -> RotatingServerContext:
        return super().__new__(cls, ssl.PROTOCOL_TLS_SERVER)

    def __init__(self, settings: Callable[[], TLSSettings]) -> None:
        self._settings = settings
        tls = settings()
        self._context = server_context(tls)
        self._built_for = _state(tls)

    def current(self) -> ssl.SSLContext:
        """The context for a new connection, rebuilt first when a file or a setting changed."""
        tls = self._settings()
        state = _state(tls)
        if state != self._built_for:
            self._built_for = state
            try:
                self._context = server_context(tls)
            except TLSFileError as error:
                log.error(
                    "TLS files refused; the last good certificate keeps serving",
                    extra={"problem": f"tls_server_config.{error.key}: {error.reason}"},
                )
            else:
                log.info("TLS certificate loaded", extra={"cert_file": tls.cert_file})
        return self._context

    def wrap_bio(
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLObject:
        return self.current().wrap_bio(incoming, outgoing, server_side, server_hostname, session)


def _state(tls: TLSSettings) -> tuple[TLSSettings, tuple[Signature, ...]]:
    return tls, tuple(file_signature(name) for name in tls.files())
