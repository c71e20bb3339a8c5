"""Keras models a user writes, as `compare` builders (`lab.eval.compare_builder`): the `validation`
models (the hand trials that found the shipped step unsafe; used to choose defaults) and the
`generalization` suite's tasks (`generalization.py`; used only to report). Keep the two apart: a
default chosen on the tasks it is reported on says nothing about the next model."""
