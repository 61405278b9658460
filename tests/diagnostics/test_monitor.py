"""Monitor: per-step records from gradwise.train and from a hand-written loop."""

import math
import pickle

import numpy as np
import pytest

import gradwise
from gradwise import nn, optim
from gradwise.diagnostics.monitor import Monitor, activation_stats


def _net(rng, act=nn.Tanh):
    return nn.Sequential(nn.Linear(3, 5, rng=rng), act(), nn.Linear(5, 1, rng=rng))


def _data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    return X, (X @ [1.0, -1.0, 0.5])[:, None]


def test_record_user_loop_values():
    mon = Monitor()
    w = np.array([3.0, 4.0])
    for t in range(3):
        g = 2 * w
        new = w - 0.25 * g
        mon.record(step=t, loss=float(w @ w), params={"w": new}, grads={"w": g},
                   params_before={"w": w}, lr=0.25)
        w = new
    assert mon.loss == [25.0, 6.25, 1.5625]
    assert mon.grad_norm["w"] == pytest.approx([10.0, 5.0, 2.5])
    # update ratio ‖Δw‖/‖w‖ = 0.25·2 = 0.5 every step
    assert mon.update_ratio["w"] == pytest.approx([0.5, 0.5, 0.5])
    assert mon.lr == [0.25] * 3 and mon.nonfinite is None


def test_record_tuple_params_and_previous_snapshot():
    mon = Monitor()
    W, b = np.ones((2, 2)), np.zeros(2)
    mon.record(loss=1.0, params=(W, b))
    mon.record(loss=0.5, params=(2 * W, b + 1))
    assert mon.steps == [0, 1]
    assert mon.update_ratio["params[0]"] == pytest.approx([1.0])  # ‖W‖/‖W‖
    assert math.isnan(mon.update_ratio["params[1]"][0])  # zero block: ratio undefined
    np.testing.assert_array_equal(mon.initial_params["params[0]"], W)


def test_first_nonfinite_step_and_block():
    mon = Monitor()
    for t in range(5):
        g = {"W": np.ones(2), "b": np.array([np.inf]) if t >= 3 else np.ones(1)}
        mon.record(step=t, loss=1.0 if t < 4 else np.nan, grads=g)
    assert mon.nonfinite == {"step": 3, "block": "b", "what": "grad"}


def test_train_callback_matches_train_result():
    X, y = _data()
    rng = np.random.default_rng(0)
    model = _net(rng)
    mon = Monitor()
    res = gradwise.train(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.05), (X, y),
                         epochs=5, batch_size=10, shuffle=False, callbacks=[mon], progress=False)
    assert len(mon.steps) == res.n_steps == 20
    np.testing.assert_allclose(mon.loss, res.step_loss)
    for name, norms in res.block_grad_norms.items():
        np.testing.assert_allclose(mon.grad_norm[name], norms)
    # update ratio × ‖p_before‖ = ‖Δp‖; summed over blocks it is the step's update norm
    assert set(mon.update_ratio) == set(res.block_grad_norms)
    assert mon.activation_kind == {"1": "tanh"}
    assert len(mon.activations["1"]) == 5  # one value per epoch
    assert mon.model is model and mon._handles == []  # hooks removed at the end
    assert set(mon.initial_params) == set(res.params)


def test_every_thins_records():
    X, y = _data()
    model = _net(np.random.default_rng(1))
    mon = Monitor(every=4)
    gradwise.train(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.01), (X, y), epochs=2,
                   batch_size=5, shuffle=False, callbacks=[mon], progress=False)
    assert mon.steps == [1, 5, 9, 13]


def test_activation_thresholds():
    a = np.array([[0.005, 0.5, 0.995, 0.2]])
    st = activation_stats("sigmoid", a)
    assert st["saturated"] == pytest.approx(0.5)
    assert activation_stats("tanh", np.array([[0.999, -0.995, 0.5, 0.0]]))["saturated"] == 0.5
    relu = activation_stats("relu", np.array([[0.0, 1.0, 0.0], [0.0, 2.0, 0.5]]))
    assert relu["dead"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="kind must be"):
        activation_stats("softmax", a)


def test_probe_saturation_and_dead_units():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3))
    sig = nn.Sequential(nn.Linear(3, 4, rng=rng), nn.Sigmoid())
    sig[0].weight.data[...] = 0.0
    sig[0].bias.data[...] = [10.0, -10.0, 10.0, -10.0]  # sigmoid(±10) is 4.5e-5 from 0 or 1
    assert Monitor().probe(sig, X)["1"]["saturated"] == pytest.approx(1.0)
    relu = nn.Sequential(nn.Linear(3, 4, rng=rng), nn.ReLU())
    relu[0].bias.data[...] = [-100.0, -100.0, 0.0, 0.0]
    assert Monitor().probe(relu, X)["1"]["dead"] == pytest.approx(0.5)


def test_monitor_pickles_without_model_and_validates():
    X, y = _data()
    model = _net(np.random.default_rng(2))
    mon = Monitor()
    gradwise.train(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.01), (X, y), epochs=1,
                   callbacks=[mon], progress=False)
    back = pickle.loads(pickle.dumps(mon))
    assert back.loss == mon.loss and back.model is None
    assert mon.to_dict()["steps"] == mon.steps
    with pytest.raises(ValueError, match="every must be a positive integer"):
        Monitor(every=0)


def test_hand_written_layer_activations_reach_diagnose():
    from gradwise.diagnostics.diagnosis import diagnose

    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 5)) * 50  # raw, large inputs saturate a sigmoid layer
    W = rng.normal(size=(5, 8)) * 0.5
    mon = Monitor()
    for step in range(3):
        a = 1 / (1 + np.exp(-(X @ W)))
        mon.record(step=step, loss=1.0 - 0.1 * step)
        mon.record_activation("hidden", "sigmoid", a)
    mon.close_window()
    assert mon.activations["hidden"][0][1] > 0.5
    d = diagnose(history=mon, lr=0.1)
    f = [x for x in d.findings if x.code == "activations.saturated"][0]
    assert f.location == "layer hidden"
    ok = Monitor()
    ok.record(step=0, loss=1.0)
    ok.record_activation("hidden", "sigmoid", 1 / (1 + np.exp(-(X / 50) @ W)))
    ok.close_window()
    assert "activations.saturated" not in diagnose(history=ok, lr=0.1).codes()


def test_update_ratio_in_train_equals_lr_grad_over_param():
    # plain SGD: ‖Δp‖ = lr·‖g‖, so the ratio is lr·‖g‖/‖p_before‖ at every recorded step
    X, y = _data()
    model = _net(np.random.default_rng(3))
    W0 = model[0].weight.data.copy()
    mon = Monitor(ratio_every=1)
    gradwise.train(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.05), (X, y), epochs=2,
                   batch_size=20, shuffle=False, callbacks=[mon], progress=False)
    g0 = mon.grad_norm["0.weight"][0]
    assert mon.update_ratio["0.weight"][0] == pytest.approx(0.05 * g0 / np.linalg.norm(W0))
    assert len(mon.update_ratio["0.weight"]) == 4
    sparse = Monitor()  # default ratio_every=10, but train() measures ‖Δp‖ itself: every step
    net2 = _net(np.random.default_rng(3))
    gradwise.train(net2, nn.MSELoss(), optim.SGD(net2.parameters(), lr=0.05), (X, y), epochs=6,
                   batch_size=20, shuffle=False, callbacks=[sparse], progress=False)
    assert len(sparse.steps) == 12 and len(sparse.update_ratio["0.weight"]) == 12
