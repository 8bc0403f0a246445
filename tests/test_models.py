"""Models: migrations are complete, and the model helpers answer correctly."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from django_smsfly.channels import Channel
from django_smsfly.models import Message


@pytest.mark.django_db
def test_every_model_change_has_a_migration() -> None:
    out = StringIO()
    try:
        call_command("makemigrations", "django_smsfly", check=True, dry_run=True, stdout=out)
    except SystemExit:  # pragma: no cover - the failure this test exists for
        pytest.fail(f"Model changes without a migration:\n{out.getvalue()}")


def test_channel_list_keeps_the_fallback_order() -> None:
    assert Message(channels="viber,sms").channel_list == [Channel.VIBER, Channel.SMS]
    assert Message(channels="sms").channel_list == [Channel.SMS]


def test_str_names_recipient_channels_and_status() -> None:
    assert str(Message(recipient="380501234567", channels="sms")) == ("380501234567 (SMS): queued")
    fallback = Message(recipient="380501234567", channels="viber,sms")
    assert str(fallback) == "380501234567 (Viber → SMS): queued"
