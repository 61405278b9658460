"""Benchmarks for check_gradient (issue 4).

1. A 1 000 000-parameter loss with k wrong gradient entries: how many loss
   evaluations group testing needs to locate them (target: <= 200 for k = 1).
2. A full, entry-by-entry check of a ~1 000-parameter MLP (target: < 2 s),
   next to scipy.optimize.check_grad, which only returns one number.

Run:  python benchmarks/bench_check.py
"""

from __future__ import annotations

import time

import numpy as np
from scipy.optimize import check_grad

from gradwise.diagnostics.check import check_gradient


def big_problem(P: int, wrong: list[int], seed: int = 0):
    r = np.random.default_rng(seed)
    a = r.uniform(0.5, 2.0, P)
    c = r.standard_normal(P) / np.sqrt(P)
    w = r.standard_normal(P)

    def loss(w):  # float(): not traceable, so every reference value is a finite difference
        return float(0.5 * np.sum(a * w * w) + np.sum(np.sin(w)) + 0.5 * (c @ w) ** 2)

    def grad(w):
        g = a * w + np.cos(w) + (c @ w) * c
        g[wrong] += 0.1
        return g

    return loss, grad, w


def bench_large(P=1_000_000, ks=(1, 3)):
    rows = []
    for k in ks:
        wrong = sorted(np.random.default_rng(k).choice(P, size=k, replace=False).tolist())
        loss, grad, w = big_problem(P, wrong)
        t = time.perf_counter()
        r = check_gradient(loss, grad, w)
        dt = time.perf_counter() - t
        found = sorted(e["index"][0] for f in r.findings for e in f.evidence["entries"])
        assert found == wrong, (found, wrong)
        rows.append((k, r.n_loss_evals, dt, r.findings[0].code))
    return rows


def mlp_problem(d=14, h=64, m=64, seed=0):
    r = np.random.default_rng(seed)
    X = r.standard_normal((m, d))
    y = np.sin(X[:, 0]) + 0.1 * r.standard_normal(m)
    params = {"W1": r.standard_normal((d, h)) / np.sqrt(d), "b1": np.zeros(h),
              "W2": r.standard_normal((h, 1)) / np.sqrt(h), "b2": np.zeros(1)}

    def loss(p):
        hid = np.tanh(X @ p["W1"] + p["b1"])
        return 0.5 * np.mean((hid @ p["W2"] + p["b2"] - y[:, None]) ** 2)

    def grad(p):
        z = X @ p["W1"] + p["b1"]
        hid = np.tanh(z)
        d_out = (hid @ p["W2"] + p["b2"] - y[:, None]) / m
        dz = d_out @ p["W2"].T * (1 - hid**2)
        return {"W1": X.T @ dz, "b1": dz.sum(0), "W2": hid.T @ d_out, "b2": d_out.sum(0)}

    return loss, grad, params


def bench_mlp():
    loss, grad, params = mlp_problem()
    P = sum(v.size for v in params.values())
    out = {}
    for autodiff in (False, True):
        t = time.perf_counter()
        r = check_gradient(loss, grad, params, autodiff=autodiff)
        out[autodiff] = (time.perf_counter() - t, r.n_loss_evals, r.ok)
    keys = list(params)
    shapes = [params[k].shape for k in keys]

    def unpack(v):
        parts, i = {}, 0
        for k, s in zip(keys, shapes):
            n = int(np.prod(s))
            parts[k] = v[i:i + n].reshape(s)
            i += n
        return parts

    flat = np.concatenate([params[k].ravel() for k in keys])
    t = time.perf_counter()
    err = check_grad(lambda v: loss(unpack(v)),
                     lambda v: np.concatenate([grad(unpack(v))[k].ravel() for k in keys]), flat)
    scipy_t = time.perf_counter() - t
    return P, out, (scipy_t, err)


def main():
    print("check_gradient benchmarks (gradwise, issue 4)")
    print("\n1) 1 000 000 parameters, k wrong entries, untraceable loss (finite differences only)")
    print(f"   {'k':>3} {'loss evals':>11} {'time [s]':>9}  finding")
    for k, n, dt, code in bench_large():
        print(f"   {k:>3} {n:>11} {dt:>9.2f}  {code} (all {k} located)")
    P, out, (st, err) = bench_mlp()
    print(f"\n2) full entry-by-entry check of a {P}-parameter tanh MLP (64 samples)")
    for autodiff, (dt, n, ok) in out.items():
        label = "with autodiff reference" if autodiff else "finite differences only"
        print(f"   {label:<26} {dt:6.3f} s, {n} loss evaluations, ok={ok}")
    print(f"   scipy.optimize.check_grad  {st:6.3f} s, one number: {err:.3g}")


if __name__ == "__main__":
    main()
