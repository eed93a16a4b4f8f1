"""The pictures of trained models (``--only readme gallery``): small two-stage models trained through the public API
(``TwoStageModel.from_config(...).fit(...)``) with fixed seeds on MNIST, Fashion-MNIST, the CIFAR-10 subset (read from
``$VQGEN_DATA``; a missing dataset is reported and skipped) and the offline ``digits``, drawn as labelled PNGs: prior
samples beside samples of the ``independent`` and ``uniform`` baselines over the same codes, and completions of
held-out images whose lower half was hidden."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

import vqgen
from scripts.figures.common import save_small_png, stack, stamp, with_footer
from vqgen import TwoStageModel, presets
from vqgen.data import DatasetNotFoundError
from vqgen.evaluation import baseline_priors
from vqgen.images import FONT_SIZE, label_grid, make_grid, make_panels

SEED = 0

# Small models that train in about a minute each on two CPU threads: the demo presets of vqgen.presets (one
# definition for the demo, the figures and the benchmarks), all class-conditional so each sample can be captioned.
MODELS = {
    "digits": {
        "title": "digits (8x8 scikit-learn digits at 16x16, offline)",
        "config": presets.get("digits-demo").config(),
        "train": None,  # all 1,442 training images
        "stage1": {"epochs": 15},
        "stage2": {"epochs": 15},
    },
    "mnist": {
        "title": "MNIST",
        "config": presets.get("mnist-demo").config(),
        "train": 12_000,
        "stage1": {"max_steps": 600},
        "stage2": {"max_steps": 800},
    },
    "fashion-mnist": {
        "title": "Fashion-MNIST",
        "config": presets.get("mnist-demo").config(),
        "train": 12_000,
        "stage1": {"max_steps": 600},
        "stage2": {"max_steps": 800},
    },
    "cifar10": {
        "title": "CIFAR-10 (4,000-image subset)",
        "config": presets.get("cifar10-small").config(),
        "train": None,
        "stage1": {"max_steps": 600},
        "stage2": {"max_steps": 800},
    },
}
# Budgets are counted in steps, never in seconds, so that a run on a busy machine draws the same pictures.
QUICK = {"stage1": {"max_steps": 5}, "stage2": {"max_steps": 5}}


def train(name: str, quick: bool) -> tuple[TwoStageModel, object, object]:
    """Fit the model of ``MODELS[name]`` on its dataset; returns (model, train set, test set)."""
    spec = MODELS[name]
    train_set = vqgen.data.load_dataset(name, split="train")
    test_set = vqgen.data.load_dataset(name, split="test")
    if spec["train"]:
        train_set = vqgen.data.from_arrays(train_set.images[: spec["train"]], train_set.labels[: spec["train"]],
                                           class_names=train_set.class_names)  # fmt: skip
    torch.manual_seed(SEED)
    model = TwoStageModel.from_config(spec["config"])
    common = {"seed": SEED, "progress": False}
    stage1, stage2 = (QUICK["stage1"], QUICK["stage2"]) if quick else (spec["stage1"], spec["stage2"])
    started = time.perf_counter()
    model.fit(train_set, stage1={**stage1, **common}, stage2={**stage2, **common})
    print(f"{name}: trained in {time.perf_counter() - started:.0f} s")
    return model, train_set, test_set


def class_names(dataset, labels: torch.Tensor) -> list[str]:
    names = getattr(dataset, "class_names", None)
    return [str(names[i]) if names else str(i) for i in labels.tolist()]


def samples_figure(model: TwoStageModel, train_set, *, per_panel: int, ncols: int) -> np.ndarray:
    """prior samples | independent codes | uniform codes, side by side; prior samples captioned with their class."""
    cond = torch.arange(per_panel) % 10
    generator = torch.Generator().manual_seed(SEED)
    panels = {"prior samples": model.sample(per_panel, cond, generator=generator)}
    for base, prior in baseline_priors(model, train_set).items():
        panels[f"{base} codes"] = model.sample(per_panel, prior=prior, generator=generator)
    captions = {"prior samples": class_names(train_set, cond)}
    return make_panels(panels, ncols=ncols, captions=captions, scale=3 if panels["uniform codes"].shape[-1] <= 16
                       else 2)  # fmt: skip


def completions_figure(model: TwoStageModel, test_set, *, n: int) -> np.ndarray:
    """Held-out images with the lower half hidden (row "given") above the model's completions."""
    images, labels = test_set.images[:n], test_set.labels[:n]
    mask = torch.zeros(images.shape[2:], dtype=torch.bool)
    mask[: images.shape[2] // 2] = True  # keep the top half
    generator = torch.Generator().manual_seed(SEED)
    completed = model.complete(images, mask, labels, generator=generator)
    rows = torch.cat([(images * mask).float() / 255, completed.cpu()])
    grid = make_grid(rows, ncols=n)
    scale = 3 if images.shape[-1] <= 16 else 2
    return label_grid(grid, tile_shape=tuple(images.shape[2:]), scale=scale, row_labels=["given", "completed"],
                      title="completions of held-out images (top half given)")  # fmt: skip


def make_pictures(which: set[str], quick: bool, out: Path) -> None:
    """``readme.png`` (``"readme" in which``) and ``gallery-<dataset>.png`` (``"gallery" in which``) into ``out``."""
    command = "make figures (python scripts/make_figures.py" + (" --quick)" if quick else ")")
    names = ["mnist", "fashion-mnist", "digits", "cifar10"] if "gallery" in which else ["mnist"]
    for name in names:
        try:
            model, train_set, test_set = train(name, quick)
        except DatasetNotFoundError as error:
            print(f"skipping {name}: {error}", file=sys.stderr)
            continue
        samples = samples_figure(model, train_set, per_panel=20, ncols=5)
        completions = completions_figure(model, test_set, n=10)
        if name == "mnist" and "readme" in which:
            readme = stack([samples, completions])
            save_small_png(out / "readme.png", with_footer(readme, stamp(command)))
        if "gallery" in which:
            title = label_grid(np.full((1, 1), 255, np.uint8), tile_shape=(1, 1), padding=0,
                               title=MODELS[name]["title"])[: FONT_SIZE + 8]  # fmt: skip
            figure = stack([title, samples, completions], gap=4)
            save_small_png(out / f"gallery-{name}.png", with_footer(figure, stamp(command)))
