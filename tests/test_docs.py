"""The README and docs/ link to each other by relative paths and #anchors: every
such link names a file that exists and, with an anchor, a heading in it (the
anchors GitHub makes: lower case, punctuation dropped, spaces as hyphens)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def outside_fences(text: str) -> str:
    """The text outside fenced code blocks."""
    return re.sub(r"^ *```.*?^ *```", "", text, flags=re.MULTILINE | re.DOTALL)


def prose(text: str) -> str:
    """The text outside fenced code blocks and inline code: where a link is a link."""
    return re.sub(r"`[^`\n]*`", "", outside_fences(text))


def anchors(text: str) -> set[str]:
    """The anchors of a Markdown file's headings, as GitHub makes them (a repeated
    heading gets -1, -2, ...)."""
    seen: dict[str, int] = {}
    for heading in re.findall(r"^#{1,6} +(.+?) *#*$", outside_fences(text), re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        if count:
            seen[f"{slug}-{count}"] = 1
    return set(seen)


def broken_links(document: Path) -> list[str]:
    broken = []
    for target in LINK.findall(prose(document.read_text(encoding="utf-8"))):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        linked = (document.parent / path).resolve() if path else document
        if not linked.exists():
            broken.append(f"{target}: no file {path}")
        elif anchor and (linked.is_dir() or anchor not in anchors(linked.read_text(encoding="utf-8"))):
            broken.append(f"{target}: no heading #{anchor} in {path or document.name}")
    return broken


def test_anchors_are_the_ones_github_makes() -> None:
    text = "# The manifest: images.yaml\n## Pipelines: `invoke ci`\n```sh\n# not a heading\n```\n## Notes\n## Notes\n"
    assert anchors(text) == {"the-manifest-imagesyaml", "pipelines-invoke-ci", "notes", "notes-1"}


def test_a_missing_file_or_heading_is_a_broken_link(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# A\n## Here\n")
    document = tmp_path / "b.md"
    document.write_text("[ok](a.md#here) [self](#b) [gone](c.md) [wrong](a.md#there) [web](https://x.invalid/#y)\n"
                        "`[code](nowhere.md)`\n```\n[fenced](nowhere.md)\n```\n# B\n")
    assert broken_links(document) == ["c.md: no file c.md", "a.md#there: no heading #there in a.md"]


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_every_relative_link_resolves_to_a_file_and_heading(document: Path) -> None:
    assert broken_links(document) == []
