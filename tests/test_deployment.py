"""docker-compose.ee.yaml and the Dockerfile agree with the code: every service is health-checked,
every variable the gateway and worker get is one the settings read, no secret has a default,
ports line up, and the commands are real `feedgate` subcommands. No Docker daemon is needed:
the files are parsed and compose's `${VAR...}` interpolation is done here.
"""

from __future__ import annotations

import ast
import json
import re
import shlex
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

import gateway.settings as settings_module
from gateway import health
from gateway.cli import build_parser, run_serve, run_worker
from gateway.settings import Settings, SettingsError

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.ee.yaml"
DOCKERFILE = ROOT / "Dockerfile"
FEEDGATE_SERVICES = ("gateway", "worker")
REQUIRED_SECRETS = ("SECRET_KEY", "DATABASE_PASSWORD", "CLICKHOUSE_PASSWORD")
# The hard-coded SECRET_KEY of Dittofeed's docker-compose.ee.yaml: a `.env` copied from Dittofeed
# may still carry it, so it must never be accepted where sessions and tokens are signed with it.
DITTOFEED_SAMPLE_SECRET_KEY = "GEGL1RHjFVOxIO80Dp8+ODlZPOjm2IDBJB/UunHlf3c="
SAMPLE_DOTENV = {
    "SECRET_KEY": "x1RkR4c3mJ0u6rQd2y9gVwz8Hn5pLt7sAeBfCiDjEkY=",
    "DATABASE_PASSWORD": "pg-pass",
    "CLICKHOUSE_PASSWORD": "ch-pass",
    "OPEN_ID_ISSUER": "https://idp.example.com/",
    "OPEN_ID_CLIENT_ID": "feedgate",
}
# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message}, ${NAME?message}; `$$` is a literal `$`.
_INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")
_SECRET_LIKE = re.compile(r"SECRET|PASSWORD|_KEY$|TOKEN")


class MissingVariable(Exception):
    pass


def interpolate(value: str, dotenv: Mapping[str, str]) -> str:
    """Compose's interpolation of one string, raising where compose would refuse to start."""

    def substitute(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        value = dotenv.get(name)
        unset = value is None or (op is not None and op.startswith(":") and value == "")
        if not unset:
            return str(value)
        if op is not None and op.endswith("?"):
            raise MissingVariable(f"{name}: {arg}")
        return arg if op is not None else ""

    return _INTERPOLATION.sub(substitute, value.replace("$$", "\0")).replace("\0", "$")


def interpolations(text: str) -> list[re.Match[str]]:
    return list(_INTERPOLATION.finditer(text.replace("$$", "")))


def settings_variable_names() -> frozenset[str]:
    """The names Settings.from_environ reads: `ENVIRONMENT_VARIABLES` if settings.py lists them,
    else every string literal passed to an `env.read_*` call in settings.py."""
    listed = getattr(settings_module, "ENVIRONMENT_VARIABLES", None)
    if listed is not None:
        return frozenset(listed)
    tree = ast.parse(Path(settings_module.__file__).read_text())
    names = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr.startswith("read_")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names.add(node.args[0].value)
    return frozenset(names)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def environment_of(service: Mapping[str, Any]) -> dict[str, str]:
    environment = service.get("environment", {})
    if isinstance(environment, list):
        return dict(item.split("=", 1) for item in environment)
    return {name: str(value) for name, value in environment.items()}


def resolved_environment(service: Mapping[str, Any], dotenv: Mapping[str, str]) -> dict[str, str]:
    return {name: interpolate(value, dotenv) for name, value in environment_of(service).items()}


def read_dockerfile() -> dict[str, list[str]]:
    """Instruction -> its arguments, continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    instructions: dict[str, list[str]] = {}
    for line in logical:
        keyword, _, rest = line.partition(" ")
        instructions.setdefault(keyword.upper(), []).append(rest.strip())
    return instructions


def exec_form(argument: str) -> list[str]:
    parsed = json.loads(argument)
    assert isinstance(parsed, list) and all(isinstance(item, str) for item in parsed)
    return parsed


def published_container_ports(service: Mapping[str, Any]) -> set[int]:
    return {int(str(mapping).rsplit(":", 1)[-1].split("/")[0]) for mapping in service.get("ports", [])}


def reachable_ports(service: Mapping[str, Any]) -> set[int]:
    return published_container_ports(service) | {int(port) for port in service.get("expose", [])}


def command_of(service: Mapping[str, Any]) -> list[str]:
    command = service["command"]
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def healthcheck_command(service: Mapping[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    return test if isinstance(test, str) else " ".join(test)


# -- services, health and volumes ------------------------------------------------------------------


def test_compose_runs_the_scaled_out_stack(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == {"gateway", "worker", "postgres", "clickhouse-server"}
    assert services["clickhouse-server"]["image"].startswith("clickhouse/clickhouse-server:")
    assert services["postgres"]["image"].startswith("postgres:")


@pytest.mark.parametrize("name", ["gateway", "worker", "postgres", "clickhouse-server"])
def test_every_service_has_a_healthcheck(services: dict[str, dict[str, Any]], name: str) -> None:
    check = services[name].get("healthcheck")
    assert check is not None and check.get("disable") is not True
    assert check["test"][0] in ("CMD", "CMD-SHELL") or isinstance(check["test"], str)
    assert {"interval", "retries"} <= set(check)


def test_dependencies_wait_for_health(services: dict[str, dict[str, Any]]) -> None:
    for name in FEEDGATE_SERVICES:
        depends_on = services[name]["depends_on"]
        assert isinstance(depends_on, dict), f"{name}: depends_on needs conditions"
        assert {"postgres", "clickhouse-server"} <= set(depends_on)
        for dependency, condition in depends_on.items():
            assert dependency in services
            assert condition == {"condition": "service_healthy"}


def test_feedgate_services_are_built_from_the_dockerfile(services: dict[str, dict[str, Any]]) -> None:
    for name in FEEDGATE_SERVICES:
        build = services[name]["build"]
        assert (build["context"], build["dockerfile"]) == (".", "Dockerfile")
    assert services["gateway"]["image"] == services["worker"]["image"]


def test_every_named_volume_is_declared(compose: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    used = set()
    for service in services.values():
        for volume in service.get("volumes", []):
            source = str(volume).split(":", 1)[0]
            if not source.startswith((".", "/", "~")):
                used.add(source)
    assert used == set(compose["volumes"])
    assert {"postgres", "clickhouse_lib"} <= used


# -- variables --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FEEDGATE_SERVICES)
def test_every_variable_is_one_the_settings_read(services: dict[str, dict[str, Any]], name: str) -> None:
    # OTEL_* are the OpenTelemetry SDK's own (gateway/tracing.py hands it the environment).
    unknown = {
        variable
        for variable in set(environment_of(services[name])) - settings_variable_names()
        if not variable.startswith("OTEL_")
    }
    assert not unknown, f"{name} sets variables gateway/settings.py never reads: {sorted(unknown)}"


@pytest.mark.parametrize("name", FEEDGATE_SERVICES)
def test_each_variable_is_filled_from_the_dotenv_name_of_the_same_name(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    for variable, value in environment_of(services[name]).items():
        for match in interpolations(value):
            assert match["name"] == variable, f"{variable} is filled from {match['name']}"


def test_multi_tenant_oidc_variables_of_dittofeeds_ee_compose(services: dict[str, dict[str, Any]]) -> None:
    open_id = {name for name in settings_variable_names() if name.startswith("OPEN_ID_")}
    assert open_id >= {"OPEN_ID_CLIENT_ID", "OPEN_ID_CLIENT_SECRET", "OPEN_ID_ISSUER"}
    for name in FEEDGATE_SERVICES:
        environment = environment_of(services[name])
        assert environment["AUTH_MODE"] == "multi-tenant"
        assert open_id | {"AUTH_PROVIDER", "SECRET_KEY", "DASHBOARD_URL"} <= set(environment)
        assert environment["ONBOARDING_URL"] == "/dashboard-l/onboarding"
        assert environment["SIGNOUT_URL"] == "/dashboard/signout"


def test_gateway_and_worker_share_their_configuration(services: dict[str, dict[str, Any]]) -> None:
    gateway = environment_of(services["gateway"])
    worker = environment_of(services["worker"])
    assert {name: value for name, value in gateway.items() if name != "BOOTSTRAP"} == worker


@pytest.mark.parametrize("name", FEEDGATE_SERVICES)
def test_the_settings_load_from_the_compose_environment(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    settings = Settings.from_environ(resolved_environment(services[name], SAMPLE_DOTENV))

    assert settings.auth_mode == "multi-tenant"
    assert settings.secret_key == SAMPLE_DOTENV["SECRET_KEY"]
    assert settings.open_id.issuer == SAMPLE_DOTENV["OPEN_ID_ISSUER"]
    assert settings.database_url == "postgresql+psycopg://postgres:pg-pass@postgres:5432/feedgate"
    assert settings.clickhouse_url == "http://clickhouse-server:8123"
    assert settings.clickhouse_password == "ch-pass"
    assert not settings.embedded_events
    assert not settings.blob_storage.enabled


# -- secrets ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("secret", REQUIRED_SECRETS)
def test_required_secrets_have_no_default(secret: str) -> None:
    uses = [match for match in interpolations(COMPOSE.read_text()) if match["name"] == secret]
    assert uses, f"{secret} is never used"
    for match in uses:
        assert match["op"] in (":?", "?"), f"{match[0]} gives {secret} a default"


@pytest.mark.parametrize("secret", REQUIRED_SECRETS)
def test_compose_refuses_to_start_without_each_required_secret(
    services: dict[str, dict[str, Any]], secret: str
) -> None:
    dotenv = {name: value for name, value in SAMPLE_DOTENV.items() if name != secret}
    with pytest.raises(MissingVariable, match=secret):
        resolved_environment(services["gateway"], dotenv)
    with pytest.raises(MissingVariable, match=secret):
        resolved_environment(services["gateway"], {**dotenv, secret: ""})


def test_no_secret_like_variable_has_a_default() -> None:
    for match in interpolations(COMPOSE.read_text()):
        if _SECRET_LIKE.search(match["name"]) and match["op"] in (":-", "-"):
            assert match["arg"] == "", f"{match[0]} has a default secret"


def test_no_secret_like_variable_is_written_literally(services: dict[str, dict[str, Any]]) -> None:
    for service in services.values():
        for name, value in environment_of(service).items():
            if _SECRET_LIKE.search(name):
                assert value.startswith("${") and value.endswith("}"), f"{name} is hard-coded"


def test_dittofeeds_sample_secret_key_appears_nowhere() -> None:
    assert DITTOFEED_SAMPLE_SECRET_KEY not in COMPOSE.read_text()
    assert DITTOFEED_SAMPLE_SECRET_KEY not in (ROOT / "README.md").read_text()


def test_multi_tenant_mode_refuses_dittofeeds_sample_secret_key(services: dict[str, dict[str, Any]]) -> None:
    environ = resolved_environment(
        services["gateway"], {**SAMPLE_DOTENV, "SECRET_KEY": DITTOFEED_SAMPLE_SECRET_KEY}
    )
    with pytest.raises(SettingsError, match="SECRET_KEY"):
        Settings.from_environ(environ)


# -- ports ------------------------------------------------------------------------------------------


def test_the_gateway_listens_where_it_is_published_and_checked(services: dict[str, dict[str, Any]]) -> None:
    gateway = services["gateway"]
    args = build_parser().parse_args(command_of(gateway))
    exposed = {int(port) for argument in read_dockerfile()["EXPOSE"] for port in argument.split()}

    assert args.host == "0.0.0.0"  # noqa: S104 (inside a container)
    assert published_container_ports(gateway) == {args.port}
    assert args.port in exposed
    assert f"127.0.0.1:{args.port}/" in healthcheck_command(gateway)


def test_the_stores_are_reached_on_ports_their_services_expose(services: dict[str, dict[str, Any]]) -> None:
    environment = resolved_environment(services["gateway"], SAMPLE_DOTENV)
    assert environment["DATABASE_HOST"] in services
    assert int(environment["DATABASE_PORT"]) in reachable_ports(services[environment["DATABASE_HOST"]])
    clickhouse = urlsplit(environment["CLICKHOUSE_HOST"])
    assert clickhouse.hostname in services and clickhouse.port is not None
    assert clickhouse.port in reachable_ports(services[clickhouse.hostname])


def test_store_healthchecks_probe_exposed_ports(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for port in re.findall(r"127\.0\.0\.1:(\d+)", healthcheck_command(service)):
            assert int(port) in reachable_ports(service), f"{name} checks port {port}"


def test_databases_are_not_published_to_the_host(services: dict[str, dict[str, Any]]) -> None:
    assert not services["postgres"].get("ports")
    assert not services["clickhouse-server"].get("ports")


def test_postgres_and_clickhouse_credentials_match_the_gateways(services: dict[str, dict[str, Any]]) -> None:
    gateway = resolved_environment(services["gateway"], SAMPLE_DOTENV)
    postgres = resolved_environment(services["postgres"], SAMPLE_DOTENV)
    clickhouse = resolved_environment(services["clickhouse-server"], SAMPLE_DOTENV)
    assert (postgres["POSTGRES_USER"], postgres["POSTGRES_PASSWORD"], postgres["POSTGRES_DB"]) == (
        gateway["DATABASE_USER"],
        gateway["DATABASE_PASSWORD"],
        gateway["DATABASE_NAME"],
    )
    assert (
        clickhouse["CLICKHOUSE_USER"],
        clickhouse["CLICKHOUSE_PASSWORD"],
        clickhouse["CLICKHOUSE_DB"],
    ) == (
        gateway["CLICKHOUSE_USER"],
        gateway["CLICKHOUSE_PASSWORD"],
        gateway["CLICKHOUSE_DATABASE"],
    )


# -- image and commands -----------------------------------------------------------------------------


def test_the_image_entrypoint_is_the_feedgate_script() -> None:
    [entrypoint] = read_dockerfile()["ENTRYPOINT"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert exec_form(entrypoint) == ["feedgate"]
    assert scripts["feedgate"] == "gateway.cli:main"


def test_the_image_default_command_is_serve() -> None:
    [command] = read_dockerfile()["CMD"]
    assert build_parser().parse_args(exec_form(command)).handler is run_serve


def test_compose_commands_are_real_subcommands(services: dict[str, dict[str, Any]]) -> None:
    parser = build_parser()
    assert "entrypoint" not in services["gateway"] and "entrypoint" not in services["worker"]
    assert parser.parse_args(command_of(services["gateway"])).handler is run_serve
    assert parser.parse_args(command_of(services["worker"])).handler is run_worker


def test_the_image_runs_as_a_non_root_user() -> None:
    [user] = read_dockerfile()["USER"]
    assert user not in ("root", "0") and not user.startswith(("root:", "0:"))


def test_the_image_healthcheck_probes_a_health_route() -> None:
    [healthcheck] = read_dockerfile()["HEALTHCHECK"]
    health_paths = {route.path for route in health.routes}
    probed = re.findall(r"127\.0\.0\.1:%s(/[^'\"]*)", healthcheck)
    assert probed and probed[0] in health_paths
    assert exec_form(healthcheck.split("CMD ", 1)[1])[0] == "python"


def test_the_image_base_matches_the_supported_python() -> None:
    [base] = read_dockerfile()["FROM"]
    version = re.fullmatch(r"python:(\d+)\.(\d+)-slim(?:-\w+)?(?: AS \w+)?", base)
    assert version is not None
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    minimum = tuple(int(part) for part in requires.removeprefix(">=").split("."))
    assert (int(version[1]), int(version[2])) >= minimum
