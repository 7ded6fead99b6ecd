"""Provider types from other packages (the ``pingmon.providers`` entry points): the example
package installs and passes its own tests, and a broken plugin is one line naming it, exit 2."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.origin import serve_origin

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "statuspage"


def _env(site: Path) -> dict[str, str]:
    # Installed beside pingmon in a directory of its own, not into this venv: the other
    # tests count the built-in types.
    return {**os.environ, "PYTHONPATH": str(site)}


@pytest.fixture(scope="module")
def example_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("statuspage-site")
    command = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site)]
    subprocess.run([*command, str(EXAMPLE)], check=True, timeout=300)
    return site


def test_the_example_package_passes_its_own_tests_installed(example_site: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=EXAMPLE, env=_env(example_site), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr


def test_config_schema_includes_an_installed_type(example_site: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "pingmon", "config", "schema"],
        env=_env(example_site), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert '"StatuspageSettings"' in run.stdout


def _plugin(site: Path, package: str, name: str, value: str, module: str) -> None:
    """A package installed by hand: its module and its dist-info with one entry point."""
    (site / "broken_plugin.py").write_text(module)
    info = site / f"{package}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[pingmon.providers]\n{name} = {value}\n")


NOT_A_LITERAL = """
from pingmon.providers.base import Provider, ProviderSettings, TargetParams
class S(ProviderSettings):
    type: str = "odd"
class P(Provider):
    type_name = "odd"
    settings_model = S
    params_model = TargetParams
    def request(self, params, check_id): ...
    def judge(self, params, request, response): ...
"""


@pytest.mark.parametrize(
    ("name", "value", "module", "problem"),
    [
        ("gone", "broken_plugin:Gone", "import no_such_module\n", "could not be loaded"),
        ("gone", "broken_plugin:Gone", "Gone = 1\n", "is not a subclass of"),
        # A module that ends the process when imported (a CLI run at import): not exit 0
        # with nothing checked, which `pingmon check` would pass as healthy.
        ("gone", "broken_plugin:Gone", "raise SystemExit(0)\n", "loaded: SystemExit: 0"),
        ("http", "broken_plugin:P", NOT_A_LITERAL, "clashes with the type of that name"),
        ("odd", "broken_plugin:P", NOT_A_LITERAL, 'type: Literal["odd"]'),
    ],
    ids=["import-error", "not-a-provider", "exit-at-import", "name-clash", "bad-models"],
)
def test_a_broken_plugin_is_one_line_naming_its_package_and_exit_2(
    tmp_path: Path, name: str, value: str, module: str, problem: str
) -> None:
    _plugin(tmp_path, "acme_broken", name, value, module)
    for command in (["config", "schema"], ["check", "--config", str(tmp_path / "x.yaml")]):
        run = subprocess.run(
            [sys.executable, "-m", "pingmon", *command],
            env=_env(tmp_path), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert run.returncode == 2
        assert "Traceback" not in run.stderr
        [line] = run.stderr.splitlines()
        assert line.startswith(f"pingmon: provider type {name!r} from package 'acme_broken'")
        assert problem in line


GARBAGE_JUDGE = """
from typing import Literal
from pingmon.providers.base import (
    PreparedRequest, Provider, ProviderSettings, TargetParams, Verdict, url_join,
)
class S(ProviderSettings):
    type: Literal["sloppy"] = "sloppy"
class P(Provider):
    type_name = "sloppy"
    settings_model = S
    params_model = TargetParams
    def request(self, params, check_id):
        return PreparedRequest("GET", url_join(self.settings.base_url, "/status"))
    def judge(self, params, request, response):
        return Verdict("none", "fine")  # a str, not an ErrorClass
"""


async def test_a_judge_returning_a_malformed_verdict_is_an_internal_error_keeping_its_status(
    tmp_path: Path,
) -> None:
    _plugin(tmp_path, "acme_sloppy", "sloppy", "broken_plugin:P", GARBAGE_JUDGE)
    async with serve_origin() as origin:
        config = tmp_path / "pingmon.yaml"
        config.write_text(
            f"providers:\n  s: {{type: sloppy, base_url: '{origin.url}'}}\n"
            "targets:\n  - {name: t, provider: s}\n"
        )
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "pingmon", "check", "--config", str(config), "--json",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env=_env(tmp_path),
        )  # fmt: skip
        stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 1, stderr.decode()
    [result] = json.loads(stdout)
    assert result["error_class"] == "bad_response"
    assert result["detail"] == "internal error: TypeError"
    assert (result["http_status"], result["attempts"]) == (200, 1)
    assert "P.judge returned an error_class of type str" in stderr.decode()
