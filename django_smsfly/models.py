"""The record of every message: what was sent, to whom, and what became of it.

State changes go through :mod:`django_smsfly.services` only; these models hold data and
answer questions about it.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from django_smsfly.channels import Channel
from django_smsfly.conf import smsfly_settings
from django_smsfly.privacy import display_recipient
from django_smsfly.statuses import DeliveryStatus


class ChannelChoices(models.TextChoices):
    """Channels, for model fields."""

    SMS = Channel.SMS.value, _("SMS")
    VIBER = Channel.VIBER.value, _("Viber")


class StatusChoices(models.TextChoices):
    """Normalized delivery statuses (:class:`~django_smsfly.statuses.DeliveryStatus`)."""

    QUEUED = DeliveryStatus.QUEUED.value, _("queued")
    ACCEPTED = DeliveryStatus.ACCEPTED.value, _("accepted")
    IN_PROGRESS = DeliveryStatus.IN_PROGRESS.value, _("in progress")
    SENT = DeliveryStatus.SENT.value, _("sent")
    DELIVERED = DeliveryStatus.DELIVERED.value, _("delivered")
    VIEWED = DeliveryStatus.VIEWED.value, _("viewed")
    UNDELIVERED = DeliveryStatus.UNDELIVERED.value, _("undelivered")
    EXPIRED = DeliveryStatus.EXPIRED.value, _("expired")
    STOPPED = DeliveryStatus.STOPPED.value, _("stopped")
    FAILED = DeliveryStatus.FAILED.value, _("failed")
    REFUNDED = DeliveryStatus.REFUNDED.value, _("refunded")


class _InFallbackOrder:
    """For a model whose ``channels`` field lists channel names in fallback order."""

    channels: str

    @property
    def channel_list(self) -> list[Channel]:
        """The channels in fallback order."""
        return [Channel(name) for name in self.channels.split(",") if name]


class _WithDeliveryStatus:
    """For a model whose ``status`` field holds a normalized delivery status."""

    status: str

    @property
    def delivery_status(self) -> DeliveryStatus:
        """:attr:`status` as a :class:`~django_smsfly.statuses.DeliveryStatus`."""
        return DeliveryStatus(self.status)


class MessageQuerySet(models.QuerySet["Message"]):
    """Queries the app runs, by name."""

    def due_for_sync(self, now: Any) -> MessageQuerySet:
        """Accepted messages whose status is not final and whose next check has come."""
        return self.filter(
            state=Message.State.ACCEPTED, next_check_at__isnull=False, next_check_at__lte=now
        )

    def pending(self) -> MessageQuerySet:
        """Messages not yet handed to SMS-fly."""
        return self.filter(state__in=[Message.State.QUEUED, Message.State.SENDING])


class Message(_InFallbackOrder, _WithDeliveryStatus, models.Model):
    """One message to one recipient over one or more channels (in fallback order).

    The row is written before SMS-fly is called and records every outcome, so nothing
    is sent without a trace and nothing is lost.
    """

    class State(models.TextChoices):
        """Where a message is in its life in this app (the delivery is :attr:`status`)."""

        #: Written, waiting to be sent (also: refused for a reason that may pass).
        QUEUED = "queued", _("queued")
        #: Claimed by one worker; the request is on its way.
        SENDING = "sending", _("sending")
        #: SMS-fly accepted it and gave it a message id.
        ACCEPTED = "accepted", _("accepted")
        #: SMS-fly refused it or it could not be sent; nothing was spent.
        FAILED = "failed", _("failed")
        #: The request may or may not have arrived; never re-sent automatically.
        UNKNOWN = "unknown", _("unknown")

    recipient = models.CharField(
        _("recipient"), max_length=20, help_text=_("International digits without +.")
    )
    #: Comma-separated, in fallback order: ``"sms"``, ``"viber"`` or ``"viber,sms"``.
    channels = models.CharField(_("channels"), max_length=32)
    #: The ``sms``/``viber`` blocks exactly as sent to SMS-fly.
    content = models.JSONField(_("content"), default=dict)
    message_id = models.CharField(
        _("SMS-fly message id"), max_length=64, unique=True, null=True, blank=True
    )
    state = models.CharField(
        _("state"), max_length=16, choices=State.choices, default=State.QUEUED
    )
    status = models.CharField(
        _("status"), max_length=16, choices=StatusChoices.choices, default=StatusChoices.QUEUED
    )
    #: The channel that delivered the message, once one did.
    delivered_via = models.CharField(
        _("delivered via"), max_length=8, choices=ChannelChoices.choices, blank=True
    )
    cost = models.DecimalField(_("cost"), max_digits=12, decimal_places=4, null=True, blank=True)
    error_code = models.CharField(_("error code"), max_length=64, blank=True)
    error_text = models.TextField(_("error text"), blank=True)
    idempotency_key = models.CharField(
        _("idempotency key"), max_length=255, unique=True, null=True, blank=True
    )
    metadata = models.JSONField(_("metadata"), default=dict, blank=True)
    #: Sent with ``sensitive=True``: :attr:`content` holds the text masked (digits and
    #: words with digits as ``•``); the real text was only ever in the request.
    sensitive = models.BooleanField(_("sensitive"), default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    #: How many times sending was attempted.
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    last_checked_at = models.DateTimeField(_("last checked"), null=True, blank=True)
    #: When the status should next be asked for; ``None`` once there is nothing to ask.
    next_check_at = models.DateTimeField(_("next check"), null=True, blank=True)
    #: For a queued message refused for a passing reason: not before this time.
    retry_at = models.DateTimeField(_("retry at"), null=True, blank=True)
    #: Which worker claimed the message (to send it or to poll its status), and until when
    #: that claim holds; a claim that ran out may be taken over.
    claim_token = models.CharField(_("claim"), max_length=32, blank=True)
    lease_until = models.DateTimeField(_("lease until"), null=True, blank=True)
    #: Not to be sent before this time (``send_*(..., send_at=...)``, or a campaign's
    #: quiet hours); ``None``: at once.
    send_at = models.DateTimeField(_("send at"), null=True, blank=True)
    #: Sent even though the number opted out (``ignore_opt_out=True``: a transactional
    #: message such as an order confirmation).
    ignore_opt_out = models.BooleanField(_("ignores opt-out"), default=False)
    #: The campaign the message belongs to, if any.
    campaign = models.ForeignKey(
        "Campaign",
        verbose_name=_("campaign"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="messages",
    )
    #: When the send request was about to leave, written (and committed) just before it.
    #: A worker that dies with the message claimed leaves it ``sending``; once its lease
    #: runs out, this tells whether the request could have reached SMS-fly (the message
    #: becomes ``unknown``) or certainly did not (it is queued again).
    request_started_at = models.DateTimeField(_("request started"), null=True, blank=True)

    objects = MessageQuerySet.as_manager()

    class Meta:
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        ordering = ("-created_at", "-id")
        indexes = [
            models.Index(fields=["state", "next_check_at"], name="smsfly_msg_due"),
            models.Index(fields=["state", "retry_at"], name="smsfly_msg_queue"),
            models.Index(fields=["recipient", "-created_at"], name="smsfly_msg_recipient"),
            models.Index(fields=["-created_at", "-id"], name="smsfly_msg_created"),
            models.Index(fields=["claim_token"], name="smsfly_msg_claim"),
            models.Index(fields=["status", "-created_at"], name="smsfly_msg_status"),
        ]

    def __str__(self) -> str:
        # Shown wherever Django names a row (the admin's checkboxes, its history):
        # masked as the lists are when MASK_RECIPIENTS is on.
        recipient = display_recipient(self.recipient)
        # The channels as people name them, in fallback order: "Viber → SMS".
        channels = " → ".join(
            str(ChannelChoices(name).label) for name in self.channels.split(",") if name
        )
        return f"{recipient} ({channels}): {self.get_status_display()}"

    @property
    def is_final(self) -> bool:
        """True when nothing about this message is expected to change on its own."""
        if self.state in (self.State.FAILED, self.State.UNKNOWN):
            return True
        return self.state == self.State.ACCEPTED and self.next_check_at is None


class ChannelStatus(_WithDeliveryStatus, models.Model):
    """The delivery status of one channel of a message."""

    message = models.ForeignKey(
        Message,
        verbose_name=_("message"),
        on_delete=models.CASCADE,
        related_name="channel_statuses",
    )
    channel = models.CharField(_("channel"), max_length=8, choices=ChannelChoices.choices)
    #: Position in the fallback order (0 first).
    position = models.PositiveSmallIntegerField(_("position"), default=0)
    status = models.CharField(
        _("status"), max_length=16, choices=StatusChoices.choices, default=StatusChoices.QUEUED
    )
    #: The status exactly as SMS-fly last sent it (kept even when unknown here).
    raw_status = models.CharField(_("raw status"), max_length=32, blank=True)
    status_date = models.DateTimeField(_("status date"), null=True, blank=True)
    cost = models.DecimalField(_("cost"), max_digits=12, decimal_places=4, null=True, blank=True)
    #: Viber: ``promotion`` or ``transaction:N``.
    label = models.CharField(_("label"), max_length=32, blank=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("channel status")
        verbose_name_plural = _("channel statuses")
        ordering = ("message", "position")
        constraints = [
            models.UniqueConstraint(
                fields=["message", "channel"], name="smsfly_channel_once_per_message"
            )
        ]

    def __str__(self) -> str:
        return f"{self.channel}: {self.get_status_display()}"


class StatusChange(models.Model):
    """One transition of a channel's (or, with an empty channel, the message's) status."""

    message = models.ForeignKey(
        Message, verbose_name=_("message"), on_delete=models.CASCADE, related_name="history"
    )
    #: Empty for a change of the message's overall status.
    channel = models.CharField(
        _("channel"), max_length=8, choices=ChannelChoices.choices, blank=True
    )
    old_status = models.CharField(_("from"), max_length=16, choices=StatusChoices.choices)
    new_status = models.CharField(_("to"), max_length=16, choices=StatusChoices.choices)
    raw_status = models.CharField(_("raw status"), max_length=32, blank=True)
    status_date = models.DateTimeField(_("status date"), null=True, blank=True)
    created_at = models.DateTimeField(_("recorded"), auto_now_add=True)

    class Meta:
        verbose_name = _("status change")
        verbose_name_plural = _("status changes")
        ordering = ("message", "created_at", "id")
        indexes = [models.Index(fields=["message", "created_at"], name="smsfly_history_msg")]

    def __str__(self) -> str:
        where = self.channel or str(_("message"))
        # The statuses' labels, so the history reads in the operator's language.
        return f"{where}: {self.get_old_status_display()} → {self.get_new_status_display()}"


class Verification(models.Model):
    """A one-time code sent to a number (:mod:`django_smsfly.verification`), or a request
    for one that a limit refused.

    The code itself is never stored: only :attr:`code_hash`, an HMAC-SHA256 of it keyed
    with the site's ``SECRET_KEY`` and bound to the number and purpose. A refused
    request has a :attr:`refusal` and no code at all; it is kept for the operator's
    fraud guard page and counts against no limit.
    """

    class Refusal(models.TextChoices):
        """Why no code was sent (empty for a code that was)."""

        #: Another code went to the number for this purpose a moment ago.
        COOLDOWN = "cooldown", _("asked again too soon")
        #: ``MAX_PER_RECIPIENT_PER_HOUR``.
        RECIPIENT = "recipient", _("too many for the number")
        #: ``MAX_PER_IP_PER_HOUR``.
        IP = "ip", _("too many from the address")
        #: ``MAX_PER_DAY``.
        DAILY = "daily", _("daily limit reached")
        #: ``DAILY_SPEND_LIMIT``.
        SPEND = "spend", _("daily spend limit reached")
        #: The number is in a country outside ``ALLOWED_REGIONS``.
        REGION = "region", _("country not allowed")

    #: International digits without +.
    recipient = models.CharField(_("recipient"), max_length=20)
    #: The number's country (ISO 3166), as phone numbers tell it.
    country = models.CharField(_("country"), max_length=2, blank=True)
    purpose = models.CharField(_("purpose"), max_length=64, default="verify")
    #: HMAC-SHA256 (hex) of the code; empty for a refused request.
    code_hash = models.CharField(_("code hash"), max_length=64, blank=True, editable=False)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    #: When the code stops working; ``None`` for a refused request.
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True)
    #: Tries of the code so far, right or wrong.
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    #: When the right code was given: a code is used once.
    verified_at = models.DateTimeField(_("verified"), null=True, blank=True)
    #: The message that carried the code (its text is kept masked there).
    message = models.ForeignKey(
        Message,
        verbose_name=_("message"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="verifications",
    )
    client_ip = models.GenericIPAddressField(_("client IP"), null=True, blank=True)
    #: What the per-address limit counts: the IPv4 address, or the IPv6 /64 network.
    client_network = models.CharField(_("client network"), max_length=49, blank=True)
    refusal = models.CharField(
        _("refused because"), max_length=16, choices=Refusal.choices, blank=True
    )
    #: The estimated cost counted against ``DAILY_SPEND_LIMIT`` (when one is set).
    cost = models.DecimalField(
        _("estimated cost"), max_digits=12, decimal_places=4, null=True, blank=True
    )

    class Meta:
        verbose_name = _("verification")
        verbose_name_plural = _("verifications")
        ordering = ("-created_at", "-id")
        indexes = [
            models.Index(
                fields=["recipient", "purpose", "-created_at"], name="smsfly_verif_lookup"
            ),
            models.Index(fields=["recipient", "created_at"], name="smsfly_verif_recipient"),
            models.Index(fields=["client_network", "created_at"], name="smsfly_verif_network"),
            models.Index(fields=["created_at"], name="smsfly_verif_created"),
        ]

    def __str__(self) -> str:
        # Masked as in lists: the admin's list shows it in its checkboxes' labels.
        return f"{self.purpose} · {display_recipient(self.recipient)}: {self.outcome_label}"

    @property
    def outcome(self) -> str:
        """``refused``, ``not_sent`` (the message failed), ``verified``, ``locked`` (no
        tries left), ``expired`` or ``waiting`` (the code can still be used)."""
        if self.refusal:
            return "refused"
        if self.verified_at is not None:
            return "verified"
        if self.message is not None and self.message.state == Message.State.FAILED:
            return "not_sent"
        if self.attempts >= smsfly_settings.VERIFICATION["MAX_ATTEMPTS"]:
            return "locked"
        if self.expires_at is None or self.expires_at <= timezone.now():
            return "expired"
        return "waiting"

    @property
    def outcome_label(self) -> str:
        """:attr:`outcome` in words, with the reason of a refusal."""
        labels = {
            "refused": _("refused: %(reason)s"),
            "not_sent": _("not sent"),
            "verified": _("verified"),
            "locked": _("no tries left"),
            "expired": _("expired"),
            "waiting": _("waiting"),
        }
        label = str(labels[self.outcome])
        if self.refusal:
            return label % {"reason": self.get_refusal_display()}
        return label


class OptOut(models.Model):
    """A number that must not be messaged: every send to it is refused before any
    request and recorded as ``failed`` with ``error_code == "OPTED_OUT"`` (unless the
    send passes ``ignore_opt_out=True``)."""

    class Source(models.TextChoices):
        """How the number came on the list."""

        #: Added by an operator in the admin (or by code).
        MANUAL = "manual", _("added by hand")
        #: Imported from a file in the admin.
        IMPORT = "import", _("imported")
        #: SMS-fly refused a send with ``ERRPHONES``: the number is on the account's stop
        #: list.
        ERRPHONES = "errphones", _("SMS-fly stop list")

    #: International digits without +.
    recipient = models.CharField(
        _("recipient"), max_length=20, unique=True, help_text=_("International digits without +.")
    )
    source = models.CharField(
        _("source"), max_length=16, choices=Source.choices, default=Source.MANUAL
    )
    note = models.CharField(_("note"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("added"), default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("added by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        verbose_name = _("opt-out")
        verbose_name_plural = _("opt-outs")
        ordering = ("-created_at", "-id")

    def __str__(self) -> str:
        return display_recipient(self.recipient)


class MessageTemplate(_InFallbackOrder, models.Model):
    """A reusable message in Django's template language, per language.

    Rows share a :attr:`name`; :attr:`language` empty is the variant used when no
    other matches. Rendering (:mod:`django_smsfly.templating`) sees only the values it
    is given, and refuses a placeholder whose value is missing or empty.
    """

    name = models.SlugField(_("name"), max_length=100)
    #: A language code (``uk``, ``en``), or empty for the default variant.
    language = models.CharField(_("language"), max_length=16, blank=True)
    #: Comma-separated, in fallback order: ``"sms"``, ``"viber"`` or ``"viber,sms"``.
    channels = models.CharField(_("channels"), max_length=32, default="sms")
    sms_text = models.TextField(_("SMS text"), blank=True)
    viber_text = models.TextField(_("Viber text"), blank=True)
    button_caption = models.CharField(_("button caption"), max_length=30, blank=True)
    button_url = models.URLField(_("button URL"), max_length=500, blank=True)
    image = models.URLField(_("image URL"), max_length=500, blank=True)
    description = models.CharField(_("description"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("message template")
        verbose_name_plural = _("message templates")
        ordering = ("name", "language")
        constraints = [
            models.UniqueConstraint(fields=["name", "language"], name="smsfly_template_once")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.language})" if self.language else self.name


class Campaign(models.Model):
    """A mailing: one message per valid row of a CSV file, sent in the background at the
    shared send rate, which operators schedule, watch, pause, resume and cancel.

    A ``smsfly_send --csv`` run is a campaign too (:attr:`origin` ``cli``). The counts
    of the file's check are kept here; what became of each message is read from its
    :class:`Message` rows (``campaign.messages``).
    """

    class Status(models.TextChoices):
        """Where a campaign is."""

        #: Uploaded and checked; nothing sent yet.
        DRAFT = "draft", _("draft")
        #: To start at :attr:`starts_at`.
        SCHEDULED = "scheduled", _("scheduled")
        #: Sending.
        RUNNING = "running", _("running")
        #: Stopped by an operator; resumes where it stopped.
        PAUSED = "paused", _("paused")
        #: Every row was handled.
        FINISHED = "finished", _("finished")
        #: Stopped for good: the rows not sent are left unsent.
        CANCELLED = "cancelled", _("cancelled")
        #: Stopped by a fault every row would meet (the key, the money); see :attr:`error`.
        STOPPED = "stopped", _("stopped")

    class Origin(models.TextChoices):
        """Where the campaign was started."""

        ADMIN = "admin", _("admin")
        CLI = "cli", _("command line")

    name = models.CharField(_("name"), max_length=200)
    origin = models.CharField(
        _("origin"), max_length=8, choices=Origin.choices, default=Origin.ADMIN
    )
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.DRAFT
    )
    #: The uploaded file (admin campaigns), kept in the default storage.
    file = models.FileField(_("file"), upload_to="smsfly/campaigns/%Y/%m/", blank=True)
    #: The file's name as the operator gave it, or a command-line run's path.
    source_name = models.CharField(_("source file"), max_length=500, blank=True)
    #: The template its texts come from, or ``None`` for the texts below.
    template = models.ForeignKey(
        MessageTemplate,
        verbose_name=_("template"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="campaigns",
    )
    #: The template's language variant to use (empty: the default one).
    language = models.CharField(_("language"), max_length=16, blank=True)
    #: Without a template: the texts, with {column} placeholders.
    channels = models.CharField(_("channels"), max_length=32, blank=True)
    sms_text = models.TextField(_("SMS text"), blank=True)
    viber_text = models.TextField(_("Viber text"), blank=True)
    button_caption = models.CharField(_("button caption"), max_length=30, blank=True)
    button_url = models.URLField(_("button URL"), max_length=500, blank=True)
    image = models.URLField(_("image URL"), max_length=500, blank=True)
    sms_source = models.CharField(_("SMS sender"), max_length=32, blank=True)
    viber_source = models.CharField(_("Viber sender"), max_length=32, blank=True)
    #: The file's check: rows, and what they came to.
    rows_total = models.PositiveIntegerField(_("rows"), default=0)
    rows_valid = models.PositiveIntegerField(_("valid rows"), default=0)
    rows_invalid = models.PositiveIntegerField(_("invalid rows"), default=0)
    rows_opted_out = models.PositiveIntegerField(_("opted-out rows"), default=0)
    rows_duplicate = models.PositiveIntegerField(_("duplicate rows"), default=0)
    #: SMS parts and estimated cost of the valid rows.
    parts_total = models.PositiveIntegerField(_("SMS parts"), default=0)
    cost_estimate = models.DecimalField(
        _("estimated cost"), max_digits=14, decimal_places=4, null=True, blank=True
    )
    #: The check's details: the first problems (line, reason), the first messages as
    #: they will go out.
    report = models.JSONField(_("check report"), default=dict, blank=True)
    #: Rows the sending has gone through so far (the progress cursor).
    rows_done = models.PositiveIntegerField(_("rows done"), default=0)
    starts_at = models.DateTimeField(_("starts at"), null=True, blank=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    #: Why it stopped, when it stopped on its own.
    error = models.TextField(_("error"), blank=True)
    #: Its outcome counts once nothing changes them on their own (finished or
    #: cancelled, every message final), kept so that the campaign list need not count
    #: its messages again; ``None`` while they may change. An operator's repair of one
    #: of its messages, or the deletion of old messages, clears it. See
    #: :mod:`django_smsfly.campaigns.outcomes`.
    settled_at = models.DateTimeField(_("counts settled"), null=True, blank=True, editable=False)
    settled_handled = models.PositiveIntegerField(_("messages handled"), default=0, editable=False)
    settled_delivered = models.PositiveIntegerField(
        _("messages delivered"), default=0, editable=False
    )
    settled_failed = models.PositiveIntegerField(_("messages failed"), default=0, editable=False)
    settled_spend = models.DecimalField(
        _("spend"), max_digits=14, decimal_places=4, null=True, blank=True, editable=False
    )
    #: The runner that holds the campaign, and until when (a runner that died is
    #: replaced once its lease runs out).
    claim_token = models.CharField(_("claim"), max_length=32, blank=True)
    lease_until = models.DateTimeField(_("lease until"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        ordering = ("-created_at", "-id")
        indexes = [models.Index(fields=["status", "starts_at"], name="smsfly_campaign_due")]

    def __str__(self) -> str:
        return self.name
