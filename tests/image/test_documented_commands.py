"""The `docker` commands the Dockerfile documents work as written, in the built image.

Each `docker run` line of the Dockerfile's header is parsed as docker would read it and run with
`buildah run` in a network namespace of its own (so the documented port 9108 is free, and the
fake providers the user's configuration names run beside it): `-v` and `-e` become buildah's
`--volume` and `--env`, `--entrypoint` replaces the image's entrypoint, `-p` and `--rm` need no
stand-in, and a final `>FILE` writes the output to FILE. `$PWD` is a directory holding the
user's pingmon.yaml: one target, orders-webhook, whose Stripe key is {env: STRIPE_API_KEY}.
"""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pytest
import yaml

from pingmon.sandbox import SANDBOX_CREDENTIALS
from tests.image.buildah import REPO, Buildah
from tests.processes import Process, eventually
from tests.tools import require_tool

DOCKERFILE: Final = REPO / "Dockerfile"
STRIPE: Final = SANDBOX_CREDENTIALS.stripe
USER_ENV: Final = {"STRIPE_API_KEY": STRIPE.test_key}
STATUS: Final = "http://127.0.0.1:9108/status"


def documented_commands(text: str) -> list[str]:
    """The `docker ...` lines of the Dockerfile's leading comment."""
    header = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        header.append(line.removeprefix("#").strip())
    return [line for line in header if line.startswith("docker ")]


COMMANDS: Final = documented_commands(DOCKERFILE.read_text())


@dataclass
class DockerRun:
    """A `docker run` line as docker reads it."""

    image: str
    args: list[str]
    volumes: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)
    entrypoint: str | None = None
    output: str | None = None


def parse_docker_run(line: str, pwd: Path, environ: dict[str, str]) -> DockerRun:
    """The line's image, arguments and options; `$PWD` is ``pwd``, `-e NAME` reads ``environ``."""
    words = iter(shlex.split(line.replace("$PWD", str(pwd)))[2:])
    run = DockerRun(image="", args=[])
    for word in words:
        if word in ("-p", "--publish"):
            next(words)
        elif word == "--rm":
            continue
        elif word in ("-v", "--volume"):
            run.volumes.append(next(words))
        elif word in ("-e", "--env"):
            name, equals, value = next(words).partition("=")
            run.env.append(f"{name}={value if equals else environ[name]}")
        elif word == "--entrypoint":
            run.entrypoint = next(words)
        elif word.startswith("-"):
            raise AssertionError(f"no stand-in for docker run {word}: teach this test")
        else:
            run.image, run.args = word, list(words)
    if run.args and run.args[-1].startswith(">"):
        run.output = run.args.pop().removeprefix(">")
    assert run.image == "pingmon", line
    return run


@dataclass
class NetNs:
    """A network namespace with loopback up, held open by a `cat` reading a pipe."""

    holder: subprocess.Popen[bytes]

    @property
    def enter(self) -> list[str]:
        return [require_tool("nsenter"), f"--net=/proc/{self.holder.pid}/ns/net"]

    def get(self, url: str) -> str | None:
        """The body at ``url`` from inside the namespace, or None (not answering yet)."""
        done = subprocess.run(
            [*self.enter, require_tool("curl"), "-sf", "--max-time", "2", url],
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        )
        return done.stdout if done.returncode == 0 else None


@pytest.fixture
def netns() -> Iterator[NetNs]:
    command = [require_tool("unshare"), "--net", "sh", "-c", "ip link set lo up && exec cat"]
    holder = subprocess.Popen(command, stdin=subprocess.PIPE)
    namespace = NetNs(holder)
    try:
        eventually(lambda: Path(f"/proc/{holder.pid}/exe").resolve().name == "cat", "netns up")
        yield namespace
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=10)


@pytest.fixture
def user_dir(netns: NetNs, tmp_path: Path) -> Iterator[Path]:
    """$PWD: the user's pingmon.yaml, its Stripe the sandbox's, inside the namespace."""
    announced = tmp_path / "sandbox.out"
    sandbox = Process(
        "sandbox",
        [*netns.enter, sys.executable, "-m", "pingmon.sandbox"],
        tmp_path / "sandbox.log",
        stdout=announced,
    )
    sandbox.start()
    try:
        urls = eventually(
            lambda: json.loads(announced.read_text()) if announced.read_text() else None,
            "the sandbox announcing its URLs",
            sandbox.tail,
        )
        pwd = tmp_path / "pwd"
        pwd.mkdir()
        config = {
            "listen": "0.0.0.0:9108",
            "providers": {"stripe-live": {"type": "stripe", "base_url": urls["stripe"],
                                          "api_key": {"env": "STRIPE_API_KEY"}}},
            "targets": [{"name": "orders-webhook", "provider": "stripe-live",
                         "destination_id": STRIPE.test_destination,
                         "interval": "2s", "timeout": "1s"}],
        }  # fmt: skip
        (pwd / "pingmon.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        (pwd / "pingmon.yaml").chmod(0o644)
        yield pwd
    finally:
        sandbox.stop()


def buildah_argv(
    buildah: Buildah, container: str, image_config: dict[str, Any], run: DockerRun
) -> list[str]:
    """`buildah run` for the parsed `docker run`: the image's entrypoint and command."""
    entrypoint = [run.entrypoint] if run.entrypoint else image_config["Entrypoint"]
    command = [*entrypoint, *(run.args or ([] if run.entrypoint else image_config["Cmd"]))]
    options = [opt for volume in run.volumes for opt in ("--volume", volume)]
    options += [opt for env in run.env for opt in ("--env", env)]
    return [*buildah.argv("run", "--isolation=chroot", *options, container), "--", *command]


@dataclass
class Walker:
    """Runs the documented lines in the namespace, as one-shot commands or as daemons."""

    buildah: Buildah
    container: str
    image_config: dict[str, Any]
    netns: NetNs
    pwd: Path
    log: Path

    def parse(self, line: str) -> DockerRun:
        return parse_docker_run(line, self.pwd, USER_ENV)

    def once(self, line: str) -> subprocess.CompletedProcess[str]:
        run = self.parse(line)
        argv = buildah_argv(self.buildah, self.container, self.image_config, run)
        done = subprocess.run(
            [*self.netns.enter, *argv],
            cwd=self.pwd,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if run.output is not None:
            (self.pwd / run.output).write_text(done.stdout)
        return done

    def status_until(self, line: str, settled: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """Start the line as a daemon; its /status once ``settled`` holds; then stop it."""
        argv = buildah_argv(self.buildah, self.container, self.image_config, self.parse(line))
        with self.log.open("wb") as output:
            daemon = subprocess.Popen(
                [*self.netns.enter, *argv], cwd=self.pwd, stdout=output, stderr=subprocess.STDOUT
            )
        try:

            def status() -> dict[str, Any] | None:
                assert daemon.poll() is None, f"exited {daemon.returncode}: {self.log.read_text()}"
                body = self.netns.get(STATUS)
                document: dict[str, Any] | None = json.loads(body) if body else None
                return document if document and settled(document) else None

            return eventually(status, f"{line}: /status", self.log.read_text)
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=30)


@pytest.fixture
def walker(
    buildah: Buildah,
    container: str,
    image_config: dict[str, Any],
    netns: NetNs,
    user_dir: Path,
    tmp_path: Path,
) -> Walker:
    return Walker(buildah, container, image_config, netns, user_dir, tmp_path / "daemon.log")


def command(predicate: Callable[[str], bool]) -> str:
    (line,) = [line for line in COMMANDS if predicate(line)]
    return line


def is_default(line: str) -> bool:
    return line == "docker run -p 9108:9108 pingmon"


def is_mounted_daemon(line: str) -> bool:
    return " -v " in line and line.endswith(" pingmon")


def is_mounted_check(line: str) -> bool:
    return " -v " in line and " pingmon check " in line


def is_demo(line: str) -> bool:
    return " pingmon demo " in line


def is_example(line: str) -> bool:
    return "--entrypoint cat" in line


def is_build(line: str) -> bool:
    return line.startswith("docker build ")


WALKED: Final = (is_build, is_default, is_mounted_daemon, is_mounted_check, is_demo, is_example)


def targets(status: dict[str, Any]) -> dict[str, Any]:
    return {target["target"]: target["success"] for target in status["targets"]}


def test_each_documented_command_has_one_test() -> None:
    assert [sum(walked(line) for walked in WALKED) for line in COMMANDS] == [1] * len(COMMANDS)
    assert [sum(walked(line) for line in COMMANDS) for walked in WALKED] == [1] * len(WALKED)


def test_the_documented_build_is_the_one_the_tests_make(image: str) -> None:
    # The session's image is that build, offline: the same Dockerfile and context.
    assert command(is_build) == "docker build -t pingmon ."


def test_the_default_command_runs_and_checks_pingmon_itself_without_any_secret(
    walker: Walker,
) -> None:
    status = walker.status_until(command(is_default), lambda s: targets(s) == {"self": True})
    assert status["config"] == "/etc/pingmon/pingmon.yaml"


def test_the_documented_daemon_runs_the_mounted_configuration(walker: Walker) -> None:
    line = command(is_mounted_daemon)
    status = walker.status_until(line, lambda s: targets(s) == {"orders-webhook": True})
    assert status["ready"] is True


def test_the_documented_check_checks_the_mounted_configurations_target(walker: Walker) -> None:
    done = walker.once(command(is_mounted_check))
    assert done.returncode == 0, done.stdout + done.stderr
    (row,) = [line.split() for line in done.stdout.splitlines() if line.startswith("orders")]
    assert row[:4] == ["orders-webhook", "stripe-live", "ok", "none"]


def test_the_documented_demo_runs_against_fake_providers_in_the_container(
    walker: Walker,
) -> None:
    status = walker.status_until(
        command(is_demo), lambda s: sum(bool(v) for v in targets(s).values()) >= 3
    )
    assert {"orders-webhook", "status", "billing-webhook"} <= set(targets(status))


def test_the_documented_example_command_writes_the_example_configuration(
    walker: Walker,
) -> None:
    done = walker.once(command(is_example))
    assert done.returncode == 0, done.stderr
    written = walker.pwd / "pingmon.yaml"
    assert written.read_text() == (REPO / "config" / "pingmon.example.yaml").read_text()


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            'docker run --rm -p 1:2 -v "$PWD/a:/b:ro" -e STRIPE_API_KEY -e X=1 pingmon check -x',
            DockerRun("pingmon", ["check", "-x"], ["/pwd/a:/b:ro"], [
                f"STRIPE_API_KEY={STRIPE.test_key}", "X=1"]),
        ),
        (
            "docker run --entrypoint cat pingmon /f >out.yaml",
            DockerRun("pingmon", ["/f"], entrypoint="cat", output="out.yaml"),
        ),
    ],
)  # fmt: skip
def test_docker_run_lines_are_read_as_docker_reads_them(line: str, expected: DockerRun) -> None:
    assert parse_docker_run(line, Path("/pwd"), USER_ENV) == expected


def test_an_unknown_docker_option_is_refused_not_ignored() -> None:
    with pytest.raises(AssertionError, match="--network"):
        parse_docker_run("docker run --network host pingmon", Path("/pwd"), USER_ENV)
