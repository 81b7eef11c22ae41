"""--flatten: keep only what a page or picture looks like (the Dangerzone idea).

PDF pages are rendered to pixels by Poppler's `pdftoppm`, one page at a time,
as a child of the keyless worker (so it inherits the worker's limits and
sandbox); the pixels are bounds-checked, compressed as JPEG and wrapped into a
new PDF built from scratch, one image per page. Images are decoded and
re-encoded from their pixels. Text is lost (no OCR) and nothing hidden in the
original's structure can survive, but neither can anything visible be removed.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import pikepdf
from PIL import Image, ImageOps

from journalist_cli.cleaning import images, pdf
from journalist_cli.cleaning.errors import HostileFile, MalformedFile, WorkerFailed
from journalist_cli.cleaning.limits import Limits
from journalist_cli.cleaning.report import Category, Findings

_SAVE_FORMAT = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "tiff": "TIFF", "gif": "GIF"}


def _render(src: Path, page: int, work: Path, dpi: int, timeout: float) -> Path:
    pdftoppm = shutil.which("pdftoppm")
    if pdftoppm is None:
        raise WorkerFailed("--flatten needs pdftoppm (Debian package poppler-utils)")
    stem = work / f"page-{page}"
    try:
        result = subprocess.run(
            [
                pdftoppm,
                "-r",
                str(dpi),
                "-f",
                str(page),
                "-l",
                str(page),
                "-singlefile",
                "-cropbox",
                str(src),
                str(stem),
            ],
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise WorkerFailed(f"rendering page {page} took longer than {timeout:.0f} s") from exc
    ppm = stem.with_suffix(".ppm")
    if result.returncode != 0 or not ppm.is_file():
        raise MalformedFile(f"page {page} could not be rendered")
    return ppm


def flatten_pdf(src: Path, out: Path, limits: Limits, findings: Findings) -> None:
    """Render every page of `src` and write a pixels-only PDF to `out`."""
    count = pdf.describe_file(src, limits, findings)
    if count > limits.max_flatten_pages:
        raise HostileFile(
            f"{count} pages is more than --flatten renders ({limits.max_flatten_pages})"
        )
    dpi = limits.flatten_dpi
    per_page = max(5.0, limits.worker_timeout / max(count, 1))
    new = pikepdf.new()
    Image.MAX_IMAGE_PIXELS = limits.max_pixels
    for number in range(1, count + 1):
        ppm = _render(src, number, out.parent, dpi, per_page)
        try:
            with Image.open(ppm, formats=["PPM"]) as rendered:
                width, height = rendered.size
                if width * height > limits.max_pixels:
                    raise HostileFile(f"page {number} renders to {width}x{height} pixels")
                buffer = io.BytesIO()
                rendered.convert("RGB").save(buffer, format="JPEG", quality=85)
        except (OSError, Image.DecompressionBombError) as exc:
            raise HostileFile(f"page {number} rendered to an unusable image ({exc})") from exc
        finally:
            ppm.unlink(missing_ok=True)
        image = pikepdf.Stream(new, buffer.getvalue())
        image.Type, image.Subtype = pikepdf.Name.XObject, pikepdf.Name.Image
        image.Width, image.Height = width, height
        image.ColorSpace, image.BitsPerComponent = pikepdf.Name.DeviceRGB, 8
        image.Filter = pikepdf.Name.DCTDecode
        w_pt, h_pt = width * 72 / dpi, height * 72 / dpi
        contents = new.make_stream(f"q {w_pt:.3f} 0 0 {h_pt:.3f} 0 0 cm /Im0 Do Q".encode())
        new.pages.append(
            pikepdf.Page(
                pikepdf.Dictionary(
                    Type=pikepdf.Name.Page,
                    MediaBox=[0, 0, w_pt, h_pt],
                    Resources=pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=image)),
                    Contents=contents,
                )
            )
        )
    new.save(out, static_id=True)
    findings.found(
        Category.OTHER,
        "pages",
        f"{count} pages rendered at {dpi} dpi",
        note="flattened: text is no longer selectable or searchable",
    )


def flatten_image(data: bytes, kind: str, limits: Limits, findings: Findings) -> bytes:
    """Decode the first frame's pixels and encode them again in the same format."""
    cleaned = images.clean_bytes(data, kind, limits, findings)
    image = images.open_image(cleaned, kind, limits)
    try:
        upright = ImageOps.exif_transpose(image)
        mode = "RGBA" if "A" in upright.mode or "transparency" in upright.info else "RGB"
        if kind == "jpeg":
            mode = "RGB"
        fresh = images.fresh_copy(upright.convert(mode))
    except (OSError, ValueError) as exc:
        raise MalformedFile(f"the pixels do not decode ({exc})") from exc
    frames = int(getattr(image, "n_frames", 1))
    if frames > 1:
        findings.found(
            Category.OTHER, "animation", f"{frames} frames", note="flattened to the first frame"
        )
    buffer = io.BytesIO()
    options: dict[str, object] = {"quality": 92} if kind in ("jpeg", "webp") else {}
    fresh.save(buffer, format=_SAVE_FORMAT[kind], **options)
    return buffer.getvalue()
