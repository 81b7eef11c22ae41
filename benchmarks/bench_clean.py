"""Metadata cleaning: `lanterne clean` side by side with Debian's `mat2`.

Both tools clean the same generated corpus (tests/metadata_corpus.py: JPEG,
PNG, PDF, DOCX, ODT, MP3 with planted tokens), alternately, ROUNDS times, one
batch command per round. Two more rows call the Python API (`clean_files`)
from this process, with and without bubblewrap, to show where lanterne's
time goes (command start-up versus the batch's zygote and its per-file
children). CPU time is not reported: that of the processes inside
bubblewrap does not reach this process's RUSAGE_CHILDREN (0.01 s for a batch
that uses 0.29 s outside it), so it cannot be compared fairly.
Reported: median wall time per batch and files per second, their ratio,
which formats each tool handled, and how many planted tokens each left
behind (deep scan + exiftool, as in the tests).

    .venv/bin/python benchmarks/bench_clean.py [ROUNDS [COPIES]]

COPIES (default 1) puts that many renamed copies of the corpus in one batch,
to show how the per-batch start-up costs spread over more files.
"""

from __future__ import annotations

import dataclasses
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from journalist_cli.cleaning import clean_files  # noqa: E402
from tests import metadata_corpus as corpus  # noqa: E402

LANTERNE = str(Path(sys.executable).parent / "lanterne")


def run_lanterne(files: list[Path], out: Path) -> tuple[float, dict[str, Path]]:
    start = time.perf_counter()
    subprocess.run(
        [LANTERNE, "clean", *map(str, files), "--out", str(out), "--json"],
        capture_output=True,
        check=False,
    )
    elapsed = time.perf_counter() - start
    return elapsed, {f.name: out / f.name for f in files if (out / f.name).is_file()}


def run_api(files: list[Path], out: Path, sandbox: bool) -> tuple[float, dict[str, Path]]:
    start = time.perf_counter()
    reports = list(clean_files(files, out, use_sandbox=sandbox))
    elapsed = time.perf_counter() - start
    return elapsed, {Path(r.source).name: Path(r.output) for r in reports if r.output}


def run_mat2(files: list[Path], work: Path) -> tuple[float, dict[str, Path]]:
    work.mkdir()
    copies = [work / f.name for f in files]
    for source, copy in zip(files, copies, strict=True):
        shutil.copyfile(source, copy)
    start = time.perf_counter()
    subprocess.run(["mat2", *map(str, copies)], capture_output=True, check=False)
    elapsed = time.perf_counter() - start
    outputs = {}
    for copy in copies:
        cleaned = copy.with_name(f"{copy.stem}.cleaned{copy.suffix}")
        if cleaned.is_file():
            outputs[copy.name] = cleaned
    return elapsed, outputs


def leftovers(item: corpus.CorpusFile, output: Path | None) -> str:
    if output is None:
        return "failed"
    found = corpus.deep_scan(output, item.tokens) | corpus.exiftool_scan(output, item.tokens)
    return str(len(found))


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    copies = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    mat2_version = subprocess.run(
        ["mat2", "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        originals = corpus.build(base / "corpus")
        items = list(originals)
        for k in range(1, copies):
            for item in originals:
                copy = item.path.with_name(f"{item.path.stem}-{k}{item.path.suffix}")
                shutil.copyfile(item.path, copy)
                items.append(dataclasses.replace(item, path=copy))
        files = [i.path for i in items]
        tools = ["lanterne", "mat2", "api, bubblewrap", "api, rlimits only"]
        times: dict[str, list[float]] = {tool: [] for tool in tools}
        last: dict[str, dict[str, Path]] = {}
        for n in range(rounds):
            # Alternate the order so that neither tool always runs on a warm cache.
            order = tools if n % 2 == 0 else tools[::-1]
            for index, tool in enumerate(order):
                target = base / f"{index}-{n}"
                if tool == "lanterne":
                    elapsed, outputs = run_lanterne(files, target)
                elif tool == "mat2":
                    elapsed, outputs = run_mat2(files, target)
                else:
                    elapsed, outputs = run_api(files, target, sandbox="bubblewrap" in tool)
                times[tool].append(elapsed)
                last[tool] = outputs
        count = len(files)
        med = {tool: statistics.median(values) for tool, values in times.items()}
        print(f"corpus: {count} files; {rounds} rounds, alternating; {mat2_version}")
        print()
        print("| tool | median s per batch | files/s | formats handled | tokens left |")
        print("|---|---|---|---|---|")
        for tool in tools:
            handled = len(last[tool])
            left = sum(
                int(v)
                for v in (leftovers(i, last[tool].get(i.path.name)) for i in items)
                if v != "failed"
            )
            print(
                f"| {tool} | {med[tool]:.3f} | {count / med[tool]:.1f} | "
                f"{handled}/{count} | {left} |"
            )
        print()
        for tool in tools[2:] + tools[:1]:
            print(f"speed ratio {tool} / mat2 (files/s): {med['mat2'] / med[tool]:.2f}x")
        print()
        print("| file | planted tokens | lanterne left | mat2 left |")
        print("|---|---|---|---|")
        for item in originals:
            name = item.path.name
            print(
                f"| {name} | {len(item.tokens)} | "
                f"{leftovers(item, last['lanterne'].get(name))} | "
                f"{leftovers(item, last['mat2'].get(name))} |"
            )


if __name__ == "__main__":
    main()
