"""What a checkpoint directory holds, and how its ``config.json`` is found and read: the file names, the format
version, the config's checksum, and the roll-forward of a save killed between its two renames (the journal described
in [`vqgen.persistence`][vqgen.persistence], which re-exports the public names).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .atomic import TEMPORARY_MARK, file_sha256, sync_directory, write_error

__all__ = ["CONFIG_NAME", "FORMAT_VERSION", "KNOWN_KEYS", "WEIGHTS_NAME", "config_digest", "read_json", "roll_forward"]

logger = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
"""The file of a checkpoint directory that holds the spec and the checksums."""

WEIGHTS_NAME = "model.safetensors"
"""The file of a checkpoint directory that holds the weights."""

FORMAT_VERSION = 1
"""The ``format_version`` this vqgen writes and reads; another is refused."""

KNOWN_KEYS = frozenset(
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


def recorded_weights_digest(path: Path, *, verified: bool) -> str | None:
    """The ``weights_sha256`` that the config file ``path`` records; ``None`` if it records none, cannot be read or
    (``verified``) does not pass its own ``config_sha256``."""
    try:
        config = read_json(path)
    except (OSError, ValueError):  # unreadable, torn or not JSON: not a finished journal entry
        return None
    if not isinstance(config, dict) or (verified and config.get("config_sha256") != config_digest(config)):
        return None
    digest = config.get("weights_sha256")
    return digest if isinstance(digest, str) else None


def roll_forward(directory: Path, *, saving: bool = False) -> Path:
    """The config file to read: ``config.json``, or the pending config of a save that was killed between renaming
    the weights and renaming the config, which is renamed into place where the directory is writable. Where it is
    not, a load reads the pending config where it is, and a save (``saving``) stops with an ``OSError``: it would
    otherwise delete that config as a stale temporary file."""
    config_path, weights_path = directory / CONFIG_NAME, directory / WEIGHTS_NAME
    pending = sorted(directory.glob(CONFIG_NAME + TEMPORARY_MARK + "*"))
    if not pending or not weights_path.is_file():
        return config_path
    digest = file_sha256(weights_path)
    if recorded_weights_digest(config_path, verified=False) == digest:
        return config_path  # config.json matches: the temporary files are of a save killed before its renames
    found = next((path for path in pending if recorded_weights_digest(path, verified=True) == digest), None)
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


def read_json(path: Path) -> Any:
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
