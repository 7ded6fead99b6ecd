"""``PINGMON_*`` variables, read by pydantic-settings; one that cannot be decoded is named."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_settings import EnvSettingsSource

from pingmon.errors import Problem

ENV_PREFIX = "PINGMON_"
# What os.environ makes of a variable's bytes that are not UTF-8 (surrogateescape): passed on,
# it reaches a socket address or a header and raises UnicodeEncodeError there.
_SURROGATE = re.compile(r"[\ud800-\udfff]")


class OverrideRefused(Exception):
    """A ``PINGMON_*`` variable pydantic-settings could not decode; not a ValueError, so that
    pydantic-settings lets it through instead of raising its own SettingsError."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        super().__init__(str(problem))


class EnvironmentSource(EnvSettingsSource):
    """pydantic-settings' environment source, naming the variable whose JSON is not JSON,
    or whose value is not UTF-8."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        variables = super()._load_env_vars()
        for name, value in variables.items():
            if name.upper().startswith(ENV_PREFIX) and value and _SURROGATE.search(value):
                raise OverrideRefused(Problem(name.upper(), "not UTF-8 text"))
        return variables

    def prepare_field_value(
        self, field_name: str, field: FieldInfo, value: Any, value_is_complex: bool
    ) -> Any:
        try:
            return super().prepare_field_value(field_name, field, value, value_is_complex)
        except (ValueError, RecursionError) as error:
            variable = f"{ENV_PREFIX}{field_name}".upper() + ("" if value is not None else "__*")
            reason = "nested too deeply" if isinstance(error, RecursionError) else str(error)
            raise OverrideRefused(Problem(variable, f"not valid JSON ({reason})")) from None
