"""`lanterne clean FILE... --out DIR`: cleaned copies for publishing, originals untouched.

Exit codes (journalist_cli.errors.ExitCode): 0 when every file was cleaned
(or had nothing to clean), 1 when at least one failed or could not be vouched
for (the others are still cleaned and reported), 2 for wrong arguments, a
missing FILE included.
"""

from __future__ import annotations

import functools
import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import click

from journalist_cli.errors import CliError

if TYPE_CHECKING:
    from rich.console import Console


@functools.cache
def _console() -> Console:
    # rich loads only for the table output, and only once the first report is
    # in, while the worker cleans the next files; --json never loads it.
    from rich.console import Console

    return Console()


@click.command("clean")
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory for the cleaned copies (created if missing).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the reports as JSON.")
@click.option(
    "--flatten", is_flag=True, help="PDFs and images: keep only the pixels (text becomes an image)."
)
def clean_command(files: tuple[Path, ...], out_dir: Path, as_json: bool, flatten: bool) -> None:
    """Write a metadata-free copy of each FILE into --out, under the same name.

    The originals are never modified. Each file is parsed in its own isolated
    process without keys (a few at a time). Exit code 0: all cleaned (or nothing
    to clean); 1: some failed or could not be vouched for (the others are still
    cleaned and reported).
    """
    # Imported here, not at module level: `lanterne --help` imports every
    # command's module to list it, and only cleaning needs this machinery.
    from journalist_cli.cleaning import Status, clean_files, render_table, summarise

    out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    reports = []
    for report in clean_files(files, out_dir, flatten=flatten):
        reports.append(report)
        if not as_json:
            _console().print(render_table(report))
    by_status = Counter(r.status for r in reports)
    failed = by_status[Status.FAILED]
    unvouched = by_status[Status.NOT_VOUCHED]
    if as_json:
        click.echo(
            json.dumps(
                {
                    "files": [r.to_json() for r in reports],
                    "failed": failed,
                    "not_vouched": unvouched,
                },
                indent=2,
                ensure_ascii=False,
            )
        )
    else:
        _console().print(f"{summarise(reports)}; copies in {out_dir}", highlight=False)
    if failed or unvouched:
        # CliError is mapped to exit code 1 in journalist_cli.main.
        raise CliError(
            f"{failed + unvouched} of {len(reports)} files could not be cleaned"
            " (the report says why)"
        )
