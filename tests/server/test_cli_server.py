"""``loopline server`` as a real process, and the operator commands (``users``, ``tokens``,
``permissions``, ``audit``) through Typer's CliRunner on the workspace's database."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from loopline.access import AccessService
from loopline.cli.main import app
from loopline.cli.server import settings_environment
from loopline.config import Settings, load_settings
from loopline.errors import InvalidInput, NotFound, Unauthenticated
from loopline.server import ServerOptions
from loopline.store.sql_access import SqlAccessStore
from loopline.workspace import Workspace
from tests.live_server import ProcessServer, ThreadServer

_GENERATED = re.compile(r"created user 'admin' with password (\S+); change it with")


class TestServerProcess:
    def test_serves_operations_routes_and_the_api_with_the_admin_password_from_the_env(
        self, tmp_path: Path
    ):
        """Two workers (settings reach them through the environment); the admin's password
        comes from LOOPLINE_ADMIN_PASSWORD, so none is printed; token secrets never reach the
        log."""
        env = {"LOOPLINE_ADMIN_PASSWORD": "from-the-env-1"}
        with ProcessServer(
            tmp_path / "ws", ["--auth", "--workers", "2", "--log-level", "debug"], env
        ) as server:
            open_routes = {
                path: httpx.get(server.url + path, timeout=10)
                for path in ("/healthz", "/readyz", "/openapi.json", "/metrics")
            }
            anonymous = httpx.get(f"{server.url}/api/v1/experiments", timeout=10)
            admin = httpx.Client(base_url=server.url, auth=("admin", "from-the-env-1"))
            with admin:
                token = admin.post("/api/v1/users/admin/tokens", json={"name": "t"}).json()
            with httpx.Client(
                base_url=server.url, headers={"authorization": f"Bearer {token['secret']}"}
            ) as bearer:
                created = bearer.post("/api/v1/experiments", json={"name": "by-token"})
                bad = httpx.get(
                    f"{server.url}/api/v1/experiments",
                    headers={"authorization": f"Bearer {token['secret']}x"},
                )
            output = server.output()
        assert "Application shutdown complete" in server.output()  # SIGTERM: a graceful stop
        assert {p: r.status_code for p, r in open_routes.items()} == dict.fromkeys(open_routes, 200)
        paths = open_routes["/openapi.json"].json()["paths"]
        assert {"/api/v1/users", "/api/v1/permissions", "/api/v1/audit"} <= set(paths)
        assert anonymous.status_code == 401
        assert created.status_code == 200
        assert bad.status_code == 401
        assert f"http://127.0.0.1:{server.port}" in output
        assert "created user 'admin'" not in output
        assert token["secret"] not in output
        assert "from-the-env-1" not in output

    def test_without_the_env_password_a_generated_one_is_printed_once_and_works(
        self, tmp_path: Path
    ):
        home = tmp_path / "ws"
        with ProcessServer(home, ["--auth"]) as first:
            printed = _GENERATED.findall(first.output())
            assert len(printed) == 1, first.output()
            password = printed[0]
            with httpx.Client(base_url=first.url, auth=("admin", password)) as admin:
                assert admin.get("/api/v1/users").status_code == 200
            output = first.output()
        assert "Application shutdown complete" in first.output()  # SIGTERM: a graceful stop
        assert output.count(password) == 1
        with ProcessServer(home, ["--auth"]) as second:
            with httpx.Client(base_url=second.url, auth=("admin", password)) as admin:
                assert admin.get("/api/v1/users").status_code == 200
            assert password not in second.output()
            assert "created user 'admin'" not in second.output()

    def test_idle_keep_alive_connections_are_closed_after_the_timeout(self, tmp_path: Path):
        import socket
        import time

        with (
            ProcessServer(tmp_path / "ws", ["--timeout-keep-alive", "1"]) as server,
            socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock,
        ):
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")
            first = b""
            while b'{"status":"ok"}' not in first:  # the whole response: head and body
                first += sock.recv(4096)
            time.sleep(2.5)
            sock.settimeout(5)
            try:
                after = sock.recv(4096)
            except ConnectionResetError:
                after = b""
        assert first.startswith(b"HTTP/1.1 200")
        assert after == b"", "the idle connection should have been closed by the server"

    def test_help_explains_the_options_and_mlflow_tracking_uri(self):
        result = CliRunner().invoke(app, ["server", "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0
        for word in (
            "--auth",
            "--workers",
            "--max-body-bytes",
            "--log-level",
            "--timeout-keep-alive",
            "--timeout-graceful-shutdown",
            "MLFLOW_TRACKING_URI",
        ):
            assert word in result.output


class TestSettingsEnvironment:
    def test_a_worker_resolves_the_parents_settings_from_the_exported_environment(
        self, tmp_path: Path
    ):
        """Whatever the file says, the exported variables win and round-trip exactly."""
        (tmp_path / "loopline.toml").write_text('actor = "from-file"\nserver_max_page_size = 5\n')
        settings = Settings.for_home(
            tmp_path,
            actor="parent",
            server_max_body_bytes=123,
            s3_secret_access_key="shh",
            admin_password="not-for-workers",
            promotion_policies=[
                {"alias": "production", "approvals": 2, "checks": [{"metric": "auc", "min": 0.8}]}
            ],
        )
        env = settings_environment(settings, auth=True)
        assert env["LOOPLINE_SERVER_AUTH"] == "1"
        assert "LOOPLINE_ADMIN_PASSWORD" not in env
        worker = load_settings({}, env=env, cwd=Path("/")).settings
        assert worker == settings.model_copy(update={"admin_password": None})


# -- operator commands --------------------------------------------------------------------------
@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "ws"


@pytest.fixture
def cli(home: Path) -> Iterator[CliRunner]:
    yield CliRunner()


def _invoke(runner: CliRunner, home: Path, *args: str, input: str | None = None):
    return runner.invoke(app, ["--home", str(home), *args], input=input, env={"COLUMNS": "200"})


def _access(home: Path) -> tuple[Workspace, AccessService]:
    ws = Workspace(Settings.for_home(home))
    return ws, AccessService(SqlAccessStore(ws.database), ws.events)


class TestUsersCommands:
    def test_create_with_a_prompted_password_asked_twice_and_never_echoed(
        self, cli: CliRunner, home: Path
    ):
        result = _invoke(cli, home, "users", "create", "ada", "--admin", input="s3cret-pw\n" * 2)
        assert result.exit_code == 0, result.output
        assert "s3cret-pw" not in result.output
        assert "Password:" in result.output and "Repeat for confirmation:" in result.output
        ws, access = _access(home)
        with ws:
            assert access.authenticate_password("ada", "s3cret-pw").is_admin

    def test_create_from_stdin_list_disable_enable_and_set_password(
        self, cli: CliRunner, home: Path
    ):
        steps = [
            _invoke(cli, home, "users", "create", "bo", "--password-stdin", input="first-pw1\n"),
            _invoke(cli, home, "users", "disable", "bo"),
        ]
        listed = _invoke(cli, home, "users", "list", "--json")
        rows = [json.loads(line) for line in listed.stdout.splitlines()]
        assert [(r["name"], r["disabled"], r["is_admin"]) for r in rows] == [("bo", True, False)]
        ws, access = _access(home)
        with ws:
            with pytest.raises(Unauthenticated):
                access.authenticate_password("bo", "first-pw1")
            steps.append(_invoke(cli, home, "users", "enable", "bo"))
            steps.append(
                _invoke(
                    cli,
                    home,
                    "users",
                    "set-password",
                    "bo",
                    "--password-stdin",
                    input="second-pw\n",
                )
            )
            assert access.authenticate_password("bo", "second-pw").name == "bo"
        assert [s.exit_code for s in steps] == [0, 0, 0, 0]

    def test_a_short_password_is_refused_naming_the_rule(self, cli: CliRunner, home: Path):
        result = _invoke(cli, home, "users", "create", "cy", "--password-stdin", input="short\n")
        assert isinstance(result.exception, InvalidInput)
        assert "at least 8 characters" in str(result.exception)


class TestTokensCommands:
    def test_create_prints_the_secret_once_list_hides_it_revoke_ends_it(
        self, cli: CliRunner, home: Path
    ):
        _invoke(cli, home, "users", "create", "ci", "--no-password")
        created = _invoke(cli, home, "tokens", "create", "ci", "--name", "build")
        assert created.exit_code == 0, created.output
        secret = created.stdout.strip()
        assert secret.startswith("llt_") and "\n" not in secret
        assert "cannot be shown again" in created.stderr
        listed = _invoke(cli, home, "tokens", "list", "--user", "ci", "--json")
        table = _invoke(cli, home, "tokens", "list")
        assert secret not in listed.stdout and secret not in table.stdout
        (row,) = [json.loads(line) for line in listed.stdout.splitlines()]
        assert (row["user"], row["name"], row["last4"]) == ("ci", "build", secret[-4:])
        assert f"...{secret[-4:]}" in table.stdout
        ws, access = _access(home)
        with ws:
            assert access.authenticate_token(secret).name == "ci"
            revoked = _invoke(cli, home, "tokens", "revoke", row["token_id"])
            assert revoked.exit_code == 0, revoked.output
            with pytest.raises(Unauthenticated):
                access.authenticate_token(secret)

    def test_a_token_for_an_unknown_user_is_not_found(self, cli: CliRunner, home: Path):
        result = _invoke(cli, home, "tokens", "create", "ghost")
        assert isinstance(result.exception, NotFound)
        assert "ghost" in str(result.exception)


class TestPermissionsCommands:
    def test_grant_list_and_revoke(self, cli: CliRunner, home: Path):
        _invoke(cli, home, "users", "create", "ed", "--no-password")
        steps = [
            _invoke(
                cli, home, "permissions", "grant", "ed", "--experiment", "0", "--role", "editor"
            ),
            _invoke(cli, home, "permissions", "grant", "*", "--model", "churn", "--role", "reader"),
        ]
        listed = _invoke(cli, home, "permissions", "list", "--json")
        rows = [json.loads(line) for line in listed.stdout.splitlines()]
        assert [(r["user"], r["object_kind"], r["object_id"], r["role"]) for r in rows] == [
            ("ed", "experiment", "0", "editor"),
            ("*", "registered_model", "churn", "reader"),
        ]
        steps.append(_invoke(cli, home, "permissions", "revoke", "ed", "--experiment", "0"))
        after = _invoke(cli, home, "permissions", "list", "--user", "ed", "--json")
        assert [s.exit_code for s in steps] == [0, 0, 0]
        assert after.stdout.strip() == ""

    def test_a_bad_role_or_object_is_an_error_naming_the_option(self, cli: CliRunner, home: Path):
        _invoke(cli, home, "users", "create", "ed", "--no-password")
        bad_role = _invoke(
            cli, home, "permissions", "grant", "ed", "--experiment", "0", "--role", "boss"
        )
        no_object = _invoke(cli, home, "permissions", "grant", "ed", "--role", "reader")
        assert isinstance(bad_role.exception, InvalidInput)
        assert "--role" in str(bad_role.exception)
        assert isinstance(no_object.exception, InvalidInput)
        assert "--experiment" in str(no_object.exception)


class TestAuditCommand:
    def test_audit_list_shows_requests_made_through_the_server_newest_first(
        self, cli: CliRunner, home: Path
    ):
        ws, access = _access(home)
        with ws:
            access.create_user("admin", "admin-password", admin=True)
            with (
                ThreadServer(ws, ServerOptions(auth=True)) as server,
                httpx.Client(base_url=server.url, auth=("admin", "admin-password")) as c,
            ):
                made = c.post("/api/v1/experiments", json={"name": "a"})
                experiment_id = made.json()["experiment_id"]
                c.post("/api/v1/runs", json={"experiment_id": experiment_id})
        result = _invoke(cli, home, "audit", "list", "--json")
        assert result.exit_code == 0, result.output
        rows = [json.loads(line) for line in result.stdout.splitlines()]
        assert [(r["actor"], r["request"], r["status"], r["client"]) for r in rows] == [
            ("admin", "POST /api/v1/runs", 200, "127.0.0.1"),
            ("admin", "POST /api/v1/experiments", 200, "127.0.0.1"),
        ]
        assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", r["time"]) for r in rows)
        only = _invoke(
            cli,
            home,
            "audit",
            "list",
            "--json",
            "--object-kind",
            "experiment",
            "--object-id",
            experiment_id,
        )
        assert [json.loads(line)["request"] for line in only.stdout.splitlines()] == [
            "POST /api/v1/experiments"
        ]
        table = _invoke(cli, home, "audit", "list")
        assert table.exit_code == 0 and "admin" in table.stdout
