"""lakedeck's engine and adapters. Never imports textual, tui or widgets (tests/test_import_hygiene.py)."""

__version__ = "0.1.0"
