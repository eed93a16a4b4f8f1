"""Every row of the error table in docs/cli.md: the command exits with the status shown and says what is shown.

The table (between the ``errors-table`` markers) is the contract; ``CASES`` below gives each row the command line
that provokes it (and ``INJECTED`` the failure of the machine, such as a full disk, that a command line cannot). A row
without a case, or a case without a row, fails the test, so the table and the CLI cannot drift apart. Each case is
cheap: it fails on loading or checking, before any training, or at the first write after one training step.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import SafetensorError

import vqgen
import vqgen.persistence
import vqgen.training.state
from vqgen import TwoStageModel
from vqgen.cli import main
from vqgen.training.state import load_state

ROOT = Path(__file__).resolve().parents[2]
TABLE = re.compile(r"<!-- errors-table: start -->\n(?P<table>.*?)<!-- errors-table: end -->", re.S)


def documented_errors() -> dict[tuple[str, str], tuple[int, str]]:
    """``(command, bad input) -> (status, message fragment)`` from docs/cli.md's error table."""
    table = TABLE.search((ROOT / "docs" / "cli.md").read_text()).group("table")
    rows = {}
    for line in table.strip().splitlines()[2:]:  # after the header and the --- line
        command, situation, status, message = (cell.strip() for cell in line.strip().strip("|").split(" | "))
        rows[(command.strip("`"), situation)] = (int(status), message.strip("`"))
    return rows


@pytest.fixture(scope="module")
def paths(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("errors")
    run = root / "run.yaml"
    run.write_text(
        "dataset: digits\ntrain_subset: 32\neval_subset: 16\nmodel:\n"
        "  encoder: {name: conv, hidden_channels: 8, residual_channels: 4, latent_dim: 4, num_downsamples: 1}\n"
        "  quantizer: {name: vq, num_codes: 8}\n"
        "  prior: {name: gated_pixelcnn, hidden_channels: 8, num_layers: 2, head_channels: 8, num_classes: null}\n"
        f"train: {{max_steps: 1, batch_size: 16, progress: false}}\noutput: {root / 'two'}\n"
    )
    assert main(["fit", "--config", str(run)]) == 0
    shutil.copytree(root / "two", root / "full")
    encoder = vqgen.build("encoder", "conv", in_channels=1, hidden_channels=8, residual_channels=4, latent_dim=4)
    decoder = vqgen.build("decoder", "conv", out_channels=1, hidden_channels=8, residual_channels=4, latent_dim=4)
    quantizer = vqgen.build("quantizer", "vq", num_codes=8, dim=4)
    vqgen.build("model", "vqvae", encoder=encoder, quantizer=quantizer, decoder=decoder).save_pretrained(root / "vq")
    prior = vqgen.build("prior", "rnn", num_categories=256, channels=1, hidden_size=8, num_layers=1, embed_dim=4)
    prior.save_pretrained(root / "prior")
    shutil.copytree(root / "vq", root / "corrupt")
    (root / "corrupt" / "model.safetensors").write_bytes(b"not safetensors")
    images = np.zeros((4, 1, 8, 8), dtype=np.uint8)
    labels = np.zeros(4, dtype=np.int64)
    np.savez(root / "small.npz", x_train=images, y_train=labels, x_test=images, y_test=labels)
    (root / "bad.yaml").write_text("epochz: 3\n")
    (root / "zero.yaml").write_text("num-samples: 0\n")
    (root / "empty").mkdir()
    TwoStageModel.from_config(  # saved as built: neither stage trained
        {"encoder": {"name": "conv", "hidden_channels": 8, "residual_channels": 4, "latent_dim": 4},
         "quantizer": {"name": "vq", "num_codes": 8},
         "prior": {"name": "gated_pixelcnn", "hidden_channels": 8, "num_layers": 2, "head_channels": 8}}
    ).save_pretrained(root / "untrained")  # fmt: skip
    (root / "file").write_text("a file, not a folder")
    for split, count in (("train", 4), ("test", 2)):  # greyscale training images, one colour held-out image
        (root / "mixed" / split / "all").mkdir(parents=True)
        for i in range(count):
            mode = "RGB" if split == "test" and i == 0 else "L"
            Image.new(mode, (8, 8), color=(90, 30, 200) if mode == "RGB" else 90).save(
                root / "mixed" / split / "all" / f"{i}.png"
            )
    for states in ("train_state", "stage1/train_state"):  # a run killed during its first state write
        (root / "interrupted" / states / ".tmp-killed").mkdir(parents=True)
    return {
        "root": str(root), "run": str(run), "two": str(root / "two"), "vq": str(root / "vq"),
        "prior": str(root / "prior"), "corrupt": str(root / "corrupt"), "small": str(root / "small.npz"),
        "bad": str(root / "bad.yaml"), "zero": str(root / "zero.yaml"), "empty": str(root / "empty"),
        "out": str(root / "out"), "full": str(root / "full"), "untrained": str(root / "untrained"),
        "file": str(root / "file"),
        "mixed": str(root / "mixed"), "interrupted": str(root / "interrupted"),
    }  # fmt: skip


MINIMAL = {  # the fewest arguments each command accepts (an unknown flag must be the only problem)
    "fit": ["fit"], "fit-vqvae": ["fit-vqvae"], "fit-prior": ["fit-prior", "-o", "x"], "sample": ["sample", "x"],
    "complete": ["complete", "x"], "evaluate": ["evaluate", "x"], "demo": ["demo"],
}  # fmt: skip
MISSING_MNIST = ["--dataset", "mnist", "--data-root", "{empty}"]

CASES: dict[tuple[str, str], list[list[str]]] = {
    ("every command", "an unknown flag"): [[*argv, "--bogus"] for argv in MINIMAL.values()],
    ("every command", "`--threads 0` (before or after the command)"): [
        ["--threads", "0", "sample", "x"],
        ["sample", "x", "--threads", "0"],
        ["fit", "--threads", "0"],
    ],  # fmt: skip
    ("fit", "`--config` file missing"): [["fit", "--config", "nope.yaml"]],
    ("fit", "unknown key in the run file"): [["fit", "--config", "{bad}", "-o", "{out}"]],
    ("fit", "no `--output`"): [["fit", "--dataset", "digits"]],
    ("fit", "dataset files missing"): [["fit", *MISSING_MNIST, "-o", "{out}"]],
    ("fit", "`--resume` a folder without a training state"): [["fit", "--config", "{run}", "--resume", "{empty}"]],
    ("fit", "`--epochs 0`"): [["fit", "--epochs", "0"]],
    ("fit", "the disk fills up while writing a checkpoint or training state"): [
        ["fit", "--config", "{run}", "-o", "{full}", "--resume", "{full}", "--max-steps", "2"]
    ],
    ("fit", "`--output` that cannot be written (a read-only folder, or inside a file)"): [
        ["fit", "--config", "{run}", "-o", "{file}/out"]
    ],
    ("fit", "a folder whose train split is greyscale and test split has colour images"): [
        ["fit", "--config", "{run}", "--dataset", "{mixed}", "-o", "{out}"]
    ],
    ("fit", "`--output` is a file"): [["fit", "--config", "{run}", "-o", "{small}"]],
    ("fit", "`--output` holds another run (without `--resume` or `--overwrite`)"): [["fit", "--config", "{run}"]],
    ("fit", "`--resume` a folder whose first stage-1 state write was interrupted"): [
        ["fit", "--config", "{run}", "--resume", "{interrupted}", "-o", "{out}"]
    ],
    ("fit", "`--overwrite` with `--resume`"): [["fit", "--config", "{run}", "--resume", "{two}", "--overwrite"]],
    ("fit", "unknown `--prior` or `--quantizer`"): [
        ["fit", "--prior", "nope", "-o", "{out}"],
        ["fit", "--quantizer", "nope", "-o", "{out}"],
    ],
    ("every other command", "`--config` key that is not one of its flags"): [
        [*argv, "--config", "{bad}"] for name, argv in MINIMAL.items() if name not in ("fit", "fit-vqvae")
    ],
    ("every other command", "`--config` value its flag rejects"): [["sample", "x", "--config", "{zero}"]],
    ("fit-vqvae", "unknown quantizer"): [["fit-vqvae", "--quantizer", "nope", "-o", "{out}"]],
    ("fit-vqvae", "`--quantizer fsq --num-codes 8`"): [
        ["fit-vqvae", "--quantizer", "fsq", "--num-codes", "8", "-o", "{out}"]
    ],
    ("fit-vqvae", "`--levels` with a codebook quantizer (the default `ema`)"): [
        ["fit-vqvae", "--levels", "4", "4", "-o", "{out}"]
    ],
    ("fit-vqvae", "dataset files missing"): [["fit-vqvae", *MISSING_MNIST, "-o", "{out}"]],
    ("fit-vqvae", "`--lr -1`"): [["fit-vqvae", "--lr", "-1", "-o", "{out}"]],
    ("fit-vqvae", "`--output` that cannot be written"): [["fit-vqvae", "--train-subset", "8", "-o", "{file}/out"]],
    ("fit-vqvae", "`--output` is a file"): [["fit-vqvae", "-o", "{small}"]],
    ("fit-vqvae", "`--output` holds another run (without `--resume` or `--overwrite`)"): [["fit-vqvae", "-o", "{vq}"]],
    ("fit-vqvae", "`--resume` a folder whose first state write was interrupted"): [
        ["fit-vqvae", "--resume", "{interrupted}", "-o", "{out}"]
    ],
    ("fit-vqvae", "`--overwrite` with `--resume`"): [["fit-vqvae", "--resume", "{vq}", "--overwrite", "-o", "{vq}"]],
    ("fit-prior", "`--codes-from` a checkpoint that is not a VQ-VAE"): [
        ["fit-prior", "--codes-from", "{prior}", "-o", "{out}"]
    ],
    ("fit-prior", "`--codes-from` a corrupt checkpoint"): [["fit-prior", "--codes-from", "{corrupt}", "-o", "{out}"]],
    ("fit-prior", "`--prior-config` with an option the prior does not take"): [
        ["fit-prior", "--prior-config", '{"hidden_size": 64}', "-o", "{out}"]
    ],
    ("fit-prior", "`--prior-config` that is not JSON"): [["fit-prior", "--prior-config", "{hidden: 64}", "-o", "x"]],
    ("fit-prior", "`--resume` a folder without a training state"): [
        ["fit-prior", "--resume", "{empty}", "-o", "{out}"]
    ],
    ("fit-prior", "`--max-seconds 0`"): [["fit-prior", "--max-seconds", "0", "-o", "x"]],
    ("fit-prior", "`--output` that cannot be written"): [["fit-prior", "--train-subset", "8", "-o", "{file}/out"]],
    ("fit-prior", "`--output` is a file"): [["fit-prior", "-o", "{small}"]],
    ("fit-prior", "`--output` holds another run (without `--resume` or `--overwrite`)"): [
        ["fit-prior", "-o", "{prior}"]
    ],
    ("fit-prior", "`--resume` a folder whose first state write was interrupted"): [
        ["fit-prior", "--resume", "{interrupted}", "-o", "{out}"]
    ],
    ("fit-prior", "`--overwrite` with `--resume`"): [
        ["fit-prior", "--resume", "{prior}", "--overwrite", "-o", "{prior}"]
    ],
    ("sample", "checkpoint folder missing"): [["sample", "nowhere"]],
    ("sample", "corrupt checkpoint"): [["sample", "{corrupt}"]],
    ("sample", "a VQ-VAE checkpoint"): [["sample", "{vq}"]],
    ("sample", "a two-stage model saved before it was trained"): [["sample", "{untrained}"]],
    ("sample", "`--label` for a prior that is not class-conditional"): [["sample", "{two}", "--label", "3"]],
    ("sample", "`--num-samples 0`"): [["sample", "x", "--num-samples", "0"], ["sample", "x", "-n", "0"]],
    ("sample", "`--top-p 1.5`"): [["sample", "x", "--top-p", "1.5"]],
    ("complete", "a checkpoint that is not a two-stage model"): [["complete", "{prior}"]],
    ("complete", "images of another size than the model's"): [["complete", "{two}", "--dataset", "{small}"]],
    ("complete", "a two-stage model saved before it was trained"): [["complete", "{untrained}"]],
    ("complete", "dataset files missing"): [["complete", "{two}", *MISSING_MNIST]],
    ("complete", "`--keep-fraction 1`"): [["complete", "x", "--keep-fraction", "1"]],
    ("evaluate", "a checkpoint that is not a two-stage model"): [["evaluate", "{vq}"]],
    ("evaluate", "`--classifier` that is not a classifier"): [["evaluate", "{two}", "--classifier", "{vq}"]],
    ("evaluate", "a two-stage model saved before it was trained"): [["evaluate", "{untrained}"]],
    ("evaluate", "`--num-samples 0`"): [["evaluate", "x", "--num-samples", "0"]],
    ("evaluate", "`--fid-reference` other than `first` or `all`"): [["evaluate", "x", "--fid-reference", "test"]],
    ("demo", "dataset files missing"): [["demo", *MISSING_MNIST, "-o", "{out}"]],
    ("demo", "unknown prior"): [["demo", "--prior", "nope", "-o", "{out}"]],
    ("demo", "`--max-seconds 0`"): [["demo", "--max-seconds", "0"]],
    ("demo", "`--prior-max-seconds 0`"): [["demo", "--prior-max-seconds", "0"]],
}


def _disk_full(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every safetensors write fails as it does on a full disk (its words, measured on a 200 KiB tmpfs)."""

    def full(tensors, filename, metadata=None):
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(vqgen.persistence, "save_file", full)
    monkeypatch.setattr(vqgen.training.state, "save_file", full)


INJECTED = {("fit", "the disk fills up while writing a checkpoint or training state"): _disk_full}


def _exit_status(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exit:  # argparse's usage errors
        return int(exit.code)


def test_every_documented_error_has_a_case_and_back():
    assert set(documented_errors()) == set(CASES)


@pytest.mark.parametrize("row", sorted(CASES), ids=lambda row: f"{row[0]}: {row[1]}")
def test_documented_error(row, paths, capsys, monkeypatch):
    status, message = documented_errors()[row]
    if row in INJECTED:
        INJECTED[row](monkeypatch)
    for argv in CASES[row]:
        argv = [arg.format(**paths) if "{" in arg and not arg.startswith(("{h", '{"')) else arg for arg in argv]
        assert _exit_status(argv) == status, argv
        err = capsys.readouterr().err
        assert message in err, (argv, err)
        assert "Traceback" not in err


def _files(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_fit_onto_a_full_disk_is_one_line_and_keeps_the_previous_run(paths, tmp_path, monkeypatch, capsys):
    output = Path(shutil.copytree(paths["two"], tmp_path / "run"))
    before = _files(output)
    _disk_full(monkeypatch)
    # Resumed with a larger budget, so that the run writes into the folder that holds its last checkpoint.
    assert main(["fit", "--config", paths["run"], "-o", str(output), "--resume", str(output), "--max-steps", "2"]) == 1
    monkeypatch.undo()
    err = capsys.readouterr().err.strip()
    assert err.startswith("vqgen fit: error: could not write ") and err.endswith(": no space left on device")
    assert "\n" not in err and str(output / "stage1") in err
    assert _files(output) == before  # the model, both stages' checkpoints, metrics and training states, untouched
    model = vqgen.from_pretrained(output)
    assert isinstance(model, vqgen.TwoStageModel)
    for stage in ("stage1", "stage2"):
        vqgen.from_pretrained(output / stage)
        assert load_state(output / stage / "train_state")["path"].endswith("step-000000001")


def test_verbose_after_the_command_shows_the_traceback(paths):
    with pytest.raises(FileNotFoundError, match="nowhere does not exist"):
        main(["sample", "nowhere", "-v"])


def test_threads_after_the_command_sets_them(paths, tmp_path):
    before = torch.get_num_threads()
    try:
        png = tmp_path / "s.png"
        assert main(["sample", paths["two"], "-n", "2", "--threads", "1", "-o", str(png)]) == 0
        assert torch.get_num_threads() == 1 and png.is_file()
    finally:
        torch.set_num_threads(before)


def test_interrupted_exits_130(monkeypatch, capsys):
    import vqgen.cli.sample

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(vqgen.cli.sample, "run", interrupted)
    assert main(["sample", "x"]) == 130
    assert "interrupted" in capsys.readouterr().err


def test_deprecated_spellings_warn_and_still_work(paths, tmp_path, capsys):
    png = tmp_path / "s.png"
    assert main(["sample", paths["two"], "--n", "3", "-o", str(png)]) == 0
    captured = capsys.readouterr()
    assert "--n is deprecated; use --num-samples" in captured.err and "wrote 3 samples" in captured.out
    parser = vqgen.cli.build_parser()
    args = parser.parse_args(["fit-prior", "--max-minutes", "1.5", "-o", "x"])
    assert args.max_seconds == 90
    assert "--max-minutes is deprecated; use --max-seconds" in capsys.readouterr().err
    args = parser.parse_args(["demo", "--samples", "7", "--train-limit", "9"])
    assert (args.num_samples, args.train_subset) == (7, 9)


def test_progress_is_one_flag_pair_everywhere():
    parser = vqgen.cli.build_parser()
    for command in ("fit", "fit-vqvae", "fit-prior", "sample", "complete", "evaluate", "demo"):
        argv = [command, *MINIMAL[command][1:]]
        assert parser.parse_args([*argv, "--no-progress"]).progress is False
        assert parser.parse_args([*argv, "--progress"]).progress is True
