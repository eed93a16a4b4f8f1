"""The training-engine flags of ``fit-vqvae`` and ``fit-prior`` (spelt as in ``vqgen fit``), ``--levels`` for fsq, and
run files whose numbers are written as ``1e-3``."""

from __future__ import annotations

import json

import vqgen
from vqgen.cli import build_parser, main
from vqgen.cli.fit import resolve_run
from vqgen.cli.options import load_yaml

VQVAE = ["fit-vqvae", "--hidden", "8", "--latent-dim", "4", "--num-codes", "8", "--train-subset", "32"]
VQVAE += ["--eval-subset", "8", "--batch-size", "16", "--no-progress", "--num-images", "4"]
PRIOR = ["fit-prior", "--prior", "rnn", "--tiny", "--train-subset", "16", "--eval-subset", "8", "--batch-size", "8"]
PRIOR += ["--no-progress", "--num-samples", "0"]


def _steps(run) -> list[int]:
    return [record["step"] for record in json.loads((run / "metrics.json").read_text())["history"]]


def test_fit_vqvae_resumes_where_it_stopped(tmp_path):
    out = tmp_path / "vq"
    assert main([*VQVAE, "--max-steps", "2", "--epochs", "3", "-o", str(out)]) == 0
    assert (out / "train_state").is_dir()
    assert main([*VQVAE, "--max-steps", "4", "--epochs", "3", "--resume", str(out), "-o", str(out)]) == 0
    assert _steps(out)[-1] == 4  # continued from step 2, not restarted


def test_fit_prior_resumes_and_takes_seconds_and_precision(tmp_path):
    out = tmp_path / "prior"
    assert main([*PRIOR, "--max-steps", "2", "--save-every", "1", "--precision", "bf16", "-o", str(out)]) == 0
    settings = json.loads((out / "metrics.json").read_text())["settings"]
    assert settings["precision"] == "bf16" and settings["save_every"] == 1
    argv = [*PRIOR, "--max-steps", "3", "--max-seconds", "600", "--precision", "bf16", "--resume", str(out)]
    assert main([*argv, "-o", str(out)]) == 0
    assert _steps(out)[-1] == 3


def test_fsq_takes_levels(tmp_path):
    out = tmp_path / "fsq"
    argv = [*VQVAE[:5], *VQVAE[7:], "--quantizer", "fsq", "--levels", "4", "3", "--max-steps", "1", "-o", str(out)]
    assert "--num-codes" not in argv
    assert main(argv) == 0
    model = vqgen.from_pretrained(out)
    assert model.num_codes == 12 and list(model.config["quantizer"]["config"]["levels"]) == [4, 3]


def test_run_files_read_exponents_as_numbers():
    assert load_yaml("lr: 1e-3\nsteps: 2\nname: 1e3x\nx: 1.5") == {"lr": 0.001, "steps": 2, "name": "1e3x", "x": 1.5}
    args = build_parser().parse_args(["fit", "--set", "stage2.lr=2e-4", "-o", "out"])
    assert resolve_run(args)["stage2"]["lr"] == 0.0002


def test_a_process_group_the_command_joined_is_ended_with_it(monkeypatch, tmp_path):
    """torchrun's convention: every process destroys its group before exit; one the caller started stays."""
    import torch.distributed as dist

    import vqgen.cli.sample

    def join(args):  # what `setup` does under torchrun, here as a group of one
        dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
        return 0

    monkeypatch.setattr(vqgen.cli.sample, "run", join)
    assert main(["sample", "x"]) == 0
    assert not dist.is_initialized()

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store2'}", rank=0, world_size=1)
    try:
        monkeypatch.setattr(vqgen.cli.sample, "run", lambda args: 0)
        assert main(["sample", "x"]) == 0
        assert dist.is_initialized()  # the caller's group
    finally:
        dist.destroy_process_group()
