"""The training commands never mix two runs in one ``--output``: a fresh run into a folder holding another is refused
unless ``--overwrite``; ``--resume`` continues the run the folder holds; a stage 2 that had not saved yet restarts."""

from __future__ import annotations

import json
import logging
import shutil

from vqgen.cli import main
from vqgen.training.state import load_state

RUN = """
dataset: digits
train_subset: 32
eval_subset: 8
model:
  encoder: {name: conv, hidden_channels: 8, residual_channels: 4, latent_dim: 4, num_downsamples: 2}
  quantizer: {name: ema, num_codes: 16}
  prior: {name: gated_pixelcnn, hidden_channels: 8, num_layers: 2, head_channels: 16}
train: {progress: false, seed: 1, batch_size: 8}
"""
VQVAE = ["fit-vqvae", "--hidden", "8", "--latent-dim", "4", "--num-codes", "8", "--train-subset", "32"]
VQVAE += ["--eval-subset", "8", "--batch-size", "16", "--no-progress", "--num-images", "4"]


def fit(tmp_path, *argv: str) -> int:
    (tmp_path / "run.yaml").write_text(RUN)
    return main(["fit", "--config", str(tmp_path / "run.yaml"), "-o", str(tmp_path / "R"), *argv])


def steps(run, stage: str) -> list[int]:
    return [r["step"] for r in json.loads((run / stage / "metrics.json").read_text())["history"]]


def test_fit_a_shorter_fresh_run_is_refused_or_overwritten_and_resume_continues_it(tmp_path, capsys):
    run = tmp_path / "R"
    assert fit(tmp_path, "--set", "stage1.max_steps=2", "--set", "stage2.max_steps=6") == 0  # the longer run
    assert fit(tmp_path, "--max-steps", "2") == 1
    err = capsys.readouterr().err
    assert f"--output {run} already holds another run (config.json" in err and "pass --overwrite" in err
    assert steps(run, "stage2") == [4, 6]  # untouched

    assert fit(tmp_path, "--max-steps", "2", "--overwrite") == 0
    assert sorted(p.name for p in (run / "stage2" / "train_state").iterdir()) == ["step-000000002"]  # it survives
    new_run = load_state(run / "stage2")["run_id"]
    assert steps(run, "stage2") == [2]

    assert fit(tmp_path, "--resume", str(run), "--set", "stage1.max_steps=2", "--set", "stage2.max_steps=4") == 0
    assert steps(run, "stage1") == [2] and steps(run, "stage2") == [4]  # the new run, continued from step 2
    assert load_state(run / "stage2")["run_id"] == new_run


def test_fit_resume_restarts_a_stage_2_that_had_not_saved_yet(tmp_path, caplog):
    """A kill during the first stage-2 state write leaves only ``.tmp-*`` there: stage 2 starts afresh."""
    run = tmp_path / "R"
    assert fit(tmp_path, "--max-steps", "2") == 0
    states = run / "stage2" / "train_state"
    shutil.rmtree(states)
    (states / ".tmp-killed").mkdir(parents=True)
    with caplog.at_level(logging.INFO):
        assert fit(tmp_path, "--resume", str(run), "--max-steps", "2") == 0
    assert "stage 2 had not saved a training state" in caplog.text and "starts from scratch" in caplog.text
    assert sorted(p.name for p in states.iterdir()) == ["step-000000002"] and steps(run, "stage2") == [2]


def test_fit_vqvae_overwrite_replaces_the_earlier_run(tmp_path, capsys):
    out = tmp_path / "vq"
    assert main([*VQVAE, "--max-steps", "4", "-o", str(out)]) == 0
    assert main([*VQVAE, "--max-steps", "2", "-o", str(out)]) == 1
    assert "pass --overwrite to delete that run first" in capsys.readouterr().err
    assert main([*VQVAE, "--max-steps", "2", "--overwrite", "-o", str(out)]) == 0
    assert sorted(p.name for p in (out / "train_state").iterdir()) == ["step-000000002"]
