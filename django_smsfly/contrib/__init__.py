"""Integrations with other Django apps, each in its own module or app.

``django_smsfly.contrib.two_factor``
    A gateway for django-two-factor-auth (``TWO_FACTOR_SMS_GATEWAY``), and its login and
    setup views that show a code that could not be sent as a form error.
``django_smsfly.contrib.otp``
    A django-otp device (an app of its own: add it to ``INSTALLED_APPS``) whose codes are
    sent and checked by :mod:`django_smsfly.verification`.

These sit on top of the app: they use its public verbs (:mod:`django_smsfly.services`,
:mod:`django_smsfly.verification`) and nothing in the app imports them. Each needs its
own package installed (``pip install django-two-factor-auth`` / ``django-otp``).
"""
