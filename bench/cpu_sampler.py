#!/usr/bin/env python3
"""Samples, once a second, the CPU time each part of a benchmark run has used so far.

    cpu_sampler.py OUT.jsonl NAME=PID[,PID...] ... [NAME=tree:PID]

Each line of OUT.jsonl is {"t": seconds since the epoch, "cpu_s": {NAME: seconds}}, the user
plus system time of the named processes (for `tree:PID`, that process and its children, as
the PostgreSQL server and its backends are), so a window's CPU per part is the difference of
two lines. Stops when every named process has exited or on SIGTERM.
"""

import json
import os
import signal
import sys
import time

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # utime and stime are fields 14 and 15 of stat; the split above starts at field 3
    return (int(fields[11]) + int(fields[12])) / TICKS


def tree(root):
    """`root` and its children (one level: a server and the processes it forked)."""
    found = [root]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parent = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if parent == root:
                found.append(int(entry))
    return found


def main():
    out, parts = sys.argv[1], {}
    for arg in sys.argv[2:]:
        name, _, pids = arg.partition("=")
        parts[name] = pids
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # a process that exits takes its time with it: keep the last seen value of each
    last = {}
    with open(out, "a") as sink:
        while True:
            sample, alive = {}, False
            for name, spec in parts.items():
                whole_tree = spec.startswith("tree:")
                if whole_tree:
                    pids = tree(int(spec[5:]))
                else:
                    pids = [int(p) for p in spec.split(",") if p]
                total = 0.0
                for pid in pids:
                    used = cpu_seconds(pid)
                    if used is not None:
                        last[(name, pid)] = used
                        alive = True
                    total += last.get((name, pid), 0.0)
                if whole_tree:
                    total += sum(v for (n, p), v in last.items() if n == name and p not in pids)
                sample[name] = round(total, 2)
            sink.write(json.dumps({"t": round(time.time(), 2), "cpu_s": sample}) + "\n")
            sink.flush()
            if not alive:
                return
            time.sleep(1)


if __name__ == "__main__":
    main()
