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
"""

from __future__ import annotations

import ctypes
import os
import resource
import shlex
import shutil
import signal
import stat
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
_PR_SET_PDEATHSIG = 1
_LAUNCH_FAILED = 127  # the plain launcher's exit code when the command cannot be started
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
            prefix = self._prefix(mode, [guarded], [writable], writable)
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

    def _prefix(self, mode: str, protect: Sequence[Path], writable: Sequence[Path],
                cwd: Path) -> list[str] | None:
        """argv prefix that wraps a command in `mode`, or None when the tool is missing."""
        writable = [Path(os.path.realpath(p)) for p in writable]
        # the working directory must stay visible even under a hidden dir (read-only)
        protect = [Path(os.path.realpath(p)) for p in (*protect, cwd) if os.path.isdir(p)]
        protect = [p for p in dict.fromkeys(protect) if not any(
            _is_within(p, w) for w in writable)]
        hidden = _hidden_dirs()
        if mode == "bubblewrap":
            bwrap = shutil.which("bwrap")
            if bwrap is None:
                return None
            argv = [bwrap, "--unshare-all", "--cap-drop", "ALL", "--die-with-parent",
                    "--new-session", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
            for hidden_dir in hidden:
                argv += ["--tmpfs", hidden_dir]
            # sources are looked up outside the new mounts, so paths under a hidden dir work
            for path in protect:
                argv += ["--ro-bind", str(path), str(path)]
            for path in writable:
                argv += ["--bind", str(path), str(path)]
            for secret in _secret_dirs([*writable, cwd]):
                argv += ["--tmpfs", secret]
            return [*argv, "--chdir", str(cwd)]
        if mode == "unshare":
            unshare = shutil.which("unshare")
            setpriv = shutil.which("setpriv")
            if unshare is None or setpriv is None:
                return None
            return [unshare, "--user", "--map-root-user", "--mount", "--net", "--pid", "--fork",
                    "--kill-child", "--propagation", "private", "sh", "-c",
                    _unshare_script(protect, writable, hidden, cwd, setpriv), "localcode-sandbox"]
        return [sys.executable, "-I", "-S", "-c", _PLAIN_LAUNCHER, str(os.getpid())]

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
                writable_dir = _plain_directory(Path(writable))
                parent = _plain_directory(Path(scratch)) if scratch is not None else writable_dir
                if not _is_within(parent, writable_dir):
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
        child_env = _base_env(home, tmp)
        if env:
            child_env.update(env)
        child_env[MARKER_VARIABLE] = marker

        prefix = self._prefix(mode, self._protect, [writable], cwd) or []
        full_argv = [*prefix, *argv]

        result = ProcessResult(argv, None, isolation=mode)
        tracked = _Tracked()
        stdout_path = control / "stdout.txt"
        stderr_path = control / "stderr.txt"
        try:
            with _private_file(control / "stdin.txt", "w+b") as stdin, \
                    _private_file(stdout_path, "wb") as stdout, \
                    _private_file(stderr_path, "wb") as stderr:
                stdin.write((stdin_text or "").encode("utf-8", "surrogateescape"))
                stdin.flush()
                stdin.seek(0)
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
                    result.killed = _kill_tree(process, marker, tracked, mode)
                    if process.returncode is None:
                        process.wait()
            result.stdout = _tail(stdout_path)
            result.stderr = _tail(stderr_path)
        finally:
            result.seconds = time.monotonic() - started
        if result.returncode is None and not (result.timed_out or result.cancelled):
            result.returncode = process.returncode
        if mode == "plain" and result.returncode == _LAUNCH_FAILED and \
                result.stderr.startswith("cannot run "):
            result.error = result.stderr.strip().splitlines()[0]  # the launcher's exec failed
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
    """Remove a directory tree even when a test made parts of it read-only.

    Never changes anything through a link: only real directories are made writable again
    (a link is removed itself, whatever it points to).
    """

    def make_writable_and_retry(function, failed_path, _exc_info) -> None:
        try:
            for directory in (os.path.dirname(failed_path), failed_path):
                _chmod_directory(directory)
            function(failed_path)
        except OSError:
            pass

    if os.path.islink(path):
        os.unlink(path)
    elif path.exists():
        shutil.rmtree(path, onerror=make_writable_and_retry)


def _chmod_directory(path: str) -> None:
    """`chmod 700` a real directory; a link (or anything else) is left alone."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_DIRECTORY)
    except OSError:
        # unreadable (mode 000) directories cannot be opened: chmod by name, but only after
        # lstat says it is a directory and not a link
        info = os.lstat(path)
        if stat.S_ISDIR(info.st_mode):
            os.chmod(path, 0o700)
        return
    try:
        os.fchmod(fd, 0o700)
    finally:
        os.close(fd)


class UnsafePath(OSError):
    """A path the server was about to use turned out to be (or pass through) a link."""


def _plain_directory(path: Path) -> Path:
    """`path` as an absolute real directory; UnsafePath when any component is a link."""
    absolute = Path(os.path.abspath(path))
    if os.path.realpath(absolute) != str(absolute) or not absolute.is_dir():
        raise UnsafePath(f"refusing to use {path}: not a plain directory (a link in the path?)")
    return absolute


def _private_file(path: Path, mode: str):
    """Create and open `path`, never through a link and never an existing file."""
    flags = os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    flags |= os.O_RDWR if "+" in mode else os.O_WRONLY
    return os.fdopen(os.open(path, flags, 0o600), mode)


def private_dir(parent: Path, prefix: str = "in-") -> tuple[Path, int]:
    """A fresh directory in `parent` and a descriptor of it (write there with `write_private`
    even if the sandboxed code renames or replaces the directory afterwards)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=_plain_directory(parent)))
    return path, os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)


def write_private(dir_fd: int, name: str, text: str) -> None:
    """Write a new file `name` in the directory `dir_fd`, never through a link."""
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o644, dir_fd=dir_fd)
    with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as handle:
        handle.write(text)


def read_private(dir_fd: int, name: str, limit: int = 10_000_000) -> str | None:
    """The text of the regular file `name` in `dir_fd`; None when it is missing, a link or
    anything but a regular file (a sandboxed run may have left anything there)."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                     dir_fd=dir_fd)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return None
        return handle.read(limit).decode("utf-8", "replace")


# --- isolation helpers --------------------------------------------------------------------


def _hidden_dirs() -> list[str]:
    """Directories replaced by an empty tmpfs in the sandbox: where host unix sockets live
    (docker.sock, the D-Bus session bus, the ssh agent, X11) and shared temp space."""
    candidates = ["/tmp", "/var/tmp", "/run", "/var/run", "/dev/shm"]
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        candidates.append(runtime)
    found: list[str] = []
    for path in candidates:
        if not os.path.isabs(path) or os.path.islink(path) or not os.path.isdir(path):
            continue  # /var/run is usually a link to /run: hidden with it
        real = os.path.realpath(path)
        if any(real == done or real.startswith(done + os.sep) for done in found):
            continue
        found.append(real)
    return found


# Directories of the user's home that hold credentials and agent sockets (ssh ControlMaster
# and agent sockets, gpg-agent, rootless docker, cloud CLIs): hidden behind an empty tmpfs, as
# home itself stays readable (a project's interpreter may live there).
_SECRET_DIRS = (".ssh", ".gnupg", ".aws", ".docker", ".kube", ".azure", ".config/gcloud",
                ".password-store", ".local/share/keyrings")


def _secret_dirs(needed: Sequence[Path]) -> list[str]:
    """The existing secret dirs of HOME, except one holding a path the run needs."""
    try:
        home = Path.home()
    except (RuntimeError, KeyError):
        return []
    found = []
    for name in _SECRET_DIRS:
        path = home / name
        if path.is_symlink() or not path.is_dir():
            continue
        real = Path(os.path.realpath(path))
        if any(_is_within(Path(n), real) for n in needed):
            continue
        found.append(str(real))
    return found


def _unshare_script(protect: Sequence[Path], writable: Sequence[Path], hidden: Sequence[str],
                    cwd: Path, setpriv: str) -> str:
    """The shell run as root of the new user namespace: mounts, then drop every capability.

    Order matters: every path that must stay visible is first bound into a private staging
    tmpfs (the hidden dirs may contain it), then the filesystem goes read-only, the hidden dirs
    get empty tmpfs mounts, the staged paths are bound back (read-only, or writable for the
    throwaway dirs), the staging area goes away, /proc is mounted for the new PID namespace,
    and `setpriv` execs the command with no capabilities and no-new-privileges: it cannot
    undo a mount (CAP_SYS_ADMIN is gone from the bounding set, for good).
    """
    stage = "/dev/shm"
    steps = [f"mount -t tmpfs -o size=1m,mode=700 tmpfs {stage}"]
    kept = [(p, "ro") for p in protect] + [(p, "rw") for p in writable]
    for index, (path, _how) in enumerate(kept):
        steps.append(f"mkdir {stage}/{index}")
        steps.append(f"mount --rbind {shlex.quote(str(path))} {stage}/{index}")
    steps.append("mount -o remount,bind,ro / 2>/dev/null || true")
    for mount_point in _disk_mount_points():
        quoted = shlex.quote(mount_point)
        steps.append(f"mount -o remount,bind,ro {quoted} 2>/dev/null || true")
    for hidden_dir in hidden:
        if hidden_dir == stage:
            continue
        quoted = shlex.quote(hidden_dir)
        steps.append(f"if [ -d {quoted} ]; then mount -t tmpfs -o size=64m,mode=1777 tmpfs "
                     f"{quoted}; fi")
    for index, (path, how) in enumerate(kept):
        quoted = shlex.quote(str(path))
        steps.append(f"mkdir -p {quoted} 2>/dev/null || true")
        steps.append(f"mount --rbind {stage}/{index} {quoted}")
        steps.append(f"mount -o remount,bind,{how} {quoted}")
    for secret in _secret_dirs([*writable, cwd]):  # after the binds: HOME re-exposed them
        steps.append(f"mount -t tmpfs -o size=1m,mode=700 tmpfs {shlex.quote(secret)}")
    steps.append(f"umount -l {stage}")
    steps.append(f"mount -t tmpfs -o size=64m,mode=1777 tmpfs {stage}")
    steps.append("mount -t proc proc /proc")
    steps.append("(ip link set lo up) >/dev/null 2>&1 || true")
    # cd again so the working directory is looked up through the new mounts.
    steps.append(f"cd {shlex.quote(str(cwd))}")
    drop = f"{shlex.quote(setpriv)} --no-new-privs --inh-caps=-all --ambient-caps=-all " \
           "--bounding-set=-all --"
    return "set -e; " + "; ".join(steps) + f'; exec {drop} "$@"'


# The plain mode's launcher (run with `python -I -S -c`): the run's child subreaper, so every
# orphan of the command (a `setsid` daemon that cleared its environment too) becomes its child;
# it dies with the server (PR_SET_PDEATHSIG: SIGTERM, handled by killing every descendant) and
# kills every descendant when the command ends.
_PLAIN_LAUNCHER = r"""
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


def _kill_tree(process: subprocess.Popen, marker: str, tracked: _Tracked, mode: str) -> int:
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
