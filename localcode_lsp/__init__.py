"""localcode: a coding assistant for small local models, delivered as a language server."""

__version__ = "0.1.0"
