"""Save and load any registered component, or composition of components, as a directory.

A checkpoint directory holds exactly two files::

    config.json         {"format_version": 1, "vqgen_version", "class", "kind", "name", "config": {...},
                         "weights_sha256", "config_sha256"}
    model.safetensors   the state dict (tensors only: loading never executes code, unlike pickle)

Both are written to temporary names and renamed into place, so an interrupted save never leaves a half-written file
under either name. ``from_pretrained`` rebuilds the component from its spec
([`vqgen.build_from_spec`][vqgen.build_from_spec]) and loads the weights with a strict check that names every missing,
unexpected or mis-shaped tensor.

**Integrity.** ``weights_sha256`` is the SHA-256 of ``model.safetensors``; ``config_sha256`` that of the canonical
JSON of every other key of ``config.json`` (``sort_keys``, no whitespace). Loading verifies both before building
anything, so a damaged or mismatched file is a ``ValueError`` naming it, never a model that silently differs from the
one saved. A ``config.json`` edited by hand fails the check; delete its ``config_sha256`` line to accept the edit
(loading then warns that the config is unverified). Checkpoints without the two keys (written before they existed)
load with that warning.

**Forward compatibility** (as diffusers' ``from_config``): a key this vqgen does not know — at the top of
``config.json`` or in the config of any (nested) component, as written by a newer vqgen with a new option — is ignored
with a [`CheckpointWarning`][CheckpointWarning] naming it, and the option takes this version's default. A different
``format_version`` is refused.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .config import Configurable, is_spec
from .registry import build_from_spec, registry

__all__ = [
    "CONFIG_NAME",
    "FORMAT_VERSION",
    "WEIGHTS_NAME",
    "CheckpointWarning",
    "config_digest",
    "from_pretrained",
    "load_config",
    "save_pretrained",
]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT_VERSION = 1
_OTHER_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".pkl")
_KNOWN_KEYS = frozenset(
    {"format_version", "vqgen_version", "class", "kind", "name", "config", "weights_sha256", "config_sha256"}
)


class CheckpointWarning(UserWarning):
    """A checkpoint loads, but not exactly as written: unknown keys ignored, or no checksum to verify it by."""


def _version() -> str:
    from . import __version__

    return __version__


def config_digest(config: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of ``config`` without its ``config_sha256`` key."""
    body = {key: value for key, value in config.items() if key != "config_sha256"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _file_digest(path: Path) -> str:
    """SHA-256 (hex) of a file, read in 1 MiB blocks; an unreadable file is an ``OSError`` naming it."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as file:
            for block in iter(lambda: file.read(1 << 20), b""):
                digest.update(block)
    except OSError as error:
        raise OSError(f"{path} could not be read: {error}") from error
    return digest.hexdigest()


def save_pretrained(module: nn.Module, directory: str | Path, *, overwrite: bool = True) -> Path:
    """Write ``module`` to ``directory`` as ``config.json`` + ``model.safetensors``; returns the directory.

    Each file is written to a temporary name in ``directory`` and renamed over the old one, weights first; the
    config, renamed last, carries the weights' checksum, so a save interrupted between the two renames leaves a
    checkpoint that fails to load with a clear error rather than one that loads the wrong weights.

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
    # Clone so that tied or sliced tensors are stored as independent, contiguous blocks.
    state = {key: value.detach().to("cpu").contiguous().clone() for key, value in module.state_dict().items()}
    suffix = f".tmp-{os.getpid()}"
    weights_tmp, config_tmp = directory / (WEIGHTS_NAME + suffix), directory / (CONFIG_NAME + suffix)
    try:
        save_file(state, str(weights_tmp), metadata={"format": "pt"})
        config = {
            "format_version": FORMAT_VERSION,
            "vqgen_version": _version(),
            "class": f"{type(module).__module__}.{type(module).__qualname__}",
            **spec,
            "weights_sha256": _file_digest(weights_tmp),
        }
        config["config_sha256"] = config_digest(config)
        config_tmp.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(weights_tmp, directory / WEIGHTS_NAME)
        os.replace(config_tmp, directory / CONFIG_NAME)
    finally:
        for path in (weights_tmp, config_tmp):
            path.unlink(missing_ok=True)
    return directory


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _read_json(path: Path) -> Any:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise OSError(f"{path} could not be read: {error}") from error
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError as error:
        raise ValueError(f"{path} is not valid UTF-8 text: {error}") from None
    except (ValueError, RecursionError) as error:  # JSONDecodeError is a ValueError
        raise ValueError(f"{path} is not valid JSON: {error}") from None


def load_config(directory: str | Path) -> dict[str, Any]:
    """Read and validate ``config.json`` of a checkpoint directory, verifying its ``config_sha256``.

    Raises:
        FileNotFoundError: if the directory or its ``config.json`` does not exist.
        OSError: if the file cannot be read.
        ValueError: naming the file, if it is not a vqgen config of a format this version reads, or its content
            does not match its checksum.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"checkpoint directory {directory} does not exist")
    path = directory / CONFIG_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{directory} is not a vqgen checkpoint: {CONFIG_NAME} is missing")
    config = _read_json(path)
    if not isinstance(config, dict) or "format_version" not in config:
        raise ValueError(f"{path} has no 'format_version'; it was not written by vqgen.save_pretrained")
    version = config["format_version"]
    if isinstance(version, bool) or not isinstance(version, int) or version != FORMAT_VERSION:
        raise ValueError(
            f"{path} has checkpoint format {version!r}, but this vqgen ({_version()}) reads format "
            f"{FORMAT_VERSION}; upgrade vqgen or re-save the model"
        )
    if "config_sha256" in config:
        if config["config_sha256"] != config_digest(config):
            raise ValueError(
                f"{path} does not match its config_sha256: the file was damaged, or edited by hand. Restore it, or, "
                "if you edited it on purpose, delete the 'config_sha256' line to accept the edit"
            )
    else:
        warnings.warn(
            f"{path} has no config_sha256, so damage to it cannot be detected; re-save the model to add one",
            CheckpointWarning,
            stacklevel=3,
        )
    missing = [key for key in ("kind", "name", "config") if key not in config]
    if missing:
        raise ValueError(f"{path} lacks the keys {missing}")
    for key, wanted in (("kind", str), ("name", str), ("config", dict), ("weights_sha256", str)):
        if key in config and not isinstance(config[key], wanted):
            raise ValueError(f"{path}: {key!r} must be a {wanted.__name__}, got {config[key]!r}")
    unknown = sorted(set(config) - _KNOWN_KEYS)
    if unknown:
        warnings.warn(
            f"{path} has keys this vqgen ({_version()}) does not know: {unknown}; written by a newer vqgen "
            f"({config.get('vqgen_version')!r})? They are ignored",
            CheckpointWarning,
            stacklevel=3,
        )
    return config


def _drop_unknown_keys(value: Any, *, source: Path, where: str) -> Any:
    """``value`` with every key that its (nested) components' constructors do not take removed, with a warning."""
    if is_spec(value) and isinstance(value["config"], Mapping):
        kind, name = value["kind"], value["name"]
        try:
            accepted = list(inspect.signature(registry(kind).get(name).__init__).parameters)[1:]
        except (TypeError, ValueError):  # an unknown kind or name: building it reports that
            return value
        config, unknown = {}, []
        for key, item in value["config"].items():
            if key in accepted:
                config[key] = _drop_unknown_keys(item, source=source, where=f"{where}[{key!r}]")
            else:
                unknown.append(key)
        if unknown:
            place = f"at config{where}" if where else "at the top level"
            warnings.warn(
                f"{source}: the {kind} {name!r} {place} takes no {sorted(unknown)} in this vqgen ({_version()}); "
                "written by a newer version? Ignored: those options take their defaults",
                CheckpointWarning,
                stacklevel=4,
            )
        return {**value, "config": config}
    if isinstance(value, Mapping):
        return {key: _drop_unknown_keys(item, source=source, where=f"{where}[{key!r}]") for key, item in value.items()}
    if isinstance(value, list):
        return [_drop_unknown_keys(item, source=source, where=f"{where}[{i}]") for i, item in enumerate(value)]
    return value


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


def _dtype_kind(tensor: torch.Tensor) -> str:
    if tensor.dtype == torch.bool:
        return "bool"
    return "float" if tensor.is_floating_point() else "complex" if tensor.is_complex() else "integer"


def load_state_strict(
    module: nn.Module, state: dict[str, torch.Tensor], *, source: str, config_source: str | None = None
) -> None:
    """``module.load_state_dict(state)``, but with one error that names every mismatched tensor (and both files:
    ``source`` of the weights, ``config_source`` of the configuration the module was built from)."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mis_shaped = [
        f"{key}: checkpoint {tuple(state[key].shape)} vs model {tuple(expected[key].shape)}"
        for key in sorted(set(state) & set(expected))
        if state[key].shape != expected[key].shape
    ]
    # Floats may change precision on loading (a bf16 checkpoint into a float32 model); other kinds never convert.
    mis_typed = [
        f"{key}: checkpoint {state[key].dtype} vs model {expected[key].dtype}"
        for key in sorted(set(state) & set(expected))
        if _dtype_kind(state[key]) != _dtype_kind(expected[key])
    ]
    if missing or unexpected or mis_shaped or mis_typed:
        described = f"the configuration in {config_source}" if config_source else "this model's configuration"
        lines = [f"the weights in {source} do not fit {described}:"]
        if missing:
            lines.append(f"  missing from the checkpoint: {missing}")
        if unexpected:
            lines.append(f"  not in the model: {unexpected}")
        if mis_shaped:
            lines.append("  shape mismatches: " + "; ".join(mis_shaped))
        if mis_typed:
            lines.append("  dtype mismatches: " + "; ".join(mis_typed))
        raise ValueError("\n".join(lines))
    module.load_state_dict(state, strict=True)


def from_pretrained(directory: str | Path, *, device: str | torch.device | None = None) -> nn.Module:
    """Rebuild the component saved in ``directory`` and load its weights (strictly), optionally onto ``device``.

    Both files are verified against the checksums in ``config.json`` first (see the module docstring).

    Raises:
        FileNotFoundError: if a file is missing.
        OSError: if a file cannot be read.
        ValueError: naming the file at fault, for any damaged, mismatched or foreign checkpoint.
    """
    directory = Path(directory)
    config = load_config(directory)
    _check_directory_files(directory)
    config_path, weights = directory / CONFIG_NAME, directory / WEIGHTS_NAME
    if "weights_sha256" in config and _file_digest(weights) != config["weights_sha256"]:
        raise ValueError(
            f"{weights} does not match the weights_sha256 in {config_path}: the weights were damaged, replaced, or "
            "saved with another config"
        )
    spec = {key: config[key] for key in ("kind", "name", "config")}
    spec = _drop_unknown_keys(spec, source=config_path, where="")
    try:
        module = build_from_spec(spec)
    except (TypeError, ValueError, KeyError) as error:
        raise ValueError(f"{config_path} describes a model this vqgen cannot build: {error}") from error
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError) as error:
        raise ValueError(f"{weights} is corrupt or not a safetensors file: {error}") from None
    load_state_strict(module, state, source=str(weights), config_source=str(config_path))
    if device is not None:
        module = module.to(device)
    return module.eval()
