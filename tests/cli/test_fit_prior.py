"""End to end through ``vqgen.cli.main``: fit-prior (pixels, codes, class-conditional) and sample, on tiny runs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import vqgen
import vqgen.images
from vqgen.cli import main

TINY = ["--dataset", "digits", "--train-subset", "24", "--eval-subset", "8", "--batch-size", "8", "--no-progress"]


@pytest.fixture(scope="module")
def pixel_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "pixels"
    argv = ["fit-prior", "--prior", "rnn", "--tiny", "--unconditional", *TINY, "--epochs", "2", "--num-samples", "4"]
    code = main([*argv, "-o", str(out)])  # a pixel prior without labels: the digits' would condition it
    assert code == 0
    return out


def test_fit_prior_writes_checkpoint_metrics_and_samples(pixel_run, capsys):
    prior = vqgen.from_pretrained(pixel_run)
    assert prior.num_categories == 256 and prior.channels == 1 and prior.config["hidden_size"] == 16
    metrics = json.loads((pixel_run / "metrics.json").read_text())
    assert metrics["settings"]["grid_shape"] == [1, 16, 16]
    assert metrics["settings"]["metadata"]["dataset"] == "digits"
    assert [r["step"] for r in metrics["history"]] == [3, 6]
    assert all(0 < r["eval"]["bits_per_dim"] < 12 for r in metrics["history"])
    assert Image.open(pixel_run / "samples.png").size[0] > 16 * 4


@pytest.mark.parametrize("method", ["cached", "naive"])
def test_sample_writes_a_png_grid(pixel_run, tmp_path, method, capsys):
    png = tmp_path / f"{method}.png"
    args = ["sample", str(pixel_run), "--n", "3", "--shape", "4", "5", "--seed", "3", "--method", method]
    assert main([*args, "--top-k", "20", "--temperature", "0.9", "--ncols", "3", "-o", str(png)]) == 0
    assert "wrote 3 samples" in capsys.readouterr().out
    # 3 tiles of 5x4 pixels with 2-pixel padding, enlarged 8x by default, under a title strip.
    assert Image.open(png).size == (8 * (3 * 7 + 2), 8 * (4 + 4) + (vqgen.images.FONT_SIZE + 8))


def test_cached_and_naive_sampling_give_the_same_picture(pixel_run, tmp_path):
    pictures = []
    for method in ("cached", "naive"):
        png = tmp_path / f"{method}.png"
        main(["sample", str(pixel_run), "--n", "2", "--shape", "3", "3", "--method", method, "-o", str(png)])
        pictures.append(torch.from_numpy(np.array(Image.open(png))))
    assert torch.equal(pictures[0], pictures[1])


def test_codes_from_a_vqvae_and_conditional_sampling(tmp_path, capsys):
    encoder = vqgen.build("encoder", "conv", hidden_channels=8, residual_channels=4, latent_dim=4, num_downsamples=2)
    decoder = vqgen.build("decoder", "conv", hidden_channels=8, residual_channels=4, latent_dim=4, num_downsamples=2)
    quantizer = vqgen.build("quantizer", "vq", num_codes=10, dim=4)
    vqvae = vqgen.build("model", "vqvae", encoder=encoder, quantizer=quantizer, decoder=decoder)
    vqvae.save_pretrained(tmp_path / "vqvae")
    out = tmp_path / "codes"
    args = ["fit-prior", "--prior", "rnn", "--tiny", "--conditional", "--codes-from", str(tmp_path / "vqvae"), *TINY]
    assert main([*args, "--max-steps", "2", "--num-samples", "3", "-o", str(out)]) == 0
    prior = vqgen.from_pretrained(out)
    assert (prior.num_categories, prior.num_classes, prior.input.mode) == (10, 10, "embed")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["settings"]["grid_shape"] == [1, 4, 4]
    assert metrics["settings"]["metadata"]["codes_from"] == str((tmp_path / "vqvae").resolve())
    png = tmp_path / "threes.png"
    assert main(["sample", str(out), "--n", "2", "--label", "3", "-o", str(png)]) == 0
    assert Image.open(png).size == (
        8 * (2 * 18 + 2),
        8 * (18 + 2) + 2 * (vqgen.images.FONT_SIZE + 8),
    )  # 16x16 images, title, classes


def test_user_errors_exit_with_status_1(pixel_run, tmp_path, capsys):
    assert main(["sample", str(tmp_path / "missing")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["sample", str(pixel_run), "--label", "1", "-o", str(tmp_path / "x.png")]) == 1
    assert "not class-conditional" in capsys.readouterr().err
    assert main(["fit-prior", "--prior", "nope", *TINY, "-o", str(tmp_path / "y")]) == 1
    assert "unknown prior 'nope'" in capsys.readouterr().err
    assert main(["fit-prior", "--prior", "rnn", "--prior-config", "{bad", *TINY, "-o", str(tmp_path / "z")]) == 1
    assert "--prior-config" in capsys.readouterr().err


def test_help_lists_the_options(capsys):
    for command in ("fit-prior", "sample"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
    text = capsys.readouterr().out
    for flag in ("--codes-from", "--conditional", "--max-seconds", "--resume", "--top-p", "--method", "--temperature"):
        assert flag in text


def test_sample_a_two_stage_model(tmp_path, capsys):
    from vqgen.two_stage import TwoStageModel

    model = TwoStageModel.from_config(
        {
            "encoder": {"name": "conv", "hidden_channels": 8, "residual_channels": 4, "latent_dim": 4},
            "quantizer": {"name": "vq", "num_codes": 8},
            "prior": {"name": "rnn", "hidden_size": 8, "num_layers": 1, "embed_dim": 4},
        }
    )
    model.image_shape_.copy_(torch.tensor([1, 8, 8]))  # as if fitted on 8x8 grey images
    model.fitted_.fill_(True)
    model.save_pretrained(tmp_path / "two-stage")
    png = tmp_path / "two-stage.png"
    assert main(["sample", str(tmp_path / "two-stage"), "--n", "2", "--ncols", "2", "-o", str(png)]) == 0
    assert Image.open(png).size == (
        8 * (2 * 10 + 2),
        8 * (10 + 2) + (vqgen.images.FONT_SIZE + 8),
    )  # two decoded 8x8 images, title
