"""Headless Chromium plays a StreamHub player page; we watch it over the DevTools protocol.

Usage: chromium_play.py CHROMIUM URL SCREENSHOT_PNG [SECONDS]

Starts Debian's chromium headless on URL (autoplay allowed), reads the page's <video> currentTime
and the status line every 250 ms through the DevTools protocol (PyPI websocket-client) until
currentTime passes 1 s or SECONDS (default 25) elapse, then saves a screenshot. Prints one JSON
line {currentTime, status, state, screenshot}; exits 1 when playback did not pass 1 s.
"""
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import websocket


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    chromium, url, screenshot = sys.argv[1:4]
    seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 25
    port = free_port()
    profile = tempfile.mkdtemp(prefix="chromium-")
    browser = subprocess.Popen(
        [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--autoplay-policy=no-user-gesture-required",
         "--window-size=800,520", "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=%d" % port, "--user-data-dir=" + profile, url],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    result = {"currentTime": 0.0, "status": None, "state": None, "screenshot": None}
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
        ws = websocket.create_connection(target["webSocketDebuggerUrl"], timeout=10)
        ids = iter(range(1, 1 << 30))

        def command(method, params=None):
            ident = next(ids)
            ws.send(json.dumps({"id": ident, "method": method, "params": params or {}}))
            while True:
                message = json.loads(ws.recv())
                if message.get("id") == ident:
                    return message.get("result", {})

        probe = ("JSON.stringify({t: (document.getElementById('video') || {}).currentTime || 0, "
                 "status: (document.getElementById('status') || {}).textContent || null, "
                 "state: ((document.getElementById('status') || {}).dataset || {}).state || null})")
        deadline = time.time() + seconds
        while time.time() < deadline:
            value = command("Runtime.evaluate", {"expression": probe, "returnByValue": True}).get("result", {}).get("value")
            if value:
                seen = json.loads(value)
                result.update(currentTime=seen["t"], status=seen["status"], state=seen["state"])
                if seen["t"] > 1:
                    break
            time.sleep(0.25)
        shot = command("Page.captureScreenshot", {"format": "png"}).get("data")
        if shot:
            with open(screenshot, "wb") as f:
                f.write(base64.b64decode(shot))
            result["screenshot"] = screenshot
        ws.close()
    finally:
        try:
            os.killpg(browser.pid, signal.SIGKILL)
        except OSError:
            pass
        browser.wait()
        shutil.rmtree(profile, ignore_errors=True)
    print(json.dumps(result))
    return 0 if result["currentTime"] > 1 else 1


if __name__ == "__main__":
    sys.exit(main())
