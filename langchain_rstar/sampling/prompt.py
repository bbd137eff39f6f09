"""The one prompt type every action renders and every backend receives.

A prompt is kept as parts, not as one string, so that the same request can reach a
completion model as the package's few-shot text and a chat model as messages (system
instructions, each exemplar as a user/assistant turn, the question as the last user turn,
the partial trajectory as an assistant prefix to continue). :meth:`Prompt.text` is the
completion rendering; the chat rendering lives with the sampler (``sampling/chat.py``).

Completion rendering (what base models see)::

    <instruction>

    <shot 1 user>
    <shot 1 assistant>

    ...

    <user>
    <prefix>

``prefix`` is the start of the reply that the model continues (for example the steps of the
path so far followed by ``Step 3:``); it may be empty.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Prompt"]


@dataclass(frozen=True)
class Prompt:
    """A few-shot prompt as parts.

    Attributes:
        instruction: what the model is asked to do (the system message for chat models).
        shots: few-shot exemplars as ``(user, assistant)`` pairs.
        user: the final user turn (the question, with any context).
        prefix: the start of the assistant's reply that the model continues ("" for none).
    """

    instruction: str
    shots: tuple[tuple[str, str], ...] = ()
    user: str = ""
    prefix: str = ""

    def text(self) -> str:
        """The completion-model rendering (see the module docstring)."""
        blocks = [self.instruction] if self.instruction else []
        blocks.extend(f"{u}\n{a}" for u, a in self.shots)
        head = "\n\n".join(blocks)
        return f"{head}\n\n{self.user}\n{self.prefix}" if head else f"{self.user}\n{self.prefix}"

    def with_prefix(self, prefix: str) -> Prompt:
        """The same prompt continuing a different assistant prefix."""
        return Prompt(self.instruction, self.shots, self.user, prefix)

    def __str__(self) -> str:
        return self.text()
