"""``loopline models build``: a container build context for a registered model version.

Docker cannot run here, so the slow end-to-end test does what ``docker build`` and ``docker
run`` would: installs the context's pinned requirements into a fresh virtual environment (with
the Dockerfile's own pip command) and runs its ENTRYPOINT, then asks it for predictions."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier

import loopline as ll
from loopline.blobs.cas import _key
from loopline.config import Settings
from loopline.errors import AlreadyExists, IntegrityError, InvalidInput, NotFound
from loopline.models.loading import load_model_dir
from loopline.models.packaging import (
    BuildContext,
    build_context,
    parse_model_ref,
    pin_requirements,
)
from loopline.workspace import Workspace
from tests.live_server import free_port
from tests.test_cli import run

RNG = np.random.default_rng(11)
FRAME = pd.DataFrame({"amount": RNG.gamma(2.0, 50.0, 80).round(2), "hour": RNG.integers(0, 24, 80)})
LABELS = ((FRAME["amount"] > 120) & (FRAME["hour"] < 6)).astype(int).to_numpy()
PIN = re.compile(r"^(?P<name>[A-Za-z0-9._-]+)(?:\[[^\]]*\])?==(?P<version>[^;\s]+)")


@dataclass
class Registered:
    ws: Workspace
    model: RandomForestClassifier
    run_id: str


@pytest.fixture
def registered(tmp_path: Path) -> Iterator[Registered]:
    """``fraud`` version 1, aliased ``champion``, trained in a run that captured its
    environment (``capture=True`` is the default)."""
    ws = Workspace(Settings.for_home(tmp_path / "ws", actor="tester"))
    with ll.use_workspace(ws):
        model = RandomForestClassifier(n_estimators=5, random_state=0).fit(FRAME, LABELS)
        with ll.start_run(run_name="train") as run:
            info = ll.models.log_model(model, "model", input_example=FRAME.head(5))
        version = ll.models.register(info.model_uri, "fraud")
        ll.models.set_alias("fraud", "champion", version.version)
        yield Registered(ws, model, run.info.run_id)
    ws.close()


def _pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        if match := PIN.match(line):
            found[match["name"].lower().replace("_", "-")] = match["version"]
    return found


def _dockerfile(ctx: BuildContext) -> dict[str, str]:
    """Instruction -> argument text, continuation lines joined."""
    text = ctx.dockerfile.read_text().replace("\\\n", " ")
    found: dict[str, str] = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            instruction, _, rest = line.strip().partition(" ")
            found.setdefault(instruction, rest.strip())
            if instruction == "USER":
                found["USER"] = rest.strip()
    return found


class TestBuildContext:
    def test_the_context_holds_the_verified_model_and_a_dockerfile_that_serves_it(
        self, registered: Registered, tmp_path: Path
    ) -> None:
        ctx = build_context("fraud@champion", tmp_path / "image", workspace=registered.ws)
        docker = _dockerfile(ctx)
        version = registered.ws.registry.get_model_version("fraud", 1)
        assert sorted(p.name for p in ctx.root.iterdir()) == [
            ".dockerignore",
            "Dockerfile",
            "README.md",
            "model",
            "requirements.txt",
            "wheels",
        ]
        assert docker["FROM"] == "python:3.11-slim"
        assert "PIP_NO_CACHE_DIR=1" in docker["ENV"]
        assert docker["USER"] == "loopline" and "useradd" in docker["RUN"]
        assert docker["EXPOSE"] == "8080"
        assert "urllib.request" in docker["HEALTHCHECK"]
        assert "http://127.0.0.1:8080/v2/health/ready" in docker["HEALTHCHECK"]
        assert json.loads(docker["ENTRYPOINT"]) == ctx.entrypoint
        assert ctx.entrypoint[:3] == ["loopline", "serve", "/opt/model"]
        assert ctx.entrypoint[3:] == [
            "--name", "fraud", "--model-version", "1", "--host", "0.0.0.0", "--port", "8080",
        ]  # fmt: skip
        # The model is exactly the registered files, and it predicts as the original does.
        assert ctx.manifest_digest == version.files_digest
        assert (ctx.model_dir / "MLmodel").is_file()
        loaded = load_model_dir(ctx.model_dir)
        assert loaded.predict(FRAME).tolist() == registered.model.predict(FRAME).tolist()
        readme = ctx.readme.read_text()
        for fact in ("`fraud`", "version 1", "alias `champion`", ctx.manifest_digest, "Trust"):
            assert fact in readme
        assert "docker build -t loopline-fraud:1 ." in readme
        assert (ctx.name, ctx.version, ctx.alias, ctx.image_tag) == (
            "fraud",
            1,
            "champion",
            "loopline-fraud:1",
        )

    def test_every_pin_comes_from_the_runs_captured_environment(
        self, registered: Registered, tmp_path: Path
    ) -> None:
        """The model's library and each loopline dependency are pinned to the version the
        training run recorded in loopline/requirements.txt."""
        captured = _pins(
            registered.ws.tracking.download_artifacts(
                registered.run_id, "loopline/requirements.txt", tmp_path / "capture"
            )
        )
        ctx = build_context("fraud/1", tmp_path / "image", workspace=registered.ws)
        pins = _pins(ctx.requirements)
        assert ctx.requirements_source == "captured"
        assert pins["scikit-learn"] == captured["scikit-learn"]
        assert {"loopline", "numpy", "fastapi", "uvicorn", "scipy"} <= set(pins)
        assert {name: pins[name] for name in pins} == {name: captured[name] for name in pins}
        assert not {"pytest", "ruff", "mlflow-skinny", "hypothesis"} & set(pins)  # dev extras
        assert f"run `{registered.run_id}`" in ctx.readme.read_text()

    def test_a_capture_that_differs_from_this_machine_wins(
        self, registered: Registered, tmp_path: Path
    ) -> None:
        """The container gets what the model was trained with, not what builds it."""
        edited = "\n".join(
            "orjson==3.9.15" if line.lower().startswith("orjson==") else line
            for line in registered.ws.tracking.open_artifact(
                registered.run_id, "loopline/requirements.txt"
            )
            .read()
            .decode()
            .splitlines()
        )
        registered.ws.tracking.log_bytes(
            registered.run_id, "loopline/requirements.txt", edited.encode()
        )
        ctx = build_context("fraud@champion", tmp_path / "image", workspace=registered.ws)
        assert importlib.metadata.version("orjson") != "3.9.15"
        assert _pins(ctx.requirements)["orjson"] == "3.9.15"

    def test_a_version_without_a_run_is_pinned_to_the_installed_versions(
        self, registered: Registered, tmp_path: Path
    ) -> None:
        source = f"runs:/{registered.run_id}/model"
        registered.ws.registry.create_registered_model("nightly")
        registered.ws.registry.create_model_version("nightly", source, run_id=None)
        assert registered.ws.registry.get_model_version("nightly", 1).run_id is None
        ctx = build_context("nightly/1", tmp_path / "image", workspace=registered.ws)
        pins = _pins(ctx.requirements)
        assert ctx.requirements_source == "installed"
        for name in ("numpy", "orjson", "fastapi", "scikit-learn"):
            assert pins[name] == importlib.metadata.version(name), name
        assert "the version has no run" in ctx.readme.read_text()

    def test_a_tampered_model_file_fails_the_build_and_leaves_nothing_behind(
        self, registered: Registered, tmp_path: Path
    ) -> None:
        row = next(
            r
            for r in registered.ws.tracking.artifact_files(registered.run_id, "model")
            if r.path.endswith(".pkl")
        )
        stored = registered.ws.blobs.backend.path_for(_key(row.digest))  # type: ignore[attr-defined]
        data = bytearray(stored.read_bytes())
        data[len(data) // 2] ^= 0xFF
        stored.chmod(0o644)
        stored.write_bytes(bytes(data))
        out = tmp_path / "out" / "image"
        with pytest.raises(IntegrityError):
            build_context("fraud@champion", out, workspace=registered.ws)
        assert list((tmp_path / "out").iterdir()) == []  # no context, no half-written sibling

    def test_a_non_empty_out_dir_is_refused_unless_overwrite(
        self, registered: Registered, tmp_path: Path
    ) -> None:
        out = tmp_path / "image"
        out.mkdir()
        (out / "notes.txt").write_text("mine")
        with pytest.raises(AlreadyExists, match="not empty; pass --overwrite"):
            build_context("fraud@champion", out, workspace=registered.ws)
        assert [p.name for p in out.iterdir()] == ["notes.txt"]
        ctx = build_context("fraud@champion", out, workspace=registered.ws, overwrite=True)
        assert not (out / "notes.txt").exists() and ctx.dockerfile.is_file()
        assert sorted(p.name for p in tmp_path.iterdir()) == ["image", "ws"]  # no leftovers

    def test_an_empty_out_dir_is_used(self, registered: Registered, tmp_path: Path) -> None:
        (tmp_path / "image").mkdir()
        ctx = build_context("fraud@champion", tmp_path / "image", workspace=registered.ws)
        assert ctx.dockerfile.is_file()

    def test_base_image_and_port_reach_the_dockerfile(
        self, registered: Registered, tmp_path: Path
    ) -> None:
        ctx = build_context(
            "models:/fraud/1",
            tmp_path / "image",
            workspace=registered.ws,
            base_image="python:3.12-slim-bookworm",
            port=9000,
        )
        docker = _dockerfile(ctx)
        assert docker["FROM"] == "python:3.12-slim-bookworm"
        assert docker["EXPOSE"] == "9000"
        assert ":9000/v2/health/ready" in docker["HEALTHCHECK"]
        assert json.loads(docker["ENTRYPOINT"])[-2:] == ["--port", "9000"]
        assert "--base-image python:3.11-slim" in ctx.readme.read_text()  # the model's Python

    @pytest.mark.parametrize(
        ("ref", "error"),
        [
            ("fraud@nobody", NotFound),
            ("nobody/1", NotFound),
            ("fraud", InvalidInput),
            ("runs:/0123/model", InvalidInput),
        ],
    )
    def test_unknown_or_unregistered_references_are_clear_errors(
        self, registered: Registered, tmp_path: Path, ref: str, error: type[Exception]
    ) -> None:
        with pytest.raises(error):
            build_context(ref, tmp_path / "image", workspace=registered.ws)
        assert not (tmp_path / "image").exists()


class TestReferencesAndPins:
    def test_every_reference_form_parses_to_name_and_alias_or_version(self) -> None:
        got = [
            parse_model_ref(r)
            for r in ("fraud@champion", "models:/fraud@champion", "fraud/3", "models:/fraud/3")
        ]
        assert [(r.name, r.alias, r.version) for r in got] == [
            ("fraud", "champion", None),
            ("fraud", "champion", None),
            ("fraud", None, 3),
            ("fraud", None, 3),
        ]

    def test_the_model_pin_beats_the_capture_and_the_mlflow_client_is_left_out(self) -> None:
        pins = pin_requirements(
            "mlflow==2.16.0\nscikit-learn==1.5.0\ncloudpickle==3.0.0  # comment\n-r more.txt\n",
            {"scikit-learn": "1.4.2", "numpy": "1.26.4", "Typer": "0.12.0"},
        )
        found = {PIN.match(line)["name"].lower(): line for line in pins.lines if PIN.match(line)}
        assert found["scikit-learn"] == "scikit-learn==1.5.0"
        assert found["numpy"] == "numpy==1.26.4"
        assert found["typer"].endswith("==0.12.0")
        assert found["cloudpickle"] == "cloudpickle==3.0.0"
        assert "mlflow" not in found and pins.dropped == ["mlflow==2.16.0"]
        assert (pins.sources["scikit-learn"], pins.sources["numpy"]) == ("model", "captured")

    def test_extras_only_dependencies_stay_out_and_markers_stay_on(self) -> None:
        lines = pin_requirements("", None).lines
        names = {line.split("=")[0].split(";")[0].lower() for line in lines}
        assert "loopline" in names and "sqlalchemy" in names
        assert not {"pytest", "psycopg", "s3fs", "redis"} & names  # extras of loopline
        uvloop = next(line for line in lines if line.lower().startswith("uvloop"))
        assert uvloop.endswith("; sys_platform != 'win32'")


class TestBuildCommand:
    def test_build_prints_progress_and_refuses_to_overwrite_without_the_flag(
        self, registered: Registered, tmp_path: Path
    ) -> None:
        """As a real process: the refusal is one Error line and exit code 4 (AlreadyExists)."""
        out = tmp_path / "image"
        args = ["--home", str(tmp_path / "ws"), "models", "build", "fraud@champion", "--out"]
        first = run(*args, str(out), cwd=tmp_path)
        again = run(*args, str(out), cwd=tmp_path)
        forced = run(*args, str(out), "--overwrite", "--port", "9090", cwd=tmp_path)
        assert first.returncode == 0, first.stderr
        assert "fraud@champion is version 1, trained in run" in first.stdout
        assert "docker build -t loopline-fraud:1" in first.stdout
        assert again.returncode == 4
        assert again.stderr.startswith(f"Error: output directory {out} is not empty")
        assert forced.returncode == 0, forced.stderr
        assert "EXPOSE 9090" in (out / "Dockerfile").read_text()


# -- end to end: a fresh venv in place of docker build, the ENTRYPOINT in place of docker run ---


def _project_root() -> Path:
    """The checkout the imported loopline comes from (an editable install points into its
    src/), else the one this test file lives in."""
    for candidate in (Path(ll.__file__).resolve().parents[2], Path(__file__).resolve().parents[2]):
        pyproject = candidate / "pyproject.toml"
        if pyproject.is_file() and 'name = "loopline"' in pyproject.read_text():
            return candidate
    raise AssertionError("cannot find loopline's pyproject.toml to build a wheel from")


def _run(command: list[str], what: str, **kwargs: object) -> float:
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, **kwargs)  # type: ignore[call-overload]
    assert result.returncode == 0, f"{what} failed:\n{result.stdout}\n{result.stderr}"
    return time.monotonic() - started


def _in_venv(words: list[str], venv: Path, ctx: BuildContext, port: int) -> list[str]:
    """A Dockerfile command with the image's paths and port replaced by the venv's."""
    paths = {
        "/opt/wheels": str(ctx.wheels_dir),
        "/opt/requirements.txt": str(ctx.requirements),
        "/opt/model": str(ctx.model_dir),
    }
    out = [paths.get(w, w) for w in words]
    if out[0] == "pip":  # this pip, installing into the venv: no pip of its own to set up
        out[:1] = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python")]
    elif out[0] in ("python", "loopline"):
        out[0] = str(venv / "bin" / out[0])
    for flag, value in (("--host", "127.0.0.1"), ("--port", str(port))):
        if flag in out:
            out[out.index(flag) + 1] = value
    return [w.replace(":8080/", f":{port}/") for w in out]


@pytest.mark.slow
def test_the_context_installs_in_a_fresh_venv_and_its_entrypoint_serves_predictions(
    registered: Registered, tmp_path: Path
) -> None:
    ctx = build_context("fraud@champion", tmp_path / "image", workspace=registered.ws)
    docker = _dockerfile(ctx)
    timings: dict[str, float] = {}
    # A wheel of this checkout stands in for loopline on the index (it is not published).
    timings["wheel"] = _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check",
         "-q", str(_project_root()), "-w", str(ctx.wheels_dir)],
        "pip wheel",
    )  # fmt: skip
    venv = tmp_path / "venv"
    timings["venv"] = _run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], "python -m venv"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    port = free_port()
    # The Dockerfile's own install command; --no-compile skips byte-compiling every package
    # (the server compiles only what it imports).
    install = next(
        line.strip()[4:]
        for line in ctx.dockerfile.read_text().splitlines()
        if line.startswith("RUN pip install")
    )
    command = _in_venv(shlex.split(install), venv, ctx, port)
    command += ["-q", "--no-compile", "--disable-pip-version-check"]
    timings["install"] = _run(command, "pip install -r requirements.txt", env=env)
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import loopline; print(loopline.__file__)"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    ).stdout.strip()
    assert where.startswith(str(venv)), where  # the venv's own copy, not this checkout

    entrypoint = _in_venv(json.loads(docker["ENTRYPOINT"]), venv, ctx, port)
    log = tmp_path / "serve.log"
    started = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            entrypoint, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp_path
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, f"the entrypoint exited:\n{log.read_text()}"
            try:
                if httpx.get(f"{url}/v2/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"not ready in time:\n{log.read_text()}"
            time.sleep(0.2)
        timings["start"] = time.monotonic() - started
        health = json.loads(docker["HEALTHCHECK"].split("CMD", 1)[1])
        healthy = subprocess.run(_in_venv(health, venv, ctx, port), env=env, timeout=30)
        rows = FRAME.head(6)
        body = {
            "inputs": [
                {"name": name, "shape": [6], "datatype": datatype, "data": rows[name].tolist()}
                for name, datatype in (("amount", "FP64"), ("hour", "INT64"))
            ]
        }
        infer = httpx.post(f"{url}/v2/models/fraud/infer", json=body, timeout=30)
        scored = httpx.post(
            f"{url}/invocations",
            json={"dataframe_split": rows.to_dict(orient="split", index=False)},
            timeout=30,
        )
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        code = proc.wait(timeout=30)
    print(f"fresh-venv timings (s): {json.dumps({k: round(v, 1) for k, v in timings.items()})}")
    expected = registered.model.predict(rows).tolist()
    assert healthy.returncode == 0
    assert infer.status_code == 200, infer.text
    assert infer.json()["model_version"] == "1"
    assert infer.json()["outputs"][0]["data"] == expected
    assert scored.json() == {"predictions": expected}
    # uvicorn finishes in-flight requests, then re-raises SIGTERM: a graceful stop either way.
    assert code in (0, -signal.SIGTERM), log.read_text()
    assert "Application shutdown complete" in log.read_text()
