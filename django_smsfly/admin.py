"""The operator's admin: the message list, each message's record, sending and actions.

- The list shows every message with a coloured status badge, filters, a search that
  finds a number however it is written, the balances and a link to the delivery
  overview. It stays as fast with millions of rows as with a thousand: no full
  ``COUNT(*)`` (:class:`MessagePaginator`), a date hierarchy that probes an index
  instead of grouping the whole table (:class:`MessageChangeList`), and related rows
  fetched in the same query.
- A message's page is a read-only record (a sent message is not a draft) with its
  channels, history, cost, error and metadata, and buttons to refresh its status or
  send it again.
- The "add" page is the compose form (:mod:`django_smsfly.forms`).
- Actions are POST-only, CSRF-protected and checked against permissions: refreshing a
  status needs the *change* permission, sending (and sending again) the *add*
  permission, the overview the *view* permission.
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
from collections.abc import Callable, Iterable, Sequence
from functools import cached_property
from typing import Any, ClassVar, cast

import django
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.actions import delete_selected as django_delete_selected
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth import get_permission_codename
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import connections, transaction
from django.db.models import Exists, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.text import capfirst
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from django_smsfly import admin_data, overview, services
from django_smsfly.conf import smsfly_settings
from django_smsfly.exceptions import SmsFlyValidationError
from django_smsfly.forms import ComposeForm, segment_rules
from django_smsfly.models import ChannelChoices, ChannelStatus, Message, StatusChange
from django_smsfly.privacy import display_recipient
from django_smsfly.services import SyncReport
from django_smsfly.statuses import DeliveryStatus
from django_smsfly.validation import normalize_recipient

#: The most messages one action acts on at once. Each is a request to SMS-fly made
#: while the operator waits; the background sync looks after the rest.
ACTION_LIMIT = 100
#: States a message can be sent again from.
RESENDABLE = (Message.State.FAILED, Message.State.UNKNOWN)
#: States of a message a worker is sending (or about to): not to be deleted.
IN_FLIGHT = (Message.State.QUEUED, Message.State.SENDING)

_TEMPLATES = "admin/django_smsfly/message/"


def status_kind(status: DeliveryStatus) -> str:
    """How a status reads to an operator: success, failure, neutral or pending."""
    if status.is_success:
        return "success"
    if status.is_failure:
        return "failure"
    if status is DeliveryStatus.REFUNDED:
        return "neutral"
    return "pending"


# -- the list at scale --------------------------------------------------------------------


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


# -- the record of one message ------------------------------------------------------------


class ReadOnlyInline(admin.TabularInline):  # type: ignore[type-arg]
    """An inline that shows rows and changes nothing."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ChannelStatusInline(ReadOnlyInline):
    """The message's channels, in fallback order."""

    model = ChannelStatus
    fields = ("channel", "status_badge", "raw_status", "status_date", "cost", "label")
    readonly_fields = fields
    ordering = ("position",)

    @admin.display(description=_("status"))
    def status_badge(self, obj: ChannelStatus) -> str:
        """The channel's status as a coloured badge."""
        return _badge(obj.delivery_status, obj.get_status_display())


class StatusChangeInline(ReadOnlyInline):
    """Every recorded transition."""

    model = StatusChange
    fields = ("created_at", "channel", "old_status", "new_status", "raw_status", "status_date")
    readonly_fields = fields
    ordering = ("created_at", "id")
    verbose_name_plural = _("history")


def _badge(status: DeliveryStatus, label: str) -> str:
    # format_html escapes the label; the kind is one of four fixed words.
    return format_html(
        '<span class="smsfly-badge smsfly-badge-{}">{}</span>', status_kind(status), label
    )


def _json_block(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True, default=str)
    return format_html('<pre class="smsfly-json">{}</pre>', text)


# -- the admin ----------------------------------------------------------------------------


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Messages: list, search, compose, a read-only page per message, and actions."""

    list_display = (
        "recipient_display",
        "channels_display",
        "status_badge",
        "state",
        "cost",
        "created_at",
        "created_by",
    )
    list_filter = ("status", ChannelsFilter, "state", "created_at")
    search_fields = ("recipient", "=message_id", "content__sms__text", "content__viber__text")
    search_help_text = _(
        "Finds a recipient however the number is written, an SMS-fly message id, or words "
        "of the text."
    )
    date_hierarchy = "created_at"
    list_select_related = ("created_by",)
    paginator = MessagePaginator
    # Counting a large table on every page load is the slow part of a changelist; so are
    # facet counts.
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    actions = ("refresh_statuses", "resend_messages", "delete_selected")
    inlines = (ChannelStatusInline, StatusChangeInline)
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "recipient",
                    "channels_display",
                    "status_badge",
                    "state",
                    "delivered_via",
                )
            },
        ),
        (_("SMS-fly"), {"fields": ("message_id", "cost", "attempts", "sent_at")}),
        (_("Error"), {"fields": ("error_code", "error_text")}),
        (_("Content"), {"fields": ("content_display", "metadata_display", "idempotency_key")}),
        (
            _("Timing"),
            {
                "fields": (
                    "created_at",
                    "created_by",
                    "updated_at",
                    "last_checked_at",
                    "next_check_at",
                    "retry_at",
                ),
                "classes": ("collapse",),
            },
        ),
    )

    class Media:
        css: ClassVar[dict[str, tuple[str, ...]]] = {"all": ("django_smsfly/admin.css",)}

    # -- permissions ------------------------------------------------------------------

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A message is a record: nothing on its page can be edited. (The real change
        # permission lets an operator refresh statuses: has_refresh_permission.)
        return False

    def has_refresh_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """May ask SMS-fly for statuses now: the model's *change* permission."""
        codename = get_permission_codename("change", self.opts)
        return bool(request.user.has_perm(f"{self.opts.app_label}.{codename}"))

    def has_resend_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """May send a message again: the same *add* permission that sending needs."""
        return self.has_add_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A message on its way is a worker's to finish: deleting it would leave a send
        # with no record of its outcome.
        if obj is not None and obj.state in IN_FLIGHT:
            return False
        return super().has_delete_permission(request, obj)

    @admin.action(description=_("Delete selected %(verbose_name_plural)s"), permissions=["delete"])
    def delete_selected(
        self, request: HttpRequest, queryset: QuerySet[Message]
    ) -> TemplateResponse | None:
        """Django's "delete selected", leaving out messages still on their way.

        Named as Django's own so that it takes its place, confirmation page included.
        """
        in_flight = queryset.filter(state__in=IN_FLIGHT).count()
        if in_flight:
            text = ngettext(
                "%(count)d message is on its way to SMS-fly and was left out; it can be "
                "deleted once it is sent.",
                "%(count)d messages are on their way to SMS-fly and were left out; they can "
                "be deleted once they are sent.",
                in_flight,
            ) % {"count": in_flight}
            self.message_user(request, text, messages.WARNING)
        finished = queryset.exclude(state__in=IN_FLIGHT)
        if not finished.exists():
            return None
        response: TemplateResponse | None = django_delete_selected(self, request, finished)
        return response

    # -- the list ---------------------------------------------------------------------

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return MessageChangeList

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Message], search_term: str
    ) -> tuple[QuerySet[Message], bool]:
        """Also find a recipient by any written form of the number (``050 123 4567``)."""
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        try:
            number = normalize_recipient(search_term, smsfly_settings.DEFAULT_REGION)
        except SmsFlyValidationError:
            return results, may_have_duplicates
        return results | queryset.filter(recipient=number), may_have_duplicates

    @transaction.non_atomic_requests
    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        context = {
            # A callable: the template asks SMS-fly (through the cache) only when the
            # page is drawn, not when an action's POST is answered with a redirect.
            "smsfly_balance": admin_data.balance_panel,
            **(extra_context or {}),
        }
        return super().changelist_view(request, context)

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, obj: Message) -> str:
        """The delivery status as a coloured badge."""
        return _badge(obj.delivery_status, obj.get_status_display())

    @admin.display(description=_("recipient"), ordering="recipient")
    def recipient_display(self, obj: Message) -> str:
        """The number, masked in lists when ``SMSFLY["MASK_RECIPIENTS"]`` is on."""
        return display_recipient(obj.recipient)

    @admin.display(description=_("channels"), ordering="channels")
    def channels_display(self, obj: Message) -> str:
        """The channels in fallback order: ``Viber → SMS``."""
        return " → ".join(str(ChannelChoices(c.value).label) for c in obj.channel_list)

    # -- the record -------------------------------------------------------------------

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        """Every field: a message is a record."""
        return [
            str(name) for _title, options in self.fieldsets or () for name in options["fields"]
        ]

    @admin.display(description=_("content"))
    def content_display(self, obj: Message) -> str:
        """The ``sms``/``viber`` blocks as sent, readable (and escaped)."""
        return _json_block(obj.content)

    @admin.display(description=_("metadata"))
    def metadata_display(self, obj: Message) -> str:
        """The sender's own metadata, readable (and escaped)."""
        return _json_block(obj.metadata)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        context = {
            "smsfly_can_refresh": self.has_refresh_permission(request),
            "smsfly_can_resend": self.has_resend_permission(request),
            **(extra_context or {}),
        }
        return super().change_view(request, object_id, form_url, context)

    # -- URLs ---------------------------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"

        def wrap(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
            # Login, staff check and CSRF protection, as for the admin's own views.
            return self.admin_site.admin_view(view)

        # Before the ModelAdmin's own: its "<path:object_id>/" would catch them.
        ours = [
            path("overview/", wrap(self.overview_view), name=f"{prefix}_overview"),
            path(
                "<path:object_id>/refresh/",
                wrap(self.refresh_view),
                name=f"{prefix}_refresh",
            ),
            path(
                "<path:object_id>/resend/",
                wrap(self.resend_view),
                name=f"{prefix}_resend",
            ),
        ]
        return ours + super().get_urls()

    def _message(self, request: HttpRequest, object_id: str) -> Message:
        message: Message | None = self.get_object(request, unquote(object_id))
        if message is None or not self.has_view_permission(request, message):
            raise Http404(gettext("No such message."))
        return message

    def _change_url(self, message: Message) -> str:
        return reverse(
            f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_change",
            args=[message.pk],
        )

    def _page(self, request: HttpRequest, template: str, **context: Any) -> TemplateResponse:
        return TemplateResponse(
            request,
            _TEMPLATES + template,
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "app_label": self.opts.app_label,
                "media": self.media,
                # Django 6 draws breadcrumbs as an ordered list; earlier versions as a line.
                "smsfly_breadcrumbs_list": django.VERSION >= (6, 0),
                **context,
            },
        )

    # -- compose ------------------------------------------------------------------------

    @transaction.non_atomic_requests
    def add_view(
        self,
        request: HttpRequest,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        """The compose page: a message to send, not a raw model form."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        names = admin_data.sender_names()
        estimate = None
        if request.method == "POST":
            form = ComposeForm(request.POST, sender_names=names)
            if form.is_valid():
                if "_estimate" in request.POST:
                    estimate = form.estimate()
                else:
                    message = form.send(created_by=request.user)
                    self._report_send(request, message)
                    return redirect(self._change_url(message))
        else:
            form = ComposeForm(sender_names=names)
        # The admin's form helpers take any form with fieldsets; their stubs say ModelForm.
        any_form = cast(Any, form)
        adminform = helpers.AdminForm(any_form, cast(Any, form.fieldsets), {}, model_admin=self)
        return self._page(
            request,
            "compose.html",
            title=gettext("Send a message"),
            adminform=adminform,
            form=form,
            errors=helpers.AdminErrorList(any_form, []),
            media=self.media + form.media,
            sender_names=names,
            estimate=estimate,
            segment_rules=segment_rules(),
            **(extra_context or {}),
        )

    def _report_send(self, request: HttpRequest, message: Message, *, again: bool = False) -> None:
        """Tell the operator what became of one message just sent (or sent again)."""
        values = {"recipient": message.recipient, "error": _error_of(message)}
        state = message.state
        if state == Message.State.ACCEPTED:
            text = (
                gettext("The message to %(recipient)s was sent again and SMS-fly accepted it.")
                if again
                else gettext("The message to %(recipient)s was accepted by SMS-fly.")
            )
            self.message_user(request, text % values, messages.SUCCESS)
        elif state == Message.State.QUEUED and message.retry_at is not None:
            text = gettext(
                "SMS-fly could not take the message to %(recipient)s just now (%(error)s); "
                "it will be tried again automatically."
            )
            self.message_user(request, text % values, messages.WARNING)
        elif state in (Message.State.QUEUED, Message.State.SENDING):
            text = gettext(
                "The message to %(recipient)s is queued and will be sent in the background."
            )
            self.message_user(request, text % values, messages.SUCCESS)
        elif state == Message.State.FAILED:
            text = gettext("SMS-fly refused the message to %(recipient)s: %(error)s")
            self.message_user(request, text % values, messages.ERROR)
        else:
            text = gettext(
                "It is not known whether SMS-fly received the message to %(recipient)s "
                "(%(error)s). Check its status before sending it again."
            )
            self.message_user(request, text % values, messages.WARNING)

    # -- refresh ------------------------------------------------------------------------

    @admin.action(description=_("Refresh the status now"), permissions=["refresh"])
    def refresh_statuses(self, request: HttpRequest, queryset: QuerySet[Message]) -> None:
        """Ask SMS-fly now for the status of the selected messages."""
        selected = queryset.count()
        pks = list(
            queryset.filter(state=Message.State.ACCEPTED, message_id__isnull=False)
            .order_by("pk")
            .values_list("pk", flat=True)[: ACTION_LIMIT + 1]
        )
        if len(pks) > ACTION_LIMIT:
            self._refuse_too_many(request)
            return
        self._refresh(request, pks, selected=selected)

    @transaction.non_atomic_requests
    def refresh_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The message page's "refresh status now" button (POST only)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        message = self._message(request, object_id)
        if not self.has_refresh_permission(request, message):
            raise PermissionDenied
        pks = (
            [message.pk] if message.state == Message.State.ACCEPTED and message.message_id else []
        )
        self._refresh(request, pks, selected=1)
        return redirect(self._change_url(message))

    def _refresh(self, request: HttpRequest, pks: list[int], *, selected: int) -> None:
        report = services.sync_statuses(message_pks=pks) if pks else SyncReport()
        if report.checked:
            text = ngettext(
                "The status of %(count)d message was checked.",
                "The status of %(count)d messages was checked.",
                report.checked,
            ) % {"count": report.checked}
            text += " " + ngettext(
                "%(count)d has changed.", "%(count)d have changed.", report.changed
            ) % {"count": report.changed}
            self.message_user(request, text, messages.SUCCESS)
        if report.errors:
            text = ngettext(
                "SMS-fly could not be asked about %(count)d message; it will be asked again "
                "later.",
                "SMS-fly could not be asked about %(count)d messages; they will be asked "
                "again later.",
                report.errors,
            ) % {"count": report.errors}
            self.message_user(request, text, messages.WARNING)
        skipped = selected - report.checked
        if skipped > 0:
            text = ngettext(
                "%(count)d message has no status to check: SMS-fly has not accepted it.",
                "%(count)d messages have no status to check: SMS-fly has not accepted them.",
                skipped,
            ) % {"count": skipped}
            self.message_user(request, text, messages.WARNING)

    def _refuse_too_many(self, request: HttpRequest) -> None:
        text = ngettext(
            "An action can act on at most %(limit)d message at once.",
            "An action can act on at most %(limit)d messages at once.",
            ACTION_LIMIT,
        ) % {"limit": ACTION_LIMIT}
        text += " " + gettext("Select fewer messages, or narrow the list with its filters.")
        self.message_user(request, text, messages.ERROR)

    # -- send again ---------------------------------------------------------------------

    @admin.action(description=_("Send again"), permissions=["resend"])
    def resend_messages(
        self, request: HttpRequest, queryset: QuerySet[Message]
    ) -> TemplateResponse | None:
        """Send the selected failed messages again; unknown ones after a confirmation."""
        selected = queryset.count()
        candidates = list(queryset.filter(state__in=RESENDABLE).order_by("pk")[: ACTION_LIMIT + 1])
        if len(candidates) > ACTION_LIMIT:
            self._refuse_too_many(request)
            return None
        confirmed = request.POST.get("confirm") == "yes"
        if not confirmed and any(m.state == Message.State.UNKNOWN for m in candidates):
            return self._confirm_resend(request, candidates, bulk=True)
        results = [
            services.resend(m.pk, allow_unknown=m.state == Message.State.UNKNOWN)
            for m in candidates
        ]
        self._report_resends(request, results, skipped=selected - len(candidates))
        return None

    @transaction.non_atomic_requests
    def resend_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The message page's "send again" button.

        A failed message is sent again on POST. A message whose outcome is unknown is
        sent again only on a POST from the confirmation page, which warns that it may
        arrive twice; a GET only ever shows that page.
        """
        message = self._message(request, object_id)
        if not self.has_resend_permission(request, message):
            raise PermissionDenied
        if message.state not in RESENDABLE:
            self._report_resends(request, [None], skipped=0)
            return redirect(self._change_url(message))
        unknown = message.state == Message.State.UNKNOWN
        confirmed = request.method == "POST" and request.POST.get("confirm") == "yes"
        if request.method != "POST" or (unknown and not confirmed):
            return self._confirm_resend(request, [message], bulk=False)
        result = services.resend(message.pk, allow_unknown=unknown)
        if result is None:
            self._report_resends(request, [None], skipped=0)
        else:
            self._report_send(request, result, again=True)
        return redirect(self._change_url(message))

    def _confirm_resend(
        self, request: HttpRequest, candidates: list[Message], *, bulk: bool
    ) -> TemplateResponse:
        unknown = [m for m in candidates if m.state == Message.State.UNKNOWN]
        return self._page(
            request,
            "resend_confirmation.html",
            title=gettext("Send again?"),
            candidates=candidates,
            # A list of several messages masks numbers as the message list does.
            rows=[
                {
                    "message": m,
                    "recipient": display_recipient(m.recipient) if bulk else m.recipient,
                }
                for m in candidates
            ],
            unknown=unknown,
            bulk=bulk,
            action_checkbox_name=helpers.ACTION_CHECKBOX_NAME,
            change_url=None if bulk else self._change_url(candidates[0]),
        )

    def _report_resends(
        self, request: HttpRequest, results: Iterable[Message | None], *, skipped: int
    ) -> None:
        """Tell the operator what became of the messages sent again, by outcome."""
        by_state: dict[str, int] = {}
        for result in results:
            key = result.state if result is not None else "not_resent"
            by_state[key] = by_state.get(key, 0) + 1

        def say(count: int, level: int, text: Callable[[int], str]) -> None:
            if count:
                self.message_user(request, text(count) % {"count": count}, level)

        say(
            by_state.get(Message.State.ACCEPTED, 0),
            messages.SUCCESS,
            lambda n: ngettext(
                "%(count)d message was sent again.", "%(count)d messages were sent again.", n
            ),
        )
        say(
            by_state.get(Message.State.QUEUED, 0) + by_state.get(Message.State.SENDING, 0),
            messages.WARNING,
            lambda n: ngettext(
                "%(count)d message is queued to be sent again.",
                "%(count)d messages are queued to be sent again.",
                n,
            ),
        )
        say(
            by_state.get(Message.State.FAILED, 0),
            messages.ERROR,
            lambda n: ngettext(
                "SMS-fly refused %(count)d message again; its page shows why.",
                "SMS-fly refused %(count)d messages again; their pages show why.",
                n,
            ),
        )
        say(
            by_state.get(Message.State.UNKNOWN, 0),
            messages.WARNING,
            lambda n: ngettext(
                "The outcome of %(count)d message is unknown again; check it before another try.",
                "The outcome of %(count)d messages is unknown again; check them before "
                "another try.",
                n,
            ),
        )
        say(
            by_state.get("not_resent", 0) + skipped,
            messages.WARNING,
            lambda n: ngettext(
                "%(count)d message was not sent again: only a failed message, or one whose "
                "outcome is unknown, can be.",
                "%(count)d messages were not sent again: only failed messages, or ones whose "
                "outcome is unknown, can be.",
                n,
            ),
        )

    # -- the delivery overview ----------------------------------------------------------

    def overview_view(self, request: HttpRequest) -> HttpResponse:
        """Messages per day for the last 30 days by outcome, as a chart and a table."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        data = overview.delivery_overview(30)
        return self._page(
            request,
            "overview.html",
            title=gettext("Delivery overview"),
            overview=data,
            # Built by render_chart from numbers, dates and translated labels, every
            # one escaped there; no stored text goes into it.
            chart=mark_safe(overview.render_chart(data)),  # noqa: S308
            days=list(reversed(data.days)),
        )


def _error_of(message: Message) -> str:
    if message.error_code and message.error_text:
        return f"{message.error_code}: {message.error_text}"
    return message.error_code or message.error_text or gettext("no details")
