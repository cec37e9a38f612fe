"""Authentication, authorization and audit of a server started with auth, through real HTTP.

Each test starts a live server (uvicorn in a thread) over a fresh workspace on SQLite and on
PostgreSQL, seeded with three users: ``admin`` (global admin), ``alice`` and ``bob`` (plain users).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from loopline.access import AccessService
from loopline.config import Settings
from loopline.errors import PermissionDenied, Unauthenticated
from loopline.server import ServerOptions
from loopline.store import tables as t
from loopline.store.sql_access import SqlAccessStore
from loopline.workspace import Workspace
from tests.live_server import ThreadServer

PASSWORDS = {"admin": "admin-password", "alice": "alice-password", "bob": "bob-password"}


@pytest.fixture(params=["sqlite", "postgresql"])
def store_uri(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'meta' / 'loopline.db'}"
    else:
        yield request.getfixturevalue("postgres_uri")


@pytest.fixture
def workspace(store_uri: str, tmp_path: Path) -> Iterator[Workspace]:
    ws = Workspace(Settings.for_home(tmp_path / "ws", store_uri=store_uri, actor="tester"))
    access = AccessService(SqlAccessStore(ws.database), ws.events)
    access.create_user("admin", PASSWORDS["admin"], admin=True)
    access.create_user("alice", PASSWORDS["alice"])
    access.create_user("bob", PASSWORDS["bob"])
    yield ws
    ws.close()


@dataclass
class Live:
    url: str
    workspace: Workspace

    def as_user(self, name: str) -> httpx.Client:
        """A client signed in with HTTP Basic."""
        return httpx.Client(base_url=self.url, auth=(name, PASSWORDS[name]), timeout=30)

    def with_token(self, secret: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"authorization": f"Bearer {secret}"}, timeout=30
        )

    def anonymous(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)

    def token_for(self, name: str) -> tuple[str, str]:
        """``(token_id, secret)`` of a new token, made through the API by the user themselves."""
        with self.as_user(name) as client:
            body = client.post(f"/api/v1/users/{name}/tokens", json={"name": "t"}).json()
        return body["token_id"], body["secret"]


@pytest.fixture
def live(workspace: Workspace) -> Iterator[Live]:
    with ThreadServer(workspace, ServerOptions(auth=True)) as server:
        yield Live(server.url, workspace)


def _experiment_with_run(client: httpx.Client, name: str = "private") -> tuple[str, str]:
    """An experiment made by ``client``'s user, with one run holding an artifact."""
    created = client.post("/api/v1/experiments", json={"name": name})
    assert created.status_code == 200, created.text
    experiment_id = created.json()["experiment_id"]
    run = client.post("/api/v1/runs", json={"experiment_id": experiment_id})
    assert run.status_code == 200, run.text
    run_id = run.json()["info"]["run_id"]
    upload = client.put(f"/api/v1/runs/{run_id}/artifacts/notes.txt", content=b"secret notes")
    assert upload.status_code == 200, upload.text
    return experiment_id, run_id


class TestAuthentication:
    def test_a_request_without_credentials_is_401_with_a_json_error_body(self, live: Live):
        """The body is the usual {error_code, message} and the challenge names both schemes."""
        with live.anonymous() as client:
            answer = client.get("/api/v1/experiments")
        assert answer.status_code == 401
        assert answer.json()["error_code"] == "UNAUTHENTICATED"
        assert "credentials" in answer.json()["message"]
        assert "Basic" in answer.headers["www-authenticate"]

    def test_a_wrong_password_or_unknown_user_is_401(self, live: Live):
        outcomes = {}
        for user, password in (("alice", "not-her-password"), ("nobody", "whatever-123")):
            with httpx.Client(base_url=live.url, auth=(user, password)) as client:
                answer = client.get("/api/v1/experiments")
            outcomes[user] = (answer.status_code, answer.json()["error_code"])
        assert outcomes == {
            "alice": (401, "UNAUTHENTICATED"),
            "nobody": (401, "UNAUTHENTICATED"),
        }

    def test_basic_and_bearer_are_both_accepted(self, live: Live):
        _, secret = live.token_for("alice")
        with live.as_user("alice") as basic, live.with_token(secret) as bearer:
            assert basic.get("/api/v1/experiments").status_code == 200
            assert bearer.get("/api/v1/experiments").status_code == 200
        with live.with_token(secret + "x") as forged:
            assert forged.get("/api/v1/experiments").status_code == 401

    def test_a_revoked_token_fails_on_the_very_next_request(self, live: Live):
        token_id, secret = live.token_for("alice")
        with live.with_token(secret) as client:
            assert client.get("/api/v1/experiments").status_code == 200
            assert client.delete(f"/api/v1/tokens/{token_id}").status_code == 200
            after = client.get("/api/v1/experiments")
        assert (after.status_code, after.json()["error_code"]) == (401, "UNAUTHENTICATED")

    def test_a_disabled_user_fails_immediately_with_password_and_token(self, live: Live):
        _, secret = live.token_for("bob")
        with live.as_user("bob") as basic, live.with_token(secret) as bearer:
            assert basic.get("/api/v1/experiments").status_code == 200  # warm any cache
            with live.as_user("admin") as admin:
                done = admin.patch("/api/v1/users/bob", json={"disabled": True})
                assert done.status_code == 200 and done.json()["disabled"] is True
            assert basic.get("/api/v1/experiments").status_code == 401
            assert bearer.get("/api/v1/experiments").status_code == 401
            with live.as_user("admin") as admin:
                admin.patch("/api/v1/users/bob", json={"disabled": False})
            assert bearer.get("/api/v1/experiments").status_code == 200

    def test_the_remote_tracking_client_works_with_a_token_and_fails_without(
        self, live: Live, tmp_path: Path
    ):
        _, secret = live.token_for("alice")
        home = tmp_path / "client"
        with Workspace(
            Settings.for_home(home, tracking_uri=live.url, tracking_token=secret)
        ) as remote:
            tracking = remote.tracking
            experiment_id = tracking.create_experiment("remote")
            run = tracking.create_run(experiment_id)
            tracking.log_batch(run.info.run_id, [], [("lr", "0.1")], [])
            assert tracking.get_run(run.info.run_id).params == {"lr": "0.1"}
            assert run.info.user_id == "alice"
        with (
            Workspace(Settings.for_home(home, tracking_uri=live.url)) as anonymous,
            pytest.raises(Unauthenticated),
        ):
            anonymous.tracking.get_experiment("0")

    def test_operational_routes_stay_open(self, live: Live):
        """Load balancers and scrapers carry no credentials."""
        with live.anonymous() as client:
            statuses = {p: client.get(p).status_code for p in ("/healthz", "/readyz", "/metrics")}
        assert statuses == {"/healthz": 200, "/readyz": 200, "/metrics": 200}


class TestAuthorization:
    def test_a_user_with_no_role_can_neither_read_nor_see_the_experiment(self, live: Live):
        with live.as_user("alice") as alice:
            experiment_id, run_id = _experiment_with_run(alice)
        with live.as_user("bob") as bob:
            statuses = {
                "get experiment": bob.get(f"/api/v1/experiments/{experiment_id}").status_code,
                "get run": bob.get(f"/api/v1/runs/{run_id}").status_code,
                "search runs": bob.post(
                    "/api/v1/runs/search", json={"experiment_ids": [experiment_id]}
                ).status_code,
                "download artifact": bob.get(
                    f"/api/v1/runs/{run_id}/artifacts/notes.txt"
                ).status_code,
            }
            listed = [
                e["experiment_id"] for e in bob.get("/api/v1/experiments").json()["experiments"]
            ]
        assert statuses == dict.fromkeys(statuses, 403)
        assert experiment_id not in listed
        with live.as_user("admin") as admin:
            listed = [
                e["experiment_id"] for e in admin.get("/api/v1/experiments").json()["experiments"]
            ]
        assert experiment_id in listed

    def test_a_reader_can_read_but_not_write(self, live: Live):
        with live.as_user("alice") as alice:
            experiment_id, run_id = _experiment_with_run(alice)
            granted = alice.put(
                "/api/v1/permissions",
                json={
                    "user": "bob",
                    "object_kind": "experiment",
                    "object_id": experiment_id,
                    "role": "reader",
                },
            )
            assert granted.status_code == 200, granted.text
        with live.as_user("bob") as bob:
            reads = {
                "get run": bob.get(f"/api/v1/runs/{run_id}").status_code,
                "download": bob.get(f"/api/v1/runs/{run_id}/artifacts/notes.txt").status_code,
            }
            batch = bob.post(
                f"/api/v1/runs/{run_id}/batch", json={"params": [{"key": "a", "value": "1"}]}
            )
            create = bob.post("/api/v1/runs", json={"experiment_id": experiment_id})
        assert reads == {"get run": 200, "download": 200}
        assert (batch.status_code, batch.json()["error_code"]) == (403, "PERMISSION_DENIED")
        assert "editor" in batch.json()["message"]
        assert (create.status_code, create.json()["error_code"]) == (403, "PERMISSION_DENIED")

    def test_the_creator_administers_what_they_create_and_others_cannot_grant(self, live: Live):
        with live.as_user("alice") as alice:
            experiment_id, _ = _experiment_with_run(alice)
        body = {"user": "bob", "object_kind": "experiment", "object_id": experiment_id}
        with live.as_user("bob") as bob:
            refused = bob.put("/api/v1/permissions", json={**body, "role": "admin"})
        with live.as_user("alice") as alice:
            granted = alice.put("/api/v1/permissions", json={**body, "role": "editor"})
            listed = alice.get(
                "/api/v1/permissions",
                params={"object_kind": "experiment", "object_id": experiment_id},
            )
        assert refused.status_code == 403
        assert granted.status_code == 200
        roles = {(p["user"], p["role"]) for p in listed.json()["permissions"]}
        assert roles == {("alice", "admin"), ("bob", "editor")}

    def test_a_grant_to_everyone_opens_the_default_experiment(self, live: Live):
        with live.as_user("bob") as bob:
            before = bob.post("/api/v1/runs", json={"experiment_id": "0"}).status_code
            with live.as_user("admin") as admin:
                admin.put(
                    "/api/v1/permissions",
                    json={
                        "user": "*",
                        "object_kind": "experiment",
                        "object_id": "0",
                        "role": "editor",
                    },
                )
            after = bob.post("/api/v1/runs", json={"experiment_id": "0"}).status_code
        assert (before, after) == (403, 200)

    def test_admin_routes_refuse_plain_users(self, live: Live):
        token_id, _ = live.token_for("alice")
        with live.as_user("bob") as bob:
            statuses = {
                "audit": bob.get("/api/v1/audit").status_code,
                "list users": bob.get("/api/v1/users").status_code,
                "create user": bob.post(
                    "/api/v1/users", json={"name": "mallory", "password": "12345678"}
                ).status_code,
                "disable a user": bob.patch(
                    "/api/v1/users/alice", json={"disabled": True}
                ).status_code,
                "someone else's tokens": bob.get("/api/v1/users/alice/tokens").status_code,
                "a token for someone else": bob.post("/api/v1/users/alice/tokens").status_code,
                "revoke someone else's token": bob.delete(f"/api/v1/tokens/{token_id}").status_code,
            }
        assert statuses == dict.fromkeys(statuses, 403)

    def test_unknown_body_fields_are_refused_naming_the_field(self, live: Live):
        with live.as_user("admin") as admin:
            answer = admin.post(
                "/api/v1/users", json={"name": "carol", "password": "12345678", "root": True}
            )
        assert answer.status_code == 400
        assert "root" in answer.json()["message"]


class TestAdminRoutes:
    def test_an_admin_manages_users_and_tokens_over_http(self, live: Live):
        with live.as_user("admin") as admin:
            created = admin.post(
                "/api/v1/users", json={"name": "carol", "password": "carol-password"}
            )
            assert created.status_code == 200, created.text
            token = admin.post("/api/v1/users/carol/tokens", json={"name": "ci"}).json()
            listed = admin.get("/api/v1/users/carol/tokens").json()["tokens"]
            users = [u["name"] for u in admin.get("/api/v1/users").json()["users"]]
        assert users == ["admin", "alice", "bob", "carol"]
        assert token["secret"].endswith(token["last4"])
        assert [(t["token_id"], t["last4"]) for t in listed] == [
            (token["token_id"], token["last4"])
        ]
        assert all("secret" not in t for t in listed)
        with live.with_token(token["secret"]) as carol:
            assert carol.get("/api/v1/experiments").status_code == 200

    def test_the_last_admin_cannot_be_disabled(self, live: Live):
        with live.as_user("admin") as admin:
            answer = admin.patch("/api/v1/users/admin", json={"disabled": True})
        assert answer.status_code == 400
        assert "last enabled admin" in answer.json()["message"]

    def test_the_audit_endpoint_pages_newest_first(self, live: Live):
        with live.as_user("alice") as alice:
            for i in range(3):
                alice.post("/api/v1/experiments", json={"name": f"e{i}"})
        with live.as_user("admin") as admin:
            first = admin.get("/api/v1/audit", params={"actor": "alice", "max_results": 2}).json()
            second = admin.get(
                "/api/v1/audit",
                params={"actor": "alice", "max_results": 2, "after_id": first["next_page_token"]},
            ).json()
        ids = [e["id"] for e in first["events"] + second["events"]]
        assert len(ids) == 3 and ids == sorted(ids, reverse=True)
        assert second["next_page_token"] is None


class TestAudit:
    def test_every_mutating_request_is_an_audit_event_with_who_what_where_and_status(
        self, live: Live
    ):
        with live.as_user("alice") as alice:
            experiment_id, run_id = _experiment_with_run(alice)
        with live.as_user("bob") as bob:
            bob.post(f"/api/v1/runs/{run_id}/batch", json={"params": []})
        with live.anonymous() as anonymous:
            anonymous.post("/api/v1/runs", json={"experiment_id": "0"})
        with live.as_user("admin") as admin:
            page = admin.get("/api/v1/audit").json()["events"]
        seen = [
            (e["actor"], e["method"], e["path"], e["status"], e["client"]) for e in reversed(page)
        ]
        assert seen == [
            ("alice", "POST", "/api/v1/experiments", 200, "127.0.0.1"),
            ("alice", "POST", "/api/v1/runs", 200, "127.0.0.1"),
            ("alice", "PUT", f"/api/v1/runs/{run_id}/artifacts/notes.txt", 200, "127.0.0.1"),
            ("bob", "POST", f"/api/v1/runs/{run_id}/batch", 403, "127.0.0.1"),
            ("anonymous", "POST", "/api/v1/runs", 401, "127.0.0.1"),
        ]
        objects = [(e["object_kind"], e["object_id"]) for e in reversed(page)][:3]
        assert objects == [("experiment", experiment_id), ("run", run_id), ("run", run_id)]


class TestSecrets:
    def test_token_secrets_are_stored_only_hashed(self, live: Live):
        """No row of any table holds the secret: not the token's row, not an event, not a
        remembered response (creates with an Idempotency-Key are replayed from the database)."""
        _, secret = live.token_for("alice")
        with live.with_token(secret) as client:
            client.post(
                "/api/v1/experiments", json={"name": "with-token"}, headers={"idempotency-key": "k"}
            )
            second = client.post("/api/v1/users/alice/tokens", headers={"idempotency-key": "k2"})
        secrets = (secret, second.json()["secret"])
        with live.workspace.database.read() as conn:
            token_rows = [tuple(r) for r in conn.execute(select(t.api_tokens))]
            holding = [
                table.name
                for table in t.metadata.sorted_tables
                for row in conn.execute(select(table))
                if any(s in str(value) for value in row for s in secrets)
            ]
        assert len(token_rows) == 2
        assert holding == []

    def test_the_access_service_refuses_what_the_server_refuses(self, workspace: Workspace):
        """The rules live in the service: the routes only call it."""
        access = AccessService(SqlAccessStore(workspace.database), workspace.events)
        bob = access.authenticate_password("bob", PASSWORDS["bob"])
        with pytest.raises(PermissionDenied):
            access.require_admin(bob)
