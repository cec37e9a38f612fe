"""``ll.autolog()``: every scikit-learn ``fit`` (and LightGBM/XGBoost's scikit-learn API when
installed) logs its params, training metrics and the fitted model without further code.

``fit`` is patched on each estimator class that defines it. Only the outermost ``fit`` on a
thread logs: a Pipeline fitting its steps, or a search fitting candidates, records one run (with
one child run per search candidate), not hundreds. An autolog failure is a warning, never a
failed ``fit``.
"""

from __future__ import annotations

import functools
import tempfile
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loopline.tracking import fluent
from loopline.tracking.entities import RunStatus

__all__ = ["autolog"]

_MAX_PARAM_LEN = 6000
_local = threading.local()
_patched: dict[tuple[type, str], Callable[..., Any]] = {}
_config: dict[str, Any] = {"disable": True}


def _estimator_classes() -> list[type]:
    classes: list[type] = []
    try:
        from sklearn.utils import all_estimators

        classes.extend(cls for _, cls in all_estimators())
        from sklearn.model_selection import GridSearchCV, RandomizedSearchCV
        from sklearn.pipeline import Pipeline

        classes.extend([Pipeline, GridSearchCV, RandomizedSearchCV])
    except ImportError:
        pass
    try:
        import lightgbm

        classes.extend([lightgbm.LGBMClassifier, lightgbm.LGBMRegressor, lightgbm.LGBMRanker])
    except ImportError:
        pass
    try:
        import xgboost

        classes.extend([xgboost.XGBClassifier, xgboost.XGBRegressor, xgboost.XGBRanker])
    except ImportError:
        pass
    return classes


def autolog(
    log_models: bool = True,
    log_input_examples: bool = True,
    max_tuning_runs: int | None = 100,
    disable: bool = False,
    silent: bool = False,
) -> None:
    """Turn automatic logging on (or off with ``disable=True``) for scikit-learn estimators
    (and LightGBM / XGBoost, if installed)."""
    _config.update(
        log_models=log_models,
        log_input_examples=log_input_examples,
        max_tuning_runs=max_tuning_runs,
        disable=disable,
        silent=silent,
    )
    if disable:
        return
    for cls in _estimator_classes():
        owner = next((k for k in cls.__mro__ if "fit" in k.__dict__), None)
        if owner is None or (owner, "fit") in _patched:
            continue
        original = owner.__dict__["fit"]
        _patched[(owner, "fit")] = original
        owner.fit = _wrap(original)  # type: ignore[attr-defined]


def _wrap(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        # Transformers alone (a scaler, a label encoder) are not worth a run; predictors are.
        if (
            _config.get("disable")
            or getattr(_local, "depth", 0) > 0
            or not hasattr(self, "predict")
        ):
            return original(self, *args, **kwargs)
        _local.depth = 1
        try:
            return _logged_fit(original, self, args, kwargs)
        finally:
            _local.depth = 0

    fit.__loopline_autolog__ = True  # type: ignore[attr-defined]
    return fit


def _logged_fit(original: Callable[..., Any], est: Any, args: Any, kwargs: Any) -> Any:
    X = args[0] if args else kwargs.get("X")
    y = args[1] if len(args) > 1 else kwargs.get("y")
    own_run = fluent.active_run() is None
    run = fluent.start_run(run_name=type(est).__name__) if own_run else fluent.active_run()
    assert run is not None
    try:
        result = original(est, *args, **kwargs)
    except BaseException as exc:
        if own_run:
            status = RunStatus.KILLED if isinstance(exc, KeyboardInterrupt) else RunStatus.FAILED
            fluent._end(run.run_id, status)
        raise
    try:
        _log_after_fit(est, X, y, run.run_id)
    except Exception as exc:  # autolog must never break training
        if not _config.get("silent"):
            warnings.warn(
                f"loopline autolog could not log {type(est).__name__}: {exc}", stacklevel=3
            )
    if own_run:
        fluent._end(run.run_id, RunStatus.FINISHED)
    return result


def _flat_params(est: Any) -> dict[str, str]:
    params: dict[str, str] = {}
    try:
        raw = est.get_params(deep=True)
    except Exception:
        return params
    for key, value in raw.items():
        text = repr(value) if hasattr(value, "get_params") else str(value)
        params[key] = text[:_MAX_PARAM_LEN]
    return params


def _training_metrics(est: Any, X: Any, y: Any) -> dict[str, float]:
    if y is None:
        return {}
    from sklearn import metrics
    from sklearn.base import is_classifier, is_regressor

    values: dict[str, float] = {}
    target = est.best_estimator_ if hasattr(est, "best_estimator_") else est
    try:
        values["training_score"] = float(est.score(X, y))
    except Exception:
        pass
    if is_classifier(target):
        predicted = est.predict(X)
        values["training_accuracy_score"] = float(metrics.accuracy_score(y, predicted))
        average = "binary" if len(set(map(str, y))) <= 2 else "weighted"
        for name, fn in (
            ("f1", metrics.f1_score),
            ("precision", metrics.precision_score),
            ("recall", metrics.recall_score),
        ):
            try:
                values[f"training_{name}_score"] = float(
                    fn(y, predicted, average=average, zero_division=0)
                )
            except Exception:
                pass
        if hasattr(est, "predict_proba"):
            try:
                proba = est.predict_proba(X)
                values["training_log_loss"] = float(metrics.log_loss(y, proba))
                if proba.shape[1] == 2:
                    values["training_roc_auc"] = float(metrics.roc_auc_score(y, proba[:, 1]))
                else:
                    values["training_roc_auc"] = float(
                        metrics.roc_auc_score(y, proba, multi_class="ovr", average="weighted")
                    )
            except Exception:
                pass
    elif is_regressor(target):
        predicted = est.predict(X)
        mse = float(metrics.mean_squared_error(y, predicted))
        values["training_mean_squared_error"] = mse
        values["training_root_mean_squared_error"] = mse**0.5
        values["training_mean_absolute_error"] = float(metrics.mean_absolute_error(y, predicted))
        values["training_r2_score"] = float(metrics.r2_score(y, predicted))
    return values


def _log_after_fit(est: Any, X: Any, y: Any, run_id: str) -> None:
    fluent.log_params(_flat_params(est), run_id=run_id)
    fluent.set_tags(
        {
            "estimator_name": type(est).__name__,
            "estimator_class": f"{type(est).__module__}.{type(est).__qualname__}",
        },
        run_id=run_id,
    )
    fluent.log_metrics(_training_metrics(est, X, y), run_id=run_id)
    if hasattr(est, "cv_results_"):
        _log_search(est, run_id)
    if _config.get("log_models") and hasattr(est, "predict"):
        from loopline.models.mlmodel import save_sklearn_model

        example = X[:5] if _config.get("log_input_examples") else None
        output = None
        if example is not None:
            try:
                output = est.predict(example)
            except Exception:
                output = None
        with tempfile.TemporaryDirectory() as tmp:
            save_sklearn_model(
                est,
                Path(tmp) / "model",
                input_example=example,
                output_example=output,
                run_id=run_id,
            )
            fluent.log_artifacts(Path(tmp) / "model", "model", run_id=run_id)


def _log_search(search: Any, parent_run_id: str) -> None:
    """One child run per candidate (params + CV scores), and the best on the parent."""
    results = search.cv_results_
    best = getattr(search, "best_params_", None)
    if best is not None:
        fluent.log_params({f"best_{k}": v for k, v in best.items()}, run_id=parent_run_id)
    if hasattr(search, "best_score_"):
        fluent.log_metric("best_cv_score", float(search.best_score_), run_id=parent_run_id)
    n = len(results["params"])
    order = (
        sorted(range(n), key=lambda i: results["rank_test_score"][i])
        if "rank_test_score" in results
        else list(range(n))
    )
    limit = _config.get("max_tuning_runs")
    if limit is not None:
        order = order[:limit]
    service = fluent._service()
    parent = service.get_run(parent_run_id)
    for i in order:
        child = service.create_run(
            parent.info.experiment_id,
            f"{parent.info.run_name}-candidate-{i}",
            {"loopline.autolog.candidate": str(i)},
            parent_run_id=parent_run_id,
        )
        metrics = {
            key: float(results[key][i])
            for key in results
            if key.startswith(("mean_", "std_", "rank_")) and _is_number(results[key][i])
        }
        fluent.log_params({k: str(v) for k, v in results["params"][i].items()}, run_id=child.run_id)
        fluent.log_metrics(metrics, run_id=child.run_id)
        fluent.flush()
        service.end_run(child.run_id, RunStatus.FINISHED)


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True
