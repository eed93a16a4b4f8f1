"""A TwoStageModel trained from a streamed image folder equals one trained on the same images in memory."""

import numpy as np
import pytest
import torch
from PIL import Image
from test_two_stage import _config

import vqgen
from vqgen import TwoStageModel
from vqgen.data import ImageFolderDataset, load_digits


@pytest.fixture
def digits_folder(tmp_path):
    """The first 96 training digits as PNGs in class sub-folders, and the same images in memory (file order)."""
    data = load_digits("train")
    images, labels = data.images[:96], data.labels[:96]
    for i, (image, label) in enumerate(zip(images, labels.tolist())):
        (tmp_path / f"{label}").mkdir(exist_ok=True)
        Image.fromarray(image[0].numpy()).save(tmp_path / f"{label}" / f"{i:03d}.png")
    stream = ImageFolderDataset(tmp_path)
    order = [int(p.stem) for p in stream.files]  # the folder's order: by class, then by name
    memory = vqgen.data.from_arrays(images[order], labels[order], class_names=stream.class_names)
    return stream, memory


@pytest.mark.parametrize("conditional", [False, True])
def test_streamed_fit_equals_in_memory_fit(digits_folder, tmp_path, conditional):
    stream, memory = digits_folder
    assert not hasattr(stream, "images")
    prior_options = {"num_classes": 10} if conditional else {}
    fitted = []
    for data in (memory, stream):
        torch.manual_seed(0)
        model = TwoStageModel.from_config(_config(prior="pixelcnn", **prior_options))
        options = {"epochs": 1, "batch_size": 32, "progress": False}
        model.fit(data, eval_data=memory, stage1=options, stage2=options)
        fitted.append(model)
    in_memory, streamed = fitted
    assert streamed.image_shape == in_memory.image_shape == (1, 16, 16)
    for (name, a), b in zip(in_memory.state_dict().items(), streamed.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=f"{name} differs")


def test_streamed_codes_can_be_kept(digits_folder, tmp_path):
    stream, memory = digits_folder
    model = TwoStageModel.from_config(_config(prior="pixelcnn"))
    model.fit_stage1(memory, epochs=1, batch_size=32, progress=False)
    model.fit_prior(stream, codes_dir=tmp_path / "codes", epochs=1, batch_size=32, progress=False)
    kept = vqgen.data.CodeGridDataset(tmp_path / "codes")
    assert len(kept) == len(stream)
    expected = model.encode(memory.images[:4])  # (4, h, w)
    assert np.array_equal(np.stack([kept[i][0][0].numpy() for i in range(4)]), expected.numpy())


@pytest.fixture
def split_folder(tmp_path):
    """64 training and 32 held-out digits as PNGs under train/ and test/, streamed and in memory (file order)."""
    data = load_digits("train")
    for i in range(96):
        folder = tmp_path / "digits" / ("train" if i < 64 else "test") / f"{int(data.labels[i])}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(data.images[i, 0].numpy()).save(folder / f"{i:03d}.png")
    pairs = {}
    for split in ("train", "test"):
        stream = vqgen.data.load_dataset(tmp_path / "digits", split=split, stream=True)
        order = [int(p.stem) for p in stream.files]
        memory = vqgen.data.from_arrays(data.images[order], data.labels[order], class_names=stream.class_names)
        pairs[split] = (stream, memory)
    return pairs


@pytest.mark.parametrize("conditional", [False, True])
def test_streamed_held_out_split_equals_in_memory(split_folder, tmp_path, conditional):
    (train_stream, train_memory), (test_stream, test_memory) = split_folder["train"], split_folder["test"]
    assert isinstance(test_stream, ImageFolderDataset) and not hasattr(test_stream, "images")
    prior_options = {"num_classes": 10} if conditional else {}
    runs = []
    for train, test in ((train_memory, test_memory), (train_stream, test_stream)):
        torch.manual_seed(0)
        model = TwoStageModel.from_config(_config(prior="pixelcnn", **prior_options))
        options = {"epochs": 2, "batch_size": 16, "eval_batch_size": 10, "progress": False}
        codes = tmp_path / f"codes-{len(runs)}"
        histories = model.fit(train, eval_data=test, stage1=options, stage2={**options, "codes_dir": codes})
        runs.append((model, histories))
    (in_memory, memory_histories), (streamed, stream_histories) = runs
    for stage in ("stage1", "stage2"):
        for a, b in zip(memory_histories[stage], stream_histories[stage]):
            assert b["eval"] == pytest.approx(a["eval"], rel=1e-5), stage
    for (name, a), b in zip(in_memory.state_dict().items(), streamed.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=f"{name} differs")
    held_out = vqgen.data.CodeGridDataset(tmp_path / "codes-1" / "held_out")  # encoded batch by batch, on disk
    assert len(held_out) == len(test_stream) and held_out.labels.tolist() == test_stream.labels.tolist()
