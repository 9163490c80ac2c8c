"""Command-line training: ``python -m train CONFIG.yaml``."""
