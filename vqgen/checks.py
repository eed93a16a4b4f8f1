"""Input validation shared by all components.

Every check raises ``ValueError`` or ``TypeError`` with a message that names the argument, says what was given and
what was expected. Never ``assert`` for user input: asserts vanish under ``python -O``.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "check_finite",
    "check_image_size",
    "check_images",
    "check_indices",
    "check_latents",
    "check_positive",
    "check_probability",
    "check_tensor",
]


def check_tensor(x: object, *, name: str, ndim: int | None = None, min_ndim: int | None = None) -> Tensor:
    """Check that ``x`` is a tensor with the given rank; returns it."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {tuple(x.shape)}")
    if min_ndim is not None and x.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimensions, got shape {tuple(x.shape)}")
    return x


def check_finite(x: Tensor, *, name: str) -> None:
    """Raise if a floating tensor holds NaN or ±inf, saying how many."""
    if x.is_floating_point() and not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).sum())
        raise ValueError(f"{name} contains {bad} non-finite values (NaN or inf); check the inputs and learning rate")


def check_images(x: object, *, channels: int, name: str = "x") -> Tensor:
    """Check a float ``(B, channels, H, W)`` batch with finite values."""
    x = check_tensor(x, name=name, ndim=4)
    if not x.is_floating_point():
        raise TypeError(
            f"{name} must be a floating-point tensor (images scaled to [0, 1]), got {x.dtype}; "
            "convert uint8 images with x.float() / 255"
        )
    if x.shape[1] != channels:
        raise ValueError(f"{name} must have {channels} channels (axis 1), got shape {tuple(x.shape)}")
    check_finite(x, name=name)
    return x


def check_image_size(height: int, width: int, factor: int, *, name: str) -> None:
    """Raise unless both image sides are positive multiples of ``factor``."""
    if height < factor or width < factor or height % factor or width % factor:
        raise ValueError(
            f"{name} downsamples by {factor}, so image height and width must be multiples of {factor}; "
            f"got {height}x{width} (pad or resize the images, or use fewer downsampling stages)"
        )


def check_indices(x: object, *, num_categories: int, name: str = "x") -> Tensor:
    """Check an integer tensor with values in ``[0, num_categories)``."""
    x = check_tensor(x, name=name)
    if x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
        raise TypeError(
            f"{name} must hold integer category indices (int64), got {x.dtype}; "
            "pass codes or uint8 pixels as .long(), not images scaled to [0, 1]"
        )
    if x.numel():
        low, high = int(x.min()), int(x.max())
        if low < 0 or high >= num_categories:
            raise ValueError(f"{name} must lie in [0, {num_categories}), got values in [{low}, {high}]")
    return x


def check_positive(value: float, *, name: str, integer: bool = False) -> None:
    """Raise unless ``value`` is a number > 0 (and an int when ``integer``)."""
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise TypeError(f"{name} must be {'an int' if integer else 'a number'}, got {type(value).__name__}")
    if not value > 0:
        raise ValueError(f"{name} must be > 0, got {value}")


def check_probability(value: float, *, name: str, allow_zero: bool = False, allow_one: bool = True) -> None:
    """Raise unless ``value`` lies in ``(0, 1]`` (bounds adjustable)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    low_ok = value >= 0 if allow_zero else value > 0
    high_ok = value <= 1 if allow_one else value < 1
    if not (low_ok and high_ok):
        interval = ("[" if allow_zero else "(") + "0, 1" + ("]" if allow_one else ")")
        raise ValueError(f"{name} must lie in {interval}, got {value}")


def check_latents(z: object, dim: int) -> None:
    """Raise unless ``z`` is a non-empty floating ``(B, dim, *spatial)`` tensor of encoder outputs.

    Raises:
        TypeError: if ``z`` is not a floating-point tensor.
        ValueError: if axis 1 is not ``dim`` wide (naming the encoder's ``latent_dim``) or ``z`` is empty.
    """
    check_tensor(z, name="z", min_ndim=2)
    if not z.is_floating_point():
        raise TypeError(f"z must be a floating-point tensor of encoder outputs, got {z.dtype}")
    if z.shape[1] != dim:
        raise ValueError(
            f"z must have dim={dim} channels on axis 1 (B, D, *spatial), got {z.shape[1]} "
            f"(shape {tuple(z.shape)}); the encoder's latent_dim must equal the quantizer's dim"
        )
    if z.numel() == 0:
        raise ValueError(f"z must hold at least one vector, got shape {tuple(z.shape)}")


def check_cond(cond: object, *, batch: int, num_classes: int | None, cond_dim: int | None, owner: str) -> None:
    """Raise unless ``cond`` is what a prior named ``owner`` takes: ``None`` when unconditional, ``(batch,)`` integer
    labels in ``[0, num_classes)``, or ``(batch, cond_dim)`` finite float vectors.

    Raises:
        TypeError: if ``cond`` is not a tensor, or of the other kind.
        ValueError: if a condition is missing or unexpected, or its shape or values do not fit.
    """
    if num_classes is None and cond_dim is None:
        if cond is not None:
            raise ValueError(f"{owner} is unconditional, but a condition was given; pass cond=None")
        return
    if cond is None:
        wanted = f"{num_classes} class labels" if num_classes else f"vectors of size {cond_dim}"
        raise ValueError(f"{owner} is conditional and needs cond ({wanted}); got cond=None")
    cond = check_tensor(cond, name="cond")
    if cond.shape[0] != batch:
        raise ValueError(f"cond must have one row per example ({batch}), got shape {tuple(cond.shape)}")
    if num_classes is not None and not cond.is_floating_point():
        check_tensor(cond, name="cond", ndim=1)
        check_indices(cond, num_categories=num_classes, name="cond")
    elif cond_dim is not None and cond.is_floating_point():
        if cond.shape != (batch, cond_dim):
            raise ValueError(f"cond must have shape ({batch}, {cond_dim}), got {tuple(cond.shape)}")
        check_finite(cond, name="cond")
    else:
        wanted = "int64 class labels (B,)" if num_classes is not None else f"float vectors (B, {cond_dim})"
        raise TypeError(f"{owner} takes {wanted} as cond, got {cond.dtype} of shape {tuple(cond.shape)}")
