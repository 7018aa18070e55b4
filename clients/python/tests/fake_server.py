"""A small stand-in for the Trainwatch API's step routes (the steps wire contract), for the client's step tests while
a server without them is all the repository has: a real HTTP server on 127.0.0.1 that registers operations, stores
epochs and steps as the contract says (a re-posted step replaces the stored one), records every request body, answers
each POST with `control`, refuses a finished operation's rows with a 409 whose details carry it, and can be stopped
and started again on its port. Its read side speaks like tests/server.py's Server (`call`, `operation`, `epochs`,
`steps`), so a test runs against either."""

from __future__ import annotations

import json
import re
import socket
import threading
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional

from server import ApiReader

MAX_ROWS = 10_000
MAX_STEP = 2**31 - 1
FINISHED = ("completed", "failed", "cancelled")


class FakeServer(ApiReader):
    def __init__(self) -> None:
        self.port = 0
        self.url = ""
        self.ops: Dict[str, Dict[str, Any]] = {}
        #: Every request: (method, path, parsed body or None), in arrival order.
        self.requests: List[tuple] = []
        self.lock = threading.Lock()
        self._httpd: Optional[ThreadingHTTPServer] = None
        self._conns: set = set()

    # --- process-like control, as tests/server.py's Server ---------------------------------------------------------

    def start(self) -> "FakeServer":
        fake = self

        class Handler(_Handler):
            server_ref = fake

        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        """Away: the listening socket closes and every open keep-alive connection is cut."""
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        self._httpd = None
        with self.lock:
            conns, self._conns = list(self._conns), set()
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        self.stop()

    # --- reads -------------------------------------------------------------------------------------------------------

    def posts(self, op_id: str, route: str = "steps") -> List[Any]:
        """The bodies POSTed to /operations/{op_id}/{route}, in order."""
        with self.lock:
            return [b for m, p, b in self.requests if m == "POST" and p == f"/api/v1/operations/{op_id}/{route}"]

    # --- the API -----------------------------------------------------------------------------------------------------

    def handle(self, method: str, path: str, body: Any, query: Optional[Dict[str, str]] = None):
        with self.lock:
            self.requests.append((method, path, body))
            if method == "POST" and path == "/api/v1/operations":
                op_id = f"op_training_fake_{uuid.uuid4().hex[:8]}"
                self.ops[op_id] = {"id": op_id, "status": "running", "control": {"action": "continue"}, "epochs": {}, "steps": {}, "body": body}
                return 201, {"success": True, "data": {"operation_id": op_id, "status": "running"}}
            m = re.fullmatch(r"/api/v1/operations/([^/]+)(?:/([a-z_]+))?", path)
            op = self.ops.get(m.group(1)) if m else None
            if op is None:
                return 404, _error("OPERATION_NOT_FOUND", f"operation {m.group(1) if m else path} not found")
            route = m.group(2)
            if method == "GET" and route is None:
                return 200, {"success": True, "data": self._view(op)}
            if method == "GET" and route == "steps":
                since = int((query or {}).get("since_step", -1))
                rows = [op["steps"][k] for k in sorted(op["steps"]) if k > since]
                return 200, {"success": True, "data": {"operation_id": op["id"], "status": op["status"], "steps": rows,
                                                       "total_steps_planned": (op["body"] or {}).get("total_steps_planned")}}
            if method == "GET" and route == "metrics":
                rows = [op["epochs"][k] for k in sorted(op["epochs"])]
                return 200, {"success": True, "data": {"metrics": {"epochs": rows}}}
            if method == "DELETE" and route is None:
                if op["status"] in FINISHED:
                    return 409, _error("OPERATION_FINISHED", "finished", {"status": op["status"], "control": op["control"]})
                by = (body or {}).get("by", "api")
                op["status"] = "cancelled"
                op["control"] = {"action": "stop", "reason": f"cancelled by {by}: {(body or {}).get('reason', '')}", "decided_by": by}
                return 200, {"success": True, "data": self._view(op)}
            if method == "POST" and route in ("steps", "metrics"):
                return self._rows(op, route, body)
            if method == "POST" and route == "complete":
                if op["status"] in FINISHED:
                    return 409, _error("OPERATION_FINISHED", f"operation is {op['status']}", {"status": op["status"], "control": op["control"]})
                op["status"], op["error_message"] = body["status"], body.get("error_message")
                return 200, {"success": True, "data": self._view(op)}
            if method == "PATCH":
                return 200, {"success": True, "data": self._view(op)}
            return 404, _error("NOT_FOUND", f"no route {method} {path}")

    def _rows(self, op: Dict[str, Any], route: str, body: Any):
        key = "steps" if route == "steps" else "epochs"
        rows = body.get(key) if isinstance(body, dict) and key in body else [body]
        if not isinstance(rows, list) or not 1 <= len(rows) <= MAX_ROWS:
            return 400, _error("VALIDATION_ERROR", f"body.{key}: 1 … {MAX_ROWS} rows")
        for i, row in enumerate(rows):
            n = row.get(key[:-1]) if isinstance(row, dict) else None
            if type(n) is not int or not 0 <= n <= MAX_STEP:
                return 400, _error("VALIDATION_ERROR", f"body.{key}.{i}.{key[:-1]}: an integer 0 … {MAX_STEP}")
            if "epoch" in row and route == "steps" and (type(row["epoch"]) is not int or row["epoch"] < 0):
                return 400, _error("VALIDATION_ERROR", f"body.steps.{i}.epoch: an integer ≥ 0")
        if op["status"] in FINISHED:
            return 409, _error("OPERATION_FINISHED", f"operation {op['id']} is {op['status']}", {"status": op["status"], "control": op["control"]})
        for row in rows:
            op[key][row[key[:-1]]] = row  # a re-posted row replaces the stored one
        return 200, {"success": True, "data": {"operation_id": op["id"], "stored": len(rows), "trends": {}, "control": op["control"]}}

    def _view(self, op: Dict[str, Any]) -> Dict[str, Any]:
        done = (max(op["steps"]) + 1) if op["steps"] else 0
        return {"operation_id": op["id"], "status": op["status"], "control": op["control"], "name": (op["body"] or {}).get("name"),
                "error_message": op.get("error_message"),
                "progress": {"steps_completed": done, "total_steps": (op["body"] or {}).get("total_steps_planned")}}


def _error(code: str, message: str, details: Any = None) -> Dict[str, Any]:
    return {"success": False, "error": {"code": code, "message": message, "details": details}}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_ref: FakeServer

    def setup(self) -> None:
        super().setup()
        with self.server_ref.lock:
            self.server_ref._conns.add(self.connection)

    def finish(self) -> None:
        with self.server_ref.lock:
            self.server_ref._conns.discard(self.connection)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _serve(self) -> None:
        n = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(n) if n else b""
        body = json.loads(raw) if raw else None
        path, _, query = self.path.partition("?")
        status, env = self.server_ref.handle(self.command, path, body, dict(urllib.parse.parse_qsl(query)))
        out = json.dumps(env).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = do_DELETE = do_PATCH = _serve
