"""The students' side: ``submit(server, token, checkpoint)`` from chapter 5 or the shell.

Every upload carries a fresh idempotency key, and a dropped connection is retried with the
same key: if the server had already stored the upload before the connection broke (a server
restart), the retry returns that submission instead of spending a second one of the day's
quota. A refusal raises :class:`SubmissionError` with the server's own message.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import requests

#: how long a dropped connection is retried (a server restart takes seconds on a busy machine)
RETRY_S = 90.0
FINAL = ("scored", "failed", "timed_out")


class SubmissionError(ValueError):
    """The server refused (``status`` is its HTTP status) or could not be reached (0)."""

    def __init__(self, message: str, status: int = 0):
        super().__init__(message)
        self.status = status


def _url(server: str, path: str) -> str:
    server = server if "://" in server else f"http://{server}"
    return server.rstrip("/") + path


def _answer(resp: requests.Response) -> dict:
    """The JSON body of a good answer; the server's message as an error otherwise."""
    try:
        body = resp.json()
    except ValueError:
        body = {"error": resp.text.strip()[:300] or resp.reason}
    if resp.status_code >= 400:
        raise SubmissionError(f"refused by the server: {body.get('error')}", resp.status_code)
    return body


def _send(method: str, url: str, headers: dict, timeout: float, upload, kwargs: dict):
    """One HTTP request; an upload is reopened for each try."""
    if upload is None:
        return requests.request(method, url, headers=headers, timeout=timeout, **kwargs)
    name, path = upload
    with open(path, "rb") as fh:
        files = {"model": (name, fh)}
        return requests.request(method, url, headers=headers, files=files, timeout=timeout)


def _call(method: str, url: str, token: str, timeout: float = 120, **kwargs) -> dict:
    """One API call with retries on a dropped or refused connection (a restarting server)."""
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    headers.update(kwargs.pop("headers", {}))
    upload = kwargs.pop("upload", None)
    deadline, wait = time.monotonic() + RETRY_S, 0.5
    while True:
        try:
            return _answer(_send(method, url, headers, timeout, upload, kwargs))
        except (requests.ConnectionError, requests.Timeout) as exc:
            if time.monotonic() + wait > deadline:
                raise SubmissionError(f"cannot reach the server at {url}: {exc}") from None
            time.sleep(wait)
            wait = min(4.0, wait * 2)


def submit(
    server: str, token: str, checkpoint: str | Path, wait: bool = False, timeout: float = 900
) -> dict:
    """Upload a checkpoint (``best.pt``) or an ONNX file; the server's answer (submission id,
    state, quota left). ``wait=True`` waits until it is scored and returns its public result."""
    path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    key = uuid.uuid4().hex
    answer = _call(
        "POST",
        _url(server, "/submit"),
        token,
        headers={"Idempotency-Key": key},
        upload=(path.name, path),
    )
    return wait_for(server, token, answer["id"], timeout) if wait else answer


def result(server: str, token: str, submission_id: int) -> dict:
    """One submission of your team: its state and (once scored) its public numbers."""
    return _call("GET", _url(server, f"/api/submissions/{int(submission_id)}"), token)


def wait_for(server: str, token: str, submission_id: int, timeout: float = 900) -> dict:
    """Poll until the submission is scored, failed or timed out."""
    deadline = time.monotonic() + timeout
    while True:
        answer = result(server, token, submission_id)
        if answer["state"] in FINAL or time.monotonic() > deadline:
            return answer
        time.sleep(2.0)


def team(server: str, token: str) -> dict:
    """Your team: history, quota left today, final picks."""
    return _call("GET", _url(server, "/api/team"), token)


def pick(server: str, token: str, ids: list[int]) -> dict:
    """Choose your final submissions (replaces earlier picks)."""
    return _call("POST", _url(server, "/api/picks"), token, json={"ids": [int(i) for i in ids]})
