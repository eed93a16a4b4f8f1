"""Streaming an image folder vs loading it into memory: images/s and peak memory at two folder sizes.

Run with::

    pytest benchmarks/speed/test_streaming.py --benchmark-only -s

Folders of 2,000 and 20,000 random 28x28 greyscale PNGs in 10 class sub-folders are generated once and kept in
``$VQGEN_BENCH_OUT/streaming/images-N`` (default ``<tmp>/vqgen-bench/streaming/``; delete it to regenerate them), not
in the repository nor in pytest's cache. For each folder size and each way of reading, a fresh Python process:

- ``stream``: ``ImageFolderDataset(folder)`` (which reads every header once), then one shuffled epoch through a
  ``DataLoader`` with 2 workers that decode the PNGs;
- ``memory``: ``load_image_folder(folder)`` (every image decoded into one tensor), then one shuffled epoch through
  a ``DataLoader`` over the in-memory ``ImageDataset`` in the main process (the usual way for in-memory data).

Both use batches of 256 and a trivial step (the batch's mean as float). Reported: seconds to build the dataset,
images/s over the epoch, and peak resident memory (``VmHWM``) of the main process and of the largest worker
(``getrusage(RUSAGE_CHILDREN)`` after the workers exit). The streamed peaks must not grow with the number of
images: within ``RSS_TOLERANCE_MB`` from 2,000 to 20,000 images, for the main process (its peak over its RSS
after the imports, which removes ±30 MB of import-time noise between processes) and for the largest worker. The
child processes run with a fixed glibc mmap threshold (see ``_run``). Absolute rates depend on the machine and
its load.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.common import ROOT, bench_dir

SIZES = (2_000, 20_000)
SIDE, CLASSES, BATCH, WORKERS = 28, 10, 256, 2
RSS_TOLERANCE_MB = 16  # in-memory growth for these sizes is ~4x this; streaming keeps only two small arrays per image

_CHILD = r"""
import json, resource, sys, time
import torch
from torch.utils.data import DataLoader
from vqgen.data import ImageFolderDataset, load_image_folder

def status_mb(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux: the peak for both keys

baseline = status_mb("VmRSS")  # after the imports

folder, source, batch, workers = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(1)
torch.manual_seed(0)
start = time.perf_counter()
data = ImageFolderDataset(folder) if source == "stream" else load_image_folder(folder)
built = time.perf_counter() - start
loader = DataLoader(data, batch_size=batch, shuffle=True, num_workers=workers if source == "stream" else 0)
start, seen, total = time.perf_counter(), 0, 0.0
for images, labels in loader:
    total += float(images.float().mean())  # the trivial step
    seen += len(images)
seconds = time.perf_counter() - start
del loader
children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(json.dumps({"images": seen, "build_s": built, "epoch_s": seconds, "images_per_s": seen / seconds,
                  "peak_rss_mb": status_mb("VmHWM"), "baseline_rss_mb": baseline,
                  "worker_peak_rss_mb": children}))
"""


def _folder(n: int) -> Path:
    """A folder of ``n`` random 28x28 grey PNGs in 10 classes, generated once into ``bench_dir("streaming")``."""
    folder = bench_dir("streaming", f"images-{n}")
    done = folder / ".complete"  # hidden: not part of the dataset
    if not done.exists():
        rng = np.random.default_rng(n)
        for c in range(CLASSES):
            (folder / f"class{c}").mkdir(exist_ok=True)
        for i in range(n):
            pixels = rng.integers(0, 256, (SIDE, SIDE), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"class{i % CLASSES}" / f"{i:06d}.png")
        done.write_text(str(n))
    return folder


def _run(folder: Path, source: str) -> dict:
    env = {
        **os.environ,
        # glibc's sliding mmap threshold otherwise adds 0 or ~45 MB to the main process at random (measured with a
        # DataLoader over a dataset that reads no file at all); fixing it makes peaks comparable between runs
        "MALLOC_MMAP_THRESHOLD_": "131072",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(folder), source, str(BATCH), str(WORKERS)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=900,
    )
    if out.returncode != 0:
        raise RuntimeError(f"the {source} run over {folder} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_streaming_vs_in_memory(benchmark, summary_line):
    folders = {n: _folder(n) for n in SIZES}
    results: dict[tuple[str, int], dict] = {}

    def measure() -> None:
        for n, folder in folders.items():
            for source in ("stream", "memory"):
                results[source, n] = _run(folder, source)

    benchmark.pedantic(measure, rounds=1, iterations=1)
    lines = []
    for (source, n), r in sorted(results.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        assert r["images"] == n
        benchmark.extra_info[f"{source}_{n}"] = r
        lines.append(
            f"{source:6s} {n:6d} images: build {r['build_s']:.2f} s, {r['images_per_s']:.0f} images/s, peak RSS "
            f"main {r['peak_rss_mb']:.0f} MB ({r['peak_rss_mb'] - r['baseline_rss_mb']:+.1f} MB over the imports), "
            f"largest worker {r['worker_peak_rss_mb']:.0f} MB"
        )
    small, large = SIZES
    above = {key: r["peak_rss_mb"] - r["baseline_rss_mb"] for key, r in results.items()}  # import noise removed
    growth = {
        source: (
            above[source, large] - above[source, small],
            results[source, large]["worker_peak_rss_mb"] - results[source, small]["worker_peak_rss_mb"],
        )
        for source in ("stream", "memory")
    }
    ratio = {n: results["stream", n]["images_per_s"] / results["memory", n]["images_per_s"] for n in SIZES}
    lines.append(
        f"peak RSS growth {small} -> {large} images (main: over the imports): "
        f"stream main {growth['stream'][0]:+.1f} MB, "
        f"workers {growth['stream'][1]:+.1f} MB; memory main {growth['memory'][0]:+.1f} MB"
    )
    lines.append("streamed / in-memory images/s: " + ", ".join(f"{n}: {r:.2f}" for n, r in ratio.items()))
    for line in lines:
        summary_line("streaming: " + line)
    print("\n" + "\n".join(lines))
    assert growth["stream"][0] < RSS_TOLERANCE_MB and growth["stream"][1] < RSS_TOLERANCE_MB
