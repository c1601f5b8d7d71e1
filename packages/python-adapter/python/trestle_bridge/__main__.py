"""`python3 -u -m trestle_bridge`: the worker process (fds from TRESTLE_FD_IN/OUT/CTL, default 3/4/5)."""
from .worker import main

if __name__ == "__main__":
    main()
