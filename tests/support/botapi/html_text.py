"""Turn Bot API ``parse_mode=HTML`` text into plain text plus entities, as Telegram does.

Telegram rejects malformed markup with 400 "can't parse entities"; mimicking that lets the
end-to-end tests catch bad HTML in the bot's messages instead of only at deployment.
"""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

_SIMPLE_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "code": "code",
    "pre": "pre",
    "tg-spoiler": "spoiler",
    "blockquote": "blockquote",
}


class EntityParseError(ValueError):
    """The markup would make Telegram answer 400 "can't parse entities"."""


def utf16_len(text: str) -> int:
    """Entity offsets and lengths are counted in UTF-16 code units by Telegram."""
    return len(text.encode("utf-16-le")) // 2


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.length = 0
        self.open: list[tuple[str, int, dict[str, Any]]] = []
        self.entities: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "a":
            href = attributes.get("href")
            if not href:
                raise EntityParseError(f'Can\'t find end of tag "{tag}"')
            extra: dict[str, Any] = {"type": "text_link", "url": href}
        elif tag == "span" and attributes.get("class") == "tg-spoiler":
            extra = {"type": "spoiler"}
        elif tag in _SIMPLE_TAGS:
            extra = {"type": _SIMPLE_TAGS[tag]}
        else:
            raise EntityParseError(f'Unsupported start tag "{tag}"')
        self.open.append((tag, self.length, extra))

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1][0] != tag:
            raise EntityParseError(f'Unmatched end tag "{tag}"')
        _, start, extra = self.open.pop()
        if self.length > start:
            self.entities.append({**extra, "offset": start, "length": self.length - start})

    def handle_data(self, data: str) -> None:
        self.parts.append(data)
        self.length += utf16_len(data)


def parse_html(markup: str) -> tuple[str, list[dict[str, Any]]]:
    """Return ``(text, entities)`` for Bot API HTML markup; raise EntityParseError if invalid."""
    parser = _Parser()
    parser.feed(markup)
    parser.close()
    if parser.open:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{parser.open[-1][0]}"')
    entities = sorted(parser.entities, key=lambda e: (e["offset"], -e["length"]))
    return "".join(parser.parts), entities
