"""Crash-safe resume: kill -9 mid-epoch and resume bit for bit; bad, foreign and mismatched states are clear errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

import vqgen
from vqgen.training import fit_vqvae
from vqgen.training.state import load_state, save_state

TINY = {"hidden_channels": 8, "residual_channels": 4, "num_downsamples": 1, "latent_dim": 4}
ROOT = Path(__file__).resolve().parents[2]

# The model, data and options of every run here; the child process of the kill test executes the same source.
SETUP = textwrap.dedent(
    """
    import torch, vqgen
    TINY = {"hidden_channels": 8, "residual_channels": 4, "num_downsamples": 1, "latent_dim": 4}

    def model(num_codes=16):
        torch.manual_seed(0)
        return vqgen.build(
            "model", "vqvae",
            encoder=vqgen.build("encoder", "conv", in_channels=1, **TINY),
            quantizer=vqgen.build("quantizer", "ema", num_codes=num_codes, dim=4, restart_after=2),
            decoder=vqgen.build("decoder", "conv", out_channels=1, **TINY),
        )

    def images(n=64, seed=0):
        g = torch.Generator().manual_seed(seed)
        x = torch.zeros(n, 1, 8, 8, dtype=torch.uint8)
        for i in range(n):
            top, left = torch.randint(0, 5, (2,), generator=g).tolist()
            x[i, :, top : top + 3, left : left + 4] = 255
        return x

    OPTIONS = dict(epochs=3, batch_size=8, lr=3e-3, seed=3, progress=False, save_every=3, schedule="cosine",
                   warmup_steps=2, grad_clip=1.0)
    """
)
namespace: dict = {}
exec(SETUP, namespace)  # noqa: S102  (our own source, shared with the child process)
model, images, OPTIONS = namespace["model"], namespace["images"], namespace["OPTIONS"]


def same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the killed child runs on one thread too: same sums, same bits
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow  # a fresh Python process importing torch: ~8 s on a busy 2-core machine
def test_kill_9_mid_epoch_then_resume_is_bit_identical(tmp_path, one_thread):
    run = tmp_path / "run"
    child = SETUP + textwrap.dedent(
        f"""
        import time
        from vqgen.training import fit_vqvae
        torch.set_num_threads(1)
        m = model()
        m.register_forward_pre_hook(lambda *_: time.sleep(0.05))  # slow steps: time to kill it mid-epoch
        fit_vqvae(m, images(), eval_data=images(16, seed=1), checkpoint_dir={str(run)!r}, **OPTIONS)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-c", child], env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        # 8 batches per epoch, a state every 3 steps: step 12 is 4 batches into epoch 2.
        while not (run / "train_state" / "step-000000012").exists():
            assert process.poll() is None, process.stderr.read().decode()
            assert time.monotonic() < deadline, "no training state written in time"
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
        process.wait()
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL
    state = load_state(run)
    assert state["step"] >= 12 and state["step"] < 24, state["step"]

    reference = model()
    expected = fit_vqvae(reference, images(), eval_data=images(16, seed=1), checkpoint_dir=tmp_path / "ref", **OPTIONS)
    resumed = model()
    history = fit_vqvae(resumed, images(), eval_data=images(16, seed=1), checkpoint_dir=run, resume=run, **OPTIONS)
    assert same_weights(resumed, reference)
    for got, want in zip(history, expected, strict=True):
        assert got["step"] == want["step"] and got["train"] == want["train"] and got["eval"] == want["eval"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert [r["epoch"] for r in metrics["history"]] == [1, 2, 3]


@pytest.mark.parametrize("ema_decay", [None, 0.9])
def test_resume_after_max_steps_continues_where_it_stopped(tmp_path, ema_decay):
    # A constant rate: with "cosine", max_steps sets the decay horizon, so a larger budget is another schedule.
    options = {**OPTIONS, "save_every": None, "save_states": True, "schedule": "constant", "ema_decay": ema_decay}
    reference = model()
    fit_vqvae(reference, images(), checkpoint_dir=tmp_path / "ref", **options)
    first = model()
    fit_vqvae(first, images(), checkpoint_dir=tmp_path, max_steps=5, **options)
    resumed = model()
    history = fit_vqvae(resumed, images(), checkpoint_dir=tmp_path, resume=tmp_path, **options)
    assert same_weights(resumed, reference) and history[-1]["step"] == 24


def test_truncated_or_foreign_state_is_a_clear_error_and_the_previous_one_loads(tmp_path):
    root = tmp_path / "train_state"
    save_state(root, {"step": 1, "weights": torch.arange(1000.0)}, step=1)
    newest = save_state(root, {"step": 2, "weights": torch.arange(1000.0) * 2}, step=2)
    tensors = newest / "tensors.safetensors"
    tensors.write_bytes(tensors.read_bytes()[:-100])  # a torn write
    with pytest.raises(ValueError, match=r"truncated or altered.*resume from .*step-000000001"):
        load_state(root)
    assert torch.equal(load_state(root / "step-000000001")["weights"], torch.arange(1000.0))

    (newest / "state.json").write_text('{"format": "something-else"}')
    with pytest.raises(ValueError, match="not a vqgen training state"):
        load_state(newest)
    (newest / "state.json").write_text('{"format": "vqgen-tr')
    with pytest.raises(ValueError, match="truncated or corrupt"):
        load_state(newest)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no training state"):
        load_state(tmp_path / "empty")
    # An interrupted save leaves only a temporary directory, which is ignored.
    (root / ".tmp-abc").mkdir()
    assert load_state(root / "step-000000001")["step"] == 1


def test_only_the_newest_states_are_kept_and_a_resave_replaces(tmp_path):
    for step in (1, 2, 3, 3):
        save_state(tmp_path, {"step": step, "x": torch.tensor([step])}, step=step, keep=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-000000002", "step-000000003"]
    assert load_state(tmp_path)["step"] == 3


def test_resuming_another_model_config_or_world_size_is_refused(tmp_path):
    options = {**OPTIONS, "save_every": None, "save_states": True, "epochs": 1, "checkpoint_dir": tmp_path}
    fit_vqvae(model(), images(16), **options)
    with pytest.raises(ValueError, match="holds another model"):
        fit_vqvae(model(num_codes=8), images(16), resume=tmp_path, **options)
    with pytest.raises(ValueError, match=r"other settings \(lr: 0.003 -> 0.01\)"):
        fit_vqvae(model(), images(16), resume=tmp_path, **{**options, "lr": 1e-2})
    with pytest.raises(ValueError, match="not of 'prior'"):
        vqgen.training.fit_prior(vqgen.build("prior", "rnn", num_categories=256), images(16), resume=tmp_path)
    state_json = next((tmp_path / "train_state").iterdir()) / "state.json"
    header = json.loads(state_json.read_text())
    header["state"]["__dict__"] = [
        [k, 2 if k == "world_size" else v] for k, v in header["state"]["__dict__"]
    ]  # as if written by two processes
    state_json.write_text(json.dumps(header))
    with pytest.raises(ValueError, match=r"written by 2 process\(es\), but this run has 1"):
        fit_vqvae(model(), images(16), resume=tmp_path, **options)
    with pytest.raises(ValueError, match="need checkpoint_dir"):
        fit_vqvae(model(), images(16), **{**options, "checkpoint_dir": None})
    with pytest.raises(FileNotFoundError, match="does not exist"):
        fit_vqvae(model(), images(16), resume=tmp_path / "missing", **options)


class _FailingImages(torch.utils.data.Dataset):
    """Items ``(uint8 (1, 8, 8), 0)``; reading item ``bad`` raises (a corrupt file), or kills the worker process."""

    def __init__(self, bad: int, kill: bool = False) -> None:
        self.data, self.bad, self.kill = images(), bad, kill  # no .images: streamed item by item

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int):
        if index == self.bad:
            if self.kill:
                os.kill(os.getpid(), signal.SIGKILL)  # the worker dies without a word
            raise OSError(f"image {index} is unreadable")
        return self.data[index], 0


@pytest.mark.parametrize("kill", [False, True], ids=["raises", "killed"])
def test_a_crashing_worker_is_a_clear_error_and_the_last_state_resumes(tmp_path, kill):
    options = {**OPTIONS, "save_every": 2, "schedule": "constant"}
    reference = model()
    fit_vqvae(reference, _FailingImages(bad=-1), checkpoint_dir=tmp_path / "ref", **options)
    fit_vqvae(model(), _FailingImages(bad=-1), checkpoint_dir=tmp_path, max_steps=10, **options)
    # The order depends only on (seed, epoch): break the 8th batch of epoch 2 (step 16), read after the resume.
    sampler = vqgen.training.batches.EpochBatchSampler(64, 8, seed=OPTIONS["seed"])
    sampler.set_epoch(2)  # epochs count from 1
    bad = list(sampler)[7][0]
    # torch words a killed worker two ways, depending on which of its checks sees the death first
    expected = "killed by signal|exited unexpectedly" if kill else f"image {bad} is unreadable"
    with pytest.raises((RuntimeError, OSError), match=expected):
        fit_vqvae(
            model(), _FailingImages(bad, kill), checkpoint_dir=tmp_path, resume=tmp_path, num_workers=2, **options
        )
    # The states written before the crash are intact (a killed worker is noticed while prefetching, a little early).
    step = load_state(tmp_path)["step"]
    assert step == 14 or (kill and 10 <= step < 14), step
    resumed = model()
    fit_vqvae(resumed, _FailingImages(bad=-1), checkpoint_dir=tmp_path, resume=tmp_path, **options)
    assert same_weights(resumed, reference)


def test_a_resume_mismatch_names_only_the_keys_that_changed(tmp_path):
    options = {**OPTIONS, "save_every": None, "save_states": True, "epochs": 1, "checkpoint_dir": tmp_path}
    fit_vqvae(model(), images(16), **options)
    with pytest.raises(ValueError) as error:
        fit_vqvae(model(num_codes=8), images(16), resume=tmp_path, **options)
    message = str(error.value)
    assert "holds another model (model.quantizer.config.num_codes: 16 -> 8)" in message
    assert "\n" not in message and len(message) < 300, message  # not two whole specs
    with pytest.raises(ValueError) as error:
        fit_vqvae(model(), images(16), resume=tmp_path, **{**options, "lr": 1e-2, "precision": "bf16"})
    message = str(error.value)
    assert "other settings (lr: 0.003 -> 0.01, precision: 'fp32' -> 'bf16')" in message
    assert "\n" not in message and len(message) < 300, message
