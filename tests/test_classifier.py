"""The FID feature classifier: training on the offline digits, features for FID, save/load, errors; real data (slow)."""

from __future__ import annotations

import pytest
import torch

import vqgen
from vqgen.classifier import ClassifierFeatures, FeatureClassifier
from vqgen.metrics import fid
from vqgen.training.classifier import train_classifier


def digits(split: str):
    try:
        from vqgen.data import load_dataset
    except ImportError:  # vqgen.data not there: scikit-learn's digits directly (8x8, values 0..16)
        from sklearn.datasets import load_digits

        data = load_digits()
        images = torch.from_numpy(data.images * 255 / 16).round().to(torch.uint8).unsqueeze(1)
        labels = torch.from_numpy(data.target).long()
        cut = int(0.8 * len(labels))
        return (images[:cut], labels[:cut]) if split == "train" else (images[cut:], labels[cut:])
    dataset = load_dataset("digits", split=split)
    return dataset.images, dataset.labels


@pytest.fixture(scope="module")
def trained():
    (train_x, train_y), (test_x, test_y) = digits("train"), digits("test")
    result = train_classifier(
        train_x, train_y, test=test_x, test_labels=test_y, widths=[8, 16, 32], epochs=2, lr=1e-2, batch_size=64, seed=0
    )
    return result, test_x, test_y


def test_training_on_digits_is_well_above_chance(trained):
    result, test_x, test_y = trained
    assert result.test_accuracy > 0.7  # chance is 0.1
    assert result.test_accuracy == pytest.approx(result.model.accuracy(test_x, test_y))
    assert result.train_accuracy > 0.7
    assert [record["epoch"] for record in result.history] == [1, 2]
    assert not result.model.training


def test_features_for_fid(trained):
    result, test_x, _ = trained
    extractor = result.model.feature_extractor()
    assert isinstance(extractor, ClassifierFeatures) and extractor.num_features == 32
    extractor.train()  # stays in eval mode: batch-norm statistics must not move
    assert not extractor.classifier.training
    features = extractor(test_x[:5])
    assert features.shape == (5, 32) and features.dtype == torch.float32
    # Classifier features separate the classes: two different digit classes are farther apart than two halves of one.
    zeros, ones = test_x[digits("test")[1] == 0], test_x[digits("test")[1] == 1]
    same = fid(zeros[: len(zeros) // 2], zeros[len(zeros) // 2 :], feature=extractor)
    different = fid(zeros, ones, feature=extractor)
    assert different > 3 * same


def test_classifier_fid_ranks_real_images_above_the_baselines(trained):
    """FID to held-out digits: other real digits < independent per-pixel samples (b) < uniform noise (c)."""
    from vqgen.priors.baselines import IndependentPrior, UniformPrior

    result, test_x, _ = trained
    train_x, _ = digits("train")
    extractor = result.model.feature_extractor()
    n, (height, width) = test_x.shape[0], test_x.shape[2:]
    generator = torch.Generator().manual_seed(0)
    independent = IndependentPrior.from_data(train_x.long(), num_categories=256)
    uniform = UniformPrior(num_categories=256)
    scores = {
        "real": fid(test_x, train_x[:n], feature=extractor),
        "independent": fid(
            test_x, independent.sample(n, (height, width), generator=generator).byte(), feature=extractor
        ),
        "uniform": fid(test_x, uniform.sample(n, (height, width), generator=generator).byte(), feature=extractor),
    }
    assert scores["real"] < scores["independent"] < scores["uniform"], scores


def test_save_and_load_round_trip(trained, tmp_path):
    result, test_x, _ = trained
    result.model.save_pretrained(tmp_path / "classifier")
    loaded = FeatureClassifier.from_pretrained(tmp_path / "classifier")
    assert loaded.config == result.model.config
    torch.testing.assert_close(loaded.features(test_x[:8]), result.model.eval().features(test_x[:8]))
    assert vqgen.from_pretrained(tmp_path / "classifier").num_features == 32


def test_seed_makes_training_reproducible():
    images, labels = digits("train")
    images, labels = images[:200], labels[:200]
    runs = [train_classifier(images, labels, widths=[4, 8], epochs=1, batch_size=50, seed=3) for _ in range(2)]
    for a, b in zip(runs[0].model.state_dict().values(), runs[1].model.state_dict().values()):
        torch.testing.assert_close(a, b)
    assert runs[0].test_accuracy == runs[1].test_accuracy


def test_grey_images_to_a_colour_classifier():
    model = FeatureClassifier(in_channels=3, widths=[4, 8]).eval()
    grey = torch.randint(0, 256, (2, 1, 8, 8), dtype=torch.uint8)
    torch.testing.assert_close(model.feature_extractor()(grey), model.features(grey.expand(-1, 3, -1, -1)))


def test_errors_name_the_problem():
    images, labels = digits("train")
    with pytest.raises(ValueError, match="no labels"):
        train_classifier(images[:10])
    with pytest.raises(TypeError, match="uint8"):
        train_classifier(images[:10].float(), labels[:10])
    with pytest.raises(ValueError, match="labels must have shape"):
        train_classifier(images[:10], labels[:9])
    with pytest.raises(ValueError, match="widths"):
        FeatureClassifier(widths=[])
    with pytest.raises(TypeError, match="FeatureClassifier"):
        ClassifierFeatures(torch.nn.Identity())
    with pytest.raises(ValueError, match="channels"):
        FeatureClassifier(in_channels=1).features(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))


@pytest.mark.slow
@pytest.mark.parametrize("name, minimum", [("mnist", 0.98), ("fashion-mnist", 0.88)])
def test_real_data_accuracy(real_data_dir, name, minimum):
    from vqgen.data import load_dataset

    train = load_dataset(name, split="train", root=real_data_dir)
    test = load_dataset(name, split="test", root=real_data_dir)
    result = train_classifier(train, test=test, epochs=2, batch_size=128, seed=0)
    print(f"{name}: test accuracy {result.test_accuracy:.4f} (train {result.train_accuracy:.4f})")
    assert result.test_accuracy > minimum
    # Classifier-feature FID to 2000 test images: other real images << independent per-pixel samples.
    from vqgen.priors.baselines import IndependentPrior

    extractor = result.model.feature_extractor()
    independent = IndependentPrior.from_data(train.images.long(), num_categories=256)
    samples = independent.sample(2000, (28, 28), generator=torch.Generator().manual_seed(0)).byte()
    real_fid = fid(test.images[:2000], train.images[:2000], feature=extractor)
    assert 10 * real_fid < fid(test.images[:2000], samples, feature=extractor)


def test_train_classifier_moved_beside_the_other_fits():
    """``vqgen.classifier`` is the component; training it moved to ``vqgen.training.classifier`` (the old import path
    warns until 0.3)."""
    import vqgen.classifier as old
    import vqgen.training.classifier as new

    with pytest.warns(DeprecationWarning, match=r"moved to vqgen.training.classifier.train_classifier"):
        assert old.train_classifier is new.train_classifier
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = old.nope
