"""Start-up stays light, and the console script works as a real process."""

import shutil
import subprocess
import sys

HEAVY = ("matplotlib", "sklearn", "pandas")

PROBE = """
import sys
sys.argv = ["gradwise", "--help"]
from gradwise.cli import main
try:
    main()
except SystemExit as e:
    code = e.code
print("HEAVY=" + ",".join(m for m in {heavy!r} if m in sys.modules))
print("CODE=" + str(code))
"""


def test_help_imports_no_plotting_sklearn_or_pandas():
    r = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "CODE=0" in r.stdout
    assert "HEAVY=\n" in r.stdout, r.stdout[-300:]
    for command in ("fit", "explain", "check", "datasets", "demo"):
        assert command in r.stdout


def test_help_importtime_has_no_heavy_module():
    r = subprocess.run([sys.executable, "-X", "importtime", "-m", "gradwise.cli", "--help"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0
    imported = {line.split("|")[-1].strip().split(".")[0] for line in r.stderr.splitlines() if "|" in line}
    assert "gradwise" in imported and not imported & set(HEAVY)


def test_console_script_version_and_explain_as_subprocess():
    exe = shutil.which("gradwise")
    cmd = [exe] if exe else [sys.executable, "-m", "gradwise.cli"]
    r = subprocess.run([*cmd, "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "gradwise 0.1.0"
    r = subprocess.run([*cmd, "explain", "f = x * y", "--values", "x=3,y=-2"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "df/dx = -2" in r.stdout and "df/dy = 3" in r.stdout


def test_unknown_command_is_a_usage_error_exit_2():
    r = subprocess.run([sys.executable, "-m", "gradwise.cli", "frobnicate"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "frobnicate" in r.stderr
