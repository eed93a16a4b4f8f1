"""``vqgen fit --config run.yaml`` end to end on the offline digits: the model it writes is what sample, complete and
evaluate accept; flags override the file; --resume continues; bad files are clear errors."""

from __future__ import annotations

import json

import pytest

import vqgen
from vqgen.cli import main

RUN = """
dataset: digits
train_subset: 32
eval_subset: 16
model:
  encoder: {name: conv, hidden_channels: 8, residual_channels: 4, latent_dim: 4, num_downsamples: 2}
  quantizer: {name: ema, num_codes: 16}
  prior: {name: gated_pixelcnn, hidden_channels: 8, num_layers: 2, head_channels: 16}
train: {progress: false, seed: 1}
stage1: {epochs: 2, batch_size: 16, lr: 3.0e-3}
stage2: {epochs: 5, batch_size: 8}
output: will-be-overridden
"""


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    root = tmp_path_factory.mktemp("fit")
    (root / "run.yaml").write_text(RUN)
    out = root / "out"
    code = main(["fit", "--config", str(root / "run.yaml"), "--output", str(out), "--set", "stage2.max_steps=3"])
    assert code == 0
    return root, out


def test_fit_writes_a_two_stage_model_that_sample_complete_and_evaluate_accept(fitted, capsys):
    root, out = fitted
    model = vqgen.from_pretrained(out)
    assert isinstance(model, vqgen.TwoStageModel) and model.num_codes == 16 and model.image_shape == (1, 16, 16)
    assert model.prior.num_classes == 10  # conditioned on the digits' classes, as the README's configuration is
    stage1 = json.loads((out / "stage1" / "metrics.json").read_text())
    stage2 = json.loads((out / "stage2" / "metrics.json").read_text())
    assert [r["epoch"] for r in stage1["history"]] == [1, 2] and stage2["history"][-1]["step"] == 3
    assert stage1["settings"]["lr"] == 3e-3 and stage2["settings"]["seed"] == 1  # per stage, shared
    assert json.loads((out / "run.json").read_text())["output"] == str(out)  # the flag overrode the file
    assert main(["sample", str(out), "--n", "4", "--output", str(root / "s.png")]) == 0
    assert main(["complete", str(out), "--n", "2", "--output", str(root / "c.png")]) == 0
    assert main(["evaluate", str(out), "--num-samples", "10", "--output", str(root / "e.json")]) == 0
    assert (root / "s.png").is_file() and (root / "c.png").is_file() and (root / "e.json").is_file()


def test_resume_continues_the_prior_from_its_state(fitted):
    root, out = fitted
    assert json.loads((out / "stage2" / "metrics.json").read_text())["history"][-1]["step"] == 3  # mid-epoch 1
    code = main(["fit", "--config", str(root / "run.yaml"), "--output", str(out), "--resume", str(out),
                 "--set", "stage2.max_steps=5"])  # fmt: skip
    assert code == 0
    history = json.loads((out / "stage2" / "metrics.json").read_text())["history"]
    # epoch 1 (4 batches of 8) completed from where it stopped, then one step of epoch 2
    assert [(r["epoch"], r["step"]) for r in history] == [(1, 4), (2, 5)]


def test_bad_run_files_and_flags_are_clear_errors(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("dataset: digits\nstage3: {}\n")
    assert main(["fit", "--config", str(bad), "--output", str(tmp_path / "o")]) == 1
    assert "unknown keys ['stage3']" in capsys.readouterr().err
    assert main(["fit", "--config", str(tmp_path / "missing.yaml"), "--output", str(tmp_path / "o")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["fit", "--set", "stage2.lr", "--output", str(tmp_path / "o")]) == 1
    assert "--set takes KEY=VALUE" in capsys.readouterr().err
    assert main(["fit"]) == 1
    assert "--output is required" in capsys.readouterr().err
    assert main(["fit", "--output", str(tmp_path / "o"), "--resume", str(tmp_path / "nothing")]) == 1
    assert "no stage-1 training state" in capsys.readouterr().err


def test_fit_streams_a_folder_of_images_resized_on_the_fly(tmp_path):
    """``data: {stream: true, size: ...}`` reads a folder lazily and resizes it; the prior's codes go to disk."""
    from PIL import Image

    digits = vqgen.data.load_digits("train")
    for i, (image, label) in enumerate(zip(digits.images[:24], digits.labels[:24].tolist())):
        (tmp_path / "images" / str(label)).mkdir(parents=True, exist_ok=True)
        big = Image.fromarray(image[0].numpy()).resize((24, 20))  # not square, not the model's size
        big.save(tmp_path / "images" / str(label) / f"{i}.png")
    run = RUN.replace("dataset: digits", f"dataset: {tmp_path / 'images'}")
    run = run.replace("train_subset: 32\neval_subset: 16\n", "data: {stream: true, size: 16, mode: L}\n")
    (tmp_path / "run.yaml").write_text(run)
    out = tmp_path / "out"
    assert main(["fit", "--config", str(tmp_path / "run.yaml"), "-o", str(out), "--max-steps", "2"]) == 0
    model = vqgen.from_pretrained(out)
    assert model.image_shape == (1, 16, 16)
    assert json.loads((out / "stage2" / "metrics.json").read_text())["history"][-1]["step"] == 2

    (tmp_path / "subset.yaml").write_text(run.replace("data: {", "train_subset: 8\ndata: {"))
    with pytest.raises(ValueError, match="in-memory data, not of data.stream"):
        argv = ["fit", "--config", str(tmp_path / "subset.yaml"), "-o", str(tmp_path / "out2")]  # out holds a run
        vqgen.cli.fit.run(vqgen.cli.parse_args(argv))


def test_held_out_split_is_not_randomly_flipped(tmp_path, monkeypatch):
    """``data: {hflip: ...}`` augments the training split only: the test split is scored as it is."""
    import vqgen.data
    from vqgen.cli import fit

    calls = []

    def load_dataset(name, split, **options):
        calls.append((split, options.get("hflip")))
        if split == "test":
            raise RuntimeError("stop here")
        return vqgen.data.load_digits("train")

    monkeypatch.setattr(vqgen.data, "load_dataset", load_dataset)
    argv = ["fit", "--dataset", "photos", "--set", "data={stream: true, hflip: 0.5}", "-o", str(tmp_path / "out")]
    with pytest.raises(RuntimeError, match="stop here"):
        fit.run(vqgen.cli.parse_args(argv))
    assert calls == [("train", 0.5), ("test", None)]
