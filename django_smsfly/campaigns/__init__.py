"""Campaigns: a mailing to the rows of a CSV file that operators check, schedule, watch,
pause, resume and cancel; ``smsfly_send --csv`` runs are campaigns too.

::

    from django_smsfly import campaigns

    campaign = campaigns.create(upload, name="June sale", sms_text="Hi {name}!")
    campaign.rows_valid, campaign.report["problems"]      # the check, row by row
    campaigns.start(campaign)                            # or start(campaign, at=...)
    campaigns.progress(campaign).as_dict()

The parts: :mod:`.checking` (create, check), :mod:`.control` (start, pause, resume,
cancel, start_due), :mod:`.runner` (the one runner, sending through
:func:`django_smsfly.mailing.run_csv`), :mod:`.progress` (progress, export) and
:mod:`.outcomes` (the list's counts, kept once a campaign is over) and :mod:`.tasks` (the
background tasks).
"""

from __future__ import annotations

from django_smsfly.campaigns.checking import check, create
from django_smsfly.campaigns.control import cancel, pause, resume, start, start_due
from django_smsfly.campaigns.errors import CampaignError
from django_smsfly.campaigns.outcomes import settle
from django_smsfly.campaigns.progress import Progress, export_rows, progress
from django_smsfly.campaigns.runner import run

__all__ = [
    "CampaignError",
    "Progress",
    "cancel",
    "check",
    "create",
    "export_rows",
    "pause",
    "progress",
    "resume",
    "run",
    "settle",
    "start",
    "start_due",
]
