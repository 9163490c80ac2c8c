"""Which tasks to learn together: network selection (Standley et al., ICML 2020)
and task affinity grouping (Fifty et al., NeurIPS 2021).  Pure functions plus a
model-agnostic look-ahead helper; no training code."""

from tsn.grouping.affinity import (
    AffinityAccumulator,
    affinity_to_scores,
    select_groups_by_affinity,
    tag_affinity_step,
)
from tsn.grouping.selection import Selection, brute_force_select, estimate_from_pairs, select_groups

__all__ = [
    "AffinityAccumulator",
    "Selection",
    "affinity_to_scores",
    "brute_force_select",
    "estimate_from_pairs",
    "select_groups",
    "select_groups_by_affinity",
    "tag_affinity_step",
]
