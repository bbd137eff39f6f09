"""The test doubles are backends by contract: they subclass ``RStarBackend``."""

from __future__ import annotations

from langchain_core.language_models import BaseLLM

from langchain_rstar import RStarChain, RStarConfig
from langchain_rstar.llms.base import RStarBackend, backend_traits
from langchain_rstar.testing import APPLES_QUESTION, ScriptedLLM, apples_llm
from langchain_rstar.testing.faults import FaultyLLM


class _CostlyTopP(ScriptedLLM):
    def rstar_top_p_costly(self) -> bool:
        return True


def test_scripted_and_faulty_models_subclass_the_backend_contract() -> None:
    scripted = apples_llm()
    faulty = FaultyLLM(llm=scripted)
    for llm in (scripted, faulty):
        assert isinstance(llm, RStarBackend) and isinstance(llm, BaseLLM)
        assert backend_traits(llm).mode == "native"
    assert backend_traits(scripted).wrapped is None
    assert backend_traits(faulty).wrapped is scripted


def test_faulty_wrapper_reports_the_wrapped_models_traits() -> None:
    assert backend_traits(FaultyLLM(llm=_CostlyTopP())).top_p_costly is True
    assert backend_traits(FaultyLLM(llm=ScriptedLLM())).top_p_costly is False


def test_a_wrapped_scripted_model_still_solves() -> None:
    config = RStarConfig(num_rollouts=4, max_retries=0, retry_backoff=0.0)
    result = RStarChain(generator=FaultyLLM(llm=apples_llm()), config=config).invoke(
        APPLES_QUESTION
    )
    assert result.answer == "10"
