"""Typed dependencies of the routes: settings, store, lab, and the token checks.

    def route(lab: LabDep, store: StoreDep) -> ...            # what the route works on
    @router.post(..., dependencies=[Writer])                    # every mutating route
    @router.get(..., dependencies=[Reader])                     # reads (token with --private-reads)
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request

from ..config import CoordinatorSettings
from ..scheduler import Lab
from ..store import Store


def get_settings(request: Request) -> CoordinatorSettings:
    return request.app.state.settings


def get_store(request: Request) -> Store:
    return request.app.state.store


def get_lab(request: Request) -> Lab:
    return request.app.state.lab


SettingsDep = Annotated[CoordinatorSettings, Depends(get_settings)]
StoreDep = Annotated[Store, Depends(get_store)]
LabDep = Annotated[Lab, Depends(get_lab)]


def check_token(request: Request, authorization: str | None) -> None:
    expected = f"Bearer {request.app.state.token}"
    if authorization is None or not secrets.compare_digest(authorization.encode(), expected.encode()):
        raise HTTPException(401, "missing or wrong token: send `Authorization: Bearer $HYPOLAB_TOKEN`",
                            headers={"WWW-Authenticate": "Bearer"})


def require_writer(request: Request, authorization: Annotated[str | None, Header()] = None) -> None:
    check_token(request, authorization)


def require_reader(request: Request, settings: SettingsDep,
                   authorization: Annotated[str | None, Header()] = None) -> None:
    if settings.private_reads:
        check_token(request, authorization)


Writer = Depends(require_writer)
Reader = Depends(require_reader)
