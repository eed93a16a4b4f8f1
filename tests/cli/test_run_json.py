"""``vqgen complete`` and ``vqgen evaluate`` read the dataset of a ``vqgen fit`` output folder from its ``run.json``,
with the run's ``data`` options (a folder of mixed-size images is readable only with ``size``); flags given win."""

from __future__ import annotations

import json

import pytest
from PIL import Image

import vqgen
from vqgen.cli import main

RUN = """
dataset: {folder}
data: {{size: 12}}
model:
  encoder: {{name: conv, hidden_channels: 8, residual_channels: 4, latent_dim: 4, num_downsamples: 2}}
  quantizer: {{name: ema, num_codes: 8}}
  prior: {{name: gated_pixelcnn, hidden_channels: 8, num_layers: 2, head_channels: 8}}
train: {{max_steps: 1, batch_size: 8, progress: false}}
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A ``vqgen fit`` run on a folder of 16x16 and 24x20 digits, read at 12x12 (``data: {size: 12}``)."""
    root = tmp_path_factory.mktemp("mixed")
    digits = vqgen.data.load_digits("train")
    for i, (image, label) in enumerate(zip(digits.images[:60], digits.labels[:60].tolist())):
        folder = root / "images" / ("train" if i < 40 else "test") / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image[0].numpy()).resize((24, 20) if i % 2 else (16, 16)).save(folder / f"{i}.png")
    (root / "run.yaml").write_text(RUN.format(folder=root / "images"))
    assert main(["fit", "--config", str(root / "run.yaml"), "-o", str(root / "out")]) == 0
    return root


def test_complete_reads_the_runs_dataset_and_size(run, capsys):
    out, png = run / "out", run / "c.png"
    assert main(["complete", str(out), "--num-images", "2", "-o", str(png)]) == 0
    assert main(["complete", str(out), "--dataset", str(run / "images"), "--num-images", "2", "-o", str(png)]) == 0
    assert "2 inputs" in capsys.readouterr().out and png.is_file()
    assert main(["complete", str(out), "--dataset", "digits", "-o", str(png)]) == 1  # the flag wins: 16x16 images
    assert "the model was fit on (1, 12, 12)" in capsys.readouterr().err


def test_evaluate_reads_the_runs_dataset_and_size(run):
    out, metrics = run / "out", run / "e.json"
    argv = [
        "evaluate",
        str(out),
        "-n",
        "4",
        "--classifier-subset",
        "16",
        "--classifier-epochs",
        "1",
        "--floor-draws",
        "1",
    ]
    assert main([*argv, "-o", str(metrics)]) == 0
    result = json.loads(metrics.read_text())
    assert result["dataset"] == str(run / "images") and result["num_samples"] == 4
    assert result["temperature"] == vqgen.presets.get("mnist-small").temperature  # the run's preset's
