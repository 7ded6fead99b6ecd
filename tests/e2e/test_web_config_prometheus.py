"""A real Prometheus scrapes pingmon over TLS with a client certificate and basic auth, as
its web configuration demands: ``up`` is 1 with the right password and 0 with a wrong one.
The web configuration and the scrape job are README's examples ("Securing pingmon").

One Prometheus with two scrape jobs gives both answers in one warm-up (about 5.5 s, TOOLING.md).
"""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest
import yaml

from tests.processes import Process, eventually, free_port, http_json, http_ok
from tests.tools import require_tool
from tests.webfiles import Certs, bcrypt_hash, readme_yaml, write_web_config

PASSWORD: Final = "scrape-s3cret"
GOOD_JOB: Final = "pingmon-good-password"
WRONG_JOB: Final = "pingmon-wrong-password"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("web-config-e2e")


@pytest.fixture(scope="module")
def certs(root: Path) -> Certs:
    return Certs.issue(root / "certs")


@pytest.fixture(scope="module")
def pingmon(root: Path, certs: Certs) -> Iterator[str]:
    """pingmon run with TLS, client certificates and basic auth; its address."""
    address = f"127.0.0.1:{free_port()}"
    config = root / "pingmon.yaml"
    config.write_text(yaml.safe_dump({"listen": "127.0.0.1:1", "providers": {}, "targets": []}))
    # README's complete example, with files of this test's CA and a hash of our password.
    document = readme_yaml("# web.yml; relative file names are read from this file's directory")
    document["tls_server_config"].update(
        certs.tls_server_config(client_ca_file=str(certs.ca_file))
    )
    assert document["tls_server_config"]["client_auth_type"] == "RequireAndVerifyClientCert"
    document["basic_auth_users"] = {"prometheus": bcrypt_hash(PASSWORD, cost=10)}
    web = write_web_config(root / "web.yml", document)
    process = Process(
        "pingmon",
        [sys.executable, "-m", "pingmon", "run", "--config.file", str(config),
         "--web.config.file", str(web), f"--web.listen-address={address}"],
        root / "pingmon.log",
    )  # fmt: skip
    process.start()
    try:
        eventually(lambda: ready(address, certs), "pingmon /-/ready over TLS", process.tail)
        yield address
    finally:
        assert process.stop() == 0, process.tail()


def ready(address: str, certs: Certs) -> bool:
    request = urllib.request.Request(f"https://{address}/-/ready")
    credentials = base64.b64encode(f"prometheus:{PASSWORD}".encode()).decode()
    request.add_header("Authorization", f"Basic {credentials}")
    context = certs.client_context(with_client_cert=True)
    with urllib.request.urlopen(request, timeout=2, context=context) as response:
        return bool(response.status == 200)


def scrape_job(name: str, address: str, certs: Certs, password_file: Path) -> dict[str, Any]:
    """README's scrape job, with this test's files and address."""
    [job] = readme_yaml("scrape_configs:")["scrape_configs"]
    assert job["scheme"] == "https"
    job["job_name"] = name
    job["tls_config"].update(
        ca_file=str(certs.ca_file),
        cert_file=str(certs.client_cert),
        key_file=str(certs.client_key),
    )
    job["basic_auth"]["password_file"] = str(password_file)
    job["static_configs"] = [{"targets": [address]}]
    return dict(job)


@pytest.fixture(scope="module")
def prometheus(root: Path, certs: Certs, pingmon: str) -> Iterator[str]:
    """Prometheus scraping pingmon every second with the right and a wrong password; its URL."""
    config = root / "prometheus.yml"
    (root / "good-password").write_text(PASSWORD)
    (root / "wrong-password").write_text("not-the-password")
    document = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
        "scrape_configs": [
            scrape_job(GOOD_JOB, pingmon, certs, root / "good-password"),
            scrape_job(WRONG_JOB, pingmon, certs, root / "wrong-password"),
        ],
    }
    config.write_text(yaml.safe_dump(document, sort_keys=False))
    checked = subprocess.run(
        [require_tool("promtool"), "check", "config", str(config)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    url = f"http://127.0.0.1:{free_port()}"
    process = Process(
        "prometheus",
        [require_tool("prometheus"), f"--config.file={config}",
         f"--storage.tsdb.path={root / 'tsdb'}", f"--web.listen-address={url[7:]}"],
        root / "prometheus.log",
    )  # fmt: skip
    process.start()
    try:
        eventually(lambda: http_ok(url + "/-/ready"), "Prometheus /-/ready", process.tail)
        yield url
    finally:
        process.stop()


def targets(prometheus: str) -> dict[str, dict[str, Any]]:
    """Prometheus' active targets by job."""
    active = http_json(prometheus + "/api/v1/targets")["data"]["activeTargets"]
    return {target["labels"]["job"]: target for target in active}


def up(prometheus: str, job: str) -> float | None:
    query = urllib.parse.urlencode({"query": f'up{{job="{job}"}}'})
    result = http_json(f"{prometheus}/api/v1/query?{query}")["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def test_prometheus_scrapes_pingmon_over_tls_with_basic_auth_and_not_with_a_wrong_password(
    prometheus: str,
) -> None:
    def both_scraped() -> dict[str, dict[str, Any]] | None:
        found = targets(prometheus)
        scraped = all(
            found.get(job, {}).get("health") in ("up", "down") for job in (GOOD_JOB, WRONG_JOB)
        )
        return found if scraped else None

    found = eventually(both_scraped, "both jobs scraped", lambda: json.dumps(targets(prometheus)))
    assert found[GOOD_JOB]["health"] == "up", found[GOOD_JOB]
    assert found[WRONG_JOB]["health"] == "down", found[WRONG_JOB]
    assert "401" in found[WRONG_JOB]["lastError"]
    assert eventually(lambda: up(prometheus, GOOD_JOB) == 1.0, "up == 1 for the right password")
    assert eventually(lambda: up(prometheus, WRONG_JOB) == 0.0, "up == 0 for a wrong password")
    query = urllib.parse.urlencode({"query": f'pingmon_build_info{{job="{GOOD_JOB}"}}'})
    assert http_json(f"{prometheus}/api/v1/query?{query}")["data"]["result"]


def test_a_scraper_without_a_client_certificate_gets_no_answer(pingmon: str, certs: Certs) -> None:
    with pytest.raises((ssl.SSLError, ConnectionError, urllib.error.URLError)):
        urllib.request.urlopen(
            f"https://{pingmon}/metrics", timeout=5, context=certs.client_context()
        )
