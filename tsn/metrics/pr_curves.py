"""Boundary precision-recall curves: the field's published curves and the figure edge papers draw.

Edge detection papers compare methods on one figure: precision (y) against
recall (x) on the unit square, grey iso-F contours behind, one curve per
method with the legend ``[F=.xxx] name`` sorted by ODS, best first
(``edgesEvalPlot.m`` of Dollar's toolbox, as reused by HED, RCF and their
successors). This module draws that figure with our curve(s) on top of the
published ones, so a reader sees at a glance where a result sits in the
field rather than only its three summary numbers.

The published curves are facts copied (not recomputed) from the public
repository MCG-NKU/plot-edge-pr-curves (commit recorded in
``published_edges.json`` beside this file): per dataset (``bsds500``,
``nyud``) and method, ODS / OIS / AP and the per-threshold (recall,
precision) points the authors released. Their numbers come from the MATLAB
BSDS benchmark, so they compare with our ``bsds`` protocol
(:mod:`tsn.metrics.edge_protocols`), not with the ``seism`` or ``fast`` one.

Public API::

    published(dataset, methods=None) -> list[Curve]
    human_agreement(dataset) -> Curve | None
    Curve.from_counts(name, thresholds, counts, summary=None, *, source="", percent=None) -> Curve
    plot_pr(curves, path, *, title=None, dataset="bsds500", methods=None, human=True) -> Path

A wrong dataset or method name is a one-line :class:`~tsn.errors.DataError`
naming the valid ones; an output path that cannot be written is a one-line
:class:`~tsn.errors.ConfigError`, raised before anything is drawn.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from tsn.errors import ConfigError, DataError
from tsn.io import atomic_write_bytes, check_output_file
from tsn.metrics.boundary import fmeasure, recall_precision

__all__ = [
    "DATASETS", "DEFAULT_METHODS", "MIN_RECALL", "Curve", "published", "published_methods",
    "human_agreement", "plot_pr",
]

DATA_FILE = "published_edges.json"
DATASETS = ("bsds500", "nyud")
# The comparison most edge papers show: a classical detector, the classical
# state of the art, the fast learned one and the two CNN baselines. Each
# dataset uses the ones it has (NYUD has no Canny file).
DEFAULT_METHODS = ("Canny", "gPb-UCM", "SE", "HED", "RCF-VGG16")
# Points below this recall are left out of the drawing, as edgesEvalPlot.m
# does: at thresholds where nothing is predicted the benchmark writes R = P = 0,
# which would draw a spurious line to the origin.
MIN_RECALL = 1e-3

_F_LEVELS = tuple(round(0.1 * k, 1) for k in range(1, 10))
_OURS_COLORS = ("#d62728", "#111111", "#1f3fbf", "#8c1aa8")
# tab10 without red (ours) and grey (the iso-F lines); green late so the human marker stands out
_PUBLISHED_COLORS = ("#1f77b4", "#ff7f0e", "#9467bd", "#8c564b", "#17becf", "#bcbd22", "#e377c2", "#2ca02c",
                     "#aec7e8", "#ffbb78", "#c5b0d5", "#c49c94", "#9edae5", "#dbdb8d", "#f7b6d2", "#98df8a")
_HUMAN_COLOR = "#006400"
_LEGEND_INSIDE_MAX = 10  # legend entries that fit the lower-left corner without hiding curves


def _numpy(a: Any) -> Any:
    """A torch tensor as numpy (the metric's state is torch); anything else unchanged."""
    return a.detach().cpu().numpy() if hasattr(a, "detach") else a


def _frozen(a: Any, what: str) -> np.ndarray:
    a = _numpy(a)
    try:
        arr = np.array(a, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise DataError(f"{what}: not numbers ({e})") from None
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class Curve:
    """One method's boundary PR curve and its summary numbers (fractions in [0, 1]).

    ``recall`` / ``precision`` are the per-threshold points in the order the
    benchmark wrote them (usually increasing threshold, so decreasing recall).
    ``ods_point`` is the (recall, precision) the ODS was taken at, marked on
    the figure; None means "the point of the curve with the highest F".
    ``ois`` and ``ap`` are None when unknown (a curve built from counts
    without a summary). ``source`` says where the numbers come from (a file
    of the published repository, a run folder).
    """

    name: str
    recall: np.ndarray
    precision: np.ndarray
    ods: float
    ois: float | None = None
    ap: float | None = None
    source: str = ""
    ods_point: tuple[float, float] | None = None
    thresholds: np.ndarray | None = field(default=None, repr=False)
    year: int | None = None

    def __post_init__(self) -> None:
        r = _frozen(self.recall, f"curve {self.name!r} recall")
        p = _frozen(self.precision, f"curve {self.name!r} precision")
        if r.ndim != 1 or p.shape != r.shape or r.size == 0:
            raise DataError(f"curve {self.name!r}: recall and precision must be 1-D of the same non-zero length, "
                            f"got shapes {r.shape} and {p.shape}")
        for what, a in (("recall", r), ("precision", p)):
            if not np.all(np.isfinite(a)) or a.min() < -1e-9 or a.max() > 1 + 1e-9:
                raise DataError(f"curve {self.name!r}: {what} must lie in [0, 1] (fractions, not percentages)")
        object.__setattr__(self, "recall", r)
        object.__setattr__(self, "precision", p)
        for what in ("ods", "ois", "ap"):
            v = getattr(self, what)
            if v is None and what != "ods":
                continue
            if not isinstance(v, (int, float, np.floating)) or not (0 <= float(v) <= 1):
                raise DataError(f"curve {self.name!r}: {what} must be a fraction in [0, 1], got {v!r}")
            object.__setattr__(self, what, float(v))
        if self.ods_point is not None:
            pt = tuple(float(x) for x in self.ods_point)
            if len(pt) != 2 or not all(0 <= x <= 1 for x in pt):
                raise DataError(f"curve {self.name!r}: ods_point must be (recall, precision) in [0, 1]")
            object.__setattr__(self, "ods_point", pt)
        if self.thresholds is not None:
            t = _frozen(self.thresholds, f"curve {self.name!r} thresholds")
            if t.shape != r.shape:
                raise DataError(f"curve {self.name!r}: {t.size} thresholds for {r.size} points")
            object.__setattr__(self, "thresholds", t)

    @property
    def f(self) -> np.ndarray:
        """F of every point."""
        return fmeasure(self.recall, self.precision)

    @property
    def best_point(self) -> tuple[float, float]:
        """Where the figure marks the ODS: ``ods_point``, else the point of highest F (first of equal maxima)."""
        if self.ods_point is not None:
            return self.ods_point
        i = int(np.argmax(self.f))
        return float(self.recall[i]), float(self.precision[i])

    @property
    def label(self) -> str:
        """The legend entry edge papers use: ``[F=.788] HED``."""
        return f"[F={self.ods:.3f}] {self.name}".replace("[F=0.", "[F=.")

    def points(self, min_recall: float = MIN_RECALL) -> tuple[np.ndarray, np.ndarray]:
        """(recall, precision) with the points below ``min_recall`` left out (see MIN_RECALL)."""
        keep = self.recall >= min_recall
        return self.recall[keep], self.precision[keep]

    @classmethod
    def from_counts(cls, name: str, thresholds: Any, counts: Any, summary: Mapping[str, float] | None = None,
                    *, source: str = "", percent: bool | None = None) -> Curve:
        """A curve from the project's split-wide edge counts.

        ``counts`` is [T, 4] of (cntR, sumR, cntP, sumP) per threshold, the
        state the edge metric accumulates (numpy or torch); R = cntR / sumR and
        P = cntP / sumP, 0 where the denominator is 0, as the benchmark.
        ``summary`` is what the metric reports: :func:`edge_protocols.summarize`
        (fractions) or ``EdgeMetric.compute()`` (percentages); keys ``odsF``,
        ``oisF``, ``AP``, ``odsR``, ``odsP`` (``ods`` / ``ois`` / ``ap`` also
        accepted). ``percent=None`` decides fractions vs percentages from the
        values (any above 1 means percentages). Without a summary (or without
        its ODS) the ODS is the best F over the points, not interpolated
        between thresholds as the bsds protocol does, so it can be slightly
        lower than the metric's.
        """
        t = _frozen(thresholds, f"curve {name!r} thresholds").reshape(-1)
        c = np.asarray(_numpy(counts), dtype=np.float64)
        if c.ndim != 2 or c.shape[1] != 4:
            raise DataError(f"curve {name!r}: counts must be [T, 4] (cntR, sumR, cntP, sumP), got shape {c.shape}")
        if c.shape[0] != t.size:
            raise DataError(f"curve {name!r}: {c.shape[0]} rows of counts for {t.size} thresholds")
        if not np.all(np.isfinite(c)) or c.min() < 0:
            raise DataError(f"curve {name!r}: counts must be finite and non-negative")
        if np.any(c[:, 0] > c[:, 1]) or np.any(c[:, 2] > c[:, 3]):
            raise DataError(f"curve {name!r}: a count exceeds its total (need cntR <= sumR and cntP <= sumP)")
        r, p = recall_precision(c)
        s = _read_summary(name, summary or {}, percent)
        ods, ods_point = s.get("ods"), None
        if ods is None:
            i = int(np.argmax(fmeasure(r, p)))
            ods = float(fmeasure(r, p)[i])
        elif "odsR" in s and "odsP" in s:
            ods_point = (s["odsR"], s["odsP"])
        return cls(name=name, recall=r, precision=p, ods=ods, ois=s.get("ois"), ap=s.get("ap"), source=source,
                   ods_point=ods_point, thresholds=t)


_SUMMARY_KEYS = {"odsF": "ods", "ods": "ods", "oisF": "ois", "ois": "ois", "AP": "ap", "ap": "ap",
                 "odsR": "odsR", "odsP": "odsP"}


def _read_summary(name: str, summary: Mapping[str, float], percent: bool | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for k, v in summary.items():
        if k in _SUMMARY_KEYS and v is not None and math.isfinite(float(v)):
            out[_SUMMARY_KEYS[k]] = float(v)
    if percent is None:
        percent = any(v > 1 for v in out.values())
    if percent:
        out = {k: v / 100 for k, v in out.items()}
    if any(not (0 <= v <= 1) for v in out.values()):
        raise DataError(f"curve {name!r}: summary values must be fractions or percentages, got {dict(summary)}")
    return out


# ----------------------------------------------------------------------------- published data


@lru_cache(maxsize=1)
def _raw() -> dict:
    try:
        text = resources.files("tsn.metrics").joinpath(DATA_FILE).read_text(encoding="utf-8")
        data = json.loads(text)
        data["datasets"]  # noqa: B018
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DataError(f"cannot read tsn/metrics/{DATA_FILE} (the published curves): {e}") from None
    return data


def _dataset(dataset: str) -> tuple[str, dict]:
    key = str(dataset).lower()
    datasets = _raw()["datasets"]
    if key not in datasets:
        raise DataError(f"no published edge curves for dataset {dataset!r}; valid: {', '.join(datasets)}")
    return key, datasets[key]


def published_methods(dataset: str) -> list[str]:
    """The method names available for ``dataset``, best ODS first."""
    _, d = _dataset(dataset)
    return sorted(d["methods"], key=lambda m: -d["methods"][m]["ods"])


def _curve(m: dict, repo: str) -> Curve:
    return Curve(name=m["display_name"], recall=m["recall"], precision=m["precision"], ods=m["ods"],
                 ois=m["ois"], ap=m["ap"], source=f"{m.get('repository', repo)}:{m['source']}",
                 ods_point=(m["ods_recall"], m["ods_precision"]), year=m.get("year"))


def published(dataset: str, methods: Sequence[str] | None = None) -> list[Curve]:
    """The published curves of ``dataset`` (``bsds500`` or ``nyud``).

    ``methods=None`` gives all of them, best ODS first; otherwise the named
    ones (case-insensitive) in the order given. An unknown name is a one-line
    DataError listing the valid ones.
    """
    key, d = _dataset(dataset)
    repo = _raw().get("repository", "")
    ms = d["methods"]
    if methods is None:
        return [_curve(ms[n], repo) for n in published_methods(key)]
    if isinstance(methods, str):
        methods = [methods]
    lower = {n.lower(): n for n in ms}
    out = []
    for name in methods:
        n = lower.get(str(name).lower())
        if n is None:
            raise DataError(f"no published {key} curve for method {name!r}; valid: {', '.join(published_methods(key))}")
        out.append(_curve(ms[n], repo))
    return out


def human_agreement(dataset: str) -> Curve | None:
    """The human agreement point (one-point curve) where the source has one (BSDS500: ODS .803), else None.

    The number is the commonly cited one of Arbelaez et al., TPAMI 2011; the
    point (R .7235, P .9014) is the one edgesEvalPlot.m draws.
    """
    key, d = _dataset(dataset)
    h = d.get("human")
    if not h:
        return None
    return Curve(name=h["display_name"], recall=[h["recall"]], precision=[h["precision"]], ods=h["ods"],
                 source=f"{h['repository']}:{h['source']}", ods_point=(h["recall"], h["precision"]))


# ----------------------------------------------------------------------------- figure


def _writable_formats() -> dict[str, str]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    return FigureCanvasAgg(Figure()).get_supported_filetypes()


def _check_output(path: Path) -> str:
    """The matplotlib format of ``path``, or a one-line error saying why it cannot be written."""
    fmt = path.suffix.lower().lstrip(".")
    formats = _writable_formats()
    if fmt not in formats:
        raise ConfigError(f"cannot write the PR figure to {path}: suffix {path.suffix or '(none)'!r} is not a format "
                          f"matplotlib writes ({', '.join('.' + f for f in sorted(formats))})")
    check_output_file(path, overwrite=True)
    return fmt


def _iso_f(ax) -> None:
    """Grey iso-F contours F = 0.1..0.9, labelled where they meet the right spine (outside the curves' way)."""
    for f in _F_LEVELS:
        r = np.linspace(f / (2 - f), 1.0, 200)  # P = fR / (2R - f) reaches 1 at R = f / (2 - f)
        p = f * r / (2 * r - f)
        ax.plot(r, p, color="0.82", linewidth=0.7, zorder=0.5)
        ax.text(1.012, f / (2 - f), f"F={f:.1f}", color="0.45", fontsize=7, va="center", ha="left",
                transform=ax.transData, clip_on=False)


def plot_pr(curves: Curve | Sequence[Curve], path: str | Path, *, title: str | None = None,
            dataset: str | None = "bsds500", methods: Sequence[str] | None = None, human: bool = True,
            dpi: int = 150) -> Path:
    """Draw ``curves`` (ours: bold, first in the legend) over the published curves of ``dataset``.

    Precision against recall on [0, 1]^2, iso-F contours behind, each curve's
    ODS point marked, legend ``[F=.xxx] name``: ours first (best ODS first),
    then the human agreement point (``human=True``, where the dataset has
    one), then the published methods best ODS first, the convention of edge
    papers. ``methods`` picks the published methods (default
    DEFAULT_METHODS, those the dataset has; ``[]`` none); ``dataset=None``
    draws ours alone. ``title`` defaults to the dataset's name. Written
    atomically; the format follows the suffix (.png, .pdf, .svg, ...).
    Returns ``path``.
    """
    ours = [curves] if isinstance(curves, Curve) else list(curves)
    for c in ours:
        if not isinstance(c, Curve):
            raise DataError(f"plot_pr takes Curve objects, got {type(c).__name__}")
    path = Path(path)
    fmt = _check_output(path)
    pub: list[Curve] = []
    hum: Curve | None = None
    if dataset is not None:
        key, d = _dataset(dataset)
        if methods is None:
            methods = [m for m in DEFAULT_METHODS if m in d["methods"]]
        pub = sorted(published(key, methods), key=lambda c: -c.ods)
        hum = human_agreement(key) if human else None
        if title is None:
            title = d.get("display_name", key)
    ours = sorted(ours, key=lambda c: -c.ods)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_entries = len(ours) + len(pub) + (hum is not None)
    outside = n_entries > _LEGEND_INSIDE_MAX  # a long legend would hide the low curves: beside the axes then
    fig, ax = plt.subplots(figsize=(8.6 if outside else 6.2, 5.8), dpi=dpi)
    _iso_f(ax)
    handles = []
    # published: worst drawn first so the best lies on top; dashed once the palette repeats
    styles = {id(c): (_PUBLISHED_COLORS[i % len(_PUBLISHED_COLORS)], "-" if i < 8 else "--")
              for i, c in enumerate(pub)}
    pub_handles = {}
    for c in reversed(pub):
        color, ls = styles[id(c)]
        r, p = c.points()
        (h,) = ax.plot(r, p, color=color, linestyle=ls, linewidth=1.4, zorder=2, label=c.label)
        ax.plot(*c.best_point, "o", color=color, markersize=4.5, markeredgecolor="white", markeredgewidth=0.6,
                zorder=2.5)
        pub_handles[id(c)] = h
    for i, c in reversed(list(enumerate(ours))):
        color = _OURS_COLORS[i % len(_OURS_COLORS)]
        r, p = c.points()
        (h,) = ax.plot(r, p, color=color, linewidth=2.8, zorder=4, label=c.label,
                       marker="o" if r.size == 1 else None, solid_capstyle="round")
        ax.plot(*c.best_point, "o", color=color, markersize=7.5, markeredgecolor="black", markeredgewidth=0.9,
                zorder=4.5)
        handles.insert(0, h)
    if hum is not None:
        (h,) = ax.plot(*hum.best_point, "*", color=_HUMAN_COLOR, markersize=13, markeredgecolor="white",
                       markeredgewidth=0.6, linestyle="none", zorder=3, label=hum.label)
        handles.append(h)
    handles += [pub_handles[id(c)] for c in pub]

    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ticks = np.linspace(0, 1, 11)
    ax.set_xticks(ticks)
    ax.set_yticks(ticks)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.25, linewidth=0.6)
    ax.set_xlabel("Recall")
    ax.set_ylabel("Precision")
    if title:
        ax.set_title(title)
    if handles:
        if outside:  # right of the iso-F labels
            leg = ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.13, 1.0), fontsize=7,
                            frameon=False, handlelength=2.2, borderaxespad=0.0)
        else:  # lower left: the corner no PR curve of a useful detector passes through
            leg = ax.legend(handles=handles, loc="lower left", fontsize=8, frameon=True, framealpha=0.92,
                            edgecolor="0.8", handlelength=2.2, borderaxespad=0.6)
        leg.set_zorder(5)
        for text, h in zip(leg.get_texts(), handles):
            if any(h is x for x in handles[: len(ours)]):
                text.set_fontweight("bold")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, bbox_inches="tight", pad_inches=0.08)  # keeps the F labels and an outside legend
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())
