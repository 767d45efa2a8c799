"""Output piped into a reader that stops early (`| head`) ends the command quietly, as Unix tools do."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

CLOSED_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a tool its reader stopped


def quiet_on_closed_pipe(command: Callable[[], int]) -> int:
    """Run `command`; if its reader went away, exit 141 with no traceback (stdout goes to /dev/null
    so the interpreter's last flush does not raise again)."""
    try:
        code = command()
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return CLOSED_PIPE
    return code
