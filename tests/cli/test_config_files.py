"""Every subcommand takes --config: the file's options become defaults, and flags given on the command line win."""

import json

import pytest

from vqgen.cli import build_parser, main, parse_args


def test_every_subcommand_takes_config():
    parser = build_parser()
    (subparsers,) = (a for a in parser._actions if hasattr(a, "choices") and isinstance(a.choices, dict))
    for name, subparser in subparsers.choices.items():
        assert any("--config" in a.option_strings for a in subparser._actions), name


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_file_values_are_defaults_and_flags_override_them(tmp_path, suffix):
    options = {"num-samples": 5, "temperature": 0.5, "top_k": 3, "progress": True, "output": "a.png"}
    path = tmp_path / f"sample{suffix}"
    path.write_text(json.dumps(options))  # JSON is YAML too
    args = parse_args(["sample", "ckpt", "--config", str(path), "--temperature", "0.9"])
    assert (args.num_samples, args.top_k, args.progress, args.output) == (5, 3, True, "a.png")
    assert args.temperature == 0.9  # the flag given wins over the file
    assert args.checkpoint == "ckpt"
    assert parse_args(["sample", "ckpt"]).num_samples != 5  # nothing leaks into a parser built without the file


def test_config_runs_the_command(tmp_path, monkeypatch):
    seen = {}
    monkeypatch.setattr("vqgen.cli.sample.run", lambda args: seen.update(vars(args)) or 0)
    (tmp_path / "s.yaml").write_text("num-samples: 7\nseed: 3\n")
    assert main(["sample", "ckpt", "--config", str(tmp_path / "s.yaml")]) == 0
    assert (seen["num_samples"], seen["seed"]) == (7, 3)


def test_vqgen_fit_defaults_are_the_readmes_configuration():
    """`vqgen fit` without a file trains what the README's snippet trains: the preset it names, with its 5 + 15 minute
    budget (the data sets the image channels and the classes)."""
    import re
    from pathlib import Path

    import vqgen
    from vqgen.cli.fit import resolve_run

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    (name,) = set(re.findall(r'from_preset\("([^"]+)"\)', readme)) | set(
        re.findall(r'presets\.get\("([^"]+)"\)', readme)
    )
    assert "model.fit(train, eval_data=test, **preset.budget)" in readme
    preset = vqgen.presets.get(name)
    options = resolve_run(parse_args(["fit", "-o", "out"]))
    assert options["preset"] == name
    assert {"stage1": options["stage1"], "stage2": options["stage2"]} == preset.budget  # the time budget alone
    config = preset.config()
    del config["encoder"]["in_channels"], config["prior"]["num_classes"]  # fit takes them from the data
    assert options["model"] == config


def test_vqgen_fit_preset_flag_and_run_file(tmp_path):
    """``--preset`` picks another preset; a run file's ``model`` replaces the preset's; an unknown name is an error."""
    import vqgen
    from vqgen.cli.fit import resolve_run

    options = resolve_run(parse_args(["fit", "-o", "out", "--preset", "digits-demo"]))
    assert options["preset"] == "digits-demo" and options["stage1"] == {"epochs": 15}
    assert options["model"]["quantizer"] == vqgen.presets.get("digits-demo").model["quantizer"]
    (tmp_path / "run.yaml").write_text("preset: cifar10-small\nmodel: {encoder: conv, quantizer: vq, prior: rnn}\n")
    options = resolve_run(parse_args(["fit", "-o", "out", "--config", str(tmp_path / "run.yaml")]))
    assert options["model"] == {"encoder": "conv", "quantizer": "vq", "prior": "rnn"}
    assert options["stage2"] == {"max_seconds": 150}
    with pytest.raises(ValueError, match=r"unknown preset 'nope'; the presets are \['cifar10-small'"):
        resolve_run(parse_args(["fit", "-o", "out", "--preset", "nope"]))
