"""The task embedding network C: task code v_t -> task latent l_t."""

from __future__ import annotations

from torch import Tensor, nn

from tsn.nn.equal_lr import EqualLinear, PixelNorm


class TaskEmbedding(nn.Module):
    """Pixel-norm, then ``n_fc`` (equalised-lr) linear layers with LeakyReLU(0.2).

    Defaults follow the release: 8 layers of width d. ``n_fc=0`` gives the
    pixel-normalised code itself (the "no embedding" ablation)."""

    def __init__(self, dim: int, n_fc: int = 8, width: int | None = None, equalized: bool = True) -> None:
        super().__init__()
        width = width or dim
        layers: list[nn.Module] = [PixelNorm()]
        for i in range(n_fc):
            layers += [EqualLinear(dim if i == 0 else width, width, equalized=equalized), nn.LeakyReLU(0.2)]
        self.net = nn.Sequential(*layers)
        self.out_dim = width if n_fc > 0 else dim

    def forward(self, codes: Tensor) -> Tensor:
        return self.net(codes)
