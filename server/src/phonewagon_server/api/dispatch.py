"""Starlette's router, with the routes of fixed paths found by dictionary.

Starlette tries each route's pattern in turn: a page view, near the end of some forty routes,
paid for forty regular expressions, and every request for those before its own. Here a path
that no route before its own could match (a parametrised one, a mount) goes straight to its
routes (a GET and a POST may share a path). Anything else, a method no route of the path takes
among them, is routed as Starlette routes it, so the answer is always the one Starlette gives.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.routing import BaseRoute, Match, Route, Router
from starlette.types import Receive, Scope, Send


class FixedPathRouter(Router):
    _fixed: dict[str, list[BaseRoute]] | None = None

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            if self._fixed is None:  # on the first request: routes may be added until then
                self._fixed = fixed_paths(self.routes)
            for route in self._fixed.get(scope["path"], ()):
                match, child_scope = route.matches(scope)
                if match is Match.FULL:
                    scope.setdefault("router", self)
                    scope["route"] = route
                    scope.update(child_scope)
                    await route.handle(scope, receive, send)
                    return
        await super().app(scope, receive, send)


def fixed_paths(routes: Sequence[BaseRoute]) -> dict[str, list[BaseRoute]]:
    """Each fixed path's routes, in order, unless another route before one of them could match
    the path: Starlette would try that one first."""
    fixed: dict[str, list[BaseRoute]] = {}
    last: dict[str, int] = {}  # each fixed path's last route
    others: list[tuple[int, BaseRoute]] = []
    for place, route in enumerate(routes):
        if isinstance(route, Route) and not route.param_convertors:
            fixed.setdefault(route.path, []).append(route)
            last[route.path] = place
        else:
            others.append((place, route))
    shadowed = {
        path
        for place, route in others
        for path in fixed
        if place < last[path] and _may_match(route, path)
    }
    return {path: found for path, found in fixed.items() if path not in shadowed}


def _may_match(route: BaseRoute, path: str) -> bool:
    pattern = getattr(route, "path_regex", None)
    return pattern is None or pattern.match(path) is not None
