"""The stage-2 loop: fit_prior on pixels, code grids and labelled datasets; checkpoints, seeds, stopping, errors."""

from __future__ import annotations

import json

import pytest
import torch

import vqgen
from vqgen.data import ImageDataset
from vqgen.training.prior import as_grids, encode_codes, evaluate_prior, fit_prior


def rnn(**overrides):
    from vqgen.priors.rnn import RNNPrior

    return vqgen.build("prior", "rnn", **{**RNNPrior.tiny_config(), **overrides})


def striped(n: int = 64, num_categories: int = 8, size: int = 4, seed: int = 0) -> torch.Tensor:
    """Grids whose rows repeat one random value: easy to learn, far from uniform."""
    g = torch.Generator().manual_seed(seed)
    rows = torch.randint(0, num_categories, (n, 1, size, 1), generator=g)
    return rows.expand(n, 1, size, size).contiguous()  # (N, 1, H, W) int64


def test_training_lowers_held_out_bits_per_dim():
    train, test = striped(128), striped(64, seed=1)
    prior = rnn(num_categories=8, hidden_size=32)
    before = evaluate_prior(prior, test)["bits_per_dim"]
    history = fit_prior(prior, train, eval_data=test, epochs=4, batch_size=16, lr=1e-2, progress=False)
    after = history[-1]["eval"]["bits_per_dim"]
    assert len(history) == 4 and history[-1]["step"] == 4 * 8
    assert before > 2.5  # about log2(8) = 3 untrained
    assert after < 0.6 * before, (before, after)
    assert after == pytest.approx(evaluate_prior(prior, test)["bits_per_dim"], rel=1e-5)
    assert history[-1]["eval"]["nll"] == pytest.approx(after * 0.6931471805599453, rel=1e-6)


def test_same_seed_gives_the_same_weights():
    data = striped(32)
    weights = []
    for _ in range(2):
        torch.manual_seed(123)  # the same initial model
        prior = rnn(num_categories=8)
        fit_prior(prior, data, epochs=1, batch_size=8, seed=7, progress=False)
        weights.append(prior.state_dict())
    for key in weights[0]:
        torch.testing.assert_close(weights[0][key], weights[1][key], rtol=0, atol=0)


def test_checkpoint_holds_the_prior_and_metrics(tmp_path):
    prior = rnn(num_categories=8)
    out = tmp_path / "run"
    fit_prior(
        prior, striped(32), eval_data=striped(8, seed=3), epochs=2, batch_size=8, checkpoint_dir=out,
        progress=False, metadata={"dataset": "striped"},
    )  # fmt: skip
    loaded = vqgen.from_pretrained(out)
    assert type(loaded) is type(prior) and dict(loaded.config) == dict(prior.config)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["settings"]["grid_shape"] == [1, 4, 4]
    assert metrics["settings"]["metadata"] == {"dataset": "striped"}
    assert metrics["monitor"] == "eval/bits_per_dim" and len(metrics["history"]) == 2


def test_uint8_pixels_and_class_labels_from_a_dataset():
    images = torch.randint(0, 256, (12, 1, 3, 3), dtype=torch.uint8)
    dataset = ImageDataset(images, torch.arange(12) % 3)
    prior = rnn(num_categories=256, num_classes=3)
    history = fit_prior(prior, dataset, eval_data=dataset, epochs=1, batch_size=4, progress=False)
    assert 4 < history[0]["eval"]["bits_per_dim"] < 12  # near log2(256) = 8 for random pixels
    with pytest.raises(ValueError, match="labels"):
        fit_prior(prior, images, epochs=1, progress=False)  # a bare tensor has no labels


def test_code_grids_without_channel_axis_and_max_steps():
    codes = striped(40, num_categories=16)[:, 0]  # (N, h, w)
    assert as_grids(codes).shape == (40, 1, 4, 4)
    history = fit_prior(rnn(num_categories=16), codes, epochs=5, batch_size=4, max_steps=3, progress=False)
    assert len(history) == 1 and history[0]["step"] == 3


def test_max_seconds_stops_training():
    history = fit_prior(rnn(num_categories=8), striped(64), epochs=50, batch_size=2, max_seconds=0.05, progress=False)
    assert history[-1]["step"] < 50 * 32 and history[-1]["train_seconds"] < 5


def test_user_errors_are_clear():
    prior = rnn(num_categories=8)
    with pytest.raises(TypeError, match="integer values"):
        fit_prior(prior, torch.rand(4, 1, 2, 2), progress=False)
    with pytest.raises(ValueError, match="channels"):
        fit_prior(prior, torch.zeros(4, 3, 2, 2, dtype=torch.long), progress=False)
    with pytest.raises(ValueError, match=r"\[0, 8\)"):
        fit_prior(prior, torch.full((4, 1, 2, 2), 9), progress=False)
    with pytest.raises(TypeError, match="AutoregressivePrior"):
        fit_prior(torch.nn.Linear(2, 2), striped(4), progress=False)


@pytest.mark.parametrize("name", vqgen.available("prior"))
def test_every_registered_prior_trains(name):
    cls = vqgen.registry("prior").get(name)
    prior = vqgen.build("prior", name, **{**cls.tiny_config(), "num_categories": 8})
    data = striped(8)
    if not any(p.requires_grad for p in prior.parameters()):
        with pytest.raises(ValueError, match="no trainable parameters"):  # fit by counting, not by gradients
            fit_prior(prior, data, progress=False)
        return
    history = fit_prior(prior, data, eval_data=data, epochs=1, batch_size=4, progress=False)
    assert torch.isfinite(torch.tensor(history[0]["eval"]["bits_per_dim"]))


def test_encode_codes_with_a_vqvae():
    kinds = {"encoder": "conv", "quantizer": "vq", "decoder": "conv"}
    parts = {k: vqgen.build(k, n, **vqgen.registry(k).get(n).tiny_config()) for k, n in kinds.items()}
    parts["quantizer"] = vqgen.build("quantizer", "vq", num_codes=16, dim=parts["encoder"].latent_dim)
    model = vqgen.build("model", "vqvae", **parts)
    images = torch.randint(0, 256, (5, 1, 8, 8), dtype=torch.uint8)
    codes = encode_codes(model, images, batch_size=2)
    assert codes.shape == (5, 1, 4, 4) and codes.dtype == torch.long
    assert int(codes.max()) < model.num_codes


def test_fit_prior_says_when_the_prior_cannot_see_the_whole_grid(caplog):
    import logging

    prior = vqgen.build("prior", "gated_pixelcnn", **vqgen.priors.GatedPixelCNN.tiny_config())  # sees 5 rows
    for height, said in ((8, True), (4, False)):
        codes = torch.randint(0, 16, (8, 1, height, 4))
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="vqgen.training.prior"):
            fit_prior(prior, codes, epochs=1, max_steps=1, batch_size=8, progress=False)
        assert ("sees the last 5 of the 8 rows of a 8x4 grid" in caplog.text) is said


@pytest.mark.parametrize("conditional", [False, True])
def test_streamed_held_out_grids_give_the_in_memory_figures(conditional):
    """Held-out items (grid (1, h, w), label), as a CodeGridDataset serves them, read batch by batch."""
    from torch.utils.data import TensorDataset

    train, test = striped(32), striped(20, seed=1)
    train_labels, test_labels = torch.arange(32) % 3, torch.arange(20) % 3
    options = {"num_classes": 3} if conditional else {}
    cond, eval_cond = (train_labels, test_labels) if conditional else (None, None)
    histories, priors = [], []
    for eval_data in (test, TensorDataset(test, test_labels)):
        torch.manual_seed(0)
        prior = rnn(num_categories=8, **options)
        held_out_cond = None if isinstance(eval_data, TensorDataset) else eval_cond  # streamed: labels per item
        histories.append(fit_prior(prior, train, cond=cond, eval_data=eval_data, eval_cond=held_out_cond, epochs=2,
                                   batch_size=8, eval_batch_size=6, progress=False))  # fmt: skip
        priors.append(prior)
    for in_memory, streamed in zip(*histories):
        assert streamed["eval"] == pytest.approx(in_memory["eval"], rel=1e-6)
    for a, b in zip(priors[0].state_dict().values(), priors[1].state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert evaluate_prior(priors[0], TensorDataset(test, test_labels), batch_size=7) == pytest.approx(
        evaluate_prior(priors[0], test, cond=eval_cond, batch_size=5), rel=1e-6
    )


def test_streamed_held_out_grids_are_checked_batch_by_batch():
    from torch.utils.data import TensorDataset

    prior = rnn(num_categories=8)
    bad = striped(12)
    bad[10] = 9  # in the second batch of 8
    with pytest.raises(ValueError, match=r"data must lie in \[0, 8\), got values in \[0, 9\]"):
        evaluate_prior(prior, TensorDataset(bad), batch_size=8)
    with pytest.raises(ValueError, match=r"data has 3 channels .* the prior models 1"):
        evaluate_prior(prior, TensorDataset(striped(4).expand(4, 3, 4, 4)), batch_size=8)
    with pytest.raises(ValueError, match="eval_data has grids \\(1, 2, 2\\), train_data \\(1, 4, 4\\)"):
        fit_prior(prior, striped(8), eval_data=TensorDataset(striped(4, size=2)), progress=False)
    with pytest.raises(ValueError, match="no labels"):
        evaluate_prior(rnn(num_categories=8, num_classes=3), TensorDataset(striped(4)))
