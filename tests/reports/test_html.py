"""The HTML page of the report (``reports.html``): self-contained, the Markdown's tables and
figures, an interactive Pareto plot, and a real browser that renders it without errors.

The report is a small one built here (the ``tiny`` model on a one-beam grid, as in
``test_paper_build.py``) with a design-space section from a contrived sweep table whose Pareto
front is found here by brute force. The browser check drives Debian's headless Chromium over the
DevTools protocol (``--remote-debugging-pipe``: no port, no extra package); it skips when
Chromium is missing, except under ``CI=true`` where it fails (``make test`` installs it). It saves
screenshots under ``$HWSIM_ARTIFACTS/html`` (default ``artifacts/html`` in the checkout) and prints
where.
"""

from __future__ import annotations

import base64
import fcntl
import itertools
import json
import os
import re
import select
import shutil
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from reports.dse import PARETO_JSON, PARETO_PNG
from reports.figures import PRECISION_COLOURS, precision_colour
from reports.html import HTML_NAME
from reports.paper import ReportGrid, build
from reports.serving import ServingGrid

#: A small streaming and serving section (seconds).
SERVING = ServingGrid(audio_s=1.0, hws=("edge",), precisions=("fp16", "int4"), beams=(4,), fusions=("dr",),
                      limit=8, max_batch=4, curve_streams=(1, 2, 4, 8))

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("HWSIM_ARTIFACTS", ROOT / "artifacts")) / "html"
BEAM = 16


def _sweep() -> pd.DataFrame:
    """A contrived sweep: 3 precisions x 3 scratchpads x 2 DRAM bandwidths x 2 beams."""
    rows = []
    grid = itertools.product(("fp16", "int8", "int4"), (2**20, 2**21, 2**22), (25.6e9, 102.4e9), (4, BEAM))
    for i, (p, spad, bw, beam) in enumerate(grid):
        bits = {"fp16": 16, "int8": 8, "int4": 4}[p]
        rtf = 1e-3 * bits / (spad / 2**20) ** 0.5 * (51.2e9 / bw) ** 0.7 * (beam / 16) ** 0.3
        rows.append({"status": "ok", "model": "tiny", "hw": "rapid4", "audio_s": 1.0, "lm_fusion": "dr",
                     "method": "alsd", "precision": p, "beam": beam, "hw.core.scratchpad_bytes": spad,
                     "hw.dram_bw_bytes_per_s": bw, "rtf": rtf, "latency_s": rtf, "onchip_bytes": 4 * spad,
                     "energy_j": 1e-3 * rtf * bits, "compression_x": 32 / bits, "macs": 1e6,
                     "key": f"{i:02d}" + "ab" * 31})
    return pd.DataFrame(rows)


def _front_keys(df: pd.DataFrame) -> set[str]:
    """Keys of the points no other point beats in both RTF and on-chip bytes (brute force)."""
    pts = list(df[["key", "rtf", "onchip_bytes"]].itertuples(index=False))
    return {a.key for a in pts
            if not any(b.rtf <= a.rtf and b.onchip_bytes <= a.onchip_bytes
                       and (b.rtf < a.rtf or b.onchip_bytes < a.onchip_bytes) for b in pts)}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("html")
    grid = ReportGrid(models=("tiny",), precisions=("fp16", "int4"), beams=(2,), fusions=("dr",), audio_s=1.0,
                      sweep_scratchpad_mib=(0.25, 2.0), sweep_dram_gb_s=(12.8, 51.2), serving=SERVING)
    md = build(out, grid, sweep_dir=_sweep())
    return out, md.read_text(), (out / HTML_NAME).read_text()


class _Page(HTMLParser):
    """Every element's tag and attributes, and the text of each table cell."""

    def __init__(self):
        super().__init__()
        self.elements: list[tuple[str, dict]] = []
        self.tables: list[list[list[str]]] = []
        self._cell: list[str] | None = None
        self._depth = 0                     # inside <script>: not page text

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _parse(text: str) -> _Page:
    p = _Page()
    p.feed(text)
    return p


def _md_tables(md: str) -> list[list[list[str]]]:
    """The Markdown's tables as rows of cell text (inline code marks dropped)."""
    tables, rows = [], None
    for line in md.splitlines() + [""]:
        if line.startswith("|"):
            if rows is None:
                rows = []
            if not re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", line.strip()):
                cells = re.split(r"(?<!\\)\|", line.strip()[1:-1])
                rows.append([c.strip().replace("\\|", "|").replace("`", "") for c in cells])
        elif rows is not None:
            tables.append(rows)
            rows = None
    return tables


# ----------------------------------------------------------------------------------------------
# The page itself


def test_page_is_self_contained(report):
    out, md, text = report
    page = _parse(text)
    for tag, attrs in page.elements:
        for name in ("src", "href"):
            v = attrs.get(name)
            if v is None:
                continue
            if name == "src":
                assert v.startswith("data:image/png;base64,"), (tag, v[:60])
            else:
                assert not re.match(r"^(https?:)?//", v), (tag, v)
        assert tag not in ("link", "iframe", "object", "embed"), tag
    assert "default-src 'none'" in text           # the page's CSP: it may fetch nothing


def test_every_figure_is_embedded_as_the_png_on_disk(report):
    out, md, text = report
    shown = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert PARETO_PNG in shown and len(shown) >= 5
    imgs = {a["data-file"]: a["src"] for t, a in _parse(text).elements if t == "img"}
    assert sorted(imgs) == sorted(shown)
    for name, src in imgs.items():
        assert base64.b64decode(src.split(",", 1)[1]) == (out / name).read_bytes(), name


def test_tables_are_the_markdown_tables(report):
    _, md, text = report
    expected, got = _md_tables(md), _parse(text).tables
    assert len(got) == len(expected) > 5
    for e, g in zip(expected, got):
        assert g == e


def test_pareto_plot_holds_the_beam_16_points_and_the_front(report):
    out, md, text = report
    df = _sweep()
    sel = df[df.beam == BEAM]
    front = _front_keys(sel)
    data = json.loads((out / PARETO_JSON).read_text())
    circles = [a for t, a in _parse(text).elements if t == "circle" and "pt" in a.get("class", "")]
    assert len(circles) == len(data["points"]) == len(sel)
    assert {p["key"] for p in data["points"] if p["front"]} == {k[:12] for k in front}
    by_key = sel.set_index(sel.key.str[:12])
    for c in circles:
        p = data["points"][int(c["data-i"])]
        row = by_key.loc[p["key"]]
        assert c["fill"] == PRECISION_COLOURS[row.precision]            # one colour per precision
        assert p["y"] == pytest.approx(row.onchip_bytes / 2**20)          # MiB, not MB
        assert ("stroke" in c) == (row.key in front)
    assert data["y_label"] == "on-chip memory (MiB)" and data["y_log"] is False
    assert data["x_log"] == (sel.rtf.max() / sel.rtf.min() > 20)          # as the static figure
    # the caption says what the plot shows and what is held fixed
    assert f"ok points with `beam`={BEAM} only; held fixed: model=tiny, hw=rapid4" in md


def test_one_colour_per_precision():
    assert len(set(PRECISION_COLOURS.values())) == len(PRECISION_COLOURS)
    assert precision_colour("INT4") == PRECISION_COLOURS["int4"]
    other = precision_colour("int8-encoder")
    assert other not in PRECISION_COLOURS.values() and other == precision_colour("int8-encoder")


@pytest.fixture
def captured(monkeypatch):
    """The matplotlib figures that report functions save, kept open for inspection."""
    from reports import dse, figures

    figs = []

    def keep(fig, path, dpi=120, rect=None):
        fig.tight_layout(rect=rect)
        figs.append(fig)
        return Path(path)

    monkeypatch.setattr(figures, "save_figure", keep)
    monkeypatch.setattr(dse, "save_figure", keep)
    yield figs
    for f in figs:
        figures.plt.close(f)


def test_figures_share_precision_colours_and_tick_only_data_values(captured, tmp_path):
    from matplotlib.colors import to_hex

    from reports import dse, figures

    dse.dse_section(_sweep(), tmp_path)                                  # draws the Pareto plot
    rows = [{"model": m, "precision": p, "beam": b, "lm_fusion": f,
             "rtf": 1e-3 * bits * b ** 0.2 * (3 if f == "dr" else 1)}
            for m in ("a", "b") for p, bits in (("fp16", 16), ("int8", 8), ("int4", 4))
            for b in (1, 4, 16) for f in ("none", "dr")]
    data = type("D", (), {"results": pd.DataFrame(rows),
                          "grid": ReportGrid(models=("a", "b"), beams=(1, 4, 16))})()
    figures.rtf_vs_beam(data, tmp_path / "r.png")
    pareto_fig, beam_fig = captured
    scatter = pareto_fig.axes[0].collections
    colours = {c.get_label(): to_hex(c.get_facecolor()[0], keep_alpha=False) for c in scatter
               if c.get_label() in PRECISION_COLOURS}
    lines = {ln.get_label(): to_hex(ln.get_color()) for ln in beam_fig.axes[0].get_lines()}
    for p in ("fp16", "int8", "int4"):
        assert colours[p] == lines[f"{p} DR"] == lines[f"{p} no LM"] == PRECISION_COLOURS[p].lower()
    ax = pareto_fig.axes[0]
    assert ax.get_ylabel() == "on-chip memory (MiB)"
    assert list(ax.get_yticks()) == [4.0, 8.0, 16.0]                     # the MiB the points have
    assert ax.get_title().startswith(f"{int((_sweep().beam == BEAM).sum())} design points with beam={BEAM} only")
    beam_ax = beam_fig.axes[0]
    assert list(beam_ax.get_xticks()) == [1, 4, 16] and len(beam_ax.get_xticks(minor=True)) == 0
    assert beam_ax.get_yscale() == "log"                                 # RTF spans > 20x
    lo, hi = beam_ax.get_ylim()
    ticks = beam_ax.get_yticks()
    assert len(ticks) and all(lo <= t <= hi for t in ticks) and len(beam_ax.get_yticks(minor=True)) == 0


# ----------------------------------------------------------------------------------------------
# A real browser


def _chromium() -> str | None:
    for name in (os.environ.get("HWSIM_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


class DevTools:
    """Headless Chromium driven over the DevTools protocol on a pipe (fds 3 and 4 of the
    browser, NUL-separated JSON messages), one page target attached in flat mode."""

    def __init__(self, exe: str, profile: Path, log: Path):
        cmd_r, self._cmd_w = os.pipe()
        self._res_r, res_w = os.pipe()
        # The browser's ends move above fd 9, so that putting them on fds 3 and 4 clobbers neither.
        cmd_r, res_w = (self._above_9(fd) for fd in (cmd_r, res_w))
        args = [exe, "--headless", "--disable-gpu", "--no-sandbox", "--disable-dev-shm-usage",
                "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                "--disable-background-networking", "--disable-sync", "--mute-audio", "--hide-scrollbars",
                f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"]
        # bash (dash takes one-digit fds only) puts the pipe ends on the fds the browser uses.
        shell = f'exec "$@" 3<&{cmd_r} 4>&{res_w} {cmd_r}<&- {res_w}>&-'
        self._log = log.open("wb")
        self.proc = subprocess.Popen(["bash", "-c", shell, "bash", *args], pass_fds=(cmd_r, res_w),
                                     stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log)
        os.close(cmd_r)
        os.close(res_w)
        self._buf, self._id, self.events = b"", 0, []

    @staticmethod
    def _above_9(fd: int) -> int:
        high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(fd)
        return high

    def _read(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._res_r], [], [], left)[0]:
                raise TimeoutError("no answer from the browser")
            chunk = os.read(self._res_r, 1 << 20)
            if not chunk:
                raise RuntimeError("the browser closed the DevTools pipe")
            self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout_s: float = 30.0) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        data = json.dumps(msg).encode() + b"\0"
        while data:
            data = data[os.write(self._cmd_w, data):]
        deadline = time.monotonic() + timeout_s
        while True:
            m = self._read(deadline)
            if m.get("id") == self._id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            self.events.append(m)

    def wait_event(self, method: str, timeout_s: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout_s
        while True:
            for m in self.events:
                if m.get("method") == method:
                    return m
            self.events.append(self._read(deadline))

    def evaluate(self, session: str, expression: str):
        res = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                             "awaitPromise": True}, session)
        if "exceptionDetails" in res:
            raise RuntimeError(f"{expression[:60]}: {res['exceptionDetails']}")
        return res["result"].get("value")

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout_s=5)
        except Exception:                   # noqa: BLE001  (closing anyway)
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._cmd_w)
        os.close(self._res_r)
        self._log.close()


def _problems(events: list[dict], page_url: str) -> list[str]:
    """Console errors and warnings, uncaught exceptions, error log entries and any request for
    something other than the page itself or a data: URI."""
    found = []
    for m in events:
        method, p = m.get("method"), m.get("params", {})
        if method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert", "warning"):
            found.append(f"console.{p['type']}: " + " ".join(str(a.get("value", a.get("description")))
                                                            for a in p.get("args", [])))
        elif method == "Runtime.exceptionThrown":
            found.append(f"exception: {p['exceptionDetails'].get('text')} "
                         f"{p['exceptionDetails'].get('exception', {}).get('description', '')}")
        elif method == "Log.entryAdded" and p["entry"]["level"] in ("error", "warning"):
            found.append(f"log {p['entry']['level']} ({p['entry']['source']}): {p['entry']['text']}")
        elif method == "Network.requestWillBeSent":
            url = p["request"]["url"]
            if url != page_url and not url.startswith("data:"):
                found.append(f"request: {url}")
        elif method == "Network.loadingFailed":
            found.append(f"loading failed: {p.get('errorText')}")
    return found


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    exe = _chromium()
    if exe is None:
        reason = ("chromium is not installed (Debian package `chromium`; `make test` and "
                  "`make test-html` install it when they can)")
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true: {reason}")
        pytest.skip(reason)
    d = tmp_path_factory.mktemp("chromium")
    b = DevTools(exe, d / "profile", d / "chromium.log")
    try:
        yield b
    finally:
        b.close()


def test_browser_renders_the_page_without_errors(report, browser, capsys):
    out, md, _ = report
    url = (out / HTML_NAME).resolve().as_uri()
    target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    sid = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    for method in ("Page.enable", "Runtime.enable", "Log.enable", "Network.enable"):
        browser.send(method, session=sid)
    browser.send("Emulation.setDeviceMetricsOverride",
                 {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False}, sid)
    browser.send("Page.navigate", {"url": url}, sid)
    browser.wait_event("Page.loadEventFired")

    state = browser.evaluate(sid, """({
        title: document.title,
        tables: document.querySelectorAll("main table").length,
        images: [...document.images].map(i => [i.dataset.file, i.complete && i.naturalWidth > 0]),
        points: document.querySelectorAll("#pareto-interactive circle.pt").length,
        width: document.documentElement.scrollWidth,
    })""")
    assert state["title"].startswith("Reference report")
    assert state["tables"] == len(_md_tables(md))
    assert state["images"] and all(ok for _, ok in state["images"]), state["images"]
    assert state["points"] == int((_sweep().beam == BEAM).sum())
    assert state["width"] <= 1280                 # wide tables scroll in their box, not the page

    shots = {}
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def shot(name: str) -> None:
        png = base64.b64decode(browser.send("Page.captureScreenshot", {"format": "png"}, sid)["data"])
        path = ARTIFACTS / name
        path.write_bytes(png)
        shots[name] = path

    shot("report_top.png")
    # Hover over a point on the Pareto front: the tooltip shows that design point.
    front = _front_keys(_sweep().query(f"beam == {BEAM}"))
    data = json.loads((out / PARETO_JSON).read_text())
    i = next(k for k, p in enumerate(data["points"]) if p["front"])
    x, y = browser.evaluate(sid, f"""(() => {{
        const c = document.querySelector('#pareto-interactive circle.pt[data-i="{i}"]');
        c.scrollIntoView({{block: "center"}});
        const r = c.getBoundingClientRect();
        return [r.left + r.width / 2, r.top + r.height / 2];
    }})()""")
    assert browser.evaluate(sid, "document.querySelector('#pareto-interactive .tip').hidden") is True
    browser.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y}, sid)
    tip = browser.evaluate(sid, """(() => { const t = document.querySelector('#pareto-interactive .tip');
        return {hidden: t.hidden, text: t.innerText}; })()""")
    point = data["points"][i]
    assert tip["hidden"] is False, tip
    assert point["key"] in tip["text"] and point["precision"] in tip["text"], tip
    assert any(k.startswith(point["key"]) for k in front) and "on the Pareto front" in tip["text"]
    shot("report_pareto_hover.png")
    browser.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": 5, "y": 5}, sid)
    assert browser.evaluate(sid, "document.querySelector('#pareto-interactive .tip').hidden") is True

    problems = _problems(browser.events, url)
    assert not problems, problems
    with capsys.disabled():
        print("\nHTML report screenshots: " + ", ".join(str(p) for p in shots.values()))
