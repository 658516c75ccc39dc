"""The API's one error shape, as tests check it: {"error": {"code", "message", "details"}} and, for an error
about one member of the body, its `path`."""

REQUIRED = {"code", "message", "details"}


def is_error_body(body: object) -> bool:
    """Whether `body` is exactly the error shape (no other member at either level)."""
    if not isinstance(body, dict) or set(body) != {"error"} or not isinstance(body["error"], dict):
        return False
    error = body["error"]
    if not REQUIRED <= set(error) <= REQUIRED | {"path"}:
        return False
    return "path" not in error or (isinstance(error["path"], str) and bool(error["path"]))
