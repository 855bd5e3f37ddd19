"""One request before the suite runs: is the server there, and does it take the key?

A dead URL or a wrong key would otherwise fail every test with the same error (issue 17: 35 times, and a
summary that still counted the local self-tests as passed). ``qiwi-contract`` calls :func:`preflight` before it
starts pytest; the suite's ``target`` fixture calls it too, for plain ``pytest`` runs, and stops the session
with :data:`PREFLIGHT_EXIT`. Only the standard library is used: httpx imports anyio, a pytest plugin, and a plugin
imported before pytest starts cannot have its asserts rewritten (PytestAssertRewriteWarning, an error here).
"""

from __future__ import annotations

import secrets
import urllib.error
import urllib.request
from urllib.parse import quote

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "PREFLIGHT_EXIT",
    "PreflightError",
    "preflight",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_UNREACHABLE = 2
EXIT_USAGE = 3
EXIT_INTERRUPTED = 130
#: What the suite's fixture hands ``pytest.exit`` when the preflight fails inside a run: not one of pytest's own
#: exit codes (2 is pytest's "interrupted"), so ``qiwi-contract`` can tell it apart and exit 2.
PREFLIGHT_EXIT = 42


class PreflightError(Exception):
    """The server cannot be reached, or refuses the key; the message is one line naming the server."""


def preflight(base_url: str, secret_key: str, *, timeout: float = 10.0) -> None:
    """Read a bill that does not exist; raise :class:`PreflightError` unless the server answers and takes the key.

    Any answer but 401/403 passes (a QIWI-compatible server says 404 ``api.invoice.not.found``; whatever else it
    says is the suite's business). The request creates nothing.
    """
    path = f"/partner/bill/v1/bills/{quote(f'qiwi-contract-preflight-{secrets.token_hex(4)}', safe='')}"
    request = urllib.request.Request(base_url.rstrip("/") + path, headers={"Authorization": f"Bearer {secret_key}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout):  # the user's own http(s) URL, checked by the CLI
            return
    except urllib.error.HTTPError as exc:  # an answer: only 401 and 403 stop the run
        exc.close()
        if exc.code in (401, 403):
            raise PreflightError(f"{base_url} refuses the secret key (HTTP {exc.code} on GET {path})") from None
    except (OSError, ValueError) as exc:  # URLError, refused, reset, timed out, a garbled answer
        reason = getattr(exc, "reason", exc)
        text = " ".join(str(reason).split()) or type(exc).__name__
        raise PreflightError(f"{base_url} cannot be reached ({text})") from None
