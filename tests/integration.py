"""Real components: a missing one skips with its reason, or fails under LAKEDECK_REQUIRE_INTEGRATION=1 (CI)."""

from __future__ import annotations

import os
import shutil

import pytest


def required() -> bool:
    return os.environ.get("LAKEDECK_REQUIRE_INTEGRATION") == "1"


def need_binary(name: str, install_hint: str) -> str:
    path = shutil.which(name)
    if path is None:
        reason = f"{name} is not installed ({install_hint})"
        if required():
            pytest.fail(f"LAKEDECK_REQUIRE_INTEGRATION=1 but {reason}")
        pytest.skip(reason)
    return path
