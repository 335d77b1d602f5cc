"""The answers every route shares: documented 4xx bodies, the lab's refusals, body limits."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from ..scheduler import LabError


class ErrorBody(BaseModel):
    """Every 4xx answer: what is wrong and what to fix."""

    detail: str


ERRORS = {code: {"model": ErrorBody, "description": text, "content": {"application/json": {}}} for code, text in (
    (400, "malformed body (not JSON)"), (401, "missing or wrong token"), (404, "unknown hypothesis or experiment"),
    (409, "not possible in the experiment's current state"), (413, "body too large"),
    (422, "invalid request: the detail says which field and why"))}


async def lab_error(_: Request, exc: LabError) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=exc.status)


async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
    """422 that says what to fix, without echoing the input (it may hold NaN or worse)."""
    problems = [
        {"loc": [str(p) for p in err.get("loc", ())], "msg": str(err.get("msg", "invalid"))[:300]}
        for err in exc.errors()[:20]
    ]
    summary = "; ".join(f"{'.'.join(p['loc'])}: {p['msg']}" for p in problems)
    return JSONResponse({"detail": summary[:2000], "errors": problems}, status_code=422)


def limit_body(app: FastAPI, max_bytes: int) -> None:
    """Refuse oversized bodies before reading them: by Content-Length, or while streaming."""
    too_big = {"detail": f"body over {max_bytes} bytes; send smaller batches"}

    @app.middleware("http")
    async def body_limit(request: Request, call_next):
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > max_bytes):
            return JSONResponse(too_big, status_code=413)
        if length is None and request.method in ("POST", "PUT", "PATCH"):
            body = b""
            async for chunk in request.stream():
                body += chunk
                if len(body) > max_bytes:
                    return JSONResponse(too_big, status_code=413)

            async def replay():
                return {"type": "http.request", "body": body, "more_body": False}

            request = Request(request.scope, replay)
        return await call_next(request)


def install(app: FastAPI, max_body_bytes: int) -> None:
    """The body limit and the error handlers, on one app."""
    limit_body(app, max_body_bytes)
    app.add_exception_handler(LabError, lab_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, invalid_request)  # type: ignore[arg-type]
