"""Headless Chromium plays a StreamHub player page; we watch it over the DevTools protocol.

Usage: chromium_play.py CHROMIUM URL SCREENSHOT_PNG [SECONDS]

Starts Debian's chromium headless on URL (autoplay allowed), reads the page's <video> currentTime
and the status line every 250 ms until currentTime passes 1 s or SECONDS (default 25) elapse, then
saves a screenshot. Prints one JSON line {currentTime, status, state, screenshot}; exits 1 when
playback did not pass 1 s.
"""
import json
import sys
import time

from headless_chromium import HeadlessPage

PROBE = ("JSON.stringify({t: (document.getElementById('video') || {}).currentTime || 0, "
         "status: (document.getElementById('status') || {}).textContent || null, "
         "state: ((document.getElementById('status') || {}).dataset || {}).state || null})")


def main():
    chromium, url, screenshot = sys.argv[1:4]
    seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 25
    result = {"currentTime": 0.0, "status": None, "state": None, "screenshot": None}
    with HeadlessPage(chromium, url) as page:
        deadline = time.time() + seconds
        while time.time() < deadline:
            value = page.evaluate(PROBE)
            if value:
                seen = json.loads(value)
                result.update(currentTime=seen["t"], status=seen["status"], state=seen["state"])
                if seen["t"] > 1:
                    break
            time.sleep(0.25)
        result["screenshot"] = page.screenshot(screenshot)
    print(json.dumps(result))
    return 0 if result["currentTime"] > 1 else 1


if __name__ == "__main__":
    sys.exit(main())
