"""The testdata files of issue 11 and the exact lines each is refused with, in order.

test_config.py parametrizes over these beside its own table: loading that is bounded and never
a traceback (section 1), and values refused at load when they cannot work (section 2).
"""

from __future__ import annotations

UNKNOWN_KEY = "unknown key (refused so that a typo never silently changes a check)"
NOT_ABSOLUTE = (
    "must be an absolute http:// or https:// URL with a host, e.g. https://api.example.com"
)
NOT_A_TOKEN = (
    "is not a header name: an RFC 9110 token holds only letters, digits and !#$%&'*+-.^_`|~"
)
HEADER_LINE = "a header value is one line"
SECRET_LINE = "a secret is one line of text (one trailing newline is dropped)"
USERINFO_WITH_AUTH = (
    "carries user:password@, and this provider sends an Authorization header of its own "
    "(aiohttp sends one); remove user:password@ from the URL"
)
TOO_LONG = "is longer than 7d, the longest duration pingmon accepts"

BOUNDED_LOADING: list[tuple[str, list[str]]] = [
    (
        "invalid-not-utf8.yaml",
        ["line 1, column 61: not UTF-8 (byte 0xe9 at offset 60); save the file as UTF-8"],
    ),
    (
        "invalid-utf16.yaml",
        ["the file is UTF-16 (it starts with a byte order mark); save it as UTF-8"],
    ),
    (
        "invalid-nesting-too-deep.yaml",
        ["x[0][0][0][0][0][0][0]...: line 2, column 67: nested more than 64 levels deep"],
    ),
    (
        "invalid-expect-json-too-deep.yaml",
        ["targets[0].expect.json.a.a.a.a...: line 8, column 253: nested more than 64 levels deep"],
    ),
    (
        "invalid-aliases-expand-past-the-bound.yaml",
        [
            "targets[0].expect.json.l5.k3: line 15, column 49: more than 1,000,000 values "
            "(scalars, lists and mappings, each alias counted as the copy it stands for)"
        ],
    ),
    (
        "invalid-alias-recursive.yaml",
        [
            "targets[0].expect.json.again: line 8, column 27: alias *loop stands for a "
            "collection that holds it (a recursive value)"
        ],
    ),
    (
        "invalid-alias-undefined.yaml",
        ["defaults: line 2, column 11: found undefined alias 'base'"],
    ),
    (
        "invalid-anchor-defined-twice.yaml",
        ["backoff: line 3, column 10: anchor &base is defined a second time"],
    ),
    (
        "invalid-duplicate-key.yaml",
        [
            "targets[0].interval: line 12, column 5: duplicate key; YAML would silently keep "
            "only its last value"
        ],
    ),
    (
        "invalid-second-document.yaml",
        ["line 3, column 1: a second document (---); the file must hold one"],
    ),
    (
        "invalid-control-character.yaml",
        ["line 2, column 22: character U+0007 is not allowed in YAML"],
    ),
    (
        "invalid-yaml-timestamp.yaml",
        ["line 10, column 15: not a valid timestamp (day is out of range for month)"],
    ),
    (
        "invalid-yaml-integer-too-long.yaml",
        [
            "line 2, column 14: not a valid int (Exceeds the limit (4300 digits) for integer "
            "string conversion: value has 5000 digits)"
        ],
    ),
    (
        "invalid-settings-source-key.yaml",
        [f"_cli_parse_args: {UNKNOWN_KEY}", f"_secrets_dir: {UNKNOWN_KEY}"],
    ),
    (
        "invalid-secret-file-device.yaml",
        [
            "providers.h.headers.X-K: cannot read secret file /dev/zero: it is a character "
            "device, not a regular file"
        ],
    ),
    (
        "invalid-secret-file-fifo.yaml",
        [
            "providers.h.headers.X-K: cannot read secret file secrets/fifo: it is a FIFO, "
            "not a regular file"
        ],
    ),
    (
        "invalid-secret-file-too-large.yaml",
        [
            "providers.ninepic.api_key: cannot read secret file secrets/large: larger than "
            "64 KiB, the most pingmon reads of it"
        ],
    ),
]

UNWORKABLE_VALUES: list[tuple[str, list[str]]] = [
    (
        "invalid-base-url-variable.yaml",
        [
            "providers.status-page.base_url: holds ${...}, which pingmon does not expand: "
            "write the URL itself (only secrets take {env: NAME})"
        ],
    ),
    (
        "invalid-base-url-not-absolute-http.yaml",
        [
            f"providers.no-scheme.base_url: {NOT_ABSOLUTE}",
            f"providers.ftp.base_url: {NOT_ABSOLUTE}",
            f"providers.prose.base_url: {NOT_ABSOLUTE}",
            f"providers.no-host.base_url: {NOT_ABSOLUTE}",
            "providers.spaced.base_url: has a leading or trailing space; write the URL alone",
            "providers.query.base_url: must not have a query or fragment: a target's path is "
            "appended to it",
            "providers.bad-port.base_url: is not a valid URL (Port out of range 0-65535)",
            f"providers.stripe.base_url: {NOT_ABSOLUTE}",
        ],
    ),
    (
        "invalid-base-url-userinfo-with-authorization.yaml",
        [
            f"providers.pbx.base_url: {USERINFO_WITH_AUTH}",
            f"providers.stripe-live.base_url: {USERINFO_WITH_AUTH}",
            f"providers.status-page.base_url: {USERINFO_WITH_AUTH}",
            "targets[4].headers.authorization: cannot be sent with the user:password@ in "
            "providers.plain.base_url (aiohttp sends one Authorization header); remove one "
            "of them",
        ],
    ),
    (
        "invalid-header-name-not-token.yaml",
        [
            f"providers.h.headers.Bad Header: 'Bad Header' {NOT_A_TOKEN}",
            f"targets[0].headers.X A:: 'X A:' {NOT_A_TOKEN}",
        ],
    ),
    (
        "invalid-header-value-control-character.yaml",
        [
            "providers.s.stripe_version: holds a control character (U+000D carriage return); "
            f"{HEADER_LINE}",
            f"targets[0].headers.X-Trace: holds a control character (U+000A line feed); "
            f"{HEADER_LINE}",
        ],
    ),
    (
        "invalid-secret-control-character.yaml",
        [
            "providers.from-file.api_key: secret file secrets/two-lines holds a control "
            f"character (U+000A line feed); {SECRET_LINE}",
            "providers.from-env.api_key: environment variable TEST_TWO_LINE_SECRET holds a "
            f"control character (U+000A line feed); {SECRET_LINE}",
            f"providers.literal.api_key: holds a control character (U+0009 tab); {SECRET_LINE}",
        ],
    ),
    (
        "invalid-ca-file.yaml",
        [
            "providers.missing.tls.ca_file: cannot read /nonexistent/pingmon/ca.pem: "
            "No such file or directory",
            "providers.directory.tls.ca_file: cannot read secrets: it is a directory, "
            "not a regular file",
            "providers.not-pem.tls.ca_file: secrets/simotel-password holds no usable PEM "
            "certificate (NO_CERTIFICATE_OR_CRL_FOUND)",
        ],
    ),
    (
        "invalid-duration-too-long.yaml",
        [f"backoff.max: 8d {TOO_LONG}", f"targets[0].interval: 1000000000d {TOO_LONG}"],
    ),
    (
        "invalid-simotel-username-colon.yaml",
        ["providers.pbx.username: holds a colon, which a Basic user-id cannot carry (RFC 7617 2)"],
    ),
]
