"""riemlearn.stats (under construction)."""
