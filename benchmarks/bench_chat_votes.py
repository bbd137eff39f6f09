"""Wall time of a search on a plain chat model whose every request takes 50 ms, sync vs async.

A plain LangChain chat model takes one request per vote (no ``n``). ``BaseChatModel.
generate`` answers a batch of conversations one after another, so under a sync ``invoke``
the ``n`` votes of one prompt used to run in series; the sampler now sends them on a
bounded thread pool (``agenerate`` already gathers them). The model here is the scripted
apples model behind a chat interface (it rebuilds the completion prompt from the
conversation), sleeping ``--latency`` seconds per request and taking ``temperature`` as a
keyword.

Printed: per mode, the median wall time of ``--repeat`` searches, the requests per search
and ``requests x latency`` (the wall time if every request ran in series).

Run::

    python benchmarks/bench_chat_votes.py
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import threading
import time
from collections import Counter
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import PrivateAttr

from langchain_rstar import RStarChain, RStarConfig
from langchain_rstar.testing import APPLES_QUESTION, apples_llm


class SlowScriptedChat(BaseChatModel):
    """The apples script as a chat model: ``latency`` seconds per request."""

    latency: float = 0.05
    requests: int = 0
    _script: Any = PrivateAttr(default_factory=apples_llm)
    _seen: Counter = PrivateAttr(default_factory=Counter)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "slow-scripted-chat"

    def _answer(self, messages: list[BaseMessage]) -> ChatResult:
        user = max(
            i
            for i, m in enumerate(messages)
            if isinstance(m, HumanMessage) and str(m.content).startswith("Question:")
        )
        after = messages[user + 1 :]
        prefix = str(after[0].content) if after and isinstance(after[0], AIMessage) else ""
        text = f"{messages[user].content}\n{prefix}"
        with self._lock:
            k = self._seen[text]
            self._seen[text] += 1
            self.requests += 1
        reply = self._script.samples_for(text, k + 1)[k].lstrip()
        return ChatResult(generations=[ChatGeneration(message=AIMessage(reply))])

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        *,
        temperature: float | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        time.sleep(self.latency)
        return self._answer(messages)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        *,
        temperature: float | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        await asyncio.sleep(self.latency)
        return self._answer(messages)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--rollouts", type=int, default=4)
    parser.add_argument("--votes", type=int, default=4)
    args = parser.parse_args()
    config = RStarConfig(num_rollouts=args.rollouts, num_votes=args.votes, seed=0)
    for mode in ("sync", "async"):
        walls: list[float] = []
        requests: list[int] = []
        for _ in range(args.repeat):
            model = SlowScriptedChat(latency=args.latency)
            chain = RStarChain(generator=model, config=config)
            start = time.perf_counter()
            if mode == "sync":
                chain.invoke(APPLES_QUESTION)
            else:
                asyncio.run(chain.ainvoke(APPLES_QUESTION))
            walls.append(time.perf_counter() - start)
            requests.append(model.requests)
        median_requests = statistics.median(requests)
        print(
            f"{mode:5s}: median wall {statistics.median(walls):.2f} s over {args.repeat} "
            f"searches; {median_requests:.0f} requests of {args.latency * 1000:.0f} ms "
            f"({median_requests * args.latency:.2f} s in series)"
        )


if __name__ == "__main__":
    main()
