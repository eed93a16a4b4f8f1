"""Gated PixelCNN specifics: the two stacks' receptive fields, gates and conditioning, cached sampling at larger sizes.

The registry-wide guarantees (causality by gradients, cached == naive, save/load) live in test_contract.py; the
blind-spot comparison with the masked PixelCNN lives in test_pixelcnn.py.
"""

from __future__ import annotations

import pytest
import torch

import vqgen
from vqgen.priors.gated_pixelcnn import GatedLayer, GatedPixelCNN


def tiny(**overrides) -> GatedPixelCNN:
    return vqgen.build("prior", "gated_pixelcnn", **{**GatedPixelCNN.tiny_config(), **overrides}).eval()


@pytest.mark.parametrize("first", [True, False])
def test_vertical_stack_sees_rows_above_and_horizontal_stack_the_left(first):
    channels = 4 if first else 6  # later layers map h feature maps to h
    layer = GatedLayer(channels, 6, 5, first=first, colour_groups=1)
    height, width, i, j = 6, 7, 3, 3
    v_in = torch.randn(2, channels, height, width, requires_grad=True)
    h_in = torch.randn(2, channels, height, width, requires_grad=True)
    v, h, skip = layer(v_in, h_in)
    # the first layer's vertical stack sees rows i-3 .. i-1; later layers (whose input already only sees rows
    # above) rows i-2 .. i; both all columns j-2 .. j+2
    (grad_v,) = torch.autograd.grad(v[:, :, i, j].sum(), v_in)
    seen_v = grad_v.abs().sum((0, 1)) > 0  # (H, W)
    rows = (i - 3, i - 1) if first else (i - 2, i)
    expected = torch.zeros(height, width, dtype=torch.bool)
    expected[rows[0] : rows[1] + 1, j - 2 : j + 3] = True
    assert torch.equal(seen_v, expected)
    # the horizontal stack sees its input in row i only, up to j (excluded in the first layer)
    (grad_h,) = torch.autograd.grad(h[:, :, i, j].sum(), h_in)
    seen_h = grad_h.abs().sum((0, 1)) > 0  # (H, W)
    expected = torch.zeros(height, width, dtype=torch.bool)
    expected[i, j - 2 : j + (0 if first else 1)] = True
    assert torch.equal(seen_h, expected)
    assert v.shape == h.shape == skip.shape == (2, 6, height, width)


def test_defaults_suit_code_priors():
    prior = GatedPixelCNN()
    assert len(prior.layers) == 15 and prior.num_categories == 512 and prior.input.mode == "embed"
    assert prior.layers[0].vertical.kernel_size == (4, 7) and prior.layers[1].horizontal.kernel_size == (1, 2)
    assert sum(p.numel() for p in tiny().parameters()) < 20_000


def test_condition_enters_the_gates_of_both_stacks():
    prior = tiny(num_classes=3, cond_dim=2)
    assert prior.cond_bias.sizes == [2 * 8] * (2 * 3)  # (vertical, horizontal) pre-activations of every layer
    with torch.no_grad():
        for parameter in prior.cond_bias.parameters():
            parameter.normal_()
    x = torch.randint(0, 16, (2, 1, 4, 4))
    by_class = prior(x, torch.tensor([0, 2]))
    assert not torch.allclose(by_class[0], prior(x, torch.tensor([1, 2]))[0])
    # (0, 0) sees no value, only the condition: the condition alone must move it
    assert not torch.allclose(by_class[0, :, 0, 0, 0], by_class[1, :, 0, 0, 0])
    assert not torch.allclose(prior(x, torch.randn(2, 2)), by_class)


@pytest.mark.parametrize("channel_order", ["sequential", "parallel"])
def test_cached_sampling_is_exact_for_a_wider_colour_model(channel_order):
    """Larger kernels, 8-bit pixels (scaled input), colour: the cached stepper still equals the naive sampler."""
    prior = tiny(
        num_categories=256,
        channels=3,
        hidden_channels=12,
        num_layers=4,
        kernel_size=5,
        first_kernel_size=7,
        channel_order=channel_order,
    )
    assert prior.input.mode == "scale"
    draws = [
        prior.sample(2, (5, 6), method=method, generator=torch.Generator().manual_seed(3), top_k=50)
        for method in ("cached", "naive")
    ]
    assert torch.equal(draws[0], draws[1])
    assert draws[0].shape == (2, 3, 5, 6)


def test_cached_sampling_works_in_the_models_dtype():
    prior = tiny().double()
    x = torch.randint(0, 16, (2, 1, 3, 4))
    full = prior(x)
    assert full.dtype == torch.float64
    stepper = prior.incremental(None, (3, 4))
    for i in range(3):
        for j in range(4):
            logits = stepper.logits(x, i, j, 0)
            assert logits.dtype == torch.float64
            torch.testing.assert_close(logits, full[:, :, 0, i, j], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (dict(num_layers=0), "num_layers must be > 0"),
        (dict(kernel_size=2), "kernel_size must be odd"),
        (dict(channels=3, hidden_channels=2), "hidden_channels and head_channels must be >= 3"),
        (dict(channel_order="rgb"), "channel_order must be one of"),
        (dict(cond_dim=-2), "cond_dim must be > 0"),
        (dict(embed_dim=0), "embed_dim must be > 0"),
        (dict(dropout=1.0), "dropout must be a probability"),
        (dict(dropout=-0.1), "dropout must be a probability"),
    ],
)
def test_bad_arguments_raise(overrides, match):
    with pytest.raises((ValueError, TypeError), match=match):
        tiny(**overrides)


def test_dropout_is_causal_in_training_and_off_in_evaluation():
    """Training-mode dropout (fresh masks per call) never lets a logit see its own or a later value; eval is exact."""
    torch.manual_seed(0)
    prior = tiny(dropout=0.5, num_categories=6).train()
    H = W = 4
    x = torch.randint(0, 6, (2, 1, H, W))
    features = []

    def as_leaf(module, args, out):
        features.append(out.detach().requires_grad_())
        return features[-1]

    handle = prior.input.register_forward_hook(as_leaf)
    try:
        for i, j in [(0, 0), (1, 2), (3, 3)]:
            logits = prior(x)  # (B, K, 1, H, W), a fresh dropout mask each call
            (grad,) = torch.autograd.grad(logits[:, :, 0, i, j].square().sum(), features[-1])
            seen = grad.abs().sum((0, 1)) != 0  # (H, W)
            later = torch.arange(H * W).view(H, W) >= i * W + j
            assert not seen[later].any(), f"the logits at {(i, j)} see {seen[later].nonzero().tolist()}"
    finally:
        handle.remove()
    assert not torch.equal(prior(x), prior(x))  # dropout is active in training
    plain = tiny(num_categories=6)
    plain.load_state_dict(prior.state_dict())
    prior.eval()
    assert torch.equal(prior(x), plain(x))  # and the identity in evaluation, where the cached sampler runs
    generator = torch.Generator().manual_seed(0)
    cached = prior.sample(3, (H, W), method="cached", generator=generator)
    naive = prior.sample(3, (H, W), method="naive", generator=generator.manual_seed(0))
    assert torch.equal(cached, naive)


def paper_layer(layer: GatedLayer, v, h):
    """Figure 2 of arXiv:1606.05328 written out from the layer's weights, independently of its forward pass."""
    p, height = layer.pad, v.shape[2]
    top = p + 1 if layer.first else p  # the first layer reads rows i-p-1 .. i-1, later ones rows i-p .. i
    v_pre = torch.nn.functional.conv2d(torch.nn.functional.pad(v, (p, p, top, 0)), layer.vertical.weight)
    v_pre = v_pre[:, :, :height] + layer.vertical.bias[:, None, None]
    h_weight = layer.horizontal.weight * layer.horizontal.mask
    h_pre = torch.nn.functional.conv2d(torch.nn.functional.pad(h, (p, 0, 0, 0)), h_weight, layer.horizontal.bias)
    h_pre = h_pre + torch.nn.functional.conv2d(v_pre, layer.link.weight, layer.link.bias)
    f, g = h_pre.chunk(2, dim=1)
    out = torch.nn.functional.conv2d(
        torch.tanh(f) * torch.sigmoid(g), layer.out.weight * layer.out.mask, layer.out.bias
    )
    residual, skip = out.chunk(2, dim=1)
    f, g = v_pre.chunk(2, dim=1)
    return torch.tanh(f) * torch.sigmoid(g), residual if layer.first else h + residual, skip


@pytest.mark.parametrize(("first", "kernel_size"), [(True, 7), (False, 3), (False, 5)])
def test_layer_equals_the_paper_shaped_layer(first, kernel_size):
    torch.manual_seed(0)
    layer = GatedLayer(16 if first else 24, 24, kernel_size, first=first, colour_groups=1)
    v, h = torch.randn(2, 3, 16 if first else 24, 7, 9)  # different inputs of the two stacks
    for ours, paper in zip(layer(v, h), paper_layer(layer, v, h)):
        torch.testing.assert_close(ours, paper, rtol=0, atol=1e-5)


def test_checkpoints_of_the_paper_shaped_layers_still_load():
    """The parameter names of every layer are those of the paper-shaped layer (vertical, horizontal, link, out)."""
    prior = tiny()
    expected = {f"layers.{i}.{name}.{kind}" for i in range(3) for name in ("vertical", "horizontal", "link", "out")
                for kind in ("weight", "bias")}  # fmt: skip
    assert expected <= set(prior.state_dict())
    assert all(key.startswith(("layers.", "head.", "input.", "cond_bias.")) for key in prior.state_dict())
    torch.manual_seed(1)
    other = tiny()
    other.load_state_dict(prior.state_dict(), strict=True)
    x = torch.randint(0, 16, (2, 1, 5, 6))
    assert torch.equal(other(x), prior(x))


def test_cached_steps_equal_the_forward_pass_at_benchmark_width():
    """Per-step logits of the stepper (fused products, one skip product) equal the forward pass within 1e-5."""
    torch.manual_seed(0)
    prior = vqgen.build("prior", "gated_pixelcnn", num_categories=64, hidden_channels=32, num_layers=5, num_classes=3)
    prior.eval()
    with torch.no_grad():
        for parameter in prior.cond_bias.parameters():
            parameter.normal_()
    x, cond = torch.randint(0, 64, (5, 1, 4, 6)), torch.tensor([0, 1, 2, 1, 0])
    with torch.no_grad():
        full = prior(x, cond)
    stepper = prior.incremental(cond, (4, 6))
    for i in range(4):
        for j in range(6):
            torch.testing.assert_close(stepper.logits(x, i, j, 0), full[:, :, 0, i, j], rtol=0, atol=1e-5)


def test_one_thread_restores_the_thread_count():
    from vqgen.threads import ONE_THREAD_BATCH, one_thread

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with one_thread(4):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with one_thread(ONE_THREAD_BATCH + 1):  # large batches keep every thread
            assert torch.get_num_threads() == 2
        with pytest.raises(RuntimeError), one_thread(4):
            raise RuntimeError
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)


def test_cached_sampling_runs_on_one_thread_and_restores_the_count(monkeypatch):
    """The whole cached loop (steps and draws) runs on one thread; naive sampling keeps every thread."""
    import vqgen.sampling

    prior = tiny()
    seen = []
    real_draw = vqgen.sampling.draw
    monkeypatch.setattr(
        vqgen.sampling, "draw", lambda *a, **k: seen.append(torch.get_num_threads()) or real_draw(*a, **k)
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        cached = prior.sample(3, (2, 3), method="cached", generator=torch.Generator().manual_seed(0))
        assert seen == [1] * 6 and torch.get_num_threads() == 2
        naive = prior.sample(3, (2, 3), method="naive", generator=torch.Generator().manual_seed(0))
        assert seen[6:] == [2] * 6 and torch.get_num_threads() == 2
        assert torch.equal(cached, naive)
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("name", ["gated_pixelcnn", "pixelcnn"])
def test_sharded_cached_sampling_equals_one_slice_and_naive(name, monkeypatch):
    """With 2 threads a batch of 2 * MIN_SHARD grids is split in two slices, one thread each; same samples."""
    import threading

    import vqgen.sampling
    from vqgen.threads import MIN_SHARD

    cls = vqgen.registry("prior").get(name)
    prior = vqgen.build("prior", name, **{**cls.tiny_config(), "num_classes": 3}).eval()
    n = 2 * MIN_SHARD
    cond = torch.arange(n) % 3
    prefix = torch.randint(0, prior.num_categories, (n, 1, 4, 5))
    mask = torch.zeros(n, 1, 4, 5, dtype=torch.bool)
    mask[::3, :, 1, 2] = True
    seen = []
    real_draw = vqgen.sampling.draw

    def spy(*args, **kwargs):
        seen.append((threading.current_thread().name, torch.get_num_threads()))
        return real_draw(*args, **kwargs)

    monkeypatch.setattr(vqgen.sampling, "draw", spy)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert prior.sampling_shards(n, "cached") == 2 and prior.sampling_shards(n - 1, "cached") == 1
        assert prior.sampling_shards(n, "naive") == 1
        options = dict(cond=cond, prefix=prefix, prefix_mask=mask, temperature=0.9, top_k=10)
        sharded = prior.sample(n, (4, 5), method="cached", generator=torch.Generator().manual_seed(0), **options)
        assert {name for name, _ in seen} == {threading.main_thread().name, "vqgen-sampling-1"}
        assert {count for _, count in seen} == {1} and torch.get_num_threads() == 2
        monkeypatch.setattr(type(prior), "sampling_shards", lambda self, n, method: 1)
        single = prior.sample(n, (4, 5), method="cached", generator=torch.Generator().manual_seed(0), **options)
        naive = prior.sample(n, (4, 5), method="naive", generator=torch.Generator().manual_seed(0), **options)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(sharded, single) and torch.equal(sharded, naive)
    assert torch.equal(sharded[mask], prefix[mask])


def test_an_error_in_one_slice_stops_sampling_and_is_raised(monkeypatch):
    from vqgen.priors.gated_pixelcnn import GatedPixelCNNStepper
    from vqgen.threads import MIN_SHARD

    prior = tiny()
    real_pixel = GatedPixelCNNStepper.pixel

    def failing(self, i, j):
        if self.batch == MIN_SHARD and (i, j) == (1, 1) and self.cond is None and self.width == 4:
            raise RuntimeError("slice failed")
        return real_pixel(self, i, j)

    monkeypatch.setattr(GatedPixelCNNStepper, "pixel", failing)
    monkeypatch.setattr(type(prior), "sampling_shards", lambda self, n, method: 2)
    with pytest.raises(RuntimeError, match="slice failed"):
        prior.sample(2 * MIN_SHARD, (3, 4), method="cached")


@pytest.mark.parametrize(
    ("num_layers", "first_kernel_size", "height"), [(6, 7, 14), (12, 7, 14), (15, 7, 28), (3, 3, 9)]
)
def test_rows_in_view_follow_the_vertical_stack(num_layers, first_kernel_size, height):
    """The first layer sees k//2 + 1 rows above, every later 3-wide layer one more: the README's 6 layers see 10 of
    a 14x14 grid's rows, 12 layers all of them, the default 15 layers 19 of 28."""
    prior = vqgen.build(
        "prior", "gated_pixelcnn", num_categories=16, hidden_channels=8, num_layers=num_layers,
        first_kernel_size=first_kernel_size, head_channels=8, num_classes=3,
    )  # fmt: skip
    expected = min(height, first_kernel_size // 2 + 1 + (num_layers - 1) + 1)
    assert prior.rows_in_view(height, 5) == expected
    assert all(p.grad is None for p in prior.parameters())  # measured without touching the parameters' gradients
