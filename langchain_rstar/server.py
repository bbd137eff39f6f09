"""``rstar serve``: an OpenAI-compatible HTTP server whose model is an rStar search.

Why: most tools that use language models (IDE plug-ins, chat UIs, evaluation harnesses,
other programming languages) speak the OpenAI HTTP API. Serving ``rstar-<model>`` there
lets any of them use rStar over a small model, with no Python integration. Unlike other
reasoning proxies, a streamed request shows the search as it runs: each finished rollout
arrives as a ``reasoning_content`` delta ("rollout 3/16 done: best answer so far 10 ...")
before the answer.

Endpoints: ``POST /v1/chat/completions``, ``POST /v1/completions``, ``GET /v1/models``,
``GET /health``. Per request, ``num_rollouts``, ``profile`` and ``rstar_config`` (a dict of
:class:`~langchain_rstar.RStarConfig` fields) go in the body (the OpenAI client's
``extra_body``). Bad requests (unknown model, invalid parameters, no user message) get a
4xx and backend failures a 5xx, both with an OpenAI-style ``{"error": {...}}`` body; the
server keeps serving after either. Requests run as concurrent ``ainvoke`` calls, so a
batching backend (vLLM) batches the model calls of concurrent searches.

The HTTP layer is FastAPI + uvicorn (what vLLM's own server uses); the hand-written part is
only the mapping between OpenAI request/response JSON and :class:`~langchain_rstar.ChatRStar`
(we do not depend on vLLM's protocol classes, which change between versions and would pull
vLLM into a CPU-only install).
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

try:
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, StreamingResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError(
        "rstar serve needs FastAPI and uvicorn: pip install 'langchain-rstar[serve]'"
    ) from exc

from langchain_rstar.chat_model import (
    ChatRStar,
    format_progress,
    format_reply,
    usage_metadata_of,
)
from langchain_rstar.errors import APIError
from langchain_rstar.result import RStarResult

__all__ = ["create_app", "ServerThread", "serve", "APIError"]

#: Request fields accepted and ignored: the search sets its own sampling and lengths.
IGNORED_FIELDS = frozenset(
    {
        "temperature",
        "top_p",
        "max_tokens",
        "max_completion_tokens",
        "stop",
        "seed",
        "user",
        "presence_penalty",
        "frequency_penalty",
        "metadata",
        "store",
        "logit_bias",
        "parallel_tool_calls",
        "echo",
        "best_of",
        "suffix",
    }
)
#: Fields that change the search (the OpenAI client's ``extra_body``).
RSTAR_FIELDS = frozenset({"num_rollouts", "profile", "rstar_config"})


def _bad(message: str, param: str | None = None, code: str | None = None) -> APIError:
    return APIError(400, message, param=param, code=code)


def _backend_error(exc: BaseException) -> APIError:
    return APIError(
        500,
        f"the rStar search failed: {type(exc).__name__}: {exc}",
        type="server_error",
        code="backend_error",
    )


def _summary(result: RStarResult) -> dict[str, Any]:
    """What a response carries about the search (the full tree stays on the server)."""
    return {
        "answer": result.answer,
        "confidence": result.confidence,
        "stop_reason": result.stop_reason,
        "trajectory": [s.model_dump(mode="json") for s in result.trajectory],
        "usage": result.usage.model_dump(mode="json"),
        "verification": result.verification.model_dump(mode="json"),
        "errors": len(result.errors),
    }


def _usage_body(result: RStarResult) -> dict[str, int]:
    u = usage_metadata_of(result)
    return {
        "prompt_tokens": u["input_tokens"],
        "completion_tokens": u["output_tokens"],
        "total_tokens": u["total_tokens"],
    }


def create_app(
    models: ChatRStar | Mapping[str, ChatRStar],
    *,
    max_num_rollouts: int = 1024,
) -> Any:
    """The FastAPI app serving ``models`` (a name -> :class:`ChatRStar` mapping; a single
    model is served under its ``model_name``).

    Args:
        models: what to serve.
        max_num_rollouts: requests asking for more rollouts get a 400 (a guard against
            one request occupying the backend for hours).
    """
    served: dict[str, ChatRStar] = (
        {models.model_name: models} if isinstance(models, ChatRStar) else dict(models)
    )
    if not served:
        raise ValueError("create_app needs at least one model to serve")
    created = int(time.time())
    app = FastAPI(title="rStar (OpenAI-compatible)", version="1")

    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError) -> JSONResponse:
        return JSONResponse(exc.body, status_code=exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        err = APIError(exc.status_code, str(exc.detail))
        return JSONResponse(err.body, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(_bad(str(exc.errors())).body, status_code=400)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        err = _backend_error(exc)
        return JSONResponse(err.body, status_code=err.status)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "models": sorted(served)}

    @app.get("/v1/models")
    async def list_models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [
                {"id": name, "object": "model", "created": created, "owned_by": "langchain-rstar"}
                for name in sorted(served)
            ],
        }

    async def _body(request: Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError as exc:
            raise _bad(f"the request body is not valid JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise _bad("the request body must be a JSON object")
        return body

    def _common(body: dict[str, Any], allowed: frozenset[str]) -> tuple[ChatRStar, dict[str, Any]]:
        """Check the fields every request shares; return the model and the search options."""
        unknown = sorted(set(body) - allowed - IGNORED_FIELDS - RSTAR_FIELDS)
        if unknown:
            raise _bad(f"unsupported field(s): {', '.join(unknown)}", param=unknown[0])
        name = body.get("model")
        if not isinstance(name, str) or not name:
            raise _bad("'model' is required", param="model")
        if name not in served:
            raise APIError(
                404,
                f"the model {name!r} does not exist; this server has {', '.join(sorted(served))}",
                param="model",
                code="model_not_found",
            )
        if body.get("n", 1) != 1:
            raise _bad("only n=1 is supported (one search per request)", param="n")
        if not isinstance(body.get("stream", False), bool):
            raise _bad("'stream' must be a boolean", param="stream")
        if body.get("tools"):
            raise _bad("rStar cannot call tools; send the request without 'tools'", param="tools")
        options: dict[str, Any] = {}
        rollouts = body.get("num_rollouts")
        if rollouts is not None:
            if isinstance(rollouts, bool) or not isinstance(rollouts, int):
                raise _bad("'num_rollouts' must be an integer", param="num_rollouts")
            if not 1 <= rollouts <= max_num_rollouts:
                raise _bad(
                    f"'num_rollouts' must be between 1 and {max_num_rollouts}",
                    param="num_rollouts",
                )
            options["num_rollouts"] = rollouts
        if body.get("profile") is not None:
            options["profile"] = body["profile"]
        extra = body.get("rstar_config")
        if extra is not None:
            if not isinstance(extra, dict):
                raise _bad("'rstar_config' must be an object of RStarConfig fields")
            wanted = extra.get("num_rollouts", 1)
            if isinstance(wanted, int) and wanted > max_num_rollouts:
                raise _bad(f"'num_rollouts' must be at most {max_num_rollouts}")
            options["rstar_config"] = extra
        return served[name], options

    def _prepare(model: ChatRStar, messages: Any, options: dict[str, Any]) -> tuple[Any, str]:
        from langchain_core.messages import convert_to_messages

        try:
            msgs = convert_to_messages(messages)
        except (ValueError, TypeError, NotImplementedError) as exc:
            raise _bad(f"invalid messages: {exc}", param="messages") from exc
        try:
            return model.prepare_call(msgs, options)
        except ValueError as exc:  # pydantic's ValidationError included
            raise _bad(str(exc)) from exc

    def _chat_messages(body: dict[str, Any]) -> list[Any]:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _bad("'messages' must be a non-empty list", param="messages")
        return messages

    def _prompt_messages(body: dict[str, Any]) -> list[Any]:
        prompt = body.get("prompt")
        if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
            prompt = prompt[0]
        if not isinstance(prompt, str):
            raise _bad("'prompt' must be one string (one search per request)", param="prompt")
        return [{"role": "user", "content": prompt}]

    async def _run(chain: Any, question: str) -> RStarResult:
        try:
            return await chain.ainvoke(question)
        except Exception as exc:  # noqa: BLE001 - any backend failure is a 5xx
            raise _backend_error(exc) from exc

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Any:
        body = await _body(request)
        model, options = _common(
            body,
            frozenset(
                {
                    "model",
                    "messages",
                    "n",
                    "stream",
                    "stream_options",
                    "tools",
                    "tool_choice",
                    "response_format",
                    "logprobs",
                    "top_logprobs",
                }
            ),
        )
        chain, question = _prepare(model, _chat_messages(body), options)
        rid = f"chatcmpl-{uuid.uuid4().hex}"
        name = body["model"]
        if body.get("stream"):
            usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return StreamingResponse(
                _chat_stream(model, chain, question, rid, name, usage),
                media_type="text/event-stream",
            )
        result = await _run(chain, question)
        return {
            "id": rid,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": name,
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": format_reply(result, model.include_trajectory),
                    },
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
            "usage": _usage_body(result),
            "rstar": _summary(result),
        }

    @app.post("/v1/completions")
    async def completions(request: Request) -> Any:
        body = await _body(request)
        model, options = _common(
            body, frozenset({"model", "prompt", "n", "stream", "stream_options", "logprobs"})
        )
        chain, question = _prepare(model, _prompt_messages(body), options)
        rid = f"cmpl-{uuid.uuid4().hex}"
        name = body["model"]
        if body.get("stream"):
            usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return StreamingResponse(
                _completion_stream(model, chain, question, rid, name, usage),
                media_type="text/event-stream",
            )
        result = await _run(chain, question)
        return {
            "id": rid,
            "object": "text_completion",
            "created": int(time.time()),
            "model": name,
            "choices": [
                {
                    "index": 0,
                    "text": format_reply(result, model.include_trajectory),
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
            "usage": _usage_body(result),
            "rstar": _summary(result),
        }

    return app


def _sse(data: Mapping[str, Any]) -> str:
    return f"data: {json.dumps(data)}\n\n"


async def _events(chain: Any, question: str) -> AsyncIterator[Any]:
    """The search's events; a failure becomes one :class:`APIError` event (the HTTP status
    is already sent when streaming, so the error travels in the stream)."""
    try:
        async for event in chain.astream(question):
            yield event
    except Exception as exc:  # noqa: BLE001 - reported to the client, the server stays up
        yield _backend_error(exc)


async def _chat_stream(
    model: ChatRStar, chain: Any, question: str, rid: str, name: str, include_usage: bool
) -> AsyncIterator[str]:
    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        return _sse(
            {
                "id": rid,
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": name,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                **extra,
            }
        )

    yield chunk({"role": "assistant", "content": ""})
    async for event in _events(chain, question):
        if isinstance(event, APIError):
            yield _sse(event.body)
            break
        if isinstance(event, RStarResult):
            yield chunk({"content": format_reply(event, model.include_trajectory)})
            yield chunk({}, "stop", rstar=_summary(event))
            if include_usage:
                yield _sse(
                    {
                        "id": rid,
                        "object": "chat.completion.chunk",
                        "created": int(time.time()),
                        "model": name,
                        "choices": [],
                        "usage": _usage_body(event),
                    }
                )
        else:
            yield chunk({"reasoning_content": format_progress(event)})
    yield "data: [DONE]\n\n"


async def _completion_stream(
    model: ChatRStar, chain: Any, question: str, rid: str, name: str, include_usage: bool
) -> AsyncIterator[str]:
    def chunk(text: str, finish: str | None = None, **extra: Any) -> str:
        choice = {"index": 0, "text": text, "finish_reason": finish, "logprobs": None}
        return _sse(
            {
                "id": rid,
                "object": "text_completion",
                "created": int(time.time()),
                "model": name,
                "choices": [{**choice, **extra}],
            }
        )

    async for event in _events(chain, question):
        if isinstance(event, APIError):
            yield _sse(event.body)
            break
        if isinstance(event, RStarResult):
            yield chunk(format_reply(event, model.include_trajectory), "stop")
            if include_usage:
                yield _sse(
                    {
                        "id": rid,
                        "object": "text_completion",
                        "created": int(time.time()),
                        "model": name,
                        "choices": [],
                        "usage": _usage_body(event),
                    }
                )
        else:
            yield chunk("", reasoning_content=format_progress(event))
    yield "data: [DONE]\n\n"


class ServerThread:
    """Run an app with uvicorn in a background thread (tests, notebooks, examples).

    Example:
        >>> with ServerThread(create_app(chat)) as server:
        ...     OpenAI(base_url=server.url + "/v1", api_key="x")
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        import uvicorn

        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.host, self.port = self._sock.getsockname()[:2]
        self.url = f"http://{self.host}:{self.port}"
        config = uvicorn.Config(app, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def start(self, timeout: float = 30.0) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=30)
        self._sock.close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def serve(
    models: ChatRStar | Mapping[str, ChatRStar],
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    log_level: str = "info",
    max_num_rollouts: int = 1024,
) -> None:
    """Serve ``models`` until interrupted (what ``rstar serve`` runs)."""
    import uvicorn

    app = create_app(models, max_num_rollouts=max_num_rollouts)
    uvicorn.run(app, host=host, port=port, log_level=log_level)
