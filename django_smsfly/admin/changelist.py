"""The message list at scale: counts that stay cheap, a date drill-down by index lookups.

A change list's slow parts on a large table are its counts and its date hierarchy.
Here neither reads the whole table: :class:`MessagePaginator` counts up to a limit (or,
on PostgreSQL, takes the planner's estimate), and :class:`MessageChangeList` finds the
years, months and days that have messages with ``EXISTS`` probes instead of grouping
every row. :class:`ChannelsFilter` filters the list by channels as the compose form
offers them. :class:`FoldedContains` makes the search of a message's text ignore case
in every alphabet on SQLite too.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Sequence
from functools import cached_property
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.core.paginator import Paginator
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Exists, QuerySet
from django.db.models.fields.json import KeyTransformIContains
from django.db.models.sql.compiler import SQLCompiler
from django.http import HttpRequest
from django.utils import formats, timezone
from django.utils.text import capfirst
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from django_smsfly.models import Message

# -- counting -----------------------------------------------------------------------------


class MessagePaginator(Paginator):  # type: ignore[type-arg]
    """A paginator that never counts a big table row by row.

    Rows are counted up to :attr:`count_limit`, so a count costs at most that much
    however large the table is. Without filters on PostgreSQL, a table the planner
    knows to be larger is not counted at all: its estimate (``pg_class.reltuples``)
    is shown instead, and one query decides which. :attr:`count_kind` says what the
    page shows: ``"exact"``, ``"estimate"``, or ``"more"`` (more than the limit).
    """

    #: Rows counted exactly before the list says "more than ...".
    count_limit = 10_000

    count_kind = "exact"

    @cached_property
    def count(self) -> int:
        """The number of rows, exact up to :attr:`count_limit` (see the class)."""
        rows = self.object_list
        if not isinstance(rows, QuerySet):
            return len(rows)
        counted = None
        if not rows.query.where:
            found = _estimate_or_count(rows, self.count_limit)
            if found is not None:
                kind, counted = found
                if kind == "estimate":
                    self.count_kind = "estimate"
                    return counted
        if counted is None:
            counted = rows.order_by()[: self.count_limit + 1].count()
        if counted > self.count_limit:
            self.count_kind = "more"
            return self.count_limit
        return counted


def _estimate_or_count(queryset: QuerySet[Any], limit: int) -> tuple[str, int] | None:
    """On PostgreSQL, in one query: the planner's row estimate of the whole table when
    it is above ``limit``, else the rows counted up to ``limit + 1``.

    ``("estimate", n)`` or ``("counted", n)``; ``None`` on other databases. The count
    is a subquery PostgreSQL only runs when the ``CASE`` needs it. A table never
    analysed has an estimate of -1 and is counted.
    """
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return None
    table = connection.ops.quote_name(queryset.model._meta.db_table)
    # The table's name is the model's, quoted; every value is a parameter.
    sql = (
        "SELECT c.reltuples > %s, CASE WHEN c.reltuples > %s THEN c.reltuples::bigint "  # noqa: S608
        f"ELSE (SELECT COUNT(*) FROM (SELECT 1 FROM {table} LIMIT %s) AS rows) END "
        "FROM pg_class AS c WHERE c.oid = to_regclass(%s)"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [limit, limit, limit + 1, table])
        row = cursor.fetchone()
    if row is None:
        return None
    return ("estimate" if row[0] else "counted"), int(row[1])


# -- the date drill-down ------------------------------------------------------------------


def date_hierarchy(cl: ChangeList) -> dict[str, Any]:
    """The context of ``admin/date_hierarchy.html``, found with index lookups.

    Django's own drill-down groups every listed row by year, month or day; on a large
    table that is a scan of the whole table on every page load. Here the first and
    last dates come from two ``ORDER BY ... LIMIT 1`` queries, and which years, months
    or days have messages from one query of ``EXISTS`` probes, each an index lookup.
    """
    field_name: str = cl.date_hierarchy
    label = getattr(cl.model._meta.get_field(field_name), "verbose_name", field_name)
    year_field, month_field, day_field = (f"{field_name}__{p}" for p in ("year", "month", "day"))
    year = cl.params.get(year_field)
    month = cl.params.get(month_field)
    day = cl.params.get(day_field)
    queryset = cl.queryset

    def link(filters: dict[str, Any]) -> str:
        return str(cl.get_query_string(filters, [f"{field_name}__"]))

    context: dict[str, Any] = {
        "show": True,
        "back": None,
        "choices": [],
        "field_name": label,
    }
    if not (year or month or day):
        first = queryset.order_by(field_name).values_list(field_name, flat=True).first()
        last = queryset.order_by(f"-{field_name}").values_list(field_name, flat=True).first()
        if first is None or last is None:
            return context
        if settings.USE_TZ:
            first, last = timezone.localtime(first), timezone.localtime(last)
        if first.year != last.year:
            years = [dt.date(y, 1, 1) for y in range(first.year, last.year + 1)]
            found = _probe(queryset, field_name, [(d, d.replace(year=d.year + 1)) for d in years])
            context["choices"] = [
                {"link": link({year_field: str(d.year)}), "title": str(d.year)}
                for d, ok in zip(years, found, strict=True)
                if ok
            ]
            return context
        year = str(first.year)
        if first.month == last.month:
            month = str(first.month)
    assert year is not None  # noqa: S101 - ChangeList refuses a month or day without a year
    y = int(year)
    if month and day:
        chosen = dt.date(y, int(month), int(day))
        context["back"] = {
            "link": link({year_field: year, month_field: month}),
            "title": capfirst(formats.date_format(chosen, "YEAR_MONTH_FORMAT")),
        }
        context["choices"] = [{"title": capfirst(formats.date_format(chosen, "MONTH_DAY_FORMAT"))}]
    elif month:
        m = int(month)
        days = [dt.date(y, m, d) for d in range(1, calendar.monthrange(y, m)[1] + 1)]
        one_day = dt.timedelta(days=1)
        found = _probe(queryset, field_name, [(d, d + one_day) for d in days])
        context["back"] = {"link": link({year_field: year}), "title": year}
        context["choices"] = [
            {
                "link": link({year_field: year, month_field: month, day_field: d.day}),
                "title": capfirst(formats.date_format(d, "MONTH_DAY_FORMAT")),
            }
            for d, ok in zip(days, found, strict=True)
            if ok
        ]
    else:
        months = [dt.date(y, m, 1) for m in range(1, 13)]
        found = _probe(
            queryset, field_name, [(d, (d + dt.timedelta(days=32)).replace(day=1)) for d in months]
        )
        context["back"] = {"link": link({}), "title": gettext("All dates")}
        context["choices"] = [
            {
                "link": link({year_field: year, month_field: d.month}),
                "title": capfirst(formats.date_format(d, "YEAR_MONTH_FORMAT")),
            }
            for d, ok in zip(months, found, strict=True)
            if ok
        ]
    return context


def _probe(
    queryset: QuerySet[Any], field_name: str, spans: Sequence[tuple[dt.date, dt.date]]
) -> list[bool]:
    """For each ``[start, end)`` span of local dates: does ``queryset`` have a row in it?

    One query: ``SELECT EXISTS(...), EXISTS(...) ... FROM <table> LIMIT 1``.
    """

    def moment(day: dt.date) -> dt.datetime:
        midnight = dt.datetime(day.year, day.month, day.day)
        return timezone.make_aware(midnight) if settings.USE_TZ else midnight

    probes = {
        f"smsfly_span_{n}": Exists(
            queryset.filter(
                **{f"{field_name}__gte": moment(start), f"{field_name}__lt": moment(end)}
            )
        )
        for n, (start, end) in enumerate(spans)
    }
    base = queryset.model._default_manager.db_manager(queryset.db).order_by()
    row = base.annotate(**probes).values_list(*probes)[:1]
    found = next(iter(row), None)
    return [bool(value) for value in found] if found else [False] * len(spans)


# -- the list -----------------------------------------------------------------------------


class MessageChangeList(ChangeList):
    """The message list, with a date hierarchy that does not scan the table."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        if getattr(self.paginator, "count_kind", "exact") != "exact":
            # The search box would print the capped or estimated count as the number of
            # results; the footer says what the count is instead.
            self.full_result_count = self.result_count

    @cached_property
    def smsfly_date_hierarchy(self) -> dict[str, Any]:
        """The date hierarchy's context (see :func:`date_hierarchy`)."""
        return date_hierarchy(self)


class ChannelsFilter(admin.SimpleListFilter):
    """Filter by the channels a message was sent over, as the compose form offers them."""

    title = _("channels")
    parameter_name = "channels"

    def lookups(
        self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]
    ) -> list[tuple[str, Any]]:
        return [
            ("sms", _("SMS")),
            ("viber", _("Viber")),
            ("viber,sms", _("Viber, then SMS")),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return queryset.filter(channels=value) if value else queryset


# -- searching the text -------------------------------------------------------------------

#: The name of :class:`FoldedContains` in a query or a search field
#: (``content__sms__text__smsfly_icontains``).
SEARCH_LOOKUP = "smsfly_icontains"
#: The SQL function :class:`FoldedContains` registers on SQLite connections.
CASEFOLD_FUNCTION = "smsfly_casefold"


def _casefold(value: object) -> object:
    return value.casefold() if isinstance(value, str) else value


class FoldedContains(KeyTransformIContains):
    """``content__sms__text__smsfly_icontains``: a case-insensitive "contains" on a JSON
    key that ignores case in every alphabet, Cyrillic included, on every database.

    On PostgreSQL (and other databases) it is Django's own ``icontains``, whose
    ``UPPER()`` follows the database's locale. SQLite's ``LIKE`` ignores the case of
    ASCII letters only (``Ваше`` would not find ``ваше``), so there both sides are
    folded first with Python's :meth:`str.casefold`, registered on the connection as
    the deterministic SQL function :data:`CASEFOLD_FUNCTION`. (A folded copy of the
    text in a column would let an index serve the search; a substring search scans the
    rows either way, so the function costs no index.)
    """

    # Django's operators and patterns are found by this name; the lookup is registered
    # as SEARCH_LOOKUP.
    lookup_name = "icontains"

    def as_sqlite(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper
    ) -> tuple[str, list[Any]]:
        """``smsfly_casefold(text) LIKE <folded pattern>``, the function registered."""
        register_casefold(connection)
        lhs_sql, lhs_params = self.process_lhs(compiler, connection)
        rhs_sql, rhs_params = self.process_rhs(compiler, connection)
        # The pattern is a parameter: fold it here (its %, _ and \ escapes are unchanged).
        folded = [_casefold(value) for value in rhs_params]
        condition = self.get_rhs_op(connection, rhs_sql)
        return f"{CASEFOLD_FUNCTION}({lhs_sql}) {condition}", [*lhs_params, *folded]


def register_casefold(connection: BaseDatabaseWrapper) -> None:
    """Make :data:`CASEFOLD_FUNCTION` available on ``connection`` (SQLite), now.

    Done as the query is compiled, on the connection that will run it (opened here if
    it is not yet), so no connection can miss it; registering again only replaces it.
    """
    connection.ensure_connection()
    connection.connection.create_function(CASEFOLD_FUNCTION, 1, _casefold, deterministic=True)


# Only the message's content field knows the lookup: nothing else in the project changes.
Message._meta.get_field("content").register_lookup(FoldedContains, lookup_name=SEARCH_LOOKUP)
