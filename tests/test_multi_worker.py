"""HyperAdam under MultiWorkerMirroredStrategy: two real worker processes on 127.0.0.1.

The launcher of `examples/distributed.py` starts two workers (free ports, one TF_CONFIG each), each
`fit`s the same MLP with HyperAdam for a few steps on its half of every global batch, and the launcher
trains the same model in one process on the whole global batch. HyperAdam's global norms must be
computed on the all-reduced gradient for the three runs to agree.
"""

from __future__ import annotations

import numpy as np
import pytest

from helpers_subprocess import EXAMPLES, run_script, tf_noise_free

STEPS = 3
GLOBAL_BATCH = 64


def _load(path):
    with np.load(path) as data:
        return [data[f"arr_{i}"] for i in range(len(data.files) - 1)], data["losses"]


@pytest.fixture(scope="module")
def norm_sensitive_bundle(tmp_path_factory):
    """Random meta-parameters of scale 1: unlike the shipped bundle (small kernels, where the normalized
    gradient barely moves the update), here the update of a variable depends on the global gradient norm."""
    from hyperadam_keras import random_meta_params, save_meta_params

    path = tmp_path_factory.mktemp("bundle") / "random"
    save_meta_params(random_meta_params(seed=3, scale=1.0), path)
    return path


def test_bundle_makes_the_update_depend_on_the_global_norm(norm_sensitive_bundle):
    """Negative control: with this bundle, a norm computed over a part of the gradient (what a worker
    would see without the all-reduce) gives a different step than the norm over all of it."""
    import keras
    from hyperadam_keras import HyperAdam

    g_a, g_b = np.full((3,), 0.5, "float32"), np.full((4,), 2.0, "float32")

    def step(variables_and_grads):
        opt = HyperAdam(meta_params=norm_sensitive_bundle, jit_compile=False, max_relative_step=None)  # uncapped: zeros
        variables = [keras.Variable(np.zeros_like(g)) for g, _ in variables_and_grads]
        for _ in range(3):
            opt.apply([g for g, _ in variables_and_grads], variables)
        return np.asarray(variables[0])

    together = step([(g_a, "a"), (g_b, "b")])
    alone = step([(g_a, "a")])
    assert np.max(np.abs(together - alone)) > 1e-2 * np.max(np.abs(together))


def test_two_workers_agree_with_each_other_and_with_one_process(tmp_path, norm_sensitive_bundle):
    out = tmp_path / "mw"
    result = run_script(
        [str(EXAMPLES / "distributed.py"), "multi-worker", "--workers", "2", "--steps", str(STEPS),
         "--batch-size", str(GLOBAL_BATCH), "--meta-params", str(norm_sensitive_bundle),
         "--output-dir", str(out), "--timeout", "420"],
        timeout=480)
    logs = "\n".join(tf_noise_free(p.read_text())[-3000:] for p in sorted(out.glob("worker*.log")))
    assert result.returncode == 0, tf_noise_free(result.stdout) + "\n--- worker logs ---\n" + logs
    assert "2 replicas in sync" in result.stdout

    (w0, losses0), (w1, losses1) = _load(out / "worker0.npz"), _load(out / "worker1.npz")
    reference, reference_losses = _load(out / "reference.npz")
    assert len(losses0) == STEPS and len(reference_losses) == STEPS

    # Both workers hold the same replicated weights after every all-reduced step.
    for a, b in zip(w0, w1):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-7)
    # ... and they are what one process computes on the whole global batch (float rounding only).
    for a, b in zip(w0, reference):
        np.testing.assert_allclose(a, b, rtol=0, atol=2e-6)
    np.testing.assert_allclose(losses0, reference_losses, rtol=1e-5)

    # The runs really trained: the weights moved far more than the tolerance above.
    import importlib.util

    spec = importlib.util.spec_from_file_location("distributed_example", EXAMPLES / "distributed.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    moved = max(float(np.max(np.abs(a - b))) for a, b in zip(w0, example.initial_weights()))
    assert moved > 1e-2
