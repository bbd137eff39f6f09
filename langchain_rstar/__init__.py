"""langchain-rstar: rStar mutual-reasoning search for LangChain and LangGraph.

A generator small language model runs Monte Carlo Tree Search over five human-like
reasoning actions; a discriminator model checks each candidate trajectory by completing it
from a masked prefix; the answer both agree on wins (arXiv 2408.06195).
"""

from __future__ import annotations

from langchain_rstar.chain import RStarChain, validate_question
from langchain_rstar.chat_model import ChatRStar
from langchain_rstar.config import RStarConfig
from langchain_rstar.errors import RStarBackendError
from langchain_rstar.prompts.task import TaskSpec
from langchain_rstar.result import Candidate, RStarProgress, RStarResult, Step, Usage
from langchain_rstar.search.verify import verify_candidates
from langchain_rstar.tool import RStarTool

__all__ = [
    "Candidate",
    "ChatRStar",
    "RStarBackendError",
    "RStarChain",
    "RStarConfig",
    "RStarProgress",
    "RStarResult",
    "RStarTool",
    "Step",
    "TaskSpec",
    "Usage",
    "validate_question",
    "verify_candidates",
]

__version__ = "0.1.0"
