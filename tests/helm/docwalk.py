"""Walk docs/kubernetes.md and docs/alerts.md: their code blocks, and a stand-in for a cluster.

Every fenced block is one of a few kinds (`kind()`); `sh` blocks are either plain commands, run
one by one through `Walk.command()`, or shell scripts (pipes, loops, redirections), run whole
with bash by `run_script()`. There is no cluster, so the walk stands in for one: `helm install`
and `helm upgrade` become `helm template` (for Kubernetes 1.30, with the Operator's API), piped
to kubernetes-validate; `kubectl create` runs with `--dry-run=client`; `kubectl port-forward` is
checked against the rendered Service, `kubectl rollout status` against the rendered workload,
and `curl` asks a pingmon started as the rendered pod would start: its arguments, its
ConfigMap, the Secrets `kubectl create` made as its environment and files, and a proxy on a
closed loopback port so that no check leaves the machine.
"""

from __future__ import annotations

import base64
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

from tests.helm import CRD_API, REPO, Manifest, kinds, kubernetes_validate
from tests.processes import Process, eventually, free_port, http_ok
from tests.tools import require_tool

DOCS: Final = (REPO / "docs" / "kubernetes.md", REPO / "docs" / "alerts.md")
KUBE_VERSION: Final = "1.30.0"
# What a walk copies: what the docs' commands read and write, relative to the repository.
COPIED: Final = ("helm", "docs", "config")
_FENCE: Final = re.compile(r"^```(\w*)$")
_VALUES_NAME: Final = re.compile(r"\A# ([\w.-]+\.ya?ml)\b")
_SCRIPT: Final = re.compile(r"\||&&|>|\bfor\b|\$\(")
SCRAPE_KINDS: Final = ("ServiceMonitor", "PodMonitor")
KEEPS_VALUES: Final = ("-f", "--values", "--reuse-values")


@dataclass(frozen=True)
class Block:
    """One fenced code block: its document, first line (1-based), language and text."""

    doc: Path
    line: int
    lang: str
    text: str

    @property
    def id(self) -> str:
        return f"{self.doc.stem}:{self.line}"

    @property
    def values_name(self) -> str | None:
        """``my-values.yaml`` for a YAML block that starts ``# my-values.yaml``."""
        found = _VALUES_NAME.match(self.text) if self.lang == "yaml" else None
        return found[1] if found else None


def blocks(doc: Path) -> list[Block]:
    """The fenced blocks of a Markdown file, in order."""
    found: list[Block] = []
    opened: tuple[int, str] | None = None
    lines: list[str] = []
    for number, line in enumerate(doc.read_text().splitlines(), start=1):
        fence = _FENCE.match(line)
        if opened is None and fence:
            opened, lines = (number + 1, fence[1]), []
        elif opened is not None and line == "```":
            found.append(Block(doc, opened[0], opened[1], "\n".join(lines) + "\n"))
            opened = None
        elif opened is not None:
            lines.append(line)
    assert opened is None, f"{doc}: unclosed block from line {opened[0]}"
    return found


def kind(block: Block) -> str | None:
    """What a block is, hence how it is walked; None for a block no walker knows."""
    text = block.text
    if block.lang == "sh":
        return "script" if _SCRIPT.search(text) else "commands"
    if block.lang == "":
        return "output"
    if block.lang != "yaml":
        return None
    if block.values_name:
        return "values"
    if "rule_files:" in text and "scrape_configs:" in text:
        return "prometheus-config"
    if text.lstrip().startswith("- record:"):
        return "rule-quote"
    if text.startswith("securityContext:"):
        return "security-context-quote"
    if example_file(block) is not None:
        return "example-file"
    return None


def example_file(block: Block) -> Path | None:
    """The file of docs/examples/ this block shows verbatim, if any."""
    for path in sorted((REPO / "docs" / "examples").rglob("*.yaml")):
        if path.read_text() == block.text:
            return path
    return None


def commands(text: str) -> Iterator[str]:
    """The block's commands: continuation lines joined, comments and blank lines dropped."""
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        yield pending + line
        pending = ""
    assert not pending, f"dangling continuation: {pending!r}"


def secret_files(node: object) -> Iterator[str]:
    """Every ``{file: PATH}`` in a values document."""
    if isinstance(node, dict):
        if set(node) == {"file"}:
            yield str(node["file"])
            return
        for value in node.values():
            yield from secret_files(value)
    elif isinstance(node, list):
        for item in node:
            yield from secret_files(item)


def install_problems(argv: list[str], manifests: list[Manifest]) -> list[str]:
    """What is wrong with a documented `helm install`/`upgrade` and what it renders."""
    problems: list[str] = []
    if kinds(manifests, "PrometheusRule") and not any(kinds(manifests, k) for k in SCRAPE_KINDS):
        problems.append(
            "renders the PrometheusRule without a ServiceMonitor or PodMonitor: nothing scrapes "
            "pingmon, so PingmonAbsent fires"
        )
    if "upgrade" in argv and not any(arg in KEEPS_VALUES for arg in argv):
        problems.append(
            "helm upgrade without -f/--values or --reuse-values resets every other value"
        )
    return problems


def as_template(argv: list[str]) -> list[str]:
    """`helm install|upgrade [--install] NAME CHART ...` as `helm template NAME CHART ...`."""
    rest = [arg for arg in argv[2:] if arg != "--install"]
    extra = [] if "--kube-version" in rest else ["--kube-version", KUBE_VERSION]
    if "--api-versions" not in rest:
        extra += ["--api-versions", CRD_API]
    return [argv[0], "template", *rest, *extra]


def verb_of(argv: list[str]) -> str:
    """The subcommand: the first word after the program that is no option nor a namespace."""
    words = iter(argv[1:])
    for word in words:
        if word in ("-n", "--namespace"):
            next(words, None)
        elif not word.startswith("-"):
            return word
    return ""


def option(argv: list[str], *names: str) -> str | None:
    """The value of ``-n X`` / ``--namespace=X`` style options."""
    for index, arg in enumerate(argv):
        for name in names:
            if arg == name and index + 1 < len(argv):
                return argv[index + 1]
            if arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    return None


@dataclass
class Walk:
    """A working copy of the repository's docs, chart and config, and the cluster stand-in."""

    root: Path
    env: dict[str, str]
    secrets: dict[tuple[str, str], dict[str, bytes]] = field(default_factory=dict)
    manifests: list[Manifest] = field(default_factory=list)
    forwards: dict[str, str] = field(default_factory=dict)
    processes: list[Process] = field(default_factory=list)
    rendered: list[tuple[list[str], list[Manifest]]] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)

    @classmethod
    def create(cls, root: Path) -> Walk:
        root.mkdir(parents=True)
        for name in COPIED:
            shutil.copytree(REPO / name, root / name, symlinks=True)
        home = root.parent / f"{root.name}-home"
        bins = [str(Path(sys.executable).parent), str(Path(require_tool("helm")).parent)]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PINGMON_", "HELM_"))}
        env.update(
            PATH=os.pathsep.join([*bins, env.get("PATH", "")]),
            HOME=str(home),
            KUBECONFIG=str(home / "kubeconfig"),
            HELM_CACHE_HOME=str(home / "cache"),
            HELM_CONFIG_HOME=str(home / "config"),
            HELM_DATA_HOME=str(home / "data"),
        )
        return cls(root, env)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()

    def write_values(self, doc: Path) -> None:
        """Each ``# NAME.yaml`` block of the document as NAME in the working directory."""
        for block in blocks(doc):
            if block.values_name:
                (self.root / block.values_name).write_text(block.text)

    def run(self, argv: list[str], **options: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv,
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
            timeout=180,
            **options,
        )

    def ok(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        done = self.run(argv)
        assert done.returncode == 0, f"{shlex.join(argv)}:\n{done.stdout}{done.stderr}"
        return done

    # -- one command -------------------------------------------------------------------------

    def command(self, line: str) -> None:
        """Run one documented command, or what stands in for it without a cluster."""
        argv = shlex.split(line, comments=True)
        if argv[-1] == "&":
            argv.pop()
        program, verb = argv[0], verb_of(argv)
        if program == "helm" and verb in ("install", "upgrade"):
            self.render(argv, as_template(argv))
        elif program == "helm" and verb == "template":
            self.render(argv, argv)
        elif program == "kubectl" and verb in ("create", "port-forward"):
            self.kubectl(argv, verb)
        elif program == "kubectl" and verb == "rollout":
            self.rollout(argv)
        elif program == "curl":
            self.curl(argv)
        elif program in ("helm", "promtool", "pingmon", "cp"):
            self.ok(argv)
        elif argv[:2] == ["python", "scripts/chart_sync.py"]:
            # Regenerating would write into the repository: --check says it is current.
            self.ok([sys.executable, str(REPO / "scripts" / "chart_sync.py"), "--check"])
        else:
            raise AssertionError(f"no stand-in for {line!r}: teach tests/helm/docwalk.py")

    def render(self, documented: list[str], argv: list[str]) -> None:
        done = self.ok(argv)
        version = option(argv, "--kube-version") or KUBE_VERSION
        valid = kubernetes_validate(done.stdout, version)
        assert valid.returncode == 0, f"{shlex.join(argv)}:\n{valid.stdout}{valid.stderr}"
        manifests = [doc for doc in yaml.safe_load_all(done.stdout) if doc]
        problems = install_problems(documented, manifests)
        assert problems == [], f"{shlex.join(documented)}: {problems}"
        self.manifests = manifests
        self.rendered.append((documented, manifests))

    def kubectl(self, argv: list[str], verb: str) -> None:
        namespace = option(argv, "-n", "--namespace") or "default"
        if verb == "port-forward":
            self.port_forward(argv, namespace)
            return
        for arg in argv:
            if arg.startswith("--from-file="):
                local = self.root / arg.split("=")[-1]
                local.write_text(f"dummy-{local.name}")
        secret = yaml.safe_load(self.ok([*argv, "--dry-run=client", "-o", "yaml"]).stdout)
        valid = kubernetes_validate(yaml.safe_dump(secret), KUBE_VERSION)
        assert valid.returncode == 0, valid.stdout + valid.stderr
        data = {key: base64.b64decode(value) for key, value in secret["data"].items()}
        self.secrets[(namespace, secret["metadata"]["name"])] = data

    def rollout(self, argv: list[str]) -> None:
        """`kubectl rollout status KIND/NAME`: the workload is among the rendered objects."""
        namespace = option(argv, "-n", "--namespace") or "default"
        assert argv[argv.index("rollout") + 1] == "status", argv
        kind_name, _, name = argv[argv.index("status") + 1].partition("/")
        kind_of = {"statefulset": "StatefulSet", "deployment": "Deployment"}[kind_name]
        found = [
            w
            for w in kinds(self.manifests, kind_of)
            if w["metadata"]["name"] == name and w["metadata"].get("namespace") == namespace
        ]
        assert found, f"{kind_name}/{name}: no such {kind_of} in {namespace} among the rendered"

    def port_forward(self, argv: list[str], namespace: str) -> None:
        resource, ports = argv[argv.index("port-forward") + 1], argv[-1]
        local, _, remote = ports.partition(":")
        kind_name, _, name = resource.partition("/")
        assert kind_name in ("svc", "service"), resource
        services = [
            s
            for s in kinds(self.manifests, "Service")
            if s["metadata"]["name"] == name and s["metadata"].get("namespace") == namespace
        ]
        assert services, f"{resource}: no such Service in {namespace} among the rendered objects"
        exposed = [port["port"] for port in services[0]["spec"]["ports"]]
        assert int(remote or local) in exposed, f"{resource} exposes {exposed}, not {ports}"
        self.forwards[f"127.0.0.1:{local}"] = self.start_pod(namespace)

    # -- the pod, as the kubelet would start it ----------------------------------------------

    def start_pod(self, namespace: str) -> str:
        """pingmon from the rendered Deployment: its args, ConfigMap and Secrets; its address."""
        (deployment,) = kinds(self.manifests, "Deployment")
        spec = deployment["spec"]["template"]["spec"]
        (container,) = [c for c in spec["containers"] if c["name"] == "pingmon"]
        mounts = self.mount_volumes(spec, container, namespace)
        env = {k: v for k, v in self.env.items() if not k.upper().endswith("_PROXY")}
        env.update(self.container_env(container, namespace))
        address = f"127.0.0.1:{free_port()}"
        closed = f"http://127.0.0.1:{free_port()}"
        env.update(PINGMON_LISTEN=address, HTTPS_PROXY=closed, HTTP_PROXY=closed, NO_PROXY="")
        args = [relocate(arg, mounts) for arg in container["args"]]
        command = [sys.executable, "-m", "pingmon", *args]
        process = Process("pod", command, self.root / "pod.log", env=env, cwd=self.root)
        self.processes.append(process)
        process.start()
        eventually(lambda: http_ok(f"http://{address}/-/ready"), "the pod ready", process.tail)
        return address

    def container_env(self, container: Manifest, namespace: str) -> dict[str, str]:
        env: dict[str, str] = {}
        for item in container.get("env", []):
            ref = item.get("valueFrom", {}).get("secretKeyRef")
            if ref is None:
                env[item["name"]] = str(item.get("value", ""))
                continue
            data = self.secrets.get((namespace, ref["name"]), {})
            assert ref["key"] in data or ref.get("optional"), (
                f"the pod would not start: no key {ref['key']!r} in Secret {ref['name']!r} "
                f"(the documented kubectl commands made {sorted(self.secrets)})"
            )
            if ref["key"] in data:
                env[item["name"]] = data[ref["key"]].decode()
        return env

    def mount_volumes(self, spec: Manifest, container: Manifest, namespace: str) -> list[Mount]:
        """Each volume the container mounts, written under the walk: ConfigMaps and Secrets."""
        volumes = {volume["name"]: volume for volume in spec.get("volumes", [])}
        mounts: list[Mount] = []
        for index, mount in enumerate(container.get("volumeMounts", [])):
            local = self.root / "pod-volumes" / str(index)
            local.mkdir(parents=True)
            for key, content in self.volume_files(volumes[mount["name"]], namespace).items():
                (local / key).write_bytes(content)
            mounts.append(Mount(mount["mountPath"], str(local)))
        for path in local_paths(mounts):
            text = path.read_text()
            path.write_text(relocate(text, mounts))
        return mounts

    def volume_files(self, volume: Manifest, namespace: str) -> dict[str, bytes]:
        if "configMap" in volume:
            (config_map,) = [
                m
                for m in kinds(self.manifests, "ConfigMap")
                if m["metadata"]["name"] == volume["configMap"]["name"]
            ]
            return {key: value.encode() for key, value in config_map["data"].items()}
        source = volume["secret"]
        data = self.secrets.get((namespace, source["secretName"]))
        assert data is not None or source.get("optional"), (
            f"the pod would not start: no Secret {source['secretName']!r} "
            f"(the documented kubectl commands made {sorted(self.secrets)})"
        )
        items = source.get("items") or [{"key": key, "path": key} for key in data or {}]
        return {item["path"]: (data or {})[item["key"]] for item in items}

    def curl(self, argv: list[str]) -> None:
        url = argv[-1]
        for forwarded, address in self.forwards.items():
            url = url.replace(f"//{forwarded}/", f"//{address}/")
        assert url != argv[-1], f"{argv[-1]}: no port-forward leads there"
        self.outputs.append(self.ok([require_tool("curl"), *argv[1:-1], url]).stdout)


@dataclass(frozen=True)
class Mount:
    """A container path and the local directory that stands in for it."""

    path: str
    local: str


def relocate(text: str, mounts: list[Mount]) -> str:
    """Container paths under a mount rewritten to the local directory standing in for it."""
    for mount in sorted(mounts, key=lambda m: len(m.path), reverse=True):
        text = text.replace(mount.path.rstrip("/") + "/", mount.local + "/")
    return text


def local_paths(mounts: list[Mount]) -> list[Path]:
    return [path for mount in mounts for path in Path(mount.local).iterdir() if path.is_file()]


# In a private mount namespace: a fresh /var/run holding the walk's working copy and the
# {file:} secrets the docs' values name, at their paths (the docs require them to exist); a
# fresh /tmp; then the block under bash, from the working copy.
NAMESPACE_SCRIPT: Final = """
set -eu
run=$(readlink -f /var/run)
mount -t tmpfs tmpfs "$run"
mkdir "$run/walk"
mount --bind "$WALK" "$run/walk"
# A fresh /tmp, keeping what the walk runs from if it lives there (a checkout in /tmp).
mkdir "$run/keep"
for kept in $KEEP; do
  mkdir "$run/keep/${kept##*/}" && mount --bind "$kept" "$run/keep/${kept##*/}"
done
mount -t tmpfs tmpfs /tmp
for kept in $KEEP; do
  mkdir -p "$kept" && mount --bind "$run/keep/${kept##*/}" "$kept"
done
for path in $SECRET_FILES; do
  mkdir -p "$(dirname "$path")"
  printf 'dummy' >"$path"
done
cd "$run/walk"
exec bash -euo pipefail -c "$BLOCK"
"""


def run_script(walk: Walk, block: Block, files: list[str]) -> subprocess.CompletedProcess[str]:
    """The block, literally, with bash (-e, pipefail) in a namespace of its own."""
    outside = [path for path in files if not path.startswith(("/var/run/", "/run/"))]
    assert outside == [], f"secret files outside /var/run cannot be made for the walk: {outside}"
    env = {
        **walk.env,
        "BLOCK": block.text,
        "SECRET_FILES": " ".join(files),
        "WALK": str(walk.root),
        "KEEP": " ".join(_kept_under_tmp(walk.env.get("PATH", ""))),
    }
    unshare = require_tool("unshare")
    return subprocess.run(
        [unshare, "--mount", "--propagation=private", "bash", "-c", NAMESPACE_SCRIPT],
        cwd=walk.root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def _kept_under_tmp(path_variable: str) -> list[str]:
    """The folders directly under /tmp that the repository, the Python running the tests or
    a PATH entry live in: the walk mounts a fresh /tmp and binds these back."""
    places = [REPO, Path(sys.prefix), Path(sys.executable), *map(Path, path_variable.split(":"))]
    kept = set()
    for place in places:
        parts = place.resolve().parts
        if len(parts) > 2 and parts[:2] == ("/", "tmp"):
            kept.add(f"/tmp/{parts[2]}")
    return sorted(kept)
