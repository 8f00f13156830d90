"""Plain HTTP GETs against the processes under test (probes, metrics), errors as answers."""

from __future__ import annotations

import urllib.error
import urllib.request


def get(port: int, path: str, host: str = "127.0.0.1") -> tuple[int, str]:
    """(status, body) of GET http://host:port/path; (0, why) when nothing answers (yet)."""
    try:
        with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError as exc:  # not listening yet, or refused
        return 0, str(exc)
