"""DDP under a torchrun-style launch: two gloo processes equal one process on the same global batches; stops agree."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import vqgen
from vqgen.training import fit_prior, fit_vqvae

ROOT = Path(__file__).resolve().parents[2]
TINY = {"hidden_channels": 8, "residual_channels": 4, "num_downsamples": 1, "latent_dim": 4}

MODEL = textwrap.dedent(
    """
    import torch, vqgen
    TINY = {"hidden_channels": 8, "residual_channels": 4, "num_downsamples": 1, "latent_dim": 4}

    def model():
        torch.manual_seed(0)
        return vqgen.build(
            "model", "vqvae",
            encoder=vqgen.build("encoder", "conv", in_channels=1, **TINY),
            # EMA statistics are all-reduced by the quantizer; restarts draw from one rank's batch, so none here
            quantizer=vqgen.build("quantizer", "ema", num_codes=16, dim=4, restart_after=0),
            decoder=vqgen.build("decoder", "conv", out_channels=1, **TINY),
        )

    def images(n=40):
        return torch.randint(0, 256, (n, 1, 8, 8), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)

    OPTIONS = dict(epochs=2, lr=3e-3, seed=5, progress=False, max_steps=5, device="cpu")

    def transformer():  # a prior through the same engine: attention layers and a class embedding
        torch.manual_seed(0)
        return vqgen.build("prior", "transformer", num_categories=8, hidden_size=16, num_layers=2, num_heads=2,
                           num_classes=3)

    def grids(n=40):
        generator = torch.Generator().manual_seed(2)
        return torch.randint(0, 8, (n, 1, 3, 4), generator=generator), torch.randint(0, 3, (n,), generator=generator)
    """
)

WORKER = MODEL + textwrap.dedent(
    """
    import os, sys, json
    from safetensors.torch import save_file
    from torch.utils.data import IterableDataset
    from vqgen.training import fit_vqvae, fit_prior
    torch.set_num_threads(1)
    out, rank = sys.argv[1], int(os.environ["RANK"])
    m = model()
    history = fit_vqvae(m, images(), batch_size=4, checkpoint_dir=f"{out}/ckpt{rank}", **OPTIONS)
    save_file({k: v.contiguous() for k, v in m.state_dict().items()}, f"{out}/rank{rank}.safetensors")

    class Uneven(IterableDataset):  # rank 0 has 3 batches, rank 1 has 6: without agreement rank 1 would hang
        def __iter__(self):
            for _ in range(3 * (rank + 1)):
                yield torch.randint(0, 8, (2, 1, 4, 4))

    prior = vqgen.build("prior", "rnn", num_categories=8, hidden_size=8)
    uneven = fit_prior(prior, torch.utils.data.DataLoader(Uneven(), batch_size=None), epochs=2, progress=False,
                       device="cpu")
    tf, (codes, labels) = transformer(), grids()
    fit_prior(tf, codes, cond=labels, batch_size=4, **OPTIONS)
    save_file({k: v.contiguous() for k, v in tf.state_dict().items()}, f"{out}/transformer{rank}.safetensors")
    json.dump({"vqvae": list(history), "uneven_steps": uneven[-1]["step"]}, open(f"{out}/rank{rank}.json", "w"))
    # Tear the process group down before exit: left to the interpreter's shutdown, gloo's threads once aborted a
    # rank ("terminate called without an active exception", exit -6) after all its work was done.
    if torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    """
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(out: Path, world_size: int = 2) -> None:
    """Start ``world_size`` workers with the environment torchrun gives them; fail with their output if any fails."""
    port = free_port()
    processes = []
    for rank in range(world_size):
        env = {**os.environ, "PYTHONPATH": str(ROOT), "RANK": str(rank), "LOCAL_RANK": str(rank),
               "WORLD_SIZE": str(world_size), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}  # fmt: skip
        processes.append(
            subprocess.Popen([sys.executable, "-c", WORKER, str(out)], env=env, stderr=subprocess.PIPE, text=True)
        )
    for rank, process in enumerate(processes):
        try:
            _, err = process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            for p in processes:
                p.kill()
            pytest.fail("a rank hung: the processes did not agree on when to stop")
        # rank{N}.json is the worker's last write. A rank that wrote it and was then aborted at interpreter exit by
        # gloo's threads (SIGABRT, "terminate called without an active exception", seen twice in CI) did all its work.
        finished = (out / f"rank{rank}.json").is_file()
        assert process.returncode == 0 or (process.returncode == -signal.SIGABRT and finished), err


@pytest.mark.slow  # two fresh Python processes importing torch: ~15 s on a busy 2-core machine
def test_two_gloo_processes_equal_one_process_on_the_same_global_batches(tmp_path):
    launch(tmp_path)
    ranks = [load_file(tmp_path / f"rank{r}.safetensors") for r in range(2)]
    for key in ranks[0]:
        assert torch.equal(ranks[0][key], ranks[1][key]), key  # identical parameters and EMA statistics
    namespace: dict = {}
    exec(MODEL, namespace)  # noqa: S102  (the workers' model and data)
    single = namespace["model"]()
    history = fit_vqvae(single, namespace["images"](), batch_size=8, **namespace["OPTIONS"])
    for key, value in single.state_dict().items():
        torch.testing.assert_close(ranks[0][key], value, rtol=1e-4, atol=1e-5, msg=key)
    reports = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    # Epoch means are all-reduced: every rank records the figures of the global batches.
    assert [r["train"] for r in reports[0]["vqvae"]] == [r["train"] for r in reports[1]["vqvae"]]
    for key, value in history[-1]["train"].items():
        assert reports[0]["vqvae"][-1]["train"][key] == pytest.approx(value, rel=1e-4), key
    assert reports[0]["vqvae"][-1]["step"] == 5  # max_steps, agreed
    assert reports[0]["uneven_steps"] == reports[1]["uneven_steps"] == 6  # 3 batches a rank, 2 epochs
    transformers = [load_file(tmp_path / f"transformer{r}.safetensors") for r in range(2)]
    single = namespace["transformer"]()
    codes, labels = namespace["grids"]()
    fit_prior(single, codes, cond=labels, batch_size=8, **namespace["OPTIONS"])
    for key, value in single.state_dict().items():
        assert torch.equal(transformers[0][key], transformers[1][key]), key
        torch.testing.assert_close(transformers[0][key], value, rtol=1e-4, atol=1e-5, msg=key)
    assert (tmp_path / "ckpt0" / "metrics.json").is_file() and not (tmp_path / "ckpt1").exists()  # rank 0 writes


def test_nccl_or_cuda_where_absent_is_a_clear_error():
    torch.manual_seed(0)
    model = vqgen.build(
        "model", "vqvae", encoder=vqgen.build("encoder", "conv", in_channels=1, **TINY),
        quantizer=vqgen.build("quantizer", "vq", num_codes=8, dim=4),
        decoder=vqgen.build("decoder", "conv", out_channels=1, **TINY),
    )  # fmt: skip
    images = torch.zeros(8, 1, 8, 8, dtype=torch.uint8)
    with pytest.raises(ValueError, match="backend='nccl' needs CUDA devices"):
        fit_vqvae(model, images, device="cpu", backend="nccl", progress=False)
    with pytest.raises(ValueError, match="backend must be one of"):
        fit_vqvae(model, images, backend="mpi", progress=False)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            fit_vqvae(model, images, device="cuda", progress=False)
        with pytest.raises(ValueError, match="precision='fp16' needs a CUDA device"):
            fit_vqvae(model, images, device="cpu", precision="fp16", progress=False)
