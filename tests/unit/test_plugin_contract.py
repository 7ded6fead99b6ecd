"""What the registry refuses of a plugin's models: every way a params model could take a key
pingmon keeps (an alias of a common key, ``webhook`` without a webhook kind) or let a typo
through (a model that does not refuse unknown keys), named at load, never a silent check."""

from __future__ import annotations

from importlib.metadata import EntryPoint
from typing import Literal

import pytest
from pydantic import AliasChoices, AliasPath, ConfigDict, Field

from pingmon.errors import ErrorClass
from pingmon.providers import PROVIDER_TYPES
from pingmon.providers.base import (
    HttpResponse,
    PreparedRequest,
    Provider,
    ProviderSettings,
    TargetParams,
    Verdict,
)
from pingmon.providers.registry import PluginError, input_keys, load_provider_types


class _Settings(ProviderSettings):
    type: Literal["odd"] = "odd"


class _Base(Provider[_Settings, TargetParams]):
    type_name = "odd"
    settings_model = _Settings
    params_model = TargetParams

    def request(self, params: TargetParams, check_id: str) -> PreparedRequest:
        return PreparedRequest("GET", self.settings.base_url)

    def judge(
        self, params: TargetParams, request: PreparedRequest, response: HttpResponse
    ) -> Verdict:
        raise NotImplementedError


class _AliasParams(TargetParams):
    every: float = Field(default=1.0, alias="interval")


class _ChoicesParams(TargetParams):
    wait: float = Field(default=1.0, validation_alias=AliasChoices("patience", "timeout"))


class _PathParams(TargetParams):
    tries: int = Field(default=1, validation_alias=AliasPath("retries", 0))


class _WebhookParams(TargetParams):
    webhook: str = "https://example.com/hook"


class _LooseParams(TargetParams):
    model_config = ConfigDict(extra="allow", frozen=True)


class _LooseSettings(_Settings):
    model_config = ConfigDict(extra="ignore", frozen=True)


class AliasProvider(_Base):
    params_model = _AliasParams


class ChoicesProvider(_Base):
    params_model = _ChoicesParams


class PathProvider(_Base):
    params_model = _PathParams


class WebhookFieldProvider(_Base):
    params_model = _WebhookParams


class LooseParamsProvider(_Base):
    params_model = _LooseParams


class LooseSettingsProvider(_Base):
    settings_model = _LooseSettings


@pytest.mark.parametrize(
    ("provider", "problem"),
    [
        (AliasProvider, "params_model declares interval, which every target has already"),
        (ChoicesProvider, "params_model declares timeout, which every target has already"),
        (PathProvider, "params_model declares retries, which every target has already"),
        (WebhookFieldProvider, "params_model declares webhook, which only a type with a webhook"),
        (LooseParamsProvider, '_LooseParams must refuse unknown keys (extra="forbid"'),
        (LooseSettingsProvider, '_LooseSettings must refuse unknown keys (extra="forbid"'),
    ],
    ids=["alias", "alias-choices", "alias-path", "webhook-without-kind", "loose-params",
         "loose-settings"],
)  # fmt: skip
def test_a_plugin_whose_models_would_take_pingmons_keys_or_typos_is_refused(
    provider: type[_Base], problem: str
) -> None:
    entry = EntryPoint("odd", f"{__name__}:{provider.__name__}", "pingmon.providers")
    with pytest.raises(PluginError) as refused:
        load_provider_types([entry])
    assert problem in str(refused.value)
    assert "provider type 'odd'" in str(refused.value)


@pytest.mark.parametrize("name", sorted(PROVIDER_TYPES))
def test_every_built_in_type_keeps_the_contract_the_registry_asks_of_plugins(name: str) -> None:
    provider = PROVIDER_TYPES[name]
    assert provider.params_model.model_config.get("extra") == "forbid"
    assert provider.settings_model.model_config.get("extra") == "forbid"
    assert not {"name", "provider", "interval", "timeout"} & input_keys(provider.params_model)


class _Judge(_Base):
    """A judge returning whatever the test puts in ``answer``."""

    answer: object = None

    def judge(
        self, params: TargetParams, request: PreparedRequest, response: HttpResponse
    ) -> Verdict:
        return self.answer  # type: ignore[return-value]


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        (None, "a NoneType, not a Verdict"),
        ("ok", "a str, not a Verdict"),
        (Verdict("none", "x"), "an error_class of type str"),  # type: ignore[arg-type]
        (Verdict(ErrorClass.NONE, 12345), "a detail of type int"),  # type: ignore[arg-type]
        (Verdict(ErrorClass.NONE, "x", retry="no"), "a retry of type str"),  # type: ignore[arg-type]
        (Verdict(ErrorClass.NONE, "x", event_id=7), "an event_id of type int"),  # type: ignore[arg-type]
    ],
    ids=["none", "str", "class-str", "detail-int", "retry-str", "event-id-int"],
)
def test_a_malformed_verdict_is_a_type_error_naming_the_judge(
    answer: object, problem: str
) -> None:
    provider = _Judge(_Settings(base_url="http://127.0.0.1:9"))
    provider.answer = answer
    request = provider.request(TargetParams(), "c")
    with pytest.raises(TypeError, match=f"_Judge.judge returned .*{problem}"):
        provider.assess(TargetParams(), request, HttpResponse(200, {}, b""))


def test_a_well_formed_verdict_passes_through_assess() -> None:
    provider = _Judge(_Settings(base_url="http://127.0.0.1:9"))
    provider.answer = Verdict(ErrorClass.NONE, "fine", retry=False, event_id="evt_1")
    request = provider.request(TargetParams(), "c")
    assert provider.assess(TargetParams(), request, HttpResponse(200, {}, b"")) is provider.answer
