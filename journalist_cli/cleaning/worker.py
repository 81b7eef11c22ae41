"""The keyless worker process: cleans one file, started fresh by `runner`.

It is started as `python -I -m journalist_cli.cleaning.worker`, never forked
from the `lanterne` process, so it shares no memory (and no keys) with it. It
limits itself (address space, CPU seconds, file size, no core dumps) before it
imports a parser or opens the file, writes the cleaned copy and a JSON report
into its work directory, and exits.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
from pathlib import Path

from journalist_cli.cleaning.limits import Limits


def _limit_self(limits: Limits) -> None:
    for which, value in (
        (resource.RLIMIT_AS, limits.worker_memory),
        (resource.RLIMIT_CPU, limits.worker_cpu_seconds),
        (resource.RLIMIT_FSIZE, limits.worker_output_bytes),
        (resource.RLIMIT_CORE, 0),
    ):
        resource.setrlimit(which, (value, value))


def main(argv: list[str] | None = None) -> int:
    """Worker entry point: clean SOURCE into OUTPUT, write the JSON report to REPORT."""
    parser = argparse.ArgumentParser(prog="lanterne-clean-worker")
    parser.add_argument("--limits", required=True)
    parser.add_argument("--flatten", action="store_true")
    parser.add_argument("source", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("report", type=Path)
    args = parser.parse_args(argv)
    limits = Limits(**json.loads(args.limits))
    _limit_self(limits)
    # Imported after the limits are set: nothing has parsed the file yet.
    from journalist_cli.cleaning import engine

    report = engine.run(args.source, args.output, flatten_pixels=args.flatten, limits=limits)
    args.report.write_text(json.dumps(report.to_json()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
