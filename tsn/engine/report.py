"""Plain-text tables of results for the console (each task says which metrics it shows)."""

from __future__ import annotations

from tsn.metrics import higher_is_better
from tsn.tasks import get_task


def results_table(results: dict[str, dict[str, float]], before: dict[str, dict[str, float]] | None = None) -> str:
    """One row per (task, metric); with ``before``, the untrained model beside it."""
    rows = [("task", "metric", "value") + (("untrained", "better") if before else ())]
    for task, metrics in results.items():
        keys = [k for k in get_task(task).shown_metrics() if k in metrics] or [get_task(task).headline]
        for k in keys:
            if k not in metrics:
                continue
            row = (task, k, f"{metrics[k]:.2f}")
            if before:
                b = before.get(task, {}).get(k)
                ok = "" if b is None else ("yes" if (metrics[k] > b) == higher_is_better(task, k) and metrics[k] != b else "no")
                row += ("-" if b is None else f"{b:.2f}", ok)
            rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
