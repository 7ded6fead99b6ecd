"""Web configuration files for tests: certificates from a throwaway CA (trustme), bcrypt
hashes, and client SSL contexts that trust the CA (and present a client certificate)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bcrypt
import trustme
import yaml

# Cost 4, bcrypt's least, keeps tests fast; the format is the one a cost-10 hash has.
TEST_COST = 4


def bcrypt_hash(password: str, cost: int = TEST_COST, prefix: bytes = b"$2y$") -> str:
    """A hash as htpasswd -B writes it ($2y$), unless another prefix is asked for."""
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(cost))
    return (prefix + hashed[4:]).decode()


@dataclass
class Certs:
    """A server certificate for 127.0.0.1 and a client certificate, from one CA, as files."""

    directory: Path
    ca: trustme.CA

    @classmethod
    def issue(cls, directory: Path, ca: trustme.CA | None = None) -> Certs:
        directory.mkdir(parents=True, exist_ok=True)
        certs = cls(directory, ca or trustme.CA())
        certs.ca.cert_pem.write_to_path(str(certs.ca_file))
        certs.rotate("server-1")
        client = certs.ca.issue_cert("prometheus@example.com")
        client.cert_chain_pems[0].write_to_path(str(certs.client_cert))
        client.private_key_pem.write_to_path(str(certs.client_key))
        return certs

    def rotate(self, common_name: str) -> None:
        """Replace the server certificate and key files with a new pair of that name."""
        issued = self.ca.issue_cert("127.0.0.1", "localhost", common_name=common_name)
        issued.cert_chain_pems[0].write_to_path(str(self.server_cert))
        issued.private_key_pem.write_to_path(str(self.server_key))

    @property
    def ca_file(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def server_cert(self) -> Path:
        return self.directory / "server.crt"

    @property
    def server_key(self) -> Path:
        return self.directory / "server.key"

    @property
    def client_cert(self) -> Path:
        return self.directory / "client.crt"

    @property
    def client_key(self) -> Path:
        return self.directory / "client.key"

    def client_context(self, with_client_cert: bool = False) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca_file))
        if with_client_cert:
            context.load_cert_chain(str(self.client_cert), str(self.client_key))
        return context

    def tls_server_config(self, **extra: Any) -> dict[str, Any]:
        return {"cert_file": str(self.server_cert), "key_file": str(self.server_key), **extra}


def readme_yaml(first_line: str) -> dict[str, Any]:
    """The YAML block of README.md that starts with this line (its examples are tested)."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    start = readme.index(f"```yaml\n{first_line}\n") + len("```yaml\n")
    loaded: dict[str, Any] = yaml.safe_load(readme[start : readme.index("```", start)])
    return loaded


def write_web_config(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path
