import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # train/ and eval/ importable when run from anywhere
os.environ.setdefault("TSN_QUIET", "1")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
