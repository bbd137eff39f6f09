"""Top-p inside the top-k shortlist for ``transformers`` (``TransformersLLM``'s default)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from langchain_rstar.config import RStarConfig
from langchain_rstar.llms import TransformersLLM
from langchain_rstar.llms.base import top_p_is_costly

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from transformers import (  # noqa: E402
    LogitsProcessorList,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from langchain_rstar.llms._shortlist import HFShortlistTopKTopP  # noqa: E402


def _hf_reference(scores: Any, k: int, p: float, temperature: float) -> Any:
    """``transformers``' own order: temperature, then top-k, then top-p (sorts the vocab)."""
    warpers = LogitsProcessorList(
        [TemperatureLogitsWarper(temperature), TopKLogitsWarper(k), TopPLogitsWarper(p)]
    )
    return warpers(None, scores.clone())


def _shortlist_then_temperature(scores: Any, k: int, p: float, temperature: float) -> Any:
    """What ``generate`` runs with the shortlist: user processors first, then the warpers
    (temperature; its own top-k / top-p switched off)."""
    out = HFShortlistTopKTopP(k, p, temperature)(None, scores.clone())
    return TemperatureLogitsWarper(temperature)(None, out)


@pytest.mark.parametrize("temperature", [0.5, 0.8, 1.5])
@pytest.mark.parametrize(("k", "p"), [(40, 0.95), (40, 0.5), (5, 0.9), (1, 0.95), (200, 0.99)])
def test_same_tokens_and_logits_as_transformers_warpers(
    temperature: float, k: int, p: float
) -> None:
    gen = torch.Generator().manual_seed(k * 1000 + int(p * 100) + int(temperature * 10))
    for scale in (0.3, 2.0, 8.0):  # flat to peaked distributions
        scores = torch.randn(6, 4096, generator=gen) * scale
        ref = _hf_reference(scores, k, p, temperature)
        mine = _shortlist_then_temperature(scores, k, p, temperature)
        assert torch.equal(ref == -float("inf"), mine == -float("inf"))
        kept = ref != -float("inf")
        assert torch.allclose(ref[kept], mine[kept])


def test_the_temperature_matters_for_top_p() -> None:
    # Top-p at temperature 1 would keep a different set than at 0.3: the processor must
    # use the sampling temperature although transformers applies it afterwards.
    scores = torch.tensor([[3.0, 2.5, 2.0, 1.0, 0.0]])
    cold = HFShortlistTopKTopP(5, 0.9, 0.3)(None, scores.clone())
    warm = HFShortlistTopKTopP(5, 0.9, 1.0)(None, scores.clone())
    assert int((cold != -float("inf")).sum()) < int((warm != -float("inf")).sum())


@pytest.mark.parametrize(
    "bad", [(0, 0.9, 1.0), (40, 0.0, 1.0), (40, 1.5, 1.0), (40, 0.9, 0.0), (40, 0.9, -1.0)]
)
def test_rejects_bad_settings(bad: tuple[int, float, float]) -> None:
    with pytest.raises(ValueError, match="top_k >= 1"):
        HFShortlistTopKTopP(*bad)


class _FakeTokenizer:
    pad_token_id = 0
    eos_token = "<eos>"
    padding_side = "right"

    def __call__(self, prompts: list[str], return_tensors: str, padding: bool) -> dict[str, Any]:
        ids = torch.ones((len(prompts), 3), dtype=torch.long)
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return " ".join(str(i) for i in ids)


class _FakeModel:
    """Records the ``generate`` arguments; returns two new tokens per sequence."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.generation_config = SimpleNamespace(eos_token_id=1)

    def generate(self, input_ids: Any, attention_mask: Any, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        rows = input_ids.shape[0] * kwargs["num_return_sequences"]
        prompt = input_ids.repeat_interleave(kwargs["num_return_sequences"], dim=0)
        return torch.cat([prompt[:rows], torch.full((rows, 2), 7)], dim=1)


def _llm(**fields: Any) -> tuple[TransformersLLM, _FakeModel]:
    model = _FakeModel()
    llm = TransformersLLM(hf_model=model, hf_tokenizer=_FakeTokenizer(), device="cpu", **fields)
    llm._device = "cpu"
    return llm, model


def _opts(**over: Any) -> dict[str, Any]:
    base = {"n": 2, "temperature": 0.8, "top_k": 40, "top_p": 0.95, "min_p": 0.0}
    return {**base, "max_tokens": 2, "seed": None, **over}


def test_transformers_llm_sends_the_shortlist_instead_of_its_warpers() -> None:
    llm, model = _llm()
    gens, _, completion = llm._generate_chunk(["q"], _opts(), [])
    assert [g.text for g in gens[0]] == ["7 7", "7 7"] and completion == 4
    sent = model.calls[-1]
    assert sent["top_k"] == 0 and sent["top_p"] == 1.0 and sent["temperature"] == 0.8
    (proc,) = sent["logits_processor"]
    assert isinstance(proc, HFShortlistTopKTopP)
    assert (proc.top_k, proc.top_p, proc.temperature) == (40, 0.95, 0.8)


@pytest.mark.parametrize(
    ("fields", "opts"),
    [
        ({"shortlist_top_p": False}, {}),  # switched off: transformers' own warpers
        ({}, {"top_p": 1.0}),  # no top-p: top-k alone
        ({}, {"top_k": 0}),  # no top-k: no shortlist to work in
    ],
)
def test_transformers_llm_keeps_its_warpers_otherwise(
    fields: dict[str, Any], opts: dict[str, Any]
) -> None:
    llm, model = _llm(**fields)
    llm._generate_chunk(["q"], _opts(**opts), [])
    sent = model.calls[-1]
    assert "logits_processor" not in sent
    assert (sent["top_k"], sent["top_p"]) == (_opts(**opts)["top_k"], _opts(**opts)["top_p"])


def test_greedy_calls_send_no_filters() -> None:
    llm, model = _llm()
    llm._generate_chunk(["q"], _opts(temperature=0.0), [])
    assert "logits_processor" not in model.calls[-1]


def test_auto_preset_keeps_the_papers_filters_with_the_shortlist() -> None:
    on, _ = _llm()
    off, _ = _llm(shortlist_top_p=False)
    assert top_p_is_costly(on) is False and top_p_is_costly(off) is True
    cfg = RStarConfig()
    assert cfg.for_backend(on).sampling_kwargs()["top_p"] == cfg.top_p
    assert "top_p" not in cfg.for_backend(off).sampling_kwargs()
