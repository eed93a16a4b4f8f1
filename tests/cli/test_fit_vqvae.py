"""``vqgen fit-vqvae`` end to end on the offline digits dataset (16x16), a few steps."""

from __future__ import annotations

import json

import pytest
from PIL import Image

import vqgen
from vqgen.cli import main

TINY = [
    "--hidden",
    "8",
    "--latent-dim",
    "4",
    "--num-codes",
    "16",
    "--train-subset",
    "64",
    "--eval-subset",
    "16",
    "--batch-size",
    "16",
]


def test_help_lists_the_options_with_defaults(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit-vqvae", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for needle in [
        "--dataset",
        "(default: digits)",
        "--quantizer",
        "--num-codes K",
        "(default: 512;",
        "--levels",
        "--resume",
    ]:
        assert needle in text


@pytest.mark.parametrize("quantizer", ["vq", "ema"])
def test_trains_and_writes_checkpoint_metrics_and_grid(tmp_path, capsys, quantizer):
    out = tmp_path / "run"
    argv = ["fit-vqvae", "--dataset", "digits", "--quantizer", quantizer, *TINY]
    code = main([*argv, "--max-steps", "3", "--epochs", "1", "--num-images", "10", "--no-progress", "-o", str(out)])
    assert code == 0
    assert {p.name for p in out.iterdir()} == {
        "config.json",
        "model.safetensors",
        "metrics.json",
        "reconstructions.png",
        "train_state",  # resumable with --resume
    }
    model = vqgen.from_pretrained(out)
    assert model.num_codes == 16 and model.config["quantizer"]["name"] == quantizer
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["history"][-1]["step"] == 3 and "reconstruction_mse" in metrics["history"][-1]["eval"]
    with Image.open(out / "reconstructions.png") as image:
        # 10 images of 16x16, 8 per row, padding 2: 2 rows of originals, each above a row of reconstructions
        assert image.size[0] > 3 * (8 * 18 + 2) and image.size[1] == 3 * (4 * 18 + 2) and image.mode == "L"  # + labels
    assert "reconstructions.png" in capsys.readouterr().out


def test_config_file_with_flag_overrides(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(
        "dataset: digits\nautoencoder: flat\nnum-codes: 8\nlatent_dim: 4\nhidden: 16\nmax_steps: 5\n"
        f"epochs: 3\nprogress: false\ntrain_subset: 32\neval_subset: 8\noutput: {tmp_path / 'from_file'}\n"
    )
    assert main(["fit-vqvae", "--config", str(config), "--max-steps", "2", "--num-codes", "12"]) == 0
    model = vqgen.from_pretrained(tmp_path / "from_file")
    assert model.num_codes == 12 and model.config["encoder"]["name"] == "flat"
    assert model.config["encoder"]["config"]["image_size"] == 16
    metrics = json.loads((tmp_path / "from_file" / "metrics.json").read_text())
    assert metrics["history"][-1]["step"] == 2

    as_json = tmp_path / "run.json"
    as_json.write_text(json.dumps({"dataset": "digits", "epochs": 1, "max-steps": 1, "progress": False}))
    assert main(["fit-vqvae", "--config", str(as_json), *TINY, "-o", str(tmp_path / "json")]) == 0
    assert (tmp_path / "json" / "reconstructions.png").is_file()


def test_user_errors_exit_1_with_a_message(tmp_path, capsys):
    assert main(["fit-vqvae", "--dataset", "digits"]) == 1
    assert "--output is required" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochz: 3\n")
    assert main(["fit-vqvae", "--config", str(bad), "-o", str(tmp_path / "x")]) == 1
    assert "unknown options ['epochz']" in capsys.readouterr().err
    assert main(["fit-vqvae", "--config", str(tmp_path / "missing.yaml"), "-o", str(tmp_path / "x")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["fit-vqvae", "--quantizer", "nope", *TINY, "-o", str(tmp_path / "x")]) == 1
    assert "unknown quantizer 'nope'" in capsys.readouterr().err
    assert main(["fit-vqvae", "--num-downsamples", "5", *TINY, "-o", str(tmp_path / "x")]) == 1
    assert "multiples of 32; got 16x16" in capsys.readouterr().err


def test_array_file_without_test_split(tmp_path, caplog):
    import numpy as np

    images = np.random.default_rng(0).integers(0, 256, size=(24, 3, 8, 8), dtype=np.uint8)  # colour, no splits
    np.save(tmp_path / "pixels.npy", images)
    argv = ["fit-vqvae", "--dataset", str(tmp_path / "pixels.npy"), *TINY, "--num-downsamples", "1", "--max-steps", "1"]
    assert main([*argv, "--num-images", "4", "--no-progress", "-o", str(tmp_path / "run")]) == 0
    assert "no held-out split" in caplog.text
    with Image.open(tmp_path / "run" / "reconstructions.png") as image:
        assert image.size[0] > 8 * (4 * 10 + 2) and image.size[1] == 8 * (2 * 10 + 2) and image.mode == "RGB"
    assert vqgen.from_pretrained(tmp_path / "run").in_channels == 3
