"""A stop signal during the CLI's start-up is not lost when the parent ignores SIGINT."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import signal
signal.signal(signal.SIGINT, signal.SIG_IGN)  # as a non-interactive shell's background job has it
import streams.cli
print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)
"""


def test_importing_the_cli_restores_sigint_before_its_imports() -> None:
    # In a fresh interpreter: this test process's own handlers must not count.
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True", out.stderr
