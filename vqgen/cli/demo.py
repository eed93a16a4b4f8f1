"""``vqgen demo``: train a small two-stage model end to end and write what it learnt.

Examples::

    vqgen demo                                   # offline: scikit-learn's handwritten digits, ~3 minutes on 2 cores
    vqgen demo --dataset mnist --output runs/mnist-demo
    vqgen demo --quantizer vq --prior pixelcnn   # swap any part by name

The output folder receives ``reconstructions.png`` (held-out originals above their reconstructions),
``samples.png`` (prior samples | the independent-position baseline | uniform random codes), ``completions.png``
(top halves kept, bottom halves completed by the prior), ``metrics.json`` and the model (``model/``).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

import torch

from . import DefaultsHelpFormatter
from .options import add_deprecated_alias, add_progress_argument, non_negative_int, positive_float, positive_int

__all__ = ["DEMO_PRESETS", "add_parser", "run"]

logger = logging.getLogger(__name__)

#: The preset (``vqgen.presets``) the demo trains on each named dataset; other data: by its channels.
DEMO_PRESETS = {
    "digits": "digits-demo",
    "mnist": "mnist-demo",
    "fashion-mnist": "mnist-demo",
    "cifar10": "cifar10-small",
}


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="train a small VQ-VAE + prior end to end and write PNGs and metrics",
        description=(
            "Train stage 1 (VQ-VAE) and stage 2 (an autoregressive prior over its codes) on a dataset, then write "
            "reconstructions, samples next to the baselines, completions and held-out metrics. Runs offline by "
            "default (scikit-learn's digits)."
        ),
        formatter_class=DefaultsHelpFormatter,
    )
    parser.add_argument("--dataset", default="digits", help="digits, mnist, fashion-mnist, cifar10, or a folder/.npz")
    parser.add_argument("--data-root", metavar="DIR", help="where the dataset files are (default: $VQGEN_DATA)")
    parser.add_argument("--download", action="store_true", help="download a named dataset if it is missing")
    parser.add_argument("--output", "-o", default="demo-output", metavar="DIR", help="folder for PNGs, metrics, model")
    parser.add_argument("--quantizer", help="quantizer name (default: the preset's, ema)")
    parser.add_argument("--prior", help="prior name (default: the preset's, gated_pixelcnn)")
    parser.add_argument("--num-codes", type=positive_int, metavar="K", help="codebook size (default: the preset's)")
    parser.add_argument(
        "--preset", metavar="NAME",
        help="the model and budget (vqgen.presets; default: the dataset's demo preset, e.g. digits-demo)",
    )  # fmt: skip
    parser.add_argument("--vqvae-epochs", type=positive_int, metavar="N", help="stage-1 epochs (default: the preset's)")
    parser.add_argument("--prior-epochs", type=positive_int, metavar="N", help="stage-2 epochs (default: the preset's)")
    parser.add_argument(
        "--max-seconds", type=positive_float, metavar="S", help="training-time cap of the prior (default: the preset's)"
    )
    parser.add_argument(
        "--train-subset", type=positive_int, metavar="N", help="train on the first N training images only"
    )
    add_deprecated_alias(parser, "--train-limit", new="--train-subset", dest="train_subset", type=positive_int)
    parser.add_argument(
        "--num-samples", "-n", type=positive_int, default=200, metavar="N", help="samples per model for FID"
    )
    add_deprecated_alias(parser, "--samples", new="--num-samples", dest="num_samples", type=positive_int)
    parser.add_argument("--temperature", type=positive_float, default=1.0, help="the prior's sampling temperature")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="random seed (same seed, same run)")
    parser.add_argument("--device", help="cpu, cuda, ... (default: CUDA when available, else cpu)")
    add_progress_argument(parser, default=True)
    parser.set_defaults(func=run)


def _preset(args: argparse.Namespace, channels: int) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The model config and budget: the preset's (``--preset``, else the dataset's demo preset), with the parts and
    budgets the flags name instead."""
    from .. import presets

    name = args.preset or DEMO_PRESETS.get(args.dataset, "cifar10-small" if channels == 3 else "mnist-demo")
    preset = presets.get(name)
    config, budget = preset.config(in_channels=channels), preset.budget
    if args.quantizer:
        config["quantizer"] = {"name": args.quantizer, "num_codes": config["quantizer"]["num_codes"]}
    if args.num_codes:
        config["quantizer"]["num_codes"] = args.num_codes
    if args.prior:
        config["prior"] = {"name": args.prior}
    for stage, key, value in (("stage1", "epochs", args.vqvae_epochs), ("stage2", "epochs", args.prior_epochs),
                              ("stage2", "max_seconds", args.max_seconds)):  # fmt: skip
        if value is not None:
            budget[stage][key] = value
    return config, budget


def run(args: argparse.Namespace) -> int:
    """Train, evaluate and write the demo outputs; prints a short summary."""
    from .. import TwoStageModel, data
    from ..evaluation import baseline_priors, class_cycle, evaluate_two_stage
    from ..images import save_panels, save_reconstructions
    from ..training.classifier import train_classifier
    from ..training.runtime import resolve_device, seed_everything

    started = time.perf_counter()
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    train = data.load_dataset(args.dataset, split="train", root=args.data_root, download=args.download)
    test = data.load_dataset(args.dataset, split="test", root=args.data_root, download=args.download)
    if args.train_subset:
        train = data.from_arrays(train.images[: args.train_subset], train.labels[: args.train_subset])
    device = resolve_device(args.device)
    seed_everything(args.seed)
    config, budget = _preset(args, channels=train.images.shape[1])
    model = TwoStageModel.from_config(config).to(device)
    logger.info("demo on %s (%d train / %d test images %s), device %s", args.dataset, len(train.images),
                len(test.images), "x".join(map(str, train.images.shape[1:])), device)  # fmt: skip

    common = {"seed": args.seed, "device": str(device), "progress": args.progress}
    histories = model.fit(
        train,
        eval_data=test,
        stage1={**budget["stage1"], **common},
        stage2={**budget["stage2"], **common},
    )
    model.save_pretrained(output / "model")

    n_show = 32
    originals = test.images[:n_show]
    save_reconstructions(output / "reconstructions.png", originals, model.reconstruct(originals).cpu(), scale=3)

    generator = torch.Generator(device).manual_seed(args.seed)
    shown = {"prior": model.sample(n_show, class_cycle(model, n_show), generator=generator).cpu()}
    baselines = baseline_priors(model, train)
    for name, prior in baselines.items():
        shown[name] = model.sample(n_show, prior=prior, generator=generator).cpu()
    titles = {"prior": "prior samples", "independent": "independent codes", "uniform": "uniform codes"}
    save_panels(output / "samples.png", {titles.get(k, k): v for k, v in shown.items()}, ncols=8, scale=3)

    mask = torch.zeros(test.images.shape[2:], dtype=torch.bool)
    mask[: mask.shape[0] // 2] = True
    halves = test.images[:16]
    completed = model.complete(halves, mask, test.labels[:16].to(device) if model.prior.num_classes else None)
    save_reconstructions(
        output / "completions.png", halves * mask, completed.cpu(), scale=3, labels=("given", "completed")
    )

    classifier = train_classifier(train, test=test, seed=args.seed, progress=args.progress).model
    classifier.save_pretrained(output / "classifier")
    metrics = evaluate_two_stage(
        model, train, test, classifier=classifier, baselines=baselines, num_samples=args.num_samples,
        temperature=args.temperature, seed=args.seed,
    )  # fmt: skip
    metrics.update(
        dataset=args.dataset,
        config=model.to_spec()["config"],
        stage1_history=list(histories["stage1"]),
        stage2_history=list(histories["stage2"]),
        samples_png_panels=list(shown),
        seconds=time.perf_counter() - started,
    )
    (output / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    fids = metrics["fid_classifier"]
    print(
        f"reconstruction MSE {metrics['stage1']['reconstruction_mse']:.4f}, "
        f"codebook usage {metrics['stage1']['usage']:.0%}\n"
        f"held-out bits/code: prior {metrics['bits_per_code']['prior']:.3f}, "
        f"independent {metrics['bits_per_code']['independent']:.3f}, "
        f"uniform {metrics['bits_per_code']['uniform']:.3f}\n"
        f"FID (classifier features, {metrics['num_samples']} samples): prior {fids['prior']:.2f}, "
        f"independent {fids['independent']:.2f}, uniform {fids['uniform']:.2f}\n"
        f"wrote {output}/reconstructions.png, samples.png, completions.png, metrics.json, model/, classifier/ "
        f"in {metrics['seconds']:.0f} s"
    )
    return 0
