"""The HTTP API: health, readiness, metrics, the bindings' state and the config's.

``/ready`` means something here: 200 only when every binding has its target
initialised and its source subscribed, else 503 with each binding's reason,
so Kubernetes sends no traffic to (and does not count as available) a replica
that cannot serve. While the process drains on shutdown it is 503 too.

``/bindings`` stays the list kubemq-targets clients parse; what the config
file is and how its last reload went (a refused edit and why) is on
``/config/status``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bindings.context import RequestContext
from bindings.engine import Engine
from bindings.limits import SERVER_MESSAGE_LIMIT

ENGINE_KEY = web.AppKey("engine", Engine)
CONFIG_STATUS_KEY: web.AppKey[Callable[[], dict[str, Any]]] = web.AppKey("config_status")
REQUESTS_ENABLED_KEY: web.AppKey[Callable[[], bool]] = web.AppKey("requests_enabled")
SHUTTING_DOWN = "shutting down: draining in-flight requests"


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(data, indent=2, default=str), status=status, content_type="application/json")


async def health(_: web.Request) -> web.Response:
    return web.Response(text="ok")


async def ready(request: web.Request) -> web.Response:
    engine = request.app[ENGINE_KEY]
    if engine.closing:
        return _json({"ready": False, "reason": SHUTTING_DOWN}, status=503)
    is_ready, reasons = engine.readiness()
    if is_ready:
        return web.Response(text="ready")
    return _json({"ready": False, "bindings": reasons}, status=503)


async def metrics(request: web.Request) -> web.Response:
    engine = request.app[ENGINE_KEY]
    engine.readiness()  # refresh the readiness gauge at scrape time
    body = generate_latest(engine.metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def bindings(request: web.Request) -> web.Response:
    engine = request.app[ENGINE_KEY]
    return _json([binding.status() for binding in engine.bindings.values()])


async def binding_stats(request: web.Request) -> web.Response:
    engine = request.app[ENGINE_KEY]
    return _json([stats.as_dict() for stats in engine.metrics.stats.values()])


async def binding_request(request: web.Request) -> web.Response:
    """kubemq-targets' ``POST /bindings/request``: run a request through a binding, bypassing its source."""
    engine = request.app[ENGINE_KEY]
    if not request.app[REQUESTS_ENABLED_KEY]():
        # It runs any operation with no KubeMQ auth in between: off unless the operator opts in.
        return _json({"error": "POST /bindings/request is disabled; set apiRequests: true in the config to enable it"}, status=403)
    try:
        payload = await request.json()
        name = str(payload["binding"])
        body = json.dumps(payload["payload"]).encode()
    except (ValueError, KeyError, TypeError) as exc:
        return _json({"error": f"invalid request, {exc}"}, status=400)
    if engine.closing:
        return _json({"error": SHUTTING_DOWN}, status=503)
    binding = engine.bindings.get(name)
    if binding is None:
        return _json({"error": f"no such binding, {name}"}, status=404)
    outcome = await binding.process(body, RequestContext(binding=name, request_id=request.headers.get("X-Request-Id", ""), source_kind="http"))
    return web.Response(body=outcome.response.to_json(), content_type="application/json")


async def config_status(request: web.Request) -> web.Response:
    """The config file being served, when it was loaded, and how the last reload went."""
    return _json(request.app[CONFIG_STATUS_KEY]())


def create_app(engine: Engine, status: Callable[[], dict[str, Any]], requests_enabled: Callable[[], bool] = lambda: False) -> web.Application:
    # A request posted here becomes one KubeMQ-sized message, so it may be as large as one.
    app = web.Application(client_max_size=SERVER_MESSAGE_LIMIT)
    app[ENGINE_KEY] = engine
    app[CONFIG_STATUS_KEY] = status
    app[REQUESTS_ENABLED_KEY] = requests_enabled
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/bindings", bindings)
    app.router.add_get("/bindings/stats", binding_stats)
    app.router.add_post("/bindings/request", binding_request)
    app.router.add_get("/config/status", config_status)
    return app


async def start_api(engine: Engine, host: str, port: int, status: Callable[[], dict[str, Any]], requests_enabled: Callable[[], bool] = lambda: False) -> web.AppRunner:
    """Start serving; the caller awaits ``runner.cleanup()`` to stop."""
    runner = web.AppRunner(create_app(engine, status, requests_enabled), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
