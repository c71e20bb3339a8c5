"""The defaults of HyperAdam, defined once: the optimizer, the bundle, the unroll and the lab import them."""

DEFAULT_LEARNING_RATE = 0.005  # α of the paper's meta-training, and HyperAdam's default step
DEFAULT_EPSILON = 1e-24  # ε of the candidate updates m̂ = (m / β̂) / (sqrt(v / γ̂) + ε) (paper)
DEFAULT_DECAY_AFTER = 100  # the paper's meta-training horizon T, and the shipped bundle's
