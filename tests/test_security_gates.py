"""Gates that must not pass when they cannot tell, and the server's own files in a sandbox's reach.

Each test is an attack through the public gate (`Gate.verify`) on a copy of tests/fixtures/
verify_calc: a test planting links where the server writes next, a candidate leaving pytest with
`os._exit(0)`, one that makes the tests disappear, one printing a fake doctest result, one
calling `os.system`, a copy that silently loses a file, and plain mode running project code
without the user's consent.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from support.sandbox_modes import ISOLATED_MODES, require_mode

from localcode_lsp.config import Config, VerificationConfig
from localcode_lsp.data import Candidate
from localcode_lsp.verify import Gate, Sandbox, VerifyRequest
from localcode_lsp.verify.private_files import remove_tree
from localcode_lsp.workspace import Workspace

TARGET = "calc/ops.py"
BODY = "    return len([part for part in text.split(',') if part.strip()])\n"


@pytest.fixture
def calc(copy_fixture) -> Path:
    return copy_fixture("verify_calc")


def _gate(root: Path, mode: str | None = None, **verification) -> Gate:
    settings = {"diff_review": False, "lint": False, **verification}
    gate = Gate(Workspace(root), Config(verification=VerificationConfig(**settings)))
    if mode is not None:
        gate.sandbox = Sandbox(protect=gate.sandbox._protect, isolation=mode)
    return gate


def _request(root: Path, **fields) -> VerifyRequest:
    fields.setdefault("symbol", "parse_input")
    fields.setdefault("test_refs", ("tests/test_ops.py",))
    return VerifyRequest(TARGET, (root / TARGET).read_text(), task="count the integers",
                         **fields)


def _candidate(request: VerifyRequest, body: str) -> Candidate:
    text = request.original_text.replace("    return None\n", body)
    assert text != request.original_text
    return Candidate(1, body, text)


def _gate_named(verdict, name: str):
    return next(g for g in verdict.gates if g.gate == name)


# --- item 2: links planted by one run never redirect the server's next write -----------------------


PLANTER = '''
import os
from pathlib import Path

NAMES = ("stdout.txt", "stderr.txt", "stdin.txt", "doctest_source.txt",
         "docstring_examples.json", "localcode_doctest.py")


def test_plant_links():
    victim = Path(__file__).resolve().parent.parent / "victim.txt"
    victim = Path(victim.read_text().strip())
    base = Path.cwd().parent  # the copy's parent: the dir the sandbox may write
    for directory in [base, *[p for p in base.rglob("*") if p.is_dir() and not p.is_symlink()
                              and "root" not in p.relative_to(base).parts]]:
        for name in NAMES:
            try:
                os.symlink(victim / "file.txt", directory / name)
            except OSError:
                pass
    scratch = base / "scratch"
    if scratch.is_dir() and not scratch.is_symlink():
        os.rename(scratch, base / "scratch-moved")
        os.symlink(victim, scratch)  # HOME, TMPDIR and bind mounts of the next run
'''


@pytest.mark.parametrize("mode", [*ISOLATED_MODES, "plain"])
def test_links_planted_by_a_test_never_redirect_the_servers_writes(calc, tmp_path, mode):
    require_mode(mode)
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "file.txt").write_text("precious\n")
    (calc / "victim.txt").write_text(str(victim))
    (calc / "tests" / "test_plant.py").write_text(PLANTER)
    gate = _gate(calc, mode, allow_unisolated=True)
    request = _request(calc, test_refs=("tests/test_plant.py",),
                       doctest_source=">>> parse_input('1,2')\n2\n")
    gate.verify(request, _candidate(request, BODY))
    assert (victim / "file.txt").read_text() == "precious\n"
    assert sorted(p.name for p in victim.iterdir()) == ["file.txt"]


# --- item 7: cleanup never chmods through a link --------------------------------------------------


REMOVER = """
import os, sys
from pathlib import Path
from localcode_lsp.verify.private_files import remove_tree
base = Path(sys.argv[1])
remove_tree(base / "tree")
print(oct(os.stat(base / "victim.txt").st_mode & 0o777))
"""


def test_cleanup_never_chmods_through_a_link(tmp_path):
    base = tmp_path / "work"
    (base / "tree" / "locked").mkdir(parents=True)
    victim = base / "victim.txt"
    victim.write_text("user file\n")
    os.chmod(victim, 0o600)
    os.symlink(victim, base / "tree" / "locked" / "link")
    os.chmod(base / "tree" / "locked", 0o500)  # unlinking the link fails: the error handler runs
    argv = [sys.executable, "-c", REMOVER, str(base)]
    if os.geteuid() == 0:  # root ignores directory modes: remove as an unprivileged user
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.fail("setpriv (util-linux) is needed to run this test as root")
        os.chmod(tmp_path, 0o755)
        for path in (base, base / "tree", base / "tree" / "locked", victim):
            os.lchown(path, 65534, 65534)
        os.lchown(base / "tree" / "locked" / "link", 65534, 65534)
        # that user must reach the work dir, this checkout (a fresh clone may sit in a 0700
        # mktemp dir) and the interpreter's environment
        for start in (tmp_path, Path(__file__).resolve().parents[1], Path(sys.prefix)):
            parent = start
            while parent != parent.parent:
                os.chmod(parent, os.stat(parent).st_mode | 0o011)  # traversable for that user
                parent = parent.parent
        argv = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", *argv]
    completed = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                               cwd=Path(__file__).resolve().parents[1])
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "0o600"  # the user file's mode is untouched
    assert not (base / "tree").exists()


def test_remove_tree_of_a_link_removes_only_the_link(tmp_path):
    target = tmp_path / "precious"
    target.mkdir()
    (target / "keep.txt").write_text("x")
    os.symlink(target, tmp_path / "link")
    remove_tree(tmp_path / "link")
    assert (target / "keep.txt").read_text() == "x"
    assert not os.path.lexists(tmp_path / "link")


# --- item 8: a gate that could not decide fails -----------------------------------------------------


def test_pytest_ending_without_its_report_is_a_failure(calc):
    """`os._exit(0)` (hidden from the static check) ends pytest with 0 and no report."""
    body = "    import sys\n    f = getattr(sys.modules['o' + 's'], '_ex' + 'it')\n    f(0)\n"
    request = _request(calc)
    verdict = _gate(calc).verify(request, _candidate(request, body))
    test = _gate_named(verdict, "test")
    assert not test.passed
    assert any("without writing its report" in line for line in test.feedback), test.feedback


def test_no_tests_collected_when_the_original_collects_some_is_a_failure(calc):
    body = ("    return 0\n\n\nimport pytest\n"
            "pytest.skip('tests vanish', allow_module_level=True)\n")
    request = _request(calc)
    verdict = _gate(calc).verify(request, _candidate(request, body))
    test = _gate_named(verdict, "test")
    assert not test.passed
    assert any("no tests collected" in line for line in test.feedback), test.feedback


def test_a_fake_doctest_result_line_is_not_believed(calc):
    body = textwrap.dedent("""\
        print('LOCALCODE-DOCTEST-RESULT:[{"attempted": 1}]')
        print('LOCALCODE-DOCTEST-RESULT::[{"attempted": 1}]')
        import sys
        getattr(sys.modules['o' + 's'], '_ex' + 'it')(0)
    """)
    request = _request(calc, test_refs=(), doctest_source=">>> parse_input('1,2')\n2\n")
    original = request.original_text
    text = original.replace("    return None\n", "    return 0\n") + "\n" + body
    verdict = _gate(calc).verify(request, Candidate(1, body, text))
    test = _gate_named(verdict, "test")
    assert not test.passed, test
    assert any("without its result" in line for line in test.feedback), test.feedback


@pytest.mark.parametrize("body", [
    "    import os\n    os.system('touch /tmp/lc-pwned')\n    return 3\n",
    "    import subprocess\n    subprocess.run(['true'])\n    return 3\n",
    "    import os\n    if os.fork() == 0:\n        os._exit(0)\n    return 3\n",
    "    open('/tmp/lc-pwned', 'w').write('x')\n    return 3\n",
    "    from pathlib import Path\n    Path('x').write_text('x')\n    return 3\n",
    "    import shutil\n    shutil.rmtree('/tmp/x')\n    return 3\n",
])
def test_a_candidate_that_spawns_exits_or_writes_files_is_flagged(calc, body):
    request = _request(calc)
    verdict = _gate(calc).verify(request, _candidate(request, body))
    safety = _gate_named(verdict, "safety")
    assert not safety.passed
    assert safety.feedback and safety.feedback[0].startswith("UNSAFE: candidate calls")
    assert [g.gate for g in verdict.gates] == ["parse", "safety"]  # nothing of it ran


def test_a_risky_call_the_task_asks_for_is_not_flagged(calc):
    request = VerifyRequest(TARGET, (calc / TARGET).read_text(), symbol="parse_input",
                            task="count the integers, using subprocess to call wc",
                            test_refs=("tests/test_ops.py",))
    body = "    import subprocess\n    subprocess.run(['true'])\n" + BODY
    verdict = _gate(calc).verify(request, _candidate(request, body))
    assert _gate_named(verdict, "safety").passed


def test_a_risky_call_the_original_already_makes_is_not_flagged(calc):
    path = calc / TARGET
    path.write_text(path.read_text() + "\n\ndef run():\n    os.system('true')\n")
    request = _request(calc)
    verdict = _gate(calc).verify(request, _candidate(request, BODY))
    assert _gate_named(verdict, "safety").passed, verdict.feedback


# --- item 4: plain mode runs project code only when the user allowed it ---------------------------


def test_plain_mode_does_not_run_tests_unless_allowed(calc, tmp_path):
    marker = tmp_path / "ran.txt"
    (calc / "tests" / "test_marker.py").write_text(
        f"def test_marker():\n    open({str(marker)!r}, 'w').write('ran')\n")
    request = _request(calc, test_refs=("tests/test_marker.py",))
    verdict = _gate(calc, "plain").verify(request, _candidate(request, BODY))
    test = _gate_named(verdict, "test")
    assert "allow_unisolated" in test.skipped
    assert test.details["isolation"] == "plain"
    assert not marker.exists()

    verdict = _gate(calc, "plain", allow_unisolated=True).verify(request,
                                                                 _candidate(request, BODY))
    test = _gate_named(verdict, "test")
    assert test.passed and not test.skipped and test.details["isolation"] == "plain"
    assert marker.read_text() == "ran"


@pytest.mark.parametrize("mode", ISOLATED_MODES)
def test_every_test_result_says_its_isolation(calc, mode):
    require_mode(mode)
    request = _request(calc)
    verdict = _gate(calc, mode).verify(request, _candidate(request, BODY))
    test = _gate_named(verdict, "test")
    assert test.passed and test.details["isolation"] == mode


# --- item 12: a copy that loses a file fails the verdict --------------------------------------------


def test_a_file_the_copy_could_not_write_fails_the_verdict(calc, monkeypatch):
    (calc / "calc" / "helper.py").write_text("HELP = 1\n")
    real_copyfile = shutil.copyfile

    def failing_copyfile(source, destination, *args, **kwargs):
        if str(source).endswith("helper.py"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_copyfile(source, destination, *args, **kwargs)

    monkeypatch.setattr("localcode_lsp.verify.workcopy.shutil.copyfile", failing_copyfile)
    request = _request(calc)
    verdict = _gate(calc).verify(request, _candidate(request, BODY))
    test = _gate_named(verdict, "test")
    assert not test.passed
    assert any("calc/helper.py" in line and "No space left" in line
               for line in test.feedback), test.feedback
