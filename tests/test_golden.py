"""Golden trajectories with the shipped bundles: six steps of fixed gradients on two fixed variables, the
final weights recorded once. `HyperAdam(**PAPER_SETTINGS)` (the "paper" bundle at the paper's step;
recorded at commit e122b4f, when that bundle was the default and this its trajectory) and `HyperAdam()`
(the default; recorded when the default bundle changed, 2026-12-03, see docs/safety.md). The float64
reference tests check the math against an independent implementation, but a change to the math *and*
its reference together, or to the shipped bundle, would pass them; this test fails on either. If such a
change is intended, say why in the commit and record the new values (the test prints them)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from hyperadam_keras import PAPER_SETTINGS, HyperAdam

GOLDEN_KERNEL = [[0.418541998, 0.832028508, 0.661464691], [-0.437724859, -0.589562893, -0.090837978],
                 [0.520315647, 0.298666269, 0.771891296], [0.400156468, 0.369860113, -0.237985566]]
GOLDEN_BIAS = [-0.544628501, 0.693327546, 0.042837355]


def golden_run(jit_compile: bool, **settings) -> list:
    rng = np.random.default_rng(2024)
    shapes = [(4, 3), (3,)]
    variables = [keras.Variable(rng.normal(0, 0.5, s).astype(np.float32)) for s in shapes]
    grads = [[rng.normal(0, 0.2, s).astype(np.float32) for s in shapes] for _ in range(6)]
    optimizer = HyperAdam(jit_compile=jit_compile, **settings)
    for step_grads in grads:
        optimizer.apply([tf.constant(g) for g in step_grads], variables)
    return [v.numpy() for v in variables]


@pytest.mark.parametrize("jit_compile", [True, False])
def test_the_paper_settings_follow_the_recorded_trajectory(jit_compile):
    kernel, bias = golden_run(jit_compile, **PAPER_SETTINGS)
    message = f"recorded trajectory changed; now kernel={kernel.tolist()}, bias={bias.tolist()}"
    np.testing.assert_allclose(kernel, GOLDEN_KERNEL, rtol=0, atol=1e-6, err_msg=message)
    np.testing.assert_allclose(bias, GOLDEN_BIAS, rtol=0, atol=1e-6, err_msg=message)
    # The recorded values are far from the start: the test would see a step that did nothing.
    start = np.random.default_rng(2024).normal(0, 0.5, (4, 3))
    assert np.abs(kernel - start).max() > 0.01


# Recorded 2026-12-03, when the default bundle became meta_training/run10's (J = H = 8, "rms-clip").
DEFAULT_KERNEL = [[0.480879098, 0.821406126, 0.603993595], [-0.471250117, -0.65992111, -0.007318552],
                  [0.458779871, 0.264658839, 0.859382987], [0.379526824, 0.333981901, -0.321245909]]
DEFAULT_BIAS = [-0.54805553, 0.720764518, 0.032606818]


@pytest.mark.parametrize("jit_compile", [True, False])
def test_the_default_optimizer_follows_the_recorded_trajectory(jit_compile):
    """`HyperAdam()`: the default bundle at α = 0.001 with the 3 % relative-step cap."""
    kernel, bias = golden_run(jit_compile)
    message = f"recorded trajectory changed; now kernel={kernel.tolist()}, bias={bias.tolist()}"
    np.testing.assert_allclose(kernel, DEFAULT_KERNEL, rtol=0, atol=1e-6, err_msg=message)
    np.testing.assert_allclose(bias, DEFAULT_BIAS, rtol=0, atol=1e-6, err_msg=message)
    start = np.random.default_rng(2024).normal(0, 0.5, (4, 3))
    assert np.abs(kernel - start).max() > 0.01
    assert np.abs(kernel - np.asarray(GOLDEN_KERNEL)).max() > 0.01  # not the paper settings' trajectory
