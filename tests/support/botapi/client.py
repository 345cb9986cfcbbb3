"""Synchronous access to a fake Bot API server in another process: start it, act as users, read
what the bot did. Uses only the standard library so it works from plain (non-async) tests.
"""

from __future__ import annotations

import base64
import json
import os
import select
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
_REPO_ROOT = Path(__file__).resolve().parents[3]


class ControlError(RuntimeError):
    """The control API answered with an error (``status`` 400, 404 or 408)."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(f"{status}: {description}")
        self.status = status


class ControlClient:
    """Client of the ``/_control/`` endpoints; ``url`` is the server root (``http://host:port``)."""

    def __init__(self, url: str, request_timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.request_timeout = request_timeout

    def _request(self, method: str, path: str, body: Any = None, query: dict[str, Any] | None = None) -> Any:
        url = f"{self.url}/_control/{path}"
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.request_timeout) as response:
                return json.loads(response.read())["result"]
        except urllib.error.HTTPError as exc:
            payload = json.loads(exc.read() or b"{}")
            raise ControlError(exc.code, payload.get("description", "")) from None

    # ---- users and chats --------------------------------------------------------------------

    def add_user(self, first_name: str, username: str | None = None, user_id: int | None = None) -> dict[str, Any]:
        return self._request("POST", "users", {"first_name": first_name, "username": username, "user_id": user_id})

    def add_group(self, title: str, chat_type: str = "group") -> dict[str, Any]:
        return self._request("POST", "groups", {"title": title, "type": chat_type})

    def set_blocked(self, user_id: int, blocked: bool = True) -> None:
        self._request("POST", f"users/{user_id}/blocked", {"blocked": blocked})

    # ---- acting as a user -------------------------------------------------------------------

    def send_text(self, user_id: int, text: str, chat_id: int | None = None) -> dict[str, Any]:
        return self._request("POST", "send_text", {"user_id": user_id, "text": text, "chat_id": chat_id})

    def send_photo(
        self,
        user_id: int,
        image: bytes,
        chat_id: int | None = None,
        caption: str | None = None,
        forward_origin: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        body = {
            "user_id": user_id,
            "data_b64": base64.b64encode(image).decode(),
            "chat_id": chat_id,
            "caption": caption,
            "forward_origin": forward_origin,
        }
        return self._request("POST", "send_photo", body)

    def send_document(
        self,
        user_id: int,
        data: bytes,
        file_name: str,
        mime_type: str = "application/octet-stream",
        chat_id: int | None = None,
        caption: str | None = None,
    ) -> dict[str, Any]:
        body = {
            "user_id": user_id,
            "data_b64": base64.b64encode(data).decode(),
            "file_name": file_name,
            "mime_type": mime_type,
            "chat_id": chat_id,
            "caption": caption,
        }
        return self._request("POST", "send_document", body)

    def send_sticker(self, user_id: int, image: bytes, chat_id: int | None = None) -> dict[str, Any]:
        body = {"user_id": user_id, "data_b64": base64.b64encode(image).decode(), "chat_id": chat_id}
        return self._request("POST", "send_sticker", body)

    def send_video(self, user_id: int, data: bytes, chat_id: int | None = None) -> dict[str, Any]:
        body = {"user_id": user_id, "data_b64": base64.b64encode(data).decode(), "chat_id": chat_id}
        return self._request("POST", "send_video", body)

    def press_button(
        self, user_id: int, chat_id: int, message_id: int, callback_data: str | None = None, text: str | None = None
    ) -> str:
        body = {
            "user_id": user_id,
            "chat_id": chat_id,
            "message_id": message_id,
            "callback_data": callback_data,
            "text": text,
        }
        return self._request("POST", "press_button", body)["callback_query_id"]

    # ---- what the bot did -------------------------------------------------------------------

    def sent(
        self, chat_id: int | None = None, min_count: int = 0, timeout: float = 0, include_deleted: bool = False
    ) -> list[dict[str, Any]]:
        """Bot messages in their current state; waits server-side for ``min_count`` (ControlError 408)."""
        query = {"chat_id": chat_id, "min_count": min_count, "timeout": timeout, "include_deleted": int(include_deleted)}
        return self._request("GET", "sent", query=query)

    def message(self, chat_id: int, message_id: int) -> dict[str, Any]:
        return self._request("GET", f"messages/{chat_id}/{message_id}")

    def file_bytes(self, file_id: str) -> bytes:
        with urllib.request.urlopen(f"{self.url}/_control/files/{file_id}", timeout=self.request_timeout) as response:
            return response.read()

    def calls(self, method: str | None = None, min_count: int = 0, timeout: float = 0) -> list[dict[str, Any]]:
        return self._request("GET", "calls", query={"method": method, "min_count": min_count, "timeout": timeout})

    def callback_answers(self, min_count: int = 0, timeout: float = 0) -> list[dict[str, Any]]:
        return self._request("GET", "callback_answers", query={"min_count": min_count, "timeout": timeout})

    def commands(self) -> list[dict[str, Any]]:
        return self._request("GET", "commands")

    def pending_updates(self) -> list[dict[str, Any]]:
        return self._request("GET", "updates")

    # ---- faults -----------------------------------------------------------------------------

    def add_fault(self, kind: str, count: int = 1, methods: list[str] | None = None, **options: Any) -> dict[str, Any]:
        """``kind``: error (status, description), retry_after (retry_after), stall (seconds),
        late (seconds: carried out at once, answered then), drop (after_execute); any kind
        may name ``chats`` (chat ids) to hit only calls to those."""
        return self._request("POST", "faults", {"kind": kind, "count": count, "methods": methods, **options})

    def faults(self) -> list[dict[str, Any]]:
        return self._request("GET", "faults")

    def clear_faults(self) -> None:
        self._request("DELETE", "faults")

    def wait_for(self, predicate: Callable[[ControlClient], T], timeout: float = 10.0, interval: float = 0.05) -> T:
        """Poll until ``predicate(self)`` is truthy and return it; TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate(self)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met within {timeout} s")
            time.sleep(interval)


class BotApiUrls:
    """The URLs a bot is pointed at, from the server root ``url`` (``http://host:port``)."""

    url: str

    @property
    def base_url(self) -> str:
        """What to pass as PTB ``base_url`` (PTB appends the token)."""
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        """What to pass as PTB ``base_file_url`` (PTB appends the token)."""
        return f"{self.url}/file/bot"


class StandaloneServer(BotApiUrls):
    """Run ``python -m tests.support.botapi.server`` as a subprocess (context manager).

    ``url``, ``base_url``, ``base_file_url`` and ``control`` are set once it is ready.
    """

    def __init__(self, token: str, port: int = 0, startup_timeout: float = 20.0) -> None:
        self.token = token
        self.port = port
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[str] | None = None
        self.url = ""
        self.stderr = ""  # the server's log, available after exit

    @property
    def control(self) -> ControlClient:
        return ControlClient(self.url)

    def __enter__(self) -> StandaloneServer:
        # The token goes through the environment so it does not show in the process list.
        env = {**os.environ, "BOTAPI_TOKEN": self.token}
        # stderr goes to a file: an unread pipe could fill up and block the server.
        self._stderr_file = tempfile.TemporaryFile(mode="w+")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.botapi.server", "--port", str(self.port)],
            cwd=_REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=self._stderr_file,
            text=True,
        )
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], self.startup_timeout)
        line = self.process.stdout.readline() if ready else ""
        if not line.startswith("READY "):
            self.__exit__()
            raise RuntimeError(f"fake Bot API server did not start: {line!r} {self.stderr}")
        self.url = line.split()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._stderr_file.seek(0)
        self.stderr = self._stderr_file.read()
        self._stderr_file.close()
        self.process.stdout.close()  # type: ignore[union-attr]
