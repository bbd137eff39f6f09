"""The one check of a question before any model call: :func:`validate_question`.

Its own leaf module so that the graph's first node (``search/rollouts.py``'s ``init``), the
chain, the chat model, the evaluation harness and ``graphs/rstar.py`` all apply the same
rules without importing one another. Re-exported as ``langchain_rstar.validate_question``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import Any

from langchain_core.messages import HumanMessage
from langchain_core.prompt_values import ChatPromptValue, PromptValue

__all__ = ["validate_question"]


# Bidirectional embeddings, overrides and isolates: they make text display in another order
# than the model reads it ("Trojan Source"); the marks LRM/RLM/ALM are ordinary RTL text.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Letters and symbols that render as nothing (besides whitespace and format characters).
_BLANK_LOOKING = frozenset("\u115f\u1160\u3164\uffa0\u2800\u034f\u17b4\u17b5")


def _invisible(c: str) -> bool:
    """Whitespace, a format character (ZWSP, ZWJ, BOM, soft hyphen...), a variation selector
    or a blank-looking letter: a question made only of these shows nothing."""
    if c.isspace() or c in _BLANK_LOOKING:
        return True
    category = unicodedata.category(c)
    if category == "Cf":
        return True
    return category == "Mn" and (
        "\ufe00" <= c <= "\ufe0f" or "\U000e0100" <= c <= "\U000e01ef" or "\u180b" <= c <= "\u180f"
    )


def validate_question(value: Any, max_chars: int = 20_000) -> str:
    """Check a question before any model call.

    Rules: a ``str`` (or a mapping with a ``question`` string, or a ``PromptValue``: a
    string prompt's text, or a chat prompt's last human message); not empty, whitespace
    only or invisible only (zero-width spaces, BOMs, joiners, variation selectors,
    blank-looking fillers); at most ``max_chars`` characters; no NUL bytes or other control
    characters except tab and newlines, no bidirectional embedding/override/isolate controls
    (U+202A-E, U+2066-9: text that displays differently from what the model reads), and no
    lone surrogates (binary data, or bytes decoded with ``surrogateescape``, is rejected,
    not cleaned). Surrounding whitespace is stripped and the text is NFC-normalised.

    Raises:
        ValueError: with the reason, when the question breaks a rule.
    """
    if isinstance(value, PromptValue):
        value = _prompt_value_text(value)
    if isinstance(value, Mapping):
        if "question" not in value:
            raise ValueError(
                f"input mapping needs a 'question' key; got keys {sorted(map(str, value))}"
            )
        value = value["question"]
    if isinstance(value, (bytes, bytearray)):
        raise ValueError("the question must be text (str), not bytes")
    if not isinstance(value, str):
        raise ValueError(f"the question must be a str, got {type(value).__name__}")

    def too_long(length: int) -> ValueError:
        return ValueError(
            f"the question has {length} characters; the limit is {max_chars} "
            "(RStarConfig.max_question_chars)"
        )

    if len(value) > 4 * max_chars and len(value.strip()) > 4 * max_chars:
        raise too_long(len(value.strip()))  # far too long: no need to normalise it first
    text = unicodedata.normalize("NFC", value).strip()
    if not text:
        raise ValueError("the question is empty")
    if len(text) > max_chars:
        raise too_long(len(text))
    bad = [
        c
        for c in text
        if (unicodedata.category(c) == "Cc" and c not in "\t\n\r")
        or unicodedata.category(c) == "Cs"
    ]
    if bad:
        raise ValueError(
            f"the question contains {len(bad)} control or surrogate character(s) such as "
            f"{bad[0]!r}; binary or control characters are not accepted"
        )
    bidi = [c for c in text if c in _BIDI_CONTROLS]
    if bidi:
        raise ValueError(
            f"the question contains {len(bidi)} bidirectional override/embedding/isolate "
            f"control(s) such as {bidi[0]!r} (U+{ord(bidi[0]):04X}); they make the text "
            "display differently from what the model reads"
        )
    if all(map(_invisible, text)):
        raise ValueError(
            f"the question is empty: its {len(text)} character(s) are all invisible "
            f"(such as U+{ord(text[0]):04X}: zero-width, format or blank characters)"
        )
    return text


def _prompt_value_text(value: PromptValue) -> str:
    """The question in a prompt value: a chat prompt's last human message, else its text."""
    if not isinstance(value, ChatPromptValue):
        return value.to_string()
    for message in reversed(value.messages):
        if isinstance(message, HumanMessage):
            content = message.content
            if isinstance(content, str):
                return content
            return "\n".join(
                part if isinstance(part, str) else str(part.get("text", ""))
                for part in content
                if isinstance(part, str) or part.get("type") == "text"
            )
    raise ValueError("the chat prompt has no human message to take the question from")
