"""The process tree of one sandboxed run: what the child sets up before exec, and its end.

Before the command starts, the forked child gets its resource limits and dies with the server
(`limit_setter`, PR_SET_PDEATHSIG). In plain mode the command runs under `PLAIN_LAUNCHER`, a
small child subreaper that kills every descendant when the command ends or the server dies.
While the run lasts the sandbox records every descendant it sees (`Tracked`, guarded against
pid reuse), and afterwards `kill_tree` SIGKILLs the process group, every tracked descendant and
every process whose environment carries the run's `MARKER_VARIABLE`.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import psutil

if TYPE_CHECKING:
    from .sandbox import Limits

MARKER_VARIABLE = "LOCALCODE_SANDBOX_RUN"
LAUNCH_FAILED = 127  # the plain launcher's exit code when the command cannot be started
_PR_SET_PDEATHSIG = 1


@dataclass
class Tracked:
    """Processes seen belonging to one run: pid -> create_time (guards against pid reuse)."""

    pids: dict[int, float] = field(default_factory=dict)

    def add(self, process: psutil.Process) -> None:
        try:
            self.pids.setdefault(process.pid, process.create_time())
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass


def limit_setter(limits: Limits, timeout: float):
    """preexec_fn setting rlimits in the child (inherited by the whole tree)."""
    cpu = limits.cpu_seconds if limits.cpu_seconds is not None else int(timeout) + 5
    nproc: int | None = None
    if limits.processes is not None and os.geteuid() != 0:
        # RLIMIT_NPROC counts every process of the user, so leave room for what already runs.
        try:
            uid = os.getuid()
            own = sum(1 for p in psutil.process_iter(["uids"])
                      if p.info["uids"] is not None and p.info["uids"].real == uid)
        except psutil.Error:
            own = 0
        nproc = own + limits.processes
    memory = limits.memory_mb * 1024 * 1024 if limits.memory_mb else None
    fsize = limits.file_size_mb * 1024 * 1024 if limits.file_size_mb else None

    parent = os.getpid()
    prctl = _prctl()

    def apply() -> None:
        # Die with the server (the thread that started us, which waits for us): unshare then
        # kills the namespace's init (--kill-child), the plain launcher gets SIGTERM and kills
        # its descendants (it sets its own PR_SET_PDEATHSIG).
        _die_with_parent(prctl, parent)
        _set_limit(resource.RLIMIT_CPU, cpu)
        if memory is not None:
            _set_limit(resource.RLIMIT_AS, memory)
        if fsize is not None:
            _set_limit(resource.RLIMIT_FSIZE, fsize)
        if nproc is not None:
            _set_limit(resource.RLIMIT_NPROC, nproc)
        _set_limit(resource.RLIMIT_CORE, 0)

    return apply


def _die_with_parent(prctl, parent: int) -> None:
    """PR_SET_PDEATHSIG(SIGKILL) in a forked child; exit at once when `parent` is gone."""
    if prctl is None:
        return
    prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(137)


def _prctl():
    """libc's prctl, loaded before any fork (dlopen after a fork of a threaded process is
    unsafe); None where there is none."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def _set_limit(which: int, value: int) -> None:
    try:
        _soft, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(which, (value, hard))
    except (ValueError, OSError):
        pass


# The plain mode's launcher (run with `python -I -S -c`): the run's child subreaper, so every
# orphan of the command (a `setsid` daemon that cleared its environment too) becomes its child;
# it dies with the server (PR_SET_PDEATHSIG: SIGTERM, handled by killing every descendant) and
# kills every descendant when the command ends.
PLAIN_LAUNCHER = r"""
import ctypes, os, signal, sys
prctl = getattr(ctypes.CDLL(None, use_errno=True), "prctl", None)  # Linux only
if prctl is not None:
    prctl(36, 1, 0, 0, 0)                    # PR_SET_CHILD_SUBREAPER
    prctl(1, signal.SIGTERM, 0, 0, 0)        # PR_SET_PDEATHSIG
if os.getppid() != int(sys.argv[1]):
    os._exit(137)                            # the server is already gone
def parents():
    if os.path.isdir("/proc"):
        for name in os.listdir("/proc"):
            if name.isdigit():
                try:
                    with open("/proc/%s/stat" % name, "rb") as handle:
                        stat = handle.read()
                    yield int(name), int(stat[stat.rindex(b")") + 2:].split()[1])
                except (OSError, ValueError, IndexError):
                    continue
        return
    import subprocess                        # no /proc (macOS): ask ps
    try:
        listing = subprocess.run(["ps", "-axo", "pid=,ppid="], capture_output=True,
                                 text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return
    for line in listing.splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[0].isdigit() and fields[1].isdigit():
            yield int(fields[0]), int(fields[1])
def descendants():
    children = {}
    for pid, ppid in parents():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], [os.getpid()]
    while todo:
        for child in children.get(todo.pop(), ()):
            found.append(child)
            todo.append(child)
    return found
def sweep():
    for _ in range(20):
        victims = descendants()
        if not victims:
            break
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        while True:
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    break
            except ChildProcessError:
                break
def terminated(signum, frame):
    sweep()
    os._exit(128 + signum)
signal.signal(signal.SIGTERM, terminated)
signal.signal(signal.SIGINT, signal.SIG_DFL)
try:
    main = os.fork()
except OSError as exc:
    sys.stderr.write("cannot run %s: %s\n" % (sys.argv[2], exc))
    os._exit(127)
if main == 0:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        os.execvp(sys.argv[2], sys.argv[2:])
    except OSError as exc:
        sys.stderr.write("cannot run %s: %s\n" % (sys.argv[2], exc.strerror or exc))
        os._exit(127)
status = 0
while True:
    try:
        pid, status = os.waitpid(-1, 0)
    except ChildProcessError:
        break
    except InterruptedError:
        continue
    if pid == main:
        break
sweep()
if os.WIFSIGNALED(status):
    signal.signal(os.WTERMSIG(status), signal.SIG_DFL)
    os.kill(os.getpid(), os.WTERMSIG(status))
os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 1)
"""


def kill_tree(process: subprocess.Popen, marker: str, tracked: Tracked, mode: str) -> int:
    """SIGKILL the group, every tracked descendant and every process carrying the marker.

    Returns how many processes other than the main one were still alive and got killed. Loops
    a few rounds so a process forking while we sweep is caught on the next round. In plain
    mode the launcher gets SIGTERM first: it kills every descendant, also the `setsid`'d ones
    that left the group and cleared the marker from their environment.
    """
    killed: set[int] = set()
    if mode == "plain" and process.poll() is None:
        try:
            process.terminate()
            process.wait(timeout=3)
        except (OSError, subprocess.TimeoutExpired):
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    for _ in range(5):
        victims = _marked_processes(marker)
        for pid, created in tracked.pids.items():
            try:
                candidate = psutil.Process(pid)
                if abs(candidate.create_time() - created) < 0.01 and \
                        candidate.status() != psutil.STATUS_ZOMBIE:
                    victims.append(candidate)
            except psutil.Error:
                pass
        # The main process is ours to reap (Popen.wait); the group kill already hit it.
        victims = [v for v in victims if v.pid not in (os.getpid(), process.pid)]
        if not victims:
            break
        for victim in victims:
            try:
                victim.kill()
                killed.add(victim.pid)
            except psutil.Error:
                pass
        psutil.wait_procs(victims, timeout=0.1)
    return len(killed)


def _marked_processes(marker: str) -> list[psutil.Process]:
    found = []
    needle = f"{MARKER_VARIABLE}={marker}".encode()
    own = os.getpid()
    for pid in psutil.pids():
        if pid == own:
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as handle:
                if needle in handle.read():
                    process = psutil.Process(pid)
                    if process.status() != psutil.STATUS_ZOMBIE:
                        found.append(process)
        except (OSError, psutil.Error):
            continue
    return found
