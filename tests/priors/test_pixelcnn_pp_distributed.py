"""PixelCNN++ under a torchrun-style launch: two gloo processes train it to the weights one process reaches on the
same global batches (the mixture head's every parameter gets a gradient, as DistributedDataParallel needs)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[2]

SETUP = textwrap.dedent(
    """
    import torch, vqgen
    from vqgen.priors.pixelcnn_pp import PixelCNNpp

    def prior():
        torch.manual_seed(0)
        return vqgen.build("prior", "pixelcnn_pp", **{**PixelCNNpp.tiny_config(), "channels": 3, "num_categories": 32})

    def grids():
        return torch.randint(0, 32, (24, 3, 6, 6), generator=torch.Generator().manual_seed(1))

    OPTIONS = dict(epochs=1, lr=3e-3, seed=5, progress=False, max_steps=3, device="cpu")
    """
)

WORKER = SETUP + textwrap.dedent(
    """
    import os, sys
    from safetensors.torch import save_file
    from vqgen.training import fit_prior
    torch.set_num_threads(1)
    out, rank = sys.argv[1], int(os.environ["RANK"])
    model = prior()
    fit_prior(model, grids(), batch_size=4, **OPTIONS)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, f"{out}/rank{rank}.safetensors")
    if torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    """
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # two fresh Python processes importing torch: ~15 s on a busy 2-core machine
def test_two_gloo_processes_train_pixelcnn_pp_as_one_process_does(tmp_path):
    port, processes = free_port(), []
    for rank in range(2):
        env = {**os.environ, "PYTHONPATH": str(ROOT), "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2",
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}  # fmt: skip
        command = [sys.executable, "-c", WORKER, str(tmp_path)]
        processes.append(subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True))
    for rank, process in enumerate(processes):
        _, err = process.communicate(timeout=300)
        assert (tmp_path / f"rank{rank}.safetensors").is_file(), err  # its work done (gloo may abort at exit)
    ranks = [load_file(tmp_path / f"rank{r}.safetensors") for r in range(2)]
    namespace: dict = {}
    exec(SETUP, namespace)  # noqa: S102  (the workers' prior and data)
    from vqgen.training import fit_prior

    single = namespace["prior"]()
    fit_prior(single, namespace["grids"](), batch_size=8, **namespace["OPTIONS"])
    for key, value in single.state_dict().items():
        assert torch.equal(ranks[0][key], ranks[1][key]), key
        torch.testing.assert_close(ranks[0][key], value, rtol=1e-4, atol=1e-5, msg=key)
