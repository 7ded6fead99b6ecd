"""The configuration file: every rule refused with its exact line, defaults, overrides, secrets."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from pingmon.config import Config, Settings, json_schema, load_config
from pingmon.errors import ConfigError
from pingmon.loading import EMPTY_FILE
from pingmon.providers import PROVIDER_TYPES
from tests.unit.refusals import BOUNDED_LOADING, UNWORKABLE_VALUES

TESTDATA = Path(__file__).resolve().parent.parent / "testdata"
EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "pingmon.example.yaml"

# The values behind the {env: ...} references in testdata; no test may ever see them printed.
ENV_SECRETS = {
    "TEST_STRIPE_API_KEY": "sk_test_stripe-secret-value",
    "TEST_NINEPIC_API_KEY": "ninepic-secret-value",
    "TEST_SIMOTEL_API_KEY": "simotel-apikey-secret-value",
    "TEST_SIMOTEL_USER": "simotel-user-secret-value",
    "TEST_SIMOTEL_PASSWORD": "simotel-env-password-secret-value",
    "TEST_STATUS_TOKEN": "Bearer status-token-secret-value",
}
# valid.yaml's {file: secrets/simotel-password}, relative to the working directory.
FILE_SECRET = "simotel-password-secret-value"
SECRET_VALUES = (*ENV_SECRETS.values(), FILE_SECRET)

UNKNOWN_KEY = "unknown key (refused so that a typo never silently changes a check)"
DURATION_HINT = "is not a duration; use a form such as 500ms, 30s, 5m or 1h"
EVENT_ID_HINT = (
    "must be an event destination id starting with ed_ (that is an event id; "
    "the Stripe docs' curl example wrongly puts one in the path)"
)
TYPES = "http, ninepic, simotel, stripe"

# Each testdata/invalid-*.yaml and the exact problems it must be refused with, in order.
INVALID: list[tuple[str, list[str]]] = [
    ("invalid-unknown-top-level-key.yaml", [f"concurency: {UNKNOWN_KEY}"]),
    (
        "invalid-unknown-provider-key.yaml",
        [f"providers.stripe-live.stripe_verison: {UNKNOWN_KEY}"],
    ),
    ("invalid-unknown-target-key.yaml", [f"targets[0].intervl: {UNKNOWN_KEY}"]),
    (
        "invalid-duplicate-target-name.yaml",
        [
            "targets[1].name: duplicate target name 'wedding' (first at targets[0]); "
            "target names must be unique"
        ],
    ),
    (
        "invalid-undefined-provider.yaml",
        [
            "targets[0].provider: no provider named 'ninepik' is defined under providers "
            "(defined: ninepic)"
        ],
    ),
    (
        "invalid-unknown-provider-type.yaml",
        [f"providers.stripe-live: unknown provider type 'stripes'; known types: {TYPES}"],
    ),
    (
        "invalid-provider-without-type.yaml",
        [f"providers.stripe-live: type is required; one of: {TYPES}"],
    ),
    ("invalid-stripe-without-destination-id.yaml", ["targets[0].destination_id: is required"]),
    ("invalid-stripe-event-id.yaml", [f"targets[0].destination_id: {EVENT_ID_HINT}"]),
    (
        "invalid-ninepic-org-id-not-integer.yaml",
        [
            "targets[0].org_id: Input should be a valid integer, "
            "unable to parse string as an integer"
        ],
    ),
    ("invalid-simotel-without-base-url.yaml", ["providers.pbx.base_url: is required"]),
    (
        "invalid-simotel-basic-without-password.yaml",
        ["providers.pbx: auth 'basic' requires password, missing here"],
    ),
    (
        "invalid-http-body-regex.yaml",
        [
            "targets[0].expect.body_regex: is not a valid regular expression: "
            "missing ), unterminated subpattern at position 0"
        ],
    ),
    (
        "invalid-http-status-class.yaml",
        [
            f"targets[0].expect.status[{index}]: must be a status code from 100 to 599 "
            "or a class from 1xx to 5xx"
            for index in (2, 3)
        ],
    ),
    (
        "invalid-secret-env-unset.yaml",
        [
            "providers.stripe-live.api_key: "
            "environment variable TEST_UNSET_STRIPE_API_KEY is not set"
        ],
    ),
    (
        "invalid-secret-file-unreadable.yaml",
        [
            "providers.ninepic.api_key: cannot read secret file "
            "/nonexistent/pingmon/ninepic-api-key: No such file or directory"
        ],
    ),
    (
        "invalid-secret-env-and-file.yaml",
        ["providers.ninepic.api_key: must be {env: NAME} or {file: PATH} (or a literal string)"],
    ),
    (
        "invalid-secret-unknown-key.yaml",
        ["providers.ninepic.api_key: must be {env: NAME} or {file: PATH} (or a literal string)"],
    ),
    ("invalid-duration-zero.yaml", ["defaults.interval: must be a positive duration"]),
    ("invalid-duration-negative.yaml", ["backoff.initial: must be a positive duration"]),
    ("invalid-duration-malformed.yaml", [f"defaults.interval: '5 minutes' {DURATION_HINT}"]),
    (
        "invalid-timeout-not-below-interval.yaml",
        ["targets[0].timeout: must be below the interval (30s >= 30s)"],
    ),
    (
        "invalid-timeout-not-below-interval-defaults.yaml",
        [
            "targets[0].timeout: must be below the interval (1m >= 30s)",
            "targets[1].timeout: must be below the interval (1m >= 1m)",
        ],
    ),
    (
        "invalid-failure-interval-above-interval.yaml",
        ["targets[0].failure_interval: must not exceed the interval (2m > 1m)"],
    ),
    (
        "invalid-rate-limit.yaml",
        [
            "providers.stripe-live.rate_limit: '5 per second' is not a rate; "
            "use a form such as 5/s, 100/m or 1000/h"
        ],
    ),
    (
        "invalid-listen-without-port.yaml",
        ["listen: '0.0.0.0' is not host:port, e.g. 0.0.0.0:9108"],
    ),
    (
        "invalid-backoff-initial-above-max.yaml",
        ["backoff: initial (20m) must not exceed max (15m)"],
    ),
    ("invalid-yaml-syntax.yaml", ["line 5, column 12: expected ',' or '}', but got ':'"]),
    ("invalid-not-a-mapping.yaml", ["the file must hold a mapping of settings"]),
    ("invalid-empty.yaml", [EMPTY_FILE]),
    ("invalid-whitespace-only.yaml", [EMPTY_FILE]),
    ("invalid-missing-file.yaml", ["cannot read the file: No such file or directory"]),
    (
        "invalid-several-problems.yaml",
        [
            "listen: '0.0.0.0' is not host:port, e.g. 0.0.0.0:9108",
            "concurrency: Input should be greater than 0",
            "targets[1].name: duplicate target name 'orders-webhook' (first at targets[0]); "
            "target names must be unique",
            f"targets[1].destination_id: {EVENT_ID_HINT}",
            f"targets[2].interval: '5 minutes' {DURATION_HINT}",
            "targets[3].timeout: must be below the interval (10s >= 5s)",
        ],
    ),
]


INVALID += BOUNDED_LOADING + UNWORKABLE_VALUES
# A secret that is two lines, as a file and as a variable (refusals.py).
TWO_LINES = "first line\nsecond line\n"


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No stray PINGMON_* override, the testdata secrets set, and the file secret in place."""
    for name in list(os.environ):
        if name.startswith("PINGMON_"):
            monkeypatch.delenv(name)
    for name, value in ENV_SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("TEST_UNSET_STRIPE_API_KEY", raising=False)
    monkeypatch.setenv("TEST_TWO_LINE_SECRET", TWO_LINES)
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "simotel-password").write_text(f"{FILE_SECRET}\n", encoding="utf-8")
    (secrets / "two-lines").write_text(TWO_LINES, encoding="utf-8")
    (secrets / "large").write_bytes(b"k" * (64 * 1024 + 1))
    os.mkfifo(secrets / "fifo")
    monkeypatch.chdir(tmp_path)


def refusal(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    return raised.value


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pingmon.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def valid() -> Config:
    return load_config(TESTDATA / "valid.yaml")


# Refusals: one testdata file per rule, each with its exact lines.


@pytest.mark.parametrize(("name", "expected"), INVALID, ids=[name for name, _ in INVALID])
def test_invalid_file_is_refused_with_exactly_these_lines(name: str, expected: list[str]) -> None:
    path = TESTDATA / name
    assert refusal(path).lines() == [f"{path}: {line}" for line in expected]


def test_every_invalid_testdata_file_has_its_expected_lines() -> None:
    on_disk = {path.name for path in TESTDATA.glob("invalid-*.yaml")}
    assert on_disk == {name for name, _ in INVALID} - {"invalid-missing-file.yaml"}


def test_the_missing_file_of_the_table_really_is_missing() -> None:
    assert not (TESTDATA / "invalid-missing-file.yaml").exists()


def test_a_file_with_several_problems_reports_each_on_its_own_line_naming_its_path() -> None:
    problems = refusal(TESTDATA / "invalid-several-problems.yaml").problems
    assert [problem.path for problem in problems] == [
        "listen",
        "concurrency",
        "targets[1].name",
        "targets[1].destination_id",
        "targets[2].interval",
        "targets[3].timeout",
    ]


@pytest.mark.parametrize("text", ["", "\n", "  \n\t\n", "# just a comment\n\n  # another\n"])
def test_a_file_without_settings_is_refused_as_empty_not_run_without_targets(
    tmp_path: Path, text: str
) -> None:
    path = write_config(tmp_path, text)
    assert refusal(path).lines() == [f"{path}: {EMPTY_FILE}"]


@pytest.mark.parametrize("text", ["---\n", "null\n", "~\n"])
def test_a_null_document_is_not_a_mapping(tmp_path: Path, text: str) -> None:
    path = write_config(tmp_path, text)
    assert refusal(path).lines() == [f"{path}: the file must hold a mapping of settings"]


def test_an_explicit_empty_mapping_gives_the_built_in_defaults(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, "{}\n"))
    assert (config.settings, config.targets) == (Settings(), ())


def test_a_provider_whose_type_is_not_a_string_is_refused_not_crashed(tmp_path: Path) -> None:
    path = write_config(tmp_path, "providers: {odd: {type: [1, 2]}}\nconcurrency: 0\n")
    assert refusal(path).lines() == [
        f"{path}: concurrency: Input should be greater than 0",
        f"{path}: providers.odd: unknown provider type [1, 2]; known types: {TYPES}",
    ]


# The valid file: defaults, overrides and every provider type.


def test_valid_file_loads_every_target_with_its_provider_type(valid: Config) -> None:
    assert [(t.name, t.provider_name, t.provider_type) for t in valid.targets] == [
        ("orders-webhook", "stripe-live", "stripe"),
        ("wedding-456", "ninepic", "ninepic"),
        ("pbx-main", "pbx", "simotel"),
        ("status", "status-page", "http"),
    ]


def test_valid_file_uses_every_provider_type(valid: Config) -> None:
    assert {target.provider_type for target in valid.targets} == set(PROVIDER_TYPES)


def test_valid_file_with_only_references_has_no_warnings(valid: Config) -> None:
    assert valid.warnings == ()


def test_defaults_are_applied_to_a_target_that_sets_nothing(valid: Config) -> None:
    target = valid.target("wedding-456").schedule
    schedule = (target.interval, target.timeout, target.jitter, target.failure_interval)
    assert schedule == (60.0, 10.0, 0.1, 30.0)
    assert (target.retries, target.max_body_bytes) == (1, 65536)


def test_a_target_value_overrides_the_default(valid: Config) -> None:
    orders, pbx = valid.target("orders-webhook").schedule, valid.target("pbx-main").schedule
    assert (orders.interval, orders.timeout, orders.retries) == (300.0, 20.0, 1)
    assert (pbx.interval, pbx.timeout, pbx.retries) == (5400.0, 10.0, 2)


def test_a_target_carries_its_provider_type_parameters(valid: Config) -> None:
    params: Any = valid.target("wedding-456").params
    assert (params.org_id, params.event_id) == (903, 456)


def test_a_provider_type_default_base_url_is_applied(valid: Config) -> None:
    assert valid.target("orders-webhook").provider.base_url == "https://api.stripe.com"


def test_provider_limits_are_read(valid: Config) -> None:
    provider = valid.target("orders-webhook").provider
    assert (provider.max_concurrency, provider.rate_limit) == (2, 5.0)


# Environment overrides.

SMALL = """\
listen: 127.0.0.1:9000
concurrency: 3
defaults: {interval: 30s, timeout: 2s}
providers:
  status-page: {type: http, base_url: "https://status.example.com"}
targets:
  - {name: inherits, provider: status-page}
  - {name: own-interval, provider: status-page, interval: 1m}
"""


def test_pingmon_concurrency_overrides_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PINGMON_CONCURRENCY", "7")
    assert load_config(write_config(tmp_path, SMALL)).settings.concurrency == 7


def test_pingmon_listen_overrides_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PINGMON_LISTEN", "[::1]:9999")
    assert load_config(write_config(tmp_path, SMALL)).settings.listen == "[::1]:9999"


def test_nested_override_changes_one_default_and_keeps_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PINGMON_DEFAULTS__INTERVAL", "7s")
    defaults = load_config(write_config(tmp_path, SMALL)).settings.defaults
    assert (defaults.interval, defaults.timeout) == (7.0, 2.0)


def test_nested_override_reaches_targets_that_inherit_and_spares_those_that_set_their_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PINGMON_DEFAULTS__INTERVAL", "7s")
    config = load_config(write_config(tmp_path, SMALL))
    assert [(t.name, t.schedule.interval) for t in config.targets] == [
        ("inherits", 7.0),
        ("own-interval", 60.0),
    ]


def test_an_invalid_override_is_refused_at_its_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PINGMON_BACKOFF__MAX", "5 minutes")
    path = write_config(tmp_path, SMALL)
    assert refusal(path).lines() == [f"{path}: backoff.max: '5 minutes' {DURATION_HINT}"]


@pytest.mark.parametrize("name", ["PINGMON_PROVIDERS", "PINGMON_DEFAULTS", "PINGMON_TARGETS"])
def test_an_override_of_a_nested_setting_that_is_not_json_is_a_problem_quoting_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setenv(name, '{"p": {"type": "stripe", "api_key": "sk_test_envcanary"')
    path = write_config(tmp_path, SMALL)

    (line,) = refusal(path).lines()

    assert line.startswith(f"{path}: {name}: not valid JSON (")
    assert "envcanary" not in line


# Secrets.


def test_env_secret_resolves_to_the_variable(valid: Config) -> None:
    provider: Any = valid.target("orders-webhook").provider
    assert provider.api_key.reveal() == ENV_SECRETS["TEST_STRIPE_API_KEY"]


def test_file_secret_resolves_without_its_trailing_newline(valid: Config) -> None:
    provider: Any = valid.target("pbx-main").provider
    assert provider.password.reveal() == FILE_SECRET


def test_secret_header_resolves(valid: Config) -> None:
    provider: Any = valid.target("status").provider
    assert provider.headers["Authorization"].reveal() == ENV_SECRETS["TEST_STATUS_TOKEN"]


LITERAL = """\
providers:
  stripe-live: {type: stripe, api_key: sk_test_literal-secret-value}
  status-page:
    type: http
    base_url: https://status.example.com
    headers: {Authorization: Bearer literal-header-secret-value}
"""


def test_literal_secret_is_accepted_with_a_warning_naming_its_path(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, LITERAL))
    hint = "a literal secret in the file; prefer {env: NAME} or {file: PATH}"
    assert config.warnings == (
        f"providers.stripe-live.api_key: {hint}",
        f"providers.status-page.headers: {hint}",
    )


def test_literal_secret_resolves_to_itself(tmp_path: Path) -> None:
    provider: Any = load_config(write_config(tmp_path, LITERAL)).settings.providers["stripe-live"]
    assert provider.api_key.reveal() == "sk_test_literal-secret-value"


def assert_no_secret_in(text: str, secrets: tuple[str, ...] = SECRET_VALUES) -> None:
    leaked = [secret for secret in secrets if secret in text]
    assert leaked == []


def test_no_secret_in_repr_or_str_of_the_config(valid: Config) -> None:
    assert_no_secret_in(repr(valid) + str(valid))


def test_no_secret_in_the_json_dump_of_the_settings(valid: Config) -> None:
    assert_no_secret_in(valid.settings.model_dump_json())


def test_no_secret_in_repr_of_a_target(valid: Config) -> None:
    assert_no_secret_in("".join(repr(target) for target in valid.targets))


def test_no_literal_secret_in_repr_or_json_dump(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, LITERAL))
    text = repr(config) + str(config) + config.settings.model_dump_json()
    assert_no_secret_in(text, ("literal-secret-value", "literal-header-secret-value"))


BAD_WITH_SECRETS = """\
providers:
  pasted: sk_live_pasted-secret-value
  stripe-live: {type: stripe, api_key: sk_live_literal-secret-value, bogus: 1}
  odd: {type: stripes, api_key: sk_live_other-secret-value}
  ninepic: {type: ninepic, api_key: {env: TEST_NINEPIC_API_KEY}, base_url: 5}
  status-page:
    type: http
    base_url: https://status.example.com
    headers: {Authorization: {env: TEST_STATUS_TOKEN}, X-Number: 5}
targets:
  - {name: wedding, provider: ninepic, org_id: x, event_id: 1}
"""


def test_no_secret_in_config_error_lines(tmp_path: Path) -> None:
    error = refusal(write_config(tmp_path, BAD_WITH_SECRETS))
    secrets = (*SECRET_VALUES, "pasted-secret", "literal-secret", "other-secret")
    assert len(error.lines()) == 6
    assert_no_secret_in("\n".join([*error.lines(), str(error), repr(error)]), secrets)


# The JSON Schema.


def test_json_schema_is_json_serialisable() -> None:
    assert json.loads(json.dumps(json_schema())) == json_schema()


def test_json_schema_lists_every_top_level_key() -> None:
    assert set(json_schema()["properties"]) == set(Settings.model_fields)


def test_json_schema_refuses_unknown_top_level_keys() -> None:
    assert json_schema()["additionalProperties"] is False


COMMON_TARGET_KEYS = {
    "name",
    "provider",
    "interval",
    "timeout",
    "jitter",
    "failure_interval",
    "retries",
    "max_body_bytes",
}


@pytest.mark.parametrize(
    ("definition", "parameters"),
    [
        ("StripeTarget", {"destination_id", "webhook"}),
        ("NinepicTarget", {"org_id", "event_id"}),
        ("SimotelTarget", {"webhook"}),
        ("HttpTarget", {"method", "path", "headers", "body", "expect"}),
    ],
)
def test_json_schema_includes_the_target_parameters_of_every_provider_type(
    definition: str, parameters: set[str]
) -> None:
    properties = set(json_schema()["$defs"][definition]["properties"])
    assert properties == {*parameters, *COMMON_TARGET_KEYS}


def test_json_schema_has_a_target_definition_per_provider_type() -> None:
    refs = json_schema()["properties"]["targets"]["items"]["anyOf"]
    assert len(refs) == len(PROVIDER_TYPES)


def test_valid_file_conforms_to_the_json_schema() -> None:
    document = yaml.safe_load((TESTDATA / "valid.yaml").read_text(encoding="utf-8"))
    jsonschema.validate(document, json_schema())


@pytest.mark.parametrize(
    ("status", "valid"),
    [([200, "2xx", "3XX"], True), (["6xx"], False), (["2x"], False), ([600], False)],
)
def test_json_schema_takes_status_codes_and_classes(status: list[object], valid: bool) -> None:
    document = yaml.safe_load((TESTDATA / "valid.yaml").read_text(encoding="utf-8"))
    http_target = next(t for t in document["targets"] if "expect" in t)
    http_target["expect"]["status"] = status
    if valid:
        jsonschema.validate(document, json_schema())
    else:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(document, json_schema())


# The example the lead ships.


def test_example_config_validates_with_its_secrets_provided(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    for name in set(re.findall(r"\{env: (\w+)\}", text)):
        monkeypatch.setenv(name, f"{name.lower()}-value")
    # Secret files live on the deployment's volumes: point each at a file in tmp_path instead.
    for number, location in enumerate(sorted(set(re.findall(r"\{file: ([^}\s]+)\}", text)))):
        secret = tmp_path / f"secret-{number}"
        secret.write_text("value\n", encoding="utf-8")
        text = text.replace(f"{{file: {location}}}", f"{{file: {secret}}}")
    config = load_config(write_config(tmp_path, text))
    assert (len(config.targets), config.warnings) == (len(yaml.safe_load(text)["targets"]), ())


def test_a_provider_lists_every_credential_it_holds(valid: Config) -> None:
    secrets = valid.target("pbx-main").provider.secrets()
    assert [secret.source for secret in secrets] == [
        "env:TEST_SIMOTEL_API_KEY",
        "env:TEST_SIMOTEL_USER",
        "file:secrets/simotel-password",
    ]


def test_a_target_name_that_cannot_be_a_good_label_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad-name.yaml"
    path.write_text(
        "providers: {s: {type: http, base_url: 'http://127.0.0.1:9'}}\n"
        "targets: [{name: 'has space', provider: s}]\n"
    )
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    assert refused.value.lines() == [
        f"{path}: targets[0].name: must start with a letter or digit and hold only letters, "
        "digits and _ . : - (at most 100 characters); it becomes the `target` label"
    ]


def test_refused_defaults_do_not_add_misleading_schedule_problems(tmp_path: Path) -> None:
    path = tmp_path / "bad-defaults.yaml"
    path.write_text(
        "defaults: {interval: 2m, timeout: nonsense}\n"
        "providers: {s: {type: http, base_url: 'http://127.0.0.1:9'}}\n"
        "targets: [{name: a, provider: s, interval: 1m}]\n"
    )
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    assert [problem.path for problem in refused.value.problems] == ["defaults.timeout"]


# Webhooks: only stripe and simotel targets take one; its secrets are secrets like the others.

WEBHOOK_SECRETS = {
    "TEST_STRIPE_WEBHOOK_SECRET": "whsec_webhook-signing-secret-value",
    "TEST_SIMOTEL_WEBHOOK_USER": "simotel-webhook-user-secret-value",
    "TEST_SIMOTEL_WEBHOOK_PASSWORD": "simotel-webhook-password-secret-value",
}
WEBHOOK_PROVIDERS = """\
providers:
  stripe-live: {type: stripe, api_key: {env: TEST_STRIPE_API_KEY}}
  ninepic: {type: ninepic, api_key: {env: TEST_NINEPIC_API_KEY}}
  pbx: {type: simotel, base_url: "http://127.0.0.1:9", auth: token, api_key: {env: TEST_SIMOTEL_API_KEY}}
  status-page: {type: http, base_url: "https://status.example.com"}
"""  # noqa: E501
STRIPE_HOOK = "{signing_secret: {env: TEST_STRIPE_WEBHOOK_SECRET}}"
SIMOTEL_HOOK = (
    "{username: {env: TEST_SIMOTEL_WEBHOOK_USER}, password: {env: TEST_SIMOTEL_WEBHOOK_PASSWORD}}"
)
NO_WEBHOOK = "{} pings send no webhook; only stripe and simotel targets do"
LITERAL_HINT = "a literal secret in the file; prefer {env: NAME} or {file: PATH}"


@pytest.fixture
def webhook_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in WEBHOOK_SECRETS.items():
        monkeypatch.setenv(name, value)


def webhook_config(tmp_path: Path, targets: str, top: str = "") -> Path:
    return write_config(tmp_path, f"{top}{WEBHOOK_PROVIDERS}targets:\n{targets}")


def stripe_hook_target(name: str = "orders", webhook: str = STRIPE_HOOK, extra: str = "") -> str:
    return (
        f"  - {{name: {name}, provider: stripe-live, destination_id: ed_test_1, interval: 5m"
        f"{extra}, webhook: {webhook}}}\n"
    )


def simotel_hook_target(name: str = "pbx", webhook: str = SIMOTEL_HOOK, extra: str = "") -> str:
    return f"  - {{name: {name}, provider: pbx, interval: 5m{extra}, webhook: {webhook}}}\n"


@pytest.mark.usefixtures("webhook_env")
def test_stripe_and_simotel_webhooks_load_with_their_defaults(tmp_path: Path) -> None:
    path = webhook_config(tmp_path, stripe_hook_target() + simotel_hook_target())
    config = load_config(path)
    stripe: Any = config.target("orders").params.webhook_settings
    simotel: Any = config.target("pbx").params.webhook_settings
    assert (stripe.timeout, stripe.tolerance, stripe.allowed_sources) == (120.0, 300.0, ())
    assert stripe.signing_secret.reveal() == WEBHOOK_SECRETS["TEST_STRIPE_WEBHOOK_SECRET"]
    assert simotel.username.reveal() == WEBHOOK_SECRETS["TEST_SIMOTEL_WEBHOOK_USER"]
    assert simotel.password.reveal() == WEBHOOK_SECRETS["TEST_SIMOTEL_WEBHOOK_PASSWORD"]
    assert (config.settings.webhook_listen, config.settings.webhook_path_prefix) == (None, "")
    assert config.warnings == ()


@pytest.mark.usefixtures("webhook_env")
def test_webhook_settings_are_read(tmp_path: Path) -> None:
    hook = (
        "{timeout: 90s, tolerance: 10m, signing_secret: {env: TEST_STRIPE_WEBHOOK_SECRET}, "
        "allowed_sources: [192.168.51.0/24, 10.0.0.7, '2001:db8::/32']}"
    )
    config = load_config(webhook_config(tmp_path, stripe_hook_target(webhook=hook)))
    webhook: Any = config.target("orders").params.webhook_settings
    assert (webhook.timeout, webhook.tolerance) == (90.0, 600.0)
    assert [str(network) for network in webhook.networks()] == [
        "192.168.51.0/24",
        "10.0.0.7/32",
        "2001:db8::/32",
    ]


def test_a_target_without_webhook_has_no_webhook_settings(valid: Config) -> None:
    assert [target.params.webhook_settings for target in valid.targets] == [None] * 4


@pytest.mark.usefixtures("webhook_env")
def test_a_webhook_on_a_ninepic_or_http_target_is_refused_with_its_own_line(
    tmp_path: Path,
) -> None:
    path = webhook_config(
        tmp_path,
        f"  - {{name: w, provider: ninepic, org_id: 1, event_id: 2, webhook: {STRIPE_HOOK}}}\n"
        "  - {name: h, provider: status-page, webhook: {timeout: 1m}}\n" + stripe_hook_target(),
    )
    assert refusal(path).lines() == [
        f"{path}: targets[0].webhook: {NO_WEBHOOK.format('ninepic')}",
        f"{path}: targets[1].webhook: {NO_WEBHOOK.format('http')}",
    ]


@pytest.mark.usefixtures("webhook_env")
def test_a_refused_webhook_does_not_hide_the_targets_other_problems(tmp_path: Path) -> None:
    path = webhook_config(
        tmp_path,
        "  - {name: w, provider: ninepic, org_id: x, event_id: 2, webhook: {}}\n",
    )
    assert [problem.path for problem in refusal(path).problems] == [
        "targets[0].webhook",
        "targets[0].org_id",
    ]


@pytest.mark.usefixtures("webhook_env")
@pytest.mark.parametrize(
    "target",
    [
        stripe_hook_target(
            webhook="{timeout: 10m, signing_secret: {env: TEST_STRIPE_WEBHOOK_SECRET}}"
        ),
        simotel_hook_target(
            webhook="{timeout: 10m, username: {env: TEST_SIMOTEL_WEBHOOK_USER}, "
            "password: {env: TEST_SIMOTEL_WEBHOOK_PASSWORD}}"
        ),
    ],
    ids=["stripe", "simotel"],
)
def test_a_webhook_timeout_above_the_interval_is_refused(tmp_path: Path, target: str) -> None:
    path = webhook_config(tmp_path, target)
    assert refusal(path).lines() == [
        f"{path}: targets[0].webhook.timeout: must not exceed the target's interval (10m > 5m)"
    ]


@pytest.mark.usefixtures("webhook_env")
def test_a_webhook_timeout_equal_to_the_interval_is_accepted(tmp_path: Path) -> None:
    hook = "{timeout: 5m, signing_secret: {env: TEST_STRIPE_WEBHOOK_SECRET}}"
    config = load_config(webhook_config(tmp_path, stripe_hook_target(webhook=hook)))
    webhook: Any = config.target("orders").params.webhook_settings
    assert webhook.timeout == 300.0


@pytest.mark.usefixtures("webhook_env")
def test_the_default_webhook_timeout_is_judged_against_the_inherited_interval(
    tmp_path: Path,
) -> None:
    path = write_config(
        tmp_path,
        f"defaults: {{interval: 1m, timeout: 5s}}\n{WEBHOOK_PROVIDERS}targets:\n"
        f"  - {{name: orders, provider: stripe-live, destination_id: ed_test_1, "
        f"webhook: {STRIPE_HOOK}}}\n",
    )
    assert refusal(path).lines() == [
        f"{path}: targets[0].webhook.timeout: must not exceed the target's interval (2m > 1m)"
    ]


def test_a_stripe_webhook_without_signing_secret_is_refused(tmp_path: Path) -> None:
    path = webhook_config(tmp_path, stripe_hook_target(webhook="{timeout: 1m}"))
    assert refusal(path).lines() == [f"{path}: targets[0].webhook.signing_secret: is required"]


@pytest.mark.usefixtures("webhook_env")
def test_a_simotel_webhook_without_password_is_refused(tmp_path: Path) -> None:
    hook = "{username: {env: TEST_SIMOTEL_WEBHOOK_USER}}"
    path = webhook_config(tmp_path, simotel_hook_target(webhook=hook))
    assert refusal(path).lines() == [f"{path}: targets[0].webhook.password: is required"]


@pytest.mark.usefixtures("webhook_env")
def test_a_webhook_secret_from_an_unset_variable_is_refused_at_its_path(tmp_path: Path) -> None:
    hook = "{signing_secret: {env: TEST_UNSET_WEBHOOK_SECRET}}"
    path = webhook_config(tmp_path, stripe_hook_target(webhook=hook))
    assert refusal(path).lines() == [
        f"{path}: targets[0].webhook.signing_secret: "
        "environment variable TEST_UNSET_WEBHOOK_SECRET is not set"
    ]


@pytest.mark.usefixtures("webhook_env")
def test_an_unknown_webhook_key_is_refused(tmp_path: Path) -> None:
    hook = "{signing_secret: {env: TEST_STRIPE_WEBHOOK_SECRET}, tolerence: 5m}"
    path = webhook_config(tmp_path, stripe_hook_target(webhook=hook))
    assert refusal(path).lines() == [f"{path}: targets[0].webhook.tolerence: {UNKNOWN_KEY}"]


@pytest.mark.usefixtures("webhook_env")
def test_a_bad_allowed_sources_entry_is_refused_naming_it(tmp_path: Path) -> None:
    hook = (
        "{username: {env: TEST_SIMOTEL_WEBHOOK_USER}, "
        "password: {env: TEST_SIMOTEL_WEBHOOK_PASSWORD}, "
        "allowed_sources: [192.168.51.0/24, 192.168.51.300]}"
    )
    path = webhook_config(tmp_path, simotel_hook_target(webhook=hook))
    assert refusal(path).lines() == [
        f"{path}: targets[0].webhook.allowed_sources: '192.168.51.300' is not an IP address "
        "or CIDR, e.g. 192.168.51.0/24"
    ]


@pytest.mark.usefixtures("webhook_env")
@pytest.mark.parametrize(
    "listen", ["0.0.0.0", "127.0.0.1:http", "127.0.0.1:70000", "127.0.0.1:\u0669\u0661"]
)
def test_a_bad_webhook_listen_is_refused(tmp_path: Path, listen: str) -> None:
    path = webhook_config(tmp_path, stripe_hook_target(), top=f"webhook_listen: '{listen}'\n")
    assert refusal(path).lines() == [
        f"{path}: webhook_listen: '{listen}' is not host:port, e.g. 0.0.0.0:9108"
    ]


@pytest.mark.usefixtures("webhook_env")
@pytest.mark.parametrize("listen", ["127.0.0.1:9109", "[::1]:9109", ":9109"])
def test_a_good_webhook_listen_is_kept(tmp_path: Path, listen: str) -> None:
    path = webhook_config(tmp_path, stripe_hook_target(), top=f"webhook_listen: '{listen}'\n")
    assert load_config(path).settings.webhook_listen == listen


@pytest.mark.usefixtures("webhook_env")
def test_webhook_listen_on_the_listen_address_is_refused(tmp_path: Path) -> None:
    top = "listen: '127.0.0.1:9108'\nwebhook_listen: '127.0.0.1:9108'\n"
    path = webhook_config(tmp_path, stripe_hook_target(), top=top)
    assert refusal(path).lines() == [
        f"{path}: webhook_listen must differ from listen; leave it unset to receive webhooks "
        "on listen"
    ]


@pytest.mark.usefixtures("webhook_env")
@pytest.mark.parametrize("prefix", ["pingmon/", "/a/", "pingmon", "/", "/a//b", "/a b"])
def test_a_bad_webhook_path_prefix_is_refused(tmp_path: Path, prefix: str) -> None:
    path = webhook_config(tmp_path, stripe_hook_target(), top=f"webhook_path_prefix: '{prefix}'\n")
    assert refusal(path).lines() == [
        f"{path}: webhook_path_prefix: must be empty or a path such as /pingmon "
        "(no trailing slash)"
    ]


@pytest.mark.usefixtures("webhook_env")
@pytest.mark.parametrize("prefix", ["", "/pingmon", "/a/b", "/hooks-1.v2"])
def test_a_good_webhook_path_prefix_is_kept(tmp_path: Path, prefix: str) -> None:
    path = webhook_config(tmp_path, stripe_hook_target(), top=f"webhook_path_prefix: '{prefix}'\n")
    assert load_config(path).settings.webhook_path_prefix == prefix


@pytest.mark.usefixtures("webhook_env")
def test_pingmon_webhook_settings_can_be_overridden_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PINGMON_WEBHOOK_LISTEN", "127.0.0.1:9200")
    monkeypatch.setenv("PINGMON_WEBHOOK_PATH_PREFIX", "/pingmon")
    settings = load_config(webhook_config(tmp_path, stripe_hook_target())).settings
    assert (settings.webhook_listen, settings.webhook_path_prefix) == (
        "127.0.0.1:9200",
        "/pingmon",
    )


@pytest.mark.usefixtures("webhook_env")
def test_watched_files_include_a_webhook_secret_file(tmp_path: Path) -> None:
    (tmp_path / "secrets" / "whsec").write_text("whsec_from-a-file-secret\n", encoding="utf-8")
    hook = "{signing_secret: {file: secrets/whsec}}"
    path = webhook_config(tmp_path, stripe_hook_target(webhook=hook) + simotel_hook_target())
    config = load_config(path)
    assert config.watched_files() == (str(path), "secrets/whsec")
    webhook: Any = config.target("orders").params.webhook_settings
    assert webhook.signing_secret.reveal() == "whsec_from-a-file-secret"


@pytest.mark.usefixtures("webhook_env")
def test_a_secret_file_named_twice_is_watched_once(tmp_path: Path) -> None:
    (tmp_path / "secrets" / "whsec").write_text("whsec_shared-file-secret\n", encoding="utf-8")
    hook = "{signing_secret: {file: secrets/whsec}}"
    targets = stripe_hook_target("a", hook) + stripe_hook_target("b", hook)
    path = webhook_config(tmp_path, targets)
    assert load_config(path).watched_files() == (str(path), "secrets/whsec")


@pytest.mark.usefixtures("webhook_env")
def test_config_secrets_lists_provider_and_webhook_secrets(tmp_path: Path) -> None:
    config = load_config(webhook_config(tmp_path, stripe_hook_target() + simotel_hook_target()))
    assert [secret.source for secret in config.secrets()] == [
        "env:TEST_STRIPE_API_KEY",
        "env:TEST_NINEPIC_API_KEY",
        "env:TEST_SIMOTEL_API_KEY",
        "env:TEST_STRIPE_WEBHOOK_SECRET",
        "env:TEST_SIMOTEL_WEBHOOK_USER",
        "env:TEST_SIMOTEL_WEBHOOK_PASSWORD",
    ]


LITERAL_WEBHOOK_SECRETS = (
    "whsec_literal-webhook-secret-value",
    "literal-webhook-user-secret-value",
    "literal-webhook-password-secret-value",
)


def literal_webhook_targets() -> str:
    return (
        stripe_hook_target("by-reference")
        + stripe_hook_target("literal", f"{{signing_secret: {LITERAL_WEBHOOK_SECRETS[0]}}}")
        + simotel_hook_target(
            webhook=f"{{username: {LITERAL_WEBHOOK_SECRETS[1]}, "
            f"password: {LITERAL_WEBHOOK_SECRETS[2]}}}"
        )
    )


@pytest.mark.usefixtures("webhook_env")
def test_a_literal_webhook_secret_is_accepted_with_a_warning_naming_its_target(
    tmp_path: Path,
) -> None:
    config = load_config(webhook_config(tmp_path, literal_webhook_targets()))
    assert config.warnings == (
        f"targets[1].webhook: {LITERAL_HINT}",
        f"targets[2].webhook: {LITERAL_HINT}",
    )
    webhook: Any = config.target("literal").params.webhook_settings
    assert webhook.signing_secret.reveal() == LITERAL_WEBHOOK_SECRETS[0]
    assert_no_secret_in("\n".join(config.warnings), LITERAL_WEBHOOK_SECRETS)


@pytest.mark.usefixtures("webhook_env")
def test_no_literal_webhook_secret_in_the_repr_of_its_target(tmp_path: Path) -> None:
    config = load_config(webhook_config(tmp_path, literal_webhook_targets()))
    text = "".join(repr(target) + repr(target.params) for target in config.targets)
    assert_no_secret_in(text, LITERAL_WEBHOOK_SECRETS)


@pytest.mark.usefixtures("webhook_env")
def test_no_literal_webhook_secret_in_repr_or_json_dump_of_the_config(tmp_path: Path) -> None:
    config = load_config(webhook_config(tmp_path, literal_webhook_targets()))
    text = repr(config) + str(config) + config.settings.model_dump_json()
    assert_no_secret_in(text, LITERAL_WEBHOOK_SECRETS)


@pytest.mark.usefixtures("webhook_env")
def test_no_webhook_secret_in_the_repr_of_a_config_using_references(tmp_path: Path) -> None:
    config = load_config(webhook_config(tmp_path, stripe_hook_target() + simotel_hook_target()))
    text = repr(config) + str(config) + "".join(repr(t) for t in config.targets)
    assert_no_secret_in(text, tuple(WEBHOOK_SECRETS.values()))


BAD_WEBHOOKS_WITH_SECRETS = """\
  - name: n
    provider: ninepic
    org_id: 1
    event_id: 2
    webhook: {signing_secret: whsec_on-ninepic-secret-value}
  - name: s
    provider: stripe-live
    destination_id: ed_test_1
    interval: 1m
    webhook: {timeout: 5m, signing_secret: whsec_too-slow-secret-value}
  - name: p
    provider: pbx
    webhook: {username: user-typo-secret-value, pasword: password-typo-secret-value}
  - name: q
    provider: pbx
    webhook: pasted-instead-of-a-mapping-secret-value
  - name: r
    provider: stripe-live
    destination_id: ed_test_2
    webhook: {signing_secret: whsec_bad-sources-secret-value, allowed_sources: [nowhere]}
"""


def test_no_webhook_secret_in_config_error_lines(tmp_path: Path) -> None:
    error = refusal(webhook_config(tmp_path, BAD_WEBHOOKS_WITH_SECRETS))
    assert [problem.path for problem in error.problems] == [
        "targets[0].webhook",
        "targets[1].webhook.timeout",
        "targets[2].webhook.password",
        "targets[2].webhook.pasword",
        "targets[3].webhook",
        "targets[4].webhook.allowed_sources",
    ]
    text = "\n".join([*error.lines(), str(error), repr(error)])
    assert_no_secret_in(text, ("secret-value",))
