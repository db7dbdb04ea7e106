"""HTTP monitoring (placeholder while the endpoints are written)."""

from typing import Any


def closed_conn_info(server: Any, client: Any) -> dict[str, Any]:
    return {"cid": client.cid, "reason": client.reason}
