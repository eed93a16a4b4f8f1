"""End-to-end CLI runs of demo, complete and evaluate on a tiny budget (the digits dataset ships offline)."""

from __future__ import annotations

import json
import math

import pytest
from PIL import Image

from vqgen.cli import main


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    argv = ["demo", "-o", str(out), "--vqvae-epochs", "1", "--prior-epochs", "1", "--train-subset", "96"]
    assert main([*argv, "--num-samples", "16", "--no-progress"]) == 0
    return out


def test_demo_writes_pngs_metrics_and_model(demo_dir):
    for name in ("reconstructions.png", "samples.png", "completions.png", "metrics.json", "model/config.json"):
        assert (demo_dir / name).is_file(), name
    metrics = json.loads((demo_dir / "metrics.json").read_text())
    assert set(metrics["fid_classifier"]) == {"prior", "independent", "uniform"}
    assert set(metrics["bits_per_code"]) == {"prior", "independent", "uniform"}
    num_codes = metrics["config"]["quantizer"]["config"]["num_codes"]
    assert metrics["bits_per_code"]["uniform"] == pytest.approx(math.log2(num_codes))
    with Image.open(demo_dir / "samples.png") as image:
        width, height = image.size
    assert width > 2 * height  # three panels side by side


def test_complete_and_evaluate(demo_dir, tmp_path, capsys):
    png = tmp_path / "c.png"
    assert main(["complete", str(demo_dir / "model"), "-n", "4", "-o", str(png)]) == 0
    assert png.is_file()
    out = tmp_path / "e.json"
    argv = ["evaluate", str(demo_dir / "model"), "--classifier", str(demo_dir / "classifier")]
    assert main([*argv, "--num-samples", "8", "-o", str(out)]) == 0
    assert json.loads(out.read_text())["num_samples"] == 8


def test_wrong_checkpoint_kind_is_a_clear_error(demo_dir, capsys):
    import vqgen

    prior_dir = demo_dir / "prior-only"
    vqgen.from_pretrained(demo_dir / "model").prior.save_pretrained(prior_dir)
    assert main(["complete", str(prior_dir)]) == 1
    assert "not a TwoStageModel" in capsys.readouterr().err


def test_bad_keep_fraction_is_a_usage_error(demo_dir, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["complete", str(demo_dir / "model"), "--keep-fraction", "1.5"])
    assert exit_info.value.code == 2
    assert "argument --keep-fraction: expected a number in (0, 1), got 1.5" in capsys.readouterr().err


def test_old_spellings_still_work_and_warn(demo_dir, tmp_path, capsys):
    png = tmp_path / "c.png"
    assert main(["complete", str(demo_dir / "model"), "--n", "2", "--keep", "0.25", "-o", str(png)]) == 0
    captured = capsys.readouterr()
    assert "--n is deprecated; use --num-images" in captured.err
    assert "--keep is deprecated; use --keep-fraction" in captured.err
    assert "2 inputs (top 25% kept)" in captured.out
