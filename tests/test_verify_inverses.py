"""Round-trip self checks against a function's implemented inverse: which pairs count, and the
real gate running them."""

from __future__ import annotations

import ast
from pathlib import Path

from localcode_lsp.config import Config, VerificationConfig
from localcode_lsp.data import Candidate
from localcode_lsp.verify import Gate, VerifyRequest
from localcode_lsp.verify.inverses import inverse_checks
from localcode_lsp.workspace import Workspace

SHIFT = '''def encode_shift(s: str):
    """Every letter shifted by 5 in the alphabet."""
    return "".join(chr(((ord(ch) + 5 - ord("a")) % 26) + ord("a")) for ch in s)


def decode_shift(s: str):
    """Takes a string encoded with encode_shift; returns the decoded string."""
'''


def _calls(source: str, name: str) -> list[str]:
    return [example.call for example in inverse_checks(ast.parse(source), name)]


def test_a_decoder_is_checked_against_its_implemented_encoder():
    examples = inverse_checks(ast.parse(SHIFT), "decode_shift")
    assert [e.call for e in examples][:3] == [
        "decode_shift(encode_shift(''))", "decode_shift(encode_shift('a'))",
        "decode_shift(encode_shift('abc'))"]
    assert all(e.guard == e.call[len("decode_shift("):-1] for e in examples)
    assert examples[2].expected == "'abc'"


def test_an_encoder_is_checked_through_its_decoder_and_other_pairs_count():
    source = ('def to_code(n: int):\n    return str(n)\n\n'
              'def from_code(text):\n    return int(text)\n')
    assert _calls(source, "from_code")[:2] == ["from_code(to_code(0))", "from_code(to_code(1))"]
    encoder = ('def compress(data: bytes):\n    """Squeeze."""\n\n'
               'def decompress(data):\n    return data[::-1]\n')
    assert _calls(encoder, "compress")[0] == "decompress(compress(b''))"


def test_no_checks_without_an_implemented_partner_of_the_right_shape():
    stub_partner = SHIFT.replace('    return "".join(chr(((ord(ch) + 5 - ord("a")) % 26) + '
                                 'ord("a")) for ch in s)\n', "    ...\n")
    assert _calls(stub_partner, "decode_shift") == []
    assert _calls(SHIFT.replace("(s: str)", "(s)"), "decode_shift") == []  # no input type
    two_args = SHIFT.replace("def encode_shift(s: str):", "def encode_shift(s: str, k):")
    assert _calls(two_args, "decode_shift") == []
    assert _calls(SHIFT, "encode_shift") == []  # its decoder is the empty one
    assert _calls("def decode(s: str):\n    return s\n", "decode") == []


def _gate(root: Path) -> Gate:
    return Gate(Workspace(root), Config(verification=VerificationConfig(diff_review=False)))


def test_the_gate_runs_the_round_trip_and_skips_inputs_outside_the_encoder(tmp_path):
    (tmp_path / "cipher.py").write_text(SHIFT)
    request = VerifyRequest("cipher.py", SHIFT, symbol="decode_shift")
    gate = _gate(tmp_path)
    wrong = gate.verify(request, Candidate(1, "x", SHIFT + "    return s[::-1]\n"))
    assert not wrong.passed
    assert wrong.feedback[0] == ("TEST FAIL: example decode_shift \u2014 "
                                 "decode_shift(encode_shift('a')) expected 'a', got 'f'")
    right = SHIFT + ('    return "".join(chr(((ord(ch) - 5 - ord("a")) % 26) + ord("a"))'
                     ' for ch in s)\n')
    verdict = gate.verify(request, Candidate(2, "x", right))
    assert verdict.passed, verdict.feedback
    assert verdict.gates[-1].details["passed"] == 6
    # an encoder that rejects the empty string: that input is skipped, the others still run
    strict = SHIFT.replace('    return "".join', '    if not s:\n        raise ValueError("empty")'
                                                 '\n    return "".join')
    (tmp_path / "cipher.py").write_text(strict)
    request = VerifyRequest("cipher.py", strict, symbol="decode_shift")
    verdict = _gate(tmp_path).verify(request, Candidate(3, "x", strict + right[len(SHIFT):]))
    assert verdict.passed, verdict.feedback
    assert verdict.gates[-1].details["passed"] == 5
