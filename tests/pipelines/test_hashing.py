"""Cache-key ingredients: the code hash, canonical parameters and output digests."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loopline.pipelines.hashing import canonical_json, code_hash
from loopline.pipelines.outputs import digest_of_value, format_of


def _import(tmp_path: Path, files: dict[str, str]) -> dict[str, object]:
    """Write a throwaway package under ``tmp_path`` and import its modules."""
    package = tmp_path / f"proj_{uuid.uuid4().hex[:8]}"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    for name, text in files.items():
        (package / f"{name}.py").write_text(text.replace("PKG", package.name))
    sys.path.insert(0, str(tmp_path))
    try:
        return {n: importlib.import_module(f"{package.name}.{n}") for n in files}
    finally:
        sys.path.remove(str(tmp_path))


def _edit(module: object, text: str) -> None:
    path = Path(module.__file__)  # type: ignore[attr-defined]
    path.write_text(text.replace("PKG", module.__name__.split(".")[0]))  # type: ignore[attr-defined]
    Path(importlib.util.cache_from_source(str(path))).unlink(missing_ok=True)
    importlib.reload(module)  # type: ignore[arg-type]


class TestCodeHash:
    FILES = {
        "helpers": "def scale(x):\n    return x * 2\n",
        "other": "def unused():\n    return 1\n",
        "steps": (
            "import json\nfrom PKG import helpers\nfrom PKG.helpers import scale\n"
            "def direct(x):\n    return scale(x)\n"
            "def via_module(x):\n    return helpers.scale(json.dumps(x))\n"
        ),
    }

    def test_covers_project_helpers_called_by_name_or_through_their_module(self, tmp_path):
        """Editing a project helper changes the hash; the stdlib and libraries do not count."""
        mods = _import(tmp_path, self.FILES)
        before = {fn: code_hash(getattr(mods["steps"], fn)) for fn in ("direct", "via_module")}
        assert all(len(h.modules) == 2 for h in before.values())  # the step's and the helper's
        _edit(mods["other"], "def unused():\n    return 2\n")
        assert code_hash(mods["steps"].direct) == before["direct"]
        _edit(mods["helpers"], "def scale(x):\n    return x * 3\n")
        _edit(mods["steps"], self.FILES["steps"])
        for fn, old in before.items():
            assert code_hash(getattr(mods["steps"], fn)).digest != old.digest

    def test_the_same_code_gives_the_same_hash(self, tmp_path):
        mods = _import(tmp_path, self.FILES)
        first = code_hash(mods["steps"].direct)
        _edit(mods["steps"], self.FILES["steps"])
        assert code_hash(mods["steps"].direct) == first

    def test_mutually_recursive_functions_terminate(self, tmp_path):
        text = "def a(n):\n    return b(n - 1) if n else 0\ndef b(n):\n    return a(n)\n"
        module = _import(tmp_path, {"rec": text})["rec"]
        assert code_hash(module.a).digest


class TestCanonicalParams:
    def test_key_order_and_tuples_do_not_matter(self):
        assert canonical_json({"b": (1, 2), "a": 1.5}) == canonical_json({"a": 1.5, "b": [1, 2]})

    def test_a_dataframe_parameter_is_replaced_by_its_content_digest(self):
        frame = pd.DataFrame({"x": [1, 2]})
        assert canonical_json({"f": frame}) == canonical_json({"f": frame.copy()})
        assert canonical_json({"f": frame}) != canonical_json({"f": frame + 1})


class TestOutputDigests:
    @pytest.mark.parametrize(
        ("value", "fmt"),
        [
            (pd.DataFrame({"x": [1, 2], "s": ["a", "b"]}), "parquet"),
            (np.arange(6).reshape(2, 3), "npy"),
            ({"mae": 0.5, "rows": [1, 2]}, "json"),
            ({1: "not a str key"}, "pickle"),
        ],
    )
    def test_the_same_value_always_gets_the_same_digest(self, value, fmt):
        assert format_of(value) == fmt
        assert digest_of_value(value) == digest_of_value(value)

    def test_a_fitted_model_is_stored_as_an_mlmodel_with_a_stable_digest(self):
        """MLmodel itself (creation time, uuid) is left out of the identity."""
        from sklearn.linear_model import LinearRegression

        model = LinearRegression().fit([[0.0], [1.0]], [1.0, 3.0])
        assert format_of(model) == "mlmodel"
        assert digest_of_value(model) == digest_of_value(model)
