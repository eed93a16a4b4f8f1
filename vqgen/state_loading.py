"""Strict loading of a state dict: one error that names every missing, unexpected, mis-shaped or mis-typed tensor.

What [`from_pretrained`][vqgen.persistence.from_pretrained] and the training engine's resume load weights with.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["load_state_strict"]


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
