"""The README's main-job table is exactly what the trainer prints, row for
row (the values themselves are checked by ``.ci/run`` after training)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from tsn.config import load_config
from tsn.engine.report import results_table

ROOT = Path(__file__).resolve().parents[1]


def checker():
    spec = importlib.util.spec_from_file_location("readme_table", ROOT / ".ci" / "readme_table.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def readme_block() -> str:
    text = (ROOT / "README.md").read_text()
    m = re.search(r"<!-- main-job-table[^\n]*\n```\n(.*?)```", text, re.S)
    assert m, "README lost its main-job-table block"
    return m.group(1).rstrip("\n")


def test_readme_table_is_what_the_trainer_prints():
    rows = checker().parse_table((ROOT / "README.md").read_text())
    final, before = {}, {}
    for r in rows:
        final.setdefault(r["task"], {})[r["metric"]] = r["value"]
        before.setdefault(r["task"], {})[r["metric"]] = r["untrained"]
    assert list(final) == load_config(ROOT / "configs/synthetic/tsn.yaml").data.tasks
    assert results_table(final, before) == readme_block()


def test_compare_flags_rows_out_of_tolerance():
    mod = checker()
    rows = mod.parse_table((ROOT / "README.md").read_text())
    val = {}
    for r in rows:
        val.setdefault(r["task"], {})[r["metric"]] = r["value"]
    untrained = {t: {m: next(r["untrained"] for r in rows if (r["task"], r["metric"]) == (t, m)) for m in ms}
                 for t, ms in val.items()}
    metrics = {"val": val, "history": [{"epoch": 0, "val": untrained}]}
    assert mod.compare(rows, metrics) == []
    val["semseg"]["mIoU"] += 3.5  # beyond 3 points
    val["parts"]["mIoU"] -= 2.5  # within
    val["depth"]["rmse"] *= 1.05  # within 10%
    val["depth"]["log_rmse"] += 0.25  # within its own 0.30
    bad = mod.compare(rows, metrics)
    assert len(bad) == 1 and bad[0].startswith("semseg mIoU value: README")
    val["depth"]["log_rmse"] += 0.1
    assert mod.compare(rows, metrics)[1].startswith("depth log_rmse value: README")
    val["depth"]["log_rmse"] -= 0.1
    del val["sal"]
    assert any(b.startswith("sal mIoU: not in the run") for b in mod.compare(rows, metrics))


@pytest.mark.parametrize("text", ["no marker here", "<!-- main-job-table -->\nnot a block"])
def test_parse_errors(text):
    with pytest.raises(SystemExit, match="error:"):
        checker().parse_table(text)
