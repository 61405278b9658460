"""Hypothesis profiles for the autodiff tests.

``ci`` (loaded when the environment variable CI is "true"): no deadline (shared,
noisy machines) and derandomised examples, so a CI run is reproducible. The
default ``dev`` profile has no deadline either but explores new examples.
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", deadline=None, derandomize=True, max_examples=40,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, max_examples=40)
settings.load_profile("ci" if os.environ.get("CI", "").lower() == "true" else "dev")
