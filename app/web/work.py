"""My work (`/`): the cases that wait on me and my teams' queues, by due time."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from app.web.render import render
from app.web.session import signed_in
from workflows.common import Actor

router = APIRouter()
Me = Annotated[Actor, Depends(signed_in)]


@router.get("/")
async def my_work(request: Request, me: Me) -> Response:
    return render(request, "work.html", active="work")
