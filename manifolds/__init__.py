"""Manifolds, metrics and matrix functions."""

from . import spectral
from .base import Manifold, Metric
from .euclidean import Euclidean, FlatMetric

__all__ = ["Manifold", "Metric", "Euclidean", "FlatMetric", "spectral"]
