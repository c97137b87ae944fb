"""The model card on the model page: which file it is, read from storage, rendered safely.

Rules:
- The card is the `model_card` file of the newest release that is active and open to
  some tier: a draft is open to no one, and a recalled release's card may be the
  problem, so neither speaks for the model.
- The card is Markdown written by the publisher and read by anyone: HTML in it is shown
  as text, links go only to http and https addresses (anything else stays plain text),
  images are not fetched (the page loads nothing from other sites), and nothing in the
  output carries an inline style, which the page's Content-Security-Policy would block.
- A card that cannot be read or is too long is left out with a sentence saying so; the
  model page itself never fails over it.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import urlsplit

from markdown_it import MarkdownIt
from markdown_it.token import Token
from markupsafe import Markup

from gateway.db.models import Artifact, Release
from gateway.storage import Storage, StorageError

MODEL_CARD_COMPONENT = "model_card"
# A model card is a document of a few pages; a longer file is shown in the download only.
CARD_MAX_BYTES = 256 * 1024
# File names that say "this is the card", best first; other card files come after these.
_CARD_NAMES = ("model_card.md", "readme.md")
_WEB_SCHEMES = frozenset({"http", "https"})
# The page has its own h1 (the model) and h2 (the card's title): the card's headings
# start below them, so a reader's outline stays in order.
_HEADING_SHIFT = 2
_RENDERED_KEPT = 64


@dataclass(frozen=True)
class ModelCard:
    """What the model page shows: the card's release and file, and the HTML or why not."""

    version: str
    path: str
    html: Markup | None
    missing_reason: str | None = None


def card_artifact(release: Release) -> Artifact | None:
    """The release's model card file: MODEL_CARD.md, then README.md, nearest the root.

    The release's components and artifacts must be loaded.
    """
    card_ids = {c.id for c in release.components if c.name == MODEL_CARD_COMPONENT}
    cards = [a for a in release.artifacts if a.component_id in card_ids]
    if not cards:
        return None

    def rank(artifact: Artifact) -> tuple[int, int, str]:
        path = PurePosixPath(artifact.path)
        name = path.name.casefold()
        known = _CARD_NAMES.index(name) if name in _CARD_NAMES else len(_CARD_NAMES)
        return known, len(path.parts), artifact.path

    return min(cards, key=rank)


def _is_web_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme.lower() in _WEB_SCHEMES and bool(parts.netloc)


def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    md.disable(["html_block", "html_inline", "image"])
    md.validateLink = _is_web_url  # type: ignore[method-assign]
    return md


_MD = _markdown()


def _safe_inline(children: list[Token]) -> list[Token]:
    """Inline tokens with every link that is not to a web address turned into its text."""
    kept: list[Token] = []
    dropping = False
    for token in children:
        if token.type == "link_open":
            href = str(token.attrGet("href") or "")
            if not _is_web_url(href):
                dropping = True
                continue
            token.attrSet("rel", "nofollow noopener noreferrer")
        elif token.type == "link_close" and dropping:
            dropping = False
            continue
        kept.append(token)
    return kept


def _safe_tokens(tokens: list[Token]) -> list[Token]:
    for token in tokens:
        if token.type in ("heading_open", "heading_close"):
            level = min(6, int(token.tag[1:]) + _HEADING_SHIFT)
            token.tag = f"h{level}"
        elif token.type in ("th_open", "td_open"):
            # Column alignment arrives as an inline style; a class says the same.
            style = str(token.attrGet("style") or "")
            if style:
                token.attrs.pop("style", None)
                token.attrSet("class", "align-" + style.removeprefix("text-align:"))
        elif token.type == "inline" and token.children:
            token.children = _safe_inline(token.children)
    return tokens


def render_model_card(text: str) -> Markup:
    """The card's Markdown as HTML that is safe to put in a page as it is."""
    tokens = _safe_tokens(_MD.parse(text))
    html = _MD.renderer.render(tokens, _MD.options, {})
    return Markup(html)  # noqa: S704 - escaped by the renderer: html is off, links checked


# Rendered cards by the SHA-256 of their file: an object never changes under its hash.
_rendered: OrderedDict[str, Markup] = OrderedDict()


def _read_card(storage: Storage, artifact: Artifact) -> bytes:
    with storage.open_read(artifact.sha256) as stream:
        return stream.read(CARD_MAX_BYTES + 1)


async def load_model_card(storage: Storage, release: Release) -> ModelCard | None:
    """The release's card, rendered; None if the release has no card file."""
    artifact = card_artifact(release)
    if artifact is None:
        return None
    shown = ModelCard(version=release.version, path=artifact.path, html=None)
    if artifact.size > CARD_MAX_BYTES:
        return _without(shown, "The model card is too long to show here")
    html = _rendered.get(artifact.sha256)
    if html is None:
        try:
            raw = await asyncio.to_thread(_read_card, storage, artifact)
        except StorageError:
            return _without(shown, "The model card cannot be read right now; try again later")
        if len(raw) > CARD_MAX_BYTES:
            return _without(shown, "The model card is too long to show here")
        html = render_model_card(raw.decode("utf-8-sig", errors="replace"))
        _rendered[artifact.sha256] = html
        while len(_rendered) > _RENDERED_KEPT:
            _rendered.popitem(last=False)
    return ModelCard(version=release.version, path=artifact.path, html=html)


def _without(card: ModelCard, reason: str) -> ModelCard:
    return ModelCard(card.version, card.path, None, f"{reason}; it is part of the download.")
