"""The fitting methods of [`TwoStageModel`][vqgen.two_stage.TwoStageModel]: stage 1, the codes of the dataset, stage 2.

A mixin of ``TwoStageModel`` (which documents them): it reads the model's ``vqvae``, ``prior`` and ``fitted_``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from .autoencoders.vqvae import encode_codes
from .data.codes import CodeGridDataset, encode_to_disk
from .interfaces import AutoregressivePrior
from .priors.baselines import fit_closed_form
from .training.batches import is_stream
from .training.history import MetricsHistory
from .training.inputs import TrainData, image_shape
from .training.prior import fit_prior
from .training.stage1 import fit_vqvae

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .training.config import FitOptions

__all__ = ["TwoStageFitting"]


class TwoStageFitting:
    """[`fit`][vqgen.two_stage.TwoStageModel.fit], [`fit_stage1`][vqgen.two_stage.TwoStageModel.fit_stage1] and
    [`fit_prior`][vqgen.two_stage.TwoStageModel.fit_prior] of a ``TwoStageModel``."""

    def fit(
        self,
        train_data: TrainData,
        *,
        eval_data: TrainData | None = None,
        stage1: FitOptions | None = None,
        stage2: FitOptions | None = None,
    ) -> dict[str, MetricsHistory]:
        """Train stage 1, encode the dataset to codes, then train the prior; returns both histories.

        Args:
            train_data: a [`vqgen.data`][vqgen.data] dataset (labels are used by class-conditional priors), uint8
                images ``(N, C, H, W)``, or a streamed dataset such as
                [`ImageFolderDataset`][vqgen.data.ImageFolderDataset] (its codes go to disk, see
                [`fit_prior`][vqgen.two_stage.TwoStageModel.fit_prior]).
            eval_data: held-out data, in memory or streamed (e.g. the ``test`` split of
                ``load_dataset(folder, stream=True)``: read batch by batch, its codes written beside the training
                codes), evaluated after every epoch of both stages.
            stage1: options of stage 1 ([`FitOptions`][vqgen.training.config.FitOptions]: ``TrainConfig``'s fields
                such as ``max_seconds``, ``epochs``, ``batch_size``, ``lr``, or a whole ``config``, and ``resume``).
            stage2: options of the prior, the same.

        Returns:
            ``{"stage1": history, "stage2": history}``, the [`MetricsHistory`][vqgen.training.MetricsHistory] of
            [`fit_stage1`][fit_stage1] and of [`fit_prior`][fit_prior].

        Raises:
            TypeError: if the data or an option has the wrong type (see [`fit_vqvae`][vqgen.training.fit_vqvae]).
            ValueError: if the data does not fit the model, or an option is out of range.

        Examples:
            >>> import vqgen
            >>> from vqgen import TwoStageModel
            >>> model = TwoStageModel.from_preset("digits-tiny")
            >>> train = vqgen.data.load_dataset("digits")
            >>> test = vqgen.data.load_dataset("digits", split="test")
            >>> histories = model.fit(train, eval_data=test, stage1={"max_steps": 2}, stage2={"max_steps": 2})
            >>> sorted(histories), sorted(histories["stage2"][-1]["eval"])
            (['stage1', 'stage2'], ['bits_per_dim', 'nll'])
        """
        first = self.fit_stage1(train_data, eval_data=eval_data, **dict(stage1 or {}))
        second = self.fit_prior(train_data, eval_data=eval_data, **dict(stage2 or {}))
        return {"stage1": first, "stage2": second}

    def fit_stage1(
        self, train_data: TrainData, *, eval_data: TrainData | None = None, **options: Unpack[FitOptions]
    ) -> MetricsHistory:
        """Train the encoder, quantizer and decoder (see [`fit_vqvae`][vqgen.training.fit_vqvae] for ``options``).

        An earlier trained prior no longer matches the new codes: [`fit_prior`][fit_prior] must run again before
        sampling.

        Args:
            train_data: as for [`fit`][fit].
            eval_data: held-out data, evaluated after every epoch.
            **options: ``TrainConfig``'s fields, or a whole ``config``, and ``resume``
                ([`FitOptions`][vqgen.training.config.FitOptions]).

        Returns:
            The per-epoch [`MetricsHistory`][vqgen.training.MetricsHistory] of ``fit_vqvae``.

        Examples:
            >>> import vqgen
            >>> from vqgen import TwoStageModel
            >>> model = TwoStageModel.from_preset("digits-tiny")
            >>> history = model.fit_stage1(vqgen.data.load_dataset("digits"), max_steps=2, lr=2e-3)
            >>> history[-1]["step"], sorted(history[-1]["train"])[:3]
            (2, ['codebook_loss', 'commitment_loss', 'loss'])
        """
        shape = image_shape(train_data)
        history = fit_vqvae(self.vqvae, train_data, eval_data=eval_data, **options)
        self.image_shape_.copy_(torch.tensor(shape))
        self.fitted_[0] = True
        self.fitted_[1] = False  # new codes: an earlier prior no longer matches
        return history

    def fit_prior(
        self,
        train_data: TrainData,
        *,
        eval_data: TrainData | None = None,
        prior: AutoregressivePrior | None = None,
        codes_dir: str | os.PathLike[str] | None = None,
        **options: Unpack[FitOptions],
    ) -> MetricsHistory:
        """Encode ``train_data`` with the trained autoencoder and fit the prior on its codes.

        Args:
            train_data: as for [`fit`][fit]; its ``.labels`` condition class-conditional priors.
            eval_data: held-out data, in memory or streamed; streamed data is encoded batch by batch, its codes
                written to disk (under ``codes_dir/held_out``) and read back batch by batch at every evaluation.
            prior: replace the model's prior by this one first (refit another prior on a trained autoencoder).
            codes_dir: for streamed ``train_data`` (a dataset without in-memory ``.images``, such as
                [`ImageFolderDataset`][vqgen.data.ImageFolderDataset]), where its code grids are written,
                memory-mapped ([`encode_to_disk`][vqgen.data.encode_to_disk]); ``None`` uses a temporary directory
                removed afterwards. In-memory data is encoded in memory.
            **options: options of [`fit_prior`][vqgen.training.fit_prior] (``epochs``, ``max_seconds``, ...).

        A prior without trainable parameters is not trained by gradient: the ``independent`` baseline is fit in
        closed form (its per-position frequencies, [`fit`][vqgen.priors.baselines.IndependentPrior.fit]), the
        ``uniform`` one has nothing to learn; ``options`` do not apply, and the history holds one record of bits/dim.

        Returns:
            The per-epoch [`MetricsHistory`][vqgen.training.MetricsHistory] of ``fit_prior`` (bits/dim is bits per
            code).

        Raises:
            NotFittedError: before stage 1 is trained.
            ValueError: if ``prior`` does not model this model's codes, or a class-conditional prior gets data
                without labels.

        Examples:
            >>> import vqgen
            >>> from vqgen import TwoStageModel
            >>> model = TwoStageModel.from_preset("digits-tiny")
            >>> digits = vqgen.data.load_dataset("digits")
            >>> _ = model.fit(digits, stage1={"max_steps": 2}, stage2={"max_steps": 2})
            >>> rnn = vqgen.build("prior", "rnn", num_categories=model.num_codes, hidden_size=16)
            >>> history = model.fit_prior(digits, prior=rnn, max_steps=2)             # another prior, same codes
            >>> model.prior is rnn, "bits_per_dim" in history[-1]["train"]
            (True, True)
        """
        self._require(0, "fit_prior")
        if prior is not None:
            self._check_prior(prior)
            self.prior = prior
        conditional = self.prior.num_classes is not None
        trainable = any(p.requires_grad for p in self.prior.parameters())
        to_disk = trainable and (is_stream(train_data) or (eval_data is not None and is_stream(eval_data)))
        with contextlib.ExitStack() as stack:
            if to_disk and codes_dir is None:
                codes_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="vqgen-codes-"))
            held_out, eval_cond = None, None
            if eval_data is not None and to_disk and is_stream(eval_data):
                held_out = self._codes_on_disk(eval_data, os.path.join(codes_dir, "held_out"))
            elif eval_data is not None:
                held_out = encode_codes(self.vqvae, eval_data)  # (N, 1, h, w)
                eval_cond = self._labels(eval_data) if conditional else None
            if trainable and is_stream(train_data):
                codes = self._codes_on_disk(train_data, codes_dir)
                history = fit_prior(self.prior, codes, eval_data=held_out, eval_cond=eval_cond, **options)
            else:
                codes = encode_codes(self.vqvae, train_data)  # (N, 1, h, w)
                cond = self._labels(train_data) if conditional else None
                if trainable:
                    history = fit_prior(
                        self.prior, codes, eval_data=held_out, cond=cond, eval_cond=eval_cond, **options
                    )
                else:
                    history = MetricsHistory(fit_closed_form(self.prior, codes, held_out, cond, eval_cond))
        self.fitted_[1] = True
        return history

    def _codes_on_disk(self, data: Any, directory: str | os.PathLike[str]) -> CodeGridDataset:
        """The code grids of streamed ``data``, written batch by batch to ``directory`` and memory-mapped."""
        dataset = data.dataset if isinstance(data, DataLoader) else data
        return encode_to_disk(self.encode, dataset, directory, num_codes=self.num_codes)

    @staticmethod
    def _labels(data: Any) -> Tensor:
        labels = getattr(data, "labels", None)
        if labels is None:
            raise ValueError("the prior is class-conditional, but the data has no .labels; pass a labelled dataset")
        return labels
