"""S3 — what does backward() compute? q = x + y, f = q·z at x = 4, y = −3, z = 5.

Run: python examples/s3_backward.py
"""

import gradwise as gw

x = gw.tensor(4.0, requires_grad=True)
y = gw.tensor(-3.0, requires_grad=True)
z = gw.tensor(5.0, requires_grad=True)
q = x + y
f = q * z
print(gw.explain(f))
f.backward()
print(
    f"\nbackward(): df/dx = {x.grad.item():g}, df/dy = {y.grad.item():g}, df/dz = {z.grad.item():g}"
)
