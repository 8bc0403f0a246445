"""What every write of the delivery core shares.

History rows, signals scheduled for after the commit, text made storable, the limits
of the numeric columns, and :func:`store_outcome`, which keeps retrying the write of a
send's outcome on a fresh database connection: that write is the only record of what
SMS-fly did with a message, so losing it to a dropped connection is not an option.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import (
    InterfaceError,
    OperationalError,
    connection,
    connections,
    router,
    transaction,
)
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field, Model
from django.utils import timezone

from django_smsfly import signals
from django_smsfly.channels import Channel
from django_smsfly.conf import smsfly_settings
from django_smsfly.models import Campaign, ChannelStatus, Message, StatusChange
from django_smsfly.results import ChannelResult
from django_smsfly.statuses import DeliveryStatus

logger = logging.getLogger("django_smsfly")

#: A channel's move: (channel, old status, new status).
Transition = tuple[Channel, DeliveryStatus, DeliveryStatus]

#: The error recorded on a message whose worker died while sending it.
WORKER_LOST = "WORKER_LOST"
#: The error recorded on a message whose reply held a value the database cannot store.
UNSTORABLE_REPLY = "UNSTORABLE_REPLY"

#: The length of ``Message.message_id``.
MESSAGE_ID_LENGTH = 64
#: The largest amount the cost columns hold (``max_digits=12, decimal_places=4``).
MAX_COST = Decimal("99999999.9999")

#: How often the write of a send's outcome is tried before it is given up (and logged).
OUTCOME_WRITE_ATTEMPTS = 6
#: Seconds before the first new try; doubled for each further one (0.25 ... 4 s: about
#: eight seconds in all, enough for a PostgreSQL restart or a failover to finish).
OUTCOME_WRITE_BACKOFF = 0.25


def db_text(text: str, limit: int | None = None) -> str:
    """Server-provided text made storable: no NUL characters (PostgreSQL refuses them),
    cut to the column's length."""
    text = text.replace("\x00", "")
    return text[:limit] if limit is not None else text


def charged_cost(rows: Iterable[ChannelStatus], current: Decimal | None) -> Decimal | None:
    """What a message costs the account: its channels' prices, less those refunded (a
    Viber-then-SMS message delivered over Viber is charged the Viber price only).
    ``current`` when no channel carries a price."""
    priced = [(row.cost, row.status) for row in rows if row.cost is not None]
    if not priced:
        return current
    refunded = DeliveryStatus.REFUNDED.value
    return sum((cost for cost, status in priced if status != refunded), Decimal(0))


def storable_cost(value: Decimal | None) -> Decimal | None:
    """``value`` if the cost columns can hold it; ``None`` for an absurd or broken one."""
    if value is None:
        return None
    try:
        if not value.is_finite() or abs(value) > MAX_COST:
            return None
        return value.quantize(Decimal("0.0001"))
    except (InvalidOperation, ArithmeticError):
        return None


def message_id_problem(message_id: str) -> str | None:
    """Why ``message_id`` cannot be stored as a message id, or ``None`` when it can.

    Blank, too long, or with NUL characters. (One already used by another message is
    found by the unique constraint when it is written: no query on the hot path.)
    """
    if not message_id.strip():
        return "the message id is blank"
    if "\x00" in message_id:
        return "the message id contains NUL characters"
    if len(message_id) > MESSAGE_ID_LENGTH:
        return f"the message id is longer than {MESSAGE_ID_LENGTH} characters"
    return None


def duplicate_id_problem(message_id: str, own_pk: int) -> str:
    """The error text for a message id that another message already has."""
    other = Message.objects.filter(message_id=message_id).exclude(pk=own_pk).first()
    owner = f"message {other.pk}" if other is not None else "another message"
    return f"the message id already belongs to {owner}"


def shown_id(message_id: str) -> str:
    """A message id from a reply, safe to put in an error text (short, printable)."""
    return repr(db_text(message_id)[:80])


def history(
    message: Message | int,
    channel: Channel | None,
    old: DeliveryStatus,
    new: DeliveryStatus,
    *,
    raw: str = "",
    date: dt.datetime | None = None,
) -> StatusChange:
    """One history row: a channel's move, or (``channel=None``) the message's own."""
    return StatusChange(
        message_id=message if isinstance(message, int) else message.pk,
        channel=channel.value if channel is not None else "",
        old_status=old.value,
        new_status=new.value,
        raw_status=db_text(raw, 32),
        status_date=date,
    )


def channel_history(
    message: Message, channel: Channel, old: DeliveryStatus, new: DeliveryStatus, reported: object
) -> StatusChange:
    """The history row of a channel moved by a reply (``reported``: its ChannelResult)."""
    result = reported if isinstance(reported, ChannelResult) else None
    return history(
        message,
        channel,
        old,
        new,
        raw=result.raw_status if result else "",
        date=result.date if result else None,
    )


def on_commit_signal(signal: object, message: Message, **kwargs: object) -> None:
    """Send ``signal`` (robustly: a failing receiver is logged) once the transaction commits."""
    transaction.on_commit(
        functools.partial(signal.send_robust, Message, message=message, **kwargs)  # type: ignore[attr-defined]
    )


def signal_transitions(message: Message, transitions: Iterable[Transition]) -> None:
    """Schedule ``status_changed`` for each transition, after the transaction commits."""
    for channel, old, new in transitions:
        on_commit_signal(
            signals.status_changed, message, channel=channel, old_status=old, new_status=new
        )


def all_final(rows: Iterable[ChannelStatus]) -> bool:
    """Whether every channel row has a final status (nothing left to poll)."""
    return all(DeliveryStatus(row.status).is_final for row in rows)


def unsettle(campaign_pks: Iterable[int | None]) -> None:
    """Count these campaigns from their messages again: one of their final messages is
    about to change (call it in the transaction that changes it).

    Moving ``updated_at`` too keeps a settling that counted before the change from
    storing its counts (see :mod:`django_smsfly.campaigns.outcomes`).
    """
    pks = {pk for pk in campaign_pks if pk is not None}
    if pks:
        Campaign.objects.filter(pk__in=pks).update(settled_at=None, updated_at=timezone.now())


def send_lease() -> dt.timedelta:
    """How long a send's claim holds (``SEND_LEASE``); a dead worker's message waits that long."""
    return dt.timedelta(seconds=smsfly_settings.SEND_LEASE)


def queued_grace() -> dt.timedelta:
    """How long a freshly queued message is left to its task (``QUEUED_GRACE``)."""
    return dt.timedelta(seconds=smsfly_settings.QUEUED_GRACE)


# -- the statements of a send's outcome --------------------------------------------------
#
# Every send writes its outcome with the same three statements: the compare-and-set
# UPDATE on the claim token, and the INSERTs of its channel rows and its history. Built
# by the ORM (a queryset, its compiler and, on PostgreSQL, bulk_create's UNNEST arrays,
# rebuilt on every send) they took more of the client's CPU than the database took to
# run them: about 1.1 ms a send on the benchmark machine (docs/performance.rst). Here
# they are plain SQL, built once per shape from the models' own metadata, their values
# prepared by each field's ``get_db_prep_save`` (as the ORM does), run on the connection
# the ORM would use. The same statements in the same transaction; no model signals
# either way (``bulk_create`` and ``QuerySet.update`` send none).

_statements: dict[tuple[object, ...], str] = {}


def _writer(model: type[Model]) -> BaseDatabaseWrapper:
    return connections[router.db_for_write(model)]


def _inserted_fields(model: type[Model]) -> list[Field[Any, Any]]:
    """The columns an INSERT of ``model`` writes: all but the automatic primary key."""
    return [
        field
        for field in model._meta.local_concrete_fields
        if not field.primary_key and not getattr(field, "generated", False)
    ]


def insert_rows(objs: Sequence[Model]) -> None:
    """INSERT new, unsaved instances of one model in one statement.

    What ``bulk_create`` writes (``auto_now`` fields included), without reading the new
    primary keys back: nothing on the send path uses them. A value the database must
    compute (an expression, a ``db_default``) is left to ``bulk_create``.
    """
    if not objs:
        return
    model = type(objs[0])
    db = _writer(model)
    fields = _inserted_fields(model)
    values = [field.pre_save(obj, True) for obj in objs for field in fields]
    if any(hasattr(value, "resolve_expression") for value in values):
        model._default_manager.bulk_create(objs)
        return
    key = ("insert", db.vendor, model, len(objs))
    sql = _statements.get(key)
    if sql is None:
        quote = db.ops.quote_name
        row = "({})".format(", ".join(["%s"] * len(fields)))
        # Names from the model's metadata, quoted; every value is a parameter.
        sql = _statements[key] = "INSERT INTO {} ({}) VALUES {}".format(  # noqa: S608
            quote(model._meta.db_table),
            ", ".join(_column(db, field) for field in fields),
            ", ".join([row] * len(objs)),
        )
    fields_per_row = fields * len(objs)
    params = [
        field.get_db_prep_save(value, db)
        for field, value in zip(fields_per_row, values, strict=True)
    ]
    with db.cursor() as cursor:
        cursor.execute(sql, params)


def update_claimed(message_pk: int, token: str, fields: Mapping[str, Any]) -> bool:
    """Store ``fields`` on a message only while it is ``sending`` under the claim
    ``token``: the compare-and-set of every send's outcome. Whether it was stored."""
    db = _writer(Message)
    columns = [_message_field(name) for name in fields]
    key = ("claimed", db.vendor, tuple(fields))
    sql = _statements.get(key)
    if sql is None:
        quote = db.ops.quote_name
        where = ("id", "state", "claim_token")
        sql = _statements[key] = "UPDATE {} SET {} WHERE {}".format(  # noqa: S608
            quote(Message._meta.db_table),
            ", ".join(f"{_column(db, field)} = %s" for field in columns),
            " AND ".join(f"{_column(db, _message_field(name))} = %s" for name in where),
        )
    values = zip(columns, fields.values(), strict=True)
    params = [field.get_db_prep_save(value, db) for field, value in values]
    params += [message_pk, Message.State.SENDING.value, token]
    with db.cursor() as cursor:
        cursor.execute(sql, params)
        return bool(cursor.rowcount)


@functools.cache
def _message_field(name: str) -> Field[Any, Any]:
    field = Message._meta.get_field(name)
    if not isinstance(field, Field) or not field.concrete:
        raise TypeError(f"Message.{name} is not a column")
    return field


def _column(db: BaseDatabaseWrapper, field: Field[Any, Any]) -> str:
    return db.ops.quote_name(field.column or field.attname)


def store_outcome(write: Callable[[], None], *, message_pk: int, outcome: str) -> None:
    """Run ``write`` (which stores a send's outcome), again on a fresh connection if the
    database connection fails under it.

    A write that still fails after :data:`OUTCOME_WRITE_ATTEMPTS` tries is logged at
    ERROR with the message's primary key and ``outcome`` (which names the SMS-fly
    message id, never the key) so an operator can repair the row, then the error is
    raised. Inside a caller's transaction nothing can be retried: the transaction is
    lost with its connection, so the first failure is logged and raised.
    """
    for attempt in range(1, OUTCOME_WRITE_ATTEMPTS + 1):
        try:
            write()
        except (OperationalError, InterfaceError) as exc:
            if connection.in_atomic_block or attempt == OUTCOME_WRITE_ATTEMPTS:
                logger.error(
                    "Message %s: its outcome could not be stored (%s: %s). Outcome: %s. "
                    "Repair it by hand; until then smsfly_sync marks it unknown.",
                    message_pk,
                    type(exc).__name__,
                    " ".join(str(exc).split())[:300],
                    outcome,
                )
                raise
            logger.warning(
                "Message %s: storing its outcome failed (%s); trying again on a new "
                "database connection.",
                message_pk,
                type(exc).__name__,
            )
            _drop_connection()
            time.sleep(OUTCOME_WRITE_BACKOFF * 2 ** (attempt - 1))
        else:
            return


def _drop_connection() -> None:
    """Forget this thread's database connection; the next query opens a new one."""
    try:
        connection.close()
    except Exception:  # a broken connection may fail to close; it is dropped anyway
        connection.connection = None


def finite_seconds(value: float | None, cap: float) -> float:
    """``value`` as a usable delay: 0 for None/NaN/negative, at most ``cap``."""
    if value is None or not math.isfinite(value) or value < 0:
        return 0.0
    return min(value, cap)
