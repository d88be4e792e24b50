"""riemlearn.optim (under construction)."""
