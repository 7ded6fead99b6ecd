"""The command line as users run it: a real `pingmon` process against the sandbox."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from pingmon.loading import EMPTY_FILE
from pingmon.sandbox import Sandbox, Scenario
from tests.integration.conftest import (
    SECRET_VALUES,
    ConfigWriter,
    eventually,
    http_target,
    ninepic_target,
    sandbox_providers,
    simotel_target,
    stripe_target,
)


@dataclass
class Completed:
    returncode: int
    stdout: str
    stderr: str


async def pingmon(*args: str, timeout: float = 30) -> Completed:
    """Run ``python -m pingmon ARGS`` to completion without blocking the sandbox's loop."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pingmon", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=dict(os.environ),
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    return Completed(process.returncode, stdout.decode(), stderr.decode())


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRET_VALUES:
            assert secret not in text


async def test_check_json_passes_and_exits_0_when_every_target_answers(
    config_writer: ConfigWriter,
) -> None:
    path = config_writer.write(
        [stripe_target("s"), ninepic_target("n"), simotel_target("p"), http_target("h")]
    )
    done = await pingmon("check", "--config", str(path), "--json")
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    assert [r["target"] for r in results] == ["s", "n", "p", "h"]
    for result in results:
        assert result["success"] is True
        assert result["error_class"] == "none"
        assert result["http_status"] == 200
        assert result["duration_seconds"] > 0
        assert {"provider", "detail"} <= set(result)
    assert_no_secret(done.stdout, done.stderr)


async def test_check_exits_1_and_names_the_failing_target(
    config_writer: ConfigWriter, sandbox: Sandbox
) -> None:
    sandbox.stripe.set_scenario("*", Scenario("auth"))
    path = config_writer.write([stripe_target("revoked"), ninepic_target("fine")])
    done = await pingmon("check", "--config", str(path))
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert lines[0].split()[:4] == ["TARGET", "PROVIDER", "RESULT", "CLASS"]
    assert any(line.split()[:4] == ["revoked", "stripe", "FAIL", "auth"] for line in lines)
    assert any(line.split()[:4] == ["fine", "ninepic", "ok", "none"] for line in lines)
    assert_no_secret(done.stdout, done.stderr)  # the 401 body quotes the (masked) key


async def test_check_target_option_selects_targets(config_writer: ConfigWriter) -> None:
    path = config_writer.write([stripe_target("s"), ninepic_target("n")])
    done = await pingmon("check", "--config", str(path), "--target", "n", "--json")
    assert done.returncode == 0
    assert [r["target"] for r in json.loads(done.stdout)] == ["n"]
    unknown = await pingmon("check", "--config", str(path), "--target", "nope")
    assert unknown.returncode == 2
    assert "no target named nope" in unknown.stderr


async def test_bad_file_exits_2_with_one_line_per_problem_and_no_traceback(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "providers:\n  s: {type: stripe, api_key: {env: SB_STRIPE_KEY}}\n"
        "targets:\n"
        "  - {name: a, provider: s, destination_id: ed_test_a, interval: 5s, timeot: 1s}\n"
        "  - {name: b, provider: s, destination_id: ed_test_b, interval: 0s}\n"
    )
    for command in (["check"], ["run"], ["config", "validate"]):
        done = await pingmon(*command, "--config", str(path))
        assert done.returncode == 2
        assert "Traceback" not in done.stderr
        assert done.stderr.splitlines() == [
            f"{path}: targets[0].timeot: unknown key "
            "(refused so that a typo never silently changes a check)",
            f"{path}: targets[1].interval: must be a positive duration",
        ]


async def test_config_validate_and_schema(config_writer: ConfigWriter) -> None:
    path = config_writer.write([ninepic_target("n")])
    done = await pingmon("config", "validate", "--config", str(path))
    assert done.returncode == 0
    assert "ok (4 providers, 1 targets)" in done.stdout
    schema = await pingmon("config", "schema")
    assert schema.returncode == 0
    assert "targets" in json.loads(schema.stdout)["properties"]
    version = await pingmon("--version")
    assert version.stdout.startswith("pingmon ")


class Daemon:
    """A `pingmon run` process, with its stderr log lines collected as they come."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[dict[str, Any]] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stderr is not None
        async for raw in self.process.stderr:
            self.lines.append(json.loads(raw))  # every log line is one JSON object

    def logged(self, message: str, **fields: Any) -> bool:
        return any(
            line["message"] == message and all(line.get(k) == v for k, v in fields.items())
            for line in self.lines
        )

    @property
    def address(self) -> str:
        return str(next(line["address"] for line in self.lines if line["message"] == "listening"))

    async def wait(self, timeout: float = 20) -> int:
        code = await asyncio.wait_for(self.process.wait(), timeout)
        await self._reader
        return code


async def start_run(path: Path) -> Daemon:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pingmon", "run", "--config", str(path),
        stderr=asyncio.subprocess.PIPE, env=dict(os.environ),
    )  # fmt: skip
    daemon = Daemon(process)
    await eventually(lambda: daemon.logged("listening"), timeout=15)
    return daemon


async def test_sigterm_lets_the_in_flight_check_finish_and_exits_0(
    config_writer: ConfigWriter, sandbox: Sandbox
) -> None:
    sandbox.ninepic.set_scenario("*", Scenario("slow", delay=0.8))
    path = config_writer.write([ninepic_target("slow", interval="3s", timeout="2s")])
    daemon = await start_run(path)
    await eventually(lambda: sandbox.ninepic.count() == 1)  # the check is in flight
    daemon.process.send_signal(signal.SIGTERM)
    assert await daemon.wait() == 0
    messages = [line["message"] for line in daemon.lines]
    assert messages.index("shutting down: letting in-flight checks finish") < messages.index(
        "target is up"
    )
    assert_no_secret(json.dumps(daemon.lines))


async def test_sighup_reloads_and_a_bad_file_keeps_the_old_configuration(
    config_writer: ConfigWriter,
) -> None:
    path = config_writer.write([ninepic_target("first")])
    daemon = await start_run(path)
    try:
        async with aiohttp.ClientSession() as http:

            async def targets() -> list[str]:
                async with http.get(f"http://{daemon.address}/status") as response:
                    return [t["target"] for t in (await response.json())["targets"]]

            config_writer.write([ninepic_target("first"), stripe_target("second")])
            daemon.process.send_signal(signal.SIGHUP)

            async def reloaded() -> bool:
                return await targets() == ["first", "second"]

            await eventually(reloaded)
            path.write_text("{{{ not yaml")
            daemon.process.send_signal(signal.SIGHUP)
            await eventually(
                lambda: daemon.logged("reload refused; the running configuration stays")
            )
            assert await targets() == ["first", "second"]
            async with http.get(f"http://{daemon.address}/metrics") as response:
                assert "pingmon_config_last_reload_successful 0.0" in await response.text()
    finally:
        daemon.process.send_signal(signal.SIGTERM)
        assert await daemon.wait() == 0


async def test_text_log_format_is_for_people(config_writer: ConfigWriter) -> None:
    path = config_writer.write([ninepic_target("n")])
    done = await pingmon("--log-format", "text", "check", "--config", str(path))
    assert done.returncode == 0
    assert not done.stderr.startswith("{")


async def test_the_shipped_example_passes_config_validate(monkeypatch: pytest.MonkeyPatch) -> None:
    example = Path(__file__).resolve().parents[2] / "config" / "pingmon.example.yaml"
    for name in ("STRIPE_API_KEY", "NINEPIC_API_KEY", "SIMOTEL_API_KEY", "SIMOTEL_USER",
                 "SIMOTEL_PASSWORD", "STATUS_TOKEN", "STRIPE_WEBHOOK_SECRET",
                 "SIMOTEL_WEBHOOK_USER", "SIMOTEL_WEBHOOK_PASSWORD"):  # fmt: skip
        monkeypatch.setenv(name, f"value-of-{name.lower()}")
    done = await pingmon("config", "validate", "--config", str(example))
    assert done.returncode == 0, done.stderr
    assert "ok (4 providers, 4 targets)" in done.stdout
    assert done.stderr == ""  # no literal secrets in the example, so no warnings


async def test_config_validate_refuses_webhook_problems_one_line_each(tmp_path: Path) -> None:
    literal = "whsec_cli-literal-secret-value"
    path = tmp_path / "bad-webhooks.yaml"
    path.write_text(
        "webhook_listen: '0.0.0.0'\n"
        "webhook_path_prefix: /pingmon/\n"
        "providers:\n"
        "  s: {type: stripe, api_key: {env: SB_STRIPE_KEY}}\n"
        "  n: {type: ninepic, api_key: {env: SB_NINEPIC_KEY}}\n"
        "  p: {type: simotel, base_url: 'http://127.0.0.1:9', auth: token,"
        " api_key: {env: SB_SIMOTEL_TOKEN}}\n"
        "targets:\n"
        "  - {name: a, provider: n, org_id: 1, event_id: 2, webhook: {timeout: 1m}}\n"
        f"  - {{name: b, provider: s, destination_id: ed_test_b, interval: 1m,"
        f" webhook: {{timeout: 2m, signing_secret: {literal}}}}}\n"
        "  - {name: c, provider: s, destination_id: ed_test_c, webhook: {timeout: 30s}}\n"
        "  - {name: d, provider: p, webhook: {username: {env: SB_SIMOTEL_USER},"
        " allowed_sources: [not-a-network]}}\n"
    )
    done = await pingmon("config", "validate", "--config", str(path))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [
        f"{path}: webhook_listen: '0.0.0.0' is not host:port, e.g. 0.0.0.0:9108",
        f"{path}: webhook_path_prefix: must be empty or a path such as /pingmon "
        "(no trailing slash)",
        f"{path}: targets[0].webhook: ninepic pings send no webhook; "
        "only stripe and simotel targets do",
        f"{path}: targets[1].webhook.timeout: must not exceed the target's interval (2m > 1m)",
        f"{path}: targets[2].webhook.signing_secret: is required",
        f"{path}: targets[3].webhook.allowed_sources: 'not-a-network' is not an IP address "
        "or CIDR, e.g. 192.168.51.0/24",
        f"{path}: targets[3].webhook.password: is required",
    ]
    assert literal not in done.stdout + done.stderr
    assert_no_secret(done.stdout, done.stderr)


def laughs_target(levels: int) -> str:
    """An http target whose expect.json is a "billion laughs" of ``levels`` (about 1 KB of
    YAML, 10**levels nodes when walked), as the last item of a block-style target list."""
    lines = ["- name: bomb", "  provider: status", "  expect:", "    json:"]
    lines.append("      l0: &d0 {a: 1, b: 2, c: 3}")
    for level in range(1, levels + 1):
        keys = ", ".join(f"k{j}: *d{level - 1}" for j in range(10))
        lines.append(f"      l{level}: &d{level} {{{keys}}}")
    return "\n".join(lines) + "\n"


async def scrape(daemon: Daemon) -> str:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://{daemon.address}/metrics") as response,
    ):
        return await response.text()


def reload_gauge(metrics: str) -> float:
    return float(metrics.split("\npingmon_config_last_reload_successful ")[1].split()[0])


async def test_sighup_with_a_file_that_is_no_config_error_is_refused_logged_and_survived(
    config_writer: ConfigWriter,
) -> None:
    path = config_writer.write([ninepic_target("first")])
    daemon = await start_run(path)
    try:
        path.write_bytes(path.read_bytes() + b"# caf\xe9\n")
        daemon.process.send_signal(signal.SIGHUP)
        await eventually(lambda: daemon.logged("reload refused; the running configuration stays"))
        refusal = next(line for line in daemon.lines if line["message"].startswith("reload"))
        assert refusal["problem"].startswith(f"{path}: ")
        assert reload_gauge(await scrape(daemon)) == 0
        config_writer.write([ninepic_target("first"), ninepic_target("second")])
        daemon.process.send_signal(signal.SIGHUP)
        await eventually(lambda: daemon.logged("configuration reloaded", targets=2))
        assert reload_gauge(await scrape(daemon)) == 1
    finally:
        daemon.process.send_signal(signal.SIGTERM)
        assert await daemon.wait() == 0
    assert not any("never retrieved" in line["message"] for line in daemon.lines)
    assert not any("exception" in line for line in daemon.lines)  # no traceback anywhere


@pytest.mark.parametrize("hang", ["fifo secret", "yaml laughs"])
async def test_sigterm_during_a_reload_that_never_returns_exits_promptly_with_0(
    tmp_path: Path, config_writer: ConfigWriter, hang: str
) -> None:
    watch = {"enabled": True, "interval": "100ms"}
    path = config_writer.write([ninepic_target("first")], watch=watch)
    daemon = await start_run(path)
    staged = tmp_path / "staged.yaml"
    fifo = tmp_path / "secret.fifo"
    if hang == "fifo secret":
        os.mkfifo(fifo)
        providers = sandbox_providers(config_writer.sandbox)
        providers["ninepic"]["api_key"] = {"file": str(fifo)}
        ConfigWriter(staged, config_writer.sandbox).write(
            [ninepic_target("first")], providers=providers, watch=watch
        )
    else:
        ConfigWriter(staged, config_writer.sandbox).write([ninepic_target("first")], watch=watch)
        with staged.open("a") as file:  # the targets list comes last
            file.write(laughs_target(9))
    os.replace(staged, path)
    await eventually(lambda: daemon.logged("configuration changed on disk; reloading"))
    daemon.process.send_signal(signal.SIGTERM)
    assert await daemon.wait(timeout=15) == 0
    assert daemon.logged("shutting down: letting in-flight checks finish")


async def test_run_refuses_an_interval_no_timer_can_hold_with_exit_2_and_its_line(
    config_writer: ConfigWriter,
) -> None:
    path = config_writer.write([ninepic_target("huge", interval="1000000000d")])
    done = await pingmon("run", "--config", str(path))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1].startswith(f"{path}: targets[0].interval: ")


@pytest.mark.parametrize("content", ["", "\n\n", "  \n\t\n", "# nothing yet\n"])
async def test_an_empty_file_is_refused_by_every_command_with_exit_2(
    tmp_path: Path, content: str
) -> None:
    path = tmp_path / "pingmon.yaml"
    path.write_text(content)
    for command in (["run"], ["check"], ["config", "validate"]):
        done = await pingmon(*command, "--config", str(path))
        assert done.returncode == 2
        assert done.stderr.splitlines() == [f"{path}: {EMPTY_FILE}"]
