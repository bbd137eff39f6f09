"""Top-p inside the top-k shortlist (the CPU-cheap form of vLLM's top-k + top-p)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from langchain_rstar.llms.base import top_p_is_costly
from langchain_rstar.llms.vllm_engine import VLLMEngine, build_sampling_params, shortlist_options

torch = pytest.importorskip("torch")
pytest.importorskip("vllm")

from vllm.v1.sample.ops.topk_topp_sampler import apply_top_k_top_p_pytorch  # noqa: E402

from langchain_rstar.llms._shortlist import (  # noqa: E402
    EXTRA_KEY,
    FQCN,
    ShortlistTopP,
    shortlist_top_k_top_p,
)


@pytest.mark.parametrize("scale", [0.3, 2.0, 8.0])  # flat to peaked distributions
@pytest.mark.parametrize("vocab", [256, 4096])  # vLLM's reference needs k <= vocab
def test_same_kept_tokens_as_vllms_sort(scale: float, vocab: int) -> None:
    gen = torch.Generator().manual_seed(int(scale * 10) + vocab)
    for _ in range(5):
        logits = torch.randn(8, vocab, generator=gen) * scale
        k = torch.tensor([40, 40, 5, 1, 200, 40, 40, 40])
        p = torch.tensor([0.95, 0.5, 0.95, 0.95, 0.9, 1.0, 0.99, 0.1])
        ref = apply_top_k_top_p_pytorch(logits.clone(), k.clone(), p.clone())
        mine = shortlist_top_k_top_p(logits.clone(), k.clone(), p.clone())
        assert torch.equal(ref == -float("inf"), mine == -float("inf"))


def test_top_k_one_and_p_one_edges() -> None:
    logits = torch.tensor([[0.1, 3.0, 2.0, -1.0]])
    out = shortlist_top_k_top_p(logits.clone(), torch.tensor([1]), torch.tensor([0.9]))
    assert torch.isfinite(out).tolist() == [[False, True, False, False]]
    out = shortlist_top_k_top_p(logits.clone(), torch.tensor([3]), torch.tensor([1.0]))
    assert torch.isfinite(out).tolist() == [[True, True, True, False]]


def _params(spec: dict[str, Any] | None) -> Any:
    return SimpleNamespace(extra_args={EXTRA_KEY: spec} if spec else None)


def test_processor_tracks_rows_and_masks_only_its_own() -> None:
    proc = ShortlistTopP(None, torch.device("cpu"), False)
    added = [
        (0, _params({"top_k": 2, "top_p": 1.0}), None, []),
        (1, _params(None), None, []),
        (2, _params({"top_k": 1, "top_p": 0.5}), None, []),
    ]
    proc.update_state(SimpleNamespace(batch_size=3, removed=[], added=added, moved=[]))
    logits = torch.tensor([[1.0, 2.0, 3.0, 4.0]] * 3)
    out = proc.apply(logits.clone())
    assert torch.isfinite(out).tolist() == [
        [False, False, True, True],
        [True, True, True, True],  # no spec: untouched
        [False, False, False, True],
    ]
    swap = SimpleNamespace(name="SWAP")
    proc.update_state(SimpleNamespace(batch_size=3, removed=[1], added=[], moved=[(0, 1, swap)]))
    assert proc.rows == {1: (2, 1.0), 2: (1, 0.5)}
    one_way = SimpleNamespace(name="UNIDIRECTIONAL")
    proc.update_state(SimpleNamespace(batch_size=2, removed=[], added=[], moved=[(2, 0, one_way)]))
    assert proc.rows == {0: (1, 0.5), 1: (2, 1.0)}
    assert proc.is_argmax_invariant()


@pytest.mark.parametrize(
    "spec", [{"top_k": 0, "top_p": 0.9}, {"top_k": 5, "top_p": 0.0}, {"top_k": "x"}, {}]
)
def test_processor_rejects_bad_specs(spec: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        ShortlistTopP.validate_params(
            _params(spec) if spec else SimpleNamespace(extra_args={EXTRA_KEY: {}})
        )


def test_shortlist_options_rewrites_only_top_k_with_top_p() -> None:
    both = {"n": 2, "temperature": 0.8, "top_k": 40, "top_p": 0.95, "min_p": 0.0}
    out = shortlist_options(both)
    assert out["top_k"] == 0 and out["top_p"] == 1.0
    assert out["extra_args"] == {EXTRA_KEY: {"top_k": 40, "top_p": 0.95}}
    assert both["top_k"] == 40  # input not modified
    for unchanged in (
        {"temperature": 0.8, "top_k": 40, "top_p": 1.0},
        {"temperature": 0.8, "top_k": 0, "top_p": 0.9},
        {"temperature": 0.0, "top_k": 40, "top_p": 0.9},
    ):
        assert shortlist_options(unchanged) == unchanged
    sp = build_sampling_params({**out, "max_tokens": 8}, ["\n"])
    assert sp.extra_args == {EXTRA_KEY: {"top_k": 40, "top_p": 0.95}}
    assert sp.top_p == 1.0 and sp.n == 2


def test_engine_registers_the_processor_and_reports_top_p_cheap() -> None:
    on = VLLMEngine(model="m", shortlist_top_p=True)
    assert FQCN in on._engine_args("m")["logits_processors"]
    assert on.rstar_top_p_costly() is False
    assert top_p_is_costly(on) is False
    off = VLLMEngine(model="m", shortlist_top_p=False)
    assert "logits_processors" not in off._engine_args("m")
    kept = VLLMEngine(model="m", shortlist_top_p=True, engine_kwargs={"logits_processors": ["a:B"]})
    assert kept._engine_args("m")["logits_processors"] == ["a:B", FQCN]


def test_engine_sends_the_shortlist_spec_once_started() -> None:
    llm = VLLMEngine(model="m", shortlist_top_p=True)
    llm._shortlist = True  # what _create_engine sets once vLLM accepted the processor
    opts = {"n": 4, "temperature": 0.8, "top_k": 40, "top_p": 0.95, "min_p": 0.0, "max_tokens": 8}
    sp = llm._make_sampling_params(opts, [])
    assert sp.extra_args == {EXTRA_KEY: {"top_k": 40, "top_p": 0.95}} and sp.top_p == 1.0
    llm._shortlist = False
    sp = llm._make_sampling_params(opts, [])
    assert not sp.extra_args and sp.top_p == 0.95 and sp.top_k == 40
