"""Atomic checkpoints: a save killed at any point leaves the old or the new complete checkpoint; a full disk is one
clear ``OSError`` and leaves the previous checkpoint, training state and metrics loadable.

The kill tests fork a child that performs the save with its file operations (``os.write``, ``os.fsync``,
``os.replace``, ``os.unlink``, ... and safetensors' ``save_file``) wrapped so that the N-th one ends the process with
``os._exit(9)`` (a write first writes half of its bytes: a torn write), for every N until the save completes; the
test process then loads what the child left.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors import SafetensorError
from torch import nn

import vqgen
import vqgen.persistence
import vqgen.training.state
from vqgen.atomic import write_atomic, write_error
from vqgen.persistence import CONFIG_NAME, WEIGHTS_NAME, save_pretrained
from vqgen.training.history import MetricsHistory
from vqgen.training.state import load_state, save_state

needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="the kill tests fork a child process")
ENOSPC_MESSAGE = "Error while serializing: I/O error: No space left on device (os error 28)"  # safetensors' words


def _model(num_codes: int, *, seed: int, dim: int = 8) -> nn.Module:
    torch.manual_seed(seed)
    return vqgen.build("quantizer", "vq", num_codes=num_codes, dim=dim)


def _same(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return a.to_spec() == b.to_spec() and sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _which(directory: Path, models: dict[str, nn.Module]) -> str:
    """The name of the model that ``directory`` loads as exactly, or why it is none of them."""
    try:
        loaded = vqgen.from_pretrained(directory)
    except (OSError, ValueError) as error:
        return f"unloadable: {error}"
    return next((name for name, model in models.items() if _same(loaded, model)), "another model")


def _temporaries(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if ".tmp-" in p.name)


def _arm(kill_at: int) -> None:
    """In the child: make the ``kill_at``-th file operation end the process (writes are torn: half, then exit)."""
    count = [0]

    def due() -> bool:
        count[0] += 1
        return count[0] == kill_at

    def wrap(module, name):
        real = getattr(module, name)

        def operation(*args, **kwargs):
            if due():
                os._exit(9)
            return real(*args, **kwargs)

        setattr(module, name, operation)

    for name in ("fsync", "replace", "rename", "unlink", "remove", "rmdir"):
        wrap(os, name)
    real_write = os.write

    def write(fd, data):
        if due():
            real_write(fd, bytes(data)[: len(data) // 2])
            os._exit(9)
        return real_write(fd, data)

    os.write = write
    for module in (vqgen.persistence, vqgen.training.state):
        real_save = module.save_file

        def save_file(tensors, filename, metadata=None, _real=real_save):
            if due():
                _real(tensors, filename, metadata=metadata)
                os.truncate(filename, os.path.getsize(filename) // 2)
                os._exit(9)
            return _real(tensors, filename, metadata=metadata)

        module.save_file = save_file


def _in_child(action: Callable[[], object], *, kill_at: int | None = None) -> int:
    """Run ``action`` in a forked child (dying at file operation ``kill_at``); returns its exit status (0: done)."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        status = 3
        try:
            torch.set_num_threads(1)  # a parallel region after fork() hangs where the parent ran a thread pool
            if kill_at is not None:
                _arm(kill_at)
            action()
            status = 0
        finally:
            os._exit(status)
    deadline = time.monotonic() + 60
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0:
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise AssertionError("the saving child hung")
        time.sleep(0.002)
    status = os.waitstatus_to_exitcode(done[1])
    assert status in (0, 9), f"the child failed (exit status {status})"
    return status


def _kill_at_every_step(template: Path, prefix: Path, action: Callable[[Path], object]) -> list[Path]:
    """Copies of ``template``, the N-th with ``action(copy)`` killed at its N-th file operation, up to the first
    copy where ``action`` completed (the last one returned)."""
    copies = []
    for kill_at in range(1, 200):
        copy = prefix.with_name(f"{prefix.name}-{kill_at:03d}")
        shutil.copytree(template, copy)
        copies.append(copy)
        if _in_child(lambda copy=copy: action(copy), kill_at=kill_at) == 0:
            return copies
    raise AssertionError("the save never completed")


def _between_renames(directory: Path) -> bool:
    """The new weights beside the old config: the state a save killed between its two renames leaves."""
    recorded = json.loads((directory / CONFIG_NAME).read_text()).get("weights_sha256")
    return recorded != hashlib.sha256((directory / WEIGHTS_NAME).read_bytes()).hexdigest()


@needs_fork
def test_a_save_killed_at_every_step_leaves_the_old_or_the_new_checkpoint(tmp_path):
    models = {"old": _model(16, seed=1), "new": _model(24, seed=2), "third": _model(32, seed=3)}
    template = tmp_path / "template"
    save_pretrained(models["old"], template)
    (template / "metrics.json").write_text('{"history": []}\n')  # a run's directory holds other files too
    first = _kill_at_every_step(template, tmp_path / "k", lambda d: save_pretrained(models["new"], d))
    assert len(first) >= 8, "every file operation of the save is a kill point"
    assert any(_between_renames(d) for d in first[:-1]), "a kill between the renames must have been tried"
    # A second save into each killed directory, itself killed at every step: it must finish (roll forward) the first
    # one before it deletes that one's temporary files. Copies are taken before anything loads (and repairs) them.
    second = {d: _kill_at_every_step(d, d.with_name(d.name + "-then"), lambda c: save_pretrained(models["third"], c))
              for d in first}  # fmt: skip

    outcomes = [_which(d, models) for d in first]
    cut = outcomes.index("new")
    assert outcomes == ["old"] * cut + ["new"] * (len(outcomes) - cut), outcomes
    assert not _temporaries(first[-1]) and (first[-1] / "metrics.json").read_text() == '{"history": []}\n'
    for killed, copies in second.items():
        before = _which(killed, models)
        then = [_which(c, models) for c in copies]
        cut = then.index("third")
        assert then == [before] * cut + ["third"] * (len(then) - cut), (killed.name, then)
        assert not _temporaries(copies[-1]), "the next complete save removes what killed saves left"
        assert (copies[-1] / "metrics.json").read_text() == '{"history": []}\n'


@needs_fork
def test_write_atomic_killed_at_every_step_leaves_the_old_or_the_new_file(tmp_path):
    template = tmp_path / "template"
    template.mkdir()
    (template / "metrics.json").write_text("old\n" * 1000)
    copies = _kill_at_every_step(template, tmp_path / "k", lambda d: write_atomic(d / "metrics.json", "new\n" * 2000))
    texts = [(d / "metrics.json").read_text() for d in copies]
    cut = texts.index("new\n" * 2000)
    assert texts == ["old\n" * 1000] * cut + ["new\n" * 2000] * (len(texts) - cut)
    assert any(_temporaries(d) for d in copies[:-1]) and not _temporaries(copies[-1])
    for copy in copies:  # the next write cleans up after the killed one
        write_atomic(copy / "metrics.json", "third\n")
        assert (copy / "metrics.json").read_text() == "third\n" and not _temporaries(copy)


def _saving_loop(directory: Path, models: list[nn.Module]) -> None:
    while True:
        for model in models:
            save_pretrained(model, directory)


@pytest.mark.slow  # 50 kills at random times: ~15 s
@needs_fork
def test_random_kills_during_a_saving_loop_never_leave_an_unloadable_checkpoint(tmp_path):
    models = {"a": _model(2048, seed=1, dim=64), "b": _model(2048, seed=2, dim=64)}
    directory = tmp_path / "run"
    save_pretrained(models["a"], directory)
    draw = random.Random(0)
    snapshots, mid_save = [], 0
    for kill in range(50):
        pid = os.fork()
        if pid == 0:
            try:
                torch.set_num_threads(1)  # as in _in_child
                _saving_loop(directory, list(models.values()))
            finally:
                os._exit(3)
        time.sleep(draw.uniform(0.02, 0.3))
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == -signal.SIGKILL
        mid_save += bool(_temporaries(directory))
        snapshots.append(shutil.copytree(directory, tmp_path / f"kill-{kill:02d}"))
    outcomes = [_which(s, models) for s in snapshots]
    assert [o for o in outcomes if o not in models] == []
    assert mid_save > 0, "some kills must land inside a save"


# ------------------------------------------------------------------------------------------------ roll-forward


def _interrupted_between_renames(tmp_path: Path) -> tuple[Path, nn.Module, nn.Module]:
    """A directory as a save killed between its renames leaves it: new weights, old config, pending new config."""
    old, new = _model(16, seed=1), _model(24, seed=2)
    directory, staged = tmp_path / "ckpt", tmp_path / "staged"
    save_pretrained(old, directory)
    save_pretrained(new, staged)
    shutil.copy(staged / WEIGHTS_NAME, directory / WEIGHTS_NAME)
    shutil.copy(staged / CONFIG_NAME, directory / f"{CONFIG_NAME}.tmp-4242-0badf00d")
    return directory, old, new


def test_loading_completes_a_save_interrupted_between_its_renames(tmp_path):
    directory, _, new = _interrupted_between_renames(tmp_path)
    assert _same(vqgen.from_pretrained(directory), new)
    assert not _temporaries(directory)  # the pending config was renamed into place
    assert json.loads((directory / CONFIG_NAME).read_text())["config"]["num_codes"] == 24


def test_load_config_rolls_forward_too(tmp_path):
    directory, _, _ = _interrupted_between_renames(tmp_path)
    assert vqgen.load_config(directory)["config"]["num_codes"] == 24


def test_a_read_only_directory_is_read_through_its_pending_config(tmp_path, monkeypatch):
    directory, _, new = _interrupted_between_renames(tmp_path)

    def refused(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(os, "replace", refused)
    assert _same(vqgen.from_pretrained(directory), new)
    assert _temporaries(directory) == [f"{CONFIG_NAME}.tmp-4242-0badf00d"]


def test_a_save_that_cannot_finish_an_interrupted_one_stops_and_keeps_it(tmp_path, monkeypatch):
    directory, _, new = _interrupted_between_renames(tmp_path)

    def refused(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(os, "replace", refused)
    with pytest.raises(OSError, match=f"could not write {directory / CONFIG_NAME}: permission denied"):
        save_pretrained(_model(32, seed=3), directory)
    monkeypatch.undo()
    assert _same(vqgen.from_pretrained(directory), new)  # the pending config was not deleted as stale


def test_a_stale_or_torn_pending_config_is_ignored(tmp_path):
    old = _model(16, seed=1)
    save_pretrained(old, tmp_path)
    pending = tmp_path / f"{CONFIG_NAME}.tmp-1-00000000"
    pending.write_text((tmp_path / CONFIG_NAME).read_text()[:50])  # a save killed while writing its config
    assert _same(vqgen.from_pretrained(tmp_path), old) and pending.exists()
    save_pretrained(old, tmp_path)
    assert not _temporaries(tmp_path)


def test_new_weights_without_a_matching_config_are_still_an_error(tmp_path):
    directory, _, _ = _interrupted_between_renames(tmp_path)
    pending = directory / f"{CONFIG_NAME}.tmp-4242-0badf00d"
    config = json.loads(pending.read_text())
    config["weights_sha256"] = "0" * 64  # passes no check: not a journal entry of these weights
    pending.write_text(json.dumps(config))
    with pytest.raises(ValueError, match="does not match the weights_sha256"):
        vqgen.from_pretrained(directory)


# ------------------------------------------------------------------------------------------------- disk full


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _safetensors_full(*args, **kwargs):
    raise SafetensorError(ENOSPC_MESSAGE)


def _nth(n: int, real: Callable, failure: Callable) -> Callable:
    calls = [0]

    def operation(*args, **kwargs):
        calls[0] += 1
        return failure() if calls[0] == n else real(*args, **kwargs)

    return operation


@pytest.mark.parametrize(
    "where",
    ["save_file raises SafetensorError", "os.write ENOSPC", "first os.fsync ENOSPC", "weights os.replace ENOSPC"],
)
def test_a_full_disk_is_one_line_naming_the_file_and_the_old_checkpoint_stays(tmp_path, monkeypatch, where):
    old, new = _model(16, seed=1), _model(24, seed=2)
    save_pretrained(old, tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    if where.startswith("save_file"):
        monkeypatch.setattr(vqgen.persistence, "save_file", _safetensors_full)
    elif where.startswith("os.write"):
        monkeypatch.setattr(os, "write", _enospc)
    elif where.startswith("first os.fsync"):
        monkeypatch.setattr(os, "fsync", _nth(1, os.fsync, _enospc))
    else:
        monkeypatch.setattr(os, "replace", _nth(1, os.replace, _enospc))
    with pytest.raises(OSError) as caught:
        save_pretrained(new, tmp_path)
    monkeypatch.undo()
    message = str(caught.value)
    assert message.startswith(f"could not write {tmp_path}") and message.endswith("no space left on device")
    assert "\n" not in message and caught.value.errno == errno.ENOSPC
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # no temporary files either
    assert _same(vqgen.from_pretrained(tmp_path), old)


def test_a_failure_after_the_weights_are_renamed_keeps_the_new_checkpoint(tmp_path, monkeypatch):
    old, new = _model(16, seed=1), _model(24, seed=2)
    save_pretrained(old, tmp_path)
    monkeypatch.setattr(os, "replace", _nth(2, os.replace, _enospc))  # the config's rename fails
    with pytest.raises(OSError, match=f"could not write {tmp_path / CONFIG_NAME}: no space left on device"):
        save_pretrained(new, tmp_path)
    monkeypatch.undo()
    assert _same(vqgen.from_pretrained(tmp_path), new)  # the pending config was kept, and completes the save


def test_a_full_disk_while_saving_a_training_state_keeps_the_previous_one(tmp_path, monkeypatch):
    save_state(tmp_path, {"step": 1, "w": torch.arange(10.0)}, step=1)
    monkeypatch.setattr(vqgen.training.state, "save_file", _safetensors_full)
    with pytest.raises(OSError) as caught:
        save_state(tmp_path, {"step": 2, "w": torch.arange(10.0) * 2}, step=2)
    assert str(caught.value) == f"could not write {tmp_path / 'step-000000002'}: no space left on device"
    monkeypatch.setattr(os, "fsync", _enospc)
    with pytest.raises(OSError, match="step-000000002: no space left on device"):
        save_state(tmp_path, {"step": 2, "w": torch.arange(10.0) * 2}, step=2)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-000000001"]
    assert torch.equal(load_state(tmp_path)["w"], torch.arange(10.0))


def test_a_failed_resave_of_the_same_step_puts_the_previous_state_back(tmp_path, monkeypatch):
    save_state(tmp_path, {"step": 5, "w": torch.zeros(3)}, step=5)
    monkeypatch.setattr(os, "replace", _nth(2, os.replace, _enospc))  # the swap: old aside, then the new one in
    with pytest.raises(OSError, match="step-000000005: no space left on device"):
        save_state(tmp_path, {"step": 5, "w": torch.ones(3)}, step=5)
    monkeypatch.undo()
    assert torch.equal(load_state(tmp_path / "step-000000005")["w"], torch.zeros(3))


def test_a_full_disk_while_writing_metrics_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "metrics.json"
    MetricsHistory([{"epoch": 1}]).save(path)
    monkeypatch.setattr(os, "write", _enospc)
    with pytest.raises(OSError, match=f"could not write {path}: no space left on device"):
        MetricsHistory([{"epoch": 1}, {"epoch": 2}]).save(path)
    monkeypatch.undo()
    assert json.loads(path.read_text())["history"] == [{"epoch": 1}] and not _temporaries(tmp_path)


def test_write_error_messages():
    assert str(write_error("a/b", SafetensorError(ENOSPC_MESSAGE))) == "could not write a/b: no space left on device"
    assert str(write_error("a/b", PermissionError(errno.EACCES, "Permission denied"))) == (
        "could not write a/b: permission denied"
    )
    assert str(write_error("a/b", OSError("disk\nfull"))) == "could not write a/b: disk full"
    assert write_error("a/b", SafetensorError(ENOSPC_MESSAGE)).errno == errno.ENOSPC


@pytest.fixture
def small_disk(tmp_path):
    """A 256 KiB tmpfs (needs the right to mount; skipped where there is none)."""
    mount = tmp_path / "small"
    mount.mkdir()
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        pytest.skip("cannot run mount")
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=True, timeout=10)


def test_a_really_full_disk(small_disk):
    old, big = _model(16, seed=1), _model(4096, seed=2, dim=32)  # 0.5 MiB of weights: more than the disk holds
    save_pretrained(old, small_disk / "model")
    save_state(small_disk / "train_state", {"w": torch.zeros(10)}, step=1)
    MetricsHistory([{"epoch": 1}]).save(small_disk / "metrics.json")
    with pytest.raises(OSError, match=r"could not write .*model\.safetensors: no space left on device"):
        save_pretrained(big, small_disk / "model")
    with pytest.raises(OSError, match=r"could not write .*step-000000002: no space left on device"):
        save_state(small_disk / "train_state", {"w": big.weight.detach()}, step=2)
    with pytest.raises(OSError, match=r"could not write .*metrics\.json: no space left on device"):
        MetricsHistory([{"epoch": 1, "big": "x" * 300_000}]).save(small_disk / "metrics.json")
    assert _same(vqgen.from_pretrained(small_disk / "model"), old) and not _temporaries(small_disk / "model")
    assert torch.equal(load_state(small_disk / "train_state")["w"], torch.zeros(10))
    assert json.loads((small_disk / "metrics.json").read_text())["history"] == [{"epoch": 1}]
