"""fit_vqvae / evaluate_vqvae and the shared training pieces: learning, reproducibility, checkpoints, errors."""

from __future__ import annotations

import inspect
import json
import math

import pytest
import torch

import vqgen
from vqgen.training import MetricsHistory, RunningMeans, TrainConfig, evaluate_vqvae, fit_vqvae, resolve_device
from vqgen.training.history import METRICS_NAME
from vqgen.training.inputs import as_images, batch_indices

TINY = {"hidden_channels": 8, "residual_channels": 4, "num_downsamples": 1, "latent_dim": 4}


METRIC_KEYS = {"loss", "reconstruction_mse", "codebook_loss", "commitment_loss", "perplexity", "usage"}


def _quantizer(name: str) -> vqgen.Quantizer:
    """16 codes where the quantizer takes ``num_codes``; otherwise (FSQ: K is implied by its levels) its tiny config."""
    cls = vqgen.registry("quantizer").get(name)
    if "num_codes" in inspect.signature(cls.__init__).parameters:
        return vqgen.build("quantizer", name, num_codes=16, dim=4)
    return vqgen.build("quantizer", name, **{**cls.tiny_config(), "dim": 4})


def _model(seed: int = 0, quantizer: str = "vq", channels: int = 1):
    torch.manual_seed(seed)
    return vqgen.build(
        "model",
        "vqvae",
        encoder=vqgen.build("encoder", "conv", in_channels=channels, **TINY),
        quantizer=_quantizer(quantizer),
        decoder=vqgen.build("decoder", "conv", out_channels=channels, **TINY),
    )


def _images(n: int = 96, seed: int = 0, channels: int = 1) -> torch.Tensor:
    """Structured uint8 images (random bright rectangles), so there is something to learn."""
    g = torch.Generator().manual_seed(seed)
    images = torch.zeros(n, channels, 8, 8, dtype=torch.uint8)
    for i in range(n):
        top, left = torch.randint(0, 5, (2,), generator=g).tolist()
        images[i, :, top : top + 3, left : left + 4] = 255
    return images


def _same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("quantizer", vqgen.available("quantizer"))
def test_training_lowers_held_out_error(quantizer):
    train, held_out = _images(128), _images(32, seed=1)
    model = _model(quantizer=quantizer)
    before = evaluate_vqvae(model, held_out)
    history = fit_vqvae(model, train, eval_data=held_out, epochs=3, batch_size=16, lr=3e-3, progress=False)
    assert [record["epoch"] for record in history] == [1, 2, 3]
    assert history[-1]["step"] == 3 * 8
    for record in history:
        assert set(record["train"]) == METRIC_KEYS == set(record["eval"])
        assert all(math.isfinite(v) for v in [*record["train"].values(), *record["eval"].values()])
        assert 1 <= record["eval"]["perplexity"] <= model.num_codes and 0 < record["eval"]["usage"] <= 1
    assert history[-1]["eval"]["reconstruction_mse"] < 0.7 * before["reconstruction_mse"]
    after = evaluate_vqvae(model, held_out)
    assert after["reconstruction_mse"] == pytest.approx(history[-1]["eval"]["reconstruction_mse"])


def test_same_seed_same_weights_other_seed_other_weights():
    data = _images(64)
    models = [_model(seed=0) for _ in range(3)]
    for model, seed in zip(models, [5, 5, 6]):
        fit_vqvae(model, data, epochs=2, batch_size=16, seed=seed, progress=False)
    assert _same_weights(models[0], models[1])
    assert not _same_weights(models[0], models[2])


def test_accepts_datasets_uint8_and_float_tensors():
    from vqgen.data.dataset import ImageDataset

    data = _images(32)
    dataset = ImageDataset(data, torch.zeros(32, dtype=torch.long), num_classes=1)
    runs = []
    for source in (dataset, data, data.float() / 255):
        model = _model()
        runs.append(fit_vqvae(model, source, epochs=1, batch_size=16, progress=False))
        runs[-1] = model
    assert _same_weights(runs[0], runs[1])
    for a, b in zip(runs[1].state_dict().values(), runs[2].state_dict().values()):
        torch.testing.assert_close(a, b)


def test_max_steps_stops_mid_epoch_and_records_it():
    history = fit_vqvae(
        _model(), _images(64), eval_data=_images(16), epochs=5, batch_size=8, max_steps=3, progress=False
    )
    assert len(history) == 1 and history[0]["step"] == 3 and "eval" in history[0]


def test_checkpoint_keeps_best_or_last(tmp_path):
    model = _model()
    history = fit_vqvae(
        model, _images(64), eval_data=_images(16, seed=1), epochs=3, batch_size=16, checkpoint_dir=tmp_path / "best",
        lr=3e-3, progress=False,
    )  # fmt: skip
    metrics = json.loads((tmp_path / "best" / METRICS_NAME).read_text())
    assert metrics["history"] == json.loads(json.dumps(list(history)))
    assert metrics["settings"]["batch_size"] == 16 and metrics["monitor"] == "eval/reconstruction_mse"
    best = min(history, key=lambda r: r["eval"]["reconstruction_mse"])
    assert metrics["saved_epoch"] == best["epoch"]
    loaded = vqgen.from_pretrained(tmp_path / "best")
    assert evaluate_vqvae(loaded, _images(16, seed=1))["reconstruction_mse"] == pytest.approx(
        best["eval"]["reconstruction_mse"], rel=1e-5
    )

    model = _model()
    fit_vqvae(
        model, _images(64), epochs=2, batch_size=16, checkpoint_dir=tmp_path / "last", keep="last", progress=False
    )
    metrics = json.loads((tmp_path / "last" / METRICS_NAME).read_text())
    assert metrics["saved_epoch"] == 2 and metrics["monitor"] == "train/reconstruction_mse"
    assert _same_weights(vqgen.from_pretrained(tmp_path / "last"), model)


def test_progress_bar_can_be_shown(capsys):
    fit_vqvae(_model(), _images(16), epochs=1, batch_size=8, progress=True)
    fit_vqvae(_model(), _images(16), epochs=1, batch_size=8, progress=False)


def test_bad_inputs_are_clear_errors():
    model = _model()
    with pytest.raises(TypeError, match="must be a vqgen VQVAE"):
        fit_vqvae(model.encoder, _images(8), epochs=1)
    with pytest.raises(ValueError, match=r"3 channels .* takes 1; build the encoder with in_channels=3"):
        fit_vqvae(model, _images(8, channels=3), epochs=1)
    with pytest.raises(ValueError, match="multiples of 2; got 7x7"):
        fit_vqvae(model, torch.zeros(4, 1, 7, 7, dtype=torch.uint8), epochs=1)
    with pytest.raises(ValueError, match="eval_data has 3 channels"):
        fit_vqvae(model, _images(8), eval_data=_images(8, channels=3), epochs=1)
    with pytest.raises(TypeError, match="must hold uint8 images"):
        fit_vqvae(model, torch.zeros(4, 1, 8, 8, dtype=torch.int32), epochs=1)
    with pytest.raises(TypeError, match="vqgen.data dataset"):
        fit_vqvae(model, [[0]], epochs=1)
    with pytest.raises(ValueError, match="empty"):
        fit_vqvae(model, torch.zeros(0, 1, 8, 8, dtype=torch.uint8), epochs=1)
    with pytest.raises(TypeError, match=r"unknown training options \['epoch'\]"):
        fit_vqvae(model, _images(8), epoch=1)
    with pytest.raises(ValueError, match="epochs must be > 0"):
        fit_vqvae(model, _images(8), epochs=0)
    with pytest.raises(ValueError, match="keep must be 'best' or 'last'"):
        fit_vqvae(model, _images(8), keep="first")
    with pytest.raises(ValueError, match="not a valid torch device"):
        fit_vqvae(model, _images(8), device="gpu", epochs=1)
    bad = _images(8).float() / 255
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        fit_vqvae(model, bad, epochs=1, progress=False)


def test_common_pieces():
    means = RunningMeans()
    means.add({"a": 1.0, "b": torch.tensor(4.0)}, weight=1)
    means.add({"a": 4.0, "b": torch.tensor(1.0)}, weight=2)
    assert means.means() == {"a": 3.0, "b": 2.0} and RunningMeans().means() == {}
    history = MetricsHistory([{"epoch": 1, "eval": {"m": 0.5}}, {"epoch": 2, "eval": {"m": 0.2}}, {"epoch": 3}])
    assert history.best("eval", "m")["epoch"] == 2 and history.best("eval", "m", mode="max")["epoch"] == 1
    assert history.best("train", "m") is None
    config = TrainConfig().replace(lr=0.1, checkpoint_dir=None)
    assert config.lr == 0.1 and TrainConfig().lr == 1e-3 and config.to_dict()["batch_size"] == 64
    assert resolve_device(None).type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    order = torch.cat(list(batch_indices(10, 3, generator=torch.Generator().manual_seed(0))))
    assert sorted(order.tolist()) == list(range(10))
    assert [len(b) for b in batch_indices(10, 4, shuffle=False)] == [4, 4, 2]
    assert as_images(_images(4)).shape == (4, 1, 8, 8)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_trains_on_cuda_like_on_cpu():
    history = fit_vqvae(_model(), _images(64), eval_data=_images(16), epochs=2, batch_size=16, device="cuda",
                        progress=False)  # fmt: skip
    assert history[-1]["eval"]["reconstruction_mse"] < 0.2
    model = _model()
    fit_vqvae(model, _images(64), epochs=1, batch_size=16, device="cuda", progress=False)
    assert next(model.parameters()).device.type == "cuda"


def test_float_images_outside_0_1_are_refused_before_training():
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    message = r"train_data: float images must be in \[0, 1\], got values up to 255.0: divide by 255, or pass uint8"
    with pytest.raises(ValueError, match=message):
        fit_vqvae(model, _images(16).float(), epochs=1, batch_size=8, progress=False)
    with pytest.raises(ValueError, match=r"eval_data: float images .* up to 255.0"):
        fit_vqvae(model, _images(16), eval_data=_images(8).float(), epochs=1, batch_size=8, progress=False)
    with pytest.raises(ValueError, match=r"got values down to -1.0: map them to \[0, 1\] \(\(x \+ 1\) / 2"):
        fit_vqvae(model, _images(16).float() / 127.5 - 1, epochs=1, batch_size=8, progress=False)
    with pytest.raises(ValueError, match=r"up to 1.5: clamp them"):
        evaluate_vqvae(model, _images(8).float() / 170)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # not one step was taken


def _count_range_checks(monkeypatch) -> list[int]:
    """Spy on check_unit_range: the number of elements of each float tensor it looks at."""
    from vqgen.training import inputs

    seen, check = [], inputs.check_unit_range

    def spy(images, **kwargs):
        if images.is_floating_point():
            seen.append(images.numel())
        return check(images, **kwargs)

    monkeypatch.setattr(inputs, "check_unit_range", spy)
    return seen


def test_float_range_is_checked_once_in_memory_and_per_batch_streamed(monkeypatch):
    from torch.utils.data import TensorDataset

    images = _images(32).float() / 255
    seen = _count_range_checks(monkeypatch)
    fit_vqvae(_model(), images, eval_data=images[:8], epochs=2, batch_size=8, progress=False)
    assert seen == [images.numel(), images[:8].numel()]  # each whole tensor once, not once per batch or epoch
    seen.clear()
    fit_vqvae(_model(), TensorDataset(images), eval_data=TensorDataset(images[:8]), epochs=2, batch_size=8,
              progress=False)  # fmt: skip
    assert seen == [8 * 64] * (2 * (4 + 1))  # every batch of 8 images, training (4 a epoch) and held-out (1)
    bad = images.clone()
    bad[20] *= 255  # in the third batch
    with pytest.raises(ValueError, match=r"train_data: float images .* up to 255.0: divide by 255"):
        fit_vqvae(_model(), TensorDataset(bad), epochs=1, batch_size=8, progress=False)
    with pytest.raises(ValueError, match=r"data: float images .* up to 255.0: divide by 255"):
        evaluate_vqvae(_model(), TensorDataset(bad), batch_size=8)


def test_streamed_held_out_data_gives_the_in_memory_figures():
    from torch.utils.data import TensorDataset

    train, test = _images(32), _images(24, seed=1)
    histories, models = [], []
    for eval_data in (test, TensorDataset(test)):
        model = _model()
        histories.append(fit_vqvae(model, train, eval_data=eval_data, epochs=2, batch_size=8, eval_batch_size=16,
                                   progress=False))  # fmt: skip
        models.append(model)
    in_memory, streamed = histories
    for a, b in zip(in_memory, streamed):
        assert b["eval"] == pytest.approx(a["eval"], rel=1e-6)
    for (name, a), b in zip(models[0].state_dict().items(), models[1].state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=f"{name} differs")
    assert evaluate_vqvae(models[0], TensorDataset(test), batch_size=5) == pytest.approx(
        evaluate_vqvae(models[0], test, batch_size=7), rel=1e-6
    )


def test_held_out_images_with_other_channels_say_how_to_load_both_alike():
    from torch.utils.data import TensorDataset

    with pytest.raises(ValueError, match=r"eval_data has 3 channels but train_data has 1; .* pass mode='RGB'"):
        fit_vqvae(_model(), _images(8), eval_data=TensorDataset(_images(8, channels=3)), epochs=1, progress=False)
    with pytest.raises(ValueError, match=r"train_data has 3 channels .* takes 1"):  # checked before training
        fit_vqvae(_model(), TensorDataset(_images(8, channels=3)), epochs=1, progress=False)
