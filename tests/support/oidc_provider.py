"""A real OpenID provider for tests: npm `oidc-provider` (tests/support/idp/idp.mjs) as a node process,
and the browser steps of its development login, consent and sign-out pages.

The provider requires PKCE (S256) and accepts any login with any password; login `x` is
`x@example.test`, verified unless `x` starts with "unverified". Install it once with
`npm ci --prefix tests/support/idp`.
"""

from __future__ import annotations

import os
import queue
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin

import httpx2 as httpx

IDP_DIR = Path(__file__).resolve().parent / "idp"
CLIENT_ID = "gateway"
CLIENT_SECRET = "gateway-secret"
READY_TIMEOUT_SECONDS = 30


@dataclass(frozen=True)
class OpenIdProvider:
    issuer: str
    client_id: str
    client_secret: str
    # Everything the node process printed, for failure messages.
    output: list[str]

    @property
    def end_session_endpoint(self) -> str:
        return f"{self.issuer}/session/end"


@contextmanager
def running_openid_provider(
    port: int, *, redirect_uris: Sequence[str], post_logout_redirect_uris: Sequence[str] = ()
) -> Iterator[OpenIdProvider]:
    """Start the provider on 127.0.0.1:`port` with one confidential client, stop it afterwards."""
    if not (IDP_DIR / "node_modules" / "oidc-provider").is_dir():
        raise RuntimeError(
            "The test OpenID provider is not installed: run `npm ci --prefix tests/support/idp`"
        )
    issuer = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "IDP_PORT": str(port),
        "IDP_ISSUER": issuer,
        "IDP_CLIENT_ID": CLIENT_ID,
        "IDP_CLIENT_SECRET": CLIENT_SECRET,
        "IDP_REDIRECT_URIS": ",".join(redirect_uris),
        "IDP_POST_LOGOUT_REDIRECT_URIS": ",".join(post_logout_redirect_uris),
    }
    process = subprocess.Popen(
        ["node", str(IDP_DIR / "idp.mjs")],
        cwd=IDP_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()
    output: list[str] = []
    pump = threading.Thread(target=_pump, args=(process, lines, output), daemon=True)
    pump.start()
    try:
        _wait_until_ready(process, lines, output)
        yield OpenIdProvider(issuer, CLIENT_ID, CLIENT_SECRET, output)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        pump.join(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def _pump(process: subprocess.Popen[str], lines: queue.Queue[str | None], output: list[str]) -> None:
    # Keeps reading for the process's whole life so a chatty provider never blocks on a full pipe.
    assert process.stdout is not None
    for line in process.stdout:
        output.append(line)
        lines.put(line)
    lines.put(None)


def _wait_until_ready(
    process: subprocess.Popen[str], lines: queue.Queue[str | None], output: list[str]
) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise RuntimeError("The test OpenID provider did not start:\n" + "".join(output)) from None
        if line is None:
            process.wait()
            raise RuntimeError(
                f"The test OpenID provider exited with {process.returncode}:\n" + "".join(output)
            )
        if line.startswith("IDP_READY "):
            return


@dataclass
class HtmlForm:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[HtmlForm] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append(HtmlForm(values.get("action", ""), values.get("method", "get").lower()))
        elif tag == "input" and self.forms and values.get("type") == "hidden" and "name" in values:
            self.forms[-1].fields[values["name"]] = values.get("value", "")


def read_forms(html: str) -> list[HtmlForm]:
    """The forms of a page with their hidden fields."""
    parser = _FormParser()
    parser.feed(html)
    return parser.forms


def submit_form(client: httpx.Client, page: httpx.Response, **fields: str) -> httpx.Response:
    """Post the page's first form, hidden fields plus `fields`, as a browser would."""
    forms = read_forms(page.text)
    assert forms, f"no form on {page.url}: {page.text[:500]}"
    form = forms[0]
    return client.post(urljoin(str(page.url), form.action), data={**form.fields, **fields})


def sign_in_at_provider(client: httpx.Client, page: httpx.Response, login: str) -> httpx.Response:
    """From the provider's login page, sign in as `login` and consent; return where the browser lands."""
    for _ in range(4):
        forms = read_forms(page.text) if page.headers.get("content-type", "").startswith("text/html") else []
        prompt = forms[0].fields.get("prompt") if forms else None
        if prompt == "login":
            page = submit_form(client, page, login=login, password="any-password")
        elif prompt == "consent":
            page = submit_form(client, page)
        else:
            return page
    raise AssertionError(f"the provider kept asking: {page.text[:500]}")


def confirm_sign_out_at_provider(client: httpx.Client, page: httpx.Response) -> httpx.Response:
    """Answer "Yes, sign me out" on the provider's end-session page."""
    return submit_form(client, page, logout="yes")
