"""The one report template: a structured page in, one self-contained HTML file out.

A :class:`Page` holds a title, a :class:`Verdict` (the headline, shown first), :class:`Section` s of
blocks (paragraphs as ``str``, :class:`Table`, :class:`Image`, :class:`Gallery`) and a provenance
table (:func:`provenance`). :func:`render` turns it into HTML with inline CSS, every picture embedded
as a base64 ``data:`` URI: no JavaScript, no network, no other file, so a copied or mailed report
shows everything. The layout reads from 700 to 1,600 px wide without scrolling sideways (pictures
shrink to the column, wide tables scroll inside their own box, long words break).
:func:`write_report` writes ``report.html`` atomically.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import os
import shlex
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from selfprune.errors import InvalidInputError

TONES = ("good", "warn", "bad", "neutral")
REPORT_NAME = "report.html"
SMALL_FILE = 2 << 20  # files up to 2 MiB are hashed whole
EDGE = 1 << 20  # bigger files: the first and last MiB, plus the size
FOLDER_FILES = 32  # a folder: names and sizes of every file, contents of the first 32 small ones
FOLDER_SMALL = 64 << 10


@dataclass(frozen=True)
class Verdict:
    """The headline block: a short verdict (``headline``), an optional big number, and reasons."""

    headline: str
    tone: str = "neutral"
    number: str | None = None
    reasons: Sequence[str] = ()


@dataclass(frozen=True)
class Table:
    """A table: column names and rows of cells (anything ``str()`` can show; floats get 4 digits)."""

    columns: Sequence[str]
    rows: Sequence[Sequence[Any]]
    caption: str = ""


@dataclass(frozen=True)
class Image:
    """A picture: a matplotlib Figure (drawn to PNG here) or PNG bytes; ``caption`` says how to read it."""

    source: Any
    caption: str = ""
    alt: str = "figure"


@dataclass(frozen=True)
class Tile:
    """One gallery entry: a label and either a picture (an (H, W) or (H, W, C) array, or PNG bytes) or text."""

    label: str
    image: Any = None
    text: str | None = None


@dataclass(frozen=True)
class Gallery:
    """A titled row of tiles (examples as thumbnails or text snippets)."""

    title: str
    tiles: Sequence[Tile]
    note: str = ""


Block = str | Table | Image | Gallery


@dataclass(frozen=True)
class Section:
    title: str
    blocks: Sequence[Block] = ()


@dataclass(frozen=True)
class Page:
    title: str
    verdict: Verdict
    sections: Sequence[Section] = ()
    provenance: Mapping[str, str] = field(default_factory=dict)


# ----------------------------------------------------------------------------- provenance


def digest(path: str | os.PathLike) -> str:
    """A cheap content digest of a file or folder, saying what it covers.

    A file up to 2 MiB: sha256 of its bytes. A bigger file: sha256 of its first and last MiB and its
    size. A folder: sha256 of every file's relative name and size and of the bytes of the first 32
    files of at most 64 KiB (manifests and the like), in name order.
    """
    p = Path(path)
    h = hashlib.sha256()
    if p.is_file():
        size = p.stat().st_size
        with p.open("rb") as f:
            if size <= SMALL_FILE:
                h.update(f.read())
                return f"sha256 {h.hexdigest()} ({size:,} bytes)"
            h.update(f.read(EDGE))
            f.seek(size - EDGE)
            h.update(f.read(EDGE))
        h.update(str(size).encode())
        return f"sha256 {h.hexdigest()} of first and last MiB and size ({size:,} bytes)"
    if p.is_dir():
        files = sorted(q for q in p.rglob("*") if q.is_file())
        small = 0
        for q in files:
            rel, size = q.relative_to(p).as_posix(), q.stat().st_size
            h.update(f"{rel}\0{size}\n".encode())
            if size <= FOLDER_SMALL and small < FOLDER_FILES:
                h.update(q.read_bytes())
                small += 1
        return f"sha256 {h.hexdigest()} of {len(files):,} file names and sizes and {small} small files"
    return "not a file (a built-in name or a model name)"


def provenance(
    *,
    inputs: Mapping[str, Any] | None = None,
    seed: Any = None,
    started: float | None = None,
    argv: Sequence[str] | None = None,
) -> dict[str, str]:
    """The provenance rows of a report: command line, input digests, version, seed, wall time, date.

    ``inputs`` maps a name (``--data``) to a path or a name (None values are left out);
    ``started`` is the ``time.time()`` the run began at (wall time and date are measured from it).
    """
    from importlib.metadata import PackageNotFoundError, version

    try:
        ver = version("selfprune")
    except PackageNotFoundError:
        ver = "unknown (not installed)"
    now = time.time()
    rows = {"command": shlex.join(sys.argv if argv is None else argv), "selfprune": ver}
    for name, value in (inputs or {}).items():
        if value is not None:
            rows[f"input {name}"] = f"{value}: {digest(value)}"
    if seed is not None:
        rows["seed"] = str(seed)
    if started is not None:
        rows["wall time"] = f"{now - started:.1f} s"
    rows["date"] = time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(started if started is not None else now))
    return rows


# ----------------------------------------------------------------------------- rendering

CSS = """
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
 color:#1d1f23;background:#f6f7f9;overflow-wrap:anywhere}
main{max-width:1200px;margin:0 auto;padding:16px 20px 40px}
h1{font-size:1.6em;margin:.4em 0 .6em;line-height:1.25}
h2{font-size:1.2em;margin:0 0 .6em;border-bottom:1px solid #dde1e6;padding-bottom:.2em}
h3{font-size:1em;margin:.8em 0 .4em}
section{background:#fff;border:1px solid #e3e6ea;border-radius:8px;padding:14px 18px;margin:0 0 16px}
.verdict{border-left:8px solid #6b7280}
.verdict.good{border-left-color:#2e7d32}.verdict.warn{border-left-color:#b26a00}
.verdict.bad{border-left-color:#c62828}
.verdict .head{font-size:1.3em;font-weight:600}
.verdict .number{font-size:2em;font-weight:700;margin-right:.4em}
.good .head,.good .number{color:#2e7d32}.warn .head,.warn .number{color:#8a5200}
.bad .head,.bad .number{color:#c62828}
.scroll{max-width:100%;overflow-x:auto;margin:.4em 0 1em}
table{border-collapse:collapse;font-size:.92em}
th,td{border-bottom:1px solid #e3e6ea;padding:4px 10px;text-align:left;vertical-align:top;
 overflow-wrap:break-word}
th{background:#f0f2f5;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
caption{caption-side:bottom;text-align:left;color:#555;font-size:.9em;padding-top:4px}
figure{margin:.6em 0 1.2em}
figure img{display:block;max-width:100%;height:auto}
figcaption{color:#444;font-size:.9em;margin-top:4px}
.gallery{display:flex;flex-wrap:wrap;gap:10px;margin:.4em 0 1em}
.tile{flex:0 1 auto;max-width:100%;border:1px solid #e3e6ea;border-radius:6px;padding:6px;background:#fafbfc}
.tile img{display:block;width:72px;height:auto;max-width:100%;image-rendering:pixelated}
.tile .label{font-size:.8em;color:#444;max-width:160px}
.tile.text{flex:1 1 280px;max-width:100%}
.tile.text .label{max-width:none}
.tile pre{white-space:pre-wrap;overflow-wrap:anywhere;margin:.3em 0 0;font-size:.85em;max-height:14em;overflow:auto}
.note{color:#555;font-size:.9em}
.prov td:first-child{white-space:nowrap;font-weight:600}
.prov td{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:.85em;overflow-wrap:anywhere}
"""


def png_bytes(source: Any, *, dpi: float = 110) -> bytes:
    """PNG bytes of a matplotlib Figure (drawn with ``dpi``) or of PNG bytes themselves."""
    if isinstance(source, bytes | bytearray):
        if bytes(source[:8]) != b"\x89PNG\r\n\x1a\n":
            raise InvalidInputError("png_bytes: bytes given are not a PNG")
        return bytes(source)
    if hasattr(source, "savefig"):
        buf = io.BytesIO()
        source.savefig(buf, format="png", dpi=dpi)
        return buf.getvalue()
    raise InvalidInputError(f"png_bytes: expected a matplotlib Figure or PNG bytes, got {type(source).__name__}")


def thumbnail_png(image: Any) -> bytes:
    """PNG bytes of an image array: (H, W) grey, (H, W, 3|4) colour or (C, H, W); uint8 or floats in [0, 1]."""
    if isinstance(image, bytes | bytearray):
        return png_bytes(image)
    from matplotlib.image import imsave

    a = np.asarray(image)
    if a.ndim == 3 and a.shape[0] in (1, 3, 4) and a.shape[-1] not in (1, 3, 4):
        a = np.moveaxis(a, 0, -1)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3):
        raise InvalidInputError(f"thumbnail_png: expected an image array, got shape {a.shape}")
    a = a.astype(np.float64)
    lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
    if a.ndim == 3 or hi > 1.0 or lo < 0.0:  # pixels in 0..255 (or other ranges): scale to [0, 1]
        a = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
    buf = io.BytesIO()
    imsave(buf, a, cmap="gray", vmin=0.0, vmax=1.0, format="png")
    return buf.getvalue()


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _cell(value: Any) -> tuple[str, bool]:
    if isinstance(value, bool | np.bool_):
        return str(bool(value)), False
    if isinstance(value, float | np.floating):
        return ("n/a" if not np.isfinite(value) else f"{float(value):.4g}"), True
    if isinstance(value, int | np.integer):
        return f"{int(value):,}", True
    return ("" if value is None else str(value)), False


def _table(t: Table, cls: str = "") -> str:
    e = html.escape
    head = "".join(f"<th>{e(str(c))}</th>" for c in t.columns)
    thead = f"<thead><tr>{head}</tr></thead>" if any(str(c) for c in t.columns) else ""
    body = []
    for row in t.rows:
        cells = []
        for v in row:
            text, num = _cell(v)
            cells.append(f"<td class='num'>{e(text)}</td>" if num else f"<td>{e(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    cap = f"<caption>{e(t.caption)}</caption>" if t.caption else ""
    klass = f" class='{cls}'" if cls else ""
    return (
        f"<div class='scroll'><table{klass}>{cap}{thead}"
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _image(im: Image) -> str:
    e = html.escape
    cap = f"<figcaption>{e(im.caption)}</figcaption>" if im.caption else ""
    return f"<figure><img src='{_data_uri(png_bytes(im.source))}' alt='{e(im.alt)}'>{cap}</figure>"


def _gallery(g: Gallery) -> str:
    e = html.escape
    tiles = []
    for t in g.tiles:
        if t.image is not None:
            tiles.append(
                f"<div class='tile'><img src='{_data_uri(thumbnail_png(t.image))}' alt='{e(t.label)}'>"
                f"<div class='label'>{e(t.label)}</div></div>"
            )
        else:
            tiles.append(
                f"<div class='tile text'><div class='label'>{e(t.label)}</div><pre>{e(t.text or '')}</pre></div>"
            )
    note = f"<p class='note'>{e(g.note)}</p>" if g.note else ""
    return f"<h3>{e(g.title)}</h3>{note}<div class='gallery'>{''.join(tiles)}</div>"


def _block(b: Block) -> str:
    if isinstance(b, str):
        return f"<p>{html.escape(b)}</p>"
    if isinstance(b, Table):
        return _table(b)
    if isinstance(b, Image):
        return _image(b)
    if isinstance(b, Gallery):
        return _gallery(b)
    raise InvalidInputError(f"render: a section block must be str, Table, Image or Gallery, got {type(b).__name__}")


def render(page: Page) -> str:
    """The page as one self-contained HTML document (inline CSS, embedded pictures, no script)."""
    e = html.escape
    v = page.verdict
    if v.tone not in TONES:
        raise InvalidInputError(f"render: verdict tone must be one of {TONES}, got {v.tone!r}")
    number = f"<span class='number'>{e(v.number)}</span>" if v.number else ""
    reasons = "".join(f"<li>{e(r)}</li>" for r in v.reasons)
    parts = [
        f"<section class='verdict {v.tone}'><div>{number}<span class='head'>{e(v.headline)}</span></div>"
        + (f"<ul>{reasons}</ul>" if reasons else "")
        + "</section>"
    ]
    for s in page.sections:
        parts.append(f"<section><h2>{e(s.title)}</h2>{''.join(_block(b) for b in s.blocks)}</section>")
    if page.provenance:
        rows = Table(["", ""], list(page.provenance.items()))
        parts.append(f"<section><h2>Provenance</h2>{_table(rows, 'prov')}</section>")
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{e(page.title)}</title><style>{CSS}</style></head><body><main>"
        f"<h1>{e(page.title)}</h1>{''.join(parts)}</main></body></html>\n"
    )


def write_report(page: Page, folder: str | os.PathLike) -> Path:
    """Write ``folder/report.html`` atomically (readable as the umask allows); returns its path."""
    from selfprune.io.atomic import write_text_atomic

    path = Path(folder) / REPORT_NAME
    write_text_atomic(path, render(page))
    return path
