"""Every subprocess localcode runs goes through here: `run_sandboxed`.

What a run gets, strongest isolation first (probed once per `Sandbox`, then cached):

- `bubblewrap`: `bwrap` with new user, mount, PID, network, IPC and UTS namespaces, every
  capability dropped (no-new-privileges is bwrap's own), the whole filesystem read-only except
  the throwaway dir, a private /proc, and empty tmpfs over /tmp, /var/tmp, /run, /var/run and
  the user's runtime dir (no host unix socket is reachable); dies with the server.
- `unshare`: util-linux `unshare` with new user, mount, network and PID namespaces. The whole
  filesystem is remounted read-only except the throwaway dir, /tmp, /run & co. are hidden behind
  empty tmpfs mounts, /proc is the namespace's own, and then `setpriv` drops every capability
  (bounding set included) and sets no-new-privileges before the command starts, so nothing
  inside can remount a path writable again. The `unshare` process gets PR_SET_PDEATHSIG and
  `--kill-child`: when the server dies, the namespace's init dies and the kernel kills the rest.
- `plain`: no isolation at all (no file, network or socket isolation). A small launcher that
  is the run's child subreaper and dies with the server (PR_SET_PDEATHSIG), and kills every
  descendant (also `setsid`'d ones that cleared their environment) when the command ends.
  The test and doctest gates run in this mode only when `[verification] allow_unisolated`.

In every mode: a wall-clock timeout, resource limits (CPU, address space, file size, number of
processes when not root), a marker variable in the environment, and after the run (normal exit,
timeout or cancel) the process group, every descendant seen while polling and every process
carrying the marker are killed with SIGKILL. Output goes to files, never pipes, so a daemonised
grandchild holding stdout cannot block us. The server never follows a link it did not create:
stdin/stdout/stderr live in a private directory the sandboxed code cannot see or write, and
HOME/TMPDIR are fresh directories made for each run.

This module owns the run itself (probing the mode, starting, waiting, timeout and cancel, the
result). What a mode wraps a command in and what a run sees is `isolation.py`; the rlimits,
the plain launcher and the kill sweep are `process_tree.py`; the link-safe files and
directories the server touches are `private_files.py`.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from ..cancel import CancelToken
from ..logs import get_logger
from .isolation import base_env, is_within, wrapper_argv
from .private_files import UnsafePath, plain_directory, private_file, remove_tree
from .process_tree import LAUNCH_FAILED, MARKER_VARIABLE, Tracked, kill_tree, limit_setter

log = get_logger("verify.sandbox")

# lancedb warns on every fork of a process that loaded it. Our forks only set resource limits
# (preexec_fn) and exec at once, touching none of lancedb's state, so the deadlock it warns
# about cannot happen here; without this filter every verified candidate printed it.
warnings.filterwarnings("ignore", message="lancedb fork support is experimental",
                        category=RuntimeWarning)

_POLL_SECONDS = 0.05
_OUTPUT_LIMIT = 1_000_000  # characters of stdout/stderr kept (the tail)


@dataclass(frozen=True)
class Limits:
    """Resource limits for one run; None = leave the limit as inherited."""

    cpu_seconds: int | None = None
    memory_mb: int | None = None  # RLIMIT_AS; keep None for V8/JVM tools that reserve a lot
    file_size_mb: int | None = 64
    processes: int | None = 256  # RLIMIT_NPROC on top of what the user already runs


@dataclass
class ProcessResult:
    """What a sandboxed run did."""

    argv: list[str]
    returncode: int | None
    stdout: str = ""
    stderr: str = ""
    seconds: float = 0.0
    timed_out: bool = False
    cancelled: bool = False
    killed: int = 0  # processes still alive after the main one ended, killed by the sweep
    isolation: str = "plain"
    error: str = ""  # could not start at all (missing executable, ...)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out and not self.cancelled and not self.error


def failure_reason(result: ProcessResult) -> str:
    """Why a run failed, in one line: its error, its timeout, or its exit code and the last
    line of its output that mentions an error (else its last line)."""
    if result.error:
        return result.error
    if result.timed_out:
        return f"timed out after {result.seconds:.0f}s"
    lines = [line.strip() for line in (result.stderr or result.stdout).splitlines() if line.strip()]
    interesting = [line for line in lines if "rror" in line] or lines
    tail = interesting[-1] if interesting else "no output"
    return f"exit code {result.returncode}: {tail[:200]}"



class Sandbox:
    """Runs commands isolated as well as this machine allows; probes once and caches."""

    def __init__(self, *, protect: Sequence[Path | str] = (), isolation: str | None = None) -> None:
        """`protect`: paths made read-only where the isolation can (the workspace, HOME, ...).

        `isolation` forces a mode ("bubblewrap", "unshare", "plain"); None = strongest that works.
        """
        # this interpreter (and the tools of its environment: ruff, pytest) stays visible
        # read-only even where it lives under a hidden dir (a checkout in /tmp has its venv there)
        interpreter = [Path(sys.prefix), Path(sys.base_prefix)]
        self._protect = [Path(p) for p in (*protect, *interpreter) if str(p) != "/"]
        self._forced = isolation
        self._mode: str | None = None
        self._lock = threading.Lock()

    # --- isolation probing ---------------------------------------------------------------

    @property
    def mode(self) -> str:
        """The isolation mode in use: "bubblewrap", "unshare" or "plain"."""
        with self._lock:
            if self._mode is None:
                self._mode = self._forced or self._probe()
            return self._mode

    @property
    def isolated(self) -> bool:
        """Whether runs get namespace isolation (False in plain mode)."""
        return self.mode != "plain"

    def isolation_description(self) -> str:
        """One line for `doctor`: which isolation is active and what it guarantees."""
        mode = self.mode
        if mode == "bubblewrap":
            return ("bubblewrap: read-only filesystem outside the throwaway copy, every capability "
                    "dropped, private /proc (PID namespace), empty /tmp, /run and runtime dir "
                    "(no host unix socket), dies with the server; "
                    "network isolation: full (own network namespace)")
        if mode == "unshare":
            return ("unshare: read-only filesystem outside the throwaway copy, every capability "
                    "dropped and no-new-privileges after the mounts, private /proc (PID "
                    "namespace), empty /tmp, /run and runtime dir (no host unix socket), dies "
                    "with the server; network isolation: full (own network namespace, loopback "
                    "only)")
        return ("plain: NOT ISOLATED: tests run as you, can write every file you can, reach the "
                "network and every host socket, and see every process; only a timeout, resource "
                "limits and a process-tree kill apply; network isolation: none (proxies disabled "
                "only)")

    def mode_available(self, mode: str) -> bool:
        """Whether `mode` works on this machine (probed now, not cached)."""
        if mode == "plain":
            return True
        return sys.platform == "linux" and self._probe_mode(mode)

    def _probe(self) -> str:
        if sys.platform != "linux":
            return "plain"
        for mode in ("bubblewrap", "unshare"):
            if self._probe_mode(mode):
                log.info("sandbox isolation: %s", mode)
                return mode
        log.warning("sandbox isolation: plain (neither bubblewrap nor unshare works here): "
                    "tests run unisolated only when [verification] allow_unisolated = true")
        return "plain"

    def _probe_mode(self, mode: str) -> bool:
        with tempfile.TemporaryDirectory(prefix="localcode-probe-") as scratch:
            guarded = Path(scratch) / "guarded"
            writable = Path(scratch) / "writable"
            guarded.mkdir()
            writable.mkdir()
            # the writable dir works, the guarded one does not, and nothing can be remounted
            probe = (f"echo x > {shlex.quote(str(guarded / 'f'))} 2>/dev/null; "
                     f"mount -o remount,bind,rw {shlex.quote(str(guarded))} 2>/dev/null "
                     f"&& echo x > {shlex.quote(str(guarded / 'g'))} 2>/dev/null; "
                     f"echo ok > {shlex.quote(str(writable / 'f'))}")
            prefix = wrapper_argv(mode, [guarded], [writable], writable)
            if prefix is None:
                return False
            try:
                completed = subprocess.run(
                    [*prefix, "sh", "-c", probe], stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10,
                )
            except (OSError, subprocess.SubprocessError):
                return False
            usable = (completed.returncode == 0 and not (guarded / "f").exists()
                      and not (guarded / "g").exists() and (writable / "f").is_file())
            if not usable:
                log.info("sandbox isolation %s probed and not usable (rc=%s)", mode,
                         completed.returncode)
            return usable

    # --- running -------------------------------------------------------------------------

    def run(
        self,
        argv: Sequence[str],
        cwd: Path | str,
        *,
        timeout: float,
        env: Mapping[str, str] | None = None,
        limits: Limits | None = None,
        cancel: CancelToken | None = None,
        stdin_text: str | None = None,
        writable: Path | str | None = None,
        scratch: Path | str | None = None,
    ) -> ProcessResult:
        """Run `argv` in `cwd` with a wall-clock `timeout`; the whole tree dies at the end.

        `writable` is the directory the command may write (default: none but its own HOME and
        TMPDIR, so a linter run in the user's tree cannot change it). HOME and TMPDIR are fresh
        directories made for this run inside `scratch` (which must lie inside `writable`;
        default: a fresh temporary directory, removed afterwards).
        """
        limits = limits or Limits()
        cwd = Path(cwd)
        mode = self.mode
        started = time.monotonic()
        if cancel is not None and cancel.cancelled:
            return ProcessResult(list(argv), None, cancelled=True, isolation=mode)
        # Files the server itself opens (stdin/stdout/stderr) live in a private directory the
        # sandboxed code can neither see nor write, so it cannot plant a link there.
        control = Path(tempfile.mkdtemp(prefix="localcode-ctl-"))
        owned: list[Path] = [control]
        try:
            if writable is not None:
                writable_dir = plain_directory(Path(writable))
                parent = plain_directory(Path(scratch)) if scratch is not None else writable_dir
                if not is_within(parent, writable_dir):
                    parent = writable_dir
                run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=parent))
            else:
                run_dir = Path(tempfile.mkdtemp(prefix="localcode-run-"))
                writable_dir = run_dir
                owned.append(run_dir)
            return self._run(list(argv), cwd, writable_dir, run_dir, control, timeout, env,
                             limits, cancel, stdin_text, mode, started)
        except UnsafePath as exc:
            return ProcessResult(list(argv), None, isolation=mode, error=str(exc),
                                 seconds=time.monotonic() - started)
        finally:
            for path in owned:
                remove_tree(path)

    def _run(self, argv: list[str], cwd: Path, writable: Path, run_dir: Path, control: Path,
             timeout: float, env: Mapping[str, str] | None, limits: Limits,
             cancel: CancelToken | None, stdin_text: str | None, mode: str,
             started: float) -> ProcessResult:
        marker = uuid.uuid4().hex
        home = run_dir / "home"
        tmp = run_dir / "tmp"
        home.mkdir()  # run_dir is fresh: nothing can be planted in it yet
        tmp.mkdir()
        child_env = base_env(home, tmp)
        if env:
            child_env.update(env)
        child_env[MARKER_VARIABLE] = marker

        prefix = wrapper_argv(mode, self._protect, [writable], cwd) or []
        full_argv = [*prefix, *argv]

        result = ProcessResult(argv, None, isolation=mode)
        tracked = Tracked()
        stdout_path = control / "stdout.txt"
        stderr_path = control / "stderr.txt"
        try:
            with private_file(control / "stdin.txt", "w+b") as stdin, \
                    private_file(stdout_path, "wb") as stdout, \
                    private_file(stderr_path, "wb") as stderr:
                stdin.write((stdin_text or "").encode("utf-8", "surrogateescape"))
                stdin.flush()
                stdin.seek(0)
                try:
                    process = subprocess.Popen(
                        full_argv, cwd=str(cwd), env=child_env, stdin=stdin, stdout=stdout,
                        stderr=stderr, start_new_session=True,
                        preexec_fn=limit_setter(limits, timeout),
                    )
                except OSError as exc:
                    result.error = f"cannot run {argv[0]}: {exc.strerror or exc}"
                    result.seconds = time.monotonic() - started
                    return result
                try:
                    self._wait(process, result, tracked, timeout, cancel, started)
                finally:
                    result.killed = kill_tree(process, marker, tracked, mode)
                    if process.returncode is None:
                        process.wait()
            result.stdout = _tail(stdout_path)
            result.stderr = _tail(stderr_path)
        finally:
            result.seconds = time.monotonic() - started
        if result.returncode is None and not (result.timed_out or result.cancelled):
            result.returncode = process.returncode
        if mode == "plain" and result.returncode == LAUNCH_FAILED and \
                result.stderr.startswith("cannot run "):
            result.error = result.stderr.strip().splitlines()[0]  # the launcher's exec failed
        return result

    @staticmethod
    def _wait(process: subprocess.Popen, result: ProcessResult, tracked: Tracked,
              timeout: float, cancel: CancelToken | None, started: float) -> None:
        deadline = started + timeout
        try:
            root = psutil.Process(process.pid)
            tracked.add(root)
        except psutil.NoSuchProcess:
            root = None
        while True:
            try:
                result.returncode = process.wait(timeout=_POLL_SECONDS)
                return
            except subprocess.TimeoutExpired:
                pass
            if root is not None:
                try:
                    for child in root.children(recursive=True):
                        tracked.add(child)
                except psutil.NoSuchProcess:
                    pass
            if cancel is not None and cancel.cancelled:
                result.cancelled = True
                return
            if time.monotonic() >= deadline:
                result.timed_out = True
                return


def run_sandboxed(
    argv: Sequence[str],
    cwd: Path | str,
    *,
    timeout: float,
    env: Mapping[str, str] | None = None,
    limits: Limits | None = None,
    cancel: CancelToken | None = None,
    sandbox: Sandbox | None = None,
    stdin_text: str | None = None,
) -> ProcessResult:
    """Run one command sandboxed (a fresh `Sandbox` probes isolation; pass one to reuse it)."""
    return (sandbox or Sandbox()).run(argv, cwd, timeout=timeout, env=env, limits=limits,
                                      cancel=cancel, stdin_text=stdin_text)


def isolation_description(sandbox: Sandbox | None = None) -> str:
    """Which isolation verification runs get here, for `doctor`."""
    return (sandbox or Sandbox()).isolation_description()


def _tail(path: Path) -> str:
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            if size > _OUTPUT_LIMIT:
                handle.seek(size - _OUTPUT_LIMIT)
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
