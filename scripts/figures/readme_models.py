"""The pictures of trained models (``--only readme gallery``), drawn as labelled PNGs.

``readme.png`` shows the README's own configuration, the preset ``mnist-small``: trained here with its budget
(``model.fit(train, eval_data=test, **preset.budget)``, 5 + 15 CPU-minutes, seeded) or read from a model folder
(``--model``), sampled at the preset's temperature, each sample captioned with the class asked for, and checked by the
FID classifier of ``vqgen evaluate --classifier-subset 30000 --classifier-epochs 2``: a sample the classifier assigns to
another class is captioned ``3 != 8``, and the title counts those it recognises. Below them, completions of held-out
digits given their top half.

The gallery (``gallery-<dataset>.png``) shows small two-stage models of the demo presets trained through the public API
(``TwoStageModel.from_config(...).fit(...)``) with fixed seeds on MNIST, Fashion-MNIST, the CIFAR-10 subset (read from
``$VQGEN_DATA``; a missing dataset is reported and skipped) and the offline ``digits``: prior samples beside samples of
the ``independent`` and ``uniform`` baselines over the same codes, and completions of held-out images whose lower half
was hidden."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

import vqgen
from scripts.figures.common import save_small_png, stack, stamp, with_footer
from vqgen import TwoStageModel, presets
from vqgen.cli.complete import load_two_stage
from vqgen.cli.evaluate import _classifier as evaluate_classifier  # the classifier of vqgen evaluate, as it makes it
from vqgen.cli.runs import read_run
from vqgen.data import DatasetNotFoundError
from vqgen.evaluation import baseline_priors, class_cycle
from vqgen.images import FONT_SIZE, label_grid, make_grid, make_panels, to_uint8

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


def completions_figure(
    model: TwoStageModel,
    test_set,
    *,
    n: int,
    scale: int | None = None,
    temperature: float | None = None,
    title: str = "completions of held-out images (top half given)",
    row_labels: Sequence[str] | None = ("given", "completed"),
) -> np.ndarray:
    """Held-out images with the lower half hidden (row "given") above the model's completions (at ``temperature``
    when given, else the sampler's default, 1.0)."""
    images, labels = test_set.images[:n], test_set.labels[:n]
    mask = torch.zeros(images.shape[2:], dtype=torch.bool)
    mask[: images.shape[2] // 2] = True  # keep the top half
    generator = torch.Generator().manual_seed(SEED)
    settings = {} if temperature is None else {"temperature": temperature}
    completed = model.complete(images, mask, labels, generator=generator, **settings)
    rows = torch.cat([(images * mask).float() / 255, completed.cpu()])
    grid = make_grid(rows, ncols=n)
    scale = scale or (3 if images.shape[-1] <= 16 else 2)
    return label_grid(grid, tile_shape=tuple(images.shape[2:]), scale=scale, row_labels=row_labels,
                      title=title)  # fmt: skip


# readme.png: the README's configuration, checked by the classifier of the README's figures.
README_PRESET = "mnist-small"
README_ROWS = 3  # rows of the 10 classes: the first 30 seeded draws, every one shown (none picked)
README_SCALE = 3  # 28x28 tiles at 84 pixels: ten to a row, about 900 pixels wide, as wide as the completions
# The classifier of the README's "recognised" figure: vqgen evaluate --classifier-subset 30000 --classifier-epochs 2.
CLASSIFIER = {"classifier_subset": 30_000, "classifier_epochs": 2}
# --quick: a few steps of the preset on a few images and a classifier of one short epoch; checks the script only.
QUICK_README = {"train": 2_000, "test": 500, "classifier": {"classifier_subset": 2_000, "classifier_epochs": 1}}


def disagreement(asked: int | str, seen: int | str) -> str:
    """The caption of a sample asked for class ``asked`` that the classifier sees as ``seen``: ``"3 != 8"``."""
    return f"{asked} != {seen}"


def checked_captions(asked: torch.Tensor, predicted: torch.Tensor, names: Sequence[str] | None = None) -> list[str]:
    """One caption per sample: the class asked for, or ``"3 != 8"`` where the classifier predicts another class.

    Args:
        asked: ``(N,)`` the labels the samples were drawn for.
        predicted: ``(N,)`` the classifier's labels of the same samples.
        names: label ``i`` -> its caption (default: the label itself).
    """
    if asked.shape != predicted.shape:
        raise ValueError(f"asked {tuple(asked.shape)} and predicted {tuple(predicted.shape)} differ in shape")
    name = (lambda i: str(names[i])) if names else str  # noqa: E731
    return [name(a) if a == p else disagreement(name(a), name(p)) for a, p in zip(asked.tolist(), predicted.tolist())]


def _plain(mapping: Mapping) -> dict:
    """A config as plain JSON types (mapping proxies, tuples), to compare two configs."""
    return json.loads(json.dumps(mapping, default=dict))


def _flat(mapping: Mapping, prefix: str = "") -> dict[str, object]:
    """``{"prior": {"config": {"num_layers": 6}}}`` -> ``{"prior.num_layers": 6}``."""
    out: dict[str, object] = {}
    for key, value in mapping.items():
        if isinstance(value, Mapping):
            out.update(_flat(value, prefix if key == "config" else f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def load_readme_model(path: Path) -> TwoStageModel:
    """The trained TwoStageModel in ``path``; a ``ValueError`` (one line) when its config is not ``mnist-small``'s
    (checked first, from ``config.json``), it is no TwoStageModel or it is not trained."""
    saved = vqgen.load_config(path)
    if saved.get("class") == f"{TwoStageModel.__module__}.{TwoStageModel.__name__}":
        _check_readme_config(path, saved["config"])
    return load_two_stage(path)


def _check_readme_config(path: Path, config: Mapping) -> None:
    expected = _flat(_plain(TwoStageModel.from_preset(README_PRESET).config))
    found = _flat(_plain(config))
    differ = sorted(key for key in expected.keys() | found.keys() if expected.get(key) != found.get(key))
    if differ:
        shown = ", ".join(f"{key} {found.get(key)!r} (preset: {expected.get(key)!r})" for key in differ[:3])
        more = f" and {len(differ) - 3} more" if len(differ) > 3 else ""
        raise ValueError(
            f"{path} is not a model of the {README_PRESET} preset, which readme.png shows: {shown}{more}; "
            f"train one with vqgen fit --dataset mnist --output runs/mnist"
        )


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _stage_facts(name: str, history: Sequence[Mapping] | None) -> str | None:
    """``"stage 2: 5,120 steps, 900 s, held-out 2.310 bits/code"`` from a stage's per-epoch history (``None`` when
    there is none); the held-out bits are the prior's, its ``eval/bits_per_dim``."""
    if not history:
        return None
    last = history[-1]
    text = f"{name}: {last.get('step', 0):,} steps"
    if last.get("train_seconds") is not None:
        text += f", {last['train_seconds']:.0f} s"
    bits = (last.get("eval") or {}).get("bits_per_dim")
    if bits is not None:
        text += f", held-out {bits:.3f} bits/code"
    return text


def training_facts(path: Path) -> str | None:
    """What ``path``'s ``run.json`` and ``metrics.json`` files (written by ``vqgen fit``) say of its training, in one
    line, or ``None`` when it has none (a folder of ``save_pretrained`` alone)."""
    parts = []
    run = read_run(path)
    if run:
        text = f"vqgen fit --preset {run.get('preset')} on {run.get('dataset')}"
        if run.get("train_subset"):
            text += f" (first {run['train_subset']:,} images)"
        parts.append(text)
    for folder, name in (("stage1", "stage 1"), ("stage2", "stage 2"), (".", "training")):
        parts.append(_stage_facts(name, (_read_json(path / folder / "metrics.json") or {}).get("history")))
    parts = [part for part in parts if part]
    return "; ".join(parts) if parts else None


def load_mnist(split: str, subset: int | None = None):
    """MNIST's ``split`` (from ``$VQGEN_DATA``), its first ``subset`` images when given."""
    dataset = vqgen.data.load_dataset(presets.get(README_PRESET).dataset, split=split)
    if subset:
        dataset = vqgen.data.from_arrays(dataset.images[:subset], dataset.labels[:subset],
                                         class_names=dataset.class_names)  # fmt: skip
    return dataset


def train_readme_model(train_set, test_set, quick: bool) -> tuple[TwoStageModel, str]:
    """``mnist-small`` trained as the README's snippet trains it (its budget, seeded); returns it and its training."""
    preset = presets.get(README_PRESET)
    torch.manual_seed(SEED)
    model = TwoStageModel.from_preset(README_PRESET)
    budget = QUICK if quick else preset.budget
    common = {"seed": SEED, "progress": False}
    started = time.perf_counter()
    history = model.fit(train_set, eval_data=test_set, **{stage: {**budget[stage], **common} for stage in budget})
    print(f"{README_PRESET}: trained in {time.perf_counter() - started:.0f} s")
    stages = "; ".join(filter(None, (_stage_facts(f"stage {stage[-1]}", history[stage]) for stage in budget)))
    what = "a few steps (--quick)" if quick else "its budget"
    return model, f"model: {README_PRESET} trained by this command ({what}, seed {SEED}): {stages}"


def readme_classifier(train_set, test_set, path: Path | None, quick: bool):
    """The FID classifier of ``vqgen evaluate`` (``--classifier PATH``, else one trained with the README figures'
    ``--classifier-subset 30000 --classifier-epochs 2``, seed 0), and a line saying which it is."""
    settings = QUICK_README["classifier"] if quick and path is None else CLASSIFIER
    args = SimpleNamespace(classifier=str(path) if path else None, seed=SEED, progress=False, **settings)
    classifier = evaluate_classifier(args, train_set, test_set, torch.device("cpu"))
    accuracy = classifier.accuracy(test_set.images, test_set.labels)
    if path:
        what = f"classifier: {path}"
    else:
        what = (f"classifier: trained here on the first {settings['classifier_subset']:,} training images, "
                f"{settings['classifier_epochs']} epoch{'s' if settings['classifier_epochs'] > 1 else ''}")  # fmt: skip
    return classifier, f"{what}, {accuracy:.1%} test accuracy"


def _line(text: str) -> np.ndarray:
    """One line of text on white, as wide as it needs."""
    return label_grid(np.full((1, 1), 255, np.uint8), tile_shape=(1, 1), padding=0, title=text)[: FONT_SIZE + 8]


def checked_samples_figure(model: TwoStageModel, classifier, temperature: float, rows: int) -> tuple[np.ndarray, int]:
    """``rows`` x 10 class-conditional samples (the first seeded draws), each captioned with the class asked for, or
    ``"3 != 8"`` where the classifier sees another class; returns the figure and how many it recognises."""
    n = rows * model.prior.num_classes
    cond = class_cycle(model, n)
    generator = torch.Generator(model.device).manual_seed(SEED)
    images = to_uint8(model.sample(n, cond, temperature=temperature, generator=generator)).cpu()
    predicted = classifier.predict(images)
    recognised = int((predicted == cond.cpu()).sum())  # classifier.accuracy(images, cond), evaluate's "recognised"
    title = (f"samples of {README_PRESET}, the README's configuration, at temperature {temperature:g}: "
             f"{recognised} of {n} recognised by the classifier")  # fmt: skip
    ncols = model.prior.num_classes
    grid = label_grid(make_grid(images, ncols=ncols), tile_shape=tuple(images.shape[2:]), scale=README_SCALE,
                      title=title, captions=checked_captions(cond.cpu(), predicted), ncols=ncols)  # fmt: skip
    legend = _line('under each: the class asked for; "3 != 8": asked for a 3, the classifier sees an 8')
    return stack([grid, legend], gap=0), recognised


def make_readme(quick: bool, out: Path, *, command: str, model_path: Path | None = None,
                classifier_path: Path | None = None) -> Path:  # fmt: skip
    """``out/readme.png``: ``mnist-small`` (read from ``model_path``, else trained here) and its checked samples."""
    preset = presets.get(README_PRESET)
    model = load_readme_model(model_path) if model_path else None  # refused before anything slow
    train_set = load_mnist("train", QUICK_README["train"] if quick and model is None else None)
    test_set = load_mnist("test", QUICK_README["test"] if quick else None)
    if model is None:
        model, trained = train_readme_model(train_set, test_set, quick)
    else:
        facts = training_facts(model_path)
        trained = f"model: {model_path}" + (f" ({facts})" if facts else "")
    model.eval()
    classifier, which = readme_classifier(train_set, test_set, classifier_path, quick)
    samples, recognised = checked_samples_figure(model, classifier, preset.temperature, README_ROWS)
    print(f"readme: {recognised} of {README_ROWS * model.prior.num_classes} samples recognised by the classifier")
    completions = completions_figure(
        model, test_set, n=10, scale=README_SCALE, temperature=preset.temperature, row_labels=None,
        title=f"completions of held-out digits at temperature {preset.temperature:g}: "
        "the top half given (above), completed (below)",
    )  # fmt: skip
    figure = stack([samples, completions])
    for line in (stamp(command), trained, which):
        figure = with_footer(figure, line)
    return save_small_png(out / "readme.png", figure)


def make_pictures(which: set[str], quick: bool, out: Path, *, command: str | None = None,
                  model_path: Path | None = None, classifier_path: Path | None = None) -> None:  # fmt: skip
    """``readme.png`` (``"readme" in which``; of the ``model_path`` folder when given, else of ``mnist-small`` trained
    here) and ``gallery-<dataset>.png`` (``"gallery" in which``) into ``out``; their footers name ``command``.

    Raises:
        ValueError: ``model_path`` does not hold a trained model of ``mnist-small``, or ``classifier_path`` a
            FeatureClassifier.
    """
    command = command or "python scripts/make_figures.py" + (" --quick" if quick else "")
    if "readme" in which:
        try:
            make_readme(quick, out, command=command, model_path=model_path, classifier_path=classifier_path)
        except DatasetNotFoundError as error:
            print(f"skipping readme.png: {error}", file=sys.stderr)
    if "gallery" not in which:
        return
    for name in ["mnist", "fashion-mnist", "digits", "cifar10"]:
        try:
            model, train_set, test_set = train(name, quick)
        except DatasetNotFoundError as error:
            print(f"skipping {name}: {error}", file=sys.stderr)
            continue
        samples = samples_figure(model, train_set, per_panel=20, ncols=5)
        completions = completions_figure(model, test_set, n=10)
        figure = stack([_line(MODELS[name]["title"]), samples, completions], gap=4)
        save_small_png(out / f"gallery-{name}.png", with_footer(figure, stamp(command)))
