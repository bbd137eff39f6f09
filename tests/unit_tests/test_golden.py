"""Golden files: fixed-seed searches on the scripted model give the identical result.

They pin the whole ``RStarResult`` (tree, candidates, trajectory, verification, token
counts; wall-clock fields left out) and every request the model received (prompt text,
``n``, stop strings and sampling keywords, as a sorted multiset: parallel branches may call
in any order) of today's behaviour, the ``fast`` profile. A refactoring must leave them
identical. Regenerate only for a deliberate behaviour change:
``RSTAR_GOLDEN_WRITE=1 python -m pytest tests/unit_tests/test_golden.py``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from langchain_rstar import RStarChain, RStarConfig
from langchain_rstar.testing import APPLES_QUESTION, apples_llm

GOLDEN = Path(__file__).parent / "golden"
_VOLATILE = {"wall_seconds", "model_seconds", "framework_seconds"}


def _fast(**kwargs: Any) -> RStarConfig:
    # Today's behaviour is the ``fast`` profile once profiles exist.
    factory = getattr(RStarConfig, "fast", RStarConfig)
    return factory(**kwargs)


CASES: dict[str, dict[str, Any]] = {
    "sequential_verified": {
        "config": {"num_rollouts": 8, "seed": 0},
        "discriminator": True,
    },
    "waves_verified_words": {
        "config": {"num_rollouts": 12, "rollout_batch": 4, "seed": 3, "mask_unit": "word"},
        "discriminator": True,
    },
    "generator_only": {
        "config": {"num_rollouts": 6, "seed": 1, "num_votes": 4},
        "discriminator": False,
    },
}


def _requests(llm: Any) -> list[str]:
    out = []
    for prompts, kwargs in llm.calls:
        for prompt in prompts:
            digest = hashlib.sha256(prompt.encode("utf-8")).hexdigest()[:16]
            out.append(f"{digest} {json.dumps(kwargs, sort_keys=True, default=str)}")
    return sorted(out)


def _run(case: dict[str, Any]) -> dict[str, Any]:
    gen = apples_llm()
    kwargs: dict[str, Any] = {"generator": gen, "config": _fast(**case["config"])}
    disc = apples_llm() if case["discriminator"] else None
    if disc is not None:
        kwargs["discriminator"] = disc
    elif hasattr(RStarConfig, "fast"):
        kwargs["discriminator"] = False  # verification on by default once profiles exist
    result = RStarChain(**kwargs).invoke(APPLES_QUESTION)
    data = result.model_dump(mode="json")
    for key in _VOLATILE:
        data["usage"].pop(key, None)
    data["generator_requests"] = _requests(gen)
    if disc is not None:
        data["discriminator_requests"] = _requests(disc)
    return data


@pytest.mark.parametrize("name", sorted(CASES))
def test_result_matches_golden_file(name: str) -> None:
    data = _run(CASES[name])
    path = GOLDEN / f"{name}.json"
    text = json.dumps(data, indent=1, sort_keys=True) + "\n"
    if os.environ.get("RSTAR_GOLDEN_WRITE"):
        path.write_text(text, encoding="utf-8")
    expected = json.loads(path.read_text(encoding="utf-8"))
    assert data == expected
