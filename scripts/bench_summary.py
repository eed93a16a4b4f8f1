"""The summary table of ``docs/benchmarks.md``, generated from the benchmark JSON in ``docs/data/``.

Every figure of the summary comes from a JSON that a benchmark wrote (``make bench-data``; which command writes which
JSON: ``python scripts/bench_data.py --list``), with that JSON's date, threads and load; none is typed by hand.
``ROWS`` below is the one list of rows: a label, the section of ``docs/benchmarks/method.md`` it links to, the JSON
it reads, a function from the loaded JSON to the figures, the format of the figures, the goal (a text, and a test of
the figures that says whether it was met) and what the figures measure (data, model, budget, FID scale).

Run from anywhere::

    python scripts/bench_summary.py            # print the table
    python scripts/bench_summary.py --write    # rewrite it in docs/benchmarks.md, between the summary markers
    python scripts/bench_summary.py --check    # exit 1 if the page's table is not the one the JSON give
    python scripts/bench_summary.py --restamp NAME... --reason "why its figures still hold" [--at COMMIT]

``make bench-data`` runs ``--write`` after the benchmarks; ``tests/test_bench_summary.py`` runs the check. A JSON that
a row names and ``docs/data`` lacks stops all three, naming it; so does one **older than the code it describes**: each
JSON records a digest of every module of ``vqgen`` it was measured with (``benchmarks.common.code_record``, docstrings
and comments left out), ``MEASURES`` names the modules each JSON's figures depend on (with all they import from
``vqgen``), and a module changed since stops the summary until the benchmark is rerun (``make bench-data ONLY=NAME``)
or, where the change cannot move the figures (a refactor shown by a same-seed test), ``--restamp`` records today's
digests with the reason in the JSON (``--at COMMIT``: the digests of that commit, for a run made on an older
checkout).
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import functools
import json
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from benchmarks.common import code_digest, code_digests  # noqa: E402

DATA = ROOT / "docs" / "data"
PAGE = ROOT / "docs" / "benchmarks.md"
METHOD = "benchmarks/method.md"  # the method page, relative to PAGE
START = "<!-- summary:start (scripts/bench_summary.py writes this table from docs/data/*.json: edit ROWS there) -->"
END = "<!-- summary:end -->"
HEADER = ("what", "measured", "goal", "scale and setting", "date", "JSON")


class MissingJSON(FileNotFoundError):
    """A JSON that a row of ``ROWS`` reads is not in ``docs/data``."""


class StaleJSON(ValueError):
    """A JSON that a row of ``ROWS`` reads was measured with other code than the modules the row names today."""


@dataclass(frozen=True)
class Row:
    """One row of the summary: ``figures(*records)`` (the JSON of ``sources``, loaded, in that order) gives the numbers
    that ``text.format`` shows; ``met(figures)`` says whether the ``goal`` was met."""

    what: str
    anchor: str
    sources: tuple[str, ...]
    figures: Callable[..., tuple[float, ...]]
    text: str
    scale: str
    goal: str = ""
    met: Callable[[tuple[float, ...]], bool] | None = None


def load(name: str, data: Path | None = None) -> dict:
    """``docs/data/<name>.json`` (or ``<data>/<name>.json``), loaded."""
    path = (data or DATA) / f"{name}.json"
    if not path.is_file():
        raise MissingJSON(
            f"docs/data/{name}.json is missing: the benchmarks summary cites it (run `make bench-data ONLY={name}`, "
            "or take its row out of ROWS in scripts/bench_summary.py)"
        )
    return json.loads(path.read_text())


# ---- small readers of the JSON shapes --------------------------------------------------------------------------------


def _case(record: dict, case: str) -> dict:
    """One case of sampling-speed.json's result list."""
    return next(result for result in record["results"] if result["case"] == case)


def _speedup(record: dict, case: str) -> float:
    """Naive over cached sampling time of one case of sampling-speed.json."""
    result = _case(record, case)
    return result["naive_s"] / result["cached_s"]


def _codes(record: dict, codes: int) -> dict:
    """One codebook size of quantizer-speed.json."""
    return next(result for result in record["results"] if result["codes"] == codes)


def _prior(record: dict, prior: str) -> dict:
    """One prior of prior-quality.json."""
    return next(result for result in record["results"] if result["prior"] == prior)


def _at(record: dict, seconds: float) -> dict:
    """The point of a curve whose training time is nearest ``seconds``."""
    return min(record["results"]["curve"], key=lambda point: abs(point["train_seconds"] - seconds))


def _last(record: dict) -> dict:
    """The last point of a curve."""
    return record["results"]["curve"][-1]


def _budget(record: dict) -> tuple[float, ...]:
    """A README-configuration run: sample FID (temperature 0.8), reconstruction FID, floor, recognised %, independent
    codes' FID, held-out bits/code of the prior and of independent codes."""
    results = record["results"]
    fid = results["fid"]
    return (fid["prior_readme_temperature"], fid["reconstructions"], fid["floor"],
            100 * results["recognised_readme_temperature"], fid["independent"], results["bits_per_code"]["prior"],
            results["bits_per_code"]["independent"])  # fmt: skip


def _over_floor(record: dict) -> tuple[float, ...]:
    """Sample and reconstruction FID over the floor, the floor, recognised %."""
    sample, reconstruction, floor, recognised, *_ = _budget(record)
    return sample / floor, reconstruction / floor, floor, recognised


def _two_stage(record: dict, dataset: str) -> tuple[float, ...]:
    """FID of the gated prior's samples and of independent codes, two-stage-quality.json."""
    results = record["results"][dataset]
    return results["gated_pixelcnn"]["fid"], results["independent"]["fid"]


def _sampling_flops(record: dict, name: str) -> float:
    sampling = record["sampling"][name]
    return sampling["cached-flops"] / sampling["forward-flops"]


GRIDS = ("gated-codes-7x7", "gated-codes-16x16", "gated-pixels-28x28")
FID_BUDGET = "FID budget scale"
TWO_STAGE = "7×7 codes, K = 64, 2,000 steps or 180 s; FID two-stage scale"
PIXEL_PRIORS = ("pixelcnn", "gated_pixelcnn", "rnn")

ROWS: list[Row] = [
    # ---- speed: ratios of timings taken in one process
    Row("Cached vs naive sampling, gated PixelCNN, 28×28 pixels", "sampling-speed", ("sampling-speed",),
        lambda r: (_speedup(r, "gated-pixels-28x28"),), "**{:.0f}×** faster",
        "K = 256, 15 layers × 64, batch 16", "≥ 20×", lambda f: f[0] >= 20),
    Row("Cached sampling ÷ one forward pass, gated PixelCNN, 7×7 / 16×16 codes", "sampling-speed", ("sampling-speed",),
        lambda r: tuple(_case(r, c)["cached_s"] / _case(r, c)["forward_s"] for c in GRIDS[:2]), "**{:.1f} / {:.1f}**",
        "K = 512, 15 layers × 64, batch 64", "≤ 10 / ≤ 15", lambda f: f[0] <= 10 and f[1] <= 15),
    Row("Cached vs naive sampling, raster RNN 28×28 / PixelCNN 32×32×3 pixels", "sampling-speed", ("sampling-speed",),
        lambda r: (_speedup(r, "rnn-pixels-28x28"), _speedup(r, "pixelcnn-colour-32x32")), "{:.0f}× / {:.0f}× faster",
        "K = 256, batch 16 / 4"),
    Row("Cached vs naive sampling, transformer prior, 16×16 / 7×7 codes", "transformer", ("transformer-speed",),
        lambda r: tuple(r["results"][g]["naive"] / r["results"][g]["cached"] for g in ("codes-16x16", "codes-7x7")),
        "**{:.0f}× / {:.0f}×** faster", "K = 512, 2 layers × 128, 64 grids", "≥ 50× (16×16)", lambda f: f[0] >= 50),
    Row("Cached sampling ÷ one forward pass, transformer prior, 16×16 / 7×7 codes", "transformer",
        ("transformer-speed",),
        lambda r: tuple(r["results"][g]["cached"] / r["results"][g]["forward"] for g in ("codes-16x16", "codes-7x7")),
        "**{:.2f} / {:.2f}**", "K = 512, 2 layers × 128, 64 grids", "≤ 3 (16×16)", lambda f: f[0] <= 3),
    Row("Cached vs naive sampling, PixelCNN++, 32×32×3 pixels, B = 16 / 4", "pixelcnn-pp-sampling",
        ("pixelcnn_pp-sampling-speed",),
        lambda r: tuple(c["naive"] / c["cached"] for b in ("b16", "b4") for c in r["results"]
                        if c["case"] == f"cpu-32x32x3-{b}"),
        "**{:.0f}× / {:.0f}×** faster", "`CPU_CONFIG`, 256-value mixture", "> 183×", lambda f: min(f) > 183),
    Row("Cached sampling ÷ one forward pass, PixelCNN++, 32×32×3 pixels, B = 16 / 4", "pixelcnn-pp-sampling",
        ("pixelcnn_pp-sampling-speed",),
        lambda r: tuple(c["cached"] / c["forward"] for b in ("b16", "b4") for c in r["results"]
                        if c["case"] == f"cpu-32x32x3-{b}"),
        "**{:.1f} / {:.1f}**", "`CPU_CONFIG`, 256-value mixture", "≤ 3", lambda f: max(f) <= 3),
    Row("Gated prior at the machine's limit: cached sampling ÷ one forward pass, 7×7 / 16×16 / 28×28", "flops",
        ("prior_flops",), lambda r: tuple(r["sampling"][g]["cached-over-forward"] for g in GRIDS),
        "**{:.2f} / {:.2f} / {:.2f}**", "15 layers × 64, batch 64 / 64 / 16", "≤ 1.5 / 1.5 / 3",
        lambda f: f[0] <= 1.5 and f[1] <= 1.5 and f[2] <= 3),
    Row("FLOPs of cached sampling ÷ FLOPs of one forward pass, the same grids", "flops", ("prior_flops",),
        lambda r: tuple(_sampling_flops(r, g) for g in GRIDS), "{:.2f} / {:.2f} / {:.2f}",
        "counted by `FlopCounterMode`"),
    Row("Gated prior training step, % of the sgemm rate, 2 threads / 1 thread", "flops",
        ("prior_flops", "prior_flops_1t"),
        lambda *rs: tuple(100 * r["utilisation"]["gated_pixelcnn"]["step-utilisation"] for r in rs),
        "**{:.0f} %** / {:.0f} %", "15 layers × 64, 7×7 codes, batch 128", "≥ 75 %",
        lambda f: min(f) >= 75),
    Row("Quantizer training step vs vector-quantize-pytorch, K = 512 / 4096", "quantizer-speed", ("quantizer-speed",),
        lambda r: tuple(_codes(r, k)["vqp_ms"] / _codes(r, k)["ema_ms"] for k in (512, 4096)),
        "**{:.1f}× / {:.1f}×** faster", "`ema`, 16,384 vectors of D = 64", "≥ 5×", lambda f: min(f) >= 5),
    Row("Quantizer training step vs a plain addmm + argmin, K = 512 / 4096", "quantizer-speed", ("quantizer-speed",),
        lambda r: tuple(_codes(r, k)["plain_ms"] / _codes(r, k)["vq_ms"] for k in (512, 4096)),
        "**{:.2f}× / {:.2f}×** faster", "`vq`, 16,384 vectors of D = 64", "≥ 1.3×", lambda f: min(f) >= 1.3),
    # ---- quality
    Row("Pixel priors on MNIST: test bits/dim, PixelCNN / gated PixelCNN / raster RNN", "pixel-priors",
        ("prior-quality",), lambda r: tuple(_prior(r, p)["bits_per_dim"] for p in PIXEL_PRIORS),
        "**{:.3f}** / {:.3f} / {:.3f}", "256-way pixels, 80 Adam steps each", "convolutional < RNN",
        lambda f: max(f[:2]) < f[2]),
    Row("Two-stage FID, gated PixelCNN prior vs independent codes, MNIST", "two-stage-quality", ("two-stage-quality",),
        lambda r: _two_stage(r, "mnist"), "**{:.2f}** vs {:.2f}", TWO_STAGE, "≤ half", lambda f: f[0] <= f[1] / 2),
    Row("Two-stage FID, gated PixelCNN prior vs independent codes, Fashion-MNIST", "two-stage-quality",
        ("two-stage-quality",), lambda r: _two_stage(r, "fashion-mnist"), "**{:.2f}** vs {:.2f}",
        TWO_STAGE, "≤ half", lambda f: f[0] <= f[1] / 2),
    Row("README model, MNIST: sample FID ÷ the real-image floor", "quality-budget",
        ("quality_budget_mnist",), lambda r: (*_budget(r)[:1], _over_floor(r)[0], _budget(r)[2]),
        "{:.3f} = **{:.1f}×** the floor ({:.3f})", f"5 + 15 min, temperature 0.8; {FID_BUDGET}", "≤ 3×",
        lambda f: f[1] <= 3),
    Row("The README's snippet as written, MNIST: sample / reconstruction FID ÷ the floor; recognised",
        "quality-budget", ("readme_snippet",),
        lambda r: (r["results"]["fid"]["prior_readme_temperature"] / r["results"]["fid"]["floor"],
                   r["results"]["fid"]["reconstructions"] / r["results"]["fid"]["floor"],
                   100 * r["results"]["recognised_readme_temperature"]),
        "**{:.1f}×** / {:.1f}× the floor; {:.1f} %", f"5 + 15 min on 2 threads, temperature 0.8; {FID_BUDGET}",
        "≤ 3× / ≤ 2×; ≥ 90 %", lambda f: f[0] <= 3 and f[1] <= 2 and f[2] >= 90),
    Row("README model, MNIST: reconstruction FID ÷ the floor", "quality-budget",
        ("quality_budget_mnist",), lambda r: (_budget(r)[1], _over_floor(r)[1]), "{:.3f} = **{:.1f}×** the floor",
        f"5 min of stage 1; {FID_BUDGET}", "≤ 2×", lambda f: f[1] <= 2),
    Row("README model, MNIST: samples recognised as their class", "quality-budget",
        ("quality_budget_mnist",), lambda r: (_budget(r)[3],), "**{:.1f} %**",
        "temperature 0.8, by the FID classifier", "≥ 90 %", lambda f: f[0] >= 90),
    Row("README model, MNIST: prior vs independent codes", "quality-budget", ("quality_budget_mnist",),
        lambda r: (_budget(r)[0], _budget(r)[4], _budget(r)[4] / _budget(r)[0], *_budget(r)[5:]),
        "FID {:.3f} vs {:.2f} (**{:.0f}×**); bits/code {:.2f} vs {:.2f}",
        f"held-out bits/code; {FID_BUDGET}", "≥ 10×", lambda f: f[2] >= 10),
    Row("README model, Fashion-MNIST: samples / reconstructions ÷ the floor; recognised",
        "quality-budget", ("quality_budget_fashion-mnist",), _over_floor,
        "{:.1f}× / {:.1f}× the floor ({:.3f}); {:.1f} %", f"5 + 15 min, temperature 0.8; {FID_BUDGET}",
        "≤ 3× / ≤ 2×; ≥ 90 %", lambda f: f[0] <= 3 and f[1] <= 2 and f[3] >= 90),
    Row("Fashion-MNIST, 14×14 codes, 3 + 37 min: samples / reconstructions ÷ the floor", "quality-budget",
        ("quality_budget_fashion-mnist_grid14_40min",), lambda r: _over_floor(r)[:2],
        "{:.1f}× / {:.1f}× the floor", f"temperature 0.8; {FID_BUDGET}", "≤ 3× / ≤ 2×",
        lambda f: f[0] <= 3 and f[1] <= 2),
    Row("An hour of prior training, MNIST: the default gated prior vs the README's small one", "quality-budget",
        ("quality_curve_mnist_gated_default_60min", "quality_curve_mnist_gated_readme_60min"),
        lambda *rs: (*(_last(r)["fid"] for r in rs), *(_last(r)["bits_per_code"] for r in rs)),
        "FID **{:.2f}** vs {:.2f}; bits/code {:.3f} vs {:.3f}", f"60 min on 1 core each, temperature 1; {FID_BUDGET}"),
    Row("Weight average (0.999) of the README's prior vs none, 10 min of prior, MNIST", "quality-budget",
        ("quality_curve_mnist_gated_readme_average_10min", "quality_curve_mnist_gated_readme_60min"),
        lambda *rs: (*(_at(r, 600)["fid"] for r in rs), *(_at(r, 600)["bits_per_code"] for r in rs)),
        "FID **{:.2f}** vs {:.2f}; bits/code {:.3f} vs {:.3f}", f"1 core each, temperature 1; {FID_BUDGET}"),
    Row("Transformer vs the README's gated prior, Fashion-MNIST 14×14 codes, 5 / 20 min: bits/code", "transformer",
        tuple(f"quality_curve_fashion-mnist_{p}_grid14_20min" for p in ("transformer", "gated_readme")),
        lambda t, g: (_at(t, 300)["bits_per_code"], _at(g, 300)["bits_per_code"], _last(t)["bits_per_code"],
                      _last(g)["bits_per_code"]),
        "**{:.3f}** vs {:.3f} / **{:.3f}** vs {:.3f}", "side by side, 1 core each, one stage-1 model",
        "transformer lower", lambda f: f[0] < f[1] and f[2] < f[3]),
    Row("Transformer vs the README's gated prior, Fashion-MNIST 14×14 codes, 20 min: sample FID ÷ the floor",
        "transformer", ("quality_fashion-mnist_grid14_20min_temperatures",),
        lambda r: tuple(r["results"][p]["0.8"]["fid"] / r["floor"] for p in ("transformer", "gated_readme")),
        "**{:.0f}×** vs {:.0f}× the floor", f"temperature 0.8; {FID_BUDGET}", "< 11.6× (gated, 40 min)",
        lambda f: f[0] < 11.6),
    Row("Colour two-stage model, CIFAR-10 subset: held-out bits/code, prior vs independent", "colour",
        ("quality_colour_two-stage",),
        lambda r: (r["results"]["bits_per_code"]["prior"], r["results"]["bits_per_code"]["independent"],
                   r["results"]["stage1"]["reconstruction_mse"]),
        "**{:.2f}** vs {:.2f}; reconstruction MSE {:.4f}", "32×32×3 → 8×8 codes, K = 128, 3 + 2.5 min",
        "prior < independent", lambda f: f[0] < f[1]),
    Row("PixelCNN++ on colour pixels, CIFAR-10 subset, 10 min: held-out bits/dim, mixture vs softmax head", "colour",
        tuple(f"quality_pixels_cifar10-subset_{p}_10min" for p in ("pixelcnn_pp", "pixelcnn_pp_softmax")),
        lambda *rs: tuple(_last(r)["bits_per_dim"] for r in rs), "**{:.3f}** vs {:.3f}",
        "`CPU_CONFIG`, side by side, 1 core each", "< 5.347 (PixelCNN, 30 min)", lambda f: f[0] < 5.347),
    Row("Pixel priors, CIFAR-10 subset, 30 min: held-out bits/dim, PixelCNN++ / gated PixelCNN / PixelCNN",
        "pixelcnn-pp-quality",
        tuple(f"quality_pixels_cifar10-subset_{p}_30min" for p in ("pixelcnn_pp", "gated_pixelcnn", "pixelcnn")),
        lambda *rs: tuple(_last(r)["bits_per_dim"] for r in rs), "**{:.3f}** / {:.3f} / {:.3f}",
        "CPU sizes, side by side, 1 core each", "< 5.347 (PixelCNN, 30 min, 2026-12-01)", lambda f: f[0] < 5.347),
    Row("Pixel priors, MNIST 28×28, 30 min: held-out bits/dim, PixelCNN++ / gated PixelCNN / PixelCNN",
        "pixelcnn-pp-quality",
        tuple(f"quality_pixels_mnist_{p}_30min" for p in ("pixelcnn_pp", "gated_pixelcnn", "pixelcnn")),
        lambda *rs: tuple(_last(r)["bits_per_dim"] for r in rs), "{:.3f} / {:.3f} / {:.3f}",
        "CPU sizes, side by side, 1 core each"),
    Row("Code priors, Fashion-MNIST 14×14 codes, 20 min: bits/code; FID ÷ the floor (T = 1), PixelCNN++ / transformer "
        "/ gated", "pixelcnn-pp-quality",
        (*(f"quality_curve_fashion-mnist_{p}_grid14_20min" for p in ("pixelcnn_pp", "transformer", "gated_readme")),
         "quality_fashion-mnist_grid14_20min_temperatures"),
        lambda *rs: (*(_last(r)["bits_per_code"] for r in rs[:3]), *(_last(r)["fid"] / rs[3]["floor"] for r in rs[:3])),
        "{:.3f} / **{:.3f}** / {:.3f}; **{:.0f}×** / {:.0f}× / {:.0f}×",
        f"one stage-1 model, 1 core each; {FID_BUDGET}"),
    Row("Colour pixel PixelCNN, CIFAR-10 subset: held-out bits/dim, sequential vs parallel channels", "colour",
        ("quality_colour_pixel_sequential_30min", "quality_colour_pixel_parallel_30min"),
        lambda *rs: tuple(_last(r)["bits_per_dim"] for r in rs), "**{:.3f}** vs {:.3f}",
        "K = 256, 30 min each"),
]  # fmt: skip


# ---- what each JSON measured -----------------------------------------------------------------------------------------

SAMPLERS = ("vqgen.sampling", "vqgen.priors.sampling")
TRAINING = ("vqgen.two_stage", "vqgen.presets", "vqgen.training.engine", "vqgen.training.stage1",
            "vqgen.training.prior", "vqgen.evaluation", "vqgen.training.classifier", "vqgen.priors.gated_pixelcnn",
            "vqgen.autoencoders.conv", "vqgen.quantizers.ema")  # fmt: skip
PRIOR_TRAINING = ("vqgen.training.engine", "vqgen.training.prior", "vqgen.metrics.likelihood")
MEASURES: dict[str, tuple[str, ...]] = {  # JSON names (shell-style, the first match counts) -> the modules it measured
    "sampling-speed": ("vqgen.priors.gated_pixelcnn", "vqgen.priors.pixelcnn", "vqgen.priors.rnn", *SAMPLERS),
    "quantizer-speed": ("vqgen.quantizers.vq", "vqgen.quantizers.ema"),
    "prior_flops*": ("vqgen.priors.gated_pixelcnn", *SAMPLERS, *PRIOR_TRAINING),
    "pixelcnn_pp-sampling-speed": ("vqgen.priors.pixelcnn_pp", *SAMPLERS),
    "transformer-speed": ("vqgen.priors.transformer", *SAMPLERS),
    "prior-quality": ("vqgen.priors.pixelcnn", "vqgen.priors.gated_pixelcnn", "vqgen.priors.rnn", *PRIOR_TRAINING),
    "quality_pixels_*_pixelcnn_pp*": ("vqgen.priors.pixelcnn_pp", *PRIOR_TRAINING, *SAMPLERS),
    "quality_pixels_*_gated_pixelcnn_*": ("vqgen.priors.gated_pixelcnn", *PRIOR_TRAINING, *SAMPLERS),
    "quality_pixels_*_pixelcnn_*": ("vqgen.priors.pixelcnn", *PRIOR_TRAINING, *SAMPLERS),
    "quality_colour_*": ("vqgen.priors.pixelcnn", *TRAINING, *SAMPLERS),
    "*transformer*": ("vqgen.priors.transformer", *TRAINING, *SAMPLERS),
    "*temperatures*": ("vqgen.priors.transformer", *TRAINING, *SAMPLERS),
    "*pixelcnn_pp*": ("vqgen.priors.pixelcnn_pp", *TRAINING, *SAMPLERS),
    "*": (*TRAINING, *SAMPLERS),  # the two-stage quality runs of the gated prior
}  # fmt: skip


def _module_path(module: str) -> str | None:
    """``vqgen.priors.rnn`` -> ``vqgen/priors/rnn.py`` (a package: its ``__init__.py``), None if no such file."""
    for path in (ROOT / f"{module.replace('.', '/')}.py", ROOT / module.replace(".", "/") / "__init__.py"):
        if path.is_file():
            return path.relative_to(ROOT).as_posix()
    return None


def _imports(path: str) -> dict[str, str]:
    """``{name: module}`` of the file's ``from ... import name`` statements (relative ones made absolute), and
    ``{module: module}`` of its ``import module``."""
    package = path.removesuffix(".py").replace("/", ".").removesuffix(".__init__")
    if not path.endswith("__init__.py"):
        package = package.rpartition(".")[0]
    found = {}
    for node in ast.walk(ast.parse((ROOT / path).read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            found.update({alias.name: module for alias in node.names})
        elif isinstance(node, ast.Import):
            found.update({alias.name: alias.name for alias in node.names})
    return found


def _defining(module: str, name: str) -> str | None:
    """The file that defines ``module.name``: a submodule of that name, or the module itself, or, for a package, the
    submodule its ``__init__`` imports the name from (package ``__init__`` files only re-export)."""
    if not module.startswith("vqgen"):
        return None
    path = _module_path(f"{module}.{name}") or _module_path(module)
    if path and path.endswith("__init__.py"):
        source = _imports(path).get(name)
        return _defining(*source.rsplit(".", 1)) if source and source != module else None
    return path


@functools.cache
def _dependencies(path: str) -> frozenset[str]:
    """The files of ``vqgen`` whose code the file imports, parsed once per process (not ``_builtin.py``: the registry
    imports it to register every built-in component, which a figure of one component does not depend on)."""
    found = {_defining(module, name) for name, module in _imports(path).items()}
    return frozenset(dependency for dependency in found if dependency and dependency != "vqgen/_builtin.py")


def measured_files(name: str) -> list[str]:
    """The files of ``vqgen`` behind the JSON ``name``: its ``MEASURES`` modules and all they import, transitively."""
    modules = next(modules for pattern, modules in MEASURES.items() if fnmatch.fnmatchcase(name, pattern))
    todo, files = [path for path in map(_module_path, modules) if path], set()
    while todo:
        path = todo.pop()
        if path not in files:
            files.add(path)
            todo.extend(_dependencies(path) - files)
    return sorted(files)


def staleness(name: str, record: dict, digests: dict[str, str] | None = None) -> str | None:
    """Why ``record`` (the JSON ``name``) is older than the code it describes, or None if it is not."""
    recorded = record.get("vqgen_code", {}).get("digests")
    if recorded is None:
        return f"docs/data/{name}.json records no code digests (written before the JSON recorded the code they measure)"
    digests = code_digests(ROOT) if digests is None else digests
    changed = [path for path in measured_files(name) if recorded.get(path) != digests.get(path)]
    if changed:
        more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
        return f"docs/data/{name}.json is older than {', '.join(changed[:3])}{more}"
    return None


def stale(rows: Sequence[Row] | None = None, data: Path | None = None) -> list[str]:
    """One line per JSON the rows cite that is older than the code it describes, with what to run."""
    names = dict.fromkeys(name for row in (ROWS if rows is None else rows) for name in row.sources)
    digests = code_digests(ROOT)
    found = [(name, staleness(name, load(name, data), digests)) for name in names]
    return [
        f"{why}: rerun it (make bench-data ONLY={name}) or, if the change cannot move its figures, "
        f"python scripts/bench_summary.py --restamp {name} --reason '...'"
        for name, why in found
        if why
    ]


def _digests_at(commit: str) -> dict[str, str]:
    """``code_digests`` of the package as it was at ``commit``."""
    git, quiet = ["git", "-C", str(ROOT)], {"check": True, "capture_output": True, "text": True}
    paths = subprocess.run([*git, "ls-tree", "-r", "--name-only", commit, "vqgen"], **quiet).stdout.split()
    return {
        path: code_digest(subprocess.run([*git, "show", f"{commit}:{path}"], **quiet).stdout)
        for path in paths
        if path.endswith(".py")
    }


def restamp(name: str, reason: str, commit: str | None = None, data: Path | None = None) -> Path:
    """Record in the JSON ``name`` the code digests of today (or of ``commit``) with the reason its figures hold."""
    path = (data or DATA) / f"{name}.json"
    record = load(name, data)
    digests = code_digests(ROOT) if commit is None else _digests_at(commit)
    code = record.setdefault("vqgen_code", {})
    code["digests"] = digests
    code.setdefault("restamped", []).append({
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "reason": reason,
        **({"at": commit} if commit else {}),
    })  # fmt: skip
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


# ---- the table -------------------------------------------------------------------------------------------------------


def _distinct(values: Sequence[str]) -> str:
    """The values, each once, in order, joined by " / "."""
    return " / ".join(dict.fromkeys(values))


def date(record: dict) -> str:
    """The day a JSON was written (``YYYY-MM-DD``): its ``date``, else the latest of its results' dates."""
    dates = [record["date"]] if "date" in record else [result["date"] for result in record["results"]]
    return max(dates)[:10]


def threads(record: dict) -> int | None:
    """The torch threads a JSON's run used."""
    machine = record.get("machine")
    if "threads" in record:
        return record["threads"]
    if isinstance(machine, dict):
        return machine.get("threads")
    found = re.search(r"(\d+) torch thread", machine or "")
    return int(found.group(1)) if found else None


def load_average(record: dict) -> float | None:
    """The 1-minute load average a JSON records (at the end of its run), else the load its machine text names."""
    machine = record.get("machine")
    if "load_average" in record:
        return record["load_average"][0]
    if isinstance(machine, dict) and "load_average" in machine:
        return machine["load_average"][0]
    found = re.search(r"load (?:about |≈ )?([\d.]+)", machine or "")
    return float(found.group(1)) if found else None


def machine(record: dict) -> str:
    """A JSON's machine as it names it, without its threads, load or remarks."""
    value = record.get("machine", "")
    if isinstance(value, dict):
        return f"{value['processor']}, {value['cpus']} CPUs, {value['platform'].split('-')[0]}, torch {value['torch']}"
    return re.sub(r"\d+ torch threads?, | \(.*\)", "", value)


def _setting(row: Row, records: Sequence[dict]) -> str:
    parts = [row.scale]
    counts = [threads(record) for record in records]
    if all(count is not None for count in counts):
        parts.append(f"{_distinct([str(count) for count in counts])} thread{'s' if max(counts) > 1 else ''}")
    loads = [load_average(record) for record in records]
    if all(load is not None for load in loads):
        parts.append(f"load {_distinct([f'{load:.1f}' for load in loads])}")
    return ", ".join(parts)


def cells(row: Row, data: Path | None = None) -> tuple[str, ...]:
    """The row's cells, from the JSON in ``data`` (default ``docs/data``)."""
    records = [load(name, data) for name in row.sources]
    figures = tuple(row.figures(*records))
    goal = f"{row.goal}: {'met' if row.met(figures) else 'missed'}" if row.goal else ""
    dates = [date(record) + ("†" if "source" in record else "") for record in records]
    links = ", ".join(f"[{name}](data/{name}.json)" for name in row.sources)
    what = f"[{row.what}]({METHOD}#{row.anchor})"
    return what, row.text.format(*figures), goal, _setting(row, records), _distinct(dates), links


def render(rows: Sequence[Row] | None = None, data: Path | None = None) -> str:
    """The summary block: the table, then a line on the copied JSON (if any) and the machines the JSON name."""
    rows = ROWS if rows is None else rows
    problems = stale(rows, data)
    if problems:
        raise StaleJSON("\n".join(problems))
    lines = [f"| {' | '.join(HEADER)} |", f"|{' --- |' * len(HEADER)}"]
    lines += [f"| {' | '.join(cells(row, data))} |" for row in rows]
    names = list(dict.fromkeys(name for row in rows for name in row.sources))
    records = {name: load(name, data) for name in names}
    copied = [name for name, record in records.items() if "source" in record]
    notes = []
    if copied:
        notes.append(
            f"† copied from the tables of the runs of the day, before the benchmarks wrote JSON: "
            f"{', '.join(f'`{name}.json`' for name in copied)}; `make bench-data` replaces them."
        )
    machines: dict[str, list[str]] = {}
    for name, record in records.items():
        machines.setdefault(machine(record), []).append(name)
    named = [
        f"`{text}` ({len(of)} JSON)" if len(of) > 3 else f"`{text}` ({', '.join(of)})" for text, of in machines.items()
    ]
    notes.append(f"Machine, as the JSON name it: {'; '.join(named)}.")
    return "\n".join(lines) + "\n\n" + "\n\n".join(notes)


def page_block(text: str) -> str:
    """What ``docs/benchmarks.md`` holds between its summary markers."""
    found = re.search(rf"^{re.escape(START)}\n(.*?)^{re.escape(END)}$", text, re.S | re.M)
    if not found:
        raise ValueError(f"{PAGE.relative_to(ROOT)} has no summary markers ({START} ... {END})")
    return found.group(1).strip()


def write(page: Path = PAGE, block: str | None = None) -> bool:
    """Put the generated block between the page's markers; whether the page changed."""
    text = page.read_text()
    page_block(text)  # the markers are there
    block = render() if block is None else block
    new = re.sub(rf"^{re.escape(START)}\n.*?^{re.escape(END)}$", lambda _: f"{START}\n\n{block}\n\n{END}", text,
                 flags=re.S | re.M)  # fmt: skip
    page.write_text(new)
    return new != text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", action="store_true", help=f"rewrite the table in {PAGE.relative_to(ROOT)}")
    group.add_argument("--check", action="store_true", help="exit 1 if the page's table differs from the JSON's")
    restamp_help = "record today's code digests in the stale JSON of these names (shell-style patterns)"
    group.add_argument("--restamp", metavar="NAME", nargs="+", help=restamp_help)
    parser.add_argument("--reason", help="with --restamp: why the JSON's figures still hold (required)")
    parser.add_argument("--at", metavar="COMMIT", help="with --restamp: the digests of COMMIT, where the run was made")
    args = parser.parse_args(argv)
    if args.restamp:
        if not args.reason:
            parser.error("--restamp needs --reason: why the JSON's figures still hold for today's code")
        cited = dict.fromkeys(name for row in ROWS for name in row.sources)
        named = [name for name in cited if any(fnmatch.fnmatchcase(name, pattern) for pattern in args.restamp)]
        if not named:
            parser.error(f"--restamp {' '.join(args.restamp)} names none of the JSON the summary cites")
        digests = code_digests(ROOT)
        for name in named:
            if args.at or staleness(name, load(name), digests):
                print(f"{restamp(name, args.reason, args.at)}: code digests recorded")
        return 0
    try:
        block = render()
    except (MissingJSON, StaleJSON) as error:
        print(error, file=sys.stderr)
        return 1
    if args.write:
        changed = write(block=block)
        print(f"{PAGE.relative_to(ROOT)}: {'summary rewritten' if changed else 'summary unchanged'}")
    elif args.check:
        if page_block(PAGE.read_text()) != block:
            page = PAGE.relative_to(ROOT)
            print(
                f"{page}: the summary differs from the JSON's: run python scripts/bench_summary.py --write",
                file=sys.stderr,
            )
            return 1
    else:
        print(block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
