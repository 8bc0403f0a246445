"""The campaigns' one error: a file or options that cannot make a campaign."""

from __future__ import annotations

from django_smsfly.exceptions import SmsFlyError


class CampaignError(SmsFlyError):
    """The file or the options cannot be used for a campaign; the text says why (and
    names the line for a malformed row). Raised before anything is sent."""

    default_code = "CAMPAIGN"
