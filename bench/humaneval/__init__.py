"""HumanEval outcome benchmark: raw model vs the localcode harness (see __main__)."""
