"""Bad input to training: budgets too small for one epoch train and report; codebooks the data cannot fill warn."""

from __future__ import annotations

import warnings

import pytest
import torch

import vqgen
from vqgen import TwoStageModel
from vqgen.sampling import SamplingOptions
from vqgen.training import fit_prior, fit_vqvae


def _tiny(kind: str, name: str, drop: tuple[str, ...] = ()) -> dict:
    config = vqgen.registry(kind).get(name).tiny_config()
    return {"name": name, **{k: v for k, v in config.items() if k not in drop}}


def _config(num_codes: int = 8, **quantizer) -> dict:
    return {
        "encoder": _tiny("encoder", "conv"),
        "quantizer": {**_tiny("quantizer", "ema", drop=("dim",)), "num_codes": num_codes, **quantizer},
        "prior": _tiny("prior", "gated_pixelcnn", drop=("num_categories", "channels")),
    }


def _images(n: int = 64, size: int = 8) -> torch.Tensor:
    """Random bars: every image (N, 1, size, size) uint8 has one white row."""
    images = torch.zeros(n, 1, size, size, dtype=torch.uint8)
    images[torch.arange(n), 0, torch.randint(size, (n,))] = 255
    return images


QUIET = {"batch_size": 8, "progress": False, "seed": 0}


@pytest.mark.parametrize("budget", [{"max_steps": 1}, {"max_seconds": 1e-9}])
def test_budget_below_one_epoch_trains_and_reports(budget):
    """One step of an 8-batch epoch: a history with one record of what was done, no crash, at every level."""
    torch.manual_seed(0)
    model = TwoStageModel.from_config(_config())
    images = _images()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a single batch uses few codes; that warning is tested below
        histories = model.fit(images, eval_data=images[:16], stage1={**QUIET, "epochs": 3, **budget},
                              stage2={**QUIET, "epochs": 3, **budget})  # fmt: skip
    for stage in ("stage1", "stage2"):
        (record,) = histories[stage]
        assert record["step"] == 1 and record["epoch"] == 1, record
        assert record["train_seconds"] > 0 and "eval" in record
    assert model.sample(2).shape == (2, 1, 8, 8)

    vqvae = TwoStageModel.from_config(_config()).vqvae
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        (record,) = fit_vqvae(vqvae, images, epochs=2, **QUIET, **budget)
    assert record["step"] == 1
    prior = vqgen.build("prior", "rnn", **vqgen.registry("prior").get("rnn").tiny_config())
    (record,) = fit_prior(prior, torch.randint(4, (64, 1, 3, 3)), epochs=2, **QUIET, **budget)
    assert record["step"] == 1 and record["train"]["bits_per_dim"] > 0


def test_codebook_larger_than_the_data_fills_warns_with_the_measured_usage():
    """8 images of 4x4 codes are 128 vectors: at most half of 256 codes can be used; the warning says how many were."""
    torch.manual_seed(0)
    model = TwoStageModel.from_config(_config(num_codes=256))
    with pytest.warns(
        UserWarning, match=r"only (\d+) of 256 codes used \([\d.]+ %\) by the 128 encoder outputs"
    ) as caught:
        model.fit_stage1(_images(8), **QUIET, epochs=1)
    used = int(str(caught[0].message).split()[1])
    assert 1 <= used <= 128
    assert f"num_codes={max(2, 2 ** (used - 1).bit_length())}" in str(caught[0].message)


def test_a_codebook_the_data_fills_does_not_warn():
    torch.manual_seed(0)
    model = TwoStageModel.from_config(_config(num_codes=4, kmeans_init=True))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        model.fit_stage1(torch.randint(256, (64, 1, 8, 8), dtype=torch.uint8), **QUIET, epochs=1)  # noise


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"temperature": 0}, ValueError, "temperature must be > 0, got 0"),
        ({"temperature": -1.0}, ValueError, "temperature must be > 0, got -1.0"),
        ({"temperature": float("nan")}, ValueError, "temperature must be > 0, got nan"),
        ({"temperature": float("inf")}, ValueError, "temperature must be finite, got inf"),
        ({"temperature": "1"}, TypeError, "temperature must be a number, got str"),
        ({"top_k": 0}, ValueError, "top_k must be > 0, got 0"),
        ({"top_k": 2.5}, TypeError, "top_k must be an int, got float"),
        ({"top_p": 0.0}, ValueError, r"top_p must lie in \(0, 1\], got 0.0"),
        ({"top_p": 1.5}, ValueError, r"top_p must lie in \(0, 1\], got 1.5"),
        ({"top_p": float("nan")}, ValueError, r"top_p must lie in \(0, 1\], got nan"),
    ],
)
def test_sampling_options_out_of_range_are_clear_errors(options, error, message):
    with pytest.raises(error, match=message):
        SamplingOptions(**options)
    prior = vqgen.build("prior", "rnn", **vqgen.registry("prior").get("rnn").tiny_config())
    with pytest.raises(error, match=message):  # and from every sampling entry point
        prior.sample(1, (2, 2), **options)
