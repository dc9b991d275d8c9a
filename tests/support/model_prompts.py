"""Prompts on which the embedded model shows a behaviour a test relies on."""

# Greedy gemma-3-270m opens this body with `# TODO: ...` comments and never writes code.
COMMENT_FIRST_PROMPT = (
    "from typing import List\n\n\n"
    "def filter_by_substring(strings: List[str], substring: str) -> List[str]:\n"
    '    """ Filter an input list of strings only for ones that contain given substring\n'
    "    >>> filter_by_substring([], 'a')\n    []\n"
    "    >>> filter_by_substring(['abc', 'bacd', 'cde', 'array'], 'a')\n"
    "    ['abc', 'bacd', 'array']\n"
    '    """\n')
