"""bench/gateway_auth: what each credential costs per request, against the bare engine read, in one run
(embedded SQLite + chdb, the ASGI app called in-process through httpx, no network).

The same read — a child workspace's 20 segments — is made:

1. bare: `engine.segments.list_segments` in a SQL transaction, serialised to JSON; no HTTP, no auth.
2. admin key: `GET /api/admin/segments` with the parent's admin API key (hash lookup, child check).
3. embedded token: `GET /api-l/embedded/segments` with a session token (signature, workspace, minting
   key and revocation checks, scope, origin), plus the security headers.
4. member cookie: `GET /api/segments` with a multi-tenant member's signed session cookie (member,
   roles with inheritance from the parent, current workspace, role gate).

Run: PYTHONPATH=. .venv/bin/python bench/gateway_auth.py [--requests N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from engine.segments import list_segments, segment_resource
from engine.storage.models import Role, WorkspaceMember, WorkspaceMemberRole, WorkspaceType
from gateway.app import create_app
from gateway.member_cookie import COOKIE_NAME
from gateway.operator import create_workspace_with_key
from gateway.settings import Settings
from gateway.tokens import Purpose

EVERYONE = {"entryNode": {"type": "Everyone", "id": "1"}, "nodes": []}


def summarize(name: str, seconds: list[float], bare_mean: float | None) -> str:
    mean = statistics.fmean(seconds)
    p99 = sorted(seconds)[int(len(seconds) * 0.99) - 1]
    ratio = f"{mean / bare_mean:6.1f}x" if bare_mean else "   1.0x"
    return f"{name:<16} mean {mean * 1000:7.2f} ms   p99 {p99 * 1000:7.2f} ms   {ratio}"


async def timed(count: int, call: Callable[[], Awaitable[None]]) -> list[float]:
    for _ in range(20):
        await call()
    seconds = []
    for _ in range(count):
        start = time.perf_counter()
        await call()
        seconds.append(time.perf_counter() - start)
    return seconds


async def run(count: int, data_dir: Path, *, as_json: bool = False) -> None:
    settings = Settings(
        data_dir=data_dir,
        database_url=f"sqlite:///{data_dir / 'feedgate.db'}",
        clickhouse_url=f"chdb://{data_dir / 'chdb'}",
        secret_key=secrets.token_urlsafe(32),
        auth_mode="multi-tenant",
    )
    app = create_app(settings, run_worker=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            with app.state.sessions.begin() as session:
                parent = create_workspace_with_key(session, "Bench Parent", WorkspaceType.PARENT)
            admin = {"authorization": f"Bearer {parent.admin_api_key}"}
            child = (
                await client.put(
                    "/api-l/admin/workspaces/child",
                    json={"workspaceId": parent.workspace_id, "name": "Bench Child", "externalId": "c"},
                    headers=admin,
                )
            ).json()["id"]
            for index in range(20):
                body = {"workspaceId": child, "name": f"segment {index}", "definition": EVERYONE}
                assert (await client.put("/api/admin/segments", json=body, headers=admin)).status_code == 200
            token = (await client.post("/api-l/sessions", json={"workspaceId": child}, headers=admin)).json()
            bearer = {"authorization": f"Bearer {token['token']}"}
            with app.state.sessions.begin() as session:
                member = WorkspaceMember(
                    email="staff@parent.example", email_verified=True, last_workspace_id=child
                )
                session.add(member)
                session.flush()
                session.add(
                    WorkspaceMemberRole(
                        workspace_id=parent.workspace_id, workspace_member_id=member.id, role=Role.AUTHOR
                    )
                )
                cookie = app.state.signer.sign(Purpose.MEMBER_SESSION, {"member_id": member.id})
            params = {"workspaceId": child}

            async def bare() -> None:
                def read() -> str:
                    with app.state.sessions.begin() as session:
                        found = list_segments(session, child)
                        return json.dumps({"segments": [segment_resource(s) for s in found]})

                await asyncio.to_thread(read)

            async def get(path: str, **kwargs: dict[str, str]) -> None:
                response = await client.get(path, params=params, **kwargs)  # type: ignore[arg-type]
                assert response.status_code == 200, response.text

            results = [("bare engine", await timed(count, bare))]
            results.append(
                ("admin key", await timed(count, lambda: get("/api/admin/segments", headers=admin)))
            )
            results.append(
                (
                    "embedded token",
                    await timed(count, lambda: get("/api-l/embedded/segments", headers=bearer)),
                )
            )
            client.cookies.set(COOKIE_NAME, cookie)
            results.append(("member cookie", await timed(count, lambda: get("/api/segments"))))
    bare_mean = statistics.fmean(results[0][1])
    print(f"{count} reads of 20 segments each")
    for name, seconds in results:
        print(summarize(name, seconds, None if name == "bare engine" else bare_mean))
    if as_json:
        rows = [
            {
                "workload": f"auth: read 20 segments, {name}, mean",
                "figure": statistics.fmean(seconds) * 1000,
                "bare": bare_mean * 1000,
                "unit": "ms",
                "better": "lower",
            }
            for name, seconds in results[1:]
        ]
        print(json.dumps({"bench": "gateway_auth", "size": f"{count:,} requests each", "rows": rows}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument(
        "--json", action="store_true", help="end with one JSON summary line (bench/report.py)"
    )
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="feedgate-bench-auth-"))
    try:
        asyncio.run(run(args.requests, data_dir, as_json=args.json))
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
