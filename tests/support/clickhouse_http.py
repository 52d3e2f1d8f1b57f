"""Test-only ClickHouse HTTP interface over chdb, enough for clickhouse-connect's http:// client.

It lets the suite exercise the real HTTP client path (Native format, LZ4 bodies, server-side
parameters, per-query settings, error codes) without a ClickHouse server, which Debian does not ship in
a usable version. chdb allows one engine per process, so the shim serves the process's one chdb path.
"""

from __future__ import annotations

import gzip
import json
import re
import threading
import time
import uuid
import zlib
from typing import Any
from urllib.parse import parse_qsl

import lz4.frame
from chdb.session import Session
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

CONTROL_PARAMS = {
    "query",
    "database",
    "default_format",
    "session_id",
    "session_timeout",
    "session_check",
    "query_id",
    "user",
    "password",
    "quota_key",
    "compress",
    "decompress",
    "enable_http_compression",
    "wait_end_of_query",
    "send_progress_in_http_headers",
    "http_headers_progress_interval_ms",
    "buffer_size",
    "role",
    "client_protocol_version",
}
FORMAT_RE = re.compile(r"\bFORMAT\s+(\w+)\s*;?\s*$", re.I)
INSERT_RE = re.compile(rb"\s*(INSERT\b.*?\bFORMAT\s+\w+)[ \t]*\r?\n?", re.I | re.S)


def decode_body(body: bytes, encoding: str | None) -> bytes:
    encoding = (encoding or "").lower()
    if not body or encoding in ("", "identity"):
        return body
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    if encoding == "lz4":
        # clickhouse-connect sends one LZ4 frame per block, concatenated.
        out = []
        while body:
            decompressor = lz4.frame.LZ4FrameDecompressor()
            out.append(decompressor.decompress(body))
            body = decompressor.unused_data
        return b"".join(out)
    if encoding == "zstd":
        from backports import zstd

        result: bytes = zstd.decompress(body)
        return result
    raise ValueError(f"unsupported Content-Encoding {encoding}")


def _literal(value: str) -> str:
    if re.fullmatch(r"-?\d+(\.\d+)?", value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class ChdbHttp:
    def __init__(self, path: str) -> None:
        self.session = Session(path)
        # USE and SET are session-global in chdb: one statement at a time.
        self.lock = threading.Lock()

    def run(
        self,
        sql: str,
        fmt: str,
        database: str,
        params: dict[str, str],
        settings: dict[str, str],
        insert_body: bytes | None,
    ) -> tuple[bytes, int, int]:
        with self.lock:
            self.session.query(f"USE `{database}`", "TSV")
            for key, value in settings.items():
                self.session.query(f"SET {key} = {_literal(value)}", "TSV")
            try:
                if insert_body is not None:
                    with self.session.send_insert(sql, fmt) as insert:
                        if insert_body:
                            insert.append(insert_body)
                        written = insert.finish()
                    return b"", int(written.rows_written), len(insert_body)
                result = self.session.query(sql, fmt, params=params)
                return result.bytes(), int(result.rows_read()), int(result.bytes_read())
            finally:
                for key in settings:
                    self.session.query(f"SET {key} = DEFAULT", "TSV")

    async def handle(self, request: Request) -> Response:
        if request.url.path in ("/ping", "/replicas_status"):
            return PlainTextResponse("Ok.\n")
        query = dict(parse_qsl(request.url.query, keep_blank_values=True))
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            # Large parameters travel as form fields (the query too), as ClickHouse allows.
            form = await request.form()
            query.update({name: str(value) for name, value in form.items()})
            body = b""
        else:
            body = decode_body(await request.body(), request.headers.get("content-encoding"))
        sql, insert_body = query.get("query", ""), None
        if sql.lstrip()[:6].upper() == "INSERT" and request.method == "POST":
            insert_body = body
        elif body:
            match = INSERT_RE.match(body)
            if match:
                sql, insert_body = (sql + " " + match.group(1).decode()).strip(), body[match.end() :]
            else:
                sql = (sql + "\n" + body.decode()) if sql else body.decode()
        format_match = FORMAT_RE.search(sql)
        if format_match:
            sql, fmt = sql[: format_match.start()].rstrip(), format_match.group(1)
        else:
            fmt = query.get("default_format") or request.headers.get("x-clickhouse-format") or "TabSeparated"
        database = query.get("database") or request.headers.get("x-clickhouse-database") or "default"
        params = {k[6:]: v for k, v in query.items() if k.startswith("param_")}
        settings = {k: v for k, v in query.items() if k not in CONTROL_PARAMS and not k.startswith("param_")}
        query_id = query.get("query_id") or str(uuid.uuid4())
        started = time.perf_counter()
        try:
            out, rows, nbytes = await run_in_threadpool(
                self.run, sql, fmt, database, params, settings, insert_body
            )
        except Exception as error:  # a real server answers 500 with "Code: N. DB::Exception: ..."
            message = str(error)
            code_match = re.search(r"Code: (\d+)", message)
            code = code_match.group(1) if code_match else "1001"
            text = message if message.startswith("Code:") else f"Code: {code}. DB::Exception: {message}"
            return PlainTextResponse(
                text,
                status_code=500,
                headers={"X-ClickHouse-Exception-Code": code, "X-ClickHouse-Query-Id": query_id},
            )
        written = insert_body is not None
        summary: dict[str, Any] = {
            "read_rows": str(0 if written else rows),
            "read_bytes": str(0 if written else nbytes),
            "written_rows": str(rows if written else 0),
            "written_bytes": str(nbytes if written else 0),
            "total_rows_to_read": "0",
            "result_rows": "0",
            "result_bytes": "0",
            "elapsed_ns": str(int((time.perf_counter() - started) * 1e9)),
        }
        headers = {
            "X-ClickHouse-Query-Id": query_id,
            "X-ClickHouse-Format": fmt,
            "X-ClickHouse-Timezone": "UTC",
            "X-ClickHouse-Server-Display-Name": "chdb-shim",
            "X-ClickHouse-Summary": json.dumps(summary),
        }
        return Response(out, headers=headers, media_type="application/octet-stream")

    def close(self) -> None:
        self.session.close()


def make_app(shim: ChdbHttp) -> Starlette:
    return Starlette(routes=[Route("/{path:path}", shim.handle, methods=["GET", "POST"])])
