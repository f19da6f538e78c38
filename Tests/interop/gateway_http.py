"""The JSON-over-HTTP call the interop scripts make to the gateway."""
import json
import urllib.error
import urllib.request


def call(url, method="GET", body=None, token=None):
    """Status and decoded JSON of one request; error statuses are answers, not exceptions."""
    request = urllib.request.Request(url, method=method, data=None if body is None else json.dumps(body).encode())
    if body is not None:
        request.add_header("Content-Type", "application/json")
    if token is not None:
        request.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")
