"""Backends carry request bodies to SMS-fly (:mod:`.http`) or to a simulator (:mod:`.sandbox`)."""

from django_smsfly.backends.base import BaseBackend, RawReply

__all__ = ["BaseBackend", "RawReply"]
