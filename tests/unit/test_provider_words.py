"""Provider names stay in their own modules: the rest of pingmon asks the registry."""

from __future__ import annotations

import re
from pathlib import Path

import pingmon

ROOT = Path(pingmon.__file__).parent
# Each provider's own module and webhook kind, the sandbox (fakes of them), and the demo,
# which wires pingmon to the sandbox's fakes by name.
ALLOWED = {
    "stripe": ("providers/stripe.py", "webhooks/stripe.py"),
    "simotel": ("providers/simotel.py", "webhooks/simotel.py"),
}
EVERYWHERE = ("sandbox/", "demo.py")


def _offenders(word: str, root: Path = ROOT) -> list[str]:
    allowed = (*ALLOWED[word], *EVERYWHERE)
    pattern = re.compile(word, re.IGNORECASE)
    found = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if not path.is_file() or path.suffix not in (".py", ".json", ".yaml", ".txt"):
            continue
        if relative.startswith(allowed):
            continue
        for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
            if pattern.search(line):
                found.append(f"{relative}:{number}: {line.strip()}")
    return found


def test_stripe_is_named_only_in_its_provider_module_its_webhook_kind_and_the_sandbox() -> None:
    assert _offenders("stripe") == []


def test_simotel_is_named_only_in_its_provider_module_its_webhook_kind_and_the_sandbox() -> None:
    assert _offenders("simotel") == []


def test_the_check_finds_a_provider_name_outside_its_modules(tmp_path: Path) -> None:
    (tmp_path / "webhooks").mkdir()
    (tmp_path / "webhooks" / "tracker.py").write_text('if provider_type == "Stripe":\n')
    (tmp_path / "webhooks" / "stripe.py").write_text('"""Stripe\'s webhook kind."""\n')
    assert _offenders("stripe", tmp_path) == [
        'webhooks/tracker.py:1: if provider_type == "Stripe":'
    ]
