"""The operator's admin for SMS-fly messages.

Laid out as Django's own admin is, with the ModelAdmin apart from its list, its actions
and its pages:

- :mod:`~django_smsfly.admin.messages`: :class:`~django_smsfly.admin.messages.MessageAdmin`,
  the list's columns and search, each message's read-only record, who may do what,
  and the URLs of the pages below.
- :mod:`~django_smsfly.admin.changelist`: the list at scale (capped counts, the row
  estimate, a date drill-down by index lookups) and its channels filter.
- :mod:`~django_smsfly.admin.actions`: refresh the status now, send again (with the
  confirmation an unknown outcome needs), delete what is not on its way.
- :mod:`~django_smsfly.admin.compose`: the compose form and page (the *add* page), with
  the counter of :mod:`~django_smsfly.admin.widgets`.
- :mod:`~django_smsfly.admin.lookups`: the balances and sender names asked of SMS-fly,
  cached.
- :mod:`~django_smsfly.admin.overview`: the delivery overview and its SVG chart.
- :mod:`~django_smsfly.admin.pages`: the app's own pages drawn in the admin's frame.
- :mod:`~django_smsfly.admin.campaigns`: campaigns: the list, a new campaign (upload
  and check), its start, its live progress, pause, resume, cancel and the results file
  (pages in :mod:`~django_smsfly.admin.campaign_pages`, forms in
  :mod:`~django_smsfly.admin.campaign_forms`).
- :mod:`~django_smsfly.admin.templates`: message templates, with a live preview.
- :mod:`~django_smsfly.admin.optouts`: the opt-out list: add, import a file
  (:mod:`~django_smsfly.admin.optout_lists`), remove.
- :mod:`~django_smsfly.admin.verifications`: one-time codes, read-only (no code
  anywhere), and the fraud guard page: refusals by reason and by country per day.

The admin calls only the public verbs of :mod:`django_smsfly.services` and writes no
message rows itself. Django's admin autodiscovery imports this package, which
registers the model admins on the default site. A site without ``django.contrib.admin``
can still import its modules (the overview's counts, say): nothing is registered then.
"""

from __future__ import annotations

from django.apps import apps
from django.contrib import admin

from django_smsfly.admin.campaigns import CampaignAdmin
from django_smsfly.admin.messages import MessageAdmin
from django_smsfly.admin.optouts import OptOutAdmin
from django_smsfly.admin.templates import MessageTemplateAdmin
from django_smsfly.admin.verifications import VerificationAdmin
from django_smsfly.models import Campaign, Message, MessageTemplate, OptOut, Verification

__all__ = ["MessageAdmin"]

if apps.is_installed("django.contrib.admin"):
    admin.site.register(Message, MessageAdmin)
    admin.site.register(Verification, VerificationAdmin)
    admin.site.register(OptOut, OptOutAdmin)
    admin.site.register(MessageTemplate, MessageTemplateAdmin)
    admin.site.register(Campaign, CampaignAdmin)
