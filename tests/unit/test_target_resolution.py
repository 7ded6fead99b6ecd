"""Target resolution: one schedule per target (defaults overlaid with its own values), its two
halves (common keys, the type's params) validated apart under ``targets[i]``, and the rules."""

from __future__ import annotations

from dataclasses import fields
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Literal

import pytest

from pingmon.config import Defaults, json_schema, load_config
from pingmon.errors import ConfigError, Problem
from pingmon.providers import PROVIDER_TYPES
from pingmon.providers.base import (
    COMMON_TARGET_KEYS,
    HttpResponse,
    PreparedRequest,
    Provider,
    ProviderSettings,
    TargetParams,
    Verdict,
)
from pingmon.providers.http import HttpParams
from pingmon.providers.ninepic import NinepicParams
from pingmon.providers.registry import PluginError, load_provider_types
from pingmon.schedule import Schedule, schedule_problems
from pingmon.targets import TargetSettings

UNKNOWN_KEY = "unknown key (refused so that a typo never silently changes a check)"

PROVIDERS = """\
providers:
  status-page: {type: http, base_url: "https://status.example.com"}
  ninepic: {type: ninepic, api_key: {env: TEST_NINEPIC_API_KEY}}
  stripe-live: {type: stripe, api_key: {env: TEST_STRIPE_API_KEY}}
"""
DEFAULTS = """\
defaults:
  interval: 2m
  timeout: 7s
  jitter: 0.2
  failure_interval: 1m
  retries: 2
  max_body_bytes: 4096
"""
DEFAULT_SCHEDULE = Schedule(
    interval=120.0, timeout=7.0, jitter=0.2, failure_interval=60.0, retries=2, max_body_bytes=4096
)


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_NINEPIC_API_KEY", "ninepic-secret-value")
    monkeypatch.setenv("TEST_STRIPE_API_KEY", "sk_test_stripe-secret-value")
    monkeypatch.setenv("TEST_STRIPE_WEBHOOK_SECRET", "whsec_webhook-signing-secret-value")


def _write(tmp_path: Path, targets: str, defaults: str = DEFAULTS) -> Path:
    path = tmp_path / "pingmon.yaml"
    path.write_text(f"{defaults}{PROVIDERS}targets:\n{targets}", encoding="utf-8")
    return path


def _lines(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    prefix = f"{path}: "
    return [line.removeprefix(prefix) for line in refused.value.lines()]


# One source of truth: the schedule.


def test_a_target_that_sets_nothing_has_the_defaults_as_its_schedule(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, "  - {name: a, provider: status-page}\n"))
    [target] = config.targets
    assert target.schedule == DEFAULT_SCHEDULE
    assert target.schedule == Schedule(**config.settings.defaults.model_dump())


def test_the_params_hold_only_the_types_own_keys(tmp_path: Path) -> None:
    targets = "  - {name: a, provider: ninepic, org_id: 9, event_id: 4, interval: 5m}\n"
    [target] = load_config(_write(tmp_path, targets)).targets
    assert target.params == NinepicParams(org_id=9, event_id=4)
    assert not hasattr(target.params, "interval")
    assert not hasattr(target.params, "name")
    assert target.schedule.interval == 300.0


def test_a_targets_own_values_win_over_the_defaults(tmp_path: Path) -> None:
    targets = (
        "  - {name: a, provider: status-page, interval: 10m, timeout: 30s, jitter: 0,\n"
        "     failure_interval: 5m, retries: 0, max_body_bytes: 100}\n"
    )
    [target] = load_config(_write(tmp_path, targets)).targets
    assert target.schedule == Schedule(
        interval=600.0, timeout=30.0, jitter=0.0, failure_interval=300.0, retries=0,
        max_body_bytes=100,
    )  # fmt: skip


def test_a_target_sets_some_values_and_inherits_the_rest(tmp_path: Path) -> None:
    targets = "  - {name: a, provider: status-page, timeout: 3s, retries: 0}\n"
    [target] = load_config(_write(tmp_path, targets)).targets
    assert target.schedule == Schedule(
        interval=120.0, timeout=3.0, jitter=0.2, failure_interval=60.0, retries=0,
        max_body_bytes=4096,
    )  # fmt: skip


def test_a_null_value_inherits_the_default(tmp_path: Path) -> None:
    targets = "  - {name: a, provider: status-page, failure_interval: null, retries: null}\n"
    [target] = load_config(_write(tmp_path, targets)).targets
    assert target.schedule == DEFAULT_SCHEDULE


def test_the_schedule_has_exactly_the_defaults_keys() -> None:
    assert {field.name for field in fields(Schedule)} == set(Defaults.model_fields)


def test_the_common_keys_are_exactly_target_settings_fields() -> None:
    assert set(TargetSettings.model_fields) == COMMON_TARGET_KEYS


# The cross-field rules, over a resolved schedule.


@pytest.mark.parametrize(
    ("schedule", "webhook_timeout", "expected"),
    [
        (DEFAULT_SCHEDULE, None, []),
        (DEFAULT_SCHEDULE, 120.0, []),
        (
            Schedule(60.0, 60.0, 0.1, None, 0, 1),
            None,
            [Problem("t.timeout", "must be below the interval (1m >= 1m)")],
        ),
        (
            Schedule(60.0, 10.0, 0.1, 120.0, 0, 1),
            None,
            [Problem("t.failure_interval", "must not exceed the interval (2m > 1m)")],
        ),
        (
            Schedule(60.0, 30.0, 0.1, 30.0, 0, 1),
            None,
            [Problem("t.timeout", "must be below failure_interval (30s >= 30s)")],
        ),
        (
            Schedule(60.0, 10.0, 0.1, None, 0, 1),
            90.0,
            [Problem("t.webhook.timeout", "must not exceed the target's interval (90s > 1m)")],
        ),
    ],
    ids=[
        "fine",
        "webhook-equal-interval",
        "timeout",
        "failure-interval",
        "timeout-failure",
        "webhook",
    ],
)
def test_schedule_rules(
    schedule: Schedule, webhook_timeout: float | None, expected: list[Problem]
) -> None:
    assert schedule_problems(schedule, webhook_timeout, "t") == expected


def test_rules_judge_the_resolved_schedule_and_name_the_target(tmp_path: Path) -> None:
    targets = (
        "  - {name: fine, provider: status-page}\n"
        "  - {name: short, provider: status-page, interval: 30s}\n"
        "  - {name: slow, provider: status-page, failure_interval: null, timeout: 2m}\n"
        "  - name: hook\n"
        "    provider: stripe-live\n"
        "    destination_id: ed_test_1\n"
        "    webhook: {signing_secret: {env: TEST_STRIPE_WEBHOOK_SECRET}, timeout: 3m}\n"
    )
    assert _lines(_write(tmp_path, targets)) == [
        "targets[1].failure_interval: must not exceed the interval (1m > 30s)",
        "targets[2].timeout: must be below the interval (2m >= 2m)",
        "targets[2].timeout: must be below failure_interval (2m >= 1m)",
        "targets[3].webhook.timeout: must not exceed the target's interval (3m > 2m)",
    ]


# Two halves, each validated by its own model, problems under targets[i].


def test_unknown_keys_of_either_half_are_named_at_the_target(tmp_path: Path) -> None:
    targets = (
        "  - {name: a, provider: ninepic, org_id: 9, event_id: 4, intervl: 5m}\n"
        "  - {name: b, provider: ninepic, org_id: 9, event_id: 4, evnt_id: 4}\n"
        "  - {name: c, provider: status-page, destination_id: ed_test_1}\n"
    )
    assert _lines(_write(tmp_path, targets)) == [
        f"targets[0].intervl: {UNKNOWN_KEY}",
        f"targets[1].evnt_id: {UNKNOWN_KEY}",
        f"targets[2].destination_id: {UNKNOWN_KEY}",
    ]


def test_an_unknown_key_inside_a_params_value_keeps_its_place(tmp_path: Path) -> None:
    targets = "  - {name: a, provider: status-page, expect: {statuss: [200]}, intervl: 5m}\n"
    assert _lines(_write(tmp_path, targets)) == [
        f"targets[0].expect.statuss: {UNKNOWN_KEY}",
        f"targets[0].intervl: {UNKNOWN_KEY}",
    ]


def test_problems_of_both_halves_come_together_type_fields_common_fields_unknown_keys(
    tmp_path: Path,
) -> None:
    targets = "  - {name: 'a b', provider: ninepic, typo: 1, org_id: x, jitter: 2}\n"
    assert _lines(_write(tmp_path, targets)) == [
        "targets[0].org_id: Input should be a valid integer, unable to parse string as an integer",
        "targets[0].event_id: is required",
        "targets[0].name: must start with a letter or digit and hold only letters, digits and "
        "_ . : - (at most 100 characters); it becomes the `target` label",
        "targets[0].jitter: Input should be less than or equal to 0.5",
        f"targets[0].typo: {UNKNOWN_KEY}",
    ]


def test_a_valid_half_does_not_hide_the_other_halfs_problem(tmp_path: Path) -> None:
    targets = (
        "  - {name: a, provider: status-page, timeout: forever}\n"
        "  - {name: b, provider: status-page, method: FETCH}\n"
    )
    lines = _lines(_write(tmp_path, targets))
    assert [line.partition(":")[0] for line in lines] == [
        "targets[0].timeout",
        "targets[1].method",
    ]


def test_the_params_are_the_types_own_model(tmp_path: Path) -> None:
    targets = "  - {name: a, provider: status-page, path: /healthz}\n"
    [target] = load_config(_write(tmp_path, targets)).targets
    assert type(target.params) is HttpParams
    assert target.params == HttpParams(path="/healthz")


# The JSON Schema still shows one object per type: the common keys and the type's own.


@pytest.mark.parametrize("provider_type", sorted(PROVIDER_TYPES))
def test_json_schema_target_has_the_common_keys_and_the_types_own(provider_type: str) -> None:
    definition = json_schema()["$defs"][f"{provider_type.capitalize()}Target"]
    params = PROVIDER_TYPES[provider_type].params_model.model_fields
    assert set(definition["properties"]) == COMMON_TARGET_KEYS | set(params)
    assert definition["additionalProperties"] is False


# A params model may not take a common key: it would never see it.


class _CommonKeySettings(ProviderSettings):
    type: Literal["commonkey"] = "commonkey"


class _CommonKeyParams(TargetParams):
    timeout: float = 1.0


class CommonKeyProvider(Provider[_CommonKeySettings, _CommonKeyParams]):
    type_name = "commonkey"
    settings_model = _CommonKeySettings
    params_model = _CommonKeyParams

    def request(self, params: _CommonKeyParams, check_id: str) -> PreparedRequest:
        return PreparedRequest("GET", self.settings.base_url)

    def judge(
        self, params: _CommonKeyParams, request: PreparedRequest, response: HttpResponse
    ) -> Verdict:
        raise NotImplementedError


def test_a_plugin_whose_params_take_a_common_key_is_refused_at_load() -> None:
    entry = EntryPoint("commonkey", f"{__name__}:CommonKeyProvider", "pingmon.providers")
    with pytest.raises(PluginError, match="params_model declares timeout, which every target"):
        load_provider_types([entry])
