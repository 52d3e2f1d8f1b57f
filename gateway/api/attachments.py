"""How a download is answered: a CSV body the browser saves under a dated file name."""

from __future__ import annotations

from starlette.responses import Response


def csv_attachment(content: str, file_name: str) -> Response:
    return Response(
        content,
        media_type="text/csv",
        headers={"Content-Disposition": f"attachment; filename={file_name}"},
    )
