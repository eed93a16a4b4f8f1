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
    """`vqgen fit` without a file trains what the README's snippet trains: same parts, same 5 + 15 minute budget."""
    import ast
    import re
    from pathlib import Path

    from vqgen.cli.fit import DEFAULTS

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    config_text = re.search(r"TwoStageModel\.from_config\((\{.*?\})\)\n", readme, re.S).group(1)
    config = ast.literal_eval(re.sub(r"#[^\n]*", "", config_text))
    budgets = re.search(r"model\.fit\(train, eval_data=test, stage1=(\{.*?\}), stage2=(\{.*?\})\)", readme)
    model = DEFAULTS["model"]
    assert model["encoder"] == config["encoder"]["name"] and config["encoder"]["latent_dim"] == 16  # conv's default
    assert model["quantizer"] == config["quantizer"]["name"] and config["quantizer"]["num_codes"] == 512  # ema's
    readme_prior = {k: v for k, v in config["prior"].items() if k != "num_classes"}  # fit takes it from the data
    assert model["prior"] == readme_prior
    for stage, text in zip(("stage1", "stage2"), budgets.groups()):
        assert DEFAULTS[stage]["max_seconds"] == ast.literal_eval(text)["max_seconds"]
        assert DEFAULTS[stage] == ast.literal_eval(text)  # the time budget alone, as in the README: no epoch cap
