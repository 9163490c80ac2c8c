"""``python -m eval``: evaluate a run, or report on models and results.

  python -m eval RUN_DIR_or_CHECKPOINT [--split val|test] [--json] ...
  python -m eval params CONFIG.yaml [--json]
  python -m eval trivial CONFIG.yaml [--split val] [--json]
  python -m eval scaling --max-tasks 9 --out DIR
  python -m eval tables RUNS_DIR --out DIR
  python -m eval figures RUNS_DIR --out DIR
  python -m eval records RUNS_DIR --out DIR     (finished runs' records, no checkpoints: to commit)
  python -m eval edges PRED_DIR --gt GT_DIR --protocol seism|bsds [--json]
  python -m eval import-release CHECKPOINT --kind tsn|single_task [--task T] --out RUN_DIR
"""

from __future__ import annotations

import argparse
import importlib
import sys

from tsn.errors import TSNError

SUBCOMMANDS = ["params", "trivial", "scaling", "tables", "figures", "records", "grouping", "edges", "import-release",
               "predict", "export", "run"]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] not in SUBCOMMANDS and not argv[0].startswith("-"):
        argv = ["run", *argv]  # python -m eval RUN_DIR ...
    parser = argparse.ArgumentParser(prog="python -m eval", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in SUBCOMMANDS:
        try:
            mod = importlib.import_module(f"eval.{name.replace('-', '_')}")
        except ModuleNotFoundError as e:
            if e.name != f"eval.{name.replace('-', '_')}":
                raise
            continue
        mod.add_parser(sub)
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except TSNError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
