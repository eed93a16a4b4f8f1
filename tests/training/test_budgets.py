"""A budget means what it says: with ``max_seconds`` or ``max_steps`` and no ``epochs``, the epochs are unbounded;
a resumed run whose budget is spent trains no more."""

from __future__ import annotations

import pytest
import torch

import vqgen
from vqgen.training import TrainConfig, fit_prior, fit_vqvae

TINY = {"hidden_channels": 8, "residual_channels": 4, "num_downsamples": 1, "latent_dim": 4}
QUIET = {"progress": False, "seed": 0, "device": "cpu"}


def vqvae():
    vqgen.seed_everything(0)
    return vqgen.build(
        "model", "vqvae", encoder=vqgen.build("encoder", "conv", in_channels=1, **TINY),
        quantizer=vqgen.build("quantizer", "vq", num_codes=8, dim=4),
        decoder=vqgen.build("decoder", "conv", out_channels=1, **TINY),
    )  # fmt: skip


def test_epochs_default_to_ten_only_without_another_budget():
    assert TrainConfig().epochs is None and TrainConfig().epoch_limit == 10
    assert TrainConfig(max_seconds=5).epoch_limit is None and TrainConfig(max_steps=5).epoch_limit is None
    assert TrainConfig(epochs=3, max_seconds=5).epoch_limit == 3  # given epochs still bind
    with pytest.raises(ValueError, match="epochs must be"):
        TrainConfig(epochs=0)


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # two threads on a busy 2-core machine once made a step of this tiny model 0.9 s
    yield
    torch.set_num_threads(threads)


def test_a_time_budget_alone_is_the_budget(one_thread):
    """digits, 32 images in one batch: far more than 10 epochs fit in the budget, and the run uses all of it."""
    train = vqgen.data.load_dataset("digits", split="train").images[:32]
    budget = 2.0
    history = fit_vqvae(vqvae(), train, batch_size=32, max_seconds=budget, **QUIET)
    used, steps = history[-1]["train_seconds"], history[-1]["step"]
    assert len(history) > 10, len(history)
    # Stopped by the clock, within a few steps' time of it (a generous margin for a busy machine).
    assert budget <= used < budget + max(0.25, 5 * used / steps), (used, steps)


def test_a_step_budget_alone_is_the_budget():
    grids = torch.randint(0, 8, (16, 1, 3, 3), generator=torch.Generator().manual_seed(0))
    prior = vqgen.build("prior", "rnn", num_categories=8, hidden_size=8)
    history = fit_prior(prior, grids, batch_size=8, max_steps=25, schedule="cosine", **QUIET)  # 2 steps an epoch
    assert history[-1]["step"] == 25 and history[-1]["epoch"] == 13


@pytest.mark.parametrize("budget", [{"max_seconds": 0.3}, {"max_steps": 3}, {"max_steps": 4}])
def test_resuming_a_run_whose_budget_is_spent_trains_no_more(tmp_path, budget):
    """Stopped inside an epoch (3 steps, or whenever the clock says) or at its end (4 steps): the resumed run takes no
    step, and returns the same history, the last (partial) epoch's record made again."""
    train = vqgen.data.load_dataset("digits", split="train").images[:64]
    options = {"batch_size": 32, "epochs": 10_000, "save_states": True, **QUIET, **budget}  # 2 steps an epoch
    first = vqvae()
    history = fit_vqvae(first, train, checkpoint_dir=tmp_path, **options)
    resumed = vqvae()
    again = fit_vqvae(resumed, train, checkpoint_dir=tmp_path, resume=tmp_path, **options)
    records = [[(r["epoch"], r["step"], r["train"]) for r in h] for h in (history, again)]
    assert records[1] == records[0]
    for key, value in first.state_dict().items():
        assert torch.equal(resumed.state_dict()[key], value), key
