"""The screens' tests use the API tests' parent account and tenant."""

from __future__ import annotations

from tests.gateway.api.conftest import parent, tenant

__all__ = ["parent", "tenant"]
