"""Chat rendering of the search's prompts, and clean-up of chat replies.

Why: the actions write few-shot *completion* prompts ("...Question: Q\\nStep 1: ...\\nStep
2:") that a base model continues. Sent to a chat model as one user message, a chat-tuned
model answers like an assistant ("Sure! Let's solve it.\\nStep 2: ..."), and the preamble
and the restated label became reasoning steps in the tree. Here each prompt becomes a chat
conversation built from its parts (:class:`~langchain_rstar.sampling.prompt.Prompt`):

* the instruction, plus rules for the reply's form, as the **system** message;
* each few-shot exemplar as a **user/assistant** turn pair;
* the question as the last user turn;
* the partial trajectory (the prompt's prefix) as an **assistant prefix** the model
  continues, in one of three ways (:func:`continuation_mode`):

  - ``continue``: OpenAI-compatible servers that support it (vLLM, SGLang): the request
    carries ``continue_final_message=True, add_generation_prompt=False`` and the model
    continues the final assistant message token for token, as a base model would;
  - ``prefill``: APIs that continue a trailing assistant message natively (Anthropic);
  - ``turn``: everywhere else: the prefix is an assistant turn followed by an explicit
    user turn asking to continue from exactly where it stops. Stop strings are not sent
    in this mode (a preamble line would hit ``"\\n"`` before any content); the sampler
    applies them after clean-up.

Replies are cleaned before parsing (:func:`clean_reply`): chat preambles ("Sure!",
"Certainly, here is the next step:") and a restated prefix (earlier steps, or the open
label such as ``Step 3:``) are removed, so that only the continuation enters the tree.

Hand-written because no library renders few-shot completion prompts as chat turns with an
assistant prefix across providers; LangChain supplies the message types and the models.
A model's ``metadata={"rstar_continuation": "continue" | "prefill" | "turn"}`` overrides
the detected mode.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, LLMResult

from langchain_rstar.sampling.prompt import Prompt

__all__ = [
    "CHAT_RULES",
    "CONTINUE_TURN",
    "chat_request",
    "clean_reply",
    "clean_result",
    "continuation_mode",
    "parse_prompt",
    "to_messages",
]

Mode = Literal["continue", "prefill", "turn"]

#: Appended to the instruction in the system message.
CHAT_RULES = (
    "Reply in exactly the format of the examples. Write only the requested text: no "
    "greeting, no preamble, no restating of the question or of earlier steps."
)

#: The user turn that asks for a continuation where the API cannot continue a message.
CONTINUE_TURN = (
    "Continue your answer from exactly where it stops. Write only what comes next, "
    "without repeating anything above."
)

_QUESTION = "Question:"


def parse_prompt(text: str | Prompt) -> Prompt:
    """The parts of a completion prompt in the package's shape.

    The shape (see :mod:`langchain_rstar.prompts`) is ``<instruction>\\n\\n<exemplar>\\n\\n
    ...\\n\\nQuestion: <q>\\n<prefix>``, each exemplar a ``Question: ...`` line followed by
    its solution. Text that does not have this shape becomes a single user turn.
    """
    if isinstance(text, Prompt):
        return text
    last = text.rfind("\n\n" + _QUESTION)
    if last >= 0:
        head, tail = text[:last], text[last + 2 :]
    elif text.startswith(_QUESTION):
        head, tail = "", text
    else:
        return Prompt(instruction="", user=text, prefix="")
    user, _, prefix = tail.partition("\n")
    instruction: list[str] = []
    shots: list[tuple[str, str]] = []
    for block in head.split("\n\n") if head else []:
        if block.startswith(_QUESTION) and "\n" in block:
            q, _, a = block.partition("\n")
            shots.append((q, a))
        elif shots:  # a blank line inside an exemplar's solution
            q, a = shots[-1]
            shots[-1] = (q, f"{a}\n\n{block}")
        else:
            instruction.append(block)
    return Prompt("\n\n".join(instruction), tuple(shots), user, prefix)


def continuation_mode(llm: Any) -> Mode:
    """How ``llm`` continues an assistant prefix (see the module docstring)."""
    override = (getattr(llm, "metadata", None) or {}).get("rstar_continuation")
    if override in ("continue", "prefill", "turn"):
        return override  # type: ignore[no-any-return]
    module = type(llm).__module__
    if module.startswith("langchain_anthropic"):
        return "prefill"
    if module.startswith("langchain_openai") and "Azure" not in type(llm).__name__:
        base = str(getattr(llm, "openai_api_base", None) or "")
        # The hosted OpenAI API rejects continue_final_message; local servers take it.
        if base and "api.openai.com" not in base:
            return "continue"
    return "turn"


def to_messages(prompt: str | Prompt, mode: Mode = "turn") -> list[BaseMessage]:
    """The chat conversation of a prompt (see the module docstring)."""
    parts = parse_prompt(prompt)
    system = f"{parts.instruction}\n\n{CHAT_RULES}" if parts.instruction else CHAT_RULES
    messages: list[BaseMessage] = [SystemMessage(system)]
    for user, assistant in parts.shots:
        messages.append(HumanMessage(user))
        messages.append(AIMessage(assistant))
    messages.append(HumanMessage(parts.user))
    prefix = parts.prefix
    if prefix.strip():
        if mode == "turn":
            messages.append(AIMessage(prefix.rstrip()))
            messages.append(HumanMessage(CONTINUE_TURN))
        else:
            messages.append(AIMessage(prefix))
    return messages


# A preamble carries no numbers or equations: every branch stops at a digit or "=".
_PREAMBLE = re.compile(
    r"""^\s*(?:
        (?:sure|certainly|of\ course|okay|ok|alright|absolutely|great|no\ problem|got\ it)
            \s*[.!,:]
      | (?:here(?:'s|\ is|\ are)|below\ is)\b[^\n.!:=\d]{0,80}:
      | let(?:'s|\ us|\ me)\ (?:solve|work|think|continue|tackle|break)
            \b[^\n.!:=\d]{0,60}[.!:]
      | i(?:'ll|\ will)\ (?:solve|continue|work|answer|help)\b[^\n.!:=\d]{0,60}[.!:]
      | continuing(?:\ from\ where[^\n.!:=\d]{0,40})?[.!:,]
    )[ \t]*\n?""",
    re.IGNORECASE | re.VERBOSE,
)


def _strip_preamble(text: str) -> str:
    for _ in range(4):  # "Sure! Let's continue.\n..." is two preambles
        match = _PREAMBLE.match(text)
        if not match:
            break
        text = text[match.end() :]
    return text


def _norm(line: str) -> str:
    return " ".join(line.split())


def _strip_restated(text: str, prefix: str) -> str:
    lines = [_norm(ln) for ln in prefix.strip().splitlines() if ln.strip()]
    if not lines:
        return text
    body = text.lstrip()
    whole = prefix.strip()
    if whole and body.startswith(whole):
        return body[len(whole) :]
    # earlier lines restated one by one (complete lines of the prefix, in any spacing)
    closed = set(lines[:-1]) | ({lines[-1]} if not lines[-1].endswith(":") else set())
    out = body.split("\n")
    while len(out) > 1 and _norm(out[0]) in closed:
        out.pop(0)
    body = "\n".join(out).lstrip()
    label = lines[-1]
    if label.endswith(":") and _norm(body).startswith(label):
        # drop the label: as many words as it has
        words = len(label.split())
        body = body.split(None, words)[words] if len(body.split(None, words)) > words else ""
    return body


def clean_reply(text: str, prompt: str | Prompt) -> str:
    """A chat reply reduced to the continuation of the prompt's prefix.

    Removes leading chat preambles and a restated prefix (earlier steps, or the open label
    such as ``Step 3:``); keeps the completion-model convention of a leading space after a
    label that ends with ``:``.
    """
    prefix = parse_prompt(prompt).prefix
    body = _strip_preamble(text)
    body = _strip_restated(body, prefix)
    body = _strip_preamble(body).strip(" \t")
    body = body.lstrip("\n") if body.strip() else ""
    if body and prefix.rstrip(" ").endswith(":"):
        return " " + body
    return body


def chat_request(
    llm: BaseChatModel,
    prompts: Sequence[str | Prompt],
    common: Mapping[str, Any],
    kwargs: Mapping[str, Any],
) -> tuple[list[list[BaseMessage]], dict[str, Any], dict[str, Any]]:
    """Messages and ``generate`` arguments for a chat model: ``(messages, common, kwargs)``.

    ``continue`` mode adds the server flags to ``extra_body`` (merged with what is
    there) when every prompt has a prefix (else the batch goes the ``turn`` way);
    ``turn`` mode drops the API stop strings (applied after clean-up instead).
    """
    mode = continuation_mode(llm)
    if mode == "continue" and not all(parse_prompt(p).prefix.strip() for p in prompts):
        # The server flag applies to the whole request, and a conversation ending in a
        # user turn cannot be "continued": such a batch takes the explicit-turn route.
        mode = "turn"
    messages = [to_messages(p, mode) for p in prompts]
    common_out = dict(common)
    kwargs_out = dict(kwargs)
    if mode == "continue":
        extra = dict(kwargs_out.get("extra_body") or {})
        extra.update({"continue_final_message": True, "add_generation_prompt": False})
        kwargs_out["extra_body"] = extra
    if mode == "turn":
        common_out["stop"] = None
    return messages, common_out, kwargs_out


def clean_result(result: LLMResult, prompts: Sequence[str | Prompt]) -> LLMResult:
    """``result`` with each reply passed through :func:`clean_reply` for its prompt."""
    generations = []
    for gens, prompt in zip(result.generations, prompts, strict=False):
        cleaned = []
        for gen in gens:
            message = getattr(gen, "message", None)
            text = clean_reply(gen.text, prompt)
            if isinstance(message, AIMessage):
                message = message.model_copy(update={"content": text})
            else:
                message = AIMessage(text)
            cleaned.append(ChatGeneration(message=message, generation_info=gen.generation_info))
        generations.append(cleaned)
    return LLMResult(generations=generations, llm_output=result.llm_output, run=result.run)
