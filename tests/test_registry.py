"""The registry: registration, building by name, errors that list the valid names, and entry-point plugins."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

import vqgen
from vqgen.registry import Registry


class _Toy(vqgen.Component):
    def __init__(self, width: int = 3, name: str = "toy") -> None:
        super().__init__()
        self.linear = nn.Linear(width, width)


def test_register_and_build_roundtrip():
    reg = Registry("thing")
    reg.register("toy")(_Toy)
    built = reg.build("toy", width=5)
    assert isinstance(built, _Toy)
    assert built.linear.in_features == 5
    assert dict(built.config) == {"width": 5, "name": "toy"}


def test_build_drops_none_so_defaults_apply():
    reg = Registry("thing")
    reg.register("toy")(_Toy)
    assert reg.build("toy", width=None).config["width"] == 3


def test_unknown_name_lists_available():
    reg = Registry("thing")
    reg.register("toy")(_Toy)
    with pytest.raises(ValueError, match=r"unknown thing 'nope'.*toy"):
        reg.get("nope")


def test_unknown_config_key_names_it_and_the_valid_keys():
    reg = Registry("thing")
    reg.register("toy")(_Toy)
    with pytest.raises(TypeError, match=r"unknown config keys \['widht'\].*\['width', 'name'\]"):
        reg.build("toy", widht=4)


def test_duplicate_name_rejected():
    reg = Registry("thing")
    reg.register("toy")(_Toy)

    class Other(_Toy):
        pass

    with pytest.raises(ValueError, match="already registered"):
        reg.register("toy")(Other)


def test_registered_class_must_subclass_interface():
    with pytest.raises(TypeError, match="must subclass Quantizer"):
        vqgen.register("quantizer", "not_a_quantizer")(_Toy)
    assert "not_a_quantizer" not in vqgen.available("quantizer")


def test_unknown_kind():
    with pytest.raises(ValueError, match="unknown component kind 'priors'"):
        vqgen.available("priors")


def test_pattern_filter_and_natural_sort():
    reg = Registry("thing")
    for name in ["net10", "net2", "other"]:
        reg.add(name, type(name, (_Toy,), {}))
    assert reg.names() == ["net2", "net10", "other"]
    assert reg.names("net*") == ["net2", "net10"]


def test_config_rejects_unserialisable_values():
    with pytest.raises(TypeError, match=r"_Toy\(name\) has type object"):
        _Toy(name=object())


def test_config_is_read_only():
    toy = _Toy()
    with pytest.raises(TypeError):
        toy.config["width"] = 9  # type: ignore[index]


def test_components_deep_copy_with_their_config():
    import copy

    toy = _Toy(width=4)
    clone = copy.deepcopy(toy)
    assert dict(clone.config) == dict(toy.config)
    assert clone.linear.weight is not toy.linear.weight and torch.equal(clone.linear.weight, toy.linear.weight)


def test_varargs_constructors_are_rejected():
    with pytest.raises(TypeError, match=r"takes \*\*kwargs"):

        class Bad(vqgen.Component):
            def __init__(self, **kwargs) -> None:
                super().__init__()


def test_entry_point_plugin_is_buildable_by_name(tmp_path):
    """A throw-away distribution on sys.path whose entry point registers a prior, found by a fresh interpreter."""
    package = tmp_path / "vqgen_toy_plugin"
    package.mkdir()
    (package / "__init__.py").write_text(
        textwrap.dedent(
            """
            import torch
            from vqgen import AutoregressivePrior

            class UniformPrior(AutoregressivePrior):
                def __init__(self, num_categories: int = 4, channels: int = 1) -> None:
                    super().__init__()
                    self._k, self._c = num_categories, channels

                @property
                def num_categories(self):
                    return self._k

                @property
                def channels(self):
                    return self._c

                def forward(self, x, cond=None):
                    return torch.zeros(x.shape[0], self._k, *x.shape[1:])

                def sample(self, n, shape, cond=None, **kwargs):
                    return torch.randint(self._k, (n, self._c, *shape))
            """
        )
    )
    dist_info = tmp_path / "vqgen_toy_plugin-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: vqgen-toy-plugin\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text("[vqgen.plugins]\nprior.toy_uniform = vqgen_toy_plugin:UniformPrior\n")
    script = textwrap.dedent(
        """
        import sys, vqgen
        assert "toy_uniform" in vqgen.available("prior"), vqgen.available("prior")
        prior = vqgen.build("prior", "toy_uniform", num_categories=7)
        print(type(prior).__name__, prior.num_categories, prior.to_spec()["name"])
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env={"PYTHONPATH": str(tmp_path), "PATH": ""},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["UniformPrior", "7", "toy_uniform"]


def test_broken_plugin_is_logged_not_fatal(tmp_path):
    dist_info = tmp_path / "broken-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text("[vqgen.plugins]\nprior.broken = does_not_exist:Nothing\n")
    script = "import vqgen; print(len(vqgen.available('prior')) >= 0)"
    result = subprocess.run(
        [sys.executable, "-c", script], env={"PYTHONPATH": str(tmp_path)}, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "failed to load" in result.stderr and "prior.broken" in result.stderr


def test_tensor_args_cannot_be_configs():
    with pytest.raises(TypeError, match="Tensor"):
        _Toy(width=torch.tensor(3))
