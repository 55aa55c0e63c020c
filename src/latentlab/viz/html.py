"""Self-contained HTML pages: inline CSS, images as base64 PNG data URIs, no scripts, no URLs.

What ``latentlab report`` and ``latentlab compare-ae-vae`` write: a page that opens offline, from
any folder, in any browser, and can be mailed as one file.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1100px;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
.sub { color: #666; margin-top: 0; }
img { max-width: 100%; height: auto; border: 1px solid #eee; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; font-size: 0.8em; }
nav a { margin-right: 1em; } .note { color: #666; font-size: 0.9em; }
.summary { background: #fff8e6; border-left: 4px solid #f0b429; padding: 0.6em 1em; }
.yes { color: #17643a; font-weight: bold; } .no { color: #9b1c1c; font-weight: bold; }
"""


def esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def png_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def figure_png(fig: Any, dpi: int = 100) -> bytes:
    """A matplotlib figure as PNG bytes (nothing written to disk)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def img(source: bytes | str | Path, alt: str) -> str:
    """An ``<img>`` with the PNG inlined; ``source`` is PNG bytes or the path of a PNG file."""
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    return f'<img src="{png_uri(data)}" alt="{esc(alt)}">'


def table(headers: Sequence[str] | None, rows: Sequence[Sequence[Any]]) -> str:
    """A table (no header row when ``headers`` is None); numbers right-aligned (floats with 4
    significant digits), other cells escaped."""
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f'<td class="num">{v:.4g}</td>'
        if isinstance(v, int) and not isinstance(v, bool):
            return f'<td class="num">{v:,}</td>'
        return f"<td>{esc(v)}</td>"
    head = "" if headers is None else \
        "<thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in headers) + "</tr></thead>"
    body = "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table>{head}<tbody>{body}</tbody></table>"


def page(title: str, subtitle: str, sections: Sequence[tuple[str, str, str]]) -> str:
    """A whole page; ``sections`` are (anchor id, heading, inner HTML)."""
    nav = " ".join(f'<a href="#{esc(a)}">{esc(h)}</a>' for a, h, _ in sections)
    body = "\n".join(f'<section id="{esc(a)}"><h2>{esc(h)}</h2>\n{inner}\n</section>'
                     for a, h, inner in sections)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)}</title><style>{CSS}</style></head>\n<body>\n<h1>{esc(title)}</h1>\n"
            f'<p class="sub">{esc(subtitle)}</p>\n<nav>{nav}</nav>\n{body}\n</body></html>\n')
