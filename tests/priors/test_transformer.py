"""The transformer prior beyond the shared contract: its key/value cache, completions, positions that fit any grid,
dropout, bf16, ``torch.compile``, bad input, and its place in ``TwoStageModel`` and ``vqgen fit``."""

from __future__ import annotations

import inspect

import pytest
import torch

import vqgen
from vqgen.priors.code_prior import build_code_prior
from vqgen.priors.transformer import PRESETS, TransformerPrior, TransformerStepper

K = 11


def tiny(**overrides) -> TransformerPrior:
    return vqgen.build("prior", "transformer", **{**TransformerPrior.tiny_config(), "num_categories": K, **overrides})


def small(**overrides) -> TransformerPrior:
    """Two layers of four heads: enough for several heads and layers to share one cache."""
    config = dict(num_categories=K, hidden_size=32, num_layers=2, num_heads=4, embed_dim=8)
    return vqgen.build("prior", "transformer", **{**config, **overrides}).eval()


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------------------------------------ the cache


def test_cache_buffers_are_allocated_once_per_grid_and_filled_in_place():
    prior, n, shape = small(channels=3), 4, (3, 4)
    x = torch.randint(0, K, (n, 3, *shape), generator=seeded(0))
    stepper = prior.incremental(None, shape)
    steps = [(i, j, c) for i in range(shape[0]) for j in range(shape[1]) for c in range(3)]
    with torch.no_grad():
        stepper.logits(x, *steps[0])
        pointers = [(cache.keys.data_ptr(), cache.values.data_ptr()) for cache in stepper.caches]
        first = [stepper.logits(x, *step) for step in steps[1:]]
        again = [stepper.logits(x, *step) for step in steps]  # a new grid in the same buffers
    length = shape[0] * shape[1] * 3  # one token per value
    for cache, pointer in zip(stepper.caches, pointers, strict=True):
        assert cache.keys.shape == cache.values.shape == (n, 4, length, 8)  # (B, heads, L, head_dim)
        assert (cache.keys.data_ptr(), cache.values.data_ptr()) == pointer
    assert stepper.nbytes == prior.kv_cache_bytes(n, shape) == 2 * 2 * n * length * 32 * 4
    for a, b in zip(first, again[1:], strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("config", [dict(channels=3), dict(channels=1, num_categories=256, num_classes=3),
                                    dict(channels=3, channel_order="parallel", cond_dim=2)])  # fmt: skip
def test_seeded_samples_equal_naive_sampling(config):
    prior = small(**config)
    n = 3
    cond = torch.tensor([0, 2, 1]) if prior.num_classes else torch.randn(n, 2) if prior.cond_dim else None
    draws = [prior.sample(n, (4, 5), cond, method=m, generator=seeded(1)) for m in ("cached", "naive")]
    assert torch.equal(draws[0], draws[1])


def test_completion_of_a_half_given_grid_prefills_once_and_equals_naive(monkeypatch):
    prior, n, shape = small(channels=3), 3, (6, 5)
    prefix = torch.randint(0, K, (n, 3, 3, 5), generator=seeded(2))  # the top half
    calls = []
    original = TransformerStepper.prefill
    monkeypatch.setattr(TransformerStepper, "prefill", lambda self, x, p: calls.append(p) or original(self, x, p))
    cached = prior.sample(n, shape, prefix=prefix, method="cached", generator=seeded(3))
    naive = prior.sample(n, shape, prefix=prefix, method="naive", generator=seeded(3))
    assert calls == [15] and torch.equal(cached, naive) and torch.equal(cached[:, :, :3], prefix)


def test_any_prefix_mask_is_supported_and_equals_naive():
    """Kept values anywhere (not a raster prefix): each step reads the value before it from x, where the loop has
    already written the kept one."""
    prior, n, shape = small(), 4, (5, 5)
    prefix = torch.randint(0, K, (n, 1, *shape), generator=seeded(4))
    mask = torch.rand(n, 1, *shape, generator=seeded(5)) < 0.4
    cached, naive = (prior.sample(n, shape, prefix=prefix, prefix_mask=mask, method=m, generator=seeded(6))
                     for m in ("cached", "naive"))  # fmt: skip
    assert torch.equal(cached, naive) and torch.equal(cached[mask], prefix[mask])


# ------------------------------------------------------------------------------------------------ positions


def test_positions_need_no_grid_size_any_grid_runs_and_the_cache_follows_the_forward_pass():
    prior = tiny().eval()
    x = torch.randint(0, K, (2, 1, 1, 300), generator=seeded(7))  # 300 columns: no table to outgrow
    with torch.no_grad():
        full = prior.logits(x)
        assert prior.logits(torch.randint(0, K, (1, 1, 40, 40))).shape == (1, K, 1, 40, 40)
        stepper = prior.incremental(None, (1, 300))
        stepper.prefill(x, 290)
        for j in range(290, 300):
            torch.testing.assert_close(stepper.logits(x, 0, j, 0), full[:, :, 0, 0, j], rtol=1e-5, atol=1e-5)


def test_the_first_rows_do_not_depend_on_the_grid_height():
    """Causal, with positions relative to the value predicted: row 0 of a 3x4 and of a 9x4 grid get the same logits."""
    prior = small()
    x = torch.randint(0, K, (2, 1, 9, 4), generator=seeded(8))
    with torch.no_grad():
        torch.testing.assert_close(prior.logits(x[:, :, :3]), prior.logits(x)[..., :3, :], rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------------ training-time behaviour


def test_dropout_is_random_in_training_causal_and_off_in_eval():
    prior = small(dropout=0.3).train()
    x = torch.randint(0, K, (2, 1, 3, 4), generator=seeded(9))
    later = x.clone()
    later[:, :, 2] = (later[:, :, 2] + 1) % K  # change the last row only
    torch.manual_seed(0)
    a = prior.logits(x)
    assert not torch.equal(a, prior.logits(x))  # fresh dropout masks
    torch.manual_seed(0)
    b = prior.logits(later)  # the same masks: values before the last row see no change
    torch.testing.assert_close(a[..., :2, :], b[..., :2, :], rtol=0, atol=1e-6)
    prior.eval()
    assert torch.equal(prior.logits(x), prior.logits(x))


def test_bf16_autocast_trains_close_to_float32_and_caches_in_bf16():
    prior = small()
    x = torch.randint(0, K, (4, 1, 4, 5), generator=seeded(10))
    with torch.no_grad():
        reference = prior.nll(x).mean()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        output = prior(x)
        loss = prior.likelihood.nll(output, x).mean()
        stepper = prior.incremental(None, (4, 5))
        stepper.logits(x, 0, 0, 0)
        step = stepper.logits(x, 0, 1, 0)
    assert output.dtype == torch.bfloat16 and loss.dtype == torch.float32
    assert abs(loss.item() - reference.item()) < 0.02 * reference.item()
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in prior.parameters() if p.grad is not None)
    assert stepper.caches[0].keys.dtype == torch.bfloat16
    torch.testing.assert_close(step.float(), output[:, :, 0, 0, 1].float(), rtol=0.05, atol=0.05)


@pytest.mark.slow  # dynamo's tracing: about 7 s on a busy 2-core CPU
def test_torch_compile_traces_the_network_in_one_graph():
    """The network after the input check compiles without a graph break (``fullgraph``) and gives the same logits
    (the "eager" backend: tracing only; the slow test below generates code)."""
    prior = small(channels=3, num_classes=2)
    x = torch.randint(0, K, (2, 3, 3, 4), generator=seeded(11))
    cond = torch.tensor([0, 1])

    with torch.no_grad():
        compiled = torch.compile(prior.run, fullgraph=True, backend="eager")
        h = torch.randn(2, 36, 32)
        torch.testing.assert_close(compiled(h, prior.positions(3, 4)), prior.run(h, prior.positions(3, 4)))
        torch.testing.assert_close(torch.compile(prior, backend="eager")(x, cond), prior(x, cond))  # with the check


@pytest.mark.slow  # inductor compiles C++: about a minute on a busy 2-core CPU
def test_compiled_training_matches_eager():
    from vqgen.training.prior import fit_prior

    data = torch.randint(0, K, (16, 1, 3, 4), generator=seeded(12))
    eager, compiled = small(), small()
    compiled.load_state_dict(eager.state_dict())
    for prior, compile in ((eager, False), (compiled, True)):
        fit_prior(prior, data, epochs=1, batch_size=8, progress=False, device="cpu", compile=compile)
    for a, b in zip(eager.parameters(), compiled.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------------------------------------ bad input


def test_bad_configurations_are_clear_errors():
    with pytest.raises(ValueError, match=r"hidden_size / num_heads must be a whole multiple of 4.*=30, num_heads=4"):
        tiny(hidden_size=30, num_heads=4)
    with pytest.raises(ValueError, match=r"hidden_size=24, num_heads=4"):  # head dimension 6
        tiny(hidden_size=24, num_heads=4)
    with pytest.raises(ValueError, match=r"dropout must be a probability in \[0, 1\), got 1.0"):
        tiny(dropout=1.0)
    with pytest.raises(TypeError, match="num_layers must be an int"):
        tiny(num_layers=2.0)


def test_a_cache_asked_to_grow_past_its_grid_is_a_clear_error():
    prior = tiny().eval()
    x = torch.randint(0, K, (2, 1, 2, 3))
    stepper = prior.incremental(None, (2, 3))
    with torch.no_grad():
        for j in range(3):
            stepper.logits(x, 0, j, 0)
        with pytest.raises(ValueError, match=r"\(i=2, j=0, c=0\) lies outside the 2x3 grid .* \(6 tokens\)"):
            stepper.logits(torch.zeros(2, 1, 3, 3, dtype=torch.long), 2, 0, 0)
        with pytest.raises(ValueError, match=r"positions must be an int in \[0, 6\], got 7"):
            stepper.prefill(x, 7)
        with pytest.raises(ValueError, match="x must be a 2x3 grid"):
            stepper.prefill(torch.zeros(2, 1, 3, 3, dtype=torch.long), 2)
        with pytest.raises(ValueError, match=r"allocated for a batch of 2"):
            stepper.logits(torch.zeros(5, 1, 2, 3, dtype=torch.long), 1, 0, 0)


def test_steps_out_of_raster_order_are_a_clear_error():
    prior = tiny(channels=3).eval()
    x = torch.randint(0, K, (1, 3, 2, 2))
    stepper = prior.incremental(None, (2, 2))
    with torch.no_grad():
        stepper.logits(x, 0, 0, 0)
        with pytest.raises(ValueError, match=r"raster order, each once: the next is \(i, j, c\) = \(0, 0, 1\), got "
                                             r"\(0, 1, 0\); a prefix goes in with prefill"):  # fmt: skip
            stepper.logits(x, 0, 1, 0)
        stepper.prefill(x, 1)  # a known prefix: then the next value is (0, 1, 0)
        stepper.logits(x, 0, 1, 0)


def test_a_class_label_out_of_range_is_a_clear_error():
    prior = tiny(num_classes=3).eval()
    with pytest.raises(ValueError, match=r"cond must lie in \[0, 3\), got values in \[0, 3\]"):
        prior.incremental(torch.tensor([0, 3]), (2, 2))
    with pytest.raises(ValueError, match=r"cond must lie in \[0, 3\)"):
        prior.sample(2, (2, 2), torch.tensor([-1, 0]))
    with pytest.raises(ValueError, match="needs cond"):
        prior.incremental(None, (2, 2))
    with pytest.raises(ValueError, match=r"shape must be \(H, W\) with two positive ints, got \(2, 0\)"):
        prior.incremental(torch.tensor([0]), (2, 0))


# ------------------------------------------------------------------------------------- two stages, the CLI


def test_code_prior_starts_from_the_codebook_and_sees_every_row():
    codebook = torch.randn(8, 4)
    prior = build_code_prior("transformer", num_codes=8, codebook=codebook, tiny=True)
    assert prior.input.mode == "embed" and torch.equal(prior.input.embedding.weight, codebook)
    assert prior.rows_in_view(14, 14) == 14
    assert set(PRESETS) == {"cpu", "gpu"}
    accepted = inspect.signature(TransformerPrior.__init__).parameters
    assert all(key in accepted for preset in PRESETS.values() for key in preset)


def test_two_stage_model_fits_samples_and_completes_with_the_transformer(tmp_path):
    images = torch.zeros(32, 1, 8, 8, dtype=torch.uint8)
    images[torch.arange(32), 0, torch.randint(8, (32,))] = 255  # a bar at a random row
    config = {
        "encoder": {"name": "conv", **vqgen.registry("encoder").get("conv").tiny_config()},
        "quantizer": {"name": "vq", "num_codes": 8},
        "prior": {"name": "transformer", **TransformerPrior.tiny_config()},
    }
    model = vqgen.TwoStageModel.from_config(config)
    fast = {"epochs": 1, "batch_size": 16, "progress": False, "seed": 0}
    model.fit(images, stage1=fast, stage2=fast)
    samples = model.sample(3, generator=seeded(13))
    known = torch.zeros(8, 8, dtype=torch.bool)
    known[:4] = True  # the top half
    completed = model.complete(images[:2], known, generator=seeded(14))
    assert samples.shape == (3, 1, 8, 8) and completed.shape == (2, 1, 8, 8)
    model.save_pretrained(str(tmp_path / "model"))
    loaded = vqgen.from_pretrained(str(tmp_path / "model"))
    codes = torch.randint(0, 8, (2, 1, *model.code_shape))
    assert torch.equal(loaded.prior.eval()(codes), model.prior.eval()(codes))


RUN = """
dataset: digits
train_subset: 32
eval_subset: 16
model:
  encoder: {name: conv, hidden_channels: 8, residual_channels: 4, latent_dim: 4, num_downsamples: 2}
  quantizer: {name: ema, num_codes: 16}
train: {progress: false, seed: 1}
stage1: {epochs: 1, batch_size: 16}
stage2: {epochs: 1, batch_size: 8, max_steps: 2}
"""


def test_vqgen_fit_with_the_transformer_by_name(tmp_path):
    from vqgen.cli import main

    (tmp_path / "run.yaml").write_text(RUN)
    out = tmp_path / "out"
    argv = ["fit", "--config", str(tmp_path / "run.yaml"), "--output", str(out),
            "--set", "model.prior.name=transformer", "--set", "model.prior.hidden_size=16",
            "--set", "model.prior.num_layers=1"]  # fmt: skip
    assert main(argv) == 0
    model = vqgen.from_pretrained(out)
    assert isinstance(model.prior, TransformerPrior) and model.prior.num_classes == 10  # the digits' classes
    assert main(["sample", str(out), "--n", "2", "--output", str(tmp_path / "s.png")]) == 0
