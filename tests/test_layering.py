"""Architecture rules from DESIGN.md §3, checked on the source tree."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import envelope

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("envelope", "server", "journalist_cli")


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def test_the_layout_exists() -> None:
    for d in (
        "envelope",
        "server",
        "journalist_cli",
        "templates",
        "keys",
        "tests",
        "deploy",
        "docs",
        "benchmarks",
    ):
        assert (ROOT / d).is_dir(), d
    assert (ROOT / "envelope" / "SPEC.md").is_file()


def test_envelope_imports_neither_server_nor_cli() -> None:
    for path in modules("envelope"):
        bad = {m for m in imports_of(path) if m.split(".")[0] in ("server", "journalist_cli")}
        assert not bad, f"{path}: {bad}"


def test_journalist_cli_never_imports_server() -> None:
    for path in modules("journalist_cli"):
        bad = {m for m in imports_of(path) if m.split(".")[0] == "server"}
        assert not bad, f"{path}: {bad}"


def test_offline_commands_do_not_load_the_http_client() -> None:
    """list, show, decrypt, import on the air-gapped machine: no httpx, no server code."""
    import subprocess
    import sys

    code = (
        "import sys, journalist_cli.commands.workflow, journalist_cli.vault,"
        " journalist_cli.receive, journalist_cli.bundle;"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'httpx', 'httpcore', 'server'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_envelope_uses_only_stdlib_and_cryptography() -> None:
    allowed = {"envelope", "cryptography", "__future__"}
    import sys

    for path in modules("envelope"):
        for m in imports_of(path):
            top = m.split(".")[0]
            assert top in allowed or top in sys.stdlib_module_names, f"{path}: {m}"


def test_exactly_one_module_imports_cryptography_hazmat() -> None:
    importers = [
        path.relative_to(ROOT).as_posix()
        for pkg in PACKAGES
        if (ROOT / pkg).is_dir()
        for path in modules(pkg)
        if any(m.startswith("cryptography.hazmat") for m in imports_of(path))
    ]
    assert importers == ["envelope/_primitives.py"]


def test_public_surface_is_what_we_meant() -> None:
    assert sorted(envelope.__all__) == sorted(
        [
            "AuthenticationError",
            "Decryptor",
            "DirectoryError",
            "DowngradeError",
            "Encryptor",
            "EnvelopeError",
            "FormatError",
            "Identity",
            "KeyDirectory",
            "KeyFormatError",
            "NoMatchingKeyError",
            "PublicKey",
            "Recipient",
            "Stanza",
            "X25519Identity",
            "X25519Recipient",
            "atomic_output",
            "decrypt",
            "decrypt_aiter",
            "decrypt_bytes",
            "decrypt_file",
            "encrypt",
            "encrypt_aiter",
            "encrypt_bytes",
            "encrypt_file",
            "fingerprint",
            "newsroom_fingerprint",
            "newsroom_public_key",
            "sign_directory",
            "verify_directory",
            "padded_size",
        ]
    )
    for name in envelope.__all__:
        assert getattr(envelope, name).__doc__, f"{name} has no docstring"


def test_every_error_class_explains_itself() -> None:
    for cls in (
        envelope.EnvelopeError,
        envelope.FormatError,
        envelope.AuthenticationError,
        envelope.NoMatchingKeyError,
        envelope.KeyFormatError,
    ):
        assert issubclass(cls, envelope.EnvelopeError)
        assert cls.__doc__ and len(cls.__doc__) > 20


def test_keys_directory_holds_no_private_key() -> None:
    for path in (ROOT / "keys").rglob("*"):
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        assert "lanterne-identity" not in text, path
        assert "PRIVATE KEY" not in text, path
        if path.suffix == ".pub":
            doc = json.loads(text)
            assert set(doc) <= {"type", "name", "encryption_key", "signing_key", "fingerprint"}, (
                path
            )
