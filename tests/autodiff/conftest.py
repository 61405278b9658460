"""Hypothesis profiles for the autodiff tests.

``ci`` (loaded when the environment variable CI is "true"): no deadline (shared,
noisy machines), derandomised examples so that a CI run is reproducible, and a
moderate number of examples so the property tests stay around a second.
Otherwise ``dev``: no deadline, Hypothesis's default (random) exploration.
Profiles are global to the Hypothesis session, so they also apply to other
test directories that do not set their own ``@settings``.
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", deadline=None, derandomize=True, max_examples=40,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI", "").lower() == "true" else "dev")
