"""The message template screens (component MessageTemplate): the templates table (`/templates`), the
email editor (Code and LowCode, `/templates/email`) and the SMS editor (`/templates/sms`).

Templates are created and saved through the screens and read back through the admin API; previews
are rendered by the engine for a sample or a stored user; user content renders inert (the email
preview only inside an attribute-escaped, sandboxed srcdoc); the MessageTemplate configuration and
the session's scope are enforced on the server; the member console works in anonymous mode.
"""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import httpx2 as httpx
import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from components.email_blocks import Block, blocks_from_document, document_from_blocks
from components.sms_segments import measure_sms
from engine.storage.gateway_models import AuditEntry
from tests.gateway.api.conftest import ParentAccount, Tenant

EMBED = "/dashboard-l/embedded"
CONSOLE = "/dashboard"
HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(1)>"
CODE_BODY = """<mjml><mj-body><mj-section><mj-column>
<mj-text>Hello {{ user.firstName }}!</mj-text>
</mj-column></mj-section></mj-body></mjml>"""
EMAIL = {"type": "Email", "from": "news@acme.test", "subject": "Hi", "body": "<p>Hi</p>"}
SMS = {"type": "Sms", "body": "Hi {{ user.firstName }}"}


class Workspace:
    """One workspace as its parent's backend and an embedding page see it."""

    def __init__(self, client: TestClient, parent: ParentAccount, workspace_id: str) -> None:
        self.client, self.parent, self.id = client, parent, workspace_id
        self.admin = {"authorization": f"Bearer {parent.admin_key}"}

    def put_template(self, name: str, **body: Any) -> str:
        response = self.client.put(
            "/api/admin/content/templates",
            json={"workspaceId": self.id, "name": name, **body},
            headers=self.admin,
        )
        assert response.status_code == 200, response.text
        return str(response.json()["id"])

    def template(self, template_id: str) -> dict[str, Any]:
        response = self.client.get(
            "/api/admin/content/templates",
            params={"workspaceId": self.id, "ids": template_id},
            headers=self.admin,
        )
        assert response.status_code == 200, response.text
        (found,) = response.json()["templates"]
        return dict(found)

    def configure(self, **definition: Any) -> None:
        response = self.client.put(
            "/api/admin/component-configurations/",
            json={
                "workspaceId": self.id,
                "name": "MessageTemplate",
                "definition": {"type": "MessageTemplate", **definition},
            },
            headers=self.admin,
        )
        assert response.status_code == 200, response.text

    def token(self, **extra: Any) -> str:
        response = self.client.post(
            "/api-l/sessions", json={"workspaceId": self.id, **extra}, headers=self.admin
        )
        assert response.status_code == 200, response.text
        return str(response.json()["token"])


class Embed:
    """An embedded session: the first page load carries the token in the query, later requests
    (htmx) in the Authorization header, as static/embed.js sends them."""

    def __init__(self, workspace: Workspace, **scope: Any) -> None:
        self.client, self.workspace_id = workspace.client, workspace.id
        self.bearer = {"authorization": f"Bearer {workspace.token(**scope)}"}

    def open(self, path: str, **params: str) -> httpx.Response:
        token = self.bearer["authorization"].removeprefix("Bearer ")
        query = {"token": token, "workspaceId": self.workspace_id, **params}
        return self.client.get(f"{EMBED}{path}", params=query)

    def post(self, path: str, form: dict[str, Any], *, htmx: bool = True) -> httpx.Response:
        headers = {**self.bearer, **({"hx-request": "true"} if htmx else {})}
        return self.client.post(
            f"{EMBED}{path}",
            params={"workspaceId": self.workspace_id},
            data=form,
            headers=headers,
            follow_redirects=False,
        )


@pytest.fixture
def acme(client: TestClient, parent: ParentAccount, tenant: Tenant) -> Workspace:
    return Workspace(client, parent, tenant.id)


class Elements(HTMLParser):
    """Every start tag's attributes, and the text inside elements carrying a data-testid."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.texts: dict[str, list[str]] = {}
        self._open: list[str | None] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        self.tags.append((tag, attributes))
        if tag not in ("input", "img", "br", "hr", "meta", "link"):
            self._open.append(attributes.get("data-testid"))
            if attributes.get("data-testid"):
                self.texts.setdefault(attributes["data-testid"], []).append("")

    def handle_endtag(self, tag: str) -> None:
        if self._open:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        for testid in {t for t in self._open if t}:
            self.texts[testid][-1] += data

    def find(self, testid: str) -> list[dict[str, str]]:
        return [attrs for _, attrs in self.tags if attrs.get("data-testid") == testid]

    def one(self, testid: str) -> dict[str, str]:
        (found,) = self.find(testid)
        return found

    def text(self, testid: str) -> str:
        return self.texts[testid][0].strip()


def editor_form(html: str) -> dict[str, str]:
    """The fields of an editor page as a browser would post them (inputs, selects, textareas)."""

    class Fields(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.values: dict[str, str] = {}
            self._textarea: str | None = None
            self._select: str | None = None

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            a = {name: value or "" for name, value in attrs}
            if tag == "input" and "name" in a:
                self.values[a["name"]] = a.get("value", "")
            elif tag == "textarea":
                self._textarea = a["name"]
                self.values[a["name"]] = ""
            elif tag == "select":
                self._select = a["name"]
            elif tag == "option" and self._select and ("selected" in a or self._select not in self.values):
                self.values[self._select] = a["value"]

        def handle_endtag(self, tag: str) -> None:
            if tag == "textarea":
                # A browser drops the one newline that follows <textarea>.
                assert self._textarea is not None
                self.values[self._textarea] = self.values[self._textarea].removeprefix("\n")
                self._textarea = None
            elif tag == "select":
                self._select = None

        def handle_data(self, data: str) -> None:
            if self._textarea:
                self.values[self._textarea] += data

    parser = Fields()
    parser.feed(html)
    return parser.values


def create(embed: Embed, **form: str) -> str:
    """Create a template through the table's form; the id of the editor it opens."""
    response = embed.post("/templates/new", form)
    assert response.status_code == 204, response.text
    location = response.headers["hx-location"]
    assert "token" not in location
    return location.split("?")[0].rsplit("/", 1)[1]


# -- table -------------------------------------------------------------------------------------------


def test_table_lists_templates_with_channel_update_and_publication(acme: Workspace) -> None:
    published = acme.put_template("Welcome", definition=EMAIL)
    changed = acme.put_template("Reminder", definition=SMS, draft={**SMS, "body": "draft"})
    unpublished = acme.put_template("Idea", draft=EMAIL)
    hook = acme.put_template("Hook", definition={"type": "Webhook", "identifierKey": "email", "body": "{}"})

    page = Embed(acme, components=["MessageTemplate"]).open("/templates")

    assert page.status_code == 200, page.text
    elements = Elements(page.text)
    rows = {row["data-template-id"]: row for row in elements.find("template-row")}
    assert {rows[i]["data-channel"] for i in (published, changed, unpublished, hook)} == {
        "Email",
        "Sms",
        "Webhook",
    }
    statuses = {status["data-publication"] for status in elements.find("template-status")}
    assert statuses == {"published", "changed", "unpublished"}
    links = [link["href"] for link in elements.find("template-link")]
    assert any(href.startswith(f"{EMBED}/templates/email/{published}?workspaceId=") for href in links)
    assert any(href.startswith(f"{EMBED}/templates/sms/{changed}?") for href in links)
    assert not any(hook in href for href in links)  # webhook templates have no editor here
    assert all("token" not in href for href in links)
    assert "UTC" in page.text


def test_table_shows_only_the_session_workspace_and_resources(acme: Workspace, parent: ParentAccount) -> None:
    mine = acme.put_template("Mine", definition=EMAIL)
    other = acme.put_template("Other", definition=EMAIL)
    sibling = Workspace(acme.client, parent, parent.put_child("Tenant B", "tenant-b").id)
    sibling.put_template("Sibling secret", definition=EMAIL)

    everything = Embed(acme).open("/templates").text
    assert "Mine" in everything and "Other" in everything and "Sibling secret" not in everything

    narrowed = Embed(acme, resourceIds=[mine]).open("/templates")
    rows = [row["data-template-id"] for row in Elements(narrowed.text).find("template-row")]
    assert rows == [mine] and other not in narrowed.text
    assert Elements(narrowed.text).find("new-template-form") == []


# -- email -------------------------------------------------------------------------------------------


def test_create_save_and_publish_a_code_email_through_the_screens(acme: Workspace) -> None:
    embed = Embed(acme, components=["MessageTemplate"], occupantId="author-7")
    template_id = create(embed, name="Welcome", channel="Email", emailContentsType="Code")
    created = acme.template(template_id)
    assert created["definition"]["emailContentsType"] == "Code" and "draft" not in created

    page = embed.open(f"/templates/email/{template_id}")
    assert page.status_code == 200, page.text
    form = editor_form(page.text)
    assert form["body"] == created["definition"]["body"]  # the textarea round-trips the body exactly

    form.update({"from": "hello@acme.test", "subject": "Hi {{ user.firstName }}", "body": CODE_BODY})
    saved = embed.post("/templates/email/save", form)
    assert saved.status_code == 200, saved.text
    assert Elements(saved.text).one("publication")["data-publication"] == "changed"
    stored = acme.template(template_id)
    assert stored["draft"]["body"] == CODE_BODY and stored["draft"]["subject"] == "Hi {{ user.firstName }}"
    assert stored["definition"] == created["definition"]  # a draft does not publish

    published = embed.post("/templates/email/publish", form)
    assert published.status_code == 200, published.text
    assert Elements(published.text).text("save-message").startswith("Published at ")
    stored = acme.template(template_id)
    assert "draft" not in stored
    assert stored["definition"]["body"] == CODE_BODY and stored["definition"]["from"] == "hello@acme.test"
    assert stored["definition"]["replyTo"] == ""

    # Each change made through the embed is in the audit log, by the session's occupant.
    with acme.client.app.state.sessions() as session:  # type: ignore[attr-defined]
        entries = session.execute(
            select(AuditEntry.action, AuditEntry.actor_type, AuditEntry.actor_id).where(
                AuditEntry.resource_id == template_id
            )
        ).all()
    assert [(actor, occupant) for _, actor, occupant in entries] == [("EmbedOccupant", "author-7")] * 3
    assert [action for action, _, _ in entries] == [
        "embedded:templates:new",
        "embedded:templates:email:save",
        "embedded:templates:email:publish",
    ]

    # The query variant opens the same editor, showing what is now published.
    again = Elements(embed.open("/templates/email", id=template_id).text)
    assert again.one("email-subject")["value"] == "Hi {{ user.firstName }}"
    assert again.one("publication")["data-publication"] == "published"


def test_preview_renders_the_sample_user_in_a_sandboxed_frame(acme: Workspace) -> None:
    embed = Embed(acme, components=["MessageTemplate"])
    form = {
        "emailContentsType": "Code",
        "from": "news@acme.test",
        "subject": "For {{ user.firstName }}",
        "replyTo": "",
        "body": CODE_BODY,
        "sampleProperties": '{"firstName": "Zelda"}',
    }
    response = embed.post("/templates/email/preview", form)

    assert response.status_code == 200, response.text
    elements = Elements(response.text)
    assert elements.text("preview-subject") == "For Zelda"
    frame = elements.one("email-preview-frame")
    assert frame["sandbox"] == "" and "allow-scripts" not in response.text
    assert "Hello Zelda!" in frame["srcdoc"] and frame["srcdoc"].lstrip().lower().startswith("<!doctype html")


def test_preview_renders_a_stored_users_properties(acme: Workspace, tenant: Tenant) -> None:
    identify = acme.client.post(
        "/api/public/apps/identify",
        json={
            "userId": "ada",
            "messageId": "m-ada",
            "traits": {"firstName": "Ada", "email": "ada@example.com"},
        },
        headers={"authorization": tenant.write_key},
    )
    assert identify.status_code == 204, identify.text
    recompute = acme.client.post(
        "/api/admin/computed-properties/trigger-recompute", json={"workspaceId": acme.id}, headers=acme.admin
    )
    assert recompute.status_code == 200, recompute.text
    embed = Embed(acme, components=["MessageTemplate"])
    form = {"emailContentsType": "Code", "from": "x@acme.test", "subject": "s", "body": CODE_BODY}

    stored = embed.post("/templates/email/preview", {**form, "previewUserId": "ada"})
    assert "Hello Ada!" in Elements(stored.text).one("email-preview-frame")["srcdoc"]

    unknown = embed.post("/templates/email/preview", {**form, "previewUserId": "nobody"})
    assert unknown.status_code == 200
    assert "nobody has no stored user properties" in Elements(unknown.text).text("preview-error")


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("body", "<p>{{ user.missing }}</p>", "Body: "),
        ("subject", "{% if %}", "Subject: "),
        ("sampleProperties", "[1, 2]", "sampleProperties must be a JSON object"),
        ("sampleProperties", "{nope", "sampleProperties is not valid JSON"),
    ],
)
def test_a_template_that_does_not_render_is_a_message_not_a_500(
    acme: Workspace, field: str, value: str, error: str
) -> None:
    form = {
        "emailContentsType": "Code",
        "from": "x@acme.test",
        "subject": "s",
        "body": CODE_BODY,
        field: value,
    }
    response = Embed(acme).post("/templates/email/preview", form)
    assert response.status_code == 200, response.text
    elements = Elements(response.text)
    assert elements.text("preview-error").startswith(error) and elements.find("email-preview-frame") == []


def test_hostile_names_and_bodies_render_inert(acme: Workspace) -> None:
    body = f"<p>Hi</p>{HOSTILE}"
    template_id = acme.put_template(HOSTILE, definition={**EMAIL, "subject": HOSTILE, "body": body})
    sms_id = acme.put_template(HOSTILE + " sms", definition={"type": "Sms", "body": HOSTILE})
    embed = Embed(acme)

    for page in (
        embed.open("/templates"),
        embed.open(f"/templates/email/{template_id}"),
        embed.open(f"/templates/sms/{sms_id}"),
        embed.post("/templates/sms/preview", {"body": HOSTILE}),
        embed.post("/templates/email/preview", {"from": "a@b.c", "subject": HOSTILE, "body": body}),
    ):
        assert page.status_code == 200, page.text
        assert "<script>alert" not in page.text and "<img src=x" not in page.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text

    # Inside the preview the author's HTML is kept (it is what the email is), but only as an escaped
    # attribute of a frame that may not run scripts.
    preview = embed.post("/templates/email/preview", {"from": "a@b.c", "subject": "s", "body": body})
    (frame,) = [attrs for tag, attrs in Elements(preview.text).tags if tag == "iframe"]
    assert HOSTILE in frame["srcdoc"] and frame["sandbox"] == ""
    assert 'srcdoc="&lt;p&gt;Hi&lt;/p&gt;&lt;script&gt;alert(1)&lt;/script&gt;' in preview.text


def test_lowcode_email_uses_blocks_that_compile_to_the_engines_document(acme: Workspace) -> None:
    acme.configure(allowedEmailContentsTypes=["LowCode"])
    embed = Embed(acme, components=["MessageTemplate"])
    template_id = create(embed, name="Newsletter", channel="Email")  # the only allowed type decides
    assert acme.template(template_id)["definition"]["emailContentsType"] == "LowCode"

    page = Elements(embed.open(f"/templates/email/{template_id}").text)
    # The informative default: two paragraphs, and an unsubscribe link kept as it is.
    assert [block["data-kind"] for block in page.find("block")] == ["paragraph", "paragraph", "other"]

    form = editor_form(embed.open(f"/templates/email/{template_id}").text)
    added = embed.post("/templates/email/blocks", {**form, "op": "add:button"})
    assert added.status_code == 200, added.text
    blocks = Elements(added.text)
    assert [block["data-kind"] for block in blocks.find("block")] == [
        "paragraph",
        "paragraph",
        "other",
        "button",
    ]
    assert 'hx-swap-oob="innerHTML"' in added.text  # the preview follows the blocks

    form = editor_form(added.text.split('<div id="email-preview"')[0]) | {
        k: v for k, v in form.items() if not k.startswith("block")
    }
    form |= {"block-3-text": "Read {{ user.firstName }}", "block-3-url": "https://acme.test/news"}
    moved = embed.post("/templates/email/blocks", {**form, "op": "up:3"})
    assert [block["data-kind"] for block in Elements(moved.text).find("block")][2:] == ["button", "other"]
    srcdoc = Elements(moved.text).one("email-preview-frame")["srcdoc"]
    assert 'href="https://acme.test/news"' in srcdoc and "Read Jane" in srcdoc

    form = editor_form(moved.text.split('<div id="email-preview"')[0]) | {
        k: v for k, v in form.items() if not k.startswith("block")
    }
    saved = embed.post("/templates/email/save", form)
    assert saved.status_code == 200, saved.text
    body = acme.template(template_id)["draft"]["body"]
    assert body["type"] == "doc"
    button = body["content"][2]
    assert button["attrs"]["textAlign"] == "center"
    assert button["content"][0]["text"] == "Read {{ user.firstName }}"
    assert {"type": "link", "attrs": {"href": "https://acme.test/news", "target": "_blank"}} in button[
        "content"
    ][0]["marks"]
    assert body["content"][3]["content"][0]["type"] == "unsubscribeLink"  # kept as it was


def test_blocks_round_trip_and_keep_what_they_do_not_show() -> None:
    document = {
        "type": "doc",
        "content": [
            {
                "type": "heading",
                "attrs": {"level": 2, "textAlign": "right"},
                "content": [{"type": "text", "text": "Title"}],
            },
            {
                "type": "paragraph",
                "content": [
                    {"type": "text", "text": "a"},
                    {"type": "hardBreak"},
                    {"type": "text", "text": "b"},
                ],
            },
            {"type": "dfImage", "attrs": {"url": "https://x.test/i.png", "alt": "i", "width": 200}},
            {"type": "horizontalRule"},
            {"type": "bulletList", "content": [{"type": "listItem", "content": []}]},
        ],
    }
    blocks = blocks_from_document(document)
    assert [(b.kind, b.text) for b in blocks] == [
        ("heading", "Title"),
        ("paragraph", "a\nb"),
        ("image", ""),
        ("divider", ""),
        ("other", ""),
    ]
    assert document_from_blocks(blocks) == document
    image = Block("image", url="https://x.test/j.png", alt="j", node=blocks[2].node)
    assert document_from_blocks([image])["content"][0]["attrs"] == {
        "url": "https://x.test/j.png",
        "alt": "j",
        "width": 200,
    }


def test_new_email_templates_follow_the_configuration(acme: Workspace) -> None:
    acme.configure(allowedEmailContentsTypes=["Code", "LowCode"], lowCodeEmailDefaultType="Empty")
    embed = Embed(acme, components=["MessageTemplate"])
    table = Elements(embed.open("/templates").text)
    assert table.find("new-template-editor-type") != []  # two allowed: the author picks

    template_id = create(embed, name="Blank", channel="Email", emailContentsType="LowCode")
    assert acme.template(template_id)["definition"]["body"] == {
        "type": "doc",
        "content": [{"type": "paragraph"}],
    }

    acme.configure(allowedEmailContentsTypes=["Code"])
    assert Elements(embed.open("/templates").text).find("new-template-editor-type") == []
    refused = embed.post(
        "/templates/new", {"name": "Sneaky", "channel": "Email", "emailContentsType": "LowCode"}
    )
    assert refused.status_code == 204  # exactly one allowed type: it is used, whatever was asked
    assert (
        acme.template(create(embed, name="Plain", channel="Email"))["definition"]["emailContentsType"]
        == "Code"
    )


def test_saving_an_editor_type_the_configuration_forbids_is_refused(acme: Workspace) -> None:
    lowcode = {**EMAIL, "emailContentsType": "LowCode", "body": {"type": "doc", "content": []}}
    template_id = acme.put_template("Old lowcode", definition=lowcode)
    acme.configure(allowedEmailContentsTypes=["Code"])
    embed = Embed(acme, components=["MessageTemplate"])

    page = embed.open(f"/templates/email/{template_id}")
    elements = Elements(page.text)
    assert elements.find("editor-type-refused") != [] and "disabled" in elements.one("save-draft")

    form = editor_form(page.text)
    refused = embed.post("/templates/email/save", form)
    assert refused.status_code == 403
    assert "body/draft/emailContentsType" in refused.text
    assert "draft" not in acme.template(template_id)


def test_create_and_save_refuse_bad_input_naming_the_field(acme: Workspace) -> None:
    embed = Embed(acme)
    acme.put_template("Taken", definition=SMS)
    for form, field in (
        ({"name": "", "channel": "Sms"}, "name"),
        ({"name": "x", "channel": "Fax"}, "channel"),
        ({"name": "Taken", "channel": "Sms"}, "name Taken is already"),
        ({"name": "y", "channel": "Email", "emailContentsType": "Fancy"}, "emailContentsType"),
    ):
        response = embed.post("/templates/new", form)
        assert response.status_code == 400 and field in response.text, (form, response.text)
    lowcode_id = acme.put_template(
        "Lowcode",
        definition={**EMAIL, "emailContentsType": "LowCode", "body": {"type": "doc", "content": []}},
    )
    full = {"id": lowcode_id, "name": "Lowcode", "from": "a@b.c", "subject": "s", "replyTo": ""}
    for form, field in (
        ({**full, "blocks-count": "1", "block-0-kind": "marquee"}, "block-0-kind"),
        ({**full, "blocks-count": "1", "block-0-kind": "heading", "block-0-level": "9"}, "block-0-level"),
        ({**full, "blocks-count": "1", "block-0-kind": "other"}, "block-0-node"),
        ({**full, "blocks-count": "1", "block-0-kind": "other", "block-0-node": "[]"}, "block-0-node"),
        # A save never takes a field the page failed to send for an emptied one.
        (full, "blocks-count is missing"),
        ({k: v for k, v in full.items() if k != "subject"} | {"blocks-count": "0"}, "subject is missing"),
    ):
        response = embed.post("/templates/email/save", form)
        assert response.status_code == 400 and field in response.text, (form, response.text)
    assert "draft" not in acme.template(lowcode_id)

    # A block operation that cannot be done answers the blocks as they were, with the reason.
    kept = embed.post(
        "/templates/email/blocks", {**full, "blocks-count": "1", "block-0-kind": "divider", "op": "remove:5"}
    )
    assert kept.status_code == 400
    elements = Elements(kept.text)
    assert [block["data-kind"] for block in elements.find("block")] == ["divider"]
    assert elements.text("blocks-error") == "op 'remove:5' is not a block operation"
    sms_in_email_editor = embed.open(f"/templates/email/{acme.put_template('Text', definition=SMS)}")
    assert sms_in_email_editor.status_code == 404
    assert embed.open("/templates/email").status_code == 400
    assert embed.open("/templates/email/not-a-uuid").status_code == 404


# -- SMS ---------------------------------------------------------------------------------------------


def test_create_and_save_an_sms_template_through_the_screens(acme: Workspace) -> None:
    embed = Embed(acme, components=["MessageTemplate"])
    template_id = create(embed, name="Code text", channel="Sms")
    page = embed.open("/templates/sms", id=template_id)
    assert page.status_code == 200, page.text
    form = editor_form(page.text)
    assert form["body"] == "Example message to {{ user.phone }}"
    assert Elements(page.text).text("sms-preview-text") == "Example message to +15555550123"

    saved = embed.post("/templates/sms/save", {**form, "body": "Your code, {{ user.firstName }}"})
    assert saved.status_code == 200, saved.text
    stored = acme.template(template_id)
    assert stored["draft"] == {"type": "Sms", "body": "Your code, {{ user.firstName }}"}
    assert stored["definition"]["body"] == "Example message to {{ user.phone }}"

    assert embed.post("/templates/sms/publish", {**form, "body": "Final"}).status_code == 200
    assert acme.template(template_id)["definition"] == {"type": "Sms", "body": "Final"}


def test_sms_preview_counts_characters_and_segments_of_the_rendered_message(acme: Workspace) -> None:
    embed = Embed(acme)
    short = Elements(embed.post("/templates/sms/preview", {"body": "Hi {{ user.firstName }}"}).text)
    assert short.text("sms-preview-text") == "Hi Jane"
    size = short.one("sms-size")
    assert (size["data-characters"], size["data-segments"], size["data-encoding"]) == ("7", "1", "GSM-7")

    long = Elements(embed.post("/templates/sms/preview", {"body": "x" * 161}).text).one("sms-size")
    assert (long["data-segments"], long["data-encoding"]) == ("2", "GSM-7")
    unicode = Elements(embed.post("/templates/sms/preview", {"body": "Привет, {{ user.firstName }}"}).text)
    assert unicode.one("sms-size")["data-encoding"] == "UCS-2"

    broken = Elements(embed.post("/templates/sms/preview", {"body": "Hi {{ user.nope }}"}).text)
    assert broken.text("preview-error").startswith("Body: ")
    assert broken.one("sms-size")["data-characters"] == str(len("Hi {{ user.nope }}"))  # the template text


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments"),
    [
        ("", "GSM-7", 0, 0),
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        ("€" * 80, "GSM-7", 160, 1),  # extension characters take two septets
        ("€" * 81, "GSM-7", 162, 2),
        # 306 septets, but the euro sign would straddle the first split: it moves to the next segment.
        ("a" * 152 + "€" + "a" * 152, "GSM-7", 306, 3),
        ("é" * 160, "GSM-7", 160, 1),  # in the GSM alphabet
        ("я" * 70, "UCS-2", 70, 1),
        ("я" * 71, "UCS-2", 71, 2),
        ("я" * 134, "UCS-2", 134, 2),
        ("я" * 135, "UCS-2", 135, 3),
        ("a" * 69 + "ê", "UCS-2", 70, 1),  # one character outside the alphabet makes it all UCS-2
        ("😀" * 35, "UCS-2", 70, 1),  # astral characters are two UTF-16 units
        ("я" * 66 + "😀" + "я" * 66, "UCS-2", 134, 3),  # a surrogate pair is never split
    ],
)
def test_sms_segment_math(text: str, encoding: str, units: int, segments: int) -> None:
    size = measure_sms(text)
    assert (size.encoding, size.units, size.segments, size.characters) == (
        encoding,
        units,
        segments,
        len(text),
    )


# -- scope and shells --------------------------------------------------------------------------------


def test_a_session_out_of_scope_gets_403(acme: Workspace) -> None:
    template_id = acme.put_template("Welcome", definition=EMAIL)
    other_id = acme.put_template("Other", definition=EMAIL)
    deliveries_only = Embed(acme, components=["DeliveriesTable"])
    for path in ("/templates", f"/templates/email/{template_id}", f"/templates/sms/{template_id}"):
        assert deliveries_only.open(path).status_code == 403, path
    form = {"id": template_id, "name": "Welcome", "from": "a@b.c", "subject": "s", "body": "x"}
    assert deliveries_only.post("/templates/email/save", form).status_code == 403
    assert deliveries_only.post("/templates/new", {"name": "n", "channel": "Sms"}).status_code == 403
    assert acme.template(template_id)["definition"] == EMAIL

    narrowed = Embed(acme, components=["MessageTemplate"], resourceIds=[template_id])
    assert narrowed.open(f"/templates/email/{template_id}").status_code == 200
    assert narrowed.open(f"/templates/email/{other_id}").status_code == 403
    assert narrowed.post("/templates/email/save", {**form, "id": other_id}).status_code == 403
    assert narrowed.post("/templates/new", {"name": "n", "channel": "Sms"}).status_code == 403

    other_workspace = acme.client.get(
        f"{EMBED}/templates",
        params={"token": narrowed.bearer["authorization"][7:], "workspaceId": "someone-else"},
    )
    assert other_workspace.status_code == 403


def test_another_workspaces_template_is_not_found(acme: Workspace, parent: ParentAccount) -> None:
    sibling = Workspace(acme.client, parent, parent.put_child("Tenant B", "tenant-b").id)
    theirs = sibling.put_template("Theirs", definition=EMAIL)
    embed = Embed(acme)
    assert embed.open(f"/templates/email/{theirs}").status_code == 404
    form = {"id": theirs, "name": "Mine now", "from": "a@b.c", "subject": "s", "body": "x"}
    assert embed.post("/templates/email/save", form).status_code == 404
    assert sibling.template(theirs)["name"] == "Theirs"


def test_the_console_works_in_anonymous_mode(client: TestClient, parent: ParentAccount) -> None:
    # Anonymous mode opens the first workspace: the parent, here.
    console = Workspace(client, parent, parent.id)
    template_id = console.put_template("Console sms", definition=SMS)

    table = client.get(f"{CONSOLE}/templates")
    assert table.status_code == 200, table.text
    links = [link["href"] for link in Elements(table.text).find("template-link")]
    editor = f"{CONSOLE}/templates/sms/{template_id}?workspaceId={parent.id}"
    assert editor in links

    page = client.get(editor)
    assert page.status_code == 200, page.text
    saved = client.post(
        f"{CONSOLE}/templates/sms/save", data={**editor_form(page.text), "body": "From the console"}
    )
    assert saved.status_code == 200, saved.text
    assert console.template(template_id)["draft"]["body"] == "From the console"

    created = client.post(
        f"{CONSOLE}/templates/new", data={"name": "New", "channel": "Email"}, follow_redirects=False
    )
    assert created.status_code == 303 and created.headers["location"].startswith(
        f"{CONSOLE}/templates/email/"
    )
    assert client.get(created.headers["location"]).status_code == 200
