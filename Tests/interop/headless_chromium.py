"""Debian's chromium, headless, driven over the DevTools protocol (PyPI websocket-client).

`with HeadlessPage(chromium, url) as page:` starts the browser on `url` with its own profile and a
free DevTools port; `page.evaluate(js)` returns a JavaScript value, `page.screenshot(path)` saves a
PNG. The browser and its profile are gone when the block ends, whatever happened in it.
"""
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

import websocket


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class HeadlessPage:
    def __init__(self, chromium, url, window="800,520"):
        self.chromium, self.url, self.window = chromium, url, window
        self.ids = iter(range(1, 1 << 30))

    def __enter__(self):
        port = free_port()
        self.profile = tempfile.mkdtemp(prefix="chromium-")
        self.browser = subprocess.Popen(
            [self.chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--autoplay-policy=no-user-gesture-required", "--window-size=" + self.window, "--remote-debugging-address=127.0.0.1",
             "--remote-debugging-port=%d" % port, "--user-data-dir=" + self.profile, self.url],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            target = None
            deadline = time.time() + 15
            while target is None and time.time() < deadline:
                try:
                    with urllib.request.urlopen("http://127.0.0.1:%d/json/list" % port, timeout=2) as response:
                        pages = [t for t in json.load(response) if t.get("type") == "page"]
                        target = pages[0] if pages else None
                except OSError:
                    time.sleep(0.2)
            if target is None:
                raise SystemExit("chromium did not open its DevTools port")
            self.ws = websocket.create_connection(target["webSocketDebuggerUrl"], timeout=10)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def command(self, method, params=None):
        ident = next(self.ids)
        self.ws.send(json.dumps({"id": ident, "method": method, "params": params or {}}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == ident:
                return message.get("result", {})

    def evaluate(self, expression):
        return self.command("Runtime.evaluate", {"expression": expression, "returnByValue": True}).get("result", {}).get("value")

    def screenshot(self, path):
        shot = self.command("Page.captureScreenshot", {"format": "png"}).get("data")
        if not shot:
            return None
        with open(path, "wb") as f:
            f.write(base64.b64decode(shot))
        return path

    def __exit__(self, *exc):
        ws = getattr(self, "ws", None)
        if ws is not None:
            ws.close()
        try:
            os.killpg(self.browser.pid, signal.SIGKILL)
        except OSError:
            pass
        self.browser.wait()
        shutil.rmtree(self.profile, ignore_errors=True)
        return False
