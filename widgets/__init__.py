"""Reusable widgets. They take plain data and never import backends' engine or adapters."""
