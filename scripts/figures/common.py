"""What the figure scripts share: where the pictures and the benchmark JSON live, the footer that says how a picture
was made (``benchmarks.common.machine``, the one format of every benchmark JSON), and saving small palette PNGs."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.common import machine
from vqgen.images import FONT_SIZE, label_grid

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ROOT / "docs" / "images"  # where the README and docs find their pictures
DATA = ROOT / "docs" / "data"  # the benchmark JSON the charts are drawn from (``make bench-data`` writes it)
MAX_BYTES = 200_000


def stamp(command: str) -> str:
    """A picture's footer: ``command | machine | date``."""
    today = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"{command} | {machine()} | {today}"


def with_footer(canvas: np.ndarray, text: str) -> np.ndarray:
    """``canvas`` above a strip that says how it was made (the title of an otherwise empty one-row grid)."""
    channels = canvas.shape[2:] if canvas.ndim == 3 else ()
    strip = label_grid(np.full((1, canvas.shape[1], *channels), 255, np.uint8), tile_shape=(1, 1), padding=0,
                       title=text)  # fmt: skip
    strip = strip[: FONT_SIZE + 8]
    width = max(canvas.shape[1], strip.shape[1])
    parts = [np.pad(p, [(0, 0), (0, width - p.shape[1])] + [(0, 0)] * len(channels), constant_values=255)
             for p in (canvas, strip)]  # fmt: skip
    return np.concatenate(parts)


def stack(parts: list[np.ndarray], gap: int = 16) -> np.ndarray:
    """Arrays one above the other, left-aligned, padded white; grey arrays are made RGB when any is colour."""
    if any(p.ndim == 3 for p in parts):
        parts = [np.repeat(p[..., None], 3, axis=2) if p.ndim == 2 else p for p in parts]
    width = max(p.shape[1] for p in parts)
    out = []
    for p in parts:
        pad = [(0, gap), (0, width - p.shape[1])] + [(0, 0)] * (p.ndim - 2)
        out.append(np.pad(p, pad, constant_values=255))
    return np.concatenate(out)[: -gap or None]  # no gap after the last


def save_small_png(path: Path, canvas: np.ndarray) -> Path:
    """Save with an adaptive palette (grey stays 8-bit grey); checks the size limit."""
    image = Image.fromarray(canvas)
    if image.mode == "RGB":
        image = image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG", optimize=True)
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise RuntimeError(f"{path} is {size} bytes, over the {MAX_BYTES}-byte limit for committed figures")
    print(f"wrote {path} ({size / 1000:.0f} KB, {canvas.shape[1]}x{canvas.shape[0]})")
    return path


def load_record(name: str) -> dict | None:
    """``docs/data/<name>.json``, or ``None`` (reported) when there is none."""
    path = DATA / f"{name}.json"
    if not path.exists():
        print(f"no {path}: skipping its chart", file=sys.stderr)
        return None
    return json.loads(path.read_text())


def footer(fig, record: dict) -> None:
    """The chart's footer: the command, machine and date of the run its data come from."""
    text = f"data: {record['command']} | {record['machine']} | {record['date']}"
    if record.get("source"):
        text += f"\n{record['source']}"
    fig.text(0.01, 0.01, text, fontsize=7, color="0.3", ha="left", va="bottom", wrap=True)


def finish_chart(fig, record: dict, name: str, bottom: float, out: Path) -> None:
    """Lay ``fig`` out above a footer strip of height ``bottom`` (a fraction) naming ``record``'s source; save it as
    ``out/<name>.png``."""
    import matplotlib.pyplot as plt

    fig.tight_layout(rect=(0, bottom, 1, 1))
    footer(fig, record)
    fig.canvas.draw()
    canvas = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    save_small_png(out / f"{name}.png", canvas)
