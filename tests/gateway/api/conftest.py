"""A parent with an admin API key, created the way an operator does, for the API tests."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient

from engine.credentials import create_admin_api_key
from engine.storage.models import WorkspaceType
from gateway.operator import create_workspace_with_key


@dataclass(frozen=True)
class Tenant:
    id: str
    write_key: str


@dataclass(frozen=True)
class ParentAccount:
    id: str
    admin_key: str
    client: TestClient

    def put_child(self, name: str, external_id: str) -> Tenant:
        response = self.client.put(
            "/api-l/admin/workspaces/child",
            json={"workspaceId": self.id, "name": name, "externalId": external_id},
            headers={"authorization": f"Bearer {self.admin_key}"},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        return Tenant(body["id"], body["writeKey"])


def admin_key_for(client: TestClient, workspace_id: str) -> str:
    """A fresh admin API key of `workspace_id` (a child's own key, say)."""
    with client.app.state.sessions.begin() as session:  # type: ignore[attr-defined]
        return create_admin_api_key(session, workspace_id, f"key-{uuid.uuid4().hex[:8]}").api_key


def make_parent(client: TestClient, name: str) -> ParentAccount:
    with client.app.state.sessions.begin() as session:  # type: ignore[attr-defined]
        created = create_workspace_with_key(session, name, WorkspaceType.PARENT)
    return ParentAccount(created.workspace_id, created.admin_api_key, client)


@pytest.fixture
def parent(client: TestClient) -> ParentAccount:
    return make_parent(client, "Parent SaaS")


@pytest.fixture
def tenant(parent: ParentAccount) -> Tenant:
    return parent.put_child("Tenant A", "tenant-a")


class AdminApi:
    """One admin controller (`prefix`) of one workspace, called with one admin API key."""

    prefix = ""

    def __init__(self, client: TestClient, key: str, workspace_id: str) -> None:
        self.client, self.key, self.workspace_id = client, key, workspace_id
        self.headers = {"authorization": f"Bearer {key}"}

    def call(self, method: str, path: str = "", **body: Any) -> httpx.Response:
        """`method` with a JSON body carrying the workspace id."""
        return self.client.request(
            method,
            f"{self.prefix}{path}",
            json={"workspaceId": self.workspace_id, **body},
            headers=self.headers,
        )

    def get(self, path: str = "", **query: Any) -> httpx.Response:
        params = {"workspaceId": self.workspace_id, **query}
        return self.client.get(f"{self.prefix}{path}", params=params, headers=self.headers)
