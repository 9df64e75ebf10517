"""The fenced code blocks of README.md, each with its language and the line of its
opening fence, as tests/project/test_readme.py runs them."""

from __future__ import annotations

import re
from dataclasses import dataclass

from tests.conftest import REPO

README = REPO / "README.md"


_FENCE = re.compile(r"^```(\S*)\s*$")


@dataclass(frozen=True)
class Block:
    language: str
    text: str
    line: int  # of the opening fence, 1-based

    @property
    def name(self) -> str:
        return f"{self.language or 'untagged'}-line{self.line}"


def readme_blocks() -> list[Block]:
    blocks = []
    language: str | None = None
    body: list[str] = []
    start = 0
    for number, line in enumerate(README.read_text().splitlines(), 1):
        match = _FENCE.match(line)
        if language is None and match:
            language, body, start = match.group(1), [], number
        elif language is not None and line.rstrip() == "```":
            blocks.append(Block(language, "\n".join(body) + "\n", start))
            language = None
        elif language is not None:
            body.append(line)
    assert language is None, f"README.md: the code block at line {start} is never closed"
    return blocks


BLOCKS = readme_blocks()
