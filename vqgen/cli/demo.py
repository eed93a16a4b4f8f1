"""``vqgen demo``: train a small VQ-VAE + prior end to end and write PNGs and metrics.

Train stage 1 (VQ-VAE) and stage 2 (an autoregressive prior over its codes, class-conditional when the data has
labels) on a dataset, then write reconstructions, samples next to the baselines, completions and held-out metrics.
Runs offline by default (scikit-learn's digits).

Examples::

    vqgen demo                                   # offline: scikit-learn's handwritten digits, ~1 minute on 2 cores
    vqgen demo --dataset mnist --max-seconds 120 --output runs/mnist-demo    # each stage at most 2 minutes
    vqgen demo --quantizer vq --prior pixelcnn --output runs/swapped          # swap any part by name

The output folder receives ``reconstructions.png`` (held-out originals above their reconstructions),
``samples.png`` (prior samples | the independent-position baseline | uniform random codes), ``completions.png``
(top halves kept, bottom halves completed by the prior), ``metrics.json``, the model (``model/``) and the FID
classifier (``classifier/``).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

import torch

from .fit import fit_to_data, swap_parts
from .options import add_command, add_data_arguments, add_deprecated_alias, add_output_argument, add_progress_argument
from .runs import load_split
from .values import non_negative_int, positive_float, positive_int

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
    parser = add_command(subparsers, __doc__)
    data = add_data_arguments(parser, subsets=("train",))
    add_deprecated_alias(data, "--train-limit", new="--train-subset", dest="train_subset", type=positive_int)
    add_output_argument(
        parser, kind="DIR", default="demo-output", help="folder for the PNGs, metrics.json, model/ and classifier/"
    )
    model = parser.add_argument_group("model and budget (default: the preset's)")
    model.add_argument(
        "--preset", metavar="NAME",
        help="the model and budget (vqgen.presets; default: the dataset's demo preset, e.g. digits-demo)",
    )  # fmt: skip
    model.add_argument("--quantizer", metavar="NAME", help="the quantizer, by name (default: the preset's, ema)")
    model.add_argument("--prior", metavar="NAME", help="the prior, by name (default: the preset's, gated_pixelcnn)")
    model.add_argument("--num-codes", type=positive_int, metavar="K", help="codebook size (default: the preset's)")
    model.add_argument("--vqvae-epochs", type=positive_int, metavar="N", help="stage-1 epochs (default: the preset's)")
    model.add_argument("--prior-epochs", type=positive_int, metavar="N", help="stage-2 epochs (default: the preset's)")
    model.add_argument(
        "--max-seconds", type=positive_float, metavar="S",
        help="stop each stage after S seconds of training (default: the preset's)",
    )  # fmt: skip
    model.add_argument(
        "--prior-max-seconds", type=positive_float, metavar="S",
        help="stop stage 2 after S seconds of training, instead of --max-seconds (default: the preset's)",
    )  # fmt: skip
    parser.add_argument(
        "--num-samples", "-n", type=positive_int, default=200, metavar="N", help="samples per model for FID"
    )
    add_deprecated_alias(parser, "--samples", new="--num-samples", dest="num_samples", type=positive_int)
    parser.add_argument(
        "--temperature", type=positive_float, metavar="T",
        help="the prior's sampling temperature for FID (default: the preset's, 1.0 for the demo presets)",
    )  # fmt: skip
    parser.add_argument("--seed", type=non_negative_int, default=0, help="random seed (same seed, same run)")
    add_progress_argument(parser, default=True)
    parser.set_defaults(func=run)


def _preset(args: argparse.Namespace, train: Any) -> tuple[Any, dict[str, Any], dict[str, dict[str, Any]]]:
    """The preset (``--preset``, else the dataset's demo preset), its model config fitted to ``train`` (channels and
    classes) and its budget, with the parts and budgets the flags name instead."""
    from .. import presets

    channels = train.images.shape[1]
    name = args.preset or DEMO_PRESETS.get(args.dataset, "cifar10-small" if channels == 3 else "mnist-demo")
    preset = presets.get(name)
    config, budget = preset.config(), preset.budget
    config["prior"].pop("num_classes", None)  # the data's (fit_to_data)
    config = swap_parts(config, quantizer=args.quantizer, prior=args.prior)
    if args.num_codes:
        config["quantizer"]["num_codes"] = args.num_codes
    config = fit_to_data({**config, "encoder": {**config["encoder"], "in_channels": channels}}, train)
    flags = {
        "stage1": {"epochs": args.vqvae_epochs, "max_seconds": args.max_seconds},
        "stage2": {"epochs": args.prior_epochs, "max_seconds": args.prior_max_seconds or args.max_seconds},
    }
    for stage, given in flags.items():
        budget[stage].update({key: value for key, value in given.items() if value is not None})
    return preset, config, budget


def run(args: argparse.Namespace) -> int:
    """Train, evaluate and write the demo outputs; prints a short summary."""
    from .. import TwoStageModel
    from ..evaluation import baseline_priors, class_cycle, evaluate_two_stage
    from ..images import save_panels, save_reconstructions
    from ..training.classifier import train_classifier
    from ..training.runtime import resolve_device, seed_everything

    started = time.perf_counter()
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    source = {"dataset": args.dataset, "data_root": args.data_root, "download": args.download}
    train, test = load_split(source, "train", args.train_subset), load_split(source, "test")
    device = resolve_device(args.device)
    seed_everything(args.seed)
    preset, config, budget = _preset(args, train)
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
        temperature=preset.temperature if args.temperature is None else args.temperature, seed=args.seed,
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
