"""Command-line evaluation and reporting: ``python -m eval ...``."""
