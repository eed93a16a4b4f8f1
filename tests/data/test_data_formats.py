"""Parsers on crafted files: IDX headers (magic, sizes vs length, gzip damage) and CIFAR-10 binary records."""

from __future__ import annotations

import dataclasses
import gzip
import struct

import numpy as np
import pytest

from vqgen.data import ChecksumError, load_dataset, read_cifar_binary, read_idx, specs


def test_read_idx_roundtrip(tmp_path, helpers):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = helpers.write(tmp_path / "x-idx3-ubyte.gz", helpers.idx_bytes(images))
    out = read_idx(path, ndim=3)
    assert out.shape == (2, 3, 4) and out.dtype == np.uint8 and np.array_equal(out, images)
    assert out.flags.writeable
    raw = helpers.write(tmp_path / "y-idx1-ubyte", gzip.decompress(helpers.idx_bytes(np.arange(5, dtype=np.uint8))))
    assert read_idx(raw, ndim=1).tolist() == [0, 1, 2, 3, 4]  # uncompressed files work too


def test_read_idx_rejects_wrong_magic(tmp_path, helpers):
    path = helpers.write(tmp_path / "labels.gz", helpers.idx_bytes(np.zeros(5, np.uint8)))
    with pytest.raises(ValueError, match=r"labels\.gz.*magic number 0x00000801, expected 0x00000803"):
        read_idx(path, ndim=3)
    bad_type = gzip.compress(struct.pack(">HBBI", 0, 0x0D, 1, 1) + b"\0\0\0\0")  # float32 data
    with pytest.raises(ValueError, match="magic"):
        read_idx(helpers.write(tmp_path / "f.gz", bad_type))


def test_read_idx_rejects_size_mismatch(tmp_path, helpers):
    header = struct.pack(">HBB3I", 0, 0x08, 3, 10, 28, 28)
    path = helpers.write(tmp_path / "short.gz", gzip.compress(header + bytes(28 * 28 * 9)))
    with pytest.raises(ValueError, match=r"short\.gz.*\(10, 28, 28\).*7856 bytes"):
        read_idx(path, ndim=3)


def test_read_idx_rejects_truncated_gzip(tmp_path, helpers):
    body = helpers.idx_bytes(np.ones((4, 28, 28), np.uint8))
    path = helpers.write(tmp_path / "cut.gz", body[: len(body) // 2])
    with pytest.raises(ValueError, match=r"cut\.gz.*truncated"):
        read_idx(path)


def test_mismatched_image_and_label_counts(fake_mnist, http_server, tmp_path, helpers, monkeypatch):
    load_dataset("mnist", split="test", root=tmp_path, download=True)
    # a label file with 3 labels for 4 images, registered with its own (correct) checksum
    body = helpers.idx_bytes(np.array([1, 2, 3], np.uint8))
    helpers.write(tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz", body)
    spec = specs.DATASETS["mnist"]
    test = (spec.splits["test"][0], dataclasses.replace(spec.splits["test"][1], sha256=helpers.sha256(body)))
    monkeypatch.setitem(specs.DATASETS, "mnist", dataclasses.replace(spec, splits={**spec.splits, "test": test}))
    with pytest.raises(ValueError, match="4 images but .* 3 labels"):
        load_dataset("mnist", split="test", root=tmp_path)


def _records(labels, seed=0):
    rng = np.random.default_rng(seed)
    recs = rng.integers(0, 256, (len(labels), 3073), dtype=np.uint8)
    recs[:, 0] = labels
    return recs


def test_read_cifar_binary_layout(tmp_path, helpers):
    recs = _records([3, 7])
    path = helpers.write(tmp_path / "b.bin", recs.tobytes())
    images, labels = read_cifar_binary([path, path])
    assert images.shape == (4, 3, 32, 32) and labels.tolist() == [3, 7, 3, 7]
    # planes: R = bytes 1..1024, G = 1025..2048, B = 2049..3072, each row-major 32x32
    assert images[1, 0, 0, 1] == recs[1, 2] and images[1, 1, 0, 0] == recs[1, 1025]
    assert images[1, 2, 31, 31] == recs[1, 3072] and images[0, 0, 1, 0] == recs[0, 1 + 32]


def test_read_cifar_binary_rejects_partial_records(tmp_path, helpers):
    path = helpers.write(tmp_path / "b.bin", _records([1, 2]).tobytes()[:-5])
    with pytest.raises(ValueError, match=r"b\.bin.*6141 bytes"):
        read_cifar_binary([path])
    bad = _records([1, 12])
    with pytest.raises(ValueError, match="label byte 12"):
        read_cifar_binary([helpers.write(tmp_path / "c.bin", bad.tobytes())])


def test_cifar10_prefers_full_batches_over_subset(tmp_path, helpers, monkeypatch):
    full = specs.DATASETS["cifar10"]
    small = {s: tuple(dataclasses.replace(f, size=3073) for f in fs) for s, fs in full.splits.items()}
    monkeypatch.setitem(specs.DATASETS, "cifar10", dataclasses.replace(full, splits=small))
    for i, f in enumerate(full.files()):
        helpers.write(tmp_path / "cifar10" / f.name, _records([i], seed=i).tobytes())
    part = specs.DATASETS["cifar10-subset"]
    for f in part.files():
        helpers.write(tmp_path / "cifar10-subset" / f.name, _records([9]).tobytes())
    train = load_dataset("cifar10", root=tmp_path)
    assert train.name == "cifar10" and train.labels.tolist() == [0, 1, 2, 3, 4]
    assert "data_batch_5.bin" in train.source
    # explicit subset: the subset files are verified by SHA-256, and these fake ones fail with a clear error
    with pytest.raises(ChecksumError, match="data_batch_1_first4000.bin"):
        load_dataset("cifar10-subset", root=tmp_path)
    assert load_dataset("cifar10", split="test", root=tmp_path, subset=False).labels.tolist() == [5]


def test_full_cifar_batch_with_wrong_size(tmp_path, helpers):
    for f in specs.DATASETS["cifar10"].splits["test"]:
        helpers.write(tmp_path / "cifar10" / f.name, _records([1]).tobytes())
    with pytest.raises(ChecksumError, match=r"test_batch\.bin has 3073 bytes, expected 30730000"):
        load_dataset("cifar10", split="test", root=tmp_path)


def test_cifar10_missing_names_both_layouts(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_dataset("cifar10", split="train", root=tmp_path)
    message = str(info.value)
    assert str(tmp_path / "cifar10") in message and "cifar-10-batches-bin/data_batch_5.bin" in message
    assert str(tmp_path / "cifar10-subset") in message and "data_batch_1_first4000.bin" in message
    assert "download=True" in message
