"""The `scopecast bench stream` and `scopecast bench overlay` benchmarks: they print measured numbers."""
