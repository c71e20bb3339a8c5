"""The research tooling around the optimizer: data, tasks, meta-training and evaluation.

Needs the `[lab]` extra (`pip install "hyperadam-keras[lab]"`); the optimizer itself does not.
"""
