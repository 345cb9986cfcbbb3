"""A benchmark's ``--help`` text from its module docstring: the first paragraph only, with
the Sphinx markup removed. The rest of the docstring is for readers of the code."""

from __future__ import annotations

import re

_ROLE = re.compile(r":[a-z]+:`~?([^`]+)`")
_LITERAL = re.compile(r"``([^`]+)``")


def user_help(doc: str | None) -> str:
    """One plain paragraph: ``x`` -> x, :func:`main` -> main."""
    paragraph = (doc or "").strip().split("\n\n", 1)[0]
    text = _LITERAL.sub(r"\1", _ROLE.sub(r"\1", paragraph))
    return " ".join(text.split())
