"""One CLI vocabulary (issue 23): a flag means the same thing, with the API's and the README's defaults, everywhere.

``ema`` is the quantizer of every command; a prior is class-conditional wherever the data has labels; ``-n`` is
``--num-samples`` (samples drawn or scored), never images shown; ``--max-seconds`` caps each stage of a two-stage
command; ``fit`` and ``demo`` take the parts by name; a ``vqgen fit`` run is sampled at its preset's temperature.
"""

from __future__ import annotations

import json

import pytest

import vqgen
from vqgen.cli import demo, parse_args
from vqgen.cli.fit import resolve_run
from vqgen.cli.fit_vqvae import resolve_options
from vqgen.cli.sample import sampling_options

README = vqgen.presets.get("mnist-small")
PRIOR = ["fit-prior", "--prior", "rnn", "--tiny", "--train-subset", "16", "--eval-subset", "8", "--batch-size", "8"]
PRIOR += ["--max-steps", "1", "--no-progress", "--num-samples", "0"]


def test_ema_is_the_quantizer_everywhere():
    assert README.model["quantizer"]["name"] == "ema"
    assert resolve_options(parse_args(["fit-vqvae", "-o", "x"]))["quantizer"] == "ema"
    assert resolve_run(parse_args(["fit", "-o", "x"]))["model"]["quantizer"]["name"] == "ema"
    assert demo._preset(parse_args(["demo"]), vqgen.data.load_dataset("digits"))[1]["quantizer"]["name"] == "ema"


@pytest.mark.parametrize(
    ("flags", "classes", "warned"),
    [
        ([], 10, False),
        (["--unconditional"], None, False),
        (["--no-conditional"], None, False),
        (["--conditional"], 10, True),
    ],
)
def test_fit_prior_conditions_on_the_labels_by_default(flags, classes, warned, tmp_path, capsys):
    assert vqgen.cli.main([*PRIOR, *flags, "-o", str(tmp_path / "prior")]) == 0
    assert vqgen.from_pretrained(tmp_path / "prior").num_classes == classes
    assert (
        "--conditional is deprecated; it is no longer needed: a prior is class-conditional when"
        in capsys.readouterr().err
    ) is warned


def test_fit_and_demo_condition_a_prior_named_on_the_command_line_on_the_labels():
    digits = vqgen.data.load_dataset("digits")
    _, config, _ = demo._preset(parse_args(["demo", "--prior", "pixelcnn"]), digits)
    assert config["prior"] == {"name": "pixelcnn", "num_classes": 10}  # the demo's swapped prior was unconditional
    options = resolve_run(parse_args(["fit", "-o", "x", "--prior", "rnn"]))
    assert vqgen.cli.fit.fit_to_data(options["model"], digits)["prior"] == {"name": "rnn", "num_classes": 10}


def test_fit_takes_the_prior_and_the_quantizer_by_name_and_their_options_by_set():
    argv = ["fit", "-o", "x", "--prior", "rnn", "--quantizer", "vq", "--set", "model.prior.hidden_size=32"]
    model = resolve_run(parse_args(argv))["model"]
    assert model["prior"] == {"name": "rnn", "hidden_size": 32}
    assert model["quantizer"] == {"name": "vq", "num_codes": README.model["quantizer"]["num_codes"]}  # K kept
    assert resolve_run(parse_args(["fit", "-o", "x", "--quantizer", "fsq"]))["model"]["quantizer"] == {"name": "fsq"}
    same = resolve_run(parse_args(["fit", "-o", "x", "--prior", "gated_pixelcnn"]))["model"]["prior"]
    assert same["num_layers"] == README.model["prior"]["num_layers"]  # a part named as it is keeps its options


def test_minus_n_is_num_samples_and_images_shown_are_num_images(capsys):
    assert parse_args(["sample", "x", "-n", "3"]).num_samples == 3
    assert parse_args(["evaluate", "x", "-n", "3"]).num_samples == 3
    assert capsys.readouterr().err == ""
    assert parse_args(["complete", "x", "-n", "3"]).num_images == 3
    assert parse_args(["fit-vqvae", "-n", "3"]).num_images == 3
    assert capsys.readouterr().err.count("-n is deprecated; use --num-images") == 2


def test_demo_max_seconds_caps_each_stage_and_prior_max_seconds_the_prior():
    digits = vqgen.data.load_dataset("digits")
    preset = vqgen.presets.get(demo.DEMO_PRESETS["digits"])
    _, _, budget = demo._preset(parse_args(["demo", "--max-seconds", "5"]), digits)
    assert budget == {"stage1": {**preset.stage1, "max_seconds": 5}, "stage2": {**preset.stage2, "max_seconds": 5}}
    _, _, budget = demo._preset(parse_args(["demo", "--max-seconds", "5", "--prior-max-seconds", "7"]), digits)
    assert (budget["stage1"]["max_seconds"], budget["stage2"]["max_seconds"]) == (5, 7)
    _, _, budget = demo._preset(parse_args(["demo", "--prior-max-seconds", "7"]), digits)
    assert budget == {"stage1": dict(preset.stage1), "stage2": {**preset.stage2, "max_seconds": 7}}


def test_a_fit_run_is_sampled_at_its_presets_temperature(tmp_path):
    (tmp_path / "run.json").write_text(json.dumps({"preset": README.name, "dataset": "mnist"}))
    for command in ("sample", "complete", "evaluate"):
        assert sampling_options(parse_args([command, str(tmp_path)]), "cpu").temperature == README.temperature != 1
        assert sampling_options(parse_args([command, str(tmp_path), "--temperature", "1.5"]), "cpu").temperature == 1.5
        assert sampling_options(parse_args([command, str(tmp_path / "prior")]), "cpu").temperature == 1.0


@pytest.mark.parametrize("command", ["fit", "fit-vqvae", "fit-prior", "sample", "complete", "evaluate", "demo"])
def test_output_says_its_kind(command):
    kind = {"sample": "PNG", "complete": "PNG", "evaluate": "JSON"}.get(command, "DIR")
    parser = vqgen.cli.build_parser()
    (subparsers,) = (a for a in parser._actions if hasattr(a, "choices") and isinstance(a.choices, dict))
    (output,) = (a for a in subparsers.choices[command]._actions if "--output" in a.option_strings)
    assert output.metavar == kind and output.option_strings == ["--output", "-o"]


def test_a_prior_is_conditioned_only_on_labels_of_two_classes_or_more():
    """A folder of images in one sub-folder (no labels) gives an unconditional prior, not one of 1 class."""
    import torch

    from vqgen.cli.fit import fit_to_data
    from vqgen.cli.fit_prior import class_count
    from vqgen.data import ImageDataset

    images = torch.zeros(4, 1, 8, 8, dtype=torch.uint8)
    one = ImageDataset(images, torch.zeros(4, dtype=torch.int64), num_classes=1)
    ten = ImageDataset(images, torch.arange(4), num_classes=10)
    assert (class_count("gated_pixelcnn", one), class_count("gated_pixelcnn", ten)) == (None, 10)
    assert fit_to_data({"prior": "rnn"}, one)["prior"] == {"name": "rnn"}
    assert fit_to_data({"prior": "rnn"}, ten)["prior"] == {"name": "rnn", "num_classes": 10}
    assert fit_to_data({"prior": {"name": "rnn", "num_classes": None}}, ten)["prior"]["num_classes"] is None
