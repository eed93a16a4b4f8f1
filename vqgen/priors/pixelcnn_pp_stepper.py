"""Exact cached sampling for PixelCNN++, strided and transposed layers included (arXiv:1704.06001).

Ramachandran et al. cache every layer of a convolutional generator and compute each activation once, when its inputs
are known. For PixelCNN++'s U-Net this is a *static schedule*, fixed by the architecture and the grid alone:

1. **When each activation becomes computable.** The input at raster position ``t`` is known once ``t`` is drawn.
   Through every layer ([`ShiftedConv2d.taps`][vqgen.priors.pixelcnn_pp_layers.ShiftedConv2d.taps]: which input
   positions an output position reads) each activation gets ``need``, the last input position it depends on; it is
   computable from raster step ``need + 1`` on. The head at ``t`` must need less than ``t`` (checked: a leak in the
   network would fail here, not in a sample).
2. **When to compute it.** From the head backwards, each activation gets a deadline (the earliest step at which
   something that reads it is computed), and each layer's activations are grouped into as few steps as possible
   between readiness and deadline (greedy interval stabbing, latest point first). A full-resolution layer of the
   ``"down_right"`` stream computes one position per step; its ``"down"`` stream one or two stretches of a row
   (like the Gated PixelCNN's vertical stack); a half-resolution layer a position every second step of every second
   row, a quarter-resolution one every fourth — the strided and up-sampling layers included.
3. **Sampling** runs, before the head at step ``t``, the groups scheduled at ``t``: per layer one gather of the
   windows of its inputs' caches (channels-last, one zero row for padding), one matrix product per input, the
   layer's nonlinearity, one write. Every activation is computed exactly once per grid, from the same weights as the
   forward pass, so cached and naive samples agree.

Caches per node of the network (``(B, N + 1, D)``, ``N`` positions of its resolution): its values where a layer reads
them raw (strided and transposed layers, residuals, the head), and ``concat_elu`` of them where a gated resnet reads
that. ``prefill`` takes a known prefix in one pass: every group scheduled up to the prefix's end, one per layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import torch
from torch import Tensor

from ..threads import one_thread
from .pixelcnn_pp_layers import Op, concat_elu, level_sizes

if TYPE_CHECKING:
    from .pixelcnn_pp import PixelCNNpp

__all__ = ["PixelCNNppStepper", "Schedule"]

NEVER = 2**62  # the deadline of an activation nothing reads


class Job(NamedTuple):
    """One group of a schedule: op ``op`` at ``positions`` ``(n,)`` (``first .. first + n - 1`` when
    ``contiguous``); ``windows`` holds, per term, the flat source positions of their windows ``(n * taps,)``."""

    op: int
    positions: Tensor
    first: int
    contiguous: bool
    windows: tuple[Tensor, ...]


def _stab(ready: Tensor, deadline: Tensor) -> Tensor:
    """The step of each activation: ``ready <= step <= deadline``, as few distinct steps as possible (each the
    deadline of the earliest-due activation not yet placed); ``-1`` where the deadline is ``NEVER``."""
    step = torch.full_like(ready, -1)
    by_ready = ready.argsort().tolist()
    ready_list, deadline_list, out = ready.tolist(), deadline.tolist(), step.tolist()
    cursor = 0
    for p in deadline.argsort().tolist():
        if out[p] >= 0 or deadline_list[p] == NEVER:
            continue
        point = deadline_list[p]
        while cursor < len(by_ready) and ready_list[by_ready[cursor]] <= point:
            q = by_ready[cursor]
            cursor += 1
            if out[q] < 0 and deadline_list[q] != NEVER:
                out[q] = point
    return torch.tensor(out, dtype=torch.long)


class Schedule:
    """When each activation of ``ops`` is computed while sampling an ``(H, W)`` grid (see the module docstring).

    Attributes:
        device: where the jobs' index tensors live (the prior's device).
        sizes: ``(H, W)`` of each resolution.
        taps: per op, per term, ``(N_out, taps)`` flat source positions (``N_src``: nothing).
        steps: per op, ``(N_out,)`` the raster step that computes each position (``-1``: never needed).
        jobs: per raster step ``t`` (``0 .. H W - 1``), the groups to run before the head at ``t``, in op order.
    """

    def __init__(self, ops: Sequence[Op], top: str, height: int, width: int, device: torch.device | None = None):
        self.device = torch.device("cpu") if device is None else torch.device(device)  # where the jobs' indices live
        self.sizes = level_sizes(height, width)
        level = {"input": 0}
        need = {"input": torch.arange(height * width)}
        self.taps: list[list[Tensor]] = []
        for op in ops:
            out_size = self.sizes[op.level]
            needed = torch.full((out_size[0] * out_size[1],), -1, dtype=torch.long)
            taps = []
            for term in op.terms:
                index = term.conv.taps(self.sizes[level[term.source]], out_size)  # (N_out, T)
                source = torch.cat([need[term.source], torch.tensor([-1])])
                needed = torch.maximum(needed, source[index].amax(1))
                taps.append(index)
            if op.residual is not None:
                needed = torch.maximum(needed, need[op.residual])
            self.taps.append(taps)
            need[op.out], level[op.out] = needed, op.level
        positions = torch.arange(height * width)
        if bool((need[top] >= positions).any()):
            leak = int((need[top] >= positions).nonzero()[0])
            raise RuntimeError(
                f"the network is not causal: the output at position {leak} reads the input at {need[top][leak]}"
            )

        deadline = {name: torch.full_like(n, NEVER) for name, n in need.items()}
        deadline[top] = positions.clone()
        self.steps: list[Tensor] = [torch.empty(0)] * len(ops)
        for k in reversed(range(len(ops))):
            op = ops[k]
            step = _stab(need[op.out] + 1, deadline[op.out])
            self.steps[k] = step
            used = step >= 0
            reads = [(term.source, index[used]) for term, index in zip(op.terms, self.taps[k])]
            if op.residual is not None:
                reads.append((op.residual, positions_of(used)[:, None]))
            for source, index in reads:
                due = torch.cat([deadline[source], torch.tensor([NEVER])])
                due.scatter_reduce_(0, index.flatten(), step[used].repeat_interleave(index.shape[1]), "amin")
                deadline[source] = due[:-1]

        self.jobs: list[list[Job]] = [[] for _ in range(height * width)]
        for k, step in enumerate(self.steps):
            for t in step[step >= 0].unique().tolist():
                self.jobs[t].append(self.job(k, (step == t).nonzero().flatten()))

    def job(self, op: int, positions: Tensor) -> Job:
        """Op ``op`` at ``positions`` ``(n,)``, with the windows of its terms gathered from the taps."""
        first, n = int(positions[0]), len(positions)
        contiguous = int(positions[-1]) == first + n - 1
        windows = tuple(taps[positions].flatten().to(self.device) for taps in self.taps[op])
        return Job(op, positions.to(self.device), first, contiguous, windows)

    def prefix_jobs(self, steps: int) -> list[Job]:
        """Every group scheduled at steps ``<= steps``, one per op, in op order (for ``prefill``)."""
        jobs = []
        for k, step in enumerate(self.steps):
            positions = ((step >= 0) & (step <= steps)).nonzero().flatten()
            if len(positions):
                jobs.append(self.job(k, positions))
        return jobs


def positions_of(mask: Tensor) -> Tensor:
    """The indices where ``mask`` ``(N,)`` is true, ``(n,)``."""
    return mask.nonzero().flatten()


class OpStep(NamedTuple):
    """An op as a cached step runs it: per term the source cache ``(B, N_src + 1, D_src)`` and the kernel as a matrix
    ``(taps D_src, D_out)``; the summed bias ``(D_out,)`` and the condition's ``(B, 1, D_out)`` (or ``None``); the
    kind; the residual's value cache; the op's own value and ``concat_elu`` caches (``None`` where nothing reads
    them)."""

    terms: tuple[tuple[Tensor, Tensor], ...]
    bias: Tensor
    cond: Tensor | None
    kind: str
    residual: Tensor | None
    value: Tensor | None
    act: Tensor | None


class PixelCNNppStepper:
    """Cached sampling for [`PixelCNNpp`][vqgen.priors.pixelcnn_pp.PixelCNNpp] on a static [`Schedule`][Schedule].

    A [`Stepper`][vqgen.sampling.Stepper]: at ``(i, j, 0)`` it writes the pixel drawn last into the input cache, runs
    the groups scheduled at ``t = i W + j`` and the head's context at ``t``; at every channel it couples the head to
    the channels of ``(i, j)`` drawn so far and returns what the likelihood makes of it.
    """

    def __init__(self, prior: PixelCNNpp, cond: Tensor | None, shape: Sequence[int]) -> None:
        self.prior, self.cond = prior, cond
        self.height, self.width = int(shape[0]), int(shape[1])
        self.schedule = prior.schedule(self.height, self.width, prior.device)
        self.batch: int | None = None

    # ----------------------------------------------------------------------------------------------- caches

    def start(self, batch: int, dtype: torch.dtype, device: torch.device) -> None:
        """Allocate the caches, take every kernel as a matrix, fold the condition into the biases."""
        prior, schedule = self.prior, self.schedule
        ops = prior.ops
        raw = {"input", prior.top} | {t.source for op in ops for t in op.terms if not t.act}
        raw |= {op.residual for op in ops if op.residual is not None}
        activated = {t.source for op in ops for t in op.terms if t.act}
        factor = {"linear": 1.0, "concat_elu": 2.0, "gate": 0.5}  # the op's width over its kernels' outputs
        width = {"input": prior.input.out_channels + 1}
        width |= {op.out: int(op.terms[0].conv.weight.shape[0] * factor[op.kind]) for op in ops}
        size = {"input": self.height * self.width} | {
            op.out: schedule.sizes[op.level][0] * schedule.sizes[op.level][1] for op in ops
        }
        zeros = dict(dtype=dtype, device=device)
        self.values = {name: torch.zeros(batch, size[name] + 1, width[name], **zeros) for name in raw}
        self.acts = {name: torch.zeros(batch, size[name] + 1, 2 * width[name], **zeros) for name in activated}
        self.values["input"][:, :-1, -1] = 1  # the channel of ones, zero in the padding row
        biases = prior.cond_bias(self.cond)
        self.ops: list[OpStep] = []
        for op in ops:
            cond = biases[op.cond][:, None] if op.cond is not None and biases[op.cond] is not None else None
            terms = tuple(
                ((self.acts if t.act else self.values)[t.source], t.conv.step_matrix().to(dtype)) for t in op.terms
            )
            bias = sum(t.conv.bias for t in op.terms)  # (D,)
            residual = self.values[op.residual] if op.residual is not None else None
            self.ops.append(
                OpStep(terms, bias, cond, op.kind, residual, self.values.get(op.out), self.acts.get(op.out))
            )
        self.batch, self.next_step, self.written = batch, 0, 0

    def run(self, job: Job) -> None:
        """Compute op ``job.op`` at ``job.positions`` from the caches it reads, and store it."""
        op = self.ops[job.op]
        batch, n = self.batch, len(job.positions)
        region = slice(job.first, job.first + n) if job.contiguous else job.positions
        pre = None
        for (cache, weight), window in zip(op.terms, job.windows):
            rows = cache.index_select(1, window).view(batch * n, -1)  # (B n, taps D_src): the windows
            pre = torch.addmm(op.bias, rows, weight) if pre is None else pre.addmm_(rows, weight)
        pre = pre.view(batch, n, -1)  # (B, n, D)
        if op.cond is not None:
            pre = pre + op.cond
        if op.kind == "concat_elu":
            value = concat_elu(pre, dim=-1)
        elif op.kind == "gate":
            a, b = pre.chunk(2, dim=-1)
            value = torch.addcmul(op.residual[:, region], a, torch.sigmoid(b))
        else:
            value = pre
        if op.value is not None:
            op.value[:, region] = value
        if op.act is not None:
            op.act[:, region] = concat_elu(value, dim=-1)

    def write(self, x: Tensor, first: int, last: int) -> None:
        """Put the pixels ``first .. last - 1`` (raster order) of ``x`` ``(B, C, H, W)`` into the input cache."""
        if last <= first:
            return
        pixels = x.flatten(2)[:, :, first:last].transpose(1, 2)  # (B, n, C)
        n, c = pixels.shape[1], pixels.shape[2]
        features = self.prior.input.embed_values(pixels.reshape(-1, c))  # (B n, C E)
        self.values["input"][:, first:last, :-1] = self.prior.current_values(features).view(self.batch, n, -1)
        self.written = last

    # ------------------------------------------------------------------------------------------------- steps

    def logits(self, x: Tensor, i: int, j: int, c: int) -> Tensor:
        """Logits ``(n, K)`` of channel ``c`` at ``(i, j)``; see [`Stepper`][vqgen.sampling.Stepper]."""
        with torch.inference_mode():
            t = i * self.width + j
            if t == 0 and c == 0 or self.batch != x.shape[0]:
                param = next(self.prior.parameters())
                with one_thread(x.shape[0]):
                    self.start(x.shape[0], param.dtype, param.device)
            with one_thread(self.batch):
                if c == 0:
                    self.write(x, self.written, t)
                    for step in range(self.next_step, t + 1):
                        for job in self.schedule.jobs[step]:
                            self.run(job)
                    self.next_step = max(self.next_step, t + 1)
                    head = self.prior.head
                    self.head = head.start_position(head.context(self.values[self.prior.top][:, t]))  # top: (B, h)
                values = x[:, :, i, j]  # (B, C): channels < c final
                current = self.prior.current_values(self.prior.input.embed_values(values)) if c else values
                output = self.prior.head.position_output(self.head, current, c)
                return self.prior.likelihood.position_logits(output, c, values)

    def prefill(self, x: Tensor, positions: int) -> None:
        """Take the first ``positions`` positions of ``x`` ``(B, C, H, W)`` as known, in one pass over the layers."""
        with torch.inference_mode():
            param = next(self.prior.parameters())
            with one_thread(x.shape[0]):
                self.start(x.shape[0], param.dtype, param.device)
                self.write(x, 0, positions)
                for job in self.schedule.prefix_jobs(positions):
                    self.run(job)
            self.next_step = positions + 1
