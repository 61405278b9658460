"""gradwise.compile / value_and_grad(compile=True): the replay must give exactly the
eager engine's values and gradients, trace again when it has to, and run eagerly
(with a GraphBreakWarning) whenever a replay could differ."""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pytest
from specs import SPECS, cotangent

import gradwise as gw
from gradwise import nn
from gradwise.autodiff.compile import MAX_TRACES, GraphBreakWarning

CASES = [pytest.param(s, shapes, id=f"{s.name}-{'x'.join(map(str, shapes))}")
         for s in SPECS for shapes in s.shapes]


def _eager_and_compiled(fn, arrays, w):
    """Value and gradients of sum(fn(*x) * w), eagerly and through gw.compile (two calls
    of the compiled function on different inputs: a trace, then a replay)."""
    comp = gw.compile(fn)
    results = []
    for xs in arrays:
        pair = []
        for f in (fn, comp):
            ts = [gw.tensor(x, requires_grad=True) for x in xs]
            out = f(*ts)
            (out * w).sum().backward()
            pair.append((out.data, [t.grad.data if t.grad is not None else None for t in ts]))
        results.append(pair)
    return comp, results


def _assert_identical(a, b):
    assert (a is None) == (b is None)
    if a is not None:
        a, b = np.asarray(a), np.asarray(b)
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("s, shapes", CASES)
def test_compiled_spec_functions_equal_eager_bit_for_bit(s, shapes):
    arrays = [s.inputs(shapes), s.inputs(shapes, salt="second call")]
    w = cotangent(np.shape(s.gw(*[gw.tensor(x) for x in arrays[0]]).data))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GraphBreakWarning)
        _, results = _eager_and_compiled(s.gw, arrays, w)
    for (ev, eg), (cv, cg) in results:
        _assert_identical(ev, cv)
        for a, b in zip(eg, cg):
            _assert_identical(a, b)


def test_most_spec_functions_compile_rather_than_fall_back():
    compiled, broke = 0, []
    for s in SPECS:
        shapes = s.shapes[-1]
        comp = gw.compile(s.gw)
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            comp(*[gw.tensor(x, requires_grad=True) for x in s.inputs(shapes)])
        if any(issubclass(r.category, GraphBreakWarning) for r in rec):
            broke.append(s.name)
        else:
            compiled += 1
            assert all(p is not None for p in comp.traces.values())
    assert compiled >= 0.85 * len(SPECS), broke


# ----------------------------------------------------------------- training
def _xor_params():
    rng = np.random.default_rng(3)
    return [rng.normal(0, 1, (2, 3)), np.zeros(3), rng.normal(0, 1, (3, 1)), np.zeros(1)]


X_XOR = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
Y_XOR = np.array([[0], [1], [1], [0]], dtype=float)


def _xor_loss(p, X, Y):
    W1, b1, W2, b2 = p
    h = np.tanh(X @ W1 + b1)
    out = gw.sigmoid(h @ W2 + b2)
    return np.mean((out - Y) ** 2)


def test_compiled_value_and_grad_follows_the_eager_trajectory_exactly():
    eager, comp = gw.value_and_grad(_xor_loss), gw.value_and_grad(_xor_loss, compile=True)
    pe, pc = _xor_params(), _xor_params()
    for _ in range(300):
        le, ge = eager(pe, X_XOR, Y_XOR)
        lc, gc = comp(pc, X_XOR, Y_XOR)
        assert le == lc
        for a, b, g1, g2 in zip(pe, pc, ge, gc):
            np.testing.assert_array_equal(g1, g2)
            a -= 0.5 * g1
            b -= 0.5 * g2
    assert le < 0.05  # it does learn XOR
    assert len(comp.cache.traces) == 1


def test_compiled_grad_keeps_structure_and_float32():
    def f(p, x):
        return ((x @ p["W"] + p["b"]) ** 2).sum()

    p = {"W": np.ones((3, 2), np.float32), "b": np.zeros(2, np.float32)}
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    g = gw.grad(f, compile=True)(p, x)
    ge = gw.grad(f)(p, x)
    assert set(g) == {"W", "b"} and g["W"].dtype == np.float32
    for k in g:
        np.testing.assert_array_equal(g[k], ge[k])
    # the data argument is an input, not a constant of the trace
    g2 = gw.grad(f, compile=True)
    g2(p, x)
    np.testing.assert_array_equal(g2(p, 2 * x)["W"], gw.grad(f)(p, 2 * x)["W"])


def test_compiled_module_step_with_class_labels_equals_eager_per_batch():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(70, 5))
    y = rng.integers(0, 3, 70)

    def make():
        model = nn.Sequential(nn.Linear(5, 8, rng=1), nn.ReLU(), nn.Linear(8, 3, rng=2))
        return model, nn.CrossEntropyLoss(), gw.optim.SGD(model.parameters(), lr=0.1)

    (me, le, oe), (mc, lc, oc) = make(), make()
    step = gw.compile(lambda xb, yb: lc(mc(xb), yb))

    def one_step(opt, f, xb, yb):
        opt.zero_grad()
        loss = f(xb, yb)
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(3):
        for i in range(0, 70, 32):  # the last batch has 6 rows: a second trace
            xb, yb = X[i:i + 32], y[i:i + 32]
            assert one_step(oe, lambda a, b: le(me(a), b), xb, yb) == one_step(oc, step, xb, yb)
    for pe, pc in zip(me.parameters(), mc.parameters()):
        np.testing.assert_array_equal(pe.data, pc.data)
    assert len(step.traces) == 2 and all(p is not None for p in step.traces.values())


def test_labels_and_data_are_inputs_not_constants():
    w = gw.tensor(np.ones((4, 3)), requires_grad=True)
    f = gw.compile(lambda x, t: gw.nn.functional.cross_entropy(x @ w, t))
    x = np.eye(4)
    a = f(x, np.array([0, 1, 2, 0])).item()
    b = f(x, np.array([2, 2, 2, 2])).item()
    assert a == gw.nn.functional.cross_entropy(x @ w, np.array([0, 1, 2, 0])).item()
    assert b == gw.nn.functional.cross_entropy(x @ w, np.array([2, 2, 2, 2])).item()


def test_captured_parameters_are_read_at_each_call():
    w = gw.tensor([1.0, 2.0], requires_grad=True)
    f = gw.compile(lambda x: ((x @ w) ** 2).mean())
    x = np.array([[1.0, 1.0], [0.5, -1.0]])
    f(x).backward()
    with gw.no_grad():
        w -= 0.1 * w.grad  # in place
    w.grad = None
    out = f(x)
    assert out.item() == ((x @ w.detach().data) ** 2).mean()
    w.data = np.array([3.0, -1.0])  # rebound
    assert f(x).item() == ((x @ np.array([3.0, -1.0])) ** 2).mean()
    w.data = np.array([1.0, 1.0, 1.0])  # another shape: a new trace
    x3 = np.ones((2, 3))
    assert f(x3).item() == 9.0


def test_frozen_parameter_change_traces_again():
    w = gw.tensor([1.0, 2.0], requires_grad=True)
    v = gw.tensor([3.0, 4.0])
    f = gw.compile(lambda x: (x * w * v).sum())
    f(np.ones(2)).backward()
    assert v.grad is None
    v.requires_grad_(True)
    f(np.ones(2)).backward()
    np.testing.assert_array_equal(v.grad.data, [1.0, 2.0])


# ------------------------------------------------------------- graph breaks
@pytest.mark.parametrize("fn, reason", [
    (lambda x: x.sum() * 2 if x.sum() > 0 else x.sum(), "truth test"),
    (lambda x: (x * x).sum() if float(x.sum().detach().data) > 0 else x.sum(), "detach"),
    (lambda x: x.sum() * float(np.max(np.abs(x.detach().data))), "detach"),
    (lambda x: x.std(), "std()"),
    (lambda x: (x * np.argmax(x)).sum(), "np.argmax"),
])
def test_value_dependent_functions_run_eagerly_with_a_warning(fn, reason):
    comp = gw.compile(fn)
    for x in (np.array([1.0, -2.0, 3.0]), np.array([-1.0, 2.0, -3.0])):
        te, tc = gw.tensor(x, requires_grad=True), gw.tensor(x, requires_grad=True)
        with pytest.warns(GraphBreakWarning, match="runs eagerly") if te.data[0] > 0 else \
                warnings.catch_warnings():
            out = comp(tc)
        fn(te).backward()
        out.backward()
        assert out.item() == fn(gw.tensor(x)).item()
        np.testing.assert_array_equal(te.grad.data, tc.grad.data)
    assert list(comp.traces.values()) == [None]


def test_value_escape_names_the_reason():
    comp = gw.compile(lambda x: x.sum() if bool((x > 0).sum() > 1) else -x.sum())
    with pytest.warns(GraphBreakWarning, match="truth test"):
        comp(gw.tensor([1.0, -1.0], requires_grad=True))


@pytest.mark.parametrize("fn", [
    lambda x: gw.where(x > 0, x, 0.1 * x).sum(),
    lambda x: (x * (x > 0)).sum(),
    lambda x: np.where(np.greater(x, 0.5), x ** 2, -x).sum(),
    lambda x: (x * np.logical_and(x > -1, x < 1)).sum() + np.floor(x).sum() * 0,
    lambda x: gw.where(x == x.max(), x, 0.0).sum(),
])
def test_masks_computed_from_the_data_are_recomputed_by_each_replay(fn):
    comp = gw.compile(fn)
    with warnings.catch_warnings():
        warnings.simplefilter("error", GraphBreakWarning)
        for v in ([1.0, -2.0, 0.3], [-1.0, 2.0, 0.7], [0.6, 0.2, -0.4], [3.0, 0.9, -0.1]):
            te, tc = gw.tensor(v, requires_grad=True), gw.tensor(v, requires_grad=True)
            fn(te).backward()
            out = comp(tc)
            out.backward()
            assert out.item() == fn(gw.tensor(v)).item()
            np.testing.assert_array_equal(te.grad.data, tc.grad.data)
    assert all(p is not None and p.confirmed for p in comp.traces.values())


def test_forward_hooks_prevent_compilation():
    model = nn.Sequential(nn.Linear(2, 2, rng=0), nn.Tanh())
    seen = []
    model[1].register_forward_hook(lambda m, a, out: seen.append(out.shape))
    comp = gw.compile(lambda x: model(x).sum())
    with pytest.warns(GraphBreakWarning, match="hooks"):
        comp(np.ones((3, 2)))
    comp(np.ones((3, 2)))
    assert len(seen) >= 2  # the hook ran at every call: eager


def test_too_many_signatures_fall_back_to_eager():
    comp = gw.compile(lambda x, k: (x * k).sum())
    x = gw.tensor([1.0, 2.0], requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", GraphBreakWarning)
        for k in range(MAX_TRACES):
            assert comp(x, k).item() == 3.0 * k
    with pytest.warns(GraphBreakWarning, match="more than"):
        assert comp(x, 100).item() == 300.0


def test_create_graph_through_a_compiled_call_is_refused_clearly():
    x = gw.tensor([1.0, 2.0], requires_grad=True)
    comp = gw.compile(lambda t: (t ** 3).sum())
    with pytest.raises(NotImplementedError, match="create_graph"):
        comp(x).backward(create_graph=True)


def test_in_place_change_between_forward_and_backward_is_caught():
    w = gw.tensor([1.0, 2.0], requires_grad=True)
    comp = gw.compile(lambda x: (x * w).sum())
    out = comp(np.ones(2))
    with gw.no_grad():
        w -= 1.0
    with pytest.raises(RuntimeError, match="modified"):
        out.backward()


def test_no_grad_call_and_non_tensor_result():
    comp = gw.compile(lambda x: (x ** 2).sum())
    with gw.no_grad():
        out = comp(gw.tensor([1.0, 2.0], requires_grad=True))
    assert out.item() == 5.0 and not out.requires_grad
    bad = gw.value_and_grad(lambda x: float((x ** 2).sum()), compile=True)
    with pytest.warns(GraphBreakWarning), pytest.raises(TypeError):
        bad(np.array([1.0]))


def test_compile_rejects_a_non_callable():
    with pytest.raises(TypeError, match="expects a function"):
        gw.compile(3)


def test_train_with_compile_gives_the_eager_result_exactly():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(50, 4)).astype(np.float32)
    y = rng.integers(0, 3, 50)
    runs = []
    for compiled in (False, True):
        model = nn.Sequential(nn.Linear(4, 6, rng=0, dtype=np.float32), nn.Tanh(),
                              nn.Linear(6, 3, rng=1, dtype=np.float32))
        opt = gw.optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
        with warnings.catch_warnings():
            warnings.simplefilter("error", GraphBreakWarning)
            res = gw.train(model, nn.CrossEntropyLoss(), opt, (X, y), epochs=5, batch_size=16,
                           seed=0, progress=False, compile=compiled)
        runs.append((res, [p.data.copy() for p in model.parameters()]))
    (r0, p0), (r1, p1) = runs
    np.testing.assert_array_equal(r0.step_loss, r1.step_loss)
    np.testing.assert_array_equal(r0.loss_curve, r1.loss_curve)
    assert len(r0.step_loss) == 20
    for a, b in zip(p0, p1):
        assert a.dtype == np.float32
        np.testing.assert_array_equal(a, b)


def test_returned_gradients_own_their_memory():
    vg = gw.grad(lambda a, b: (a + b).sum() + (a * 0).sum(), argnums=(0, 1), compile=True)
    for _ in range(3):
        ga, gb = vg(np.ones(3), np.ones(3))
        np.testing.assert_array_equal(ga, [1.0, 1.0, 1.0])
        np.testing.assert_array_equal(gb, [1.0, 1.0, 1.0])
        assert not np.shares_memory(ga, gb)
        ga *= 5  # must not change gb, nor the next call's result
        np.testing.assert_array_equal(gb, [1.0, 1.0, 1.0])
    g = gw.grad(lambda x: x + 0.0, compile=True)  # the seed itself reaches the input
    for _ in range(3):
        out = g(np.array(2.0))
        assert out == 1.0
        out *= 7


# ------------------------------------------- found by an adversarial review
def _agrees_with_eager(fn, calls):
    comp = gw.compile(fn)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GraphBreakWarning)
        for args in calls:
            got, want = comp(*args), fn(*args)
            _assert_identical(np.asarray(got.data), np.asarray(want.data))
    return comp


@pytest.mark.parametrize("fn", [
    lambda x: x * x.sum().item(),
    lambda x: x * int(x[0]),
    lambda x: x * 2 if x.sum() else x * 3,
    lambda x: x * max(x.tolist()),
])
def test_python_values_taken_from_traced_tensors_are_not_frozen(fn):
    t = [(gw.tensor([1.0, 2.0]),), (gw.tensor([3.0, -3.0]),), (gw.tensor([0.5, 4.0]),)]
    comp = _agrees_with_eager(fn, t)
    assert list(comp.traces.values()) == [None]


def test_negative_zero_is_its_own_constant():
    _agrees_with_eager(lambda x, s: x * s, [(gw.tensor([1.0, 2.0]), 0.0),
                                            (gw.tensor([1.0, 2.0]), -0.0)])


def test_an_input_that_is_also_a_global_array_is_not_confused_with_it():
    target = np.array([1.0, 2.0, 3.0])
    f = lambda x: ((x - target) ** 2).sum()  # noqa: E731
    vg = gw.value_and_grad(f, compile=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GraphBreakWarning)
        for x in (target, np.zeros(3), np.ones(3)):
            v, g = vg(x)
            ve, ge = gw.value_and_grad(f)(x)
            assert v == ve
            np.testing.assert_array_equal(g, ge)


def test_the_same_array_twice_then_two_arrays():
    table = gw.tensor(np.arange(10.0), requires_grad=True)
    f = lambda i, j: (table[i] * table[j]).sum()  # noqa: E731
    a = np.array([1, 2, 3])
    _agrees_with_eager(f, [(a, a), (np.array([7, 8, 9]), np.array([4, 5, 6])), (a, a)])


def test_targets_get_the_input_dtype_while_tracing_too():
    x = gw.tensor(np.array([0.1, 0.2, 0.3], np.float32), requires_grad=True)
    t = np.array([0.5, 0.1, 0.7])
    comp = _agrees_with_eager(lambda a, b: nn.functional.mse_loss(a, b), [(x, t), (x, 2 * t)])
    assert comp(x, t).dtype == np.float32


def test_input_checks_still_run_in_replays():
    f = gw.compile(lambda z, t: nn.functional.cross_entropy(z, t))
    z = np.zeros((2, 3))
    f(z, np.array([0, 2]))
    f(z, np.array([1, 2]))
    with pytest.raises(ValueError, match="class indices"):
        f(z, np.array([-1, 2]))
    with pytest.raises(ValueError, match="class indices"):
        f(z, np.array([0, 3]))
    bce = gw.compile(lambda p, t: nn.functional.binary_cross_entropy(p, t))
    with pytest.warns(GraphBreakWarning, match="probabilities"):
        bce(np.array([0.5, 0.5]), np.array([1.0, 0.0]))
    with pytest.raises(ValueError, match="probabilities"):
        bce(np.array([1.5, -0.5]), np.array([1.0, 0.0]))


def test_in_place_update_of_a_used_intermediate():
    def f(x):
        y = x * 1.0
        z = y * 2
        y += 1.0
        return z + y

    _agrees_with_eager(f, [(gw.tensor([1.0, 2.0], requires_grad=True),),
                           (gw.tensor([3.0, 5.0], requires_grad=True),)])


def test_boolean_mask_inputs_are_not_replayed():
    b = gw.tensor([2.0], requires_grad=True)
    f = lambda x, m: (x[m] * b).sum()  # noqa: E731
    x = np.array([1.0, 2.0, 3.0])
    comp = gw.compile(f)
    with pytest.warns(GraphBreakWarning, match="boolean"):
        comp(x, np.array([True, False, False])).backward()
    b.grad = None
    comp(x, np.array([True, True, True])).backward()
    assert b.grad.item() == 6.0


def test_ordered_dict_parameters():
    from collections import OrderedDict

    p = OrderedDict(W=np.ones((2, 2)), b=np.zeros(2))
    f = lambda p, x: ((x @ p["W"] + p["b"]) ** 2).sum()  # noqa: E731
    v, g = gw.value_and_grad(f, compile=True)(p, np.ones((3, 2)))
    ve, ge = gw.value_and_grad(f)(p, np.ones((3, 2)))
    assert v == ve and type(g) is type(ge) and set(g) == {"W", "b"}  # a dict, as eagerly


def test_rebinding_a_captured_name_traces_again():
    global _W
    _W = gw.tensor([1.0, 1.0], requires_grad=True)
    f = gw.compile(lambda x: (x * _W).sum())
    for _ in range(3):
        loss = f(np.array([1.0, 2.0]))
        loss.backward()
        assert loss.item() == float((np.array([1.0, 2.0]) * _W.data).sum())
        _W = gw.tensor(_W.data - 0.5 * _W.grad.data, requires_grad=True)  # rebound


def test_replacing_a_module_parameter_traces_again():
    model = nn.Linear(2, 1, rng=0)
    f = gw.compile(lambda x: model(x).sum())
    x = np.ones((3, 2))
    for _ in range(3):
        f(x)
    model.weight = nn.Parameter(np.array([[2.0, 3.0]]))
    out = f(x)
    assert out.item() == model(x).sum().item() == 3 * (5.0 + model.bias.item())
    out.backward()
    np.testing.assert_array_equal(model.weight.grad.data, [[3.0, 3.0]])


# ------------------------------------ found by a second adversarial review
def test_dict_parameters_keep_their_structure_on_every_call():
    f = lambda p, x: ((x @ p["W"]) + p["b"]).sum()  # noqa: E731
    g = gw.grad(f, compile=True)
    p, x = {"W": np.ones((2, 2)), "b": np.zeros(2)}, np.ones((3, 2))
    for _ in range(4):
        out = g(p, x)
        assert set(out) == {"W", "b"}
        np.testing.assert_array_equal(out["W"], np.full((2, 2), 3.0))


def test_array_keywords_and_tensor_arguments_are_inputs():
    f = lambda w, X, y=None: (((X @ w) - y) ** 2).mean()  # noqa: E731
    vg = gw.value_and_grad(f, compile=True)
    w, X = np.array([1.0, -1.0]), np.array([[1.0, 2.0]])
    for y in (np.array([0.5]), np.array([0.5]), np.array([4.0]), np.array([-1.0])):
        assert vg(w, X, y=y)[0] == gw.value_and_grad(f)(w, X, y=y)[0]
    for Xt in (gw.tensor([[1.0, 2.0]]), gw.tensor([[1.0, 2.0]]), gw.tensor([[3.0, 0.0]])):
        assert vg(w, Xt, y=np.array([0.5]))[0] == gw.value_and_grad(f)(w, Xt, y=np.array([0.5]))[0]
    comp = gw.compile(lambda x, s=None: (x * s).sum())
    x = gw.tensor([1.0, 2.0], requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", GraphBreakWarning)
        for s in (np.ones(2), np.ones(2), np.full(2, 3.0)):
            assert comp(x, s=s).item() == (np.array([1.0, 2.0]) * s).sum()
    with pytest.warns(GraphBreakWarning, match="not a Tensor"):
        comp(np.ones(2), s=np.ones(2))


def test_compiled_module_and_module_state_are_guarded():
    model = nn.Linear(2, 1, rng=0)
    f, x = gw.compile(model), np.ones((3, 2))
    f(x)
    f(x)
    model.weight = nn.Parameter(np.array([[2.0, 3.0]]))
    np.testing.assert_array_equal(f(x).data, model(x).data)

    class Scale(nn.Module):
        def __init__(self):
            super().__init__()
            self.s = 1.0

        def forward(self, x):
            return x * (2.0 if self.training else 1.0) * self.s

    m = nn.Sequential(nn.Linear(2, 2, rng=0), Scale())
    g = gw.compile(lambda x: m(x).sum())
    g(x)
    g(x)
    m.eval()
    assert g(x).item() == m(x).sum().item()
    m[1].s = 3.0
    assert g(x).item() == m(x).sum().item()


_HELPER_W = gw.tensor([1.0, 1.0], requires_grad=True)
_SCALE = np.float32(0.5)
_USE_BIAS = True


def _predict(x):
    return x @ _HELPER_W + (1.0 if _USE_BIAS else 0.0)


def test_globals_read_by_helpers_and_values_of_any_type_are_guarded():
    global _HELPER_W, _SCALE, _USE_BIAS
    f = gw.compile(lambda x: (_predict(x) ** 2 * _SCALE).sum())
    x = np.array([[1.0, 2.0]])
    for step in range(6):
        assert f(x).item() == ((_predict(x) ** 2) * _SCALE).sum().item()
        if step == 2:
            _HELPER_W = gw.tensor([3.0, 3.0], requires_grad=True)
        if step == 3:
            _SCALE = np.float32(2.0)
        if step == 4:
            _USE_BIAS = False


def test_numpy_negative_zero_and_nan_arguments():
    f = gw.compile(lambda x, s: (x / s).sum())
    x = gw.tensor([1.0, 2.0])
    for s in (np.float32(0.0), np.float32(0.0), np.float32(-0.0)):
        with np.errstate(divide="ignore"):
            assert f(x, s).item() == (x / s).sum().item()
    for _ in range(5):
        f(x, float("nan"))
    assert len(f.traces) == 3


def test_a_global_changing_at_every_call_stops_retracing():
    state = {"n": 0}

    def loss(w):
        state["n"] += 1
        return (w * _counter()).sum()

    comp = gw.compile(loss)
    w = gw.tensor([1.0, 2.0], requires_grad=True)
    with pytest.warns(GraphBreakWarning, match="keeps changing"):
        for _ in range(30):
            global _COUNT
            _COUNT += 1
            assert comp(w).item() == 3.0 * _COUNT
    assert state["n"] < 30 + 2 * 10  # traces stopped


_COUNT = 0


def _counter():
    return _COUNT


def test_equal_constant_tensors_made_inside_the_function_compile():
    f = gw.compile(lambda x: (x * gw.tensor([2.0, 3.0])).sum())
    with warnings.catch_warnings():
        warnings.simplefilter("error", GraphBreakWarning)
        for v in ([1.0, 1.0], [2.0, 0.5], [0.0, 4.0]):
            assert f(np.array(v)).item() == float(np.dot(v, [2.0, 3.0]))
    assert all(p is not None and p.confirmed for p in f.traces.values())


# ------------------------------------- found by a third adversarial review
@pytest.mark.parametrize("fn", [
    lambda z: z[z > 0].sum(),
    lambda z: z.sum() * len(z[z > 0]),
    lambda z: np.mean(z ** 2, where=z > 0),
    lambda z: z[np.where(z > 0)].sum(),
    lambda z: (np.sort(z) * np.array([1.0, 10.0, 100.0])).sum(),
    lambda z: (z * np.floor(z).data).sum(),
])
def test_values_of_masks_and_sort_orders_are_never_frozen(fn):
    calls = [(gw.tensor([1.0, -1.0, 2.0], requires_grad=True),),
             (gw.tensor([2.0, -2.0, 4.0], requires_grad=True),),
             (gw.tensor([-1.0, 1.0, 2.5], requires_grad=True),)]
    comp = gw.compile(fn)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GraphBreakWarning)
        for (t,) in calls:
            te = gw.tensor(t.data, requires_grad=True)
            fn(te).backward()
            out = comp(t)
            out.backward()
            assert out.item() == fn(gw.tensor(t.data)).item()
            np.testing.assert_array_equal(t.grad.data, te.grad.data)


def test_masked_assignment_in_a_module_trains_like_eager():
    class HandRelu(nn.Module):
        def forward(self, x):
            h = x * 1.0
            h[h < 0] = 0.0
            return h

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(30, 3)), rng.normal(size=(30, 1))
    finals = []
    for compiled in (False, True):
        model = nn.Sequential(nn.Linear(3, 8, rng=0), HandRelu(), nn.Linear(8, 1, rng=1))
        opt = gw.optim.Adam(model.parameters(), lr=0.003)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", GraphBreakWarning)
            r = gw.train(model, nn.MSELoss(), opt, (X, y), epochs=30, progress=False,
                         compile=compiled)
        finals.append(r.step_loss[-1])
    assert finals[0] == finals[1]


def test_value_only_compiled_results_need_no_gradient():
    for fn in (lambda z: z > 0, lambda z: np.floor(1.5 * z)):
        out = gw.compile(fn)(gw.tensor([1.0, -2.0], requires_grad=True))
        assert not out.requires_grad
        with pytest.raises(RuntimeError, match="does not require grad"):
            out.sum().backward()


# ------------------------------------ found by a fourth adversarial review
def test_calls_under_no_grad_run_eagerly():
    W = gw.tensor([0.5, -1.5, 2.0], requires_grad=True)
    f = lambda x: (x * W).sum() * (2.0 if gw.is_grad_enabled() else 3.0)  # noqa: E731
    c, x = gw.compile(f), np.array([1.0, 2.0, 3.0])
    c(x)
    c(x)
    with gw.no_grad():
        assert c(x).item() == f(x).item() == 10.5
    assert c(x).item() == 7.0


_PARAMS_LIST = [gw.tensor([1.0, 2.0], requires_grad=True)]
_CFG = {"scale": 2.0}


def test_items_of_lists_and_dicts_it_reads_are_guarded():
    f = lambda x: (x * _PARAMS_LIST[0]).sum() * _CFG["scale"]  # noqa: E731
    c, x = gw.compile(f), np.array([1.0, 1.0])
    assert c(x).item() == c(x).item() == 6.0
    _PARAMS_LIST[0] = gw.tensor([10.0, 20.0], requires_grad=True)
    _CFG["scale"] = 5.0
    assert c(x).item() == f(x).item() == 150.0


def test_nested_compiled_functions_are_inlined_and_module_side_effects_run_eagerly():
    inner = gw.compile(lambda x: (x ** 2).sum())
    outer = gw.compile(lambda x: inner(x) * 2)
    x = gw.tensor([1.0, 2.0], requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", GraphBreakWarning)
        for i in range(4):
            if i == 2:
                inner(x)  # a confirmed inner program, recorded as one node: inlined
                inner(x)
            out = outer(x)
            assert out.item() == 10.0
            x.grad = None
            out.backward()
            np.testing.assert_array_equal(x.grad.data, [4.0, 8.0])

    class Counted(nn.Module):
        def __init__(self):
            super().__init__()
            self.calls = 0

        def forward(self, x):
            self.calls += 1
            return x * 2

    m = Counted()
    c = gw.compile(lambda x: m(x).sum())
    with pytest.warns(GraphBreakWarning, match="module state"):
        c(x)
    before = m.calls
    c(x)
    assert m.calls == before + 1  # eager from then on: once per call


def test_switching_modes_and_other_modules_does_not_disable_compilation():
    model = nn.Sequential(nn.Linear(2, 3, rng=0), nn.Tanh(), nn.Linear(3, 1, rng=1))
    other = nn.Linear(2, 2, rng=2)
    f = gw.compile(lambda x: model(x).sum())
    x = np.ones((4, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error", GraphBreakWarning)
        for _ in range(3 * MAX_TRACES):
            f(x).backward()
            model.eval()
            with gw.no_grad():
                model(x)
            model.train()
            other.train()  # unrelated module changes
            other.bias = nn.Parameter(np.zeros(2))
    (prog,) = f.traces.values()
    assert prog is not None and prog.confirmed


# ------------------------------------- found by a fifth adversarial review
def test_train_and_eval_modes_keep_one_program_each():
    m = nn.Sequential(nn.Linear(6, 16, rng=0), nn.ReLU(), nn.Linear(16, 3, rng=1))
    opt = gw.optim.SGD(m.parameters(), lr=0.1)
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(64, 6)), rng.integers(0, 3, 64)
    step = gw.compile(lambda a, b: nn.functional.cross_entropy(m(a), b))
    with warnings.catch_warnings():
        warnings.simplefilter("error", GraphBreakWarning)
        for _ in range(40):
            m.train()
            for i in range(0, 32, 16):
                opt.zero_grad()
                step(X[i:i + 16], y[i:i + 16]).backward()
                opt.step()
            m.eval()
            assert step(X[48:], y[48:]).item() == nn.functional.cross_entropy(m(X[48:]), y[48:]).item()
    (key,) = step._cache.attempts
    assert step._cache.attempts[key] <= 4  # two traces per mode, then replays


def test_train_with_hooks_runs_eagerly_and_calls_them_once_per_step():
    model = nn.Sequential(nn.Linear(2, 3, rng=0), nn.Tanh(), nn.Linear(3, 1, rng=1))
    calls = []
    model[1].register_forward_hook(lambda mod, i, o: calls.append(1))
    X, y = np.ones((8, 2)), np.zeros((8, 1))
    with pytest.warns(GraphBreakWarning, match="forward hooks"):
        gw.train(model, nn.MSELoss(), gw.optim.SGD(model.parameters(), lr=0.1), (X, y),
                 epochs=3, progress=False, compile=True)
    assert len(calls) == 3


class _HoldsCompiled(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 1, rng=0)
        self.loss = gw.compile(self._loss)

    def _loss(self, x):
        return (self.lin(x) ** 2).sum()


def test_copies_and_pickles_of_compiled_functions_trace_again():
    import copy
    import pickle

    m, x = _HoldsCompiled(), np.ones((3, 2))
    m.loss(x)
    m.loss(x)
    for clone in (copy.deepcopy(m), pickle.loads(pickle.dumps(m))):
        assert clone.loss(x).item() == m.loss(x).item()
        with gw.no_grad():
            clone.lin.weight -= 1.0
        assert clone.loss(x).item() == clone._loss(x).item() != m.loss(x).item()
    vg = gw.value_and_grad(lambda w: (w ** 2).sum(), compile=True)
    vg(np.ones(2))
    assert copy.deepcopy(vg)(np.ones(2))[0] == 2.0


def test_other_threads_changing_other_modules_do_not_disable_compilation():
    import threading

    model, other = nn.Linear(2, 1, rng=0), nn.Linear(2, 2, rng=1)
    step = gw.compile(lambda x: (model(x) ** 2).sum())
    stop = threading.Event()

    def churn():
        while not stop.is_set():
            other.eval()
            other.train()

    t = threading.Thread(target=churn)
    t.start()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", GraphBreakWarning)
            for _ in range(50):
                step(np.ones((3, 2))).backward()
    finally:
        stop.set()
        t.join()
    assert all(p is not None for p in step.traces.values())


# -------------------------------------- found by a sixth adversarial review
_GMODEL = nn.Linear(2, 1, rng=0)
_GSCALE = 2.0
_GMODELS = {"m": nn.Sequential(nn.Linear(2, 2, rng=0), nn.Tanh())}


class _Child(nn.Module):
    def forward(self, x):
        return x * _GSCALE


class _Top(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 2, rng=0)
        self.c = _Child()
        self.blocks = [nn.Linear(2, 2, rng=1)]  # a plain list attribute

    def forward(self, x):
        return self.c(self.blocks[0](self.lin(x)))


def test_module_rebinding_children_globals_list_attributes_and_arguments_are_guarded():
    global _GMODEL, _GSCALE
    x = np.ones((3, 2))

    def check(comp, eager, *args):
        assert comp(*args).item() == eager(*args).item()

    f = gw.compile(lambda x: _GMODEL(x).sum())
    f(x)
    f(x)
    _GMODEL = nn.Linear(2, 1, rng=5)
    check(f, lambda x: _GMODEL(x).sum(), x)

    top = _Top()
    g = gw.compile(lambda x: top(x).sum())
    g(x)
    g(x)
    _GSCALE = 5.0  # read by a child's forward
    check(g, lambda x: top(x).sum(), x)
    top.blocks[0].weight = nn.Parameter(np.eye(2) * 3)  # a module in a list attribute
    check(g, lambda x: top(x).sum(), x)

    h = gw.compile(lambda mod, x: mod(x).sum())  # a module as an argument
    m = nn.Sequential(nn.Linear(2, 2, rng=0), nn.Tanh())
    h(m, x)
    h(m, x)
    m[0].weight = nn.Parameter(np.eye(2))
    check(h, lambda mod, x: mod(x).sum(), m, x)

    k = gw.compile(lambda x: _GMODELS["m"](x).sum())  # a module in a global dict
    k(x)
    k(x)
    _GMODELS["m"][0].weight = nn.Parameter(np.eye(2) * 2)
    check(k, lambda x: _GMODELS["m"](x).sum(), x)


class _AttrScale(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 2, rng=0)
        self.s = 0.0

    def forward(self, x):
        return self.lin(x) * self.s


def test_module_number_attributes_compare_sign_and_type():
    m, x = _AttrScale(), np.array([[1.0, -1.0]])
    f = gw.compile(lambda x: m(x))
    f(x)
    f(x)
    m.s = -0.0
    np.testing.assert_array_equal(np.signbit(f(x).data), np.signbit(m(x).data))
    m.s = np.float64(0.5)
    assert f(x.astype(np.float32)).dtype == m(x.astype(np.float32)).dtype


# ------------------------------------ found by a seventh adversarial review
_S7 = 2.0
_W7 = gw.tensor([1.0, 2.0], requires_grad=True)
_ACT7 = np.tanh


def _scaled(x, p=1):
    return (x * _S7).sum() * p


class _Loss7:
    def __call__(self, x):
        return (x * _S7).sum()


class _Trainer7:
    def __init__(self):
        self.model = nn.Linear(3, 1, rng=0)
        self.w = gw.tensor([1.0, 2.0], requires_grad=True)

    def loss(self, x):
        return (self.model(x) ** 2).sum() + (self.w * 1.0).sum()

    @gw.compile
    def mloss(self, x):
        return (x * self.w).sum()


def test_globals_in_comprehensions_partials_callables_ufuncs_and_object_attributes():
    global _S7, _W7, _ACT7
    x = gw.tensor([1.0, 1.0], requires_grad=True)
    fns = [
        lambda x: sum((x * _S7).sum() for _ in range(1)),
        lambda x: sum([(x * _W7).sum() for _ in range(1)]),
        functools.partial(_scaled, p=1),
        _Loss7(),
        lambda x: _ACT7(x).sum(),
    ]
    comps = [gw.compile(f) for f in fns]
    with warnings.catch_warnings():
        warnings.simplefilter("error", GraphBreakWarning)
        for c in comps:
            c(x)
            c(x)
        _S7, _W7, _ACT7 = 5.0, gw.tensor([3.0, 4.0], requires_grad=True), np.exp
        for c, f in zip(comps, fns):
            assert c(x).item() == f(x).item()

    t, x3 = _Trainer7(), np.ones((2, 3))
    c = gw.compile(t.loss)
    c(x3)
    c(x3)
    t.model.weight = nn.Parameter(np.full((1, 3), 4.0))
    t.w = gw.tensor([5.0, 5.0], requires_grad=True)
    out = c(x3)
    assert out.item() == t.loss(x3).item()
    out.backward()
    assert t.w.grad is not None and t.model.weight.grad is not None


def test_compile_as_a_method_decorator_and_equal_rebinding_is_bounded():
    a, b = _Trainer7(), _Trainer7()
    b.w = gw.tensor([3.0, 3.0], requires_grad=True)
    x = np.ones(2)
    for _ in range(3):
        assert a.mloss(x).item() == 3.0 and b.mloss(x).item() == 6.0
    calls = {"n": 0}
    mask = np.array([1.0, 0.0, 1.0])

    def f(v):
        calls["n"] += 1
        return (v * mask).sum()

    comp = gw.compile(f)
    v = gw.tensor([1.0, 2.0, 3.0], requires_grad=True)
    with pytest.warns(GraphBreakWarning, match="keeps changing"):
        for _ in range(100):
            mask = np.array([1.0, 0.0, 1.0])  # a new, equal array every step
            assert comp(v).item() == 4.0
    assert calls["n"] < 100 + 3 * 10  # traces stopped


# ------------------------------------- found by an eighth adversarial review
def test_no_grad_inside_the_function_and_views_of_inputs_run_eagerly():
    W = gw.tensor([1.0, 2.0], requires_grad=True)

    def loss(x):
        with gw.no_grad():
            n = (W * W).sum() ** 0.5
        return ((x * W) / n).sum()

    comp = gw.compile(loss)
    x = np.array([1.0, 1.0])
    with pytest.warns(GraphBreakWarning, match="no_grad"):
        comp(x)
    with gw.no_grad():
        W *= 2.0
    assert comp(x).item() == loss(x).item()

    view = gw.compile(lambda t: t[1:])
    t = gw.tensor([1.0, 2.0, 3.0], requires_grad=True)
    z = (t * t).sum()
    with pytest.warns(GraphBreakWarning, match="view of an input"):
        y = view(t)
    with gw.no_grad():
        y += 10.0
    with pytest.raises(RuntimeError, match="modified in place"):
        z.backward()


# -------------------------------------- found by a ninth adversarial review
def test_tuple_constants_dict_subclasses_and_list_subclasses_match_eager():
    from collections import defaultdict

    f = lambda w, s: (w * s[0]).sum()  # noqa: E731
    c, e = gw.value_and_grad(f, compile=True), gw.value_and_grad(f)
    w = np.array([1.0, 2.0])
    for s in [(0.0,), (0.0,), (-0.0,), (np.float64(0.0),)]:
        (vc, gc), (ve, ge) = c(w, s), e(w, s)
        assert vc == ve
        np.testing.assert_array_equal(np.signbit(gc), np.signbit(ge))

    class L(list):
        pass

    g = lambda p: (p[0].sum() * p[1]).sum() + p["k"] if isinstance(p, dict) else \
        (p[0].sum() * p[1]).sum()  # noqa: E731
    x = L([np.ones(2), np.arange(3.0)])
    (vc, gc), (ve, ge) = gw.value_and_grad(g, compile=True)(x), gw.value_and_grad(g)(x)
    assert vc == ve and type(gc) is type(ge)
    for a, b in zip(gc, ge):
        np.testing.assert_array_equal(a, b)
    d = defaultdict(list, W=np.ones(2))
    h = lambda p: (p["W"] ** 2).sum()  # noqa: E731
    (vc, gc), (ve, ge) = gw.value_and_grad(h, compile=True)(d), gw.value_and_grad(h)(d)
    assert vc == ve and type(gc) is type(ge)


# ------------------------------------------ found by a tenth adversarial review
def test_explain_and_second_order_on_compiled_functions():
    c = gw.compile(lambda x: (gw.tanh(x) * x).sum())
    t = gw.tensor(np.array([0.3, -1.2, 2.0]), requires_grad=True)
    for _ in range(3):
        text = gw.explain(c(t))
        assert "compiled" in text and "/dt = [ 0.5659" in text
    f = lambda x: (x ** 3).sum()  # noqa: E731
    np.testing.assert_array_equal(gw.hvp(gw.compile(f), np.array([1.0, 2.0]), np.ones(2)),
                                  gw.hvp(f, np.array([1.0, 2.0]), np.ones(2)))
