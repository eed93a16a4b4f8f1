"""Save and load any registered component, or composition of components, as a directory.

A checkpoint directory holds exactly two files::

    config.json         {"format_version": 1, "vqgen_version", "class", "kind", "name", "config": {...}}
    model.safetensors   the state dict (tensors only: loading never executes code, unlike pickle)

``from_pretrained`` rebuilds the component from its spec (:func:`vqgen.build_from_spec`) and loads the weights with a
strict check that names every missing, unexpected or mis-shaped tensor.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .config import Configurable
from .registry import build_from_spec

__all__ = ["CONFIG_NAME", "FORMAT_VERSION", "WEIGHTS_NAME", "from_pretrained", "load_config", "save_pretrained"]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT_VERSION = 1
_OTHER_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".pkl")


def _version() -> str:
    from . import __version__

    return __version__


def save_pretrained(module: nn.Module, directory: str | Path, *, overwrite: bool = True) -> Path:
    """Write ``module`` to ``directory`` as ``config.json`` + ``model.safetensors``; returns the directory.

    Args:
        module: a registered vqgen component (anything with ``to_spec()``).
        directory: created if missing.
        overwrite: if False, refuse to replace an existing checkpoint.
    """
    if not isinstance(module, Configurable) or not isinstance(module, nn.Module):
        raise TypeError(f"save_pretrained needs a vqgen component, got {type(module).__name__}")
    spec = module.to_spec()
    directory = Path(directory)
    if not overwrite and (directory / CONFIG_NAME).exists():
        raise FileExistsError(f"{directory} already holds a checkpoint; pass overwrite=True to replace it")
    directory.mkdir(parents=True, exist_ok=True)
    config = {
        "format_version": FORMAT_VERSION,
        "vqgen_version": _version(),
        "class": f"{type(module).__module__}.{type(module).__qualname__}",
        **spec,
    }
    # Clone so that tied or sliced tensors are stored as independent, contiguous blocks.
    state = {key: value.detach().to("cpu").contiguous().clone() for key, value in module.state_dict().items()}
    save_file(state, str(directory / WEIGHTS_NAME), metadata={"format": "pt"})
    (directory / CONFIG_NAME).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return directory


def load_config(directory: str | Path) -> dict[str, Any]:
    """Read and validate ``config.json`` of a checkpoint directory."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"checkpoint directory {directory} does not exist")
    path = directory / CONFIG_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{directory} is not a vqgen checkpoint: {CONFIG_NAME} is missing")
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(config, dict) or "format_version" not in config:
        raise ValueError(f"{path} has no 'format_version'; it was not written by vqgen.save_pretrained")
    if config["format_version"] != FORMAT_VERSION:
        raise ValueError(
            f"{path} has checkpoint format {config['format_version']}, but this vqgen ({_version()}) reads format "
            f"{FORMAT_VERSION}; upgrade vqgen or re-save the model"
        )
    missing = [key for key in ("kind", "name", "config") if key not in config]
    if missing:
        raise ValueError(f"{path} lacks the keys {missing}")
    return config


def _check_directory_files(directory: Path) -> None:
    if not (directory / WEIGHTS_NAME).is_file():
        raise FileNotFoundError(f"{directory} is not a complete vqgen checkpoint: {WEIGHTS_NAME} is missing")
    extra = sorted(
        p.name for p in directory.iterdir() if p.name != WEIGHTS_NAME and p.name.endswith(_OTHER_WEIGHT_SUFFIXES)
    )
    if extra:
        raise ValueError(
            f"{directory} holds weight files besides {WEIGHTS_NAME}: {extra}; it is unclear which to load, "
            "so move the extra files elsewhere"
        )


def load_state_strict(module: nn.Module, state: dict[str, torch.Tensor], *, source: str) -> None:
    """``module.load_state_dict(state)``, but with one error that names every mismatched tensor."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mis_shaped = [
        f"{key}: checkpoint {tuple(state[key].shape)} vs model {tuple(expected[key].shape)}"
        for key in sorted(set(state) & set(expected))
        if state[key].shape != expected[key].shape
    ]
    if missing or unexpected or mis_shaped:
        lines = [f"the weights in {source} do not fit this model's configuration:"]
        if missing:
            lines.append(f"  missing from the checkpoint: {missing}")
        if unexpected:
            lines.append(f"  not in the model: {unexpected}")
        if mis_shaped:
            lines.append("  shape mismatches: " + "; ".join(mis_shaped))
        raise ValueError("\n".join(lines))
    module.load_state_dict(state, strict=True)


def from_pretrained(directory: str | Path, *, device: str | torch.device | None = None) -> nn.Module:
    """Rebuild the component saved in ``directory`` and load its weights (strictly), optionally onto ``device``."""
    directory = Path(directory)
    config = load_config(directory)
    _check_directory_files(directory)
    module = build_from_spec({key: config[key] for key in ("kind", "name", "config")})
    weights = directory / WEIGHTS_NAME
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError) as error:
        raise ValueError(f"{weights} is corrupt or not a safetensors file: {error}") from None
    load_state_strict(module, state, source=str(weights))
    if device is not None:
        module = module.to(device)
    return module.eval()
