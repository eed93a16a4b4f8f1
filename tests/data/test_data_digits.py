"""The offline default dataset: scikit-learn's 8x8 digits, scaled and upscaled, with a deterministic split."""

from __future__ import annotations

import pytest
import torch
from sklearn.datasets import load_digits as sklearn_digits

from vqgen.data import load_dataset, load_digits


def test_default_shapes_and_split():
    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    assert train.images.shape == (1442, 1, 16, 16) and test.images.shape == (355, 1, 16, 16)
    assert train.images.dtype == torch.uint8 and train.labels.dtype == torch.int64
    assert train.num_classes == 10 and train.class_names[3] == "3" and train.image_shape == (1, 16, 16)
    assert int(train.images.max()) == 255 and int(train.images.min()) == 0
    counts = torch.bincount(test.labels, minlength=10)
    assert counts.min() >= 34 and counts.max() <= 36  # stratified: a fifth of every class


def test_split_is_deterministic_and_partitions_the_data():
    raw = sklearn_digits()
    eight_train, eight_test = load_digits("train", size=8), load_digits("test", size=8)
    test_index = [i for i, y in enumerate(raw.target) if (raw.target[:i] == y).sum() % 5 == 4]
    assert eight_test.labels.tolist() == raw.target[test_index].tolist()
    expected = torch.from_numpy(raw.images[test_index]).mul(255 / 16).round().to(torch.uint8)
    assert torch.equal(eight_test.images[:, 0], expected)  # 0..16 → 0..255
    assert len(eight_train) + len(eight_test) == len(raw.target)
    assert torch.equal(load_digits("train").images, load_digits("train").images)


def test_upscaling_modes():
    eight = load_digits("test", size=8).images
    nearest = load_digits("test", size=16).images
    assert torch.equal(nearest, eight.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3))
    bilinear = load_digits("test", size=32, resize="bilinear").images
    assert bilinear.shape == (355, 1, 32, 32)
    assert len(torch.unique(bilinear)) > len(torch.unique(nearest))  # smooth edges add grey levels


def test_bad_options():
    with pytest.raises(ValueError, match=r"size must be one of \(8, 16, 32\)"):
        load_digits(size=12)
    with pytest.raises(ValueError, match="resize"):
        load_dataset("digits", resize="bicubic")
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['mode'\] for digits"):
        load_dataset("digits", mode="L")
