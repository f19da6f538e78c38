"""Headless Chromium opens the gateway's Swagger UI page and counts the operations it renders.

Usage: chromium_docs.py CHROMIUM URL SCREENSHOT_PNG EXPECTED_OPERATIONS [SECONDS]

Waits (default 25 s) until Swagger UI has rendered EXPECTED_OPERATIONS operation blocks
(`.opblock`), then saves a full-height screenshot. Prints one JSON line {operations, title,
swaggerUI, screenshot}; exits 1 when Swagger UI did not render them all.
"""
import json
import sys
import time

from headless_chromium import HeadlessPage

PROBE = ("JSON.stringify({operations: document.querySelectorAll('.opblock').length, "
         "title: (document.querySelector('.info .title') || {}).textContent || null, "
         "swaggerUI: !!window.SwaggerUIBundle, paths: Array.from(document.querySelectorAll('.opblock-summary-path'))"
         ".slice(0, 3).map(e => e.textContent)})")


def main():
    chromium, url, screenshot, expected = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    seconds = float(sys.argv[5]) if len(sys.argv) > 5 else 25
    result = {"operations": 0, "title": None, "swaggerUI": False, "screenshot": None}
    with HeadlessPage(chromium, url, window="1280,2000") as page:
        deadline = time.time() + seconds
        while time.time() < deadline:
            value = page.evaluate(PROBE)
            if value:
                result.update(json.loads(value))
                if result["operations"] >= expected:
                    break
            time.sleep(0.25)
        result["screenshot"] = page.screenshot(screenshot)
    print(json.dumps(result))
    return 0 if result["operations"] >= expected else 1


if __name__ == "__main__":
    sys.exit(main())
