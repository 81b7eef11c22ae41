"""`lanterne export` writes what docs/JOURNALIST_GUIDE.md §4 says it writes.

The same files as `decrypt --no-clean`, each encrypted to the OpenPGP key with
`.gpg` added to its name (real gpg, throwaway GnuPG home), decrypting to the
same bytes; no cleaned copies; nothing left of the private work folder; an
existing file is never replaced.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from journalist_cli.receive import MARKER
from tests.cli_helpers import run
from tests.gnupg_home import gnupg_home
from tests.test_journalist_cli_offline import setup  # noqa: F401 (the fixture)

ROOT = Path(__file__).resolve().parent.parent


def files_under(root: Path) -> dict[str, Path]:
    """Every file, except the marker saying whose a submission folder is (not exported)."""
    return {
        p.relative_to(root).as_posix(): p
        for p in root.rglob("*")
        if p.is_file() and p.name != MARKER
    }


def test_export_is_decrypt_no_clean_encrypted_to_gpg(
    setup: tuple[dict[str, str], object, object],  # noqa: F811
    tmp_path: Path,
) -> None:
    env, built, _ = setup
    sid = built.id  # type: ignore[attr-defined]
    plain = tmp_path / "plain"
    assert run("decrypt", sid, "--out", plain, "--no-clean", env=env).returncode == 0
    decrypted = files_under(plain)
    assert any(name.endswith("/message.txt") for name in decrypted)
    assert any(name.endswith("/files.json") for name in decrypted)
    assert any("/original/" in name for name in decrypted)
    out = tmp_path / "export"
    with gnupg_home("Lawyer <lawyer@example.org>") as gpg:
        done = run("export", sid, "--gpg", gpg.fingerprint, "--out", out, env={**env, **gpg.env})
        assert done.returncode == 0, done.stderr
        exported = files_under(out)
        assert set(exported) == {name + ".gpg" for name in decrypted}
        for name, path in decrypted.items():
            opened = subprocess.run(
                [
                    "gpg",
                    "--batch",
                    "--homedir",
                    str(gpg.path),
                    "--decrypt",
                    str(exported[name + ".gpg"]),
                ],
                capture_output=True,
                check=True,
            ).stdout
            assert opened == path.read_bytes(), name
        assert not [p for p in out.iterdir() if p.name.startswith(".lanterne-export")]
        # Again into the same folder: nothing is replaced, and it says which file.
        before = {n: p.read_bytes() for n, p in exported.items()}
        again = run("export", sid, "--gpg", gpg.fingerprint, "--out", out, env={**env, **gpg.env})
        assert again.returncode == 2 and b"already exists" in again.stderr
        assert {n: p.read_bytes() for n, p in files_under(out).items()} == before


def test_the_guide_describes_that_layout() -> None:
    guide = (ROOT / "docs" / "JOURNALIST_GUIDE.md").read_text(encoding="utf-8")
    section = guide[guide.index("## 4. Exporting") : guide.index("## 5.")]
    assert "what `decrypt --no-clean` would write" in section
    assert "`.gpg`" in section and "original/rapport.pdf.gpg" in section
    assert "inside `--out`" in section and "Cleaned copies, replies and notes are not" in section
