"""Training throughput of 1 vs 2 gloo processes (DDP on the CPU) and the time to write a resumable training state.

Run with::

    pytest benchmarks/speed/test_training_throughput.py --benchmark-only -s

Throughput: a VQ-VAE (conv encoder/decoder, EMA quantizer, 16x16 grey images, 64 channels) trained for ``STEPS`` steps
of ``BATCH`` images per process after ``WARMUP`` steps, launched the way ``torchrun`` launches workers (``RANK``,
``WORLD_SIZE``, ``MASTER_ADDR``/``MASTER_PORT`` in the environment). Each process uses ``THREADS`` torch thread(s),
so two processes use twice the cores of one; a single process with two threads is measured too, as the fair
comparison on a two-core machine. Reported: steps/s of the slowest rank and images/s over all ranks.

Checkpoint write: :func:`vqgen.training.state.save_state` of a model and its Adam state (three tensors per
parameter) at two sizes, median of ``REPEATS`` writes (safetensors + JSON, fsync, rename), and the bytes written.

The figures are printed in the benchmark summary and written as ``training-throughput.json`` (see
``benchmarks.common``).
On a shared 2-core machine, DDP cannot show a speed-up: the gradient all-reduce and the second process compete for
the same two cores that one process with two threads already uses. The benchmark exists to measure the overhead and
to be run on machines with more cores or GPUs.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import torch

from benchmarks.common import ROOT, write_results
from vqgen.training.state import save_state

STEPS, WARMUP, BATCH, THREADS, REPEATS = 30, 5, 32, 1, 3

WORKER = textwrap.dedent(
    """
    import json, os, sys, time
    import torch, vqgen
    import torch.distributed as dist
    from vqgen.training import fit_vqvae
    from vqgen.training.engine import Task
    threads, steps, warmup, batch = map(int, sys.argv[1:5])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = vqgen.build(
        "model", "vqvae",
        encoder=vqgen.build("encoder", "conv", in_channels=1, hidden_channels=64, latent_dim=16),
        quantizer=vqgen.build("quantizer", "ema", num_codes=256, dim=16),
        decoder=vqgen.build("decoder", "conv", out_channels=1, hidden_channels=64, latent_dim=16),
    )
    world = int(os.environ.get("WORLD_SIZE", "1"))
    images = torch.randint(0, 256, (batch * world * (steps + warmup), 1, 16, 16), dtype=torch.uint8)
    times = []
    hook = lambda *_: times.append(time.perf_counter())
    model.register_forward_pre_hook(hook)
    fit_vqvae(model, images, epochs=1, batch_size=batch, device="cpu", progress=False, max_steps=steps + warmup)
    seconds = times[-1] - times[warmup]  # from the first timed step's start to the last step's start
    rank = int(os.environ.get("RANK", "0"))
    print(json.dumps({"rank": rank, "steps_per_second": (len(times) - 1 - warmup) / seconds}))
    """
)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(world: int, threads: int) -> dict:
    port, processes = _port(), []
    for rank in range(world):
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        if world > 1:
            env |= {"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world),
                    "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}  # fmt: skip
        args = [sys.executable, "-c", WORKER, str(threads), str(STEPS), str(WARMUP), str(BATCH)]
        processes.append(subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    reports = []
    for process in processes:
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err
        reports.append(json.loads(out.strip().splitlines()[-1]))
    slowest = min(r["steps_per_second"] for r in reports)
    return {"processes": world, "threads_each": threads, "steps_per_second": slowest,
            "images_per_second": slowest * BATCH * world}  # fmt: skip


def _state_write_seconds(parameters: int, directory: Path) -> tuple[float, int]:
    model = torch.nn.Linear(parameters // 1000, 1000)
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.randn(2, parameters // 1000)).sum().backward()
    optimizer.step()
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": 1}
    times = []
    for step in range(REPEATS):
        start = time.perf_counter()
        path = save_state(directory, state, step=step)
        times.append(time.perf_counter() - start)
    size = sum(f.stat().st_size for f in path.iterdir())
    return statistics.median(times), size


def test_ddp_throughput_and_checkpoint_write_time(benchmark, summary_line, tmp_path):
    results: dict = {}

    def measure() -> None:
        results["runs"] = [_launch(1, THREADS), _launch(2, THREADS), _launch(1, 2 * THREADS)]
        results["checkpoint"] = []
        for parameters in (1_000_000, 10_000_000):
            seconds, size = _state_write_seconds(parameters, tmp_path / f"p{parameters}")
            results["checkpoint"].append({"parameters": parameters, "seconds": seconds, "bytes": size})

    benchmark.pedantic(measure, rounds=1, iterations=1)
    for run in results["runs"]:
        summary_line(
            f"{run['processes']} process(es) x {run['threads_each']} thread(s): {run['steps_per_second']:.2f} steps/s, "
            f"{run['images_per_second']:.0f} images/s (batch {BATCH} per process)"
        )
    for item in results["checkpoint"]:
        summary_line(
            f"training state of {item['parameters'] / 1e6:.0f}M parameters + Adam: {item['seconds'] * 1000:.0f} ms, "
            f"{item['bytes'] / 1e6:.0f} MB"
        )
    write_results("training-throughput", results, steps=STEPS, warmup=WARMUP, batch=BATCH, threads_each=THREADS)
    assert all(run["steps_per_second"] > 0 for run in results["runs"])
