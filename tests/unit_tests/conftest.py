"""Unit tests: offline and fast. ``scripts`` (scripted models) is importable from here."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
os.environ.setdefault("LANGSMITH_TRACING", "false")
