"""The engine's parts: batches and sharding, mixed precision, schedule, accumulation, weight average, streamed data."""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils.data import DataLoader, IterableDataset, TensorDataset

import vqgen
from vqgen.training import TrainConfig, fit_prior, fit_vqvae
from vqgen.training.batches import EpochBatchSampler, make_loader
from vqgen.training.optim import make_schedule

TINY = {"hidden_channels": 8, "residual_channels": 4, "num_downsamples": 1, "latent_dim": 4}


def vqvae():
    torch.manual_seed(0)
    return vqgen.build(
        "model", "vqvae", encoder=vqgen.build("encoder", "conv", in_channels=1, **TINY),
        quantizer=vqgen.build("quantizer", "vq", num_codes=16, dim=4),
        decoder=vqgen.build("decoder", "conv", out_channels=1, **TINY),
    )  # fmt: skip


def rnn(**overrides):
    torch.manual_seed(0)
    return vqgen.build("prior", "rnn", **{"num_categories": 8, "hidden_size": 16, **overrides})


def rectangles(n: int = 64) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    images = torch.zeros(n, 1, 8, 8, dtype=torch.uint8)
    for i in range(n):
        top, left = torch.randint(0, 5, (2,), generator=g).tolist()
        images[i, :, top : top + 3, left : left + 4] = 255
    return images


def striped(n: int = 64) -> torch.Tensor:
    rows = torch.randint(0, 8, (n, 1, 4, 1), generator=torch.Generator().manual_seed(0))
    return rows.expand(n, 1, 4, 4).contiguous()


def test_sampler_shards_like_one_process_with_the_global_batch_and_skips():
    one = list(EpochBatchSampler(10, 4, seed=1))
    shards = [list(EpochBatchSampler(10, 2, seed=1, rank=r, world_size=2)) for r in range(2)]
    for j, batch in enumerate(one):
        assert sorted(shards[0][j] + shards[1][j]) == sorted(batch) or j == len(one) - 1
    sampler = EpochBatchSampler(10, 3, seed=1)
    sampler.set_epoch(2)
    epoch2 = list(sampler)
    sampler.set_epoch(2, skip=2)
    assert list(sampler) == epoch2[2:] and len(sampler) == 2
    sampler.set_epoch(3)
    assert list(sampler) != epoch2  # a new order every epoch
    loader = make_loader(torch.arange(10), torch.arange(10) * 2, batch_size=4, seed=1)
    x, y = next(loader.epoch(1))
    assert torch.equal(y, x * 2) and x.shape == (4,)
    with pytest.raises(TypeError, match="must be a tensor, a torch Dataset"):
        make_loader([1, 2], batch_size=2)


def test_bf16_on_the_cpu_trains_and_stays_finite():
    images = rectangles()
    model = vqvae()
    history = fit_vqvae(model, images, eval_data=images[:16], epochs=3, batch_size=16, lr=3e-3, precision="bf16",
                        progress=False)  # fmt: skip
    assert all(math.isfinite(v) for r in history for v in [*r["train"].values(), *r["eval"].values()])
    assert history[-1]["eval"]["reconstruction_mse"] < history[0]["eval"]["reconstruction_mse"]
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in model.parameters())
    prior_history = fit_prior(rnn(), striped(), eval_data=striped(16), epochs=2, batch_size=8, lr=1e-2,
                              precision="bf16", progress=False)  # fmt: skip
    assert math.isfinite(prior_history[-1]["eval"]["bits_per_dim"]) and prior_history[-1]["eval"]["bits_per_dim"] < 3


def test_warmup_then_cosine_schedule():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = make_schedule(optimizer, TrainConfig(schedule="cosine", warmup_steps=4), total_steps=14)
    rates = []
    for _ in range(14):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert rates[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert rates[4] == pytest.approx(1.0) and rates[9] == pytest.approx(0.5) and rates[13] < 0.03
    assert all(a >= b for a, b in zip(rates[3:], rates[4:]))
    with pytest.raises(ValueError, match="needs a known budget"):
        make_schedule(optimizer, TrainConfig(schedule="cosine"), total_steps=None)


def test_cosine_schedule_decays_over_a_time_budget_whichever_budget_ends_first():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    seconds = [0.0]
    config = TrainConfig(schedule="cosine", max_seconds=10.0)
    timed = make_schedule(optimizer, config, total_steps=None, elapsed=lambda: seconds[0])
    rates = {}
    for now in (2.5, 5.0, 7.5, 10.0, 12.0):
        seconds[0] = now
        timed.step()
        rates[now] = optimizer.param_groups[0]["lr"]
    assert [rates[t] for t in (2.5, 5.0, 7.5)] == pytest.approx([0.8536, 0.5, 0.1464], abs=1e-4)
    assert rates[10.0] == rates[12.0] == pytest.approx(0.0, abs=1e-12)
    optimizer.param_groups[0]["lr"] = 1.0
    seconds[0] = 1.0  # 10 % of the time, but 5 of 10 steps: the steps end first
    both = make_schedule(optimizer, config, total_steps=10, elapsed=lambda: seconds[0])
    for _ in range(5):
        both.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.5)


def test_a_time_budget_run_with_cosine_ends_near_zero_learning_rate():
    history = fit_prior(rnn(), striped(64), epochs=10_000, batch_size=8, max_seconds=0.5, schedule="cosine",
                        lr=1e-2, progress=False)  # fmt: skip
    assert history[-1]["train_seconds"] >= 0.5
    assert history[-1]["lr"] < 1e-2 * 0.05  # decayed to (almost) 0 when the time was up
    constant = fit_prior(rnn(), striped(64), epochs=1, batch_size=8, lr=1e-2, progress=False)
    assert constant[-1]["lr"] == pytest.approx(1e-2)


def test_gradient_accumulation_equals_the_larger_batch():
    data = striped(32)
    big, accumulated = rnn(), rnn()
    fit_prior(big, data, epochs=1, batch_size=8, lr=1e-2, progress=False)
    history = fit_prior(accumulated, data, epochs=1, batch_size=4, grad_accum=2, lr=1e-2, progress=False)
    assert history[-1]["step"] == 4
    for a, b in zip(big.parameters(), accumulated.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)  # Adam amplifies float noise where grads are ~0


def test_weight_average_is_evaluated_and_left_in_the_model():
    data = striped(32)
    raw, averaged = rnn(), rnn()
    fit_prior(raw, data, epochs=2, batch_size=4, lr=1e-2, progress=False)
    history = fit_prior(averaged, data, eval_data=data, epochs=2, batch_size=4, lr=1e-2, ema_decay=0.9,
                        progress=False)  # fmt: skip
    assert any(not torch.equal(a, b) for a, b in zip(raw.parameters(), averaged.parameters()))
    from vqgen.training.prior import evaluate_prior

    assert evaluate_prior(averaged, data)["bits_per_dim"] == pytest.approx(history[-1]["eval"]["bits_per_dim"])
    with pytest.raises(ValueError, match="ema_decay must be a float in"):
        TrainConfig(ema_decay=1.5)


def test_streamed_dataset_dataloader_and_iterable_take_the_same_path():
    images = rectangles(32)
    dataset = TensorDataset(images, torch.zeros(32, dtype=torch.long))  # map-style, collated item by item
    in_memory, streamed = vqvae(), vqvae()
    fit_vqvae(in_memory, images, epochs=1, batch_size=8, progress=False)
    fit_vqvae(streamed, dataset, epochs=1, batch_size=8, progress=False)
    for a, b in zip(in_memory.parameters(), streamed.parameters()):
        assert torch.equal(a, b)  # same order, same batches

    class Stream(IterableDataset):
        def __iter__(self):
            yield from striped(24).split(8)

    history = fit_prior(rnn(), DataLoader(Stream(), batch_size=None), epochs=2, max_steps=5, progress=False)
    assert history[-1]["step"] == 5 and len(history) == 2


def test_tensorboard_without_the_package_warns_and_trains(tmp_path, caplog):
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        history = fit_prior(rnn(), striped(16), epochs=1, batch_size=8, checkpoint_dir=tmp_path, tensorboard=True,
                            progress=False)  # fmt: skip
        assert len(history) == 1 and "pip install 'vqgen[tensorboard]'" in caplog.text
    else:
        fit_prior(rnn(num_categories=256, channels=1), striped(16), eval_data=striped(8), epochs=1, batch_size=8,
                  checkpoint_dir=tmp_path, tensorboard=True, progress=False)  # fmt: skip
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        events = EventAccumulator(str(tmp_path / "tensorboard"))
        events.Reload()
        tags = events.Tags()
        assert {"train/bits_per_dim", "eval/bits_per_dim"} <= set(tags["scalars"]) and "images" in tags["images"]


@pytest.mark.slow  # compiling takes about 2 minutes on a busy 2-core CPU
def test_compile_is_opt_in_and_trains_like_eager():
    images = rectangles(64)
    eager, compiled = vqvae(), vqvae()
    fit_vqvae(eager, images, epochs=1, batch_size=16, progress=False)
    fit_vqvae(compiled, images, epochs=1, batch_size=16, progress=False, compile=True)
    for a, b in zip(eager.parameters(), compiled.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    assert not any(key.startswith("_orig_mod") for key in compiled.state_dict())  # saved without the wrapper


def test_worker_processes_give_the_same_batches():
    images = rectangles(24)
    serial = [x for (x,) in make_loader(images, batch_size=8, seed=2).epoch(1, skip=1)]
    parallel = [x for (x,) in make_loader(images, batch_size=8, seed=2, num_workers=2).epoch(1, skip=1)]
    assert len(serial) == 2 and all(torch.equal(a, b) for a, b in zip(serial, parallel, strict=True))


def test_the_old_common_module_warns_and_forwards():
    """``vqgen.training.common`` was split by concern; its names still import, with a deprecation warning."""
    import vqgen.training.common as common
    from vqgen.training.config import TrainConfig

    with pytest.warns(DeprecationWarning, match=r"import TrainConfig from vqgen.training.config"):
        assert common.TrainConfig is TrainConfig
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = common.nope


def test_the_typed_options_are_the_configs_fields():
    """``TrainOptions`` (the keyword options of the fits) and ``SamplingSettings`` (of ``sample``) list exactly the
    fields of ``TrainConfig`` and ``SamplingOptions``, with the same types, so the typed signatures cannot drift."""
    import dataclasses

    from vqgen.sampling import SamplingOptions, SamplingSettings
    from vqgen.training.config import FitOptions, TrainConfig, TrainOptions

    for typed, config in ((TrainOptions, TrainConfig), (SamplingSettings, SamplingOptions)):
        fields = {f.name: f.type for f in dataclasses.fields(config)}
        annotations = {k: getattr(v, "__forward_arg__", v) for k, v in typed.__annotations__.items()}
        assert list(annotations) == list(fields) and not typed.__total__
        widened = {"device", "checkpoint_dir"}  # the config also takes torch.device and Path, and stores str
        assert {k: v for k, v in annotations.items() if k not in widened} == {
            k: v for k, v in fields.items() if k not in widened
        }
    assert set(FitOptions.__annotations__) == {*TrainOptions.__annotations__, "config", "resume"}
