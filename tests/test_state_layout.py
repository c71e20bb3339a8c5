"""The coordinates-last slot layout, and files of the earlier layout: a `.keras` file and
`tf.train.Checkpoint`s written by the last [S…, K] version (tests/data/state_layout_v1, made by its
`make_fixtures.py` at f988e4c) load, and training on from them gives what that version computed."""

import importlib.util
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import numpy_reference as ref
from hyperadam_keras import HyperAdam, state_layout
from hyperadam_keras.optimizer import SLOT_NAMES

FIXTURES = Path(__file__).resolve().parent / "data" / "state_layout_v1"
_spec = importlib.util.spec_from_file_location("state_layout_v1_fixtures", FIXTURES / "make_fixtures.py")
fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fixtures)

TOL = 1e-5  # the earlier version ran the same math with its products in the other orientation


def assert_continues_as_the_earlier_version(net):
    """`net` (restored at step 3) trained 3 more steps ends where the earlier version did, slots included."""
    fixtures.fit(net)
    expected = np.load(FIXTURES / "continued.npz")
    weights = net.get_weights()
    w_expected = [expected[f"weight/{i}"] for i in range(len(weights))]
    assert ref.rel_err(ref.flatten(weights), ref.flatten(w_expected)) < TOL
    for i, variable in enumerate(net.trainable_variables):
        for name in SLOT_NAMES:
            earlier = expected[f"slot/{i}/{name}"]  # S + (K,)
            slot = net.optimizer.slots(variable)[name].numpy()
            assert slot.shape == (earlier.shape[-1],) + earlier.shape[:-1]
            assert ref.rel_err(slot, np.moveaxis(earlier, -1, 0)) < TOL, (i, name)


def test_slots_are_coordinates_last():
    net = fixtures.model()
    net.optimizer.build(net.trainable_variables)
    J, H = net.optimizer.num_candidates, net.optimizer.hidden
    for variable in net.trainable_variables:
        for name, slot in net.optimizer.slots(variable).items():
            assert tuple(slot.shape) == ((H,) if name in ("h", "c") else (J,)) + tuple(variable.shape)
            assert isinstance(slot, state_layout.StateSlot)
    assert net.optimizer.get_config()["state_layout"] == "coordinates-last"


def test_keras_file_of_the_earlier_layout_loads_and_continues():
    net = keras.saving.load_model(FIXTURES / "model.keras")
    assert net.optimizer.state_layout == "coordinates-first"  # its config has no "state_layout"
    assert int(net.optimizer.iterations) == 3
    # The bias of 20 has slots (20, 20) in both layouts: only the file's layout decides it.
    bias_slot = net.optimizer.slots(net.trainable_variables[1])["m"]
    assert tuple(bias_slot.shape) == (20, 20)
    with zipfile.ZipFile(FIXTURES / "model.keras") as archive:
        assert "state_layout" not in archive.read("config.json").decode()
    assert_continues_as_the_earlier_version(net)


def test_tf_checkpoint_of_the_earlier_layout_restores_and_continues():
    net = fixtures.model()
    net.optimizer.build(net.trainable_variables)
    tf.train.Checkpoint(model=net, optimizer=net.optimizer).read(str(FIXTURES / "ckpt")).assert_existing_objects_matched()
    assert int(net.optimizer.iterations) == 3
    assert_continues_as_the_earlier_version(net)


def _bias_only_run(optimizer, variable, steps):
    """`steps` updates of the fixtures' lone-variable problem (`make_fixtures.bias_only`'s loop)."""
    target = np.linspace(1.0, -1.0, 20).astype(np.float32)
    for _ in range(steps):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.square(variable - target))
        optimizer.apply([tape.gradient(loss, variable)], [variable])


@pytest.mark.parametrize("built", [True, False])
def test_tf_checkpoint_of_the_earlier_layout_where_every_slot_is_ambiguous(built):
    """A lone (20,) variable: every slot is (20, 20) in both layouts; this version writes such slots as
    (20, 20, 1), so a (20, 20) one is the earlier layout's (built, or restored when `apply` builds it)."""
    variable = tf.Variable(np.zeros(20, np.float32))
    optimizer = HyperAdam(meta_params="paper")  # J = H = 20, the fixtures' bundle
    if built:
        optimizer.build([variable])
    status = tf.train.Checkpoint(variable=variable, optimizer=optimizer).read(str(FIXTURES / "bias_only"))
    if built:
        status.assert_existing_objects_matched()
    _bias_only_run(optimizer, variable, 3)
    expected = np.load(FIXTURES / "bias_only_continued.npz")
    assert ref.rel_err(variable.numpy(), expected["variable"]) < TOL
    for name, slot in optimizer.slots(variable).items():
        assert ref.rel_err(slot.numpy(), expected[f"slot/{name}"].T) < TOL, name


def test_tf_checkpoint_of_this_layout_keeps_ambiguous_slots_as_they_are(tmp_path):
    """The same lone (20,) variable saved by this version: its slots are stored (20, 20, 1), so nothing is
    transposed, and training on equals never stopping."""
    start = np.linspace(-1.0, 1.0, 20).astype(np.float32)
    never = tf.Variable(start)
    never_opt = HyperAdam(meta_params="paper")  # J = H = 20: every slot of a (20,) variable is (20, 20)
    _bias_only_run(never_opt, never, 6)

    variable, optimizer = tf.Variable(start), HyperAdam(meta_params="paper")
    _bias_only_run(optimizer, variable, 3)
    prefix = tf.train.Checkpoint(variable=variable, optimizer=optimizer).write(str(tmp_path / "ckpt"))
    stored = dict(tf.train.list_variables(prefix))
    assert sorted(shape for shape in stored.values() if len(shape) == 3) == [[20, 20, 1]] * 6
    restored_variable, restored = tf.Variable(np.zeros(20, np.float32)), HyperAdam(meta_params="paper")
    restored.build([restored_variable])
    tf.train.Checkpoint(variable=restored_variable, optimizer=restored).read(prefix).assert_existing_objects_matched()
    for name, slot in optimizer.slots(variable).items():
        np.testing.assert_array_equal(restored.slots(restored_variable)[name].numpy(), slot.numpy())
    _bias_only_run(restored, restored_variable, 3)
    np.testing.assert_array_equal(restored_variable.numpy(), never.numpy())
    for name, slot in never_opt.slots(never).items():
        np.testing.assert_array_equal(restored.slots(restored_variable)[name].numpy(), slot.numpy())


def test_keras_file_of_this_layout_round_trips(tmp_path):
    net = fixtures.model()
    fixtures.fit(net)
    net.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert loaded.optimizer.state_layout == "coordinates-last"
    for v_old, v_new in zip(net.trainable_variables, loaded.trainable_variables):
        for name, slot in net.optimizer.slots(v_old).items():
            np.testing.assert_array_equal(loaded.optimizer.slots(v_new)[name].numpy(), slot.numpy())


def test_a_slot_of_another_shape_is_a_clear_error_and_nothing_is_assigned():
    net = fixtures.model()
    net.optimizer.build(net.trainable_variables)
    before = [v.numpy().copy() for v in net.optimizer.variables]
    store = {str(i): np.ones(v.shape, np.float32) for i, v in enumerate(net.optimizer.variables)}
    kernel_m = net.optimizer.slots(net.trainable_variables[0])["m"]
    index = next(i for i, v in enumerate(net.optimizer.variables) if v is kernel_m)
    store[str(index)] = np.ones((7, 7, 7), np.float32)
    with pytest.raises(ValueError, match=r"saved optimizer slot has shape \(7, 7, 7\)"):
        net.optimizer.load_own_variables(store)
    for value, variable in zip(before, net.optimizer.variables):
        np.testing.assert_array_equal(variable.numpy(), value)


def test_stored_layout_reads_the_shapes_and_falls_back_on_the_hint():
    last, first = state_layout.COORDINATES_LAST, state_layout.COORDINATES_FIRST
    assert state_layout.stored_layout([(20, 5, 3)], [(5, 3, 20)], last) == first
    assert state_layout.stored_layout([(20, 5, 3)], [(20, 5, 3)], first) == last
    assert state_layout.stored_layout([(20, 20)], [(20, 20)], first) == first  # ambiguous: the hint
    assert state_layout.stored_layout([(20, 20), (20, 5)], [(20, 20), (5, 20)], last) == first
    with pytest.raises(ValueError, match="mix two layouts"):
        state_layout.stored_layout([(20, 5), (20, 3)], [(5, 20), (20, 3)], last)
    assert state_layout.is_ambiguous((20, 20)) and not state_layout.is_ambiguous((1, 20))
    assert not state_layout.is_ambiguous((20,))  # a scalar's slot: one coordinate, the same values
    assert state_layout.checkpoint_shape((20, 20)) == (20, 20, 1)
    assert state_layout.checkpoint_shape((20, 5)) == (20, 5)


def test_state_layout_argument_is_checked():
    with pytest.raises(ValueError, match="state_layout must be one of"):
        HyperAdam(state_layout="rows")


def test_meta_training_checkpoint_of_the_earlier_layout_restores_transposed(tmp_path):
    """A meta-training run's unfinished-task state, saved [n, K] by earlier versions, reads back [K, n]
    (a 20-entry tensor included, whose [20, 20] state is ambiguous by shape)."""
    from hyperadam_keras.lab.meta.checkpoints import UnrollVariables

    shapes, J, H = [(3, 4), (20,)], 5, 20
    rng = np.random.default_rng(0)

    class EarlierUnrollVariables(tf.Module):  # the structure of `UnrollVariables`, state [n, K]
        def __init__(self):
            super().__init__(name="unroll_state")
            self.params = [tf.Variable(rng.normal(size=s).astype(np.float32)) for s in shapes]
            self.opt_state = [[tf.Variable(rng.normal(size=(int(np.prod(s)), H if name in ("h", "c") else J))
                                           .astype(np.float32)) for name in SLOT_NAMES] for s in shapes]
            self.step = tf.Variable(7, dtype=tf.int64)

    earlier = EarlierUnrollVariables()
    prefix = tf.train.Checkpoint(unroll=earlier).write(str(tmp_path / "ckpt"))
    current = UnrollVariables(shapes, J, H)
    tf.train.Checkpoint(unroll=current).read(prefix).assert_existing_objects_matched()
    state = current.load()
    assert int(state.step) == 7
    for old, new in zip(earlier.opt_state, state.opt_state):
        for old_value, new_value in zip(old, new):
            np.testing.assert_array_equal(new_value.numpy(), old_value.numpy().T)
    # and this version's own checkpoint round-trips unchanged
    prefix = tf.train.Checkpoint(unroll=current).write(str(tmp_path / "ckpt2"))
    again = UnrollVariables(shapes, J, H)
    tf.train.Checkpoint(unroll=again).read(prefix).assert_existing_objects_matched()
    for a, b in zip(state.opt_state, again.load().opt_state):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x.numpy(), y.numpy())
