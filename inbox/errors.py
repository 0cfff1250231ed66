"""The one error tree. Inside the core only these travel; library errors are translated at
the edge (``raise StoreError(...) from exc``).

    OmnideskError
    ├── ConfigError            a config or rule file is invalid (names file, line/key, fix)
    ├── ValidationError        input from outside is malformed (answered 4xx, nothing stored)
    │   ├── PayloadTooLarge    over a configured size limit (413)
    │   └── UnknownChannel     no adapter by that name
    ├── AuthError              missing or wrong credentials (401)
    │   └── Forbidden          authenticated, not allowed (403)
    ├── NotFound               no such conversation/contact/agent (404)
    ├── Conflict               a state change that does not apply (409)
    │   └── Fenced             a newer router leader took over: this one must stop writing
    ├── StoreError             the database failed; the caller must not acknowledge
    ├── QueueError             a priority-queue backend failed
    ├── BusError               an event-bus backend failed
    ├── AddressInUse           a listener's host:port is taken (at start: one line, no traceback)
    └── DeliveryError          an outbound send failed
        ├── PermanentDeliveryError   do not retry (bad address, 4xx from the provider)
        └── RecipientAway            kept for the recipient to pick up later (a chat visitor
                                     who is gone); the outbox may follow up by email
"""

from __future__ import annotations

import errno


class OmnideskError(Exception):
    """Base of every error omnidesk raises on purpose."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __reduce__(self) -> tuple[object, ...]:
        # pickled whole (keyword fields too): the SQLite writer process sends errors back
        return (_rebuild, (type(self), self.args, self.__dict__))


class ConfigError(OmnideskError):
    code = "config_error"

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        key: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.file = file
        self.line = line
        self.key = key
        self.fix = fix
        super().__init__(message, field=key)

    def __str__(self) -> str:
        where = self.file or "<config>"
        if self.line is not None:
            where += f":{self.line}"
        text = f"{where}: "
        if self.key:
            text += f"{self.key}: "
        text += self.message
        if self.fix:
            text += f" (fix: {self.fix})"
        return text


class ValidationError(OmnideskError):
    status = 400
    code = "invalid_request"


class PayloadTooLarge(ValidationError):
    status = 413
    code = "payload_too_large"


class UnknownChannel(ValidationError):
    status = 422
    code = "unknown_channel"


class AuthError(OmnideskError):
    status = 401
    code = "unauthorized"


class Forbidden(AuthError):
    status = 403
    code = "forbidden"


class NotFound(OmnideskError):
    status = 404
    code = "not_found"


class Conflict(OmnideskError):
    status = 409
    code = "conflict"


class Fenced(Conflict):
    """A newer router leader has taken over: this process must stop writing."""


class StoreError(OmnideskError):
    status = 503
    code = "store_unavailable"
    # the storage failed (disk full, I/O, read-only, connection lost), not the data:
    # /readyz reports it; an instance attribute when set, so it survives pickling
    storage: bool = False


class QueueError(OmnideskError):
    status = 503
    code = "queue_unavailable"


class BusError(OmnideskError):
    status = 503
    code = "bus_unavailable"


class AddressInUse(OmnideskError):
    code = "address_in_use"

    @classmethod
    def check(cls, exc: OSError, what: str, host: str, port: int, key: str) -> None:
        """Raise this in place of `exc` when `exc` says the address is taken."""
        if exc.errno == errno.EADDRINUSE:
            raise cls(
                f"cannot listen for {what} on {host}:{port}: the address is already in use"
                f" (another omnidesk still running? stop it, or set {key} to a free port)"
            ) from None


class DeliveryError(OmnideskError):
    code = "delivery_failed"


class PermanentDeliveryError(DeliveryError):
    code = "delivery_failed_permanently"


class RecipientAway(DeliveryError):
    """The channel holds the message for the recipient (shown when they come back) but
    could not put it in front of them now. `held_id` stands as the provider id."""

    code = "recipient_away"

    def __init__(self, message: str, *, held_id: str) -> None:
        super().__init__(message)
        self.held_id = held_id


def _rebuild(
    cls: type[OmnideskError], args: tuple[object, ...], state: dict[str, object]
) -> OmnideskError:
    err = cls.__new__(cls)
    Exception.__init__(err, *args)
    err.__dict__.update(state)
    return err
