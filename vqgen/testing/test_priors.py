"""The prior contract: every registered prior (``vqgen.available("prior")``, plugins included) must pass it.

Run it with ``pytest --pyargs vqgen.testing``, or on one prior with [`check_prior`][vqgen.testing.check_prior].

What a prior must do to be covered, and how the tests build and probe it:

- **Logits.** Every test reads a prior's probabilities through ``prior.logits(x, cond)`` ``(B, K, C, H, W)`` and
  ``prior.nll(x, cond)`` ``(B, C, H, W)``, the two faces of its likelihood (a softmax head's logits, or a mixture's bin
  log-probabilities), never through the raw ``forward`` output, whose layout is the prior's own.
- **Building.** ``vqgen.build("prior", name, **{**cls.tiny_config(), **overrides})``. The overrides always set
  ``num_categories`` and ``channels``; they set ``channel_order`` (``"sequential"`` / ``"parallel"``),
  ``num_classes`` and ``cond_dim`` only for variants that need them, and a variant whose argument the constructor
  does not take is skipped with that reason. A prior tied to one grid size takes ``height`` and ``width``
  arguments, which the tests set to the grid they use.
- **Colour semantics.** Channel ``c`` at ``(i, j)`` may depend on every earlier position (raster order) and, unless
  the prior was built with ``channel_order="parallel"``, on channels ``< c`` at ``(i, j)``; on nothing else.
- **Causality by gradients** (the central test). A prior's map from indices to continuous features is a submodule
  named ``input``: an [`IndexInput`][vqgen.priors.embedding.IndexInput], or any module returning ``(B, C * E, H, W)``
  with the ``E`` features of colour channel ``c`` at ``[c * E, (c + 1) * E)``. It is called once per forward pass with
  the whole ``x`` and is the only path by which ``x`` enters the network. The test replaces its output by a leaf
  tensor that requires grad (a forward hook) and checks, for every value, that the gradient of its logits is
  exactly zero at every value it must not see, and non-zero at some value it may see. A prior without an ``input``
  submodule (a frequency table, say) is skipped there and checked only by the perturbation test, which changes
  the values a logit must not see and requires the logit to stay the same.
- **Cached sampling.** ``prior.incremental(cond, (H, W))`` returns a stepper whose logits equal the full forward
  pass at every step, even when the values it must not read change between steps; ``sample(method="cached")`` and
  ``method="naive"`` draw identical grids from the same seed.
"""

from __future__ import annotations

import inspect
import math

import pytest
import torch

import vqgen
from vqgen.registry import registry
from vqgen.testing.seeding import contract_seed  # noqa: F401  (an autouse fixture: seed 0 for every case)

PRIORS = vqgen.available("prior")
K = 11  # categories in the contract tests
H, W = 4, 5  # grid: not square, so that a transposed index fails
REPLICAS = 3  # random grids per value in the gradient test

VARIANTS = {
    "grey": dict(channels=1),
    "colour": dict(channels=3),
    "colour-parallel": dict(channels=3, channel_order="parallel"),
    "grey-class": dict(channels=1, num_classes=4),
    "colour-vector": dict(channels=3, cond_dim=3),
    "parallel-class": dict(channels=3, channel_order="parallel", num_classes=4),
}


def build(name: str, variant: str, *, height: int = H, width: int = W):
    """The tiny prior ``name`` for ``variant`` in eval mode, or a skip naming the argument it lacks."""
    cls = registry("prior").get(name)
    accepted = inspect.signature(cls.__init__).parameters
    overrides = dict(num_categories=K, **VARIANTS[variant])
    for key in ("channel_order", "num_classes", "cond_dim"):
        if key in overrides and key not in accepted:
            pytest.skip(f"{name} takes no {key!r} argument, so it does not support the {variant!r} variant")
    if "height" in accepted and "width" in accepted:
        overrides.update(height=height, width=width)
    return vqgen.build("prior", name, **{**cls.tiny_config(), **overrides}).eval()


def condition(prior, n: int, seed: int = 1):
    generator = torch.Generator().manual_seed(seed)
    if prior.num_classes:
        return torch.randint(0, prior.num_classes, (n,), generator=generator)
    if prior.cond_dim:
        return torch.randn(n, prior.cond_dim, generator=generator)
    return None


def is_parallel(prior) -> bool:
    return prior.config.get("channel_order") == "parallel"


def raster(channels: int, height: int = H, width: int = W) -> list[tuple[int, int, int]]:
    """Every ``(i, j, c)`` in sampling order."""
    return [(i, j, c) for i in range(height) for j in range(width) for c in range(channels)]


def visible(prior, i: int, j: int, c: int, height: int = H, width: int = W) -> torch.Tensor:
    """``(C, H, W)`` bool: the values the logits of ``(i, j, c)`` may depend on."""
    rows = torch.arange(height)[:, None].expand(height, width)
    cols = torch.arange(width)[None, :].expand(height, width)
    earlier = (rows < i) | ((rows == i) & (cols < j))  # (H, W)
    mask = earlier[None].repeat(prior.channels, 1, 1)  # (C, H, W)
    if not is_parallel(prior):
        mask[:c, i, j] = True
    return mask


def randomise_after(x: torch.Tensor, i: int, j: int, c: int, generator: torch.Generator) -> torch.Tensor:
    """A copy of ``x`` with every value from ``(i, j, c)`` on in raster order (exclusive) drawn afresh."""
    channels, height, width = x.shape[1:]
    order = torch.arange(channels * height * width).view(height, width, channels).permute(2, 0, 1)  # (C, H, W)
    later = order > (i * width + j) * channels + c
    fresh = torch.randint(0, K, x.shape, generator=generator)
    return torch.where(later, fresh, x)


# --------------------------------------------------------------------------------------------------- causality


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("name", PRIORS)
def test_causal_by_gradients(name, variant):
    """Logit gradients are exactly zero at every value not yet drawn, and non-zero at some value already drawn.

    One backward pass covers all values: batch element ``r * n + k`` holds its own random grid and the objective is a
    random projection of the logits of value ``k`` only (examples do not interact in eval mode). Each value has
    ``REPLICAS`` grids, so that one input where every ReLU on the way happens to be off cannot fail the test.
    """
    prior = build(name, variant)
    if not isinstance(getattr(prior, "input", None), torch.nn.Module):
        pytest.skip(f"{name} has no `input` feature module; its causality is checked by the perturbation test")
    steps = raster(prior.channels)
    n = len(steps)
    batch = REPLICAS * n
    x = torch.randint(0, K, (batch, prior.channels, H, W))
    cond = condition(prior, batch)
    captured = []

    def as_leaf(module, args, output):
        leaf = output.detach().requires_grad_(True)
        captured.append(leaf)
        return leaf

    handle = prior.input.register_forward_hook(as_leaf)
    try:
        logits = prior.logits(x, cond)  # (batch, K, C, H, W)
    finally:
        handle.remove()
    assert len(captured) == 1, f"{name}.input was called {len(captured)} times in one forward pass; expected once"
    features = captured[0]
    assert features.shape[0] == batch and features.shape[2:] == (H, W) and features.shape[1] % prior.channels == 0

    rows, cols, chans = (torch.tensor(t).repeat(REPLICAS) for t in zip(*steps))
    picked = logits[torch.arange(batch), :, chans, rows, cols]  # (batch, K)
    (grad,) = torch.autograd.grad((picked * torch.randn(K)).sum(), features)
    per_value = grad.view(REPLICAS, n, prior.channels, -1, H, W).abs().sum((0, 3))  # (n, C, H, W)
    for k, (i, j, c) in enumerate(steps):
        allowed = visible(prior, i, j, c)
        leaked = per_value[k][~allowed]
        assert bool((leaked == 0).all()), (
            f"{name}: logits of (i={i}, j={j}, c={c}) depend on {int((leaked != 0).sum())} values they must not "
            f"see, at {(~allowed & (per_value[k] != 0)).nonzero().tolist()}"
        )
        if allowed.any():
            assert per_value[k][allowed].sum() > 0, f"{name}: logits of {(i, j, c)} see none of the earlier values"


@pytest.mark.parametrize("variant", ["grey", "colour", "colour-parallel", "grey-class"])
@pytest.mark.parametrize("name", PRIORS)
def test_causal_by_perturbation(name, variant):
    """Changing the values a logit must not see leaves it unchanged (any prior, with or without `input`)."""
    prior = build(name, variant)
    steps = raster(prior.channels)
    generator = torch.Generator().manual_seed(3)
    base = torch.randint(0, K, (1, prior.channels, H, W), generator=generator)
    changed = torch.cat([randomise_after(base, i, j, c, generator) for i, j, c in steps])  # (n, C, H, W)
    if is_parallel(prior):  # the current pixel's other channels are unseen too
        changed = torch.cat([randomise_after(base, i, j, -1, generator) for i, j, _ in steps])
    cond = condition(prior, 1)
    with torch.no_grad():
        reference = prior.logits(base, cond)[0]  # (K, C, H, W)
        logits = prior.logits(changed, None if cond is None else cond.expand(len(steps), *cond.shape[1:]))
    for k, (i, j, c) in enumerate(steps):
        torch.testing.assert_close(logits[k, :, c, i, j], reference[:, c, i, j], rtol=0, atol=1e-6)


@pytest.mark.parametrize("variant", ["grey", "colour", "grey-class"])
@pytest.mark.parametrize("name", PRIORS)
def test_rows_in_view_are_the_rows_that_change_the_last_logits(name, variant):
    """``rows_in_view`` (a receptive field, by gradients) agrees with changing one whole row at a time."""
    height, width = 9, 3  # taller than the tiny priors see
    prior = build(name, variant, height=height, width=width)
    rows = prior.rows_in_view(height, width)
    generator = torch.Generator().manual_seed(5)
    base = torch.randint(0, K, (1, prior.channels, height, width), generator=generator)
    changed = base.repeat(height, 1, 1, 1)
    for r in range(height):
        shift = 1 + torch.randint(0, K - 1, (prior.channels, width), generator=generator)  # never 0 mod K
        changed[r, :, r] = (base[0, :, r] + shift) % K
    cond = condition(prior, 1)
    with torch.no_grad():
        reference = prior.logits(base, cond)[0, :, -1, -1, -1]  # (K,): the last value of the grid
        logits = prior.logits(changed, None if cond is None else cond.expand(height, *cond.shape[1:]))[:, :, -1, -1, -1]
    moved = [not torch.allclose(logits[r], reference, rtol=0, atol=1e-6) for r in range(height)]
    if rows is None:  # unknown: nothing promised
        return
    assert 1 <= rows <= height
    assert not any(moved[: height - rows]), f"{name}: rows above its view change its last logits"
    assert moved[height - rows], f"{name}: the first row in its view ({height - rows}) does not change them"


# --------------------------------------------------------------------------------------------- cached sampling


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("name", PRIORS)
def test_stepper_logits_equal_forward_and_never_peek(name, variant):
    """At every step the stepper's logits equal the full forward pass, although the unseen values keep changing."""
    prior = build(name, variant)
    n = 3
    generator = torch.Generator().manual_seed(5)
    x = torch.randint(0, K, (n, prior.channels, H, W), generator=generator)
    cond = condition(prior, n)
    with torch.no_grad():
        full = prior.logits(x, cond)  # (n, K, C, H, W)
        stepper = prior.incremental(cond, (H, W))
        for i, j, c in raster(prior.channels):
            logits = stepper.logits(randomise_after(x, i, j, c, generator), i, j, c)
            assert logits.shape == (n, K)
            torch.testing.assert_close(logits, full[:, :, c, i, j], rtol=1e-5, atol=1e-5)


SAMPLING = {
    "plain": dict(),
    "top-k": dict(top_k=3, temperature=0.7),
    "top-p": dict(top_p=0.6),
    "prefix": dict(prefix_rows=2),
}


@pytest.mark.parametrize("options", SAMPLING)
@pytest.mark.parametrize("variant", ["grey", "colour", "parallel-class"])
@pytest.mark.parametrize("name", PRIORS)
def test_cached_sampling_equals_naive(name, variant, options):
    prior = build(name, variant)
    n = 3
    cond = condition(prior, n)
    kwargs = dict(SAMPLING[options])
    if "prefix_rows" in kwargs:
        kwargs["prefix"] = torch.randint(0, K, (n, prior.channels, kwargs.pop("prefix_rows"), W))
    draws = {
        method: prior.sample(n, (H, W), cond, method=method, generator=torch.Generator().manual_seed(7), **kwargs)
        for method in ("cached", "naive")
    }
    assert torch.equal(draws["cached"], draws["naive"])
    sample = draws["cached"]
    assert sample.shape == (n, prior.channels, H, W) and sample.dtype == torch.int64
    assert int(sample.min()) >= 0 and int(sample.max()) < K
    if "prefix" in kwargs:
        assert torch.equal(sample[:, :, : kwargs["prefix"].shape[2]], kwargs["prefix"])


# ---------------------------------------------------------------------------------------- shapes, persistence


@pytest.mark.parametrize("variant", ["grey", "colour-vector", "parallel-class"])
@pytest.mark.parametrize("name", PRIORS)
def test_shapes_log_prob_and_bits_per_dim(name, variant):
    prior = build(name, variant)
    x = torch.randint(0, K, (2, prior.channels, H, W))
    cond = condition(prior, 2)
    logits = prior.logits(x, cond)
    assert logits.shape == (2, K, prior.channels, H, W) and logits.is_floating_point()
    assert prior.num_categories == K
    log_prob = prior.log_prob(x, cond)
    assert log_prob.shape == (2,) and bool(torch.isfinite(log_prob).all()) and bool((log_prob <= 0).all())
    bpd = prior.bits_per_dim(x, cond)
    torch.testing.assert_close(bpd, -log_prob / (prior.channels * H * W * math.log(2)))


@pytest.mark.parametrize("variant", ["grey", "colour", "colour-parallel", "grey-class"])
@pytest.mark.parametrize("name", PRIORS)
def test_nll_is_the_cross_entropy_of_the_logits(name, variant):
    """The likelihood's two faces agree: ``nll`` is ``-log softmax(logits)`` at ``x``, float32, for every value, and
    the logits of each value are a proper distribution (finite, summing to 1 after the softmax)."""
    prior = build(name, variant)
    x = torch.randint(0, K, (3, prior.channels, H, W), generator=torch.Generator().manual_seed(4))
    cond = condition(prior, 3)
    with torch.no_grad():
        nll, logits = prior.nll(x, cond), prior.logits(x, cond)
    assert nll.shape == x.shape and nll.dtype == torch.float32 and bool((nll >= 0).all())
    assert bool(torch.isfinite(logits).all())
    expected = torch.nn.functional.cross_entropy(logits.float(), x, reduction="none")
    torch.testing.assert_close(nll, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(-nll.flatten(1).sum(1), prior.log_prob(x, cond), rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("variant", ["grey", "colour", "parallel-class"])
@pytest.mark.parametrize("name", PRIORS)
def test_prefill_then_steps_equal_forward(name, variant):
    """A stepper that takes a known prefix in one pass (``prefill``) then gives the forward pass's logits at every
    later value, though the values after the prefix keep changing; steppers without ``prefill`` are skipped."""
    prior = build(name, variant)
    n, known = 3, W + 2  # the first row and two positions of the second
    generator = torch.Generator().manual_seed(6)
    x = torch.randint(0, K, (n, prior.channels, H, W), generator=generator)
    cond = condition(prior, n)
    stepper = prior.incremental(cond, (H, W))
    if not hasattr(stepper, "prefill"):
        pytest.skip(f"{name}'s stepper takes a prefix one value at a time")
    with torch.no_grad():
        full = prior.logits(x, cond)  # (n, K, C, H, W)
        stepper.prefill(randomise_after(x, *divmod(known - 1, W), prior.channels - 1, generator), known)
        for i, j, c in raster(prior.channels)[known * prior.channels :]:
            logits = stepper.logits(randomise_after(x, i, j, c, generator), i, j, c)
            torch.testing.assert_close(logits, full[:, :, c, i, j], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("variant", ["grey", "colour-vector", "parallel-class"])
@pytest.mark.parametrize("name", PRIORS)
def test_save_load_round_trip(name, variant, tmp_path):
    prior = build(name, variant)
    with torch.no_grad():  # move the parameters away from their initial values
        for parameter in prior.parameters():
            parameter.add_(0.01 * torch.randn_like(parameter))
    prior.save_pretrained(str(tmp_path / name))
    loaded = vqgen.AutoregressivePrior.from_pretrained(str(tmp_path / name)).eval()
    x = torch.randint(0, K, (2, prior.channels, H, W))
    cond = condition(prior, 2)
    assert dict(loaded.config) == dict(prior.config)
    assert torch.equal(loaded(x, cond), prior(x, cond))  # the raw output, whatever its layout


# --------------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("name", PRIORS)
def test_bad_inputs_raise_clear_errors(name):
    prior = build(name, "grey")
    x = torch.randint(0, K, (2, 1, H, W))
    with pytest.raises(ValueError, match=r"x must lie in \[0, 11\)"):
        prior(x + K)
    negative = x.clone()
    negative[1, 0, 2, 3] = -1
    with pytest.raises(ValueError, match=r"x must lie in \[0, 11\), got values in \[-1,"):
        prior(negative)
    with pytest.raises(TypeError, match="integer category indices"):
        prior(x.float() / (K - 1))
    with pytest.raises(ValueError, match="channels"):
        prior(x.repeat(1, 3, 1, 1))
    with pytest.raises(ValueError, match="unconditional"):
        prior(x, torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="temperature must be > 0"):
        prior.sample(2, (H, W), temperature=0.0)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        prior.sample(2, (H, W), temperature=-1.0)
    with pytest.raises(ValueError, match="prefix must have shape"):
        prior.sample(2, (H, W), prefix=torch.zeros(2, 1, 2, W + 1, dtype=torch.long))
    with pytest.raises(ValueError, match="prefix must have shape"):
        prior.sample(3, (H, W), prefix=torch.zeros(2, 1, 2, W, dtype=torch.long))


@pytest.mark.parametrize("name", PRIORS)
def test_conditional_prior_requires_its_condition(name):
    prior = build(name, "grey-class")
    x = torch.randint(0, K, (2, 1, H, W))
    with pytest.raises(ValueError, match="needs cond"):
        prior(x)
    with pytest.raises(ValueError, match="needs cond"):
        prior.sample(2, (H, W))
    with pytest.raises(ValueError, match=r"cond must lie in \[0, 4\)"):
        prior(x, torch.tensor([0, 4]))
    with pytest.raises(ValueError, match="one row per example"):
        prior(x, torch.tensor([0, 1, 2]))
    with pytest.raises(TypeError, match="class labels"):
        prior(x, torch.randn(2, 3))
