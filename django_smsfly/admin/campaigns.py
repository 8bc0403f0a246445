"""The Campaign admin: the list, a new campaign, its check report, its progress, its buttons.

- The list shows each campaign's status, origin, valid rows, progress and outcomes
  (delivered, failed, spend), in the list's own query
  (:func:`django_smsfly.campaigns.outcomes.with_outcomes`: read from the campaign once
  it is over and settled, counted from its messages before), so neither its query
  count nor its work grows with the campaigns of the past; the list sorts by them.
- The *add* page is the new-campaign form (:class:`.campaign_forms.NewCampaignForm`):
  the file goes to :func:`django_smsfly.campaigns.create`, which stores and checks it.
- A campaign's own page is its check report while it is a draft (with the start form
  and "Discard"), and its live progress once started (with Pause, Resume, Cancel and the
  results file). The pages themselves are :mod:`~django_smsfly.admin.campaign_pages`.

Every button is a POST (CSRF-protected): starting, pausing, resuming and cancelling need
the *change* permission, discarding a draft the *delete* permission; the pages, the
progress JSON and the results file the *view* permission. The admin calls only the
engine's verbs (:mod:`django_smsfly.campaigns`) and writes no campaign or message rows
itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
    JsonResponse,
)
from django.http.response import HttpResponseBase
from django.urls import URLPattern, reverse
from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from django_smsfly import campaigns, taskcompat
from django_smsfly.admin import lookups
from django_smsfly.admin.campaign_forms import NewCampaignForm, StartForm
from django_smsfly.admin.campaign_pages import (
    ACTIONS_BY_STATUS,
    BADGE_KINDS,
    FINAL,
    export_response,
    progress_payload,
    report_context,
    url_of,
)
from django_smsfly.admin.display import money
from django_smsfly.admin.pages import form_context, own_urls, render
from django_smsfly.campaigns.outcomes import with_outcomes
from django_smsfly.conf import smsfly_settings
from django_smsfly.models import Campaign, Message

#: Statuses whose campaign is on its way: deleting it would orphan a runner.
_UNDELETABLE = (Campaign.Status.SCHEDULED, Campaign.Status.RUNNING, Campaign.Status.PAUSED)


class CampaignFilter(admin.SimpleListFilter):
    """The message list narrowed to one campaign's messages (``?campaign=<pk>``: the
    progress page links there). Only the chosen campaign is offered, and only while one
    is chosen: a list of every campaign would grow with them."""

    title = _("campaign")
    parameter_name = "campaign"

    def _pk(self) -> int | None:
        value = self.value()
        return int(value) if value and value.isdigit() else None

    def lookups(
        self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]
    ) -> list[tuple[str, str]]:
        pk = self._pk()
        if pk is None:
            return []
        names = Campaign.objects.filter(pk=pk).values_list("name", flat=True)
        return [(str(pk), name) for name in names]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        pk = self._pk()
        return queryset if pk is None else queryset.filter(campaign_id=pk)


class CampaignAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Campaigns: list, new campaign (upload and check), start, progress, and buttons."""

    list_display = (
        "name",
        "status_badge",
        "origin",
        "created_at",
        "rows_valid_display",
        "progress_display",
        "delivered_display",
        "failed_display",
        "spend_display",
    )
    list_display_links = ("name",)
    list_filter = ("status", "origin")
    search_fields = ("name", "source_name")
    date_hierarchy = "created_at"
    show_facets = admin.ShowFacets.NEVER

    class Media:
        css: ClassVar[dict[str, tuple[str, ...]]] = {
            "all": ("django_smsfly/admin.css", "django_smsfly/campaign.css")
        }
        js = ("django_smsfly/campaign.js",)

    # -- permissions ------------------------------------------------------------------

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A campaign on its way belongs to its runner: cancel it first.
        if obj is not None and obj.status in _UNDELETABLE:
            return False
        return super().has_delete_permission(request, obj)

    # -- the list ---------------------------------------------------------------------

    def get_queryset(self, request: HttpRequest) -> QuerySet[Campaign]:
        # The outcomes are annotated here, not in the list's own queryset, because the
        # list orders its rows after it takes this one: sorting by a column needs them.
        return with_outcomes(super().get_queryset(request))

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, obj: Campaign) -> str:
        """The status as a coloured badge."""
        return format_html(
            '<span class="smsfly-badge smsfly-badge-{}">{}</span>',
            BADGE_KINDS.get(Campaign.Status(obj.status), "neutral"),
            obj.get_status_display(),
        )

    @admin.display(description=_("valid rows"), ordering="rows_valid")
    def rows_valid_display(self, obj: Campaign) -> str:
        """The rows that will be (or were) sent."""
        return formats.number_format(obj.rows_valid, force_grouping=True)

    @admin.display(description=_("progress"))
    def progress_display(self, obj: Campaign) -> str:
        """How much of the campaign is handled, in per cent."""
        if obj.status == Campaign.Status.FINISHED:
            percent = 100
        elif obj.rows_valid:
            percent = min(100, getattr(obj, "n_handled", 0) * 100 // obj.rows_valid)
        else:
            percent = 0
        return f"{percent} %"

    @admin.display(description=_("delivered"), ordering="n_delivered")
    def delivered_display(self, obj: Campaign) -> str:
        """Messages delivered."""
        return formats.number_format(getattr(obj, "n_delivered", 0), force_grouping=True)

    @admin.display(description=_("failed"), ordering="n_failed")
    def failed_display(self, obj: Campaign) -> str:
        """Messages that failed (refused, undelivered, expired, opted out, cancelled)."""
        return formats.number_format(getattr(obj, "n_failed", 0), force_grouping=True)

    @admin.display(description=_("spend"), ordering="spend")
    def spend_display(self, obj: Campaign) -> str:
        """What SMS-fly charged for the campaign's messages."""
        return money(getattr(obj, "spend", None))

    # -- URLs -------------------------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        views: dict[str, Callable[..., HttpResponseBase]] = {
            "start": self.start_view,
            "pause": self.pause_view,
            "resume": self.resume_view,
            "cancel": self.cancel_view,
            "discard": self.discard_view,
            "progress": self.progress_view,
            "export": self.export_view,
        }
        ours = own_urls(
            self, ((f"<path:object_id>/{name}/", name, view) for name, view in views.items())
        )
        return ours + super().get_urls()

    def _campaign(self, request: HttpRequest, object_id: str) -> Campaign:
        campaign: Campaign | None = self.get_object(request, unquote(object_id))
        if campaign is None or not self.has_view_permission(request, campaign):
            raise Http404(gettext("No such campaign."))
        return campaign

    def _back(self, campaign: Campaign) -> HttpResponseRedirect:
        return HttpResponseRedirect(url_of(self, "change", campaign))

    # -- a new campaign ---------------------------------------------------------------

    @transaction.non_atomic_requests
    def add_view(
        self,
        request: HttpRequest,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        """The new-campaign page: the file is stored and checked, then its report shown."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        names = lookups.sender_names()
        if request.method == "POST":
            form = NewCampaignForm(request.POST, request.FILES, sender_names=names)
            if form.is_valid():
                try:
                    campaign = campaigns.create(
                        form.cleaned_data["file"],
                        created_by=request.user,
                        **form.create_options(),
                    )
                except campaigns.CampaignError as exc:
                    form.add_error("file", str(exc))
                else:
                    self.log_addition(request, campaign, [{"added": {}}])
                    return self._back(campaign)
        else:
            form = NewCampaignForm(sender_names=names)
        return render(
            self,
            request,
            "new.html",
            title=gettext("New campaign"),
            **form_context(self, form),
            **(extra_context or {}),
        )

    # -- a campaign's page: its report (a draft) or its progress ----------------------

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        """A draft's check report and start form; a started campaign's progress."""
        if request.method != "GET":
            return HttpResponseNotAllowed(["GET"])
        campaign = self._campaign(request, object_id)
        if campaign.status == Campaign.Status.DRAFT:
            form = StartForm(campaign=campaign, user=request.user)
            return self._report_page(request, campaign, form)
        return self._progress_page(request, campaign)

    def _report_page(
        self, request: HttpRequest, campaign: Campaign, form: StartForm
    ) -> HttpResponse:
        return render(
            self,
            request,
            "report.html",
            title=campaign.name,
            campaign=campaign,
            start_form=form,
            can_start=self.has_change_permission(request, campaign),
            can_discard=self.has_delete_permission(request, campaign),
            time_zone=timezone.get_current_timezone_name(),
            # No worker behind the task backend (Django's immediate one, the default):
            # the operator must know "Send now" keeps this request busy until the end.
            runs_inline=not taskcompat.supports_defer(smsfly_settings.TASK_BACKEND),
            **report_context(campaign),
        )

    def _progress_page(self, request: HttpRequest, campaign: Campaign) -> HttpResponse:
        payload = progress_payload(campaign)
        messages_url = reverse(
            f"{self.admin_site.name}:{Message._meta.app_label}_{Message._meta.model_name}"
            "_changelist"
        )
        return render(
            self,
            request,
            "progress.html",
            title=campaign.name,
            campaign=campaign,
            payload=payload,
            display=payload["display"],
            can_change=self.has_change_permission(request, campaign),
            action_states={name: list(states) for name, states in ACTIONS_BY_STATUS.items()},
            messages_url=f"{messages_url}?{CampaignFilter.parameter_name}={campaign.pk}",
        )

    # -- the buttons ------------------------------------------------------------------

    def _changeable(self, request: HttpRequest, object_id: str) -> Campaign:
        campaign = self._campaign(request, object_id)
        if not self.has_change_permission(request, campaign):
            raise PermissionDenied
        return campaign

    @transaction.non_atomic_requests
    def start_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The report's "Send now" / "Send at" (POST only). A second POST of the same
        form (a double click, a re-POST) starts nothing and shows the progress."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        campaign = self._changeable(request, object_id)
        if campaign.status != Campaign.Status.DRAFT:
            return self._already_started(request, campaign)
        form = StartForm(request.POST, campaign=campaign, user=request.user)
        if not form.is_valid():
            return self._report_page(request, campaign, form)
        try:
            started = campaigns.start(campaign, at=form.starts_at, by=request.user)
        except campaigns.CampaignError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return self._back(campaign)
        if not started:
            return self._already_started(request, campaign)
        if form.starts_at is None:
            text = gettext("The campaign “%(name)s” has started.") % {"name": campaign.name}
        else:
            when = formats.date_format(timezone.localtime(form.starts_at), "DATETIME_FORMAT")
            text = gettext("The campaign “%(name)s” is scheduled for %(when)s.") % {
                "name": campaign.name,
                "when": when,
            }
        self.message_user(request, text, messages.SUCCESS)
        return self._back(campaign)

    def _already_started(self, request: HttpRequest, campaign: Campaign) -> HttpResponse:
        self.message_user(
            request,
            gettext("The campaign “%(name)s” was already started; here is its progress.")
            % {"name": campaign.name},
            messages.INFO,
        )
        return self._back(campaign)

    def _act(
        self,
        request: HttpRequest,
        object_id: str,
        verb: Callable[[Campaign], bool],
        done: str,
    ) -> HttpResponse:
        """Run a button's verb on the campaign and say what came of it."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        campaign = self._changeable(request, object_id)
        if verb(campaign):
            self.message_user(request, done % {"name": campaign.name}, messages.SUCCESS)
        else:
            campaign.refresh_from_db(fields=["status"])
            self.message_user(
                request,
                gettext("Nothing was changed: the campaign is %(status)s.")
                % {"status": campaign.get_status_display()},
                messages.WARNING,
            )
        return self._back(campaign)

    @transaction.non_atomic_requests
    def pause_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Pause: the runner stops after the message in hand."""
        return self._act(
            request, object_id, campaigns.pause, gettext("The campaign “%(name)s” is paused.")
        )

    @transaction.non_atomic_requests
    def resume_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Resume where it stopped."""
        return self._act(
            request, object_id, campaigns.resume, gettext("The campaign “%(name)s” goes on.")
        )

    @transaction.non_atomic_requests
    def cancel_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Cancel for good: messages not yet sent are never sent."""
        return self._act(
            request,
            object_id,
            campaigns.cancel,
            gettext("The campaign “%(name)s” is cancelled; nothing more of it will be sent."),
        )

    def discard_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The report's "Discard" (POST only): a draft and its file are deleted."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        campaign = self._campaign(request, object_id)
        if not self.has_delete_permission(request, campaign):
            raise PermissionDenied
        if campaign.status != Campaign.Status.DRAFT:
            return self._already_started(request, campaign)
        name = campaign.name
        self.log_deletions(request, Campaign.objects.filter(pk=campaign.pk))
        if campaign.file:
            campaign.file.delete(save=False)
        campaign.delete()
        self.message_user(
            request,
            gettext("The draft “%(name)s” was discarded.") % {"name": name},
            messages.SUCCESS,
        )
        return HttpResponseRedirect(url_of(self, "changelist"))

    # -- what the progress page asks for ----------------------------------------------

    def progress_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The progress as JSON (the page's script asks every two seconds)."""
        campaign = self._campaign(request, object_id)
        response = JsonResponse(progress_payload(campaign))
        response["Cache-Control"] = "no-store"
        return response

    def export_view(self, request: HttpRequest, object_id: str) -> HttpResponseBase:
        """The campaign's results as a CSV file, streamed."""
        return export_response(self._campaign(request, object_id))


__all__ = ["FINAL", "CampaignAdmin", "CampaignFilter", "with_outcomes"]
