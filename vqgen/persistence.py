"""Save and load any registered component, or composition of components, as a directory.

A checkpoint directory holds two files (and may hold others: a run's ``metrics.json``, ``train_state/``, ...)::

    config.json         {"format_version": 1, "vqgen_version", "class", "kind", "name", "config": {...},
                         "weights_sha256", "config_sha256"}
    model.safetensors   the state dict (tensors only: loading never executes code, unlike pickle)

``from_pretrained`` rebuilds the component from its spec ([`vqgen.build_from_spec`][vqgen.build_from_spec]) and loads
the weights with a strict check that names every missing, unexpected or mis-shaped tensor.

**Integrity.** ``weights_sha256`` is the SHA-256 of ``model.safetensors``; ``config_sha256`` that of the canonical
JSON of every other key of ``config.json`` (``sort_keys``, no whitespace). Loading verifies both before building
anything, so a damaged or mismatched file is a ``ValueError`` naming it, never a model that silently differs from the
one saved. A ``config.json`` edited by hand fails the check; delete its ``config_sha256`` line to accept the edit
(loading then warns that the config is unverified). Checkpoints without the two keys (written before they existed)
load with that warning.

**Atomic saves: a journal with roll-forward.** A directory always holds either the old or the new complete
checkpoint, whenever the saving process is killed (or the machine loses power). The directory cannot be swapped in
one rename, because it is shared with other files, so a save goes:

1. finish an earlier save that was killed between its two renames (the roll-forward below), then delete the temporary
   files that killed saves left (``config.json.tmp-*``, ``model.safetensors.tmp-*``);
2. write the new weights to ``model.safetensors.tmp-PID-XXXXXXXX`` and ``fsync`` it;
3. write the new config, which carries the new weights' SHA-256 and its own ``config_sha256``, to
   ``config.json.tmp-PID-XXXXXXXX`` and ``fsync`` it; ``fsync`` the directory (the journal entry is now durable);
4. rename the weights over ``model.safetensors``, then the config over ``config.json``; ``fsync`` the directory.

Killed before the first rename of step 4, the directory holds the old checkpoint (plus stale temporary files).
Killed between the two renames, it holds the new weights beside the old config, which no longer matches them: a
loader (``from_pretrained``, ``load_config``, and step 1 of the next save) that sees ``config.json`` not matching
``model.safetensors`` rolls forward: it takes the pending config of the interrupted save — a complete
``config.json.tmp-*`` that passes its own ``config_sha256`` and whose ``weights_sha256`` is that of the weights on
disk — and renames it into place where the directory is writable, or else reads it where it is. The next save rolls
forward before it deletes anything, so a save killed early cannot remove the only config that matches the weights.
Looking for a pending config costs one directory listing; the weights are hashed again only when one is there. Two
processes must not save into one directory at once.

A failed write (a full disk, a writer's ``SafetensorError``) is an ``OSError`` whose one line names the file (``could
not write runs/a/model.safetensors: no space left on device``); its temporary files are removed, and the directory
keeps the previous checkpoint (or the new one, by roll-forward, when only the last rename failed). See
[`vqgen.atomic`][vqgen.atomic].

**Forward compatibility** (as diffusers' ``from_config``): a key this vqgen does not know — at the top of
``config.json`` or in the config of any (nested) component, as written by a newer vqgen with a new option — is ignored
with a [`CheckpointWarning`][CheckpointWarning] naming it, and the option takes this version's default. A different
``format_version`` is refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .atomic import (
    TEMPORARY_MARK,
    file_sha256,
    remove_temporaries,
    replace,
    sync_directory,
    write_error,
    write_temporary,
)
from .config import CheckpointWarning, Configurable, drop_unknown_keys
from .registry import build_from_spec

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
"""The file of a checkpoint directory that holds the spec and the checksums."""

WEIGHTS_NAME = "model.safetensors"
"""The file of a checkpoint directory that holds the weights."""

FORMAT_VERSION = 1
"""The ``format_version`` this vqgen writes and reads; another is refused."""

_OTHER_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".pkl")
logger = logging.getLogger(__name__)
_KNOWN_KEYS = frozenset(
    {"format_version", "vqgen_version", "class", "kind", "name", "config", "weights_sha256", "config_sha256"}
)


def _version() -> str:
    from . import __version__

    return __version__


def config_digest(config: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of ``config`` without its ``config_sha256`` key.

    Args:
        config: the content of a ``config.json``.

    Returns:
        64 hexadecimal digits: what ``config["config_sha256"]`` holds in a file that is intact.

    Examples:
        >>> from vqgen.persistence import config_digest
        >>> config_digest({"b": 1, "a": [2]}) == config_digest({"a": [2], "b": 1, "config_sha256": "..."})
        True
    """
    body = {key: value for key, value in config.items() if key != "config_sha256"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def save_pretrained(module: nn.Module, directory: str | Path, *, overwrite: bool = True) -> Path:
    """Write ``module`` to ``directory`` as ``config.json`` + ``model.safetensors``; returns the directory.

    The save is atomic (see the module docstring): the directory holds the old or the new complete checkpoint
    whenever the process is killed; temporary files of earlier killed saves are removed.

    Args:
        module: a registered vqgen component (anything with ``to_spec()``).
        directory: created if missing.
        overwrite: if False, refuse to replace an existing checkpoint.

    Returns:
        ``directory``, as a ``Path``.

    Raises:
        TypeError: if ``module`` is not a vqgen component, or is not registered (it could not be rebuilt by name).
        FileExistsError: if ``overwrite`` is False and ``directory`` already holds a checkpoint.
        OSError: one line naming the file that could not be written (``no space left on device``, ...).

    Examples:
        >>> import json, vqgen
        >>> prior = vqgen.build("prior", "rnn", num_categories=16, hidden_size=8)
        >>> path = vqgen.save_pretrained(prior, "runs/rnn")
        >>> sorted(p.name for p in path.iterdir())
        ['config.json', 'model.safetensors']
        >>> config = json.loads((path / "config.json").read_text())
        >>> config["kind"], config["name"], config["config"]["hidden_size"]
        ('prior', 'rnn', 8)
        >>> vqgen.save_pretrained(prior, "runs/rnn", overwrite=False)
        Traceback (most recent call last):
        FileExistsError: runs/rnn already holds a checkpoint; pass overwrite=True to replace it
    """
    if not isinstance(module, Configurable) or not isinstance(module, nn.Module):
        raise TypeError(f"save_pretrained needs a vqgen component, got {type(module).__name__}")
    spec = module.to_spec()
    directory = Path(directory)
    config_path, weights_path = directory / CONFIG_NAME, directory / WEIGHTS_NAME
    if directory.is_dir():
        _roll_forward(directory, saving=True)  # before the stale temporary files go: one may be the config
    if not overwrite and config_path.exists():
        raise FileExistsError(f"{directory} already holds a checkpoint; pass overwrite=True to replace it")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise write_error(directory, error, action="create") from error
    remove_temporaries(weights_path)
    remove_temporaries(config_path)
    # Clone so that tied or sliced tensors are stored as independent, contiguous blocks.
    state = {key: value.detach().to("cpu").contiguous().clone() for key, value in module.state_dict().items()}
    weights_tmp = write_temporary(weights_path, lambda path: save_file(state, str(path), metadata={"format": "pt"}))
    config_tmp = None
    try:
        config = {
            "format_version": FORMAT_VERSION,
            "vqgen_version": _version(),
            "class": f"{type(module).__module__}.{type(module).__qualname__}",
            **spec,
            "weights_sha256": file_sha256(weights_tmp),
        }
        config["config_sha256"] = config_digest(config)
        config_tmp = write_temporary(config_path, json.dumps(config, indent=2, sort_keys=True) + "\n")
        sync_directory(directory)  # both temporary files are on disk under their names: the journal is complete
        replace(weights_tmp, weights_path)
        weights_tmp = None  # from here on, the pending config completes the save (roll-forward), so it stays
        replace(config_tmp, config_path)
        sync_directory(directory)
    finally:
        if weights_tmp is not None:  # failed before the first rename: the old checkpoint stands, unchanged
            for path in (weights_tmp, config_tmp):
                if path is not None:
                    with contextlib.suppress(OSError):
                        path.unlink()
    return directory


def _recorded_weights_digest(path: Path, *, verified: bool) -> str | None:
    """The ``weights_sha256`` that the config file ``path`` records; ``None`` if it records none, cannot be read or
    (``verified``) does not pass its own ``config_sha256``."""
    try:
        config = json.loads(path.read_bytes().decode("utf-8"), parse_constant=_reject_constant)
        if not isinstance(config, dict) or (verified and config.get("config_sha256") != config_digest(config)):
            return None
    except (OSError, ValueError, RecursionError):  # unreadable, torn or not JSON: not a finished journal entry
        return None
    digest = config.get("weights_sha256")
    return digest if isinstance(digest, str) else None


def _roll_forward(directory: Path, *, saving: bool = False) -> Path:
    """The config file to read: ``config.json``, or the pending config of a save that was killed between renaming
    the weights and renaming the config, which is renamed into place where the directory is writable. Where it is
    not, a load reads the pending config where it is, and a save (``saving``) stops with an ``OSError``: it would
    otherwise delete that config as a stale temporary file."""
    config_path, weights_path = directory / CONFIG_NAME, directory / WEIGHTS_NAME
    pending = sorted(directory.glob(CONFIG_NAME + TEMPORARY_MARK + "*"))
    if not pending or not weights_path.is_file():
        return config_path
    digest = file_sha256(weights_path)
    if _recorded_weights_digest(config_path, verified=False) == digest:
        return config_path  # config.json matches: the temporary files are of a save killed before its renames
    found = next((path for path in pending if _recorded_weights_digest(path, verified=True) == digest), None)
    if found is None:
        return config_path  # nothing to finish: loading reports what is wrong with config.json
    try:
        os.replace(found, config_path)
    except OSError as error:
        if saving:
            raise write_error(config_path, error) from error
        logger.warning("%s: reading the config of an interrupted save from %s (%s)", directory, found.name, error)
        return found
    logger.info("%s: completed an interrupted save (renamed %s to %s)", directory, found.name, CONFIG_NAME)
    try:
        sync_directory(directory)
    except OSError:
        if saving:
            raise
        logger.debug("%s: the completed rename is not synced to disk yet", directory, exc_info=True)
    return config_path


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

    Completes a save that was killed between its two renames first (see the module docstring).

    Args:
        directory: a folder written by [`save_pretrained`][save_pretrained].

    Returns:
        The whole ``config.json``: ``format_version``, ``vqgen_version``, ``class``, ``kind``, ``name``, ``config``
        (the constructor's arguments), ``weights_sha256`` and ``config_sha256``.

    Raises:
        FileNotFoundError: if the directory or its ``config.json`` does not exist.
        OSError: if the file cannot be read.
        ValueError: naming the file, if it is not a vqgen config of a format this version reads, or its content
            does not match its checksum.

    Examples:
        >>> import vqgen
        >>> vqgen.build("quantizer", "vq", num_codes=8, dim=4).save_pretrained("runs/vq")
        >>> config = vqgen.load_config("runs/vq")
        >>> config["kind"], config["name"], config["config"]["num_codes"]
        ('quantizer', 'vq', 8)
        >>> vqgen.load_config("runs/none")
        Traceback (most recent call last):
        FileNotFoundError: checkpoint directory runs/none does not exist
    """
    return _verified_config(Path(directory))[0]


def _verified_config(directory: Path) -> tuple[dict[str, Any], Path]:
    """[`load_config`][load_config], and the file read: ``config.json``, or the pending config of an interrupted
    save where the directory is read-only (warnings point at the caller of ``load_config``/``from_pretrained``)."""
    if not directory.is_dir():
        raise FileNotFoundError(f"checkpoint directory {directory} does not exist")
    path = _roll_forward(directory)
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
    return config, path


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

    Args:
        directory: a folder written by [`save_pretrained`][save_pretrained].
        device: where to put the weights (default: the CPU).

    Returns:
        The component (its class is recorded in the checkpoint), in eval mode.

    Raises:
        FileNotFoundError: if a file is missing.
        OSError: if a file cannot be read.
        ValueError: naming the file at fault, for any damaged, mismatched or foreign checkpoint.

    Examples:
        >>> import torch, vqgen
        >>> prior = vqgen.build("prior", "rnn", num_categories=16, hidden_size=8)
        >>> _ = vqgen.save_pretrained(prior, "runs/rnn")
        >>> loaded = vqgen.from_pretrained("runs/rnn")
        >>> type(loaded).__name__, loaded.training
        ('RNNPrior', False)
        >>> grids = torch.randint(16, (2, 1, 3, 3))
        >>> torch.equal(loaded.log_prob(grids), prior.eval().log_prob(grids))
        True
    """
    directory = Path(directory)
    config, config_path = _verified_config(directory)
    _check_directory_files(directory)
    weights = directory / WEIGHTS_NAME
    if "weights_sha256" in config and file_sha256(weights) != config["weights_sha256"]:
        raise ValueError(
            f"{weights} does not match the weights_sha256 in {config_path}: the weights were damaged, replaced, or "
            "saved with another config"
        )
    spec = {key: config[key] for key in ("kind", "name", "config")}
    spec = drop_unknown_keys(spec, source=config_path)
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
