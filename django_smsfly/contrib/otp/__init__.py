"""A django-otp device that sends its codes by SMS through django-smsfly.

Add ``"django_smsfly.contrib.otp"`` to ``INSTALLED_APPS`` (after ``"django_otp"``) and
migrate: :class:`~django_smsfly.contrib.otp.models.SmsFlyDevice` is then one of
django-otp's devices (``devices_for_user``, ``match_token``, its login forms and admin).
Codes are made, sent, limited and checked by :mod:`django_smsfly.verification`.
"""
