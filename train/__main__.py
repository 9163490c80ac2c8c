"""python -m train CONFIG.yaml [--set key=value ...] [--out DIR] [--resume]

Trains the configured model, validates it, and prints the final per-task
table. Ctrl-C (SIGINT) or SIGTERM writes ``checkpoints/last.pt`` at the next
step boundary and exits with 130; ``--resume`` continues bit-identically. A
resume may change only where data lives, workers, device, log/checkpoint
cadence and evaluation-only settings (and ``train.epochs`` under schedule
none/plateau); each change is logged, any other is refused in one line.
Under ``torchrun --nproc_per_node N python -m train ...`` (or ``torchrun ...
-m train``) the same command trains with DistributedDataParallel.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tsn.errors import TSNError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", nargs="?", help="YAML config (optional with --resume: the run's config.yaml is used)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    p.add_argument("--out", help="run directory (default: runs/<config name>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from checkpoints/last.pt")
    p.add_argument("--quiet", action="store_true", help="no log lines on the console")
    p.add_argument("--json", action="store_true", help="print the final metrics as JSON instead of a table")
    p.add_argument("--check", action="store_true", help="check the config (keys, types, ranges, names), print it, train nothing")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> dict:
    from tsn.config import load_config, to_dict
    from tsn.engine.report import results_table
    from tsn.engine.trainer import Trainer
    from tsn.validate import check_config

    if args.resume:
        if not args.out:
            raise TSNError("--resume needs --out RUN_DIR")
        saved = Path(args.out) / "config.yaml"
        if not saved.is_file():
            raise TSNError(f"nothing to resume: {saved} does not exist")
        cfg = load_config(saved, args.set)
        if args.config:
            given = load_config(args.config, args.set)
            if to_dict(given) != to_dict(cfg):
                raise TSNError(f"{args.config} differs from the config of the run in {args.out}; resume without CONFIG")
    else:
        if not args.config:
            raise TSNError("give a config file (for example configs/synthetic/tsn.yaml) or --resume --out RUN_DIR")
        cfg = load_config(args.config, args.set)
    check_config(cfg)
    if args.check:
        from tsn.config import to_yaml

        print(to_yaml(cfg), end="")
        return {}
    out = Path(args.out or Path("runs") / cfg.name)
    if not args.resume and (out / "checkpoints" / "last.pt").exists():
        raise TSNError(f"{out} already holds a run; pass --resume to continue it, or choose another --out")
    result = Trainer(cfg, out, resume=args.resume, quiet=args.quiet or None).fit()
    if result.get("processes", 1) == 1 or _rank() == 0:
        if args.json:
            print(json.dumps({k: v for k, v in result.items() if k != "history"}))
        else:
            before = result["history"][0]["val"] if result["history"] and result["history"][0]["epoch"] == 0 else None
            print(f"\n{cfg.name}: {cfg.model.name} on {cfg.data.name}, {result['params'] / 1e6:.2f}M parameters, "
                  f"best epoch {result['best_epoch']}, {result['train_time_s']:.0f}s training"
                  + (f", delta_m {result['delta_m']:+.2f}%" if result.get("delta_m") is not None else ""))
            print(results_table(result["val"], before))
            print(f"\nrun directory: {out}")
    return result


def _rank() -> int:
    import os

    return int(os.environ.get("RANK", "0"))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        run(args)
    except TSNError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        # the trainer's Interrupted: last.pt was written at a step boundary. A bare KeyboardInterrupt
        # (a second Ctrl-C, or one before training started) advises resuming only if there is a last.pt.
        path = getattr(e, "path", None)
        if path is None and args.out:
            path = Path(args.out) / "checkpoints" / "last.pt"
        if path is not None and Path(path).is_file():
            print("interrupted; resume with --resume" + (f" --out {args.out}" if args.out else ""), file=sys.stderr)
        else:
            print("interrupted before the first checkpoint; nothing to resume, start the run again", file=sys.stderr)
        return 130
    finally:
        from tsn.engine.distributed import cleanup

        cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
