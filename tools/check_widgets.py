#!/usr/bin/env python
"""Check the notebooks' widgets in a real JupyterLab, driven by headless Chromium.

For each notebook: start JupyterLab headless on localhost (no token, no password) serving a
temporary copy of the repository's notebooks/ (so that nothing JupyterLab saves can touch the
committed .ipynb files), open the notebook in Chromium, run all cells with live widgets
(``HIH_WIDGETS=interactive``; smoke mode ``HIH_SMOKE=1`` unless ``--full``), then for every explorer:
screenshot it, move its first slider one step with the keyboard, wait for the figure to be redrawn
and screenshot it again. Screenshots go to <figures>/widgets/<notebook>_<n>_{before,after}.png, where
<figures> is ``hihlib.viz.figure_dir()``: runs/figures/ (untracked) by default, the committed figures/
only when asked for (``HIH_FIGURES=figures``) or with ``--out``. The check fails (exit 1) when a notebook raises, when it shows no widget, or when moving a slider does
not change the figure.

It waits for what it needs, never for a fixed element: for the notebook's model to be loaded (not for the
first cell's element, which JupyterLab's windowed notebook may leave out of the page), for the run to end
(every code cell numbered, the kernel idle), then for each cell whose outputs hold a widget it scrolls that
cell into view and waits for its explorer to be drawn. Notebook windowing is switched off in the
temporary JupyterLab settings so that every cell is attached to the page.

Needs: ``pip install playwright`` (the Python package only; no ``playwright install``) and a system
Chromium (Debian: ``apt-get install -y chromium chromium-driver``).

    python tools/check_widgets.py                       # notebooks 01-03, smoke mode, to runs/figures/widgets
    HIH_FIGURES=figures python tools/check_widgets.py --full   # regenerate the committed screenshots
    python tools/check_widgets.py --full                # as committed (a few minutes)
    python tools/check_widgets.py notebooks/02_heatmap_in_heatmap.ipynb --chromium /usr/bin/chromium
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # hihlib from this checkout, installed or not
DEFAULT_NOTEBOOKS = ["01_quantization_error", "02_heatmap_in_heatmap", "03_randomized_rounding"]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# An explorer is a VBox holding a GridBox of controls and an image widget (see hihlib.teaching.widgets).
EXPLORER = ".jp-OutputArea-output .widget-vbox:has(> .widget-gridbox):has(> .widget-image)"
# Opens a page-side function body with ``panel``, the notebook named by its argument (the current widget).
PANEL = "(name) => { const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget; if (!panel) return false;"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_lab(root: Path, port: int, log: Path, smoke: bool = True) -> subprocess.Popen:
    env = dict(os.environ, HIH_SMOKE="1" if smoke else "0", HIH_WIDGETS="interactive", PYTHONPATH=str(ROOT))
    env.pop("MPLBACKEND", None)
    settings = root / ".lab-settings"
    # Silence the "receive Jupyter news?" toast so that it covers nothing in the screenshots.
    (settings / "@jupyterlab" / "apputils-extension").mkdir(parents=True, exist_ok=True)
    (settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        '{"fetchNews": "false", "checkForUpdates": false}')
    # Attach every cell to the page: JupyterLab's windowed notebook leaves cells outside the viewport out of
    # the DOM (or unrendered), and an explorer there would be neither found nor drawn.
    (settings / "@jupyterlab" / "notebook-extension").mkdir(parents=True, exist_ok=True)
    (settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings").write_text(
        '{"windowingMode": "none"}')
    env["JUPYTERLAB_SETTINGS_DIR"] = str(settings)
    env["JUPYTERLAB_WORKSPACES_DIR"] = str(root / ".lab-workspaces")
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           f"--ServerApp.root_dir={root}", "--IdentityProvider.token=", "--ServerApp.password=",
           "--ServerApp.disable_check_xsrf=True", "--LabApp.expose_app_in_browser=True",
           "--LabApp.news_url=", "--allow-root"]
    return subprocess.Popen(cmd, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT, cwd=root)


def wait_http(url: str, timeout: float = 90.0) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"JupyterLab did not answer at {url} within {timeout:.0f} s")


def run_notebook(page, base: str, name: str, out_dir: Path, timeout_s: float) -> list[str]:
    """Open, run, interact, screenshot. Returns a list of problems (empty when all is well)."""
    problems: list[str] = []
    page.goto(f"{base}/lab/tree/notebooks/{name}.ipynb", wait_until="domcontentloaded")
    # Wait for the notebook's model, not for a cell's element: the model has every cell whatever is in view.
    page.wait_for_function(PANEL + " return !!(panel.context && panel.context.isReady && panel.content"
                           " && panel.content.widgets.length > 0 && panel.context.path.endsWith(name)); }",
                           arg=f"{name}.ipynb", timeout=120_000)
    # A notebook without kernel metadata asks which kernel to start: take the default.
    select = page.locator(".jp-Dialog .jp-Dialog-button.jp-mod-accept")
    try:
        select.wait_for(timeout=5_000)
        select.click()
    except Exception:
        pass
    page.evaluate("() => window.jupyterapp.commands.execute('application:toggle-left-area')")
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                           " && window.jupyterapp.shell.currentWidget.sessionContext"
                           " && window.jupyterapp.shell.currentWidget.sessionContext.session"
                           " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel",
                           timeout=90_000)
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs')")
    t0 = time.time()
    # The command's promise settles when the last cell has run, so this usually returns a finished notebook.
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    # Done when every code cell has an execution count (clearing the outputs reset them) and the kernel
    # is idle; a cell that raises stops "run all", so an error output ends the wait too.
    state = "busy"
    while time.time() - t0 < timeout_s:
        state = page.evaluate("""() => {
            const panel = window.jupyterapp.shell.currentWidget;
            const cells = panel.content.widgets.filter(c => c.model.type === 'code');
            for (const c of cells) {
                const outs = c.model.outputs;
                for (let i = 0; i < outs.length; i++) {
                    const o = outs.get(i);
                    if (o.type === 'error') return 'error: ' + o.toJSON().ename + ': ' + o.toJSON().evalue;
                }
            }
            const done = cells.every(c => c.model.executionCount !== null);
            return done && panel.sessionContext.session.kernel.status === 'idle' ? 'done' : 'busy';
        }""")
        if state != "busy":
            break
        time.sleep(1.0)
    if state == "busy":
        problems.append(f"{name}: still running after {timeout_s:.0f} s")
    elif state != "done":
        problems.append(f"{name}: a cell raised ({state})")
    # The cells whose outputs hold a widget, from the notebook's model; each is scrolled into view and its
    # explorer waited for in the page (widgets render after the kernel has sent them).
    cells = page.evaluate(PANEL + " const widget = 'application/vnd.jupyter.widget-view+json'; const found = [];"
                          " panel.content.widgets.forEach((c, i) => { if (c.model.type !== 'code') return;"
                          " for (let k = 0; k < c.model.outputs.length; k++) {"
                          " const d = c.model.outputs.get(k).data; if (d && d[widget]) { found.push(i); return; } } });"
                          " return found; }", name)
    boxes = []
    for idx in cells:
        page.evaluate("([name, idx]) => { const panel = window.jupyterapp.shell.currentWidget;"
                      " const c = panel.content.widgets[idx]; c.node.setAttribute('data-hih-cell', String(idx));"
                      " panel.content.activeCellIndex = idx; c.node.scrollIntoView(); }", [name, idx])
        box = page.locator(f"[data-hih-cell='{idx}'] {EXPLORER}")
        try:
            box.first.wait_for(state="visible", timeout=60_000)
            boxes += [box.nth(j) for j in range(box.count())]
        except Exception:
            problems.append(f"{name}: cell {idx + 1} holds a widget, but no explorer was drawn within 60 s")
    n = len(boxes)
    print(f"{name}: {n} explorer(s) in {len(cells)} widget cell(s), ran in {time.time() - t0:.0f} s")
    if n == 0:
        problems.append(f"{name}: no widget explorer rendered")
    for i, box in enumerate(boxes):
        box.scroll_into_view_if_needed()
        box.locator(".widget-image").first.wait_for(state="visible", timeout=60_000)
        img = box.locator(".widget-image").first
        before_src = img.get_attribute("src")
        box.screenshot(path=str(out_dir / f"{name}_{i + 1}_before.png"))
        sliders = box.locator(".widget-slider .noUi-handle, .widget-hslider .noUi-handle")
        if sliders.count() == 0:
            problems.append(f"{name} explorer {i + 1}: no slider to move")
            continue
        handle = sliders.first
        label = box.locator(".widget-slider, .widget-hslider").first.locator(".widget-label").first.inner_text()
        now, top = (float(handle.get_attribute(a) or 0) for a in ("aria-valuenow", "aria-valuemax"))
        key = "ArrowLeft" if now >= top else "ArrowRight"  # a slider at its maximum can only go down
        handle.focus()
        handle.press(key)  # one step: one redraw, so the screenshot shows the value on the slider
        try:
            page.wait_for_function("([el, old]) => el.getAttribute('src') !== old",
                                   arg=[img.element_handle(), before_src], timeout=60_000)
            changed = True
        except Exception:
            changed = False
        # Let any further redraw land: wait until the image has not changed for 2 s.
        last, stable_since = img.get_attribute("src"), time.time()
        while time.time() - stable_since < 2.0:
            time.sleep(0.25)
            src = img.get_attribute("src")
            if src != last:
                last, stable_since = src, time.time()
        after = box.locator(".widget-slider, .widget-hslider").first.locator(".widget-readout").first.inner_text()
        box.screenshot(path=str(out_dir / f"{name}_{i + 1}_after.png"))
        print(f"  explorer {i + 1}: moved slider {label!r} ({key} from {now:g} to {after}); figure redrawn: {changed}")
        if not changed:
            problems.append(f"{name} explorer {i + 1}: moving {label!r} did not redraw the figure")
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("notebooks", nargs="*", help="notebook paths or names (default: 01-03)")
    ap.add_argument("--chromium", default="/usr/bin/chromium", help="Chromium executable")
    ap.add_argument("--out", default=None,
                    help="screenshot folder (default: hihlib.viz.figure_dir('widgets'), i.e. runs/figures/widgets "
                    "or $HIH_FIGURES/widgets)")
    ap.add_argument("--timeout", type=float, default=300, help="seconds allowed per notebook run")
    ap.add_argument("--full", action="store_true", help="run the notebooks in full mode (HIH_SMOKE=0), not smoke")
    args = ap.parse_args(argv)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("check_widgets: needs the Python package playwright (pip install playwright)", file=sys.stderr)
        return 2
    if not Path(args.chromium).exists():
        print(f"check_widgets: no Chromium at {args.chromium} (apt-get install chromium)", file=sys.stderr)
        return 2
    sources = [Path(n) if Path(n).suffix == ".ipynb" else ROOT / "notebooks" / f"{n}.ipynb"
               for n in (args.notebooks or DEFAULT_NOTEBOOKS)]
    names = [s.stem for s in sources]
    from hihlib.viz import figure_dir

    out_dir = Path(args.out) if args.out else figure_dir("widgets")
    out_dir.mkdir(parents=True, exist_ok=True)

    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="hih-widgets-") as tmp:
        root = Path(tmp)
        (root / "notebooks").mkdir()
        (root / "figures").mkdir()
        for src in sources:
            if not src.exists():
                print(f"check_widgets: {src}: no such notebook", file=sys.stderr)
                return 2
            shutil.copy(src, root / "notebooks" / src.name)
        port = free_port()
        log = root / "jupyterlab.log"
        lab = start_lab(root, port, log, smoke=not args.full)
        base = f"http://127.0.0.1:{port}"
        try:
            try:
                wait_http(f"{base}/api/status")
            except RuntimeError:
                problems.append("JupyterLab did not start")
                raise
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=args.chromium, headless=True, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1280, "height": 1400})
                for name in names:
                    problems += run_notebook(page, base, name, out_dir, args.timeout)
                    page.evaluate("() => window.jupyterapp.commands.execute('notebook:shutdown-kernel')")
                    page.evaluate("() => window.jupyterapp.commands.execute('application:close-all')")
                    time.sleep(1.0)
                browser.close()
        finally:
            lab.terminate()
            try:
                lab.wait(timeout=20)
            except subprocess.TimeoutExpired:
                lab.kill()
            if problems:
                print("--- JupyterLab log (tail) ---\n" + log.read_text()[-3000:], file=sys.stderr)
    for pr in problems:
        print("PROBLEM:", pr, file=sys.stderr)
    print(f"screenshots in {out_dir}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
