"""The campaigns' background tasks, in one place for the engines' configuration.

:mod:`django_smsfly.tasks` is below the campaigns and must not import them, so their
tasks are defined here, in the campaigns package: :func:`run_campaign` (the runner) and
:func:`start_due_campaigns` (scheduled campaigns whose time has come, runners that
died). The ``sync_due`` task runs :func:`~django_smsfly.campaigns.control.start_due`
and :func:`~django_smsfly.campaigns.outcomes.settle` through
:data:`django_smsfly.tasks.SYNC_PASS_HOOKS`, where :func:`register` puts them when the
app starts.
"""

from __future__ import annotations

from django_smsfly import tasks as app_tasks
from django_smsfly.campaigns.control import start_due, start_due_campaigns
from django_smsfly.campaigns.outcomes import settle
from django_smsfly.campaigns.runner import enqueue_run, run_campaign

__all__ = ["enqueue_run", "register", "run_campaign", "start_due_campaigns"]


def register() -> None:
    """Make every ``sync_due`` pass start the campaigns that are due and keep the counts
    of those that are over (once)."""
    for hook in (start_due, settle):
        if hook not in app_tasks.SYNC_PASS_HOOKS:
            app_tasks.SYNC_PASS_HOOKS.append(hook)
