"""The figures of the README and docs: every referenced picture exists and is small; the charts are generated."""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+\.png)\)")
MAX_BYTES = 200_000
JSON = re.compile(r"\bdata/([\w.-]+)\.json\b")


def _referenced() -> list[Path]:
    pages = [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]
    return sorted({(page.parent / link).resolve() for page in pages for link in IMAGE.findall(page.read_text())})


def _make_figures():
    """scripts/make_figures.py as a module (loading it puts the repository root on ``sys.path``)."""
    spec = importlib.util.spec_from_file_location("make_figures", ROOT / "scripts" / "make_figures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _quality_charts():
    """scripts/figures/quality_charts.py, the module make_figures.py runs for ``--only quality``."""
    _make_figures()
    return importlib.import_module("scripts.figures.quality_charts")


def test_referenced_pictures_exist_and_are_small():
    pictures = _referenced()
    assert (ROOT / "docs" / "images" / "readme.png").resolve() in pictures  # the README opens with one
    for path in pictures:
        assert path.is_file(), f"{path.relative_to(ROOT)} is referenced but missing: run `make figures`"
        assert path.stat().st_size < MAX_BYTES, f"{path.relative_to(ROOT)} is over {MAX_BYTES} bytes"
        with Image.open(path) as image:
            assert image.width >= 400, f"{path.relative_to(ROOT)} is only {image.width} px wide"


def test_every_json_a_page_cites_is_in_docs_data():
    """A link to ``data/NAME.json`` (or the text ``docs/data/NAME.json``) in the README or a docs page names a file of
    ``docs/data`` (the summary's rows are also checked against the code they describe: tests/test_bench_summary.py)."""
    cited = JSON.findall("\n".join(page.read_text() for page in [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]))
    assert len(set(cited)) > 20
    assert sorted({name for name in cited if not (ROOT / "docs" / "data" / f"{name}.json").is_file()}) == []


def test_no_page_names_a_path_of_the_development_machine():
    """Commands on the pages are what a user types: no ``/work/...``, ``/tmp/<someone's folder>`` or ``/root``."""
    pages = [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]
    found = [
        f"{page.relative_to(ROOT)}: {m}"
        for page in pages
        for m in re.findall(r"/(?:work|root|tmp)/[\w./-]*", page.read_text())
    ]
    assert found == []


def test_charts_are_drawn_from_the_benchmark_json(tmp_path):
    pytest.importorskip("matplotlib")
    module = _make_figures()
    assert module.main(["--only", "charts", "--out", str(tmp_path)]) == 0
    names = {p.name for p in tmp_path.glob("*.png")}
    assert names == {"chart-sampling.png", "chart-quantizer.png", "chart-prior-quality.png", "chart-two-stage.png"}
    with Image.open(tmp_path / "chart-sampling.png") as image:
        assert image.mode == "P" and image.width >= 400  # palette PNG


def test_quality_charts_draw_every_record(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    module, charts = _make_figures(), _quality_charts()
    drawn: dict[str, list[str]] = {}
    finish = charts.finish_chart

    def spy(fig, record, name, bottom, out):
        drawn[name] = [line.get_label() for ax in fig.axes[:1] for line in ax.get_lines()]
        finish(fig, record, name, bottom, out)

    monkeypatch.setattr(charts, "finish_chart", spy)
    assert module.main(["--only", "quality", "--out", str(tmp_path)]) == 0
    data = ROOT / "docs" / "data"
    budgets = sorted(p.stem.removeprefix("quality_budget_") for p in data.glob("quality_budget_*.json"))
    long = {charts._curve_length(p.stem.removeprefix("quality_curve_mnist_"))[1]
            for p in data.glob("quality_curve_mnist_*.json")} - {None}  # fmt: skip
    expected = {"quality-curves", "quality-temperature", "quality-floor", "quality-trials"}
    if any(data.glob("quality_colour_pixel_*_*min.json")):
        expected.add("colour-pixel-orders")
    expected |= {f"pixels-{charts._pixels_run(p.stem)[0]}" for p in data.glob("quality_pixels_*_*min.json")}
    assert set(drawn) == expected | {f"quality-curves-{length}" for length in long}
    assert {p.stem for p in tmp_path.glob("*.png")} == set(drawn)
    # one line per budget record (every variant), then one floor line per dataset
    assert drawn["quality-temperature"][: len(budgets)] == [name.replace("_", ", ") for name in budgets]


def test_pixels_run_names_dataset_prior_and_minutes():
    module = _quality_charts()
    assert module._pixels_run("quality_pixels_cifar10-subset_pixelcnn_pp_softmax_10min") == (
        "cifar10-subset", "pixelcnn_pp_softmax", "10min")  # fmt: skip
    assert module._pixels_run("quality_pixels_mnist_gated_pixelcnn_30min") == ("mnist", "gated_pixelcnn", "30min")


def test_curve_length_splits_off_a_curves_minutes():
    module = _quality_charts()
    assert module._curve_length("gated_readme_60min") == ("gated_readme", "60min")
    assert module._curve_length("gated_default") == ("gated_default", None)
    assert module._curve_length("rnn") == ("rnn", None)


def test_curve_charts_group_curves_by_length():
    module = _quality_charts()

    def record(seconds, threads=1):
        curve = [{"train_seconds": float(s), "fid": 1.0, "bits_per_code": 4.0} for s in seconds]
        return {"results": {"curve": curve}, "budget": {"threads": threads}}

    main = record([60, 300, 900], threads=2)
    curves = {"rnn": record([60, 300], threads=2), "gated_readme_60min": record([60, 600, 1800, 3600]),
              "gated_readme_average_10min": record([60, 600])}  # fmt: skip
    charts = module._curve_charts(main, curves)
    assert set(charts) == {"quality-curves", "quality-curves-60min", "quality-curves-10min"}
    lines, threads, source = charts["quality-curves"]
    assert set(lines) == {"gated_pixelcnn (README)", "rnn"} and threads == 2 and source is main
    lines, threads, source = charts["quality-curves-10min"]
    assert set(lines) == {"gated_readme_average", "gated_readme (60min run)"} and threads == 1
    assert source is curves["gated_readme_average_10min"]
    assert [p["train_seconds"] for p in lines["gated_readme (60min run)"]] == [60.0, 600.0]  # cut to 10 minutes


def _readme_models():
    """scripts/figures/readme_models.py, the module make_figures.py runs for ``--only readme gallery``."""
    _make_figures()
    return importlib.import_module("scripts.figures.readme_models")


def _fake_mnist(n: int, seed: int):
    """``n`` random 28x28 grey images with the labels 0..9 in turn: MNIST's shapes, none of its files."""
    import torch

    import vqgen

    images = torch.randint(0, 256, (n, 1, 28, 28), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)
    return vqgen.data.from_arrays(images, torch.arange(n) % 10)


def test_readme_captions_mark_what_the_classifier_disagrees_with():
    import torch

    module = _readme_models()
    asked, predicted = torch.tensor([0, 1, 2, 3]), torch.tensor([0, 1, 2, 8])
    assert module.checked_captions(asked, predicted) == ["0", "1", "2", "3 != 8"]
    names = [f"class{i}" for i in range(10)]
    assert module.checked_captions(asked[3:], predicted[3:], names) == ["class3 != class8"]
    with pytest.raises(ValueError, match="differ in shape"):
        module.checked_captions(asked, predicted[:2])


@pytest.mark.filterwarnings("ignore:only 1 of 512 codes used")
def test_readme_picture_of_a_saved_model_and_classifier(tmp_path, monkeypatch):
    """``--only readme --model PATH --classifier PATH``: no training, 30 captioned samples, a footer naming both."""
    from vqgen import TwoStageModel
    from vqgen.classifier import FeatureClassifier

    module, figures = _make_figures(), _readme_models()
    data = {"train": _fake_mnist(40, 0), "test": _fake_mnist(20, 1)}
    monkeypatch.setattr(figures, "load_mnist", lambda split, subset=None: data[split])
    model = TwoStageModel.from_preset("mnist-small")  # the preset's config, two steps of training
    steps = {"max_steps": 1, "batch_size": 20, "progress": False}
    model.fit(data["train"], stage1=steps, stage2=steps)
    monkeypatch.chdir(tmp_path)  # relative paths: the footer names the command as typed
    model.save_pretrained("model")
    FeatureClassifier(widths=[4, 8]).save_pretrained("classifier")  # untrained: it disagrees freely
    drawn, footers, with_footer = [], [], figures.with_footer
    captions = figures.checked_captions
    monkeypatch.setattr(figures, "checked_captions", lambda *a: drawn.append(captions(*a)) or drawn[-1])
    monkeypatch.setattr(figures, "with_footer", lambda canvas, text: footers.append(text) or with_footer(canvas, text))
    monkeypatch.setattr(figures, "train_readme_model", None)  # never trains with --model
    monkeypatch.setattr(figures, "train", None)  # nor draws the gallery
    assert module.main(["--only", "readme", "--model", "model", "--classifier", "classifier", "--out", "out"]) == 0
    with Image.open("out/readme.png") as image:
        assert image.mode == "L" and 800 <= image.width <= 1200 and image.height <= 800  # one screen
    assert len(drawn) == 1 and [c.split(" != ")[0] for c in drawn[0]] == [str(i % 10) for i in range(30)]
    command, trained, classifier = footers
    assert command.startswith("python scripts/make_figures.py --only readme --model model --classifier classifier")
    assert trained == "model: model" and classifier.startswith("classifier: classifier, ")  # no run.json: the path


def test_readme_refuses_a_model_of_another_configuration(tmp_path, capsys):
    from vqgen import TwoStageModel

    module = _make_figures()
    TwoStageModel.from_preset("mnist-demo").save_pretrained(tmp_path / "demo")
    assert module.main(["--only", "readme", "--model", str(tmp_path / "demo"), "--out", str(tmp_path)]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and "not a model of the mnist-small preset" in error and "num_codes 64" in error
    assert not (tmp_path / "readme.png").exists()


def test_readme_training_facts_read_a_vqgen_fit_folder(tmp_path):
    import json

    module = _readme_models()
    assert module.training_facts(tmp_path) is None  # save_pretrained alone: the command says it all
    (tmp_path / "run.json").write_text(json.dumps({"preset": "mnist-small", "dataset": "mnist"}))
    stage2 = {"step": 5000, "train_seconds": 899.7, "eval": {"bits_per_dim": 2.3456}}
    for stage, last in (("stage1", {"step": 900, "train_seconds": 300.2}), ("stage2", stage2)):
        (tmp_path / stage).mkdir()
        (tmp_path / stage / "metrics.json").write_text(json.dumps({"history": [{"step": 1}, last]}))
    assert module.training_facts(tmp_path) == (
        "vqgen fit --preset mnist-small on mnist; stage 1: 900 steps, 300 s; "
        "stage 2: 5,000 steps, 900 s, held-out 2.346 bits/code"
    )
