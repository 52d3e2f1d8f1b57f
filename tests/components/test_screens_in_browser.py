"""The embedded screens in real Chromium, framed cross-site by the demo's sample parent page.

The parent page (http://127.0.0.1:<port>) mints a session through the API and frames the screens
from http://localhost:<port>. In the iframe a member of the parent's customer works with real data:
builds a segment, writes an email template, sends it as a broadcast (the server's own worker sends
it) and sees the deliveries and the chart move; designs a journey. The session token leaves the
address bar at once, hostile values stay inert, and when the session is revoked the screen tells the
parent, which mints a new token and hands it over, after which work goes on. The member console's
screens and settings render too. Screenshots of every screen land in the artifacts directory.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx2 as httpx
import pytest
from playwright.sync_api import Dialog, Frame, FrameLocator, Page

from gateway import operator
from gateway.app import create_app
from gateway.sample_parent import PAGE_PATH, SampleParent, sample_parent_routes
from gateway.settings import Settings
from tests.support.browser import chromium, screenshot_path
from tests.support.net import ThreadedServer

# Executes only if some screen renders it as markup: sets a flag and opens a dialog.
HOSTILE = '<img src=x onerror="window.__xss=1;alert(1)">'


@dataclass
class Demo:
    url: str
    account: SampleParent
    api: httpx.Client

    def admin(self, method: str, path: str, **body: Any) -> Any:
        response = self.api.request(method, path, json={"workspaceId": self.account.child_id, **body})
        assert response.is_success, response.text
        return response.json() if response.content else None


@pytest.fixture
def demo(settings: Settings) -> Iterator[Demo]:
    operator.seed_demo(settings)
    account = operator.prepare_sample_parent(settings)
    assert account is not None
    # The in-process worker runs as in `feedgate demo`: it computes segments and sends broadcasts.
    server = ThreadedServer(create_app(settings, run_worker=True, extra_routes=sample_parent_routes(account)))
    server.start()
    headers = {"authorization": f"Bearer {account.admin_key}"}
    try:
        with httpx.Client(base_url=server.url, headers=headers, timeout=30) as api:
            yield Demo(server.url, account, api)
    finally:
        server.stop()


def send_sms(demo: Demo, users: list[dict[str, Any]]) -> str:
    """Send a real SMS template (hostile name) to `users` through the Test provider."""
    template = demo.admin(
        "PUT",
        "/api/admin/content/templates",
        name=f"Reminder {HOSTILE}",
        definition={"type": "Sms", "body": "Hi {{ user.firstName }}, your order is ready"},
    )
    demo.admin(
        "POST",
        "/api/admin/content/templates/batch-send",
        templateId=template["id"],
        channel="Sms",
        users=users,
    )
    return str(template["id"])


def embedded_frame(page: Page, path: str) -> Frame:
    for frame in page.frames:
        if f"/dashboard-l/embedded{path}" in frame.url:
            return frame
    raise AssertionError(f"no frame shows {path}: {[f.url for f in page.frames]}")


def wait_for_htmx(page: Page, path: str, selector: str) -> None:
    """Act on a freshly swapped page only once htmx has wired its triggers, or the event goes unheard."""
    embedded_frame(page, path).wait_for_function(
        f"() => Boolean(document.querySelector({selector!r})?.['htmx-internal-data'])"
    )


def assert_inert(page: Page, dialogs: list[str]) -> None:
    assert dialogs == []
    for frame in page.frames:
        assert frame.evaluate("window.__xss === undefined"), frame.url


def test_a_parent_embeds_the_screens_cross_site(demo: Demo) -> None:
    users = [
        {"id": "ada", "properties": {"phone": "+15555550101", "firstName": "Ada"}},
        {"id": "bob", "properties": {"phone": "+15555550102", "firstName": HOSTILE}},
        {"id": HOSTILE, "properties": {"phone": "+15555550103", "firstName": "Eve"}},
    ]
    send_sms(demo, users)

    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        dialogs: list[str] = []

        def refuse(dialog: Dialog) -> None:
            dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", refuse)
        page.goto(f"{demo.url}{PAGE_PATH}")
        deliveries: FrameLocator = page.frame_locator("#frame-1")

        rows = deliveries.locator("[data-testid=delivery-row]")
        rows.first.wait_for()
        assert rows.count() == 3
        frame = embedded_frame(page, "/deliveries/v2")
        assert frame.url.startswith("http://localhost:")
        assert "token=" not in frame.url
        page.screenshot(path=screenshot_path("deliveries-table"))

        build_a_segment(page)
        write_templates(page)
        sent_before = see_the_chart(page)
        write_an_email(page)
        send_a_broadcast(page)
        assert see_the_chart(page, sent=sent_before + 25) == sent_before + 25
        open_tab(page, "Deliveries")
        deliveries.locator("[data-testid=filter-channel]").select_option("Email")
        deliveries.locator("[data-testid=filter-apply]").click()
        deliveries.locator("[data-testid=delivery-row] >> text=Bread news").first.wait_for()
        page.screenshot(path=screenshot_path("deliveries-after-broadcast"))
        design_a_journey(page)

        # Revoked sessions end at once; the screen asks the parent, which renews it.
        open_tab(page, "Deliveries")
        demo.admin("DELETE", "/api-l/sessions")
        deliveries.locator("[data-testid=filter-apply]").click()
        page.wait_for_function("Number(document.getElementById('refreshes').dataset.count) >= 1")
        deliveries.locator("[data-testid=filter-channel]").select_option("Sms")
        deliveries.locator("[data-testid=filter-apply]").click()
        deliveries.locator("[data-testid=delivery-row] >> text=Reminder").first.wait_for()
        assert rows.count() == 3

        assert_inert(page, dialogs)

        see_the_console(browser.new_page(viewport={"width": 1280, "height": 900}), demo.url)


def open_tab(page: Page, label: str) -> None:
    page.get_by_role("button", name=label, exact=True).click()


def build_a_segment(page: Page) -> None:
    """From the segments table to a saved Trait segment with its live member count."""
    open_tab(page, "Segments")
    segments = page.frame_locator("#frame-3")
    segments.locator("[data-testid=segments-table]").wait_for()
    page.screenshot(path=screenshot_path("segments-table"))
    segments.locator("[data-testid=new-segment]").click()
    segments.locator("[data-testid=segment-name]").wait_for()
    wait_for_htmx(page, "/segments/v1", "[data-testid=node-type]")
    segments.locator("[data-testid=segment-name]").fill("Pro bakers")
    segments.locator("[data-testid=node-type]").first.select_option("Trait")
    # The builder re-renders the node for its new type; fill the fields once it has.
    segments.locator("[data-testid=segment-node][data-node-type=Trait] [data-testid=node-path]").wait_for()
    segments.locator("[data-testid=node-path]").first.fill("plan")
    segments.locator("[data-testid=operator-value]").first.fill("pro")
    segments.locator("[data-testid=segment-save]").click()
    segments.locator("[data-testid=segment-notice]").wait_for()
    segments.locator("[data-testid=segment-count-button]").click()
    # The demo's 50 users alternate between the free and the pro plan.
    segments.locator("[data-testid=segment-count]", has_text="25").wait_for()
    assert "token=" not in embedded_frame(page, "/segments/v1").url
    page.screenshot(path=screenshot_path("segment-editor"))


def write_templates(page: Page) -> None:
    """A new SMS template: typed, counted and previewed on the server, then published."""
    open_tab(page, "Templates")
    templates = page.frame_locator("#frame-4")
    templates.locator("[data-testid=templates-table]").wait_for()
    page.screenshot(path=screenshot_path("templates-table"))
    templates.locator("[data-testid=new-template-name]").fill("Pickup reminder")
    templates.locator("[data-testid=new-template-channel]").select_option("Sms")
    templates.locator("[data-testid=create-template]").click()
    templates.locator("[data-testid=sms-editor]").wait_for()
    wait_for_htmx(page, "/templates/sms", "#sms-form")
    body = templates.locator("[data-testid=sms-body]")
    body.fill("Hi {{ user.firstName }}, your bread is ready: " + "x" * 150)
    templates.locator("[data-testid=sms-size][data-segments='2']").wait_for()
    templates.locator("[data-testid=publish]").click()
    templates.locator("[data-testid=save-message]", has_text="Published").wait_for()
    page.screenshot(path=screenshot_path("sms-editor"))


def see_the_chart(page: Page, *, sent: int | None = None) -> int:
    """The week's deliveries, as a chart and a summary, grouped by message state: how many were sent
    (once the summary says `sent`, when given)."""
    open_tab(page, "Analysis")
    chart = page.frame_locator("#frame-2")
    chart.locator("[data-testid=apply-filters]").click()
    chart.locator("[data-testid=analysis-chart] svg.fg-chart").wait_for()
    if sent is not None:
        chart.locator("[data-testid=summary-sent]", has_text=f"{sent:,}").wait_for()
    page.screenshot(path=screenshot_path("analysis-chart"))
    return int(chart.locator("[data-testid=summary-sent]").inner_text().replace(",", ""))


def write_an_email(page: Page) -> None:
    """A Code (MJML) email template with Liquid, previewed by the server and published."""
    open_tab(page, "Templates")
    templates = page.frame_locator("#frame-4")
    templates.locator("[data-testid=back-to-templates]").click()
    templates.locator("[data-testid=templates-table]").wait_for()
    templates.locator("[data-testid=new-template-name]").fill("Bread news")
    templates.locator("[data-testid=new-template-channel]").select_option("Email")
    templates.locator("[data-testid=create-template]").click()
    templates.locator("[data-testid=email-editor]").wait_for()
    wait_for_htmx(page, "/templates/email", "#email-form")
    templates.locator("[data-testid=email-from]").fill("bakery@acme.test")
    templates.locator("[data-testid=email-subject]").fill("Fresh loaves, {{ user.firstName }}")
    templates.locator("[data-testid=email-body]").fill(
        "<mjml><mj-body><mj-section><mj-column><mj-text>Hello {{ user.firstName }}, "
        "the pro loaves are out.</mj-text></mj-column></mj-section></mj-body></mjml>"
    )
    templates.locator("[data-testid=publish]").click()
    templates.locator("[data-testid=save-message]", has_text="Published").wait_for()
    page.screenshot(path=screenshot_path("email-editor"))


def send_a_broadcast(page: Page) -> None:
    """A broadcast of the email to the segment, started in the editor and sent by the worker."""
    open_tab(page, "Broadcasts")
    broadcasts = page.frame_locator("#frame-5")
    broadcasts.locator("[data-testid=broadcasts-empty]").wait_for()
    page.screenshot(path=screenshot_path("broadcasts-table"))
    broadcasts.locator("[data-testid=new-broadcast-name]").fill("Pro launch")
    broadcasts.locator("[data-testid=create-broadcast]").click()
    broadcasts.locator("[data-testid=recipients-form]").wait_for()
    wait_for_htmx(page, "/broadcasts/v2", "[data-testid=segment-select]")
    broadcasts.locator("[data-testid=segment-select]").select_option(label="Pro bakers")
    broadcasts.locator("[data-testid=segment-members]", has_text="25").wait_for()
    broadcasts.locator("[data-testid=save-recipients]").click()
    broadcasts.locator("[data-testid=step-saved]").wait_for()
    broadcasts.locator("[data-testid=step-content]").click()
    broadcasts.locator("[data-testid=content-form]").wait_for()
    broadcasts.locator("[data-testid=template-select]").select_option(label="Bread news")
    broadcasts.locator("[data-testid=save-content]").click()
    broadcasts.locator("[data-testid=step-saved]").wait_for()
    broadcasts.locator("[data-testid=template-preview]").wait_for()
    page.screenshot(path=screenshot_path("broadcast-editor-content"))
    broadcasts.locator("[data-testid=step-configuration]").click()
    broadcasts.locator("[data-testid=configuration-form]").wait_for()
    page.screenshot(path=screenshot_path("broadcast-editor-configuration"))
    broadcasts.locator("[data-testid=broadcast-start]").click()
    # The header refreshes itself while the worker sends.
    broadcasts.locator("[data-testid=broadcast-status][data-status=Completed]").wait_for(timeout=90_000)
    assert broadcasts.locator("[data-testid=broadcast-progress]").get_attribute("data-sent") == "25"
    broadcasts.locator("[data-testid=step-deliveries]").click()
    broadcasts.locator("[data-testid=deliveries-count][data-count='25']").wait_for()
    page.screenshot(path=screenshot_path("broadcast-editor-deliveries"))


CONSOLE_PAGES = [
    "deliveries/v2",
    "analysis-chart",
    "segments",
    "templates",
    "broadcasts",
    "journeys",
    "settings",
    *(
        f"settings/{section}"
        for section in (
            "providers",
            "write-keys",
            "admin-keys",
            "members",
            "subscription-groups",
            "component-configurations",
            "embed-origins",
        )
    ),
]


def see_the_console(page: Page, url: str) -> None:
    """The member console (anonymous mode: the first workspace, as Admin) shows every screen."""
    for path in CONSOLE_PAGES:
        response = page.goto(f"{url}/dashboard/{path}")
        assert response is not None and response.status == 200, path
        page.locator("nav.console-nav").wait_for()
        page.screenshot(path=screenshot_path(f"console-{path.replace('/', '-')}"), full_page=True)
    page.close()


def design_a_journey(page: Page) -> None:
    """A journey that enters by the segment and sends the email, drafted in the editor."""
    open_tab(page, "Journeys")
    journeys = page.frame_locator("#frame-6")
    journeys.locator("[data-testid=journeys-empty]").wait_for()
    page.screenshot(path=screenshot_path("journeys-table"))
    journeys.locator("[data-testid=new-journey-name]").fill("Welcome pros")
    journeys.locator("[data-testid=new-journey-submit]").click()
    journeys.locator("[data-testid=journey-editor]").wait_for()
    wait_for_htmx(page, "/journeys/v2", "[data-testid=entry-form]")
    journeys.locator("[data-testid=entry-segment]").select_option(label="Pro bakers")
    journeys.locator("[data-testid=entry-save]").click()
    journeys.locator("[data-testid=journey-unpublished]").wait_for()
    page.screenshot(path=screenshot_path("journey-editor"))
