"""A small Django site that uses django-smsfly (see ``settings.py``)."""
