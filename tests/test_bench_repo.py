"""The real-repository benchmark: blanking a function, choosing the ones the tests cover, and
scoring a run on a small prepared project (scripted backend)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

prepare = pytest.importorskip("bench.repo.prepare")
repo = pytest.importorskip("bench.repo.__main__")
from support.scripted_backend import ScriptedBackend  # noqa: E402

MODULE = textwrap.dedent('''\
    """A tiny library."""


    def double(x):
        """Twice x."""
        return x * 2


    def shout(text):
        """Upper case with a bang."""
        loud = text.upper()
        return loud + "!"


    def untested(x):
        """Nobody tests this one."""
        return x
    ''')
TESTS = textwrap.dedent('''\
    from mylib import double, shout


    def test_double():
        assert double(3) == 6


    def test_shout():
        assert shout("hi") == "HI!"
    ''')


@pytest.fixture
def prepared(tmp_path) -> tuple[Path, Path]:
    """A prepared cache holding project `mylib` 1.0 and a data file choosing its functions."""
    cache = tmp_path / "cache"
    root = cache / "mylib-1.0"
    root.mkdir(parents=True)
    (root / "mylib.py").write_text(MODULE)
    (root / "test_mylib.py").write_text(TESTS)
    (root / ".complete").write_text("sha\n")
    data = tmp_path / "functions.json"
    functions = [{"task_id": f"mylib:mylib.py:{name}", "project": "mylib", "path": "mylib.py",
                  "function": name, "tests": ["test_mylib.py"]} for name in ("double", "shout")]
    data.write_text(json.dumps({"projects": {"mylib": {"version": "1.0", "sha256": "0" * 64}},
                                "functions": functions}))
    return cache, data


def test_blanking_keeps_signature_and_docstring_and_the_rest_of_the_file():
    stub = prepare.blank(MODULE, "shout")
    assert '    """Upper case with a bang."""\n\n\ndef untested' in stub.stub
    assert "loud" not in stub.stub and "return x * 2" in stub.stub
    assert stub.prefix.endswith('"""Upper case with a bang."""\n')
    body = '    loud = text.upper()\n    return loud + "!"\n'
    assert stub.prefix + body + stub.suffix == MODULE
    assert stub.def_indent == 0
    with pytest.raises(ValueError, match="no top-level function 'nope'"):
        prepare.blank(MODULE, "nope")


def test_only_functions_the_tests_cover_are_chosen_and_the_file_is_restored(prepared):
    cache, _ = prepared
    root = cache / "mylib-1.0"
    assert prepare.choose(root, "mylib.py", ["test_mylib.py"]) == ["double", "shout"]
    assert (root / "mylib.py").read_text() == MODULE


def test_raw_fim_is_scored_by_the_projects_tests_and_the_checkout_restored(prepared, tmp_path,
                                                                           capsys):
    cache, data = prepared
    backend = ScriptedBackend(outputs=["    return x + x\n", '    return text + "!"\n'],
                              fim_template="qwen")
    out = tmp_path / "repo.json"
    assert repo.main(["--arms", "raw_fim", "--data", str(data), "--cache", str(cache),
                      "--out", str(out)], backend=backend) == 0
    # the model saw the file before and after the blanked body, nothing else
    first = backend.calls[0]
    assert first.prompt.endswith('    """Twice x."""\n') and first.suffix.startswith("\n\ndef shout")
    report = json.loads(out.read_text())
    double, shout = (row["raw_fim"] for row in report["rows"])
    assert (double["passed"], double["edit_wrong"]) == (True, False)
    assert (shout["passed"], shout["edit_wrong"]) == (False, True)
    assert report["totals"]["raw_fim"]["passed"] == 1
    work = cache / "work" / "mylib-1.0" / "mylib.py"
    assert work.read_text() == MODULE  # every blanked file put back
    assert (cache / "mylib-1.0" / "mylib.py").read_text() == MODULE
    printed = capsys.readouterr().out
    assert "raw_fim" in printed
    assert repo.main(["--report-only", "--out", str(out)]) == 0  # the same table again
    assert capsys.readouterr().out == printed[printed.index("real repository, "):printed.index("JSON: ")]


def test_an_unprepared_checkout_is_named(prepared, tmp_path):
    cache, data = prepared
    (cache / "mylib-1.0" / ".complete").unlink()
    with pytest.raises(SystemExit, match="is not prepared: run `python -m bench.repo.prepare`"):
        repo.main(["--data", str(data), "--cache", str(cache), "--out", str(tmp_path / "r.json")],
                  backend=ScriptedBackend())


def test_the_committed_set_pins_each_sdist_and_names_each_function_once():
    projects, functions = repo.load_set()
    assert set(projects) == {"toolz", "inflection"}
    for spec in projects.values():
        assert len(spec["sha256"]) == 64 and spec["version"]
    assert len(functions) >= 40
    assert len({f["task_id"] for f in functions}) == len(functions)
    halves = [repo.select(functions, half, (), None) for half in ("tune", "report")]
    assert len(halves[0]) + len(halves[1]) == len(functions)
    assert not {f["task_id"] for f in halves[0]} & {f["task_id"] for f in halves[1]}
