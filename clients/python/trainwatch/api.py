"""The notebook API: read runs back from a Trainwatch server as pandas DataFrames.

    api = trainwatch.Api()                                   # TRAINWATCH_URL / TRAINWATCH_TOKEN, as init() reads them
    runs = api.runs(q='group = "sweep-7" and not flags.diverging', sort="best_val_loss", order="asc")
    curves = api.history(runs.id[0], fields=["train_loss", "val_loss"], max_points=500)
    api.analysis(runs.id[0])["recommendation"]["reason"]

Each method is one or a few REST reads (`GET /operations?q=`, `GET /operations/{id}/metrics` or `/steps`,
`GET /operations/{id}/analysis`) over the client's own HTTP connection. pandas is imported only when a DataFrame is
built: `import trainwatch` never needs it, and a method that returns one says `pip install pandas` when it is missing.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union
from urllib.parse import quote, urlencode

from ._errors import TrainwatchError
from ._http import Api as _Http
from ._http import ServerAway, error_of

#: The page size `runs()` reads with (the API's largest).
PAGE = 1000
#: The summary figures a run's row carries, from the operation's progress and trend summary.
SUMMARY = ("best_val_loss", "best_epoch", "epochs_completed", "steps_completed", "final_loss", "final_val_loss", "epochs_since_improvement", "monitor")
#: The judgement's flags, as `flags.<name>` columns (the search language's names).
FLAGS = (("overfitting", "is_overfitting"), ("diverging", "is_diverging"), ("plateau", "is_plateaued"), ("stalled", "is_stalled"))

RunRef = Union[str, Mapping[str, Any], Any]


def _pandas():
    try:
        import pandas
    except ImportError:
        raise ImportError("trainwatch.Api returns pandas DataFrames: pandas is not installed (pip install pandas)") from None
    return pandas


def flatten(value: Any, prefix: str, out: Dict[str, Any]) -> Dict[str, Any]:
    """`{"model": {"width": 128}}` under prefix "config" → `{"config.model.width": 128}`; lists stay values."""
    if isinstance(value, Mapping):
        for k, v in value.items():
            flatten(v, f"{prefix}.{k}", out)
    else:
        out[prefix] = value
    return out


def run_row(op: Mapping[str, Any]) -> Dict[str, Any]:
    """One run's row of `Api.runs()`: identity and labels, dates, the summary figures, the flags, the stop decision's
    reason, then `config.*` and `result.*` flattened."""
    trends = op.get("trends") or {}
    progress = op.get("progress") or {}
    control = op.get("control") or {}
    row: Dict[str, Any] = {
        "id": op.get("operation_id"),
        "name": op.get("name"),
        "status": op.get("status"),
        "operation_type": op.get("operation_type"),
        "group": op.get("group"),
        "tags": list(op.get("tags") or []),
        "created_at": op.get("created_at"),
        "completed_at": op.get("completed_at"),
    }
    for key in SUMMARY:
        for where in (op, trends, progress):
            if key in where:
                row[key] = where[key]
                break
        else:
            row[key] = None
    for name, field in FLAGS:
        row[f"flags.{name}"] = bool(trends.get(field))
    row["stop_reason"] = control.get("reason") if control.get("action") == "stop" else None
    flatten(op.get("config") or {}, "config", row)
    flatten(op.get("result") or {}, "result", row)
    return row


def _id_of(run: RunRef) -> str:
    """An operation id from an id, a trainwatch Run, a runs() row (a Series or dict with `id`) or an operation dict."""
    if isinstance(run, str):
        return run
    op_id = getattr(run, "operation_id", None)
    if isinstance(op_id, str):
        return op_id
    for key in ("id", "operation_id"):
        try:
            v = run[key]
        except (KeyError, TypeError, IndexError):
            continue
        if isinstance(v, str):
            return v
    raise ValueError(f"trainwatch: expected a run: an operation id, a Run or a row of Api.runs(); got {type(run).__name__}")


def _range(name: str, r: Optional[Tuple[Optional[int], Optional[int]]]) -> Dict[str, int]:
    if r is None:
        return {}
    if not isinstance(r, (tuple, list)) or len(r) != 2:
        raise ValueError(f"trainwatch: {name}s must be a pair (first, last), inclusive; None leaves an end open; got {r!r}")
    out = {}
    if r[0] is not None:
        out[f"from_{name}"] = int(r[0])
    if r[1] is not None:
        out[f"to_{name}"] = int(r[1])
    return out


def _number(v: Any) -> Any:
    """The API's strings for the non-finite values, as floats."""
    if isinstance(v, str) and v in ("NaN", "Infinity", "-Infinity"):
        return float(v.replace("Infinity", "inf"))
    return v


class Api:
    """Reads runs from a Trainwatch server. `url` and `token` default as `trainwatch.init()`'s do: TRAINWATCH_URL
    (else http://127.0.0.1:8000) and TRAINWATCH_TOKEN. Each read is synchronous; `timeout` bounds each request."""

    def __init__(self, url: Optional[str] = None, token: Optional[str] = None, timeout: float = 30.0) -> None:
        from .client import DEFAULT_URL

        self.url = (url or os.environ.get("TRAINWATCH_URL") or DEFAULT_URL).rstrip("/")
        self._http = _Http(self.url, token or os.environ.get("TRAINWATCH_TOKEN") or None, timeout=timeout)

    def __repr__(self) -> str:
        return f"<trainwatch.Api {self.url}>"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "Api":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def get(self, path: str, params: Optional[Mapping[str, Any]] = None) -> Any:
        """One GET under /api/v1; the envelope's `data` (the whole envelope when it has more, as the listing does).
        ValueError for a 400 (a query the server refuses: its message names the field and position), TrainwatchError
        for any other refusal or a server that does not answer."""
        query = {k: v for k, v in (params or {}).items() if v is not None}
        full = path + ("?" + urlencode(query, quote_via=quote) if query else "")
        try:
            status, env = self._http.request("GET", full)
        except ServerAway as e:
            raise TrainwatchError(f"trainwatch: {self.url} does not answer ({e})") from None
        if status == 200 and isinstance(env, dict):
            return env if "total_count" in env else env.get("data")
        err = error_of(env, status)
        if status == 400:
            raise ValueError(f"trainwatch: {err.get('code')}: {err.get('message')}")
        raise TrainwatchError(f"trainwatch: GET {self.url}/api/v1{full} → {status} {err.get('code')}: {err.get('message')}")

    def operations(
        self,
        q: Optional[str] = None,
        sort: Optional[str] = None,
        order: Optional[str] = None,
        limit: Optional[int] = None,
        *,
        status: Optional[str] = None,
        operation_type: Optional[str] = None,
    ) -> List[Dict[str, Any]]:
        """The operations matching `q` (the search language of `GET /operations?q=`) as the API gives them, every page
        read (`limit`: at most that many; None: all)."""
        if limit is not None and limit < 0:
            raise ValueError(f"trainwatch: limit must be ≥ 0, got {limit}")
        out: List[Dict[str, Any]] = []
        seen = set()
        offset = 0
        while limit is None or len(out) < limit:
            size = PAGE if limit is None else min(PAGE, limit - len(out))
            if size == 0:
                break
            env = self.get("/operations", {"q": q, "sort": sort, "order": order, "status": status, "operation_type": operation_type, "limit": size, "offset": offset})
            page = env.get("data") or []
            offset += len(page)
            # Pages by offset move while a sweep runs (a new run pushes the others down a place): a run read twice
            # is kept once.
            for op in page:
                if op.get("operation_id") not in seen:
                    seen.add(op.get("operation_id"))
                    out.append(op)
            if len(page) < size or offset >= int(env.get("total_count", 0)):
                break
        return out[:limit] if limit is not None else out

    def runs(
        self,
        q: Optional[str] = None,
        sort: Optional[str] = None,
        order: Optional[str] = None,
        limit: Optional[int] = None,
        *,
        status: Optional[str] = None,
        operation_type: Optional[str] = None,
    ):
        """The runs matching `q` as a DataFrame, one row a run, in the server's order (`sort`, default created_at;
        `order` asc or desc, default desc): id, name, status, operation_type, group, tags (a list), created_at and
        completed_at (datetimes), the summary figures (best_val_loss, best_epoch, epochs_completed, steps_completed,
        …), flags.overfitting / diverging / plateau / stalled, stop_reason (the recorded stop decision's), then the
        configuration as `config.<key>` (nested keys dotted: `config.model.width`) and the result as `result.<key>`.

        `q` is the server's filter language: `tags has "bert" and group = "sweep-7" and config.lr < 1e-3 and not
        flags.diverging`; a syntax error raises ValueError with the server's message (it names the position)."""
        pd = _pandas()
        rows = [run_row(op) for op in self.operations(q, sort, order, limit, status=status, operation_type=operation_type)]
        fixed = ["id", "name", "status", "operation_type", "group", "tags", "created_at", "completed_at", *SUMMARY, *(f"flags.{n}" for n, _ in FLAGS), "stop_reason"]
        extra = sorted({k for r in rows for k in r} - set(fixed), key=lambda k: (not k.startswith("config."), k))
        df = pd.DataFrame(rows, columns=fixed + extra)
        for col in ("created_at", "completed_at"):
            df[col] = pd.to_datetime(df[col], utc=True, format="ISO8601")
        return df

    def run(self, run: RunRef) -> Dict[str, Any]:
        """One operation as the API gives it (`GET /operations/{id}`)."""
        return self.get(f"/operations/{quote(_id_of(run), safe='')}")

    def analysis(self, run: RunRef) -> Dict[str, Any]:
        """The server's judgement of a run (`GET /operations/{id}/analysis`) as a dict: flags, trajectory, gap, and
        `recommendation` {action, reason, checkpoint_epoch}."""
        return self.get(f"/operations/{quote(_id_of(run), safe='')}/analysis")

    def history(
        self,
        run: RunRef,
        fields: Optional[Sequence[str]] = None,
        *,
        epochs: Optional[Tuple[Optional[int], Optional[int]]] = None,
        steps: Optional[Tuple[Optional[int], Optional[int]]] = None,
        max_points: Optional[int] = None,
        unit: Optional[str] = None,
    ):
        """A run's metrics as a DataFrame, one row an epoch (`GET /operations/{id}/metrics`) or a step (`…/steps`):
        an `epoch` or `step` column first, then the metrics (NaN and ±inf as floats), `timestamp` a datetime.

        `fields` keeps only those metrics; `epochs=(a, b)` or `steps=(a, b)` an inclusive range (None leaves an end
        open) and picks the unit, else `unit` ("epoch" or "step"; default: steps when the run logged steps). `max_points`
        reduces on the server (min/max per bucket: no spike, NaN or ±inf is lost; first, last and best kept); without it
        every row of the range is read, page by page."""
        pd = _pandas()
        if epochs is not None and steps is not None:
            raise ValueError("trainwatch: history() takes epochs=(a, b) or steps=(a, b), not both")
        op_id = _id_of(run)
        if steps is not None:
            unit = "step"
        elif epochs is not None:
            unit = "epoch"
        elif unit is None:
            op = self.run(op_id)
            unit = "step" if (op.get("progress") or {}).get("steps_completed") else "epoch"
        if unit not in ("epoch", "step"):
            raise ValueError(f"trainwatch: unit must be 'epoch' or 'step', got {unit!r}")
        params: Dict[str, Any] = _range(unit, steps if unit == "step" else epochs)
        if fields is not None:
            if isinstance(fields, str):
                fields = [fields]
            params["fields"] = ",".join(fields)
        if max_points is not None:
            params["max_points"] = int(max_points)
        path = f"/operations/{quote(op_id, safe='')}/{'steps' if unit == 'step' else 'metrics'}"
        rows: List[Dict[str, Any]] = []
        while True:
            data = self.get(path, {**params, **({f"since_{unit}": rows[-1][unit]} if rows else {})})
            page = data["steps"] if unit == "step" else data["metrics"]["epochs"]
            rows.extend(page)
            if max_points is not None or not page:
                break
        keys = [unit] + sorted({k for r in rows for k in r} - {unit, "timestamp"}) + (["timestamp"] if any("timestamp" in r for r in rows) else [])
        df = pd.DataFrame([{k: _number(r.get(k)) for k in keys} for r in rows], columns=keys)
        if "timestamp" in df:
            df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True, format="ISO8601")
        return df
