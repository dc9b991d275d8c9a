"""Bug fixing benchmark: single-line bugs in HumanEval's canonical solutions (see __main__)."""
