"""`GET /api/events`: server-sent events for every state change, resumable with Last-Event-ID."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from ..deps import Reader, StoreDep
from .metrics import MAX_SEQ

router = APIRouter(tags=["status"])

SSE = {200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}, "description": "server-sent events"}}


@router.get("/api/events", response_model=None, dependencies=[Reader], responses=SSE)
async def events(request: Request, store: StoreDep,
                 last_event_id: Annotated[int | None, Header(ge=0, le=MAX_SEQ)] = None,
                 since: int | None = Query(None, ge=0, le=MAX_SEQ), once: bool = False) -> StreamingResponse:
    """Server-sent events for every state change; resume with `Last-Event-ID`."""
    cursor = last_event_id if last_event_id is not None else since if since is not None else store.last_event_seq()

    async def stream():
        nonlocal cursor
        idle = 0.0
        while True:
            batch = await asyncio.to_thread(store.events_since, cursor)
            for ev in batch:
                cursor = ev.seq
                data = json.dumps({"type": ev.type, "time": ev.time, **ev.payload})
                yield f"id: {ev.seq}\nevent: {ev.type}\ndata: {data}\n\n"
            if once or await request.is_disconnected():
                return
            if not batch:
                idle += 0.25
                if idle >= 15:
                    idle = 0.0
                    yield ": keep-alive\n\n"
            await asyncio.sleep(0.25)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
