"""Issue 11's files through the real command line: exit status 2, the exact lines, no traceback,
and `check` and `run` refuse them the same way `config validate` does."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.unit.refusals import BOUNDED_LOADING, UNWORKABLE_VALUES

TESTDATA = Path(__file__).resolve().parent.parent / "testdata"
EXPECTED = dict(BOUNDED_LOADING + UNWORKABLE_VALUES)
ENV = {
    "TEST_STRIPE_API_KEY": "sk_test_cli-secret-value",
    "TEST_NINEPIC_API_KEY": "ninepic-cli-secret-value",
    "TEST_SIMOTEL_USER": "simotel-cli-user",
    "TEST_SIMOTEL_PASSWORD": "simotel-cli-password",
    "TEST_STATUS_TOKEN": "Bearer status-cli-token",
    "TEST_TWO_LINE_SECRET": "first line\nsecond line\n",
}
# Every case of issue 11 (sections 1 and 2) that a user meets through `config validate`.
VALIDATED = [
    "invalid-not-utf8.yaml",
    "invalid-utf16.yaml",
    "invalid-nesting-too-deep.yaml",
    "invalid-expect-json-too-deep.yaml",
    "invalid-aliases-expand-past-the-bound.yaml",
    "invalid-secret-file-device.yaml",
    "invalid-secret-file-fifo.yaml",
    "invalid-base-url-variable.yaml",
    "invalid-base-url-not-absolute-http.yaml",
    "invalid-base-url-userinfo-with-authorization.yaml",
    "invalid-header-name-not-token.yaml",
    "invalid-header-value-control-character.yaml",
    "invalid-secret-control-character.yaml",
    "invalid-ca-file.yaml",
    "invalid-duration-too-long.yaml",
]
# One of each stage (parsing, a model's value, the request built at load) through every command.
EVERY_COMMAND = [
    "invalid-aliases-expand-past-the-bound.yaml",
    "invalid-secret-file-fifo.yaml",
    "invalid-base-url-userinfo-with-authorization.yaml",
]
COMMANDS = (["config", "validate"], ["check"], ["run"])


@dataclass
class Completed:
    returncode: int
    stdout: str
    stderr: str


def pingmon(
    *args: str, cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 60
) -> Completed:
    """``python -m pingmon ARGS`` in ``cwd``; a hang fails the test at ``timeout``."""
    environment = {k: v for k, v in os.environ.items() if not k.upper().startswith("PINGMON_")}
    environment |= ENV | dict(env or {})
    done = subprocess.run(
        [sys.executable, "-m", "pingmon", "--log-format", "text", *args],
        cwd=cwd, env=environment, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    return Completed(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """The working directory the testdata's relative secret files are found in."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "simotel-password").write_text("simotel-password-cli\n", encoding="utf-8")
    (secrets / "two-lines").write_text(ENV["TEST_TWO_LINE_SECRET"], encoding="utf-8")
    (secrets / "large").write_bytes(b"k" * (64 * 1024 + 1))
    os.mkfifo(secrets / "fifo")
    return tmp_path


def assert_refused(done: Completed, path: Path | str, lines: list[str]) -> None:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [f"{path}: {line}" for line in lines]
    for secret in ENV.values():
        assert secret.strip() not in done.stderr


@pytest.mark.parametrize("name", VALIDATED)
def test_config_validate_refuses_each_case_with_exit_2_and_its_lines(
    workdir: Path, name: str
) -> None:
    path = TESTDATA / name
    assert_refused(pingmon("config", "validate", "--config", str(path), cwd=workdir), path,
                   EXPECTED[name])  # fmt: skip


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
@pytest.mark.parametrize("name", EVERY_COMMAND)
def test_check_and_run_refuse_as_config_validate_does(
    workdir: Path, name: str, command: list[str]
) -> None:
    path = TESTDATA / name
    assert_refused(pingmon(*command, "--config", str(path), cwd=workdir), path, EXPECTED[name])


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
@pytest.mark.parametrize(
    ("variable", "value", "line"),
    [
        (
            "PINGMON_PROVIDERS",
            "not json",
            "PINGMON_PROVIDERS: not valid JSON (Expecting value: line 1 column 1 (char 0))",
        ),
        (
            "PINGMON_DEFAULTS",
            "{",
            "PINGMON_DEFAULTS: not valid JSON (Expecting property name enclosed in double quotes: "
            "line 1 column 2 (char 1))",
        ),
    ],
)
def test_an_override_that_is_not_json_is_refused_by_every_command(
    workdir: Path, command: list[str], variable: str, value: str, line: str
) -> None:
    path = workdir / "pingmon.yaml"
    path.write_text("providers: {}\n", encoding="utf-8")
    done = pingmon(*command, "--config", str(path), cwd=workdir, env={variable: value})
    assert_refused(done, path, [line])


def test_a_50_mb_file_is_refused_before_it_is_read(workdir: Path) -> None:
    path = workdir / "pingmon.yaml"
    with path.open("wb") as file:
        file.truncate(50 * 1024 * 1024)
    done = pingmon("config", "validate", "--config", str(path), cwd=workdir)
    assert_refused(
        done, path, ["cannot read the file: larger than 4 MiB, the most pingmon reads of it"]
    )


def test_a_configuration_fifo_is_refused_by_run(workdir: Path) -> None:
    fifo = workdir / "pingmon.yaml"
    os.mkfifo(fifo)
    done = pingmon("run", "--config", str(fifo), cwd=workdir)
    assert_refused(done, fifo, ["cannot read the file: it is a FIFO, not a regular file"])
