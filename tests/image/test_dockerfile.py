"""The Dockerfile passes hadolint and keeps its contract; .dockerignore trims the context."""

from __future__ import annotations

import http.server
import json
import os
import re
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.tools import require_tool

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
CONFIG_IN_IMAGE = "/etc/pingmon/pingmon.yaml"

Instruction = tuple[str, str]


def parse_dockerfile(text: str) -> list[Instruction]:
    """(KEYWORD, arguments) per instruction: continuation lines joined, comments dropped."""
    instructions: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        keyword, _, arguments = (pending + line).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    assert not pending, f"dangling continuation: {pending!r}"
    return instructions


def stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    """The instructions of each stage, each list starting with its FROM."""
    result: list[list[Instruction]] = []
    for instruction in instructions:
        if instruction[0] == "FROM":
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


def arguments(stage: list[Instruction], keyword: str) -> list[str]:
    return [args for key, args in stage if key == keyword]


@pytest.fixture(scope="module")
def dockerfile() -> list[Instruction]:
    return parse_dockerfile(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def final_stage(dockerfile: list[Instruction]) -> list[Instruction]:
    return stages(dockerfile)[-1]


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_tool("hadolint"), "--no-color", str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_hadolint_accepts_the_dockerfile() -> None:
    done = hadolint(DOCKERFILE)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize(
    ("original", "replacement", "rule"),
    [
        ("pip install --no-cache-dir", "pip install", "DL3042"),
        ("USER 10001:10001", "USER root", "DL3002"),
        ('ENTRYPOINT ["pingmon"]', "ENTRYPOINT pingmon", "DL3025"),
    ],
    ids=["pip-cache", "root-user", "shell-form-entrypoint"],
)
def test_hadolint_rejects_a_variant_that_breaks_a_rule(
    tmp_path: Path, original: str, replacement: str, rule: str
) -> None:
    text = DOCKERFILE.read_text()
    assert original in text, f"the Dockerfile no longer contains {original!r}"
    variant = tmp_path / "Dockerfile"
    variant.write_text(text.replace(original, replacement))
    done = hadolint(variant)
    assert done.returncode == 1, done.stdout + done.stderr
    assert rule in done.stdout


def test_base_image_is_a_build_argument_defaulting_to_python_slim(
    dockerfile: list[Instruction],
) -> None:
    assert dockerfile[0] == ("ARG", "BASE_IMAGE=python:3.12-slim")


def test_every_stage_starts_from_the_same_base_image(dockerfile: list[Instruction]) -> None:
    froms = [stage[0][1] for stage in stages(dockerfile)]
    assert len(froms) >= 2, "the build is not multi-stage"
    assert all(re.fullmatch(r"\$\{BASE_IMAGE\}( AS \w+)?", args) for args in froms), froms


def test_final_stage_copies_only_the_venv_from_the_build_stage(
    dockerfile: list[Instruction], final_stage: list[Instruction]
) -> None:
    build_name = stages(dockerfile)[0][0][1].split(" AS ")[-1]
    copies = [args for args in arguments(final_stage, "COPY") if args.startswith("--from=")]
    assert copies == [f"--from={build_name} /opt/pingmon /opt/pingmon"]


def test_build_stage_lets_pip_read_offline_build_arguments(dockerfile: list[Instruction]) -> None:
    build = stages(dockerfile)[0]
    assert {"PIP_NO_INDEX", "PIP_FIND_LINKS"} <= set(arguments(build, "ARG"))
    installs = [args for args in arguments(build, "RUN") if "pip install" in args]
    assert installs, "the build stage installs nothing"
    assert all("pip install --no-cache-dir" in args for args in installs)
    assert not any("--index-url" in args or "-i " in args for args in installs)


def test_final_stage_runs_as_a_numeric_non_root_user(final_stage: list[Instruction]) -> None:
    user = arguments(final_stage, "USER")[-1]
    match = re.fullmatch(r"(\d+)(?::(\d+))?", user)
    assert match, f"USER {user} is not numeric (Kubernetes runAsNonRoot needs a number)"
    assert int(match[1]) != 0
    assert match[2] is None or int(match[2]) != 0


def test_entrypoint_is_pingmon_and_cmd_runs_the_daemon_on_the_image_config(
    final_stage: list[Instruction],
) -> None:
    assert json.loads(arguments(final_stage, "ENTRYPOINT")[-1]) == ["pingmon"]
    assert json.loads(arguments(final_stage, "CMD")[-1]) == ["run", "--config", CONFIG_IN_IMAGE]


def secret_references(node: object) -> list[object]:
    """Every {env: ...} / {file: ...} in a configuration document."""
    if isinstance(node, dict):
        if set(node) in ({"env"}, {"file"}):
            return [node]
        return [ref for value in node.values() for ref in secret_references(value)]
    if isinstance(node, list):
        return [ref for item in node for ref in secret_references(item)]
    return []


def test_the_image_config_needs_no_secret_and_the_example_ships_beside_it(
    final_stage: list[Instruction],
) -> None:
    copies = arguments(final_stage, "COPY")
    assert f"config/pingmon.image.yaml {CONFIG_IN_IMAGE}" in copies
    assert "config/pingmon.example.yaml /usr/share/pingmon/pingmon.example.yaml" in copies
    image_config = yaml.safe_load((REPO / "config" / "pingmon.image.yaml").read_text())
    example = yaml.safe_load((REPO / "config" / "pingmon.example.yaml").read_text())
    assert secret_references(image_config) == []
    assert len(secret_references(example)) >= 9, "the walk finds the example's secrets"


def test_final_stage_exposes_the_metrics_port(final_stage: list[Instruction]) -> None:
    assert arguments(final_stage, "EXPOSE") == ["9108"]


def test_python_neither_writes_bytecode_nor_buffers_logs(final_stage: list[Instruction]) -> None:
    env = " ".join(arguments(final_stage, "ENV")).split()
    assert {"PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1"} <= set(env)
    assert f"PINGMON_CONFIG={CONFIG_IN_IMAGE}" in env


def test_version_label_matches_the_package_version(final_stage: list[Instruction]) -> None:
    with (REPO / "pyproject.toml").open("rb") as file:
        version = tomllib.load(file)["project"]["version"]
    assert f"PINGMON_VERSION={version}" in arguments(final_stage, "ARG")
    labels = " ".join(arguments(final_stage, "LABEL"))
    for key in ("title", "description", "version", "licenses", "base.name"):
        assert f"org.opencontainers.image.{key}=" in labels


def healthcheck_command(final_stage: list[Instruction]) -> list[str]:
    """The HEALTHCHECK's exec-form command, options stripped."""
    (healthcheck,) = arguments(final_stage, "HEALTHCHECK")
    options, _, command = healthcheck.partition("CMD ")
    assert "--interval=" in options
    exec_form: list[str] = json.loads(command)
    return exec_form


class HealthServer(http.server.ThreadingHTTPServer):
    """A stand-in for pingmon's /-/healthy, answering with the status a test sets."""

    status = 200


class HealthHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        assert isinstance(self.server, HealthServer)
        self.send_response(self.server.status if self.path == "/-/healthy" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[HealthServer]:
    server = HealthServer(("127.0.0.1", 0), HealthHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.mark.parametrize(("status", "exit_ok"), [(200, True), (503, False)])
def test_healthcheck_passes_only_when_healthy_answers_200(
    final_stage: list[Instruction],
    health_server: HealthServer,
    status: int,
    exit_ok: bool,
) -> None:
    command = healthcheck_command(final_stage)
    assert command[:2] == ["python3", "-c"]
    assert "/-/healthy" in command[2]
    health_server.status = status
    port = health_server.server_address[1]
    env = {**os.environ, "PINGMON_LISTEN": f"0.0.0.0:{port}"}
    done = subprocess.run(
        [sys.executable, "-c", command[2]], env=env, capture_output=True, text=True, timeout=30
    )
    assert (done.returncode == 0) is exit_ok, done.stderr


def test_healthcheck_defaults_to_port_9108(final_stage: list[Instruction]) -> None:
    code = healthcheck_command(final_stage)[2]
    assert "':9108'" in code


def dockerignore_excludes(patterns: list[str], path: str) -> bool:
    """Whether Docker's rules (last match wins, a matching parent excludes) leave `path` out."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        regex = glob_regex(pattern.lstrip("!").strip("/"))
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            excluded = not negated
    return excluded


def glob_regex(pattern: str) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


@pytest.fixture(scope="module")
def ignore_patterns() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


@pytest.mark.parametrize(
    "path",
    [
        ".git/HEAD",
        ".venv/bin/python",
        ".tools/bin/helm",
        ".tools/image/storage/vfs/dir/x",
        ".pytest_cache/v/cache/nodeids",
        ".mypy_cache/3.11/x.json",
        ".ruff_cache/CACHEDIR.TAG",
        ".hypothesis/examples/x",
        "pingmon/__pycache__/cli.cpython-311.pyc",
        "pingmon.egg-info/PKG-INFO",
        "tests/unit/test_config.py",
    ],
)
def test_dockerignore_keeps_clutter_out_of_the_build_context(
    ignore_patterns: list[str], path: str
) -> None:
    assert dockerignore_excludes(ignore_patterns, path)


def test_dockerignore_keeps_every_file_the_build_copies(
    ignore_patterns: list[str], dockerfile: list[Instruction]
) -> None:
    sources = [
        source.rstrip("/")
        for args in arguments(dockerfile, "COPY")
        if not args.startswith("--from=")
        for source in args.split()[:-1]
    ]
    assert {"pyproject.toml", "README.md", "pingmon"} <= set(sources)
    files = [*sources, "pingmon/cli.py", "pingmon/providers/stripe.py"]
    assert [path for path in files if dockerignore_excludes(ignore_patterns, path)] == []
    assert all((REPO / path).exists() for path in files)
