"""The Adam-ensemble constructor and the `make-bundle` command."""

import numpy as np
import pytest
import tensorflow as tf

from hyperadam_keras import HyperAdam, adam_ensemble, load_meta_params
from hyperadam_keras.cli import main


def _run(optimizer, steps=4):
    rng = np.random.default_rng(0)
    variable = tf.Variable(rng.normal(size=(7, 3)).astype(np.float32))
    for _ in range(steps):
        optimizer.apply_gradients([(tf.constant(rng.normal(size=(7, 3)).astype(np.float32)), variable)])
    return variable.numpy()


def test_weight_sum_scales_the_step_like_the_learning_rate():
    # Zero kernels: d_t is linear in the equal weights ρ = s/J, so (α, s) and (s·α, 1) take the same steps.
    scaled = _run(HyperAdam(0.002, meta_params=adam_ensemble(6, 4, weight_sum=5.0), jit_compile=False))
    reference = _run(HyperAdam(0.01, meta_params=adam_ensemble(6, 4), jit_compile=False))
    np.testing.assert_allclose(scaled, reference, rtol=1e-5, atol=1e-6)
    assert not np.allclose(scaled, _run(HyperAdam(0.002, meta_params=adam_ensemble(6, 4), jit_compile=False)))


def test_weight_sum_must_be_positive():
    with pytest.raises(ValueError, match="weight_sum"):
        adam_ensemble(weight_sum=0.0)


def test_make_bundle_writes_the_requested_ensemble(tmp_path, capsys):
    out = tmp_path / "bundle"
    assert main(["make-bundle", str(out), "-J", "4", "-H", "3", "--weight-sum", "2", "--gamma", "0.99"]) == 0
    params = load_meta_params(out)
    assert (params.num_candidates, params.hidden) == (4, 3)
    np.testing.assert_allclose(params.values["weight_cell/bias"], 0.5)
    np.testing.assert_allclose(1 / (1 + np.exp(-params.values["adam_cell/gamma_bias"])), 0.99, rtol=1e-6)
    assert params.fingerprint() == adam_ensemble(4, 3, gamma=0.99, weight_sum=2.0).fingerprint()
    assert "wrote" in capsys.readouterr().out


def test_random_meta_params_are_noise_around_the_requested_ensemble():
    from hyperadam_keras import random_meta_params
    params = random_meta_params(20, 20, seed=0, scale=0.1, weight_sum=5.0)
    ensemble = adam_ensemble(20, 20, weight_sum=5.0)
    for name, value in params.values.items():
        noise = value - ensemble.values[name]
        assert 0 < np.abs(noise).max() < 1.0, name  # perturbed, but close to the ensemble
    assert abs(params.values["weight_cell/bias"].mean() - 0.25) < 0.1
    assert params.fingerprint() == random_meta_params(20, 20, seed=0, scale=0.1, weight_sum=5.0).fingerprint()
