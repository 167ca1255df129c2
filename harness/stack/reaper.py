"""The reaper: nothing counterbench started outlives it, even a counterbench that was SIGKILLed.

Servers are stopped by their context managers, and on SIGTERM or Ctrl-C by ``harness.core.stopping``:
both need counterbench alive. Against ``kill -9``, the OOM killer or a CI runner's hard timeout, a
small process, the reaper, is started once per counterbench process, just before its first child.
Its standard input is a pipe whose write end only counterbench holds (close-on-exec, and closed in
a child forked without exec), so the pipe's end *is* counterbench's end, however it came. Then the
reaper SIGKILLs, and exits:

- every process group counterbench told it of (``harness.stack.lifeline``: as ``spawn`` starts each
  child; forgotten once stopped), unless the group's id now belongs to another: its leader's start
  time is not the one counterbench read (pids are reused; 32768 of them here). A group seen empty
  while counterbench runs is dropped within a second (a group that ended never comes back: only its
  id can, for another program);
- every process whose environment carries this counterbench's token (``TOKEN_ENV``, random, set in
  each spawned child's environment and inherited below it): it catches what left its group, e.g.
  the postmaster Patroni starts through ``setsid``, and a child forked a moment before the SIGKILL,
  not yet told of (so after a death the sweep repeats until it finds nothing twice, 50 ms apart);
- every descendant of those (PostgreSQL's backends lead sessions of their own and overwrite their
  environment with their title).

Nothing else: the token is this counterbench's own, and a group is one counterbench spawned. After a
normal exit (every server stopped already) counterbench says ``bye``, the reaper sweeps once and
counterbench waits for it: no reaper is left behind.

Why not only ``PR_SET_PDEATHSIG`` in each child: it fires when the *thread* that forked the child
ends (the nemesis restarts servers from a thread), a change of credentials clears it (``runuser -u
postgres``, setuid programs), it needs ``preexec_fn`` (unsafe in a process with threads), and it
reaches the direct child only.

This file runs as a script (``python -I -S reaper.py TOKEN COUNTERBENCH_PID``): the standard library only.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

TOKEN_ENV = "COUNTERBENCH_REAPER_TOKEN"
PRUNE_EVERY = 1.0  # seconds between checks for groups that ended (before their id can be reused)
PROC = Path("/proc")
ROUNDS = 40  # at most 2 s of sweeps after a death


@dataclass
class Registry:
    """What counterbench said: its process groups (id -> the leader's start time, None if unknown)."""

    groups: dict[int, int | None] = field(default_factory=dict)
    clean: bool = False  # counterbench said bye: a normal exit, nothing is being spawned

    def apply(self, line: str) -> None:
        """``+PGID START`` (watch), ``-PGID`` (forget), ``bye``; anything else is ignored (never die of it)."""
        word = line.strip()
        with contextlib.suppress(ValueError):
            if word == "bye":
                self.clean = True
            elif word.startswith("+"):
                pgid, start = word[1:].split()
                self.groups[int(pgid)] = None if start == "?" else int(start)
            elif word.startswith("-"):
                self.groups.pop(int(word[1:]), None)

    def prune(self, exists: Callable[[int], bool]) -> None:
        for pgid in [g for g in self.groups if not exists(g)]:
            del self.groups[pgid]


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    pgrp: int
    start: int
    marked: bool  # carries the token


def carries(environ: bytes, token: str) -> bool:
    """Whether a process environment (``/proc/PID/environ``) holds exactly this token."""
    return f"{TOKEN_ENV}={token}".encode() in environ.split(b"\0")


def table(token: str, proc: Path = PROC) -> dict[int, Proc]:
    """Every live process (a zombie has exited), from /proc."""
    out: dict[int, Proc] = {}
    for entry in os.scandir(proc):
        if not entry.name.isdigit():
            continue
        try:
            f = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
            if f[0] in ("Z", "X"):
                continue
            try:
                environ = Path(entry.path, "environ").read_bytes()
            except OSError:
                environ = b""  # not ours to read: only its group or its parent can make it a victim
            out[int(entry.name)] = Proc(int(entry.name), int(f[1]), int(f[2]), int(f[19]), carries(environ, token))
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
    return out


def victims(registry: Registry, procs: Mapping[int, Proc], spared: set[int]) -> tuple[set[int], set[int]]:
    """(process groups, pids) to SIGKILL: the registered groups still counterbench's, what carries the
    token, and everything below those."""
    groups = set()
    for pgid, start in registry.groups.items():
        leader = procs.get(pgid)
        if leader is not None and leader.start != start:
            continue  # the id was reused: another program's process, never killed
        groups.add(pgid)
    roots = {p.pid for p in procs.values() if p.marked or p.pgrp in groups}
    roots |= {g for g in groups if g in procs}  # a leader that moved to another group is still ours
    below: dict[int, list[int]] = {}
    for p in procs.values():
        below.setdefault(p.ppid, []).append(p.pid)
    pids, todo = set(roots), list(roots)
    while todo:
        for child in below.get(todo.pop(), []):
            if child not in pids:
                pids.add(child)
                todo.append(child)
    return groups - spared, pids - spared


def sweep(registry: Registry, token: str) -> set[int]:
    """SIGKILL every victim once; returns the pids found."""
    groups, pids = victims(registry, table(token), spared={0, 1, os.getpid(), os.getpgid(0)})
    for pgid in groups:
        with contextlib.suppress(OSError):
            os.killpg(pgid, signal.SIGKILL)
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    return pids


def _group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # EPERM: it exists, another user's (a server run as postgres)
    return True


def serve(token: str, parent: int, fd: int = 0) -> None:
    """The reaper's life: read counterbench's messages until the pipe ends, then sweep."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C is counterbench's to handle
    registry, pending, pruned = Registry(), b"", time.monotonic()
    while True:
        if time.monotonic() - pruned >= PRUNE_EVERY:
            registry.prune(_group_exists)
            pruned = time.monotonic()
        readable, _, _ = select.select([fd], [], [], PRUNE_EVERY)
        if not readable:
            continue
        data = os.read(fd, 65536)
        if not data:
            break  # counterbench is gone
        *lines, pending = (pending + data).split(b"\n")
        for line in lines:
            registry.apply(line.decode("ascii", "replace"))
    killed = sweep(registry, token)
    quiet = 0
    for _ in range(0 if registry.clean else ROUNDS):
        if quiet == 2:
            break
        time.sleep(0.05)  # a child forked just before the end carries the token once it has exec'd
        found = sweep(registry, token)
        killed |= found
        quiet = 0 if found else quiet + 1
    if killed:
        with contextlib.suppress(OSError):
            os.write(2, f"counterbench-reaper: counterbench (pid {parent}) ended without stopping what it started; "
                        f"SIGKILLed {len(killed)} processes: {' '.join(map(str, sorted(killed)))}\n".encode())


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
