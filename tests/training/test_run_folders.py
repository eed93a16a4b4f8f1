"""An output folder is never silently mixed: run ids in the states, pruning per run, fresh runs refused in a folder
holding another run (``overwrite=True`` clears it), states of other versions, and outputs that are files."""

from __future__ import annotations

import json
import os

import pytest
import torch

import vqgen
from vqgen.training import fit_prior
from vqgen.training.state import has_state, load_state, save_state

GRIDS = torch.randint(0, 8, (32, 1, 3, 3), generator=torch.Generator().manual_seed(0))  # 4 batches of 8 an epoch
QUIET = {"batch_size": 8, "progress": False, "seed": 0, "device": "cpu", "save_states": True, "keep": "last"}


def rnn():
    vqgen.seed_everything(0)
    return vqgen.build("prior", "rnn", num_categories=8, hidden_size=8)


def names(root) -> list[str]:
    return sorted(p.name for p in root.iterdir())


def header(state) -> dict:
    return json.loads((state / "state.json").read_text())


def test_states_of_another_run_are_never_pruned(tmp_path):
    for step in (190, 200):
        save_state(tmp_path, {"x": torch.tensor([step])}, step=step, run_id="old")
    for step in (1, 2, 3):
        save_state(tmp_path, {"x": torch.tensor([step])}, step=step, run_id="new", keep=2)
    assert names(tmp_path) == ["step-000000002", "step-000000003", "step-000000190", "step-000000200"]
    assert header(tmp_path / "step-000000003")["run_id"] == "new"
    assert header(tmp_path / "step-000000003")["vqgen_version"] == vqgen.__version__
    with pytest.raises(ValueError, match=r"holds the states of 2 different runs \(.*run old: step-000000190, step"):
        load_state(tmp_path)  # the newest states belong to different runs: which one is meant?
    assert load_state(tmp_path / "step-000000003")["run_id"] == "new"  # one step directory is unambiguous


def test_a_shorter_fresh_run_in_an_old_folder_is_refused_or_overwritten_then_resumed(tmp_path):
    """The issue's scenario: a longer run, then a shorter fresh one into the same folder."""
    fit_prior(rnn(), GRIDS, checkpoint_dir=tmp_path, epochs=5, **QUIET)  # 20 steps
    old_run = load_state(tmp_path)["run_id"]
    before = names(tmp_path / "train_state")
    with pytest.raises(ValueError, match=f"checkpoint_dir {tmp_path} already holds another run .*overwrite=True"):
        fit_prior(rnn(), GRIDS, checkpoint_dir=tmp_path, epochs=1, **QUIET)
    assert names(tmp_path / "train_state") == before  # refused before touching anything

    fit_prior(rnn(), GRIDS, checkpoint_dir=tmp_path, max_steps=6, overwrite=True, **QUIET)
    states = names(tmp_path / "train_state")
    assert states == ["step-000000004", "step-000000006"]  # the new run's states survive; the old run is gone
    new_run = load_state(tmp_path)["run_id"]
    assert new_run != old_run and {header(tmp_path / "train_state" / s)["run_id"] for s in states} == {new_run}

    history = fit_prior(rnn(), GRIDS, checkpoint_dir=tmp_path, resume=tmp_path, max_steps=10, **QUIET)
    assert [r["step"] for r in history] == [4, 8, 10]  # the new run continued (its epoch 2 from step 6 on)
    assert load_state(tmp_path)["run_id"] == new_run  # the run id is kept on resume
    assert json.loads((tmp_path / "metrics.json").read_text())["history"][-1]["step"] == 10


def test_a_fresh_run_refuses_a_folder_holding_another_model(tmp_path):
    rnn().save_pretrained(tmp_path)  # a model, no training states
    with pytest.raises(ValueError, match=r"already holds another run \(config.json, model.safetensors\)"):
        fit_prior(rnn(), GRIDS, checkpoint_dir=tmp_path, max_steps=1, **QUIET)
    (tmp_path / "notes.txt").write_text("mine")
    fit_prior(rnn(), GRIDS, checkpoint_dir=tmp_path, max_steps=1, overwrite=True, **QUIET)
    assert (tmp_path / "notes.txt").read_text() == "mine"  # only what a run writes is deleted


def test_an_interrupted_first_save_holds_no_state(tmp_path):
    (tmp_path / "train_state" / ".tmp-abc").mkdir(parents=True)
    assert not has_state(tmp_path) and not has_state(tmp_path / "train_state")
    with pytest.raises(FileNotFoundError, match=r"only an interrupted first save \(.tmp-abc\)"):
        load_state(tmp_path)
    fit_prior(rnn(), GRIDS, checkpoint_dir=tmp_path, max_steps=1, **QUIET)  # a folder with nothing of a run: taken
    assert has_state(tmp_path) and has_state(tmp_path / "train_state")
    assert has_state(next((tmp_path / "train_state").iterdir()))


def test_a_state_of_another_version_warns_and_of_another_format_is_refused(tmp_path):
    fit_prior(rnn(), GRIDS, checkpoint_dir=tmp_path, max_steps=1, **QUIET)
    state_json = next((tmp_path / "train_state").iterdir()) / "state.json"
    saved = json.loads(state_json.read_text())
    state_json.write_text(json.dumps({**saved, "vqgen_version": "0.0.1"}))
    with pytest.warns(UserWarning, match=f"written by vqgen 0.0.1, this is vqgen {vqgen.__version__}"):
        assert load_state(tmp_path)["step"] == 1
    state_json.write_text(json.dumps({**saved, "format_version": 99}))
    with pytest.raises(ValueError, match=f"{state_json} has training-state format 99 .*resume with the vqgen"):
        load_state(tmp_path)


def test_an_output_path_that_is_a_file_is_refused_before_training(tmp_path):
    path = tmp_path / "out"
    path.write_text("a file")
    with pytest.raises(ValueError, match=f"checkpoint_dir {path} is a file, not a folder"):
        fit_prior(rnn(), GRIDS, checkpoint_dir=path, max_steps=1, **{**QUIET, "save_states": False})


def test_a_same_step_save_killed_between_its_two_renames_keeps_the_state(tmp_path):
    """Saving a step again moves the old copy aside (``.tmp-old-step-N``) before renaming the new one into place; a
    kill between the two renames must not lose that step: readers and the next save put it back."""
    from vqgen.training.state import find_state, load_state, save_state

    root = tmp_path / "train_state"
    first = save_state(root, {"step": 1, "weights": torch.ones(3)}, step=1, run_id="r")
    (root / ".tmp-new-copy").mkdir()  # the new copy, written but never renamed
    os.replace(first, root / f".tmp-old-{first.name}")  # killed here
    assert find_state(tmp_path) == first and torch.equal(load_state(tmp_path)["weights"], torch.ones(3))
    os.replace(first, root / f".tmp-old-{first.name}")
    save_state(root, {"step": 2, "weights": torch.zeros(3)}, step=2, run_id="r")
    assert sorted(p.name for p in root.iterdir()) == ["step-000000001", "step-000000002"]


def test_a_prune_killed_half_way_never_blocks_the_runs_resume(tmp_path):
    """Pruning moves an old state out of ``step-*`` before deleting it; a half-deleted state left by an older
    version (no ``state.json``) belongs to no run, so the run that owns the others still resumes into its folder."""
    from vqgen.training.state import run_ids

    root = tmp_path / "train_state"
    for step in (1, 2, 3):
        save_state(root, {"step": step}, step=step, keep=2, run_id="r")
    assert sorted(p.name for p in root.iterdir()) == ["step-000000002", "step-000000003"]  # no half-pruned copy
    half = root / "step-000000001"
    half.mkdir()
    (half / "tensors.safetensors").write_bytes(b"")  # state.json already deleted when the process was killed
    assert run_ids(tmp_path) == {"r"}
