"""``python -m eval import-release CHECKPOINT --kind tsn|single_task [--task T] --out RUN_DIR [--set K=V]``

Converts one of the authors' released PASCAL-Context checkpoints
(``{"model_state": ...}``, see ``tsn/release.py``) into a run directory of
this project (``config.yaml``, ``checkpoints/best.pt``,
``release_import.json``) that ``python -m eval RUN_DIR`` evaluates with the
release's test geometry, ``python -m train --resume`` fine-tunes (fresh
optimizer; the imported weights kept as ``checkpoints/release.pt``) and
``python -m train.add_task`` reads. ``--set data.root=...`` is stored in its config.
"""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import-release", help="convert the authors' released checkpoint into a run directory")
    p.add_argument("checkpoint", help="the release's .pth file (tsns_model.pth or a single-task one)")
    p.add_argument("--kind", required=True, choices=["tsn", "single_task"])
    p.add_argument("--task", help="single_task: the network's task (semseg|seg, parts, edge|edges, normals, sal|saliency)")
    p.add_argument("--out", required=True, help="the run directory to create")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a config key to store (e.g. data.root=...)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> dict:
    from tsn.release import import_release

    note = import_release(args.checkpoint, args.kind, args.out, task=args.task, overrides=args.set)
    dropped = note["dropped"]
    print(f"{args.out}: the release's {args.kind}{' ' + note['task'] if note['task'] else ''} "
          f"({note['converted_keys']} tensors; tasks {', '.join(note['tasks'])}); "
          f"dropped {len(dropped)} tensors without effect (conv biases before an instance norm"
          f"{', base_model duplicates' if any(k.startswith('base_model.') for k in dropped) else ''})")
    print(f"evaluate with: python -m eval {args.out} --set data.root=/path/to/PASCAL_MT")
    return note
