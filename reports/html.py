"""The report as one self-contained HTML page, generated from its Markdown.

``write_html(markdown_path)`` converts a report's Markdown (``README.md``, the committed form) to
``report.html`` beside it: the same text and tables (markdown-it-py, CommonMark plus GitHub
tables, as the Markdown is read on the web), every figure embedded as a base64 PNG, and, where
the report has a design-space section (``reports.dse``: ``dse_pareto.json`` next to the
Markdown), an interactive Pareto plot: an inline SVG drawn here, with a small inline script that
shows the design point under the mouse (or keyboard focus). Nothing is loaded from anywhere: a
Content-Security-Policy forbids every fetch but ``data:`` images, so the page opens from the file
system, offline, as it is.

Entry point: ``write_html(markdown_path, out_path=None) -> Path``; ``python -m reports.html
README.md`` does the same from the shell.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
import sys
from pathlib import Path

from reports.dse import PARETO_JSON, PARETO_PNG
from reports.figures import log_ticks, precision_colour, precision_order, tick_label

HTML_NAME = "report.html"
#: The page may load nothing: images only as data: URIs, its own inline style and script.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"

STYLE = """
:root { --fg: #1b1b1b; --muted: #5a5a5a; --line: #d0d7de; --bg-alt: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; }
.page { display: flex; gap: 2rem; max-width: 78rem; margin: 0 auto; padding: 1.5rem; }
nav.toc { flex: 0 0 14rem; position: sticky; top: 1rem; align-self: flex-start; font-size: 13px;
          max-height: calc(100vh - 2rem); overflow-y: auto; }
nav.toc ul { list-style: none; padding-left: 0; margin: 0; }
nav.toc li { margin: 0.2rem 0; }
nav.toc a { color: var(--muted); text-decoration: none; }
nav.toc a:hover { text-decoration: underline; }
main { flex: 1 1 auto; min-width: 0; }
h1 { font-size: 1.7rem; border-bottom: 1px solid var(--line); padding-bottom: 0.3rem; }
h2 { font-size: 1.35rem; border-bottom: 1px solid var(--line); padding-bottom: 0.2rem; margin-top: 2rem; }
h3 { font-size: 1.1rem; margin-top: 1.5rem; }
code { font: 13px ui-monospace, SFMono-Regular, Menlo, monospace; background: var(--bg-alt);
       padding: 0.1rem 0.3rem; border-radius: 4px; }
pre { background: var(--bg-alt); padding: 0.8rem; overflow-x: auto; border-radius: 6px; }
pre code { background: none; padding: 0; }
.table { overflow-x: auto; margin: 0.8rem 0; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid var(--line); padding: 0.25rem 0.55rem; text-align: left; vertical-align: top; }
th { background: var(--bg-alt); }
tbody tr:nth-child(even) { background: #fafbfc; }
img { max-width: 100%; height: auto; }
figure.pareto { margin: 1rem 0; position: relative; max-width: 48rem; }
figure.pareto svg { width: 100%; height: auto; border: 1px solid var(--line); background: #fff; }
figure.pareto .pt { cursor: pointer; }
figure.pareto .pt:hover, figure.pareto .pt:focus, figure.pareto .pt.on { stroke: #000; stroke-width: 2; outline: none; }
figure.pareto figcaption { color: var(--muted); font-size: 13px; margin-top: 0.3rem; }
.tip { position: absolute; z-index: 2; pointer-events: none; background: #fff; border: 1px solid #888;
       border-radius: 4px; box-shadow: 0 2px 8px rgba(0,0,0,.2); padding: 0.3rem 0.5rem; font-size: 12px; }
.tip table { font-size: 12px; }
.tip th, .tip td { border: none; padding: 0 0.4rem 0 0; background: none; }
details { margin-top: 0.4rem; font-size: 13px; }
@media (max-width: 60rem) { .page { display: block; } nav.toc { position: static; max-height: none; } }
"""

#: Hover and focus on the Pareto plot: a table of the design point's fields beside it.
SCRIPT = """
(function () {
  var fig = document.getElementById("pareto-interactive");
  if (!fig) return;
  var data = JSON.parse(document.getElementById("pareto-data").textContent);
  var tip = fig.querySelector(".tip"), svg = fig.querySelector("svg"), current = null;
  function fmt(v) {
    if (v === null || v === undefined) return "-";
    if (typeof v === "number") return Math.abs(v) >= 1e4 || (v !== 0 && Math.abs(v) < 1e-3)
      ? v.toPrecision(4) : String(+v.toPrecision(4));
    return String(v);
  }
  function show(target) {
    var c = target && target.closest ? target.closest(".pt") : null;
    if (!c) return;
    var p = data.points[+c.getAttribute("data-i")], rows = document.createElement("table");
    data.fields.forEach(function (f) {
      var tr = rows.insertRow(), th = document.createElement("th");
      th.textContent = f[1];
      tr.appendChild(th);
      tr.insertCell().textContent = fmt(p[f[0]]);
    });
    if (p.front) rows.insertRow().insertCell().textContent = "on the Pareto front";
    tip.replaceChildren(rows);
    if (current) current.classList.remove("on");
    current = c;
    c.classList.add("on");
    tip.hidden = false;
    var box = fig.getBoundingClientRect(), r = c.getBoundingClientRect();
    var left = r.right - box.left + 8, top = r.top - box.top - 8;
    if (left + tip.offsetWidth > box.width) left = r.left - box.left - tip.offsetWidth - 8;
    tip.style.left = Math.max(0, left) + "px";
    tip.style.top = Math.max(0, top) + "px";
  }
  function hide() {
    tip.hidden = true;
    if (current) current.classList.remove("on");
    current = null;
  }
  svg.addEventListener("mouseover", function (e) { show(e.target); });
  svg.addEventListener("mouseout", function (e) { if (e.target.closest(".pt")) hide(); });
  svg.addEventListener("focusin", function (e) { show(e.target); });
  svg.addEventListener("focusout", hide);
})();
"""


def _markdown():
    from markdown_it import MarkdownIt

    # Raw HTML in the Markdown is shown as text: the page's only markup is what this module makes.
    return MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])


def slug(text: str) -> str:
    """A heading's anchor as GitHub makes it: lower case, punctuation dropped, spaces -> '-'."""
    text = re.sub(r"[^\w\- ]", "", text.lower(), flags=re.UNICODE)
    return text.strip().replace(" ", "-")


def _data_uri(path: Path) -> str:
    mime = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
    return f"data:{mime.get(path.suffix.lower(), 'application/octet-stream')};base64," \
           + base64.b64encode(path.read_bytes()).decode("ascii")


def _is_local(src: str) -> bool:
    return not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", src) and not src.startswith(("/", "#"))


def render_body(text: str, folder: Path) -> tuple[str, str, list[tuple[str, str]]]:
    """The Markdown ``text`` of a report in ``folder`` as HTML.

    Returns:
        (title: the first heading's text, body HTML, [(anchor, text)] of the level-2 headings).
        Local images are embedded as data URIs (an image that is missing is an error); a
        paragraph holding ``dse_pareto.png`` becomes the interactive Pareto plot when
        ``dse_pareto.json`` is in ``folder``.
    """
    from markdown_it.token import Token

    md = _markdown()
    tokens = md.parse(text)
    title, toc, seen = "", [], {}
    pareto = folder / PARETO_JSON
    out = []
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open":
            words = tokens[i + 1].content
            anchor = slug(words)
            n = seen.get(anchor, 0)
            seen[anchor] = n + 1
            anchor = anchor if n == 0 else f"{anchor}-{n}"
            tok.attrSet("id", anchor)
            title = title or re.sub(r"[`*_]", "", words)
            if tok.tag == "h2":
                toc.append((anchor, re.sub(r"[`*_]", "", words)))
        elif tok.type == "table_open":
            out.append(Token("html_block", "", 0, content='<div class="table">\n'))
        if tok.type == "inline":
            for child in tok.children or []:
                if child.type != "image":
                    continue
                src = str(child.attrGet("src") or "")
                if not _is_local(src):
                    raise ValueError(f"{folder}: image {src!r} is not a file next to the report")
                path = folder / src
                if not path.exists():
                    raise FileNotFoundError(f"{folder}: the report shows {src!r}, which is missing")
                child.attrSet("data-file", src)
                child.attrSet("src", _data_uri(path))
        if (tok.type == "inline" and pareto.exists() and out and out[-1].type == "paragraph_open"
                and any(c.type == "image" and c.attrGet("data-file") == PARETO_PNG for c in tok.children or [])):
            static = md.renderer.renderInline(tok.children, md.options, {})
            out[-1] = Token("html_block", "", 0,
                            content=pareto_figure(json.loads(pareto.read_text()), static))
            tokens[i + 1].type = "skip"      # the paragraph's closing tag
            continue
        if tok.type == "skip":
            continue
        out.append(tok)
        if tok.type == "table_close":
            out.append(Token("html_block", "", 0, content="</div>\n"))
    return title, md.renderer.render(out, md.options, {}), toc


def page(title: str, body: str, toc: list[tuple[str, str]], script: bool) -> str:
    """The whole page around a rendered body."""
    nav = ""
    if toc:
        items = "\n".join(f'<li><a href="#{a}">{html.escape(t)}</a></li>' for a, t in toc)
        nav = f'<nav class="toc" aria-label="contents"><ul>\n{items}\n</ul></nav>\n'
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="generator" content="hwsim report (reports/html.py)">\n'
        f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f'<div class="page">\n{nav}<main>\n{body}</main>\n</div>\n'
        + (f"<script>{SCRIPT}</script>\n" if script else "")
        + "</body>\n</html>\n")


def write_html(markdown_path: str | Path, out_path: str | Path | None = None) -> Path:
    """Write the report ``markdown_path`` as one self-contained page (default: ``report.html``
    beside it); returns its path."""
    md_path = Path(markdown_path)
    title, body, toc = render_body(md_path.read_text(), md_path.parent)
    out = Path(out_path) if out_path is not None else md_path.with_name(HTML_NAME)
    out.write_text(page(title, body, toc, script='id="pareto-interactive"' in body))
    return out


# ----------------------------------------------------------------------------------------------
# The interactive Pareto plot (inline SVG)

W, H = 660, 420
LEFT, RIGHT, TOP, BOTTOM = 70, 150, 16, 50      # the legend sits in the right margin


def _linear_ticks(lo: float, hi: float, n: int = 6) -> list[float]:
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [round(first + k * step, 12) for k in range(int((hi - first) / step + 1e-9) + 1)]


class _Axis:
    """Maps data values to pixels over [lo, hi] padded by 5% of the range (log or linear)."""

    def __init__(self, values: list[float], log: bool, p0: float, p1: float):
        self.log = log and min(values) > 0
        f = (lambda v: math.log10(v)) if self.log else (lambda v: v)
        lo, hi = f(min(values)), f(max(values))
        pad = 0.05 * (hi - lo) if hi > lo else (0.5 if self.log else max(abs(lo) * 0.1, 0.5))
        self.lo, self.hi, self.f, self.p0, self.p1 = lo - pad, hi + pad, f, p0, p1
        distinct = sorted(set(values))
        vlo, vhi = self.inverse(self.lo), self.inverse(self.hi)
        if len(distinct) <= 8:
            self.ticks = distinct           # ticks at the values the points have
        elif self.log:
            self.ticks = log_ticks(vlo, vhi) or distinct[:: max(1, len(distinct) // 6)]
        else:
            self.ticks = _linear_ticks(vlo, vhi)

    def inverse(self, u: float) -> float:
        return 10.0 ** u if self.log else u

    def __call__(self, v: float) -> float:
        return self.p0 + (self.f(v) - self.lo) / (self.hi - self.lo) * (self.p1 - self.p0)


def _tip_text(point: dict, fields: list) -> str:
    parts = []
    for col, name in fields:
        v = point.get(col)
        if isinstance(v, float):
            v = f"{v:.4g}"
        parts.append(f"{name}: {v}")
    return "; ".join(parts)


def pareto_figure(data: dict, static_html: str = "") -> str:
    """The interactive Pareto plot: an inline SVG of ``data`` (``reports.dse.PARETO_JSON``), an
    empty tooltip filled by ``SCRIPT``, the caption, and the static figure folded under it."""
    pts = data["points"]
    if not pts:
        return f"<p>{static_html}</p>\n"
    xa = _Axis([p["x"] for p in pts], data["x_log"], LEFT, W - RIGHT)
    ya = _Axis([p["y"] for p in pts], data["y_log"], H - BOTTOM, TOP)
    e = html.escape
    svg = [f'<svg viewBox="0 0 {W} {H}" role="img" aria-label="{e(data["caption"])}" '
           'xmlns="http://www.w3.org/2000/svg" font-family="system-ui, sans-serif" font-size="11">']
    x0, x1, y0, y1 = LEFT, W - RIGHT, H - BOTTOM, TOP
    svg.append(f'<rect x="{x0}" y="{y1}" width="{x1 - x0}" height="{y0 - y1}" fill="none" stroke="#444"/>')
    for t in xa.ticks:
        px = xa(t)
        svg.append(f'<line x1="{px:.1f}" y1="{y1}" x2="{px:.1f}" y2="{y0}" stroke="#e3e3e3"/>'
                   f'<line x1="{px:.1f}" y1="{y0}" x2="{px:.1f}" y2="{y0 + 4}" stroke="#444"/>'
                   f'<text x="{px:.1f}" y="{y0 + 16}" text-anchor="middle">{e(tick_label(t))}</text>')
    for t in ya.ticks:
        py = ya(t)
        svg.append(f'<line x1="{x0}" y1="{py:.1f}" x2="{x1}" y2="{py:.1f}" stroke="#e3e3e3"/>'
                   f'<line x1="{x0 - 4}" y1="{py:.1f}" x2="{x0}" y2="{py:.1f}" stroke="#444"/>'
                   f'<text x="{x0 - 7}" y="{py + 4:.1f}" text-anchor="end">{e(tick_label(t))}</text>')
    svg.append(f'<text x="{(x0 + x1) / 2}" y="{H - 12}" text-anchor="middle" font-size="12">'
               f'{e(data["x_label"])}</text>')
    svg.append(f'<text transform="translate(16 {(y0 + y1) / 2}) rotate(-90)" text-anchor="middle" '
               f'font-size="12">{e(data["y_label"])}</text>')
    front = sorted((p for p in pts if p["front"]), key=lambda p: (p["x"], p["y"]))
    if front:
        # The staircase of the static figure (matplotlib's step, where="post").
        d = [f"M{xa(front[0]['x']):.1f},{ya(front[0]['y']):.1f}"]
        for a, b in zip(front, front[1:]):
            d.append(f"H{xa(b['x']):.1f}V{ya(b['y']):.1f}")
        svg.append(f'<path d="{"".join(d)}" fill="none" stroke="#000" stroke-width="1.2"/>')
    fields = data["fields"]
    precisions = precision_order(p.get("precision", "") for p in pts)
    coloured = len(precisions) > 1
    # Front points last, so that a point of the front is on top where points overlap.
    for i, p in sorted(enumerate(pts), key=lambda ip: ip[1]["front"]):
        colour = precision_colour(p.get("precision", "")) if coloured else "#7F7F7F"
        ring = ' stroke="#000" stroke-width="1.5"' if p["front"] else ""
        svg.append(f'<circle class="pt" data-i="{i}" tabindex="0" cx="{xa(p["x"]):.1f}" cy="{ya(p["y"]):.1f}" '
                   f'r="{5 if p["front"] else 4}" fill="{colour}" fill-opacity="0.7"{ring}>'
                   f'<title>{e(_tip_text(p, fields))}</title></circle>')
    lx, ly = x1 + 14, y1 + 12
    for k, name in enumerate(precisions if coloured else []):
        svg.append(f'<circle cx="{lx}" cy="{ly + 16 * k}" r="4" fill="{precision_colour(name)}" fill-opacity="0.7"/>'
                   f'<text x="{lx + 10}" y="{ly + 16 * k + 4}">{e(name)}</text>')
    k = len(precisions) if coloured else 0
    svg.append(f'<circle cx="{lx}" cy="{ly + 16 * k}" r="5" fill="none" stroke="#000" stroke-width="1.5"/>'
               f'<text x="{lx + 10}" y="{ly + 16 * k + 4}">Pareto front ({len(front)})</text>')
    svg.append("</svg>")
    payload = json.dumps({"fields": fields, "points": pts}, separators=(",", ":")).replace("</", "<\\/")
    return (
        '<figure class="pareto" id="pareto-interactive">\n' + "\n".join(svg) + "\n"
        '<div class="tip" role="status" hidden></div>\n'
        '<figcaption>Interactive: hover over a point (or tab to it) to see the design point.</figcaption>\n'
        f'<script type="application/json" id="pareto-data">{payload}</script>\n'
        + (f"<details><summary>static figure (as in the Markdown)</summary>{static_html}</details>\n"
           if static_html else "")
        + "</figure>\n")


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description="write a report's Markdown as one self-contained HTML page")
    ap.add_argument("markdown", help="the report's Markdown file (e.g. reports/paper/README.md)")
    ap.add_argument("--out", default=None, help=f"output file (default: {HTML_NAME} beside the Markdown)")
    args = ap.parse_args(argv)
    print(f"wrote {write_html(args.markdown, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
