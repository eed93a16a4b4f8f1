"""Checkpoints of the priors as vqgen 0.1.0 wrote them load and give the same logits, losses and seeded samples.

``legacy/<prior>-<variant>/`` holds a checkpoint (``checkpoint/``) written by vqgen 0.1.0 before
the likelihood became the priors' one contract, and ``expected.safetensors``: what that version computed from it on
fixed inputs — the logits, the per-value NLL, the per-example log-likelihood, seeded samples (cached and naive, the
same) and a seeded completion of the first two rows. Running this file as a script (``python
tests/priors/test_legacy_checkpoints.py``) writes them again with the installed vqgen: do that only to add a prior
that did not exist then, never to make a failing comparison pass.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import vqgen
from vqgen.registry import registry

LEGACY = Path(__file__).parent / "legacy"
K, H, W, N = 11, 4, 5, 3
VARIANTS = {
    "grey": dict(channels=1),
    "colour": dict(channels=3),
    "parallel-class": dict(channels=3, channel_order="parallel", num_classes=4),
}
CASES = sorted(path.name for path in LEGACY.iterdir() if (path / "expected.safetensors").is_file())


def _inputs(prior) -> tuple[torch.Tensor, torch.Tensor | None]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randint(0, K, (N, prior.channels, H, W), generator=generator)
    cond = torch.randint(0, prior.num_classes, (N,), generator=generator) if prior.num_classes else None
    return x, cond


def _computed(prior) -> dict[str, torch.Tensor]:
    """What the fixtures record, computed by the installed vqgen."""
    x, cond = _inputs(prior)
    with torch.no_grad():
        logits = prior(x, cond)  # (N, K, C, H, W) for every prior of 0.1.0
        nll = torch.nn.functional.cross_entropy(logits.float(), x, reduction="none")  # (N, C, H, W)
        out = {"x": x, "logits": logits, "nll": nll, "log_prob": prior.log_prob(x, cond)}
    for method in ("cached", "naive"):
        out[f"sample_{method}"] = prior.sample(
            N, (H, W), cond, method=method, generator=torch.Generator().manual_seed(7)
        )
        out[f"complete_{method}"] = prior.sample(
            N, (H, W), cond, prefix=x[:, :, :2], method=method, generator=torch.Generator().manual_seed(8)
        )
    return out


def write() -> None:
    """Write a checkpoint and its expected outputs for every registered prior and variant (see the docstring)."""
    for name in vqgen.available("prior"):
        cls = registry("prior").get(name)
        for variant, overrides in VARIANTS.items():
            config = {**cls.tiny_config(), "num_categories": K, **overrides}
            if "height" in config:  # a prior tied to one grid size (the independent baseline's frequency table)
                config.update(height=H, width=W)
            try:
                torch.manual_seed(0)
                prior = vqgen.build("prior", name, **config).eval()
            except TypeError:  # a variant the prior does not take
                continue
            with torch.no_grad():
                for parameter in prior.parameters():
                    parameter.add_(0.05 * torch.randn_like(parameter))
            directory = LEGACY / f"{name}-{variant}"
            prior.save_pretrained(directory / "checkpoint")
            expected = {key: value.contiguous() for key, value in _computed(prior).items()}
            save_file(expected, str(directory / "expected.safetensors"))
            print("wrote", directory)


@pytest.mark.parametrize("case", CASES)
def test_legacy_checkpoint_gives_the_same_logits_losses_and_samples(case):
    prior = vqgen.from_pretrained(LEGACY / case / "checkpoint")
    expected = load_file(str(LEGACY / case / "expected.safetensors"))
    x, cond = _inputs(prior)
    assert torch.equal(x, expected["x"])
    with torch.no_grad():
        torch.testing.assert_close(prior.logits(x, cond), expected["logits"], rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(prior.nll(x, cond), expected["nll"], rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(prior.log_prob(x, cond), expected["log_prob"], rtol=1e-6, atol=1e-5)
    for method in ("cached", "naive"):
        sample = prior.sample(N, (H, W), cond, method=method, generator=torch.Generator().manual_seed(7))
        assert torch.equal(sample, expected[f"sample_{method}"]), f"{case}: seeded {method} samples changed"
        completion = prior.sample(
            N, (H, W), cond, prefix=x[:, :, :2], method=method, generator=torch.Generator().manual_seed(8)
        )
        assert torch.equal(completion, expected[f"complete_{method}"]), f"{case}: seeded {method} completion changed"


def test_every_prior_of_0_1_has_fixtures():
    assert {case.split("-")[0] for case in CASES} >= {"gated_pixelcnn", "pixelcnn", "rnn", "independent", "uniform"}


if __name__ == "__main__":
    sys.exit(write())
