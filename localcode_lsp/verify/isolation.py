"""How a run is isolated: the argv that wraps a command in each mode, and what it sees.

`wrapper_argv` builds the prefix for a mode: `bwrap` options, or the `unshare` shell script
(`_unshare_script`: read-only remounts, then every capability dropped), or the plain launcher.
This module owns what a run can see and reach: the directories hidden behind empty tmpfs
mounts (`/tmp`, `/run` & co. where host unix sockets live, and the credential dirs of HOME),
which mount points are remounted read-only, and the minimal environment (`base_env`: no
credentials, proxies pointed at a dead port, package indexes off). Which mode a machine
supports is probed by `Sandbox` itself (`sandbox.py`).
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from .process_tree import PLAIN_LAUNCHER

_DEAD_PROXY = "http://127.0.0.1:9"  # discard port: any proxied request fails fast


def wrapper_argv(mode: str, protect: Sequence[Path], writable: Sequence[Path],
                 cwd: Path) -> list[str] | None:
    """argv prefix that wraps a command in `mode`, or None when the tool is missing."""
    writable = [Path(os.path.realpath(p)) for p in writable]
    # the working directory must stay visible even under a hidden dir (read-only)
    protect = [Path(os.path.realpath(p)) for p in (*protect, cwd) if os.path.isdir(p)]
    protect = [p for p in dict.fromkeys(protect) if not any(
        is_within(p, w) for w in writable)]
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
    return [sys.executable, "-I", "-S", "-c", PLAIN_LAUNCHER, str(os.getpid())]


def base_env(home: Path, tmp: Path) -> dict[str, str]:
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
        if any(is_within(Path(n), real) for n in needed):
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


def is_within(path: Path, parent: Path) -> bool:
    """Whether `path` lies inside `parent` (or is it), links resolved."""
    try:
        path.resolve().relative_to(parent.resolve())
        return True
    except ValueError:
        return False
