"""CPU affinity helper of bench section [8] (python bridge), Linux only.

    python3 bench_affinity.py get PID          -> prints PID's allowed CPUs, e.g. "0,1"
    python3 bench_affinity.py set CPUS PID     -> every thread of PID and of all its descendants
                                                  (found through /proc/<pid>/task/<tid>/children)
                                                  may run on CPUS only, e.g. "0"; prints
                                                  "<processes> <threads>"

Pinning the bench process and its Python children to one CPU makes a round trip a same-CPU handoff
(a context switch) instead of a wake-up of another, possibly idle, vCPU, whose cost varies with where
the scheduler places each process.
"""

import os
import sys


def main():
    if sys.argv[1] == "get":
        print(",".join(str(cpu) for cpu in sorted(os.sched_getaffinity(int(sys.argv[2])))))
        return
    cpus = {int(cpu) for cpu in sys.argv[2].split(",")}
    todo = [int(sys.argv[3])]
    seen = set()
    threads = 0
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except FileNotFoundError:
            continue
        for tid in tids:
            try:
                os.sched_setaffinity(int(tid), cpus)
                threads += 1
            except ProcessLookupError:
                continue
            try:
                with open(f"/proc/{pid}/task/{tid}/children") as children:
                    todo.extend(int(child) for child in children.read().split())
            except FileNotFoundError:
                pass
    print(len(seen), threads)


main()
