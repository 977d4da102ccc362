"""The allocator setting is taken where glibc is the C library (CI's Linux), and is harmless."""

from __future__ import annotations

import platform

import pytest

from objectives.engine.allocator import keep_freed_memory


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt's thresholds are glibc's")
def test_glibc_takes_the_thresholds() -> None:
    assert keep_freed_memory() is True
