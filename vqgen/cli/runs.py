"""Where the commands' data comes from: one loader for every command, and what a ``vqgen fit`` output folder says.

A ``vqgen fit`` output folder holds ``run.json``, the options the run resolved (dataset, ``data`` options such as
``size`` and ``mode``, preset). ``vqgen complete`` and ``vqgen evaluate`` read their dataset from it when ``--dataset``
is not given, and ``sample``, ``complete`` and ``evaluate`` sample at its preset's temperature unless told otherwise;
flags given always win.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

__all__ = ["DATA_DEFAULTS", "data_source", "load_split", "read_run", "temperature"]

logger = logging.getLogger(__name__)

#: The fallback dataset of every command: scikit-learn's digits, offline.
DEFAULT_DATASET = "digits"

#: Where the training data comes from: the options ``fit`` and ``fit-vqvae`` share (flag and file-key names).
DATA_DEFAULTS: dict[str, Any] = {
    "dataset": DEFAULT_DATASET,
    "data_root": None,
    "download": False,
    "train_subset": None,
    "eval_subset": None,
}


def read_run(checkpoint: str | Path) -> dict[str, Any] | None:
    """The resolved options in ``checkpoint/run.json`` when ``checkpoint`` is a ``vqgen fit`` output folder, else
    ``None`` (a missing or unreadable file is no run)."""
    path = Path(checkpoint) / "run.json"
    if not path.is_file():
        return None
    try:
        run = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        logger.warning("%s is not valid JSON; ignoring it", path)
        return None
    return run if isinstance(run, dict) else None


def data_source(args: argparse.Namespace, run: dict[str, Any] | None) -> dict[str, Any]:
    """``{"dataset", "data_root", "download", "data"}`` (the keys of a run file): the dataset of ``args``
    (``--dataset``, ``--data-root``, ``--download``), completed from the ``run`` the model was trained by: its dataset
    when ``--dataset`` is not given, and its ``data`` options (``size``, ``mode``, ...) and data root when the dataset
    is the run's. Random flips and streaming are training matters: held-out images are read whole."""
    run = run or {}
    dataset = args.dataset or run.get("dataset") or DEFAULT_DATASET
    same = run.get("dataset") is not None and str(dataset) == str(run["dataset"])
    data = {k: v for k, v in (run.get("data") or {}).items() if k not in ("hflip", "stream")} if same else {}
    root = args.data_root if args.data_root is not None else run.get("data_root") if same else None
    download = bool(args.download) or (same and bool(run.get("download")))
    if same and args.dataset is None:
        logger.info("dataset %s%s, as the run in run.json was trained", dataset, f" with {data}" if data else "")
    return {"dataset": dataset, "data_root": root, "download": download, "data": data}


def load_split(source: dict[str, Any], split: str, subset: int | None = None) -> Any:
    """Split ``split`` of ``source`` (the keys of a run file, or of [`data_source`][vqgen.cli.runs.data_source]),
    its first ``subset`` images only when ``subset`` is given.

    The test split is never randomly flipped (``data.hflip`` augments training only).

    Raises:
        ValueError: ``subset`` of streamed data (``data.stream``), which has no first N images in memory.
    """
    from ..data import ImageDataset, load_dataset

    options = dict(source.get("data") or {})
    if split == "test":
        options.pop("hflip", None)  # held-out images are scored as they are, not randomly flipped
    dataset = load_dataset(
        source["dataset"], split=split, root=source.get("data_root"), download=bool(source.get("download")), **options
    )
    if subset and not hasattr(dataset, "images"):
        raise ValueError("train_subset and eval_subset take the first N images of in-memory data, not of data.stream")
    if subset:
        dataset = ImageDataset(dataset.images[:subset], dataset.labels[:subset], num_classes=dataset.num_classes)
    return dataset


def temperature(given: float | None, run: dict[str, Any] | None) -> float:
    """``--temperature`` as given, else the temperature of the preset the ``run`` trained (its figures are measured
    at it), else 1.0."""
    if given is not None:
        return given
    if run and run.get("preset"):
        from .. import presets

        try:
            return presets.get(run["preset"]).temperature
        except ValueError:  # a preset this version does not know
            logger.warning("run.json names preset %r, which this vqgen does not have; sampling at 1.0", run["preset"])
    return 1.0
