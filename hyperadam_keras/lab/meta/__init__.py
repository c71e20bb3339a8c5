"""Meta-training: the inner unroll, the meta-update and the outer loop."""
