"""A real buildah build of the Dockerfile from the local base; pingmon runs in it as uid 10001."""

from __future__ import annotations

import http.server
import re
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from pingmon import __version__
from tests.image.buildah import CONFIG_IN_IMAGE, EXAMPLE_IN_IMAGE, REPO, Buildah, run_in
from tests.processes import free_port
from tests.tools import require_tool

# Inside a private mount namespace: the image's rootfs and a config directory (a ConfigMap's
# stand-in), both bind-mounted read-only, then the command chrooted as the image's user.
READ_ONLY_ROOT = """
set -eu
mount --bind "$ROOTFS" "$ROOT"
mount --bind "$CONFIG_DIR" "$ROOT/etc/pingmon"
mount -o remount,bind,ro "$ROOT/etc/pingmon"
mount -o remount,bind,ro "$ROOT"
exec chroot --userspec="$IMAGE_USER" "$ROOT" "$@"
"""


def example_secret_variables() -> list[str]:
    """The {env: NAME} variables the shipped example configuration reads its secrets from."""

    def walk(node: object) -> Iterator[str]:
        if isinstance(node, dict):
            if set(node) == {"env"}:
                yield str(node["env"])
            for value in node.values():
                yield from walk(value)
        elif isinstance(node, list):
            for item in node:
                yield from walk(item)

    text = (REPO / "config" / "pingmon.example.yaml").read_text()
    return sorted(set(walk(yaml.safe_load(text))))


def test_image_config_runs_as_a_numeric_non_root_user(image_config: dict[str, Any]) -> None:
    assert image_config["User"] == "10001:10001"


def test_image_entrypoint_is_pingmon_and_cmd_runs_the_daemon(
    image_config: dict[str, Any],
) -> None:
    assert image_config["Entrypoint"] == ["pingmon"]
    assert image_config["Cmd"] == ["run", "--config", CONFIG_IN_IMAGE]


def test_image_exposes_9108_and_healthchecks_the_healthy_endpoint(
    image_config: dict[str, Any],
) -> None:
    assert list(image_config["ExposedPorts"]) == ["9108/tcp"]
    test = image_config["Healthcheck"]["Test"]
    assert test[:3] == ["CMD", "python3", "-c"]
    assert "/-/healthy" in test[3]


def test_image_labels_carry_the_package_version(image_config: dict[str, Any]) -> None:
    labels = image_config["Labels"]
    assert labels["org.opencontainers.image.version"] == __version__
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"
    assert labels["org.opencontainers.image.base.name"].startswith("localhost/")


def test_commands_in_the_image_run_as_uid_10001(buildah: Buildah, container: str) -> None:
    done = run_in(
        buildah, container, "python3", "-c", "import os; print(os.getuid(), os.getgid())"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["10001", "10001"]


def test_pingmon_in_the_image_reports_the_source_version(buildah: Buildah, container: str) -> None:
    done = run_in(buildah, container, "pingmon", "--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"pingmon {__version__}"


def test_the_default_config_needs_no_secret_and_is_the_image_config_file(
    buildah: Buildah, container: str
) -> None:
    # No --config: the image's PINGMON_CONFIG names /etc/pingmon/pingmon.yaml.
    done = run_in(buildah, container, "pingmon", "config", "validate")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{CONFIG_IN_IMAGE}: ok (1 providers, 1 targets)\n"
    shipped = run_in(buildah, container, "cat", CONFIG_IN_IMAGE)
    assert shipped.stdout == (REPO / "config" / "pingmon.image.yaml").read_text()


def test_the_example_in_the_image_validates_once_its_secrets_are_set(
    buildah: Buildah, container: str
) -> None:
    names = example_secret_variables()
    assert names, "the example configuration reads no secrets from the environment"
    env = tuple(arg for name in names for arg in ("--env", f"{name}=not-a-real-secret"))
    done = run_in(
        buildah, container, "pingmon", "config", "validate", "--config", EXAMPLE_IN_IMAGE,
        options=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(
        r"/usr/share/pingmon/pingmon\.example\.yaml: ok \(\d+ providers, \d+ targets\)\n",
        done.stdout,
    )


def test_the_example_without_secrets_exits_2_naming_each_missing_variable(
    buildah: Buildah, container: str
) -> None:
    done = run_in(
        buildah, container, "pingmon", "config", "validate", "--config", EXAMPLE_IN_IMAGE
    )
    assert done.returncode == 2
    for name in example_secret_variables():
        assert f"environment variable {name} is not set" in done.stderr


def test_mounted_invalid_config_exits_2_with_its_problem_line(
    buildah: Buildah, container: str, tmp_path: Path
) -> None:
    config_dir = tmp_path / "configmap"
    config_dir.mkdir(mode=0o755)
    (config_dir / "pingmon.yaml").write_text("defaults:\n  interval: 0s\n")
    (config_dir / "pingmon.yaml").chmod(0o644)
    # No --config: the image's PINGMON_CONFIG points at the mounted file.
    done = run_in(
        buildah, container, "pingmon", "config", "validate",
        options=("--volume", f"{config_dir}:/etc/pingmon:ro"),
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    problem = "/etc/pingmon/pingmon.yaml: defaults.interval: must be a positive duration"
    assert problem in done.stderr.splitlines()


class OkHandler(http.server.BaseHTTPRequestHandler):
    """The loopback endpoint the daemon checks: /healthz answers 200."""

    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/healthz" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def checked_endpoint() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), OkHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@dataclass(frozen=True, slots=True)
class ReadOnlyRoot:
    """Runs commands chrooted into the image's rootfs, mounted read-only, as the image's user."""

    rootfs: str
    workdir: Path
    config_dir: Path
    env: dict[str, str]
    user: str

    def command(self, *argv: str) -> list[str]:
        unshare = require_tool("unshare")
        return [
            unshare,
            "--mount",
            "--propagation=private",
            "sh",
            "-c",
            READ_ONLY_ROOT,
            "sh",
            *argv,
        ]

    def environment(self, **extra: str) -> dict[str, str]:
        return {
            **self.env,
            **extra,
            "ROOTFS": self.rootfs,
            "ROOT": str(self.workdir),
            "CONFIG_DIR": str(self.config_dir),
            "IMAGE_USER": self.user,
        }

    def run(self, *argv: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*argv),
            env=self.environment(**extra),
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )


@pytest.fixture
def read_only_root(
    buildah: Buildah, container: str, image_config: dict[str, Any], tmp_path: Path
) -> Iterator[ReadOnlyRoot]:
    require_tool("chroot")
    rootfs = buildah.ok("mount", container)
    (tmp_path / "root").mkdir()
    config_dir = tmp_path / "configmap"
    config_dir.mkdir(mode=0o755)
    env = dict(item.split("=", 1) for item in image_config["Env"])
    try:
        yield ReadOnlyRoot(rootfs, tmp_path / "root", config_dir, env, image_config["User"])
    finally:
        buildah.run("umount", container)


def test_read_only_root_refuses_writes(read_only_root: ReadOnlyRoot) -> None:
    done = read_only_root.run("python3", "-c", "open('/tmp/probe', 'w')")
    assert done.returncode == 1
    assert "Read-only file system" in done.stderr


def wait_for(condition: Callable[[], bool], process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert process.poll() is None, f"pingmon exited {process.returncode}:\n{log.read_text()}"
        assert time.monotonic() < deadline, f"gave up waiting:\n{log.read_text()}"
        time.sleep(0.05)


def http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, ""
    except OSError:
        return 0, ""


def test_daemon_checks_and_serves_healthy_from_a_read_only_root(
    read_only_root: ReadOnlyRoot,
    image_config: dict[str, Any],
    checked_endpoint: int,
    tmp_path: Path,
) -> None:
    config = {
        "providers": {"local": {"type": "http", "base_url": f"http://127.0.0.1:{checked_endpoint}"}},
        "targets": [
            {"name": "local-ok", "provider": "local", "path": "/healthz",
             "interval": "1s", "timeout": "500ms"},
        ],
    }  # fmt: skip
    (read_only_root.config_dir / "pingmon.yaml").write_text(yaml.safe_dump(config))
    port = free_port()
    listen = f"127.0.0.1:{port}"
    log = tmp_path / "pingmon.log"
    argv = [*image_config["Entrypoint"], *image_config["Cmd"]]
    healthcheck = image_config["Healthcheck"]["Test"][1:]
    with log.open("wb") as output:
        daemon = subprocess.Popen(
            read_only_root.command(*argv),
            env=read_only_root.environment(PINGMON_LISTEN=listen),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: http_get(f"http://{listen}/-/healthy")[0] == 200, daemon, log)
        success = re.compile(r'^pingmon_check_success\{[^}]*target="local-ok"[^}]*\} 1\.0$', re.M)
        wait_for(
            lambda: bool(success.search(http_get(f"http://{listen}/metrics")[1])), daemon, log
        )
        assert read_only_root.run(*healthcheck, PINGMON_LISTEN=listen).returncode == 0
    finally:
        daemon.send_signal(signal.SIGTERM)
        exit_status = daemon.wait(timeout=30)
    assert exit_status == 0, log.read_text()
    assert "Read-only file system" not in log.read_text()
    # With the daemon gone, the same HEALTHCHECK fails.
    assert read_only_root.run(*healthcheck, PINGMON_LISTEN=listen).returncode != 0
