"""Code grids on disk: encode_to_disk writes what in-memory encoding gives; bad files are named."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import vqgen
from vqgen.data import CodeGridDataset, ImageDataset, encode_to_disk
from vqgen.training.prior import encode_codes


@pytest.fixture(scope="module")
def vqvae():
    torch.manual_seed(0)
    kinds = {"encoder": "conv", "decoder": "conv"}
    parts = {k: vqgen.build(k, n, **vqgen.registry(k).get(n).tiny_config()) for k, n in kinds.items()}
    parts["quantizer"] = vqgen.build("quantizer", "vq", num_codes=16, dim=parts["encoder"].latent_dim)
    return vqgen.build("model", "vqvae", **parts).eval()


@pytest.fixture
def dataset():
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (11, 1, 8, 8), dtype=torch.uint8, generator=generator)
    return ImageDataset(images, torch.arange(11) % 3)


def test_round_trip_equals_in_memory_encoding(vqvae, dataset, tmp_path):
    codes = encode_to_disk(vqvae.encode, dataset, tmp_path / "codes", num_codes=vqvae.num_codes, batch_size=4)
    expected = encode_codes(vqvae, dataset, batch_size=5)  # (N, 1, h, w)
    assert len(codes) == 11 and codes.grid_shape == (4, 4) and codes.num_codes == 16 and codes.num_classes == 3
    grids = torch.stack([codes[i][0] for i in range(len(codes))])
    assert grids.dtype == torch.int64 and torch.equal(grids, expected)
    assert torch.equal(codes.labels, dataset.labels) and codes[5][1] == 2
    assert np.load(tmp_path / "codes" / "codes.npy").dtype == np.int16  # K = 16 fits
    assert sorted(p.name for p in (tmp_path / "codes").iterdir()) == ["codes.json", "codes.npy", "labels.npy"]
    reopened = CodeGridDataset(tmp_path / "codes")
    assert torch.equal(torch.stack([reopened[i][0] for i in range(11)]), expected)


def test_workers_write_and_read(vqvae, dataset, tmp_path):
    codes = encode_to_disk(
        vqvae.encode, dataset, tmp_path / "c", num_codes=vqvae.num_codes, batch_size=3, num_workers=2
    )
    codes[0]  # maps the files in this process; pickling must still send only the path
    assert len(pickle.dumps(codes)) < 2_000
    batches = list(DataLoader(codes, batch_size=4, num_workers=2))
    grids = torch.cat([x for x, _ in batches])
    assert grids.shape == (11, 1, 4, 4) and torch.equal(grids, encode_codes(vqvae, dataset))
    assert torch.cat([y for _, y in batches]).tolist() == dataset.labels.tolist()


def test_large_codebooks_use_int32_and_a_rewrite_replaces(dataset, tmp_path):
    def encode(images):  # a fake encoder: one code per pixel of a 2x2 average pool, scaled to a large K
        return (torch.nn.functional.avg_pool2d(images, 4)[:, 0] * 69_999).round().long()

    first = encode_to_disk(encode, dataset, tmp_path / "c", num_codes=70_000, batch_size=5)
    assert np.load(tmp_path / "c" / "codes.npy").dtype == np.int32 and first.grid_shape == (2, 2)
    expected = encode(dataset.images.float() / 255)
    assert torch.equal(torch.stack([first[i][0][0] for i in range(11)]), expected)
    small = ImageDataset(dataset.images[:3], dataset.labels[:3])
    again = encode_to_disk(lambda x: torch.zeros(len(x), 3, 3, dtype=torch.long), small, tmp_path / "c", num_codes=4)
    assert len(CodeGridDataset(tmp_path / "c")) == 3 and again.grid_shape == (3, 3)


def test_truncated_codes_file_is_an_error_naming_it(vqvae, dataset, tmp_path):
    encode_to_disk(vqvae.encode, dataset, tmp_path / "c", num_codes=vqvae.num_codes)
    path = tmp_path / "c" / "codes.npy"
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(ValueError, match=r"codes\.npy is \d+ bytes but .* truncated or corrupt"):
        CodeGridDataset(tmp_path / "c")
    path.write_bytes(b"garbage that is not a numpy file")
    with pytest.raises(ValueError, match=r"codes\.npy is not a valid \.npy file"):
        CodeGridDataset(tmp_path / "c")


def test_mismatched_or_foreign_files_are_errors_naming_them(vqvae, dataset, tmp_path):
    encode_to_disk(vqvae.encode, dataset, tmp_path / "c", num_codes=vqvae.num_codes)
    np.save(tmp_path / "c" / "labels.npy", np.zeros(4, np.int64))
    with pytest.raises(ValueError, match=r"labels\.npy holds int64 \(4,\) but codes\.json says int64 \(11,\)"):
        CodeGridDataset(tmp_path / "c")
    (tmp_path / "c" / "codes.json").write_text(json.dumps({"format": "something-else", "version": 1}))
    with pytest.raises(ValueError, match=r"codes\.json is not a vqgen-code-grids v1 description"):
        CodeGridDataset(tmp_path / "c")
    (tmp_path / "c" / "codes.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"codes\.json is missing.*no complete encoding"):
        CodeGridDataset(tmp_path / "c")


def test_a_failed_encoding_leaves_no_complete_directory(vqvae, dataset, tmp_path):
    encode_to_disk(vqvae.encode, dataset, tmp_path / "c", num_codes=vqvae.num_codes)
    calls = []

    def failing(images):
        calls.append(len(images))
        if len(calls) == 2:
            raise RuntimeError("out of memory, say")
        return vqvae.encode(images)

    with pytest.raises(RuntimeError, match="out of memory"):
        encode_to_disk(failing, dataset, tmp_path / "c", num_codes=vqvae.num_codes, batch_size=4)
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["codes.npy", "labels.npy"]  # no temporaries
    with pytest.raises(FileNotFoundError, match="no complete encoding"):
        CodeGridDataset(tmp_path / "c")  # the old files are not mistaken for a finished run


def test_bad_encoder_output_and_arguments(dataset, tmp_path):
    with pytest.raises(ValueError, match=r"outside \[0, num_codes=4\)"):
        encode_to_disk(lambda x: torch.full((len(x), 2, 2), 4), dataset, tmp_path / "a", num_codes=4)
    with pytest.raises(TypeError, match=r"integer codes \(B, h, w\), got torch.float32"):
        encode_to_disk(lambda x: x[:, 0], dataset, tmp_path / "b", num_codes=4)
    with pytest.raises(ValueError, match=r"shape \(1, 2, 1\) for a batch of 1 images.*first batch: \(2, 5\)"):
        encode_to_disk(
            lambda x: torch.zeros(len(x), 2, len(x), dtype=torch.long),
            dataset,
            tmp_path / "c",
            num_codes=4,
            batch_size=5,
        )
    with pytest.raises(ValueError, match=r"shape \(6, 2, 2\) for a batch of 5 images; expected \(5, h, w\)"):
        encode_to_disk(
            lambda x: torch.zeros(len(x) + 1, 2, 2, dtype=torch.long),
            dataset,
            tmp_path / "c",
            num_codes=4,
            batch_size=5,
        )
    with pytest.raises(ValueError, match="num_codes must be a positive int"):
        encode_to_disk(lambda x: x, dataset, tmp_path / "d", num_codes=0)
    with pytest.raises(ValueError, match="dataset is empty"):
        encode_to_disk(lambda x: x, ImageDataset(dataset.images[:0], dataset.labels[:0]), tmp_path / "e", num_codes=4)
