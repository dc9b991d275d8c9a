"""Every subprocess localcode runs goes through here: `run_sandboxed`.

What a run gets, strongest isolation first (probed once per `Sandbox`, then cached):

- `bubblewrap`: `bwrap` with the whole filesystem read-only except the throwaway dir, its own
  network namespace (no network) and PID namespace.
- `unshare`: util-linux `unshare` with new mount, network and PID namespaces (a user namespace
  too when not root). The whole filesystem is remounted read-only except the throwaway dir
  (and a private /dev/shm); protected paths (the workspace, HOME, the interpreter prefix) are
  bind-mounted read-only again in case they are mounts of their own; loopback is brought up, and when the namespace's init dies the kernel
  kills everything inside, so a test that double-forks and calls setsid cannot survive.
- `plain`: a new session and process group only. Network is not isolated (proxies point at a
  closed port, nothing more) and files outside the copy are protected only by HOME/TMPDIR
  pointing into it.

In every mode: a wall-clock timeout, resource limits (CPU, address space, file size, number of
processes when not root), a marker variable in the environment, and after the run (normal exit,
timeout or cancel) the process group, every descendant seen while polling and every process
carrying the marker are killed with SIGKILL. Output goes to files, never pipes, so a daemonised
grandchild holding stdout cannot block us.
"""

from __future__ import annotations

import os
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from ..cancel import CancelToken
from ..logs import get_logger

log = get_logger("verify.sandbox")

# lancedb warns on every fork of a process that loaded it. Our forks only set resource limits
# (preexec_fn) and exec at once, touching none of lancedb's state, so the deadlock it warns
# about cannot happen here; without this filter every verified candidate printed it.
warnings.filterwarnings("ignore", message="lancedb fork support is experimental",
                        category=RuntimeWarning)

MARKER_VARIABLE = "LOCALCODE_SANDBOX_RUN"
_POLL_SECONDS = 0.05
_OUTPUT_LIMIT = 1_000_000  # characters of stdout/stderr kept (the tail)
_DEAD_PROXY = "http://127.0.0.1:9"  # discard port: any proxied request fails fast


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


@dataclass
class _Tracked:
    """Processes seen belonging to one run: pid -> create_time (guards against pid reuse)."""

    pids: dict[int, float] = field(default_factory=dict)

    def add(self, process: psutil.Process) -> None:
        try:
            self.pids.setdefault(process.pid, process.create_time())
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass


class Sandbox:
    """Runs commands isolated as well as this machine allows; probes once and caches."""

    def __init__(self, *, protect: Sequence[Path | str] = (), isolation: str | None = None) -> None:
        """`protect`: paths made read-only where the isolation can (the workspace, HOME, ...).

        `isolation` forces a mode ("bubblewrap", "unshare", "plain"); None = strongest that works.
        """
        self._protect = [Path(p) for p in protect]
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

    def isolation_description(self) -> str:
        """One line for `doctor`: which isolation is active and what it guarantees."""
        mode = self.mode
        if mode == "bubblewrap":
            return ("bubblewrap: read-only filesystem outside the throwaway copy, PID namespace; "
                    "network isolation: full (own network namespace)")
        if mode == "unshare":
            return ("unshare: mount namespace, read-only filesystem outside the throwaway copy, "
                    "PID namespace; "
                    "network isolation: full (own network namespace, loopback only)")
        return ("plain process group: own session, timeout and resource limits, process-tree kill; "
                "network isolation: none (proxies disabled only)")

    def _probe(self) -> str:
        if sys.platform != "linux":
            return "plain"
        with tempfile.TemporaryDirectory(prefix="localcode-probe-") as scratch:
            guarded = Path(scratch) / "guarded"
            writable = Path(scratch) / "writable"
            guarded.mkdir()
            writable.mkdir()
            probe = f"echo x > {shlex.quote(str(guarded / 'f'))} 2>/dev/null; " \
                    f"echo ok > {shlex.quote(str(writable / 'f'))}"
            for mode in ("bubblewrap", "unshare"):
                prefix = self._prefix(mode, [guarded], [writable], writable)
                if prefix is None:
                    continue
                try:
                    completed = subprocess.run(
                        [*prefix, "sh", "-c", probe], stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10,
                    )
                except (OSError, subprocess.SubprocessError):
                    continue
                if (completed.returncode == 0 and not (guarded / "f").exists()
                        and (writable / "f").is_file()):
                    log.info("sandbox isolation: %s", mode)
                    return mode
                log.info("sandbox isolation %s probed and not usable (rc=%s)", mode,
                         completed.returncode)
        return "plain"

    def _prefix(self, mode: str, protect: Sequence[Path], writable: Sequence[Path],
                cwd: Path) -> list[str] | None:
        """argv prefix that wraps a command in `mode`, or None when the tool is missing."""
        if mode == "bubblewrap":
            bwrap = shutil.which("bwrap")
            if bwrap is None:
                return None
            argv = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
            for path in writable:
                argv += ["--bind", str(path), str(path)]
            return [*argv, "--unshare-net", "--unshare-pid", "--die-with-parent",
                    "--new-session", "--chdir", str(cwd)]
        if mode == "unshare":
            unshare = shutil.which("unshare")
            if unshare is None:
                return None
            # Everything read-only (the root and every other disk mount; /proc, /sys and /dev
            # stay), a private /dev/shm, then the protected paths again (they may be mounts of
            # their own), then the writable dirs bound and remounted writable.
            steps = ["mount -o remount,bind,ro / 2>/dev/null || true"]
            for mount_point in _disk_mount_points():
                quoted = shlex.quote(mount_point)
                steps.append(f"mount -o remount,bind,ro {quoted} 2>/dev/null || true")
            steps.append("mount -t tmpfs -o size=64m,mode=1777 tmpfs /dev/shm 2>/dev/null || true")
            for path in protect:
                if path.exists():
                    quoted = shlex.quote(str(path))
                    steps.append(f"mount --bind {quoted} {quoted}")
                    steps.append(f"mount -o remount,bind,ro {quoted}")
            for path in writable:
                quoted = shlex.quote(str(path))
                steps.append(f"mount --bind {quoted} {quoted}")
                steps.append(f"mount -o remount,bind,rw {quoted}")
            steps.append("(ip link set lo up) >/dev/null 2>&1 || true")
            # cd again so the working directory is looked up through the new mounts.
            steps.append(f"cd {shlex.quote(str(cwd))}")
            script = "set -e; " + "; ".join(steps) + '; exec "$@"'
            flags = ["--mount", "--net", "--pid", "--fork", "--kill-child",
                     "--propagation", "private"]
            if os.geteuid() != 0:
                flags.insert(0, "--map-root-user")
            return [unshare, *flags, "sh", "-c", script, "localcode-sandbox"]
        return []

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

        `writable` is the directory the command may write besides `scratch` (default: none, so
        a linter run in the user's tree cannot change it). HOME and TMPDIR point into `scratch`
        (default: a fresh temporary directory, removed afterwards).
        """
        limits = limits or Limits()
        cwd = Path(cwd)
        mode = self.mode
        owns_scratch = scratch is None
        scratch_dir = Path(scratch) if scratch is not None else Path(
            tempfile.mkdtemp(prefix="localcode-run-"))
        writable_dir = Path(writable) if writable is not None else scratch_dir
        started = time.monotonic()
        try:
            if cancel is not None and cancel.cancelled:
                return ProcessResult(list(argv), None, cancelled=True, isolation=mode)
            return self._run(list(argv), cwd, writable_dir, scratch_dir, timeout, env, limits,
                             cancel, stdin_text, mode, started)
        finally:
            if owns_scratch:
                remove_tree(scratch_dir)

    def _run(self, argv: list[str], cwd: Path, writable: Path, scratch: Path, timeout: float,
             env: Mapping[str, str] | None, limits: Limits, cancel: CancelToken | None,
             stdin_text: str | None, mode: str, started: float) -> ProcessResult:
        marker = uuid.uuid4().hex
        home = scratch / "home"
        tmp = scratch / "tmp"
        home.mkdir(parents=True, exist_ok=True)
        tmp.mkdir(parents=True, exist_ok=True)
        child_env = _base_env(home, tmp)
        if env:
            child_env.update(env)
        child_env[MARKER_VARIABLE] = marker

        writables = [writable] if _is_within(scratch, writable) else [writable, scratch]
        prefix = self._prefix(mode, self._protect, writables, cwd) or []
        full_argv = [*prefix, *argv]

        stdout_path = scratch / "stdout.txt"
        stderr_path = scratch / "stderr.txt"
        stdin_path = scratch / "stdin.txt"
        stdin_path.write_text(stdin_text or "", encoding="utf-8", errors="surrogateescape")
        result = ProcessResult(argv, None, isolation=mode)
        tracked = _Tracked()
        try:
            with open(stdin_path, "rb") as stdin, open(stdout_path, "wb") as stdout, \
                    open(stderr_path, "wb") as stderr:
                try:
                    process = subprocess.Popen(
                        full_argv, cwd=str(cwd), env=child_env, stdin=stdin, stdout=stdout,
                        stderr=stderr, start_new_session=True,
                        preexec_fn=_limit_setter(limits, timeout),
                    )
                except OSError as exc:
                    result.error = f"cannot run {argv[0]}: {exc.strerror or exc}"
                    result.seconds = time.monotonic() - started
                    return result
                try:
                    self._wait(process, result, tracked, timeout, cancel, started)
                finally:
                    result.killed = _kill_tree(process, marker, tracked)
                    if process.returncode is None:
                        process.wait()
            result.stdout = _tail(stdout_path)
            result.stderr = _tail(stderr_path)
        finally:
            result.seconds = time.monotonic() - started
        if result.returncode is None and not (result.timed_out or result.cancelled):
            result.returncode = process.returncode
        return result

    @staticmethod
    def _wait(process: subprocess.Popen, result: ProcessResult, tracked: _Tracked,
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


def remove_tree(path: Path) -> None:
    """Remove a directory tree even when a test made parts of it read-only."""

    def make_writable_and_retry(function, failed_path, _exc_info) -> None:
        try:
            os.chmod(os.path.dirname(failed_path), 0o700)
            os.chmod(failed_path, 0o700)
            function(failed_path)
        except OSError:
            pass

    if path.exists():
        shutil.rmtree(path, onerror=make_writable_and_retry)


# --- helpers ----------------------------------------------------------------------------------


def _base_env(home: Path, tmp: Path) -> dict[str, str]:
    """A minimal environment: no credentials or proxies of the user leak in."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "HOME": str(home),
        "TMPDIR": str(tmp),
        "TEMP": str(tmp),
        "TMP": str(tmp),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "NO_COLOR": "1",
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
    }
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY",
                 "ALL_PROXY", "ftp_proxy", "FTP_PROXY"):
        env[name] = _DEAD_PROXY
    env["no_proxy"] = env["NO_PROXY"] = ""
    env["PIP_NO_INDEX"] = "1"
    env["HF_HUB_OFFLINE"] = "1"
    return env


def _limit_setter(limits: Limits, timeout: float):
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

    def apply() -> None:
        _set_limit(resource.RLIMIT_CPU, cpu)
        if memory is not None:
            _set_limit(resource.RLIMIT_AS, memory)
        if fsize is not None:
            _set_limit(resource.RLIMIT_FSIZE, fsize)
        if nproc is not None:
            _set_limit(resource.RLIMIT_NPROC, nproc)
        _set_limit(resource.RLIMIT_CORE, 0)

    return apply


def _set_limit(which: int, value: int) -> None:
    try:
        _soft, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(which, (value, hard))
    except (ValueError, OSError):
        pass


def _kill_tree(process: subprocess.Popen, marker: str, tracked: _Tracked) -> int:
    """SIGKILL the group, every tracked descendant and every process carrying the marker.

    Returns how many processes other than the main one were still alive and got killed. Loops
    a few rounds so a process forking while we sweep is caught on the next round.
    """
    killed: set[int] = set()
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


def _disk_mount_points() -> list[str]:
    """Mount points other than / that a sandboxed run must not write to (not /proc, /sys,
    /dev: those are pseudo filesystems the tools need)."""
    points = []
    try:
        with open("/proc/self/mountinfo", encoding="utf-8") as handle:
            for line in handle:
                fields = line.split()
                if len(fields) < 5:
                    continue
                point = fields[4]
                if point == "/" or "\\" in point or point.startswith(("/proc", "/sys", "/dev")):
                    continue
                points.append(point)
    except OSError:
        pass
    return points


def _is_within(path: Path, parent: Path) -> bool:
    try:
        path.resolve().relative_to(parent.resolve())
        return True
    except ValueError:
        return False


def _tail(path: Path) -> str:
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            if size > _OUTPUT_LIMIT:
                handle.seek(size - _OUTPUT_LIMIT)
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
