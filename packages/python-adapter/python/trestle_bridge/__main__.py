"""`python3 -u -m trestle_bridge`: the worker process (fds from TRESTLE_FD_IN/OUT/CTL, default 3/4/5)."""
import os

# The parent as early as possible (before the imports below): if it dies during start-up, the
# worker notices that its parent changed.
_PARENT_PID = os.getppid()

from .worker import main  # noqa: E402

if __name__ == "__main__":
    main(parent_pid=_PARENT_PID)
