"""PixelCNN++'s cached sampling: exact through the strided and transposed layers, every activation computed once.

The contract (test_contract.py) checks the stepper on 4x5 grids, where the quarter resolution is a single row; these
tests use 8x8 and 16x16 grids, where both strided steps and both up-sampling steps really act.
"""

from __future__ import annotations

import pytest
import torch

import vqgen
from vqgen.priors.pixelcnn_pp import PixelCNNpp
from vqgen.priors.pixelcnn_pp_layers import Op, ShiftedConv2d, Term
from vqgen.priors.pixelcnn_pp_stepper import Schedule


def tiny(**overrides) -> PixelCNNpp:
    prior = vqgen.build("prior", "pixelcnn_pp", **{**PixelCNNpp.tiny_config(), **overrides}).eval()
    with torch.no_grad():  # away from the initial values: the residual branches start small
        for parameter in prior.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    return prior


VARIANTS = {
    "mixture-colour": dict(channels=3, num_categories=256),
    "mixture-parallel-class": dict(channels=3, num_categories=256, channel_order="parallel", num_classes=3),
    "softmax-grey-vector": dict(input_mode="embed", cond_dim=2),
    "softmax-colour": dict(channels=3, input_mode="embed"),
}


def condition(prior, n):
    if prior.num_classes:
        return torch.arange(n) % prior.num_classes
    return torch.randn(n, prior.cond_dim) if prior.cond_dim else None


@pytest.mark.parametrize("size", [(8, 8), (16, 16), (9, 14)])
@pytest.mark.parametrize("variant", VARIANTS)
def test_stepper_gives_the_forward_logits_at_every_value(variant, size):
    """At every value the stepper's logits equal the forward pass's, while the values it must not read change."""
    prior = tiny(**VARIANTS[variant])
    height, width = size
    n, k, channels = 2, prior.num_categories, prior.channels
    generator = torch.Generator().manual_seed(0)
    x = torch.randint(0, k, (n, channels, height, width), generator=generator)
    cond = condition(prior, n)
    with torch.no_grad():
        full = prior.logits(x, cond)  # (n, K, C, H, W)
        stepper = prior.incremental(cond, size)
        order = torch.arange(channels * height * width).view(height, width, channels).permute(2, 0, 1)
        for step in range(channels * height * width):
            i, j, c = step // (width * channels), step // channels % width, step % channels
            noisy = torch.where(order > step, torch.randint(0, k, x.shape, generator=generator), x)
            torch.testing.assert_close(stepper.logits(noisy, i, j, c), full[:, :, c, i, j], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("variant", ["mixture-colour", "softmax-grey-vector"])
def test_cached_samples_equal_naive_samples_on_8x8(variant):
    prior = tiny(**VARIANTS[variant])
    cond = condition(prior, 3)
    samples = {
        method: prior.sample(3, (8, 8), cond, method=method, generator=torch.Generator().manual_seed(1))
        for method in ("cached", "naive")
    }
    assert torch.equal(samples["cached"], samples["naive"])


@pytest.mark.slow
def test_cached_samples_equal_naive_samples_on_16x16_colour():
    prior = tiny(**VARIANTS["mixture-colour"])
    samples = {
        method: prior.sample(2, (16, 16), method=method, generator=torch.Generator().manual_seed(2))
        for method in ("cached", "naive")
    }
    assert torch.equal(samples["cached"], samples["naive"])


@pytest.mark.parametrize("size", [(16, 16), (32, 32), (9, 7)])
def test_schedule_computes_every_activation_once_and_lower_resolutions_less_often(size):
    """Each needed activation of each layer is computed in exactly one group; a layer at half (quarter) resolution
    runs in about a quarter (a sixteenth) as many groups as one at full resolution: once every two (four) rows and
    columns."""
    prior = tiny()
    height, width = size
    schedule = prior.schedule(height, width)
    groups: dict[int, list[int]] = {0: [], 1: [], 2: []}
    for k, op in enumerate(prior.ops):
        jobs = [job for step in schedule.jobs for job in step if job.op == k]
        computed = torch.cat([job.positions for job in jobs]).sort().values
        assert torch.equal(computed, (schedule.steps[k] >= 0).nonzero().flatten()), op.out
        groups[op.level].append(len(jobs))
    mean = {level: sum(counts) / len(counts) for level, counts in groups.items()}
    if height % 4 == 0 and width % 4 == 0:  # resolutions of exactly 1/4 and 1/16 of the positions
        assert mean[1] < mean[0] / 3 and mean[2] < mean[1] / 3, mean
    assert schedule is prior.schedule(height, width)  # built once per grid size


def test_a_leak_in_the_network_is_caught_by_the_schedule():
    """An op that reads its own position of the input (a "down" conv without the shift) cannot be scheduled."""
    prior = tiny()
    leaky = ShiftedConv2d(prior.first_u.weight.shape[1], prior.num_filters, "down")
    ops = [Op("u", (Term(leaky, "input"),), "linear", 0), *prior.ops[1:]]
    with pytest.raises(RuntimeError, match="not causal"):
        Schedule(ops, prior.top, 4, 4)


def test_cached_sampling_never_runs_a_full_forward_pass(monkeypatch):
    prior = tiny(channels=3, num_categories=256)
    expected = prior.sample(2, (3, 5), generator=torch.Generator().manual_seed(0), method="naive")

    def no_full_pass(*args, **kwargs):
        raise AssertionError("cached sampling ran a full forward pass")

    monkeypatch.setattr(prior, "forward", no_full_pass)
    assert torch.equal(prior.sample(2, (3, 5), generator=torch.Generator().manual_seed(0)), expected)


def test_a_stepper_can_be_reused_for_a_second_grid_and_batch():
    prior = tiny(channels=3, num_categories=256)
    stepper = prior.incremental(None, (6, 6))
    for batch in (2, 3):
        x = torch.randint(0, 256, (batch, 3, 6, 6))
        with torch.no_grad():
            full = prior.logits(x)
            for i in range(6):
                for j in range(6):
                    for c in range(3):
                        torch.testing.assert_close(stepper.logits(x, i, j, c), full[:, :, c, i, j])


def test_completion_with_a_prefill_equals_naive_completion():
    prior = tiny(channels=3, num_categories=256)
    prefix = torch.randint(0, 256, (2, 3, 6, 8))  # six of eight rows known: the strided layers' caches prefilled
    samples = {
        method: prior.sample(2, (8, 8), prefix=prefix, method=method, generator=torch.Generator().manual_seed(4))
        for method in ("cached", "naive")
    }
    assert torch.equal(samples["cached"], samples["naive"]) and torch.equal(samples["cached"][:, :, :6], prefix)


def test_the_schedules_indices_live_on_the_device_asked_for():
    """A prior on an accelerator indexes its caches there: one schedule per grid size and device."""
    prior = tiny()
    on_meta = prior.schedule(4, 4, "meta")
    job = next(job for jobs in on_meta.jobs for job in jobs)
    assert job.positions.device.type == "meta" and all(w.device.type == "meta" for w in job.windows)
    assert on_meta is not prior.schedule(4, 4) and prior.schedule(4, 4).device.type == "cpu"
