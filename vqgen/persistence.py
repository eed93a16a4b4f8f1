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
import json
import warnings
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .atomic import (
    file_sha256,
    remove_temporaries,
    replace,
    sync_directory,
    write_error,
    write_temporary,
)
from .checkpoint_files import (
    CONFIG_NAME,
    FORMAT_VERSION,
    KNOWN_KEYS,
    WEIGHTS_NAME,
    _version,
    config_digest,
    read_json,
    roll_forward,
)
from .config import CheckpointWarning, Configurable, drop_unknown_keys
from .registry import build_from_spec
from .state_loading import load_state_strict

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

_OTHER_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".pkl")


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
        roll_forward(directory, saving=True)  # before the stale temporary files go: one may be the config
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
    path = roll_forward(directory)
    if not path.is_file():
        raise FileNotFoundError(f"{directory} is not a vqgen checkpoint: {CONFIG_NAME} is missing")
    config = read_json(path)
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
    unknown = sorted(set(config) - KNOWN_KEYS)
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
