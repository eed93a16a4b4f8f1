"""Under torch.distributed, EMA statistics, k-means and restarts are synchronised: a real 2-process gloo group."""

from __future__ import annotations

import os
import time

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

from vqgen.quantizers import EMAVectorQuantizer, VectorQuantizer

WORLD_SIZE = 2


def _batch(rank: int) -> torch.Tensor:
    """Different data on every rank: (4, 4, 6, 6) latents around a rank-dependent mean."""
    generator = torch.Generator().manual_seed(100 + rank)
    return torch.randn(4, 4, 6, 6, generator=generator) + 2.0 * rank


def _counting(restart, counter: torch.Tensor):
    def wrapper(dead: torch.Tensor, z: torch.Tensor) -> None:
        counter.add_(dead.numel())
        restart(dead, z)

    return wrapper


def _worker(rank: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD_SIZE)
    try:
        torch.manual_seed(1234 + rank)  # different random streams: only the synchronisation makes them agree
        # EMA without k-means and restarts: must equal one process that sees both batches
        plain_ema = EMAVectorQuantizer(num_codes=16, dim=4, restart_after=0)
        # every option that draws random numbers: k-means init and frequent restarts
        ema = EMAVectorQuantizer(num_codes=16, dim=4, kmeans_init=True, kmeans_iters=3, restart_after=1)
        vq = VectorQuantizer(num_codes=16, dim=4, kmeans_init=True, kmeans_iters=3, restart_after=1)
        for tensor in plain_ema.state_dict().values():  # same starting codebook on both ranks
            dist.broadcast(tensor, src=0)
        start = {k: v.clone() for k, v in plain_ema.state_dict().items()}
        restarted = torch.zeros(2, dtype=torch.long)  # codes restarted in ema, vq
        for i, module in enumerate((ema, vq)):
            module._restart = _counting(module._restart, restarted[i : i + 1])
        for step in range(3):
            z = _batch(rank) + step
            plain_ema(z)
            ema(z)
            vq(z)
        state = {f"plain_ema.{k}": v for k, v in plain_ema.state_dict().items()}
        state |= {f"start.{k}": v for k, v in start.items()}
        state |= {f"ema.{k}": v for k, v in ema.state_dict().items()}
        state |= {f"vq.{k}": v.detach() for k, v in vq.state_dict().items()}
        state["restarted"] = restarted
        save_file({k: v.contiguous() for k, v in state.items()}, os.path.join(out_dir, f"rank{rank}.safetensors"))
    finally:
        dist.destroy_process_group()


def test_two_process_gloo_group_keeps_codebooks_identical(tmp_path):
    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available")
    # fork where the platform has it (no re-import of torch in the children: ~1 s instead of ~5 s), else spawn
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    context = mp.start_processes(
        _worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD_SIZE, join=False, start_method=method
    )
    deadline = time.monotonic() + 120
    while not context.join(timeout=1):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail("the 2-process group did not finish within 120 s")
    states = [load_file(str(tmp_path / f"rank{rank}.safetensors")) for rank in range(WORLD_SIZE)]
    for key in states[0]:
        assert torch.equal(states[0][key], states[1][key]), f"{key} differs between ranks"
    # the synchronised EMA equals a single process quantizing both ranks' batches together
    single = EMAVectorQuantizer(num_codes=16, dim=4, restart_after=0)
    single.load_state_dict({k.removeprefix("start."): v for k, v in states[0].items() if k.startswith("start.")})
    for step in range(3):
        single(torch.cat([_batch(rank) + step for rank in range(WORLD_SIZE)]))
    for key, value in single.state_dict().items():
        torch.testing.assert_close(states[0][f"plain_ema.{key}"], value, msg=key)
    # the runs did initialise by k-means and did restart codes (restart_after=1), identically on both ranks
    assert bool(states[0]["ema.initialized"]) and bool(states[0]["vq.initialized"])
    assert (states[0]["restarted"] > 0).all()
