"""riemlearn.layers (under construction)."""
