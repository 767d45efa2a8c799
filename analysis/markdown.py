"""Write one benchmark's section of a Markdown file between its own markers, leaving the rest as is."""

from __future__ import annotations

import pathlib


def write_section(out: pathlib.Path, name: str, section: str) -> None:
    """Replace the text between `<!-- NAME:start -->` and `<!-- NAME:end -->`, or append it."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{section.strip()}\n{end}"
    text = out.read_text() if out.exists() else "# Benchmarks\n"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        _, after = rest.split(end, 1)
        text = before + block + after
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    out.write_text(text)
