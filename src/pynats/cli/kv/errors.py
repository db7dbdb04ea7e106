"""nats.go's words for the errors nats-py raises from its Key-Value and Object Store APIs.

natscli reports KV and object-store failures with the messages of nats.go's `jetstream`
package (`nats: bucket not found`, `nats: key not found`, `nats: object not found`, and API
errors as `nats: API error: code=400 err_code=10071 description=...`). nats-py raises its own
exception classes, several of which print as `nats: KeyNotFoundError: code=None ...`; the
`store_errors()` context manager turns them into `CliError`s carrying nats.go's text, so the
entry point prints `nats: error: <that text>` and exits 1. `kv.py` and `obj.py` share it.

Errors not listed here (connection loss, no responders, timeouts) pass through to the entry
point, which already words them as nats.go does.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pynats.cli.ui.errors import (
    JETSTREAM_NOT_ENABLED,
    STREAM_NAME_IN_USE,
    WRONG_LAST_SEQUENCE,
    CliError,
)


def api_error_text(code: int | None, err_code: int | None, description: str | None) -> str:
    """nats.go's `APIError.Error()`."""
    return f"nats: API error: code={code or 0} err_code={err_code or 0} description={description or ''}"


@contextmanager
def store_errors(bucket: str = "", *, objects: bool = False) -> Iterator[None]:
    """Translate nats-py KV / object-store exceptions raised inside the block into CliError.

    `objects` selects the object-store wording where it differs from the KV one (an invalid
    bucket name is `invalid object-store name` there).
    """
    import nats.js.errors as js_errors

    try:
        yield
    except CliError:
        raise
    except js_errors.BucketNotFoundError as exc:
        raise CliError("nats: bucket not found") from exc
    except (js_errors.KeyNotFoundError, js_errors.KeyDeletedError, js_errors.NoKeysError) as exc:
        raise CliError("nats: key not found") from exc
    except (js_errors.ObjectNotFoundError, js_errors.ObjectDeletedError) as exc:
        raise CliError("nats: object not found") from exc
    except js_errors.KeyWrongLastSequenceError as exc:
        # A failed compare-and-set comes back as a publish error, which nats.go prefixes once
        # more with `nats: ` (jetstream/publish.go wraps the API error as "nats: %w").
        text = api_error_text(400, WRONG_LAST_SEQUENCE, exc.description)
        raise CliError(f"nats: {text}") from exc
    except js_errors.InvalidKeyError as exc:
        raise CliError("nats: invalid key") from exc
    except js_errors.InvalidBucketNameError as exc:
        raise CliError(
            "nats: invalid object-store name" if objects else "nats: invalid bucket name"
        ) from exc
    except js_errors.KeyHistoryTooLargeError as exc:
        raise CliError("nats: history limited to a max of 64") from exc
    except js_errors.DigestMismatchError as exc:
        raise CliError("nats: received a corrupt object, digests do not match") from exc
    except js_errors.BadObjectMetaError as exc:
        raise CliError("nats: object-store meta information invalid") from exc
    except js_errors.LinkIsABucketError as exc:
        raise CliError("nats: invalid Get, object is a link to a bucket") from exc
    except js_errors.KeyValueLimitMarkerTTLNotSupportedError as exc:
        raise CliError("nats: limit marker TTLs not supported by server") from exc
    except js_errors.NoStreamResponseError as exc:
        raise CliError("nats: no response from stream") from exc
    except js_errors.ServiceUnavailableError as exc:
        if getattr(exc, "code", None) is None:  # nats-py's word for "no responders"
            text = api_error_text(503, JETSTREAM_NOT_ENABLED, "jetstream not enabled")
            raise CliError(text) from exc
        raise CliError(api_error_text(exc.code, exc.err_code, exc.description)) from exc
    except js_errors.APIError as exc:
        err_code = getattr(exc, "err_code", None)
        if err_code == STREAM_NAME_IN_USE and bucket:
            raise CliError(f"nats: bucket name already in use: {bucket}") from exc
        raise CliError(
            api_error_text(getattr(exc, "code", None), err_code, getattr(exc, "description", None))
        ) from exc
