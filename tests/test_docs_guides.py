"""The guides under docs/guides/ run as written, with shrunk sizes, so that they cannot rot.

``test_docs_examples.py`` already runs the guides' Python blocks; this file runs what it cannot: the shell commands and
run files of "Train on your own images", on a tiny folder of generated PNGs, each ``vqgen`` command through
``vqgen.cli.main`` with flags appended that cut the training to a few steps and the models to a few channels (later
flags win, so the guide's own flags are all exercised); and the prior that "Write a plugin" defines goes through every
prior contract test (``vqgen.testing``), as the guide promises.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import vqgen
import vqgen.testing
from vqgen.cli import main
from vqgen.registry import KINDS, registry

ROOT = Path(__file__).resolve().parent.parent
GUIDES = ROOT / "docs" / "guides"


def blocks(page: Path, language: str) -> list[str]:
    """The ```` ```language ```` blocks of a Markdown page, in order."""
    return re.findall(rf"^```{language}\n(.*?)^```", page.read_text(), re.S | re.M)


def commands(page: Path) -> list[list[str]]:
    """Each ``vqgen ...`` line of the page's bash blocks as argv (without ``vqgen``), comments dropped."""
    lines = [line for block in blocks(page, "bash") for line in block.splitlines()]
    return [shlex.split(line, comments=True)[1:] for line in lines if line.startswith("vqgen ")]


SHRINK = {  # appended to each command of the guide: a few steps of tiny models
    "fit": [
        "--max-steps", "2", "--no-progress", "--batch-size", "8",
        "--set", "model.encoder.hidden_channels=8", "--set", "model.encoder.residual_channels=4",
        "--set", "model.prior.hidden_channels=8", "--set", "model.prior.num_layers=2",
        "--set", "model.prior.head_channels=8",
    ],
    "sample": ["--num-samples", "4"],
    "complete": ["--num-images", "4"],
    "evaluate": ["--num-samples", "8"],
}  # fmt: skip


def _photos(folder: Path, *, size: int = 16, per_class: int = 12) -> None:
    """Two classes of 16x16 greyscale PNGs (bright squares and bright bars on noise), train and test."""
    rng = np.random.default_rng(0)
    for split, count in (("train", per_class), ("test", per_class // 3)):
        for label, name in enumerate(("bars", "squares")):
            (folder / split / name).mkdir(parents=True)
            for i in range(count):
                image = rng.integers(0, 60, size=(size, size), dtype=np.uint8)
                start = int(rng.integers(2, 6))
                if label:
                    image[start : start + 8, start : start + 8] = 230
                else:
                    image[:, start : start + 3] = 230
                Image.fromarray(image, mode="L").save(folder / split / name / f"{i:04d}.png")


def test_guide_lists_the_steps():
    page = GUIDES / "own-images.md"
    assert [argv[0] for argv in commands(page)] == ["fit", "sample", "complete", "evaluate"]
    assert len(blocks(page, "yaml")) == 1


STREAM = ["--set", "data.stream=true", "--set", "data.size=16"]  # the guide's option for folders too large for memory


@pytest.mark.parametrize("data", [[], STREAM], ids=["in-memory", "streamed"])
def test_train_on_your_own_images(tmp_path, monkeypatch, capsys, data):
    page = GUIDES / "own-images.md"
    monkeypatch.chdir(tmp_path)
    (run_file,) = blocks(page, "yaml")
    assert "dataset: photos" in run_file
    assert "data: {stream: true, size: 32}" in page.read_text()
    _photos(tmp_path / "photos")
    Path("run.yaml").write_text(run_file)
    for argv in commands(page):
        extra = data if argv[0] == "fit" else []
        assert main([*argv, *SHRINK[argv[0]], *extra]) == 0, argv
    model = vqgen.from_pretrained("runs/photos")
    assert isinstance(model, vqgen.TwoStageModel) and model.image_shape == (1, 16, 16)
    assert (tmp_path / "runs" / "photos" / "stage2" / "train_state").is_dir()  # --resume works on it
    for png in ("samples.png", "completions.png"):
        with Image.open(png) as image:
            assert image.size[0] >= 400  # small images are enlarged to a readable width
    metrics = json.loads(Path("metrics.json").read_text())
    assert set(metrics["bits_per_code"]) >= {"prior", "independent"}
    for stage, key in (("stage1", "reconstruction_mse"), ("stage2", "bits_per_dim")):  # the test/ split was scored
        history = json.loads((tmp_path / "runs" / "photos" / stage / "metrics.json").read_text())["history"]
        assert key in history[-1]["eval"], stage


@pytest.mark.parametrize("page", sorted(GUIDES.glob("*.md")), ids=lambda p: p.name)
def test_guide_is_in_the_nav(page):
    assert f"guides/{page.name}" in (ROOT / "mkdocs.yml").read_text()


def _guide_prior() -> type:
    """The class that the plugin guide's first Python block defines (registering it is undone by the caller)."""
    namespace: dict = {"__name__": "my_priors"}
    exec(compile(blocks(GUIDES / "plugin.md", "python")[0], "docs/guides/plugin.md", "exec"), namespace)
    return namespace["BigramPrior"]


@pytest.fixture
def guide_prior(monkeypatch):
    """Register the plugin guide's prior for one test only, as the guide does (``@vqgen.register``)."""
    for kind in KINDS:
        monkeypatch.setattr(registry(kind), "_entries", dict(registry(kind)._entries))
    cls = _guide_prior()
    assert registry("prior").get("bigram") is cls
    return cls


@pytest.mark.parametrize(("case", "kwargs"), vqgen.testing.contract_cases("prior"))
def test_plugin_guide_prior_passes_the_contract(guide_prior, case, kwargs, tmp_path):
    vqgen.testing.run_case(case, kwargs, name="bigram", tmp_path=tmp_path)


def test_plugin_guide_registration_is_undone():
    assert "bigram" not in vqgen.available("prior")
