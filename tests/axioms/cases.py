"""The one explicit list of axiom-suite cases: ``CASES``.

A case is ``(manifold factory, declared-unsupported ops, options)``. Every case runs every axiom
in ``test_axioms.py``. Each space family keeps its entries in its own ``cases_*.py`` module
(so that work on different spaces does not collide); this file concatenates them.

Declared-unsupported operations must raise ``NotImplementedError``; nothing is skipped silently.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from riemlearn.manifolds import Manifold
from torch import Tensor

# Operations the suite exercises; a case may declare some of them unsupported.
OPERATIONS = ("exp", "log", "dist", "transport", "retract", "geodesic", "egrad_to_rgrad", "gyro")


@dataclass(frozen=True)
class Case:
    """One (manifold, metric) configuration of the axiom suite.

    Attributes
    ----------
    id : str
        Test id.
    make : callable
        Builds the manifold (called once per test, cheap).
    unsupported : frozenset of str
        Operations from ``OPERATIONS`` that must raise ``NotImplementedError``.
    isometric_transport : bool
        Whether ``transport`` preserves inner products (parallel transport).
    tangent_scale : float
        Scale of random tangent vectors for round trips (inside the injectivity radius).
    off_manifold : callable or None
        Maps a valid point to an invalid one of the same shape (``None``: every finite array
        of the right shape is a point).
    rtol64, rtol32 : float
        Relative tolerances of identities in float64 / float32.
    near_pairs : bool
        Where the suite needs a second, unrelated point ``y`` (dist axioms, batched == per
        point), draw it as ``exp(x, w)`` with ``‖w‖ = 0.9 · tangent_scale`` instead of
        independently: for spaces whose ``log``/``dist`` are computed only within a radius
        (e.g. Stiefel's canonical log, Zimmermann's iteration).
    """

    id: str
    make: Callable[[], Manifold]
    unsupported: frozenset[str] = field(default_factory=frozenset)
    isometric_transport: bool = True
    tangent_scale: float = 1.0
    off_manifold: Callable[[Tensor], Tensor] | None = None
    rtol64: float = 1e-8
    rtol32: float = 2e-3
    near_pairs: bool = False

    def __str__(self) -> str:
        return self.id


def _collect() -> list[Case]:
    from . import cases_basic

    cases = list(cases_basic.CASES)
    # Spaces added by later work register here, one module each.
    for name in ("cases_spd", "cases_spd_bw", "cases_hyperbolic", "cases_grassmann_gyro"):
        try:
            module = __import__(f"{__package__}.{name}", fromlist=["CASES"])
        except ModuleNotFoundError as err:
            if err.name and err.name.endswith(name):
                continue
            raise
        cases.extend(module.CASES)
    ids = [c.id for c in cases]
    dup = {i for i in ids if ids.count(i) > 1}
    if dup:
        raise RuntimeError(f"duplicate axiom case ids: {sorted(dup)}")
    return cases


CASES: list[Case] = _collect()
