"""Same seed, same weights through the API (``fit_vqvae``, ``fit_prior``, ``TwoStageModel.fit``) and under a
torchrun-style launch of ``vqgen fit`` with two gloo processes: two runs save identical tensors, every one of them.

The API's promise is "the same seed and the same initial model": ``vqgen.seed_everything(seed)`` before building the
model gives the same initial model.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import vqgen
from vqgen.training import fit_prior, fit_vqvae

ROOT = Path(__file__).resolve().parents[2]
TINY = {"hidden_channels": 8, "residual_channels": 4, "num_downsamples": 1, "latent_dim": 4}
OPTIONS = {"seed": 7, "max_steps": 3, "batch_size": 8, "keep": "last", "progress": False, "device": "cpu"}


def images(n: int = 32) -> torch.Tensor:
    return torch.randint(0, 256, (n, 1, 8, 8), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)


def assert_same_tensors(a: Path, b: Path) -> None:
    """Every tensor of the ``model.safetensors`` in folders ``a`` and ``b`` is equal (same keys, same values)."""
    first, second = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert sorted(first) == sorted(second)
    different = [key for key in first if not torch.equal(first[key], second[key])]
    assert not different, f"{len(different)} of {len(first)} tensors differ: {different[:5]}"


def build_vqvae():
    return vqgen.build(
        "model", "vqvae", encoder=vqgen.build("encoder", "conv", in_channels=1, **TINY),
        quantizer=vqgen.build("quantizer", "ema", num_codes=16, dim=4, kmeans_init=True),
        decoder=vqgen.build("decoder", "conv", out_channels=1, **TINY),
    )  # fmt: skip


def test_fit_vqvae_and_fit_prior_same_seed_same_weights(tmp_path):
    for out in ("a", "b"):
        vqgen.seed_everything(OPTIONS["seed"])  # the public way to the same initial model
        fit_vqvae(build_vqvae(), images(), checkpoint_dir=tmp_path / out / "vqvae", **OPTIONS)
        vqgen.seed_everything(OPTIONS["seed"])
        prior = vqgen.build("prior", "rnn", num_categories=256, hidden_size=8, num_layers=1, embed_dim=4)
        fit_prior(prior, images(), checkpoint_dir=tmp_path / out / "prior", **OPTIONS)
    assert_same_tensors(tmp_path / "a" / "vqvae", tmp_path / "b" / "vqvae")
    assert_same_tensors(tmp_path / "a" / "prior", tmp_path / "b" / "prior")


def test_two_stage_fit_same_seed_same_weights(tmp_path):
    config = {
        "encoder": {"name": "conv", "in_channels": 1, **TINY},
        "quantizer": {"name": "ema", "num_codes": 16},
        "prior": {"name": "gated_pixelcnn", "hidden_channels": 8, "num_layers": 2, "head_channels": 8},
    }
    for out in ("a", "b"):
        vqgen.seed_everything(OPTIONS["seed"])
        model = vqgen.TwoStageModel.from_config(config)
        model.fit(images(), stage1=OPTIONS, stage2=OPTIONS)
        model.save_pretrained(tmp_path / out)
    assert_same_tensors(tmp_path / "a", tmp_path / "b")


RUN = """
dataset: digits
train_subset: 32
eval_subset: 8
model:
  encoder: {name: conv, hidden_channels: 8, residual_channels: 4, latent_dim: 4, num_downsamples: 2}
  quantizer: {name: ema, num_codes: 16, restart_after: 0}
  prior: {name: gated_pixelcnn, hidden_channels: 8, num_layers: 2, head_channels: 16}
train: {progress: false, seed: 3, max_steps: 2, batch_size: 8, keep: last, device: cpu}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun_fit(run: Path, out: Path, world_size: int = 2) -> None:
    """``vqgen fit --config run -o out`` in ``world_size`` processes with the environment torchrun gives them."""
    port = free_port()
    processes = []
    for rank in range(world_size):
        env = {**os.environ, "PYTHONPATH": str(ROOT), "RANK": str(rank), "LOCAL_RANK": str(rank),
               "WORLD_SIZE": str(world_size), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}  # fmt: skip
        argv = [sys.executable, "-m", "vqgen", "--threads", "1", "fit", "--config", str(run), "-o", str(out)]
        processes.append(subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True))
    for process in processes:
        try:
            _, err = process.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            for p in processes:
                p.kill()
            pytest.fail("a rank hung")
        # As in test_distributed: gloo's threads have aborted a finished process at exit (SIGABRT) in CI.
        finished = (out / "model.safetensors").is_file()
        assert process.returncode == 0 or (process.returncode == -signal.SIGABRT and finished), err


@pytest.mark.slow  # four fresh Python processes importing torch: ~30 s on a busy 2-core machine
def test_torchrun_fit_same_seed_same_weights(tmp_path):
    (tmp_path / "run.yaml").write_text(RUN)
    for out in ("a", "b"):
        torchrun_fit(tmp_path / "run.yaml", tmp_path / out)
    assert_same_tensors(tmp_path / "a", tmp_path / "b")
