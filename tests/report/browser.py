"""A real headless Chromium driven over the DevTools protocol (websockets), for report tests.

``open_page(path)`` starts the browser, loads the file, and returns what the page did: console
errors, uncaught exceptions, failed loads, each plot's rendered size and a PNG of it, and a
full-page screenshot. Nothing is mocked: when no browser is installed the caller skips.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_browser() -> str | None:
    explicit = os.environ.get("CONVBERT_EXPORT_BROWSER")
    if explicit:
        return explicit
    return next((path for path in map(shutil.which, BROWSERS) if path), None)


class Page:
    def __init__(self, ws):
        self.ws, self.next_id, self.events = ws, 0, []

    def call(self, method: str, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=60))
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, method: str, timeout: float = 60.0) -> dict:
        deadline = time.monotonic() + timeout
        for event in self.events:
            if event.get("method") == method:
                return event
        while time.monotonic() < deadline:
            message = json.loads(self.ws.recv(timeout=deadline - time.monotonic()))
            self.events.append(message)
            if message.get("method") == method:
                return message
        raise TimeoutError(method)


def open_page(browser: str, html_file: Path, width: int = 1200, height: int = 900) -> dict:
    """Load ``html_file``; returns {"errors", "plots", "plot_pngs", "screenshot"}."""
    from websockets.sync.client import connect

    profile = Path(tempfile.mkdtemp(prefix="convbert-chromium-"))
    process = subprocess.Popen(
        [browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
         "--remote-debugging-port=0", "--remote-allow-origins=*", f"--user-data-dir={profile}",
         f"--window-size={width},{height}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.is_file() and port_file.read_text().strip()):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{browser} did not start (exit {process.poll()})")
            time.sleep(0.1)
        port = int(port_file.read_text().splitlines()[0])
        targets = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30).read())
        target = next(t for t in targets if t.get("type") == "page")
        with connect(target["webSocketDebuggerUrl"], max_size=None, open_timeout=30) as ws:
            page = Page(ws)
            for domain in ("Page", "Runtime", "Log"):
                page.call(f"{domain}.enable")
            page.call("Page.navigate", url=html_file.resolve().as_uri())
            page.wait_for("Page.loadEventFired")
            plots = page.call("Runtime.evaluate", returnByValue=True, expression="""
                Array.from(document.querySelectorAll('figure.plot')).map(f => {
                  const svg = f.querySelector('svg'); const r = f.getBoundingClientRect();
                  return {x: r.x + window.scrollX, y: r.y + window.scrollY, width: r.width, height: r.height,
                          svg: !!svg, shapes: svg ? svg.querySelectorAll('path,rect,line,use,text').length : 0};
                })""")["result"]["value"]
            pngs = []
            for plot in plots:
                clip = {k: plot[k] for k in ("x", "y", "width", "height")} | {"scale": 1}
                shot = page.call("Page.captureScreenshot", format="png", clip=clip, captureBeyondViewport=True)
                pngs.append(base64.b64decode(shot["data"]))
            full = page.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
            errors = []
            for event in page.events:
                method, params = event.get("method"), event.get("params", {})
                if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                    errors.append(f"console.{params['type']}: {params.get('args')}")
                elif method == "Runtime.exceptionThrown":
                    errors.append(f"exception: {params.get('exceptionDetails', {}).get('text')}")
                elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                    errors.append(f"log: {params['entry'].get('text')} {params['entry'].get('url', '')}")
            return {"errors": errors, "plots": plots, "plot_pngs": pngs, "screenshot": base64.b64decode(full["data"])}
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(profile, ignore_errors=True)
