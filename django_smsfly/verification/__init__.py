"""One-time codes: send a code to a number, check what the user types, and keep bots
from running up the bill.

::

    from django_smsfly.verification import Throttled, check_code, send_code

    try:
        send_code(phone, purpose="login", request=request)
    except Throttled as exc:
        ...  # "try again in exc.retry_after seconds"
    except SmsFlyValidationError:
        ...  # not a mobile number, or a country codes are not sent to

    if check_code(phone, typed, purpose="login"):
        ...  # the number is the user's

The modules:

- :mod:`~django_smsfly.verification.flow`: :func:`send_code` and :func:`check_code`.
- :mod:`~django_smsfly.verification.limits`: the limits, :class:`Throttled`, and the
  counters every process shares (a shared cache, else the database).
- :mod:`~django_smsfly.verification.codes`: drawing codes, their keyed hash, comparing.
- :mod:`~django_smsfly.verification.clientip`: the client's address (proxy-aware only
  when told to be).
- :mod:`~django_smsfly.verification.texts`: the text and the site's name in it.
- :mod:`~django_smsfly.verification.config`: ``SMSFLY["VERIFICATION"]``, typed.
- :mod:`~django_smsfly.verification.report`: the fraud guard's numbers.
- :mod:`~django_smsfly.verification.retention`: deleting old rows.

The threats and every setting are described in the "One-time codes" page of the
documentation (docs/verification.rst).
"""

from __future__ import annotations

from django_smsfly.verification.flow import check_code, send_code
from django_smsfly.verification.limits import Throttled
from django_smsfly.verification.retention import (
    count_old_verifications,
    delete_old_verifications,
)

__all__ = [
    "Throttled",
    "check_code",
    "count_old_verifications",
    "delete_old_verifications",
    "send_code",
]
