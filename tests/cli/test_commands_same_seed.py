"""Same seed, same weights: every training command, run twice with one seed, saves identical tensors.

The commands seed the generators (``vqgen.seed_everything``, as the engine does) before they build the model, so the
initial weights are the seed's too; each run here happens in the same process, after the first has moved the global
generators on.
"""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from vqgen.cli import main

VQVAE = ["fit-vqvae", "--dataset", "digits", "--train-subset", "64", "--eval-subset", "8", "--hidden", "8"]
VQVAE += ["--latent-dim", "4", "--num-codes", "16", "--batch-size", "16", "--max-steps", "3", "--keep", "last"]
VQVAE += ["--no-progress", "--num-images", "4"]
PRIOR = ["fit-prior", "--prior", "rnn", "--tiny", "--train-subset", "16", "--eval-subset", "8", "--batch-size", "8"]
PRIOR += ["--max-steps", "2", "--keep", "last", "--no-progress", "--num-samples", "0"]
RUN = """
dataset: digits
train_subset: 32
eval_subset: 8
model:
  encoder: {name: conv, hidden_channels: 8, residual_channels: 4, latent_dim: 4, num_downsamples: 2}
  quantizer: {name: ema, num_codes: 16}
  prior: {name: gated_pixelcnn, hidden_channels: 8, num_layers: 2, head_channels: 16}
train: {progress: false, seed: 3, max_steps: 2, batch_size: 16, keep: last}
"""


def assert_same_tensors(a, b) -> None:
    """Every tensor of the ``model.safetensors`` in folders ``a`` and ``b`` is equal (same keys, same values)."""
    first, second = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert sorted(first) == sorted(second)
    different = [key for key in first if not torch.equal(first[key], second[key])]
    assert not different, f"{len(different)} of {len(first)} tensors differ: {different[:5]}"


@pytest.mark.parametrize("command", ["fit-vqvae", "fit-prior", "fit"])
def test_same_seed_same_weights(command, tmp_path):
    (tmp_path / "run.yaml").write_text(RUN)
    argv = {"fit-vqvae": [*VQVAE, "--seed", "0"], "fit-prior": [*PRIOR, "--seed", "0"],
            "fit": ["fit", "--config", str(tmp_path / "run.yaml")]}[command]  # fmt: skip
    torch.manual_seed(123)  # whatever state the generators are in before: the seed decides
    assert main([*argv, "-o", str(tmp_path / "a")]) == 0
    assert main([*argv, "-o", str(tmp_path / "b")]) == 0
    assert_same_tensors(tmp_path / "a", tmp_path / "b")


@pytest.mark.slow  # two demos (a classifier and FIDs each): ~40 s on a busy 2-core machine
def test_demo_same_seed_same_weights(tmp_path):
    argv = ["demo", "--vqvae-epochs", "1", "--prior-epochs", "1", "--train-subset", "96", "--num-samples", "16"]
    for out in ("a", "b"):
        assert main([*argv, "--no-progress", "-o", str(tmp_path / out)]) == 0
    assert_same_tensors(tmp_path / "a" / "model", tmp_path / "b" / "model")
