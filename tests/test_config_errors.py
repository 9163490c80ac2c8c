"""Every bad config value is one line ``error: ...`` and exit code 2, never a traceback.

The table holds an out-of-range (or otherwise invalid) value for every
option; ``test_the_table_covers_every_ranged_option`` keeps it complete as
options are added. Each case runs the command-line path itself
(``python -m train CONFIG --check --set KEY=VALUE``) in process; a few run
as real subprocesses.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

from train.__main__ import main

ROOT = Path(__file__).resolve().parents[1]
CONFIG = str(ROOT / "configs" / "synthetic" / "tsn.yaml")

# (--set item, a piece of the expected message)
BAD = [
    # model
    ("model.encoder_width=0", "model.encoder_width must be >= 1"),
    ("model.encoder_width=-16", "model.encoder_width must be >= 1, got -16"),
    ("model.skip_widths=[0, 16, 32, 64, 128]", "model.skip_widths[0] must be >= 1"),
    ("model.skip_widths=[16, 16]", "model.skip_widths must list 5"),
    ("model.up_widths=[128, 64, 64, 32, -1]", "model.up_widths[4] must be >= 1"),
    ("model.head_width=0", "model.head_width must be >= 1"),
    ("model.name=tsm", "model.name: unknown model 'tsm'"),
    ("model.encoder=resnet19", "model.encoder: unknown encoder 'resnet19'"),
    ("model.head=max", "model.head: 'max' is not valid"),
    ("model.act=gelu", "model.act: 'gelu' is not valid"),
    ("model.encoder_norm=gn", "model.encoder_norm: 'gn' is not valid"),
    ("model.pretrained=3", "model.pretrained: expected bool or str"),
    ("model.options.tsn.code.dim=0", "model.options.tsn.code.dim must be >= 1"),
    ("model.code.dim=-1", "model.options.tsn.code.dim must be >= 1"),  # the old flat key
    ("model.options.tsn.code.seed=-1", "model.options.tsn.code.seed must be >= 0"),
    ("model.options.tsn.code.kind=fancy", "model.options.tsn.code.kind: unknown task code 'fancy'"),
    ("model.options.tsn.code.dimm=5", "unknown config key model.options.tsn.code.dimm; valid keys here: kind, dim"),
    ("model.options.tsn.embedding.n_fc=-1", "model.options.tsn.embedding.n_fc must be >= 0"),
    ("model.options.tsn.embedding.width=0", "model.options.tsn.embedding.width must be >= 1"),
    ("model.options.multi_decoder.code.dim=5", "model.options.multi_decoder.code: not an option of model 'multi_decoder'"),
    ("model.options.tsnn.code.dim=5", "model.options.tsnn: unknown model 'tsnn'"),
    ("model.options.tsn=3", "model.options.tsn: expected a mapping"),
    # data
    ("data.size=4", "data.size must be >= 8, got 4"),
    ("data.size=[64]", "data.size must be an int or [height, width]"),
    ("data.size=[64, 0]", "data.size[1] must be >= 8"),
    ("data.label_drop=1.5", "data.label_drop must be in [0, 1], got 1.5"),
    ("data.label_drop=-1e-3", "data.label_drop must be in [0, 1], got -0.001"),
    ("data.label_drop={semseg: 2}", "data.label_drop.semseg must be in [0, 1]"),
    ("data.label_drop={semseq: 0.5}", "unknown task 'semseq'"),
    ("data.label_drop_seed=-1", "data.label_drop_seed must be >= 0"),
    ("data.num_workers=-1", "data.num_workers must be >= 0"),
    ("data.name=cityscapes", "data.name: unknown dataset 'cityscapes'"),
    ("data.tasks=[segm]", "unknown task 'segm'"),
    ("data.tasks=[]", "the task list is empty"),
    ("data.val_split=valid", "data.val_split: dataset 'synthetic' has no split 'valid'"),
    ("data.options.length.trian=5", "data.options.length.trian: unknown split 'trian'; valid: train, val, test"),
    ("data.options.length.val=0", "data.options.length.val must be an integer >= 1"),
    ("data.options.length=0", "data.options.length must be an integer >= 1"),
    ("data.options.lenght=5", "unknown option(s) for dataset 'synthetic': lenght; valid:"),
    ("data.options.seed=-1", "data.options.seed must be an integer >= 0"),
    # loss
    ("loss.weights.semseg=-1", "loss.weights.semseg must be >= 0, got -1"),
    ("loss.weights.semseg=inf", "loss.weights.semseg must be a finite number"),
    ("loss.weights.semseq=1", "unknown task 'semseq'"),
    ("loss.edge_pos_weight=1.5", "loss.options.edge: balanced BCE pos_weight must be in [0, 1]"),
    ("loss.options.edge.foo=1", "unknown loss.options.edge key(s) foo; valid: pos_weight"),
    ("loss.options.edgy.x=1", "unknown task 'edgy'"),
    ("loss.weighting=magic", "loss.weighting: unknown weighting 'magic'"),
    ("loss.weighting_options.foo=1", "loss.weighting_options.foo: not an option of weighting 'fixed'"),
    # optim
    ("optim.lr=0", "optim.lr must be > 0, got 0"),
    ("optim.lr=-1", "optim.lr must be > 0, got -1"),
    ("optim.lr=-1e-3", "optim.lr must be > 0, got -0.001"),
    ("optim.lr=inf", "optim.lr must be a finite number, got inf"),
    ("optim.lr=nan", "optim.lr must be a finite number, got nan"),
    ("optim.lr=fast", "optim.lr: expected float, got 'fast'"),
    ("optim.encoder_lr=-1e-6", "optim.encoder_lr must be >= 0"),
    ("optim.weight_decay=-1", "optim.weight_decay must be >= 0"),
    ("optim.momentum=1", "optim.momentum must be in [0, 1)"),
    ("optim.betas=[0.9, 1.0]", "optim.betas[1] must be in [0, 1)"),
    ("optim.betas=[0.9]", "optim.betas must list 2 numbers"),
    ("optim.warmup_epochs=-1", "optim.warmup_epochs must be >= 0"),
    ("optim.plateau_factor=1", "optim.plateau_factor must be in (0, 1)"),
    ("optim.plateau_factor=0", "optim.plateau_factor must be in (0, 1)"),
    ("optim.plateau_patience=-1", "optim.plateau_patience must be >= 0"),
    ("optim.poly_power=0", "optim.poly_power must be > 0"),
    ("optim.min_lr=-1", "optim.min_lr must be >= 0"),
    ("optim.clip_grad=0", "optim.clip_grad must be > 0"),
    ("optim.weighting_lr=0", "optim.weighting_lr must be > 0"),
    ("optim.norm_lr=0", "optim.norm_lr must be > 0"),
    ("model.norm_init_std=-1", "model.norm_init_std must be >= 0"),
    ("optim.name=rmsprop", "optim.name: 'rmsprop' is not valid; valid: adam, adamw, sgd"),
    ("optim.schedule=step", "optim.schedule: 'step' is not valid"),
    # train
    ("train.epochs=0", "train.epochs must be >= 1"),
    ("train.epochs=2.5", "train.epochs: expected int, got 2.5"),
    ("train.batch_size=0", "train.batch_size must be >= 1"),
    ("train.seed=-1", "train.seed must be >= 0"),
    ("train.val_every=0", "train.val_every must be >= 1"),
    ("train.device=gpu", "train.device: 'gpu' is not valid; valid: auto, cpu, cuda, cuda:N, mps"),
    ("train.device=cuda:x", "train.device: 'cuda:x' is not valid"),
    ("train.log_every=0", "train.log_every must be >= 1"),
    ("train.images_every_val=-1", "train.images_every_val must be >= 0"),
    ("train.checkpoint_every=-1", "train.checkpoint_every must be >= 0"),
    ("train.tag_every=-1", "train.tag_every must be >= 0"),
    ("train.tag_lr=0", "train.tag_lr must be > 0"),
    ("train.sampling=sometimes", "train.sampling: 'sometimes' is not valid"),
    ("train.amp=maybe", "train.amp: expected bool or null"),
    # eval
    ("eval.batch_size=0", "eval.batch_size must be >= 1"),
    ("eval.edge_thresholds=0", "eval.options.edge: edge thresholds must be >= 1"),
    ("eval.options.edge.val_thresholds=0", "eval.options.edge: edge thresholds must be >= 1"),
    ("eval.edge_max_dist=0", "eval.options.edge: edge_max_dist must be in (0, 1]"),
    ("eval.options.edge.max_dist=2", "eval.options.edge: edge_max_dist must be in (0, 1]"),
    ("eval.select_metric=mIoU", "eval.select_metric must look like task/metric"),
    ("eval.sal_headline=c", "eval.options.sal: sal_headline must be 'a' or 'b'"),
    ("eval.options.sal.headline=c", "sal_headline must be 'a' or 'b'"),
    ("eval.geometry=crop", "eval.geometry: 'crop' is not valid"),
    # the --set syntax itself
    ("train.epochs", "--set expects key=value"),
    ("train..epochs=3", "is not a dotted key"),
    ("train.epochs.x=3", "--set train.epochs.x=3: epochs is not a section"),
    ("trian.epochs=3", "unknown config key trian; valid keys here: model, data"),
]


@pytest.mark.parametrize("item, message", BAD, ids=[b[0] for b in BAD])
def test_bad_value_is_one_line_exit_2(item, message, capsys):
    rc = main([CONFIG, "--check", "--set", item])
    out, err = capsys.readouterr()
    assert rc == 2, (item, out, err)
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert message in err, (message, err)


def _ranged_keys() -> set[str]:
    from typing import get_type_hints

    from tsn.config import Config
    from tsn.models.registry import CodeConfig, EmbeddingConfig

    keys = set()

    def walk(cls, prefix):
        hints = get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if dataclasses.is_dataclass(hints[f.name]):
                walk(hints[f.name], f"{prefix}{f.name}.")
            elif "range" in f.metadata:
                keys.add(prefix + f.name)

    walk(Config, "")
    walk(CodeConfig, "model.options.tsn.code.")
    walk(EmbeddingConfig, "model.options.tsn.embedding.")
    return keys


def test_the_table_covers_every_ranged_option():
    """Each option with a numeric range has at least one out-of-range case above."""
    tested = {item.split("=", 1)[0].split("[")[0] for item, _ in BAD}
    tested |= {".".join(k.split(".")[:2]) for k in tested if k.startswith(("loss.weights.", "data.label_drop"))}
    missing = sorted(_ranged_keys() - tested)
    assert not missing, f"no bad-value case for {missing}"


def test_good_spellings_pass(capsys):
    for item in ["optim.lr=1e-4", "optim.lr=1E-4", "optim.lr=1.0e6", "optim.lr=.5", "optim.lr=3",
                 "loss.options.edge.pos_weight=1e-1", "eval.options.edge.max_dist=1e-2", "train.device=cuda:1", "train.device=cpu",
                 "data.options.length.val=7", "loss.weights={semseg: 2}"]:
        assert main([CONFIG, "--check", "--set", item]) == 0, (item, capsys.readouterr().err)
    capsys.readouterr()


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TSN_QUIET": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "train", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("item, message", [
    ("optim.lr=-1", "optim.lr must be > 0"),
    ("data.options.length.trian=5", "unknown split 'trian'"),
    ("train.device=tpu", "train.device: 'tpu' is not valid"),
])
def test_real_process_one_line_exit_2(item, message):
    r = _cli(CONFIG, "--check", "--set", item)
    assert r.returncode == 2 and r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr
    assert message in r.stderr and "Traceback" not in r.stderr, r.stderr
