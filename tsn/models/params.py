"""Parameter counts with a per-part breakdown (the paper's Table 1 column and
its scaling figure). Parts are read off parameter names, which the model
classes keep stable: encoder, decoder convolutions, normalisation/AdaIN
affine, task embedding, task codes, output heads, RCM modulators."""

from __future__ import annotations

from torch import nn

PARTS = ("encoder", "modulators", "decoder", "norm", "embedding", "codes", "head")


def part_of(name: str) -> str:
    if name.startswith("codes."):
        return "codes"
    if name.startswith("embedding."):
        return "embedding"
    if ".modulators." in name:
        return "modulators"
    if name.startswith(("encoder.", "encoders.")):
        return "encoder"
    if ".out_conv." in name:
        return "head"
    if ".norm." in name:
        return "norm"
    return "decoder"


def parameter_report(model: nn.Module) -> dict:
    """All parameters (trainable or frozen) by part, plus the trainable total."""
    by_part = {p: 0 for p in PARTS}
    trainable = 0
    for name, p in model.named_parameters():
        by_part[part_of(name)] += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return {"params": sum(by_part.values()), "trainable": trainable, "by_part": by_part}
