"""Config parsing: float spellings, merge and replace, YAML error positions,
old keys, model options, and that every shipped config loads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tsn.config import apply_overrides, load_config, to_dict, to_yaml, yaml_load
from tsn.errors import ConfigError
from tsn.validate import check_config

ROOT = Path(__file__).resolve().parents[1]


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# ---------------------------------------------------------------- floats


@pytest.mark.parametrize("text, value", [("1e-4", 1e-4), ("1E-4", 1e-4), ("1.0e6", 1e6), ("-1e-3", -1e-3),
                                         ("+2e3", 2e3), ("1.5", 1.5), (".5", 0.5), ("3", 3)])
def test_yaml_reads_every_float_spelling(text, value):
    got = yaml_load(text)
    assert got == value and isinstance(got, type(value))


def test_floats_from_files_and_set_everywhere(tmp_path):
    """A float key given as 1e-4 in a file, in --set, or as a string in a dict is a float;
    free-form option mappings (dataset, weighting) read 1e-4 as a float too."""
    cfg_file = write(tmp_path / "c.yaml", "optim: {lr: 1e-4, min_lr: 1E-6}\nloss: {weights: {semseg: 2e0}}\n"
                                          "data: {label_drop: 5e-1}\n")
    cfg = load_config(cfg_file, ["optim.encoder_lr=1E-6", "optim.weighting_lr=1.0e6", "loss.weighting_options.x=1e-2"])
    assert (cfg.optim.lr, cfg.optim.min_lr, cfg.optim.encoder_lr, cfg.optim.weighting_lr) == (1e-4, 1e-6, 1e-6, 1e6)
    assert cfg.loss.weights["semseg"] == 2.0 and cfg.data.label_drop == 0.5
    assert cfg.loss.weighting_options["x"] == 0.01
    assert load_config(data={"optim": {"lr": "1e-4"}}).optim.lr == 1e-4


# ---------------------------------------------------------------- merge and replace


def test_partial_mapping_merges_and_replace_marker_replaces(tmp_path):
    base = write(tmp_path / "base.yaml", "loss: {weights: {edge: 50, semseg: 1, normals: 10}}\n"
                                         "data: {options: {length: {train: 8, val: 4}}}\n")
    child = write(tmp_path / "child.yaml", "base: base.yaml\nloss: {weights: {semseg: 3}}\n")
    assert load_config(child).loss.weights == {"edge": 50, "semseg": 3, "normals": 10}
    # --set merges the same way: the other tasks keep their weights, the other splits their lengths
    cfg = load_config(base, ["loss.weights={semseg: 2}", "data.options.length.val=2"])
    assert cfg.loss.weights == {"edge": 50, "semseg": 2, "normals": 10}
    assert cfg.data.options["length"] == {"train": 8, "val": 2}
    # _replace_: true replaces, in a file and in --set
    write(tmp_path / "only.yaml", "base: base.yaml\nloss: {weights: {_replace_: true, semseg: 1}}\n")
    assert load_config(tmp_path / "only.yaml").loss.weights == {"semseg": 1}
    assert load_config(base, ["loss.weights={_replace_: true, normals: 4}"]).loss.weights == {"normals": 4}
    with pytest.raises(ConfigError, match="_replace_ must be true or false"):
        load_config(base, ["loss.weights={_replace_: 2}"])
    # lists always replace
    assert load_config(base, ["data.tasks=[semseg]"]).data.tasks == ["semseg"]


def test_saved_config_reproduces_and_has_no_markers(tmp_path):
    base = write(tmp_path / "base.yaml", "loss: {weights: {edge: 50, semseg: 1}}\n")
    child = write(tmp_path / "child.yaml", "base: base.yaml\nloss: {weights: {_replace_: true, semseg: 1}}\n")
    cfg = load_config(child, ["optim.lr=1e-3"])
    assert "_replace_" not in to_yaml(cfg)
    assert to_dict(load_config(write(tmp_path / "saved.yaml", to_yaml(cfg)))) == to_dict(cfg)


# ---------------------------------------------------------------- YAML errors


def test_yaml_syntax_error_names_file_line_and_column(tmp_path):
    bad = write(tmp_path / "bad.yaml", "train:\n  epochs: 3\n  batch_size: [4\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml:\d+:\d+: invalid YAML"):
        load_config(bad)
    tab = write(tmp_path / "tab.yaml", "optim:\n  lr: 1\n\tname: adam\n")
    with pytest.raises(ConfigError, match=r"tab\.yaml:3:1: invalid YAML"):
        load_config(tab)


def test_bad_yaml_in_a_base_file_names_that_file(tmp_path):
    write(tmp_path / "base.yaml", "optim: {lr: 1\n")
    child = write(tmp_path / "child.yaml", "base: base.yaml\n")
    with pytest.raises(ConfigError, match=r"base\.yaml:\d+:\d+: invalid YAML"):
        load_config(child)


def test_missing_base_names_the_including_file(tmp_path):
    child = write(tmp_path / "child.yaml", "base: nowhere.yaml\n")
    with pytest.raises(ConfigError, match=r"config file not found: .*nowhere\.yaml \(the base of .*child\.yaml\)"):
        load_config(child)
    with pytest.raises(ConfigError, match="base must be a file name or a list"):
        load_config(write(tmp_path / "b.yaml", "base: 3\n"))


def test_cli_yaml_error_is_one_line(tmp_path):
    bad = write(tmp_path / "bad.yaml", "train: {epochs: 3\n")
    r = subprocess.run([sys.executable, "-m", "train", str(bad), "--check"], cwd=ROOT, capture_output=True, text=True,
                       env={"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}, timeout=120)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "bad.yaml:" in r.stderr, r.stderr


# ---------------------------------------------------------------- model options and old keys


def test_old_flat_model_keys_are_aliases():
    """model.code / model.embedding (configs and checkpoints written before model.options) still load,
    for every model: they are TSN's options and other models do not read them."""
    old = {"model": {"name": "multi_decoder", "code": {"kind": "orthogonal", "dim": 100, "seed": 0, "path": None,
                                                       "learnable": False},
                     "embedding": {"n_fc": 8, "width": None, "equalized": True}}}
    cfg = check_config(load_config(data=old))
    assert cfg.model.options["tsn"]["code"]["dim"] == 100 and cfg.model.options["tsn"]["embedding"]["n_fc"] == 8
    assert "code" not in to_dict(cfg)["model"]
    # --set with an old key changes the new one, also over a base that uses the new key
    cfg = load_config(ROOT / "configs" / "synthetic" / "tsn.yaml", ["model.code.dim=48"])
    assert cfg.model.options["tsn"]["code"] == {"kind": "orthogonal", "dim": 48}
    # one file with both names: merged where they do not overlap, one line naming both where they do
    cfg = load_config(data={"model": {"code": {"dim": 12}, "options": {"tsn": {"code": {"kind": "gaussian"}}}}})
    assert cfg.model.options["tsn"]["code"] == {"kind": "gaussian", "dim": 12}
    with pytest.raises(ConfigError, match=r"^model.code and model.options.tsn.code both given; model.code is the old "
                                          r"name of model.options.tsn.code: keep only model.options.tsn.code$"):
        load_config(data={"model": {"code": {"dim": 12}, "options": {"tsn": {"code": {"dim": 24}}}}})


def test_an_old_key_in_a_file_overrides_the_new_key_of_its_base(tmp_path):
    """Aliases are resolved per file, before base files merge: a child's old name is the child's value."""
    (tmp_path / "base.yaml").write_text("eval: {options: {edge: {thresholds: 19}}}\n")
    (tmp_path / "child.yaml").write_text("base: base.yaml\neval: {edge_thresholds: 7}\n")
    assert load_config(tmp_path / "child.yaml").eval.options["edge"]["thresholds"] == 7


def test_model_options_are_checked_against_the_builder():
    from tsn.models import build_model
    from tsn.models.registry import CodeConfig, model_options

    cfg = load_config(data={"model": {"name": "tsn", "options": {"tsn": {"code": {"dim": 12}, "embedding": {"n_fc": 1}}},
                                      "encoder_width": 8, "skip_widths": [8] * 5, "up_widths": [8] * 5}})
    opts = model_options(cfg.model)
    assert opts["code"] == CodeConfig(dim=12) and opts["embedding"].n_fc == 1
    model = build_model(cfg.model, {"semseg": 3, "normals": 3})
    assert model.codes.table().shape == (2, 12)
    with pytest.raises(ConfigError, match="model.options.tsn.codes: not an option of model 'tsn'; valid: code, embedding"):
        check_config(load_config(data={"model": {"options": {"tsn": {"codes": {}}}}}))


def test_config_module_imports_no_registry():
    code = ("import sys, tsn.config; bad = sorted(m for m in sys.modules if m.startswith('tsn.') and m not in "
            "('tsn.config', 'tsn.errors', 'tsn.schema')); print(bad); assert not bad")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


# ---------------------------------------------------------------- shipped configs


SHIPPED = sorted(p for p in (ROOT / "configs").rglob("*.yaml") if "sweeps" not in p.parts)


@pytest.mark.parametrize("path", SHIPPED, ids=[str(p.relative_to(ROOT / "configs")) for p in SHIPPED])
def test_every_shipped_config_loads_and_checks(path):
    """Every config file, the shared model files under _base_ included, loads and checks alone."""
    cfg = check_config(load_config(path))
    assert cfg.name == path.stem


def test_per_dataset_model_files_compose_the_shared_ones():
    """A model is defined once (configs/_base_/models/); a dataset's model file composes it with the recipe."""
    for dataset in ("synthetic", "pascal", "nyud"):
        for model in ("tsn", "task_in", "task_bn", "multi_decoder", "single_task"):
            path = ROOT / "configs" / dataset / f"{model}.yaml"
            assert yaml.safe_load(path.read_text())["base"] == [f"../_base_/models/{model}.yaml", "base.yaml"]
            cfg = load_config(path)
            assert cfg.model.name == model and cfg.data.name == dataset
            assert ("tsn" in cfg.model.options) == (model == "tsn")  # TSN's options sit on TSN alone


@pytest.mark.parametrize("suite", sorted((ROOT / "configs" / "sweeps").glob("*.yaml")), ids=lambda p: p.name)
def test_every_sweep_plans(suite, tmp_path):
    """Every run of every suite, on every dataset it names, loads and checks (plan does both)."""
    from train.sweep import load_suite, plan

    s = load_suite(suite)
    for dataset in s.configs:
        assert plan(s, dataset, tmp_path / dataset)


def test_override_keys_are_migrated_in_apply_overrides():
    raw = apply_overrides({"model": {"code": {"dim": 5}}}, ["model.embedding.n_fc=2"])
    assert raw == {"model": {"options": {"tsn": {"code": {"dim": 5}, "embedding": {"n_fc": 2}}}}}


def test_yaml_safe_dump_of_loaded_config_round_trips():
    cfg = load_config(ROOT / "configs" / "synthetic" / "tsn.yaml")
    assert yaml.safe_load(to_yaml(cfg))["model"]["options"]["tsn"]["code"]["dim"] == 60
