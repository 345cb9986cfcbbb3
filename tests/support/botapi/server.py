"""A fake Telegram Bot API server (aiohttp) for end-to-end and fault-injection tests.

In-process::

    async with BotApiServer(token="123456:TEST") as srv:
        bot = telegram.Bot(srv.token, base_url=srv.base_url, base_file_url=srv.base_file_url)

Standalone (prints ``READY http://127.0.0.1:PORT`` on stdout once it listens)::

    python -m tests.support.botapi.server --port 0 --token 123456:TEST

python-telegram-bot appends the token to ``base_url``, so requests arrive at
``/bot<token>/<method>`` and downloads at ``/file/bot<token>/<file_path>``. The token is never
logged: the access log is off and log lines name only the method.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import signal
import sys
import time
from typing import Any

from aiohttp import web

from .client import BotApiUrls
from .control import ControlApi
from .faults import Fault, FaultKind, FaultPlan
from .methods import ApiError, BotMethods, Params, Upload
from .world import ApiCall, World

_LOG = logging.getLogger("tests.support.botapi")
_MAX_UPLOAD = 60 * 1024 * 1024  # Telegram's own limit is 50 MB for bots


class BotApiServer(World, BotApiUrls):
    """The fake server: a :class:`World` (state and user actions) served over HTTP.

    All Python-side methods must be called from the event loop the server runs on.
    """

    def __init__(
        self,
        token: str = "123456789:TEST-token-for-the-fake-server",
        host: str = "127.0.0.1",
        port: int = 0,
        bot_username: str = "firewatch_test_bot",
    ) -> None:
        super().__init__(token=token, bot_username=bot_username)
        self.host = host
        self.port = port
        self.faults = FaultPlan()
        self._methods = BotMethods(self)
        self._control = ControlApi(self, self.faults)
        self._runner: web.AppRunner | None = None

    # ---- URLs -----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Server root, e.g. ``http://127.0.0.1:PORT``; the control API lives under ``/_control/``."""
        return f"http://{self.host}:{self.port}"

    # ---- lifecycle ------------------------------------------------------------------------

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=_MAX_UPLOAD, middlewares=[self._control.errors])
        app.add_routes(self._control.routes())
        app.add_routes(
            [
                web.route("*", "/bot{token}/{method}", self._api),
                web.get("/file/bot{token}/{path:.+}", self._download),
            ]
        )
        return app

    async def start(self) -> None:
        # access_log=None: request paths contain the bot token.
        self._runner = web.AppRunner(self.make_app(), access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        sockets = site._server.sockets if site._server is not None else []  # type: ignore[union-attr]
        self.port = sockets[0].getsockname()[1]
        _LOG.info("fake Bot API listening on %s", self.url)

    async def stop(self) -> None:
        self.closing = True
        self.notify()  # ends pending long polls so shutdown does not wait for them
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> BotApiServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---- request handling -----------------------------------------------------------------

    def _token_error(self, token: str) -> web.Response | None:
        if secrets.compare_digest(token.encode(), self.token.encode()):
            return None
        # Telegram: a malformed token is 404 Not Found, a well-formed wrong one 401 Unauthorized.
        prefix, _, rest = token.partition(":")
        if not prefix.isdigit() or not rest:
            return _error(ApiError(404, "Not Found"))
        return _error(ApiError(401, "Unauthorized"))

    async def _api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        call = ApiCall(method=method, params={}, time=time.time())
        self.calls.append(call)
        response = await self._answer(request, method, call)
        if response is not None:
            call.status = response.status
            if call.outcome == "pending":
                call.outcome = "ok" if response.status == 200 else "error"
        _LOG.debug("%s -> %s (%s)", method, call.status, call.outcome)
        self.notify()
        return response if response is not None else web.Response(status=499)

    async def _answer(self, request: web.Request, method: str, call: ApiCall) -> web.StreamResponse | None:
        if (denied := self._token_error(request.match_info["token"])) is not None:
            return denied
        handler = self._methods.find(method)
        if handler is None:
            # Telegram answers 404 (PTB raises InvalidToken); the warning tells a test author that
            # the bot called a method this fake does not implement.
            _LOG.warning("fake Bot API does not implement method %r; answering 404 Not Found", method)
            call.outcome = "unknown_method"
            return _error(ApiError(404, "Not Found"))
        try:
            params = await _read_params(request)
        except ValueError:
            return _error(ApiError(400, "Bad Request: can't parse request parameters"))
        call.params = params.summary()
        fault = self.faults.take(method, _chat_id(params))
        if fault is not None:
            call.outcome = f"fault:{fault.kind.value}"
            early = await self._apply_fault(request, fault)
            if early is not None or fault.kind is FaultKind.DROP and not fault.after_execute:
                return early
        try:
            result = await handler(params)
        except ApiError as exc:
            return _error(exc)
        except Exception:
            # Log the method and traceback only, never the request URL (it holds the token).
            _LOG.exception("fake Bot API failed in %s", method)
            return _error(ApiError(500, "Internal Server Error"))
        if fault is not None and fault.kind is FaultKind.DROP or self.faults.outage_covers(method):
            # An outage that began during a long poll cuts that poll too.
            _drop(request)
            return None
        if fault is not None and fault.kind is FaultKind.LATE:
            self.notify()  # the message is there for everyone to see; its sender waits on
            await asyncio.sleep(fault.seconds)
        return web.json_response({"ok": True, "result": result})

    async def _apply_fault(self, request: web.Request, fault: Fault) -> web.StreamResponse | None:
        """Return the response a fault answers with, or None to carry on with the call."""
        if fault.kind is FaultKind.ERROR:
            return _error(ApiError(fault.status, fault.error_description()))
        if fault.kind is FaultKind.RETRY_AFTER:
            description = f"Too Many Requests: retry after {fault.retry_after}"
            return _error(ApiError(429, description, retry_after=fault.retry_after))
        if fault.kind is FaultKind.STALL:
            await asyncio.sleep(fault.seconds)
            return None
        if fault.kind is FaultKind.LATE:
            return None
        if not fault.after_execute:
            _drop(request)
        return None

    async def _download(self, request: web.Request) -> web.StreamResponse:
        if self._token_error(request.match_info["token"]) is not None:
            return _error(ApiError(404, "Not Found"))
        fault = self.faults.take("file")
        if fault is not None:
            early = await self._apply_fault(request, fault)
            if early is not None:
                return early
            if fault.kind is FaultKind.DROP:
                if fault.after_execute:
                    _drop(request)
                return web.Response(status=499)
        stored = self.files_by_path.get(request.match_info["path"])
        if stored is None:
            return _error(ApiError(404, "Not Found"))
        return web.Response(body=stored.data, content_type=stored.mime_type or "application/octet-stream")


def _chat_id(params: Params) -> int | None:
    try:
        return params.int("chat_id")
    except (ApiError, ValueError, TypeError):  # absent, or a @username
        return None


def _error(error: ApiError) -> web.Response:
    return web.json_response(error.to_json(), status=error.code)


def _drop(request: web.Request) -> None:
    """Close the connection without a response: the client sees the server disconnect."""
    transport = request.transport
    if transport is not None:
        transport.abort()


async def _read_params(request: web.Request) -> Params:
    """Bot API parameters from the query string, a form, a multipart body or a JSON body."""
    values: dict[str, Any] = dict(request.query)
    files: dict[str, Upload] = {}
    if request.content_type == "application/json":
        body = await request.json()
        if not isinstance(body, dict):
            raise ValueError("JSON body must be an object")
        values.update(body)
    elif request.content_type == "multipart/form-data":
        reader = await request.multipart()
        async for part in reader:
            if part.name is None:
                continue
            data = await part.read()
            if part.filename is not None:
                files[part.name] = Upload(part.filename, part.headers.get("Content-Type"), bytes(data))
            else:
                values[part.name] = bytes(data).decode()
    elif request.can_read_body:
        values.update(await request.post())
    return Params(values, files)


def main(argv: list[str] | None = None) -> None:
    """Run standalone until SIGTERM/SIGINT; prints ``READY <url>`` once listening."""
    parser = argparse.ArgumentParser(description="Fake Telegram Bot API server for tests")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (see the READY line)")
    parser.add_argument(
        "--token", default=os.environ.get("BOTAPI_TOKEN"), help="bot token (default: $BOTAPI_TOKEN)"
    )
    parser.add_argument("--bot-username", default="firewatch_test_bot")
    args = parser.parse_args(argv)
    if not args.token:
        parser.error("a token is required (--token or $BOTAPI_TOKEN)")

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with BotApiServer(args.token, args.host, args.port, args.bot_username) as server:
            print(f"READY {server.url}", flush=True)
            await stop.wait()

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(serve())


if __name__ == "__main__":
    main()
