"""Kept for the hardening tests' imports: the shared export cache lives in tests/factories.py."""

from factories import demo_export  # noqa: F401
