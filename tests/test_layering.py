"""Architecture rules from DESIGN.md §3, checked on the source tree.

The server's layers (docs/SERVER_LAYERS.md): web -> domain -> store, ops above
all. web and domain reach the store only through ``server.store.protocols``
(records, errors, Protocols); the two app factories also import
``server.store.wiring`` for their default stores. Routes never import routes;
no HTTP below web; no database or S3 client, and no direct file access, outside
server/store (allow-listed exceptions with reasons); nothing outside envelope/
uses its private modules or names outside ``envelope.__all__``. Each rule has
a planted violation the checker must report (``PLANTED``).
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

import envelope

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("envelope", "keyfiles", "server", "journalist_cli")


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


def test_envelope_does_not_import_keyfiles() -> None:
    for path in modules("envelope"):
        bad = {m for m in imports_of(path) if m.split(".")[0] == "keyfiles"}
        assert not bad, f"{path}: {bad}"


def test_keyfiles_imports_only_envelope_nacl_and_stdlib() -> None:
    """The one key-file module serves the CLI and the server: it may import neither."""
    import sys

    allowed = {"envelope", "keyfiles", "nacl", "__future__"}
    for path in modules("keyfiles"):
        for m in imports_of(path):
            top = m.split(".")[0]
            assert top in allowed or top in sys.stdlib_module_names, f"{path}: {m}"
    for path in modules("keyfiles"):
        for m in imports_of(path):
            if m.startswith("envelope."):
                assert not m.split(".")[1].startswith("_"), f"{path}: {m}"


def test_identity_files_are_read_in_one_place() -> None:
    """Passphrase sealing (Argon2id and SecretBox together) and the identity file
    type names appear only in keyfiles (other modules may use either primitive
    for their own purposes: codenames, sealed sessions)."""
    sealers = [
        path.relative_to(ROOT).as_posix()
        for pkg in PACKAGES
        for path in modules(pkg)
        if {"nacl.pwhash", "nacl.secret"} <= imports_of(path)
    ]
    assert sealers == ["keyfiles/__init__.py"]
    for pkg in PACKAGES:
        for path in modules(pkg):
            text = path.read_text()
            if path.parent.name != "keyfiles":
                assert '"lanterne-identity/' not in text, path
                assert '"lanterne-signing-identity/' not in text, path


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
            "DirectoryDesk",
            "DirectoryError",
            "DowngradeError",
            "Encryptor",
            "EnvelopeError",
            "FormatError",
            "HybridIdentity",
            "HybridRecipient",
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
            "ciphertext_size",
            "decrypt",
            "decrypt_aiter",
            "decrypt_bytes",
            "decrypt_file",
            "encrypt",
            "encrypt_aiter",
            "encrypt_bytes",
            "encrypt_file",
            "fingerprint",
            "header_size",
            "newsroom_fingerprint",
            "newsroom_public_key",
            "sign_directory",
            "verify_directory",
            "padded_size",
            "Receipt",
            "ReceiptCertificate",
            "ReceiptError",
            "certify_receipt_key",
            "receipt_objects_hash",
            "sign_receipt",
            "verify_receipt",
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
            assert set(doc) <= {
                "type",
                "name",
                "encryption_key",
                "signing_key",
                "keys",
                "fingerprint",
            }, path


# --- server/ in layers (docs/SERVER_LAYERS.md) ------------------------------------------
#
# The checker below works on any tree shaped like this repository, so each rule is
# tested twice: the real tree has no violation, and a small synthetic tree with one
# planted violation per rule makes the checker report exactly that violation.
#
# Rules, for modules under server/ (their layer is their first folder; the modules at
# the top of server/, settings.py and onion_address.py, are "shared"):
#   direction  web -> domain -> store, ops above all:
#              store imports store and shared;
#              domain imports domain, shared, and of the store only server.store.protocols;
#              web imports web, domain, shared, server.store.protocols, and, in the two
#              app factories only, server.store.wiring (the default stores);
#              ops imports anything; shared imports shared (SHARED_EXCEPTIONS aside);
#              nobody below ops imports ops.
#   routes     a route module (server/web/routes/*, server/web/journalist_api/routes.py)
#              imports no other route module.
#   no HTTP    domain and store import no fastapi, starlette, uvicorn, h11, python_multipart.
#   drivers    nothing under server/ outside server/store imports sqlite3, psycopg,
#              psycopg_pool, boto3, botocore or minio.
#   files      nothing under server/ outside server/store calls open(), os.open, os.fdopen,
#              io.open, or .open/.read_bytes/.write_bytes/.read_text/.write_text on a
#              path, except the (module, function) pairs in FILE_ACCESS_ALLOWED, each
#              with its reason. Calls on an object store (``...store.open``) and on the
#              store's file helpers (``file_times.*``) are the store's own API.
#   envelope   outside envelope/: no ``envelope._private`` module, no ``from envelope
#              import X`` or ``envelope.X`` with X outside envelope.__all__, and from
#              public submodules only ENVELOPE_SUBMODULE_NAMES.

LAYERS = ("store", "domain", "web", "ops")
APP_FACTORIES = {"server/web/app.py", "server/web/journalist_api/app.py"}
SHARED_EXCEPTIONS = {
    # config.toml is read without touching its access time (file times are days).
    ("server/settings.py", "server.store.file_times"),
    # [objects] builds the bucket's location for the S3 store (imported lazily:
    # boto3 only where the bucket is configured).
    ("server/settings.py", "server.store.s3_objects"),
}
HTTP_PACKAGES = {"fastapi", "starlette", "uvicorn", "h11", "python_multipart"}
DRIVER_PACKAGES = {"sqlite3", "psycopg", "psycopg_pool", "boto3", "botocore", "minio"}
FILE_METHODS = {"open", "read_bytes", "write_bytes", "read_text", "write_text"}
FILE_ACCESS_ALLOWED = {
    # Files shipped with the code, found next to it: not the data directory.
    ("server/domain/codenames.py", "wordlist"): "the packaged word lists",
    ("server/web/assets.py", "__init__"): "the packaged static files, hashed for integrity",
    ("server/web/i18n.py", "load_translations"): "the packaged .po files",
    # Paths the admin names on the command line.
    ("server/ops/admin.py", "read_journalist_key"): "a journalist's public key file",
    ("server/ops/admin.py", "passphrase"): "--passphrase-file",
    ("server/ops/admin.py", "restore"): "restore --config, the config.toml the admin names",
    ("server/ops/admin.py", "verify_receipt"): "the receipt file to verify",
    # The backup file itself, and restore's staging copy of a data directory. On
    # PostgreSQL and S3 the rows and objects go through the store
    # (server/store/postgres_dump.py, the object store's own API).
    ("server/ops/backup.py", "_append_signature"): "the backup file",
    ("server/ops/backup.py", "restore"): "the backup file",
    ("server/ops/backup.py", "backup"): "the archive stream (tarfile over the backup file)",
    ("server/ops/backup.py", "_unpack"): "the archive stream (tarfile over the backup file)",
    ("server/ops/backup.py", "_extract"): "restore's staging directory",
    ("server/ops/backup.py", "_write_new"): "restore's staging directory (--config)",
    ("server/ops/backup.py", "_validate"): "restore's staging directory",
    # The system and tor, not the data directory.
    ("server/ops/health_check.py", "_instance_defaults"): "tor's defaults, in a temporary dir",
    ("server/ops/health_check.py", "mount_options"): "/proc/self/mountinfo",
    ("server/ops/health_check.py", "read_swaps"): "/proc/swaps",
    ("server/ops/health_check.py", "_block_is_safe"): "/sys/block",
    ("server/ops/tor_config.py", "read_onion_hostname"): "tor's hidden-service directory",
    ("server/ops/tor_config.py", "add_authorized_client"): "tor's authorized_clients",
    ("server/ops/tor_config.py", "authorized_clients"): "tor's authorized_clients",
    ("server/ops/tor_config.py", "new_client"): "the client key file the admin asked for",
    ("server/ops/tor_config.py", "main"): "the torrc template",
}
ENVELOPE_SUBMODULE_NAMES = {
    # The key files' text encoding, shared by the server's and the CLI's key files.
    ("envelope.keys", "b64decode"),
    ("envelope.keys", "b64encode"),
    ("envelope.keys", "valid_name"),
}


def _layer(rel: str) -> str | None:
    parts = rel.split("/")
    if parts[0] != "server":
        return None
    return parts[1] if len(parts) > 2 and parts[1] in LAYERS else "shared"


def _module_layer(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "server":
        return None
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else "shared"


def _is_route_module(rel: str) -> bool:
    return (
        rel.startswith("server/web/routes/") and not rel.endswith("__init__.py")
    ) or rel == "server/web/journalist_api/routes.py"


def _imported(tree: ast.AST) -> list[tuple[str, list[str]]]:
    """(module, names imported from it) for every absolute import."""
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, [a.name for a in node.names]))
    return found


def _resolved(root: Path, imports: list[tuple[str, list[str]]]) -> list[tuple[str, list[str]]]:
    """``from server.store import file_times`` imports the module server.store.file_times."""
    out = []
    for module, names in imports:
        if module.split(".")[0] == "server":
            folder = root / module.replace(".", "/")
            subs = [n for n in names if (folder / f"{n}.py").is_file() or (folder / n).is_dir()]
            out += [(f"{module}.{n}", []) for n in subs]
            names = [n for n in names if n not in subs]
            if not subs or names:
                out.append((module, names))
        else:
            out.append((module, names))
    return out


def _direction(rel: str, module: str) -> str | None:
    """Why importing ``module`` from ``rel`` breaks the direction, or None."""
    mine, theirs = _layer(rel), _module_layer(module)
    if mine is None or theirs is None or mine == "ops" or mine == theirs:
        return None
    if theirs == "shared":
        return None
    if (rel, module) in SHARED_EXCEPTIONS:
        return None
    if theirs == "store" and mine in ("domain", "web"):
        if module == "server.store.protocols":
            return None
        if mine == "web" and rel in APP_FACTORIES and module == "server.store.wiring":
            return None
        return f"{mine} imports {module}: only server.store.protocols (and the wiring)"
    if theirs == "domain" and mine == "web":
        return None
    return f"{mine} imports {module} ({theirs} is not below {mine})"


def _file_calls(tree: ast.AST) -> list[tuple[str, str, int]]:
    """(innermost enclosing function, call, line) for each direct file access."""
    calls: list[tuple[str, str, int]] = []

    def visit(node: ast.AST, function: str) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            function = node.name
        if isinstance(node, ast.Call):
            call = _file_call(node.func)
            if call is not None:
                calls.append((function, call, node.lineno))
        for child in ast.iter_child_nodes(node):
            visit(child, function)

    visit(tree, "<module>")
    return calls


def _file_call(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name) and func.id == "open":
        return "open"
    if not isinstance(func, ast.Attribute):
        return None
    receiver = ast.unparse(func.value)
    if receiver in ("os", "io"):
        return f"{receiver}.{func.attr}" if func.attr in ("open", "fdopen") else None
    if func.attr in FILE_METHODS and receiver != "file_times" and not receiver.endswith("store"):
        return f"{receiver}.{func.attr}"
    return None


def _envelope_misuse(module: str, names: list[str], public: set[str]) -> list[str]:
    parts = module.split(".")
    if parts[0] != "envelope":
        return []
    if len(parts) > 1 and parts[1].startswith("_"):
        return [f"imports the private module {module}"]
    if module == "envelope":
        return [f"imports envelope.{n}, not in envelope.__all__" for n in names if n not in public]
    return [
        f"imports {module}.{n}, not public"
        for n in names
        if (module, n) not in ENVELOPE_SUBMODULE_NAMES
    ]


def _envelope_attributes(tree: ast.AST, public: set[str]) -> list[str]:
    submodules = {"keys", "errors"}
    return [
        f"uses envelope.{node.attr}, not in envelope.__all__"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "envelope"
        and node.attr not in public
        and node.attr not in submodules
    ]


def layering_violations(root: Path, envelope_all: set[str]) -> list[str]:
    """Every broken rule in the tree at ``root``, as ``path: why`` lines."""
    out: list[str] = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        top = rel.split("/")[0]
        if top not in PACKAGES:
            continue
        tree = ast.parse(path.read_text(), filename=rel)
        layer = _layer(rel)
        for module, names in _resolved(root, _imported(tree)):
            base = module.split(".")[0]
            if layer is not None:
                why = _direction(rel, module)
                if why:
                    out.append(f"{rel}: {why}")
                if _is_route_module(rel) and _is_route_module(module.replace(".", "/") + ".py"):
                    out.append(f"{rel}: a route module imports the route module {module}")
                if layer in ("domain", "store") and base in HTTP_PACKAGES:
                    out.append(f"{rel}: {layer} imports {module} (no HTTP below web)")
                if layer != "store" and base in DRIVER_PACKAGES:
                    out.append(f"{rel}: imports {module} outside server/store")
            if top != "envelope":
                out += [f"{rel}: {why}" for why in _envelope_misuse(module, names, envelope_all)]
        if top != "envelope":
            out += [f"{rel}: {why}" for why in _envelope_attributes(tree, envelope_all)]
        if layer is not None and layer != "store":
            out += [
                f"{rel}:{line}: {call} in {fn}() outside server/store"
                for fn, call, line in _file_calls(tree)
                if (rel, fn) not in FILE_ACCESS_ALLOWED
            ]
    return out


def test_server_layers_hold_on_the_real_tree() -> None:
    assert layering_violations(ROOT, set(envelope.__all__)) == []


def test_the_layer_folders_exist_and_the_allow_list_is_not_stale() -> None:
    for layer in LAYERS:
        assert (ROOT / "server" / layer / "__init__.py").is_file(), layer
    for rel, function in FILE_ACCESS_ALLOWED:
        tree = ast.parse((ROOT / rel).read_text())
        assert function in {fn for fn, _, _ in _file_calls(tree)}, (rel, function)
    for rel in APP_FACTORIES:
        assert (ROOT / rel).is_file(), rel


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    base = {
        "server/__init__.py": "",
        "server/settings.py": "X = 1\n",
        "server/store/__init__.py": "",
        "server/store/protocols.py": "class P: ...\n",
        "server/store/db.py": "import sqlite3\n",
        "server/store/wiring.py": "from server.store.db import sqlite3\n",
        "server/domain/__init__.py": "",
        "server/domain/things.py": "from server.store.protocols import P\n",
        "server/web/__init__.py": "",
        "server/web/app.py": "from server.store.wiring import sqlite3\n",
        "server/web/routes/__init__.py": "",
        "server/web/routes/a.py": "from server.domain.things import P\n",
        "server/web/routes/b.py": "from server.web.app import sqlite3\n",
        "server/ops/__init__.py": "",
        "server/ops/admin.py": "from server.store import db\nfrom server.web.app import x\n",
        "envelope/__init__.py": "",
        "envelope/_header.py": "",
    }
    for rel, text in {**base, **files}.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


PLANTED = {
    "routes never import routes": (
        {"server/web/routes/b.py": "from server.web.routes.a import P\n"},
        "server/web/routes/b.py: a route module imports the route module server.web.routes.a",
    ),
    "web reaches the store only through protocols": (
        {"server/web/routes/a.py": "from server.store.db import sqlite3\n"},
        "server/web/routes/a.py: web imports server.store.db:"
        " only server.store.protocols (and the wiring)",
    ),
    "only the app factories use the wiring": (
        {"server/web/rendering.py": "from server.store.wiring import sqlite3\n"},
        "server/web/rendering.py: web imports server.store.wiring:"
        " only server.store.protocols (and the wiring)",
    ),
    "domain reaches the store only through protocols": (
        {"server/domain/things.py": "from server.store.db import sqlite3\n"},
        "server/domain/things.py: domain imports server.store.db:"
        " only server.store.protocols (and the wiring)",
    ),
    "domain never imports web": (
        {"server/domain/things.py": "from server.web.app import x\n"},
        "server/domain/things.py: domain imports server.web.app (web is not below domain)",
    ),
    "store never imports domain": (
        {"server/store/db.py": "from server.domain.things import P\n"},
        "server/store/db.py: store imports server.domain.things (domain is not below store)",
    ),
    "nothing but ops imports ops": (
        {"server/web/app.py": "from server.ops.admin import x\n"},
        "server/web/app.py: web imports server.ops.admin (ops is not below web)",
    ),
    "shared modules import no layer": (
        {"server/settings.py": "from server.store.db import sqlite3\n"},
        "server/settings.py: shared imports server.store.db (store is not below shared)",
    ),
    "domain has no HTTP": (
        {"server/domain/things.py": "from fastapi import Request\n"},
        "server/domain/things.py: domain imports fastapi (no HTTP below web)",
    ),
    "sqlite3 only in the store": (
        {"server/domain/things.py": "import sqlite3\n"},
        "server/domain/things.py: imports sqlite3 outside server/store",
    ),
    "S3 clients only in the store": (
        {"server/ops/admin.py": "import boto3\n"},
        "server/ops/admin.py: imports boto3 outside server/store",
    ),
    "PostgreSQL only in the store": (
        {"server/web/app.py": "from psycopg import connect\n"},
        "server/web/app.py: imports psycopg outside server/store",
    ),
    "no open() outside the store": (
        {"server/web/routes/a.py": "def f(p):\n    return open(p)\n"},
        "server/web/routes/a.py:2: open in f() outside server/store",
    ),
    "no Path.open outside the store": (
        {"server/ops/admin.py": "def g(path):\n    with path.open('rb') as f:\n        pass\n"},
        "server/ops/admin.py:2: path.open in g() outside server/store",
    ),
    "no read_bytes outside the store": (
        {"server/domain/things.py": "def h(p):\n    return (p / 'x').read_bytes()\n"},
        "server/domain/things.py:2: p / 'x'.read_bytes in h() outside server/store",
    ),
    "no os.open outside the store": (
        {"server/web/app.py": "import os\ndef k(p):\n    return os.open(p, 0)\n"},
        "server/web/app.py:3: os.open in k() outside server/store",
    ),
    "no private envelope module": (
        {"server/store/db.py": "from envelope import _header\n"},
        "server/store/db.py: imports envelope._header, not in envelope.__all__",
    ),
    "no import of a private envelope module by path": (
        {"server/store/db.py": "from envelope._header import MAX_HEADER_SIZE\n"},
        "server/store/db.py: imports the private module envelope._header",
    ),
    "no envelope name outside __all__": (
        {"server/store/db.py": "import envelope\nX = envelope._stream.CHUNK_SIZE\n"},
        "server/store/db.py: uses envelope._stream, not in envelope.__all__",
    ),
}


@pytest.mark.parametrize("rule", sorted(PLANTED))
def test_each_layering_rule_fails_when_broken(tmp_path: Path, rule: str) -> None:
    files, expected = PLANTED[rule]
    clean = _tree(tmp_path / "clean", {})
    assert layering_violations(clean, {"encrypt"}) == []
    broken = _tree(tmp_path / "broken", files)
    assert layering_violations(broken, {"encrypt"}) == [expected]
