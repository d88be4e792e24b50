"""riemlearn: learning on Riemannian and matrix manifolds with PyTorch."""

__version__ = "0.1.0"
