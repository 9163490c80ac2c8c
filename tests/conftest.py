import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # train/ and eval/ importable when run from anywhere
os.environ.setdefault("TSN_QUIET", "1")
# progress records (tsn/engine/progress.py) only where a test asks for them: a slow machine must
# not add a record line to the output a test reads
os.environ.setdefault("TSN_PROGRESS_EVERY", "3600")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A tiny trained synthetic TSN run (tests/test_runs.py's make_run), one per test module."""
    from test_runs import make_run

    torch.manual_seed(0)
    return make_run(tmp_path_factory.mktemp("run") / "run")


@pytest.fixture(scope="module")
def model(run_dir):
    """The model of :func:`run_dir`, loaded as users load it (tsn.load_run)."""
    import tsn

    return tsn.load_run(run_dir)[0]
