"""Caps that keep a hostile file from exhausting the journalist's machine.

Two layers: these parse-time caps give clear errors early, and the worker's
rlimits and wall-clock timeout (see `worker`) catch whatever slips past them.
"""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Every cap in one place; tests pass smaller ones to trigger them cheaply."""

    # Pillow's own default only warns below 179 Mpx; 50 Mpx covers 8K photos.
    max_pixels: int = 50_000_000
    max_frames: int = 1_000
    # Zip containers (OOXML, ODF): counts and sizes read from the central
    # directory are attacker-chosen, so reads are capped again as they happen.
    max_zip_members: int = 2_000
    max_zip_total: int = 512 * MIB
    max_zip_member: int = 256 * MIB
    max_zip_ratio: int = 200
    max_zip_depth: int = 3
    max_xml_depth: int = 256
    max_pdf_pages: int = 5_000
    max_pdf_objects: int = 500_000
    max_pdf_depth: int = 64
    max_audio_bytes: int = 2048 * MIB
    # --flatten
    flatten_dpi: int = 150
    max_flatten_pages: int = 500
    # The worker process.
    worker_memory: int = 1536 * MIB
    worker_cpu_seconds: int = 120
    worker_timeout: float = 180.0
    worker_output_bytes: int = 4096 * MIB
    worker_report_bytes: int = 8 * MIB


DEFAULT_LIMITS = Limits()
