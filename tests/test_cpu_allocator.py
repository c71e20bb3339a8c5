"""TensorFlow's BFC allocator on CPU (`hyperadam_keras.cpu_allocator`): who asks for it, what a late or
contradicted request says, and that it changes no result (the run cache's keys leave it out)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import pytest

from helpers_subprocess import REPO, child_env, kill_group, tf_noise_free
from hyperadam_keras import cpu_allocator

# A fresh process that prints what it found as JSON on its last line: "function" asks for the allocator
# as a user's program would; "command" poses as the command and trains a small MLP with HyperAdam (default
# settings) for a few steps.
_CHILD = r"""
import hashlib, json, os, sys, warnings
mode = sys.argv[1]
if mode == "command":
    sys.argv = ["hyperadam-keras", "--help"]  # what `command_arguments()` recognizes
import hyperadam_keras
asked = None
if mode == "function":
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        asked = hyperadam_keras.use_bfc_cpu_allocator()
    assert not caught, [str(w.message) for w in caught]
    print(json.dumps({"asked": asked, "active": hyperadam_keras.bfc_cpu_allocator_active()}))
    sys.exit(0)
import numpy as np, keras
keras.utils.set_random_seed(0)
x = np.random.default_rng(0).random((256, 64)).astype("float32")
y = np.random.default_rng(1).integers(0, 10, 256)
model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(300, activation="relu"), keras.layers.Dense(10)])
model.compile(optimizer=hyperadam_keras.HyperAdam(),
              loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
model.fit(x, y, batch_size=64, epochs=2, verbose=0, shuffle=False)
digest = hashlib.sha256(b"".join(w.tobytes() for w in model.get_weights())).hexdigest()
print(json.dumps({"variable": os.environ.get("TF_CPU_ALLOCATOR_USE_BFC"),
                  "active": hyperadam_keras.bfc_cpu_allocator_active(), "weights": digest}))
"""


def _start(mode: str, **extra: str) -> subprocess.Popen:
    env = child_env(**extra)
    if cpu_allocator.ALLOCATOR_VARIABLE not in extra:
        env.pop(cpu_allocator.ALLOCATOR_VARIABLE, None)
    return subprocess.Popen([sys.executable, "-c", _CHILD, mode], cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)


def _finish(process: subprocess.Popen) -> dict:
    try:
        output, _ = process.communicate(timeout=240)
    finally:
        kill_group(process)
    assert process.returncode == 0, tf_noise_free(output)[-3000:]
    return json.loads(output.strip().splitlines()[-1])


def test_the_command_and_the_function_use_bfc_and_train_bit_for_bit_as_the_default_allocator():
    """Three fresh processes side by side: the command's default (BFC), the command told otherwise by the
    environment (TensorFlow's default allocator), and a user's program calling `use_bfc_cpu_allocator()`."""
    runs = {"command": _start("command"),
            "command, told otherwise": _start("command", **{cpu_allocator.ALLOCATOR_VARIABLE: "false"}),
            "function": _start("function")}
    found = {name: _finish(process) for name, process in runs.items()}
    assert found["command"]["variable"] == "true" and found["command"]["active"] is True
    assert found["command, told otherwise"]["variable"] == "false"
    assert found["command, told otherwise"]["active"] is False
    assert found["function"]["asked"] is True and found["function"]["active"] is True
    # The allocator decides where tensors live, not what is computed: the same weights to the bit.
    assert found["command"]["weights"] == found["command, told otherwise"]["weights"]


def test_a_late_request_warns_and_says_which_allocator_is_in_use():
    """This process's runtime started long ago (conftest.py), with whichever allocator the environment chose."""
    active = cpu_allocator.bfc_cpu_allocator_active()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert cpu_allocator.use_bfc_cpu_allocator() is active
    if active:
        assert not caught
    else:
        assert len(caught) == 1 and "has started already" in str(caught[0].message)
    other, same = ("default", "bfc") if active else ("bfc", "default")
    cpu_allocator.select_cpu_allocator(same)  # agrees with the running one: nothing to do
    with pytest.raises(RuntimeError, match=f"the '{other}' CPU allocator was asked for after"):
        cpu_allocator.select_cpu_allocator(other)


def test_select_cpu_allocator_rejects_an_unknown_name():
    with pytest.raises(ValueError, match=r"cpu allocator must be one of \('default', 'bfc'\), got 'malloc'"):
        cpu_allocator.select_cpu_allocator("malloc")


@pytest.mark.parametrize("value, expected", [("true", True), ("TRUE", True), (" 1 ", True), ("false", False),
                                             ("0", False), ("yes", False), ("", False)])
def test_requests_bfc_reads_the_variable_as_tensorflow_does(value, expected):
    assert cpu_allocator.requests_bfc(value) is expected


def test_the_commands_request_leaves_a_value_already_set(monkeypatch):
    monkeypatch.setenv(cpu_allocator.ALLOCATOR_VARIABLE, "false")
    cpu_allocator.request_for_the_command()
    assert os.environ[cpu_allocator.ALLOCATOR_VARIABLE] == "false"
    monkeypatch.delenv(cpu_allocator.ALLOCATOR_VARIABLE)
    cpu_allocator.request_for_the_command()
    assert os.environ[cpu_allocator.ALLOCATOR_VARIABLE] == "true"
