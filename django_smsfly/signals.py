"""Signals django-smsfly sends, each after the database transaction commits and exactly
once per real change (a repeated or late status reply sends nothing).

``message_sent(sender=Message, message)``
    SMS-fly accepted the message (it has a ``message_id``).
``message_failed(sender=Message, message, error)``
    Sending ended without acceptance: ``message.state`` is ``failed`` (SMS-fly refused,
    nothing was spent) or ``unknown`` (the request may have arrived; not re-sent
    automatically). ``error`` is the :class:`~django_smsfly.exceptions.SmsFlyError`.
``status_changed(sender=Message, message, channel, old_status, new_status)``
    A channel's normalized status moved forward. ``channel`` is a
    :class:`~django_smsfly.channels.Channel`; the statuses are
    :class:`~django_smsfly.statuses.DeliveryStatus` members.

Signals are sent with :meth:`~django.dispatch.Signal.send_robust`: a receiver that raises
is logged by Django (logger ``django.dispatch``) and stops neither the other receivers
nor the sync, and changes nothing that was stored.

Example::

    from django.dispatch import receiver
    from django_smsfly.signals import status_changed

    @receiver(status_changed)
    def on_status(sender, message, channel, old_status, new_status, **kwargs):
        if new_status.is_success:
            Order.objects.filter(pk=message.metadata.get("order")).update(notified=True)
"""

from __future__ import annotations

from django.dispatch import Signal

message_sent = Signal()
message_failed = Signal()
status_changed = Signal()
