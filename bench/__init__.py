"""mountdns benchmarks: figures, not tests. `scripts/bench` runs them all."""
