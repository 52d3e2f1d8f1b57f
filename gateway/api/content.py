"""`content/templates`: list, upsert, reset, delete and render message templates (Dittofeed §6.1).

`content_routes` builds the handlers for one mount of upstream's content controller; `routes` is the
admin mount (admin API key, `/api/admin/content`).

On an embedded request, template writes (upsert and reset) are held to the `allowedEmailContentsTypes`
of the workspace's MessageTemplate and Broadcast configurations (engine.configuration_enforcement).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from engine import configuration_enforcement
from engine.messaging import templates
from engine.messaging.batch_send import BatchUser, batch_send, send_test_message
from engine.messaging.emailo import emailo_to_mjml
from engine.messaging.provider_settings import provider_kind
from engine.messaging.render import RenderContext, RenderError, render_email_body, render_liquid
from engine.messaging.send import SendOptions, load_webhook_secrets
from engine.messaging.template_models import DEFAULT_IDENTIFIER_KEYS, validate_template_definition
from engine.resources import UNSET
from engine.storage.resource_models import ResourceType
from gateway.admin_auth import authorize_target
from gateway.deps import Authorize, in_transaction
from gateway.embedded_auth import embedded_session
from gateway.inputs import read_json, read_query, validate

Channel = Literal["Email", "Sms", "Webhook", "MobilePush"]
MAX_BATCH_USERS = 1_000


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    workspaceId: str


class UpsertTemplateBody(_Body):
    name: str
    id: str | None = None
    # Validated by engine.messaging.template_models, which names fields inside them precisely.
    definition: Any = None
    draft: Any = None
    resourceType: Literal["Declarative", "Internal"] | None = None


class JourneyMetadata(BaseModel):
    journeyId: str
    nodeId: str


class ResetTemplateBody(_Body):
    name: str
    type: Channel
    emailContentsType: Literal["Code", "LowCode"] | None = None
    journeyMetadata: JourneyMetadata | None = None


class DeleteTemplateBody(_Body):
    id: str
    type: Channel | None = None


class RenderContent(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    type: Literal["PlainText", "Mjml", "Emailo"]
    value: Any


class RenderBody(_Body):
    channel: Channel
    subscriptionGroupId: str | None = None
    contents: dict[str, RenderContent]
    userProperties: dict[str, Any]
    tags: dict[str, str] | None = None


class TestSendBody(_Body):
    templateId: str
    channel: Channel
    userProperties: dict[str, Any]
    tags: dict[str, str] | None = None
    provider: str | None = None


class BatchUserBody(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    id: str = Field(min_length=1)
    messageId: str | None = Field(default=None, min_length=1)
    properties: dict[str, Any] = {}
    context: dict[str, Any] | None = None


class BatchSendBody(_Body):
    templateId: str
    channel: Literal["Email", "Sms", "Webhook"]
    provider: str | None = None
    subscriptionGroupId: str | None = None
    users: list[BatchUserBody] = Field(max_length=MAX_BATCH_USERS)
    context: dict[str, Any] | None = None


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    workspaceId: str
    ids: list[str] = []
    resourceType: Literal["Declarative", "Internal"] | None = None


def content_routes(prefix: str, authorize: Authorize, *, name: str) -> list[Route]:
    """The content handlers under `prefix`, each request authorised by `authorize`."""

    async def list_all(request: Request) -> JSONResponse:
        query = read_query(request, ListQuery, arrays=frozenset({"ids"}))
        kind = ResourceType(query.resourceType) if query.resourceType else None

        def read(session: Session) -> list[dict[str, Any]]:
            workspace = authorize(request, session, None)
            found = templates.list_templates(session, workspace.id, ids=query.ids, resource_type=kind)
            return [templates.template_resource(template) for template in found]

        return JSONResponse({"templates": await in_transaction(request, read)})

    async def upsert(request: Request) -> JSONResponse:
        raw = await read_json(request)
        body = validate(UpsertTemplateBody, raw)
        definition = None
        if body.definition is not None:
            definition = validate_template_definition(raw["definition"])
        draft: Any = UNSET
        if "draft" in raw:
            draft = (
                None
                if raw["draft"] is None
                else validate_template_definition(raw["draft"], where="body/draft")
            )
        upsert = templates.TemplateUpsert(
            name=body.name,
            id=body.id,
            definition=definition,
            draft=draft,
            resource_type=ResourceType(body.resourceType) if body.resourceType else None,
        )

        def write(session: Session) -> dict[str, Any]:
            workspace = authorize(request, session, raw)
            if embedded_session(request) is not None:
                configuration_enforcement.check_template_write(
                    session,
                    workspace.id,
                    {"body/definition": definition, "body/draft": draft},
                    template_id=body.id,
                    name=body.name,
                )
            return templates.template_resource(templates.upsert_template(session, workspace.id, upsert))

        return JSONResponse(await in_transaction(request, write))

    async def reset(request: Request) -> JSONResponse:
        raw = await read_json(request)
        body = validate(ResetTemplateBody, raw)

        def write(session: Session) -> dict[str, Any]:
            workspace = authorize(request, session, raw)
            if embedded_session(request) is not None:
                # The reset body names the channel and editor type as a definition does.
                configuration_enforcement.check_template_write(
                    session, workspace.id, {"body": raw}, template_id=None, name=body.name
                )
            template = templates.reset_template(
                session, workspace.id, body.name, body.type, body.emailContentsType
            )
            return templates.template_resource(template)

        return JSONResponse(await in_transaction(request, write))

    async def delete(request: Request) -> Response:
        raw = await read_json(request)
        return await _delete(request, validate(DeleteTemplateBody, raw), raw)

    async def delete_by_query(request: Request) -> Response:
        return await _delete(request, read_query(request, DeleteTemplateBody), None)

    async def _delete(request: Request, body: DeleteTemplateBody, raw: Any) -> Response:
        def remove(session: Session) -> None:
            workspace = authorize(request, session, raw)
            templates.delete_template(session, workspace.id, body.id)

        await in_transaction(request, remove)
        return Response(status_code=204)

    async def render(request: Request) -> JSONResponse:
        raw = await read_json(request)
        body = validate(RenderBody, raw)

        def read(session: Session) -> dict[str, Any]:
            workspace = authorize(request, session, raw)
            context = RenderContext(
                workspace_id=workspace.id,
                user={"id": "", **body.userProperties},
                subscription_group_id=body.subscriptionGroupId,
                identifier_key=DEFAULT_IDENTIFIER_KEYS.get(body.channel),
                secrets={
                    **templates.load_render_secrets(session, workspace.id),
                    **(
                        load_webhook_secrets(session, workspace.id, masked=True)
                        if body.channel == "Webhook"
                        else {}
                    ),
                },
                tags=body.tags or {},
                is_preview=True,
                base_url=request.app.state.settings.dashboard_url,
            )
            return {key: _render_one(content, context) for key, content in body.contents.items()}

        return JSONResponse({"contents": await in_transaction(request, read)})

    async def test(request: Request) -> JSONResponse:
        raw = await read_json(request)
        body = validate(TestSendBody, raw)
        provider_override = _provider_override(body.channel, body.provider)

        def send(session: Session) -> dict[str, Any]:
            workspace = authorize(request, session, raw)
            result = send_test_message(
                session,
                request.app.state.send_services,
                workspace.id,
                body.templateId,
                body.channel,
                body.userProperties,
                provider_override=provider_override,
                tags=body.tags,
            )
            if result.type == "Success":
                return {"type": "Ok", "value": result.variant}
            return {"type": "Err", "err": _suggestions(result.variant, result.error)}

        return JSONResponse(await in_transaction(request, send))

    async def batch(request: Request) -> JSONResponse:
        raw = await read_json(request)
        body = validate(BatchSendBody, raw)
        provider_override = _provider_override(body.channel, body.provider)
        options = SendOptions(
            template_id=body.templateId,
            channel=body.channel,
            subscription_group_id=body.subscriptionGroupId,
            provider_override=provider_override,
        )
        users = [BatchUser(u.id, u.properties, u.messageId, u.context) for u in body.users]

        def send(session: Session) -> list[dict[str, Any]]:
            workspace = authorize(request, session, raw)
            return batch_send(
                session,
                request.app.state.send_services,
                request.app.state.event_store,
                request.app.state.event_writer,
                workspace.id,
                options,
                users,
                context=body.context,
            )

        return JSONResponse({"results": await in_transaction(request, send)})

    base = f"{prefix}/templates"
    return [
        Route(base, list_all, methods=["GET"], name=f"{name}:list"),
        Route(base, upsert, methods=["PUT"], name=f"{name}:upsert"),
        Route(base, delete, methods=["DELETE"], name=f"{name}:delete"),
        Route(f"{base}/reset", reset, methods=["PUT"], name=f"{name}:reset"),
        Route(f"{base}/render", render, methods=["POST"], name=f"{name}:render"),
        Route(f"{base}/test", test, methods=["POST"], name=f"{name}:test"),
        Route(f"{base}/batch-send", batch, methods=["POST"], name=f"{name}:batch_send"),
        Route(f"{base}/v2", delete_by_query, methods=["DELETE"], name=f"{name}:delete_v2"),
    ]


def _provider_override(channel: str, provider: str | None) -> str | None:
    """The provider type a send asks for, checked against the channel; webhooks have no provider.

    :raises InvalidInput: naming body/provider, when the type is not one of the channel's.
    """
    if provider is None or channel == "Webhook":
        return None
    provider_kind(channel, provider, field="body/provider")
    return provider


def _suggestions(variant: dict[str, Any], error: str | None) -> dict[str, Any]:
    """Upstream's test-send error shape: human suggestions, and the provider's answer when there is one."""
    kind = variant.get("type")
    if error is not None:
        suggestions = [f"The provider could not be reached: {error}. Try again."]
    elif kind == "MissingIdentifier":
        suggestions = [f"Give the test user a value for the user property {variant.get('identifierKey')}."]
    elif kind == "MessageTemplateRenderError":
        suggestions = [f"The template's {variant.get('field')} does not render: {variant.get('error')}"]
    elif kind == "MessageServiceProviderNotFound":
        suggestions = ["Configure a provider for this channel, or choose one."]
    elif kind in ("MessageServiceProviderMisconfigured", "MessageTemplateMisconfigured"):
        suggestions = [str(variant.get("message") or "Check the provider's settings.")]
    else:
        suggestions = ["The provider refused the message."]
    err: dict[str, Any] = {"suggestions": suggestions}
    provider = variant.get("provider") if isinstance(variant.get("provider"), dict) else None
    if provider is not None or kind == "Webhook":
        err["responseData"] = provider if provider is not None else variant
    return err


def _render_one(content: RenderContent, context: RenderContext) -> dict[str, Any]:
    """One entry of a render response: each is rendered on its own, and its error stays its own."""
    try:
        if content.type == "Emailo":
            return {"type": "Ok", "value": render_email_body(emailo_to_mjml(content.value), context)}
        if not isinstance(content.value, str):
            return {"type": "Err", "err": "value must be a string"}
        if content.type == "Mjml":
            return {"type": "Ok", "value": render_email_body(content.value, context)}
        return {"type": "Ok", "value": render_liquid(content.value, context)}
    except RenderError as error:
        return {"type": "Err", "err": error.message}


routes = content_routes("/api/admin/content", authorize_target, name="admin:content")
