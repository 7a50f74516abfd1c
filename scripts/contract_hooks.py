"""schemathesis hooks for scripts/contract.sh: how to send a tus chunk."""

import json

import schemathesis


@schemathesis.serializer("application/offset+octet-stream")
def tus_chunk(ctx, value):
    """A tus PATCH body is raw bytes; generated strings are sent as their UTF-8 bytes."""
    if isinstance(value, bytes):
        return {"data": value}
    if isinstance(value, str):
        return {"data": value.encode("utf-8")}
    return {"data": json.dumps(value).encode("utf-8")}
