"""URLs of the example site: the admin, two-factor login and the demo's pages."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from django_smsfly.contrib.two_factor import urls as two_factor_urls

urlpatterns = [
    path("admin/", admin.site.urls),
    # django-two-factor-auth's pages (account/login/, account/two_factor/...), with the
    # views that show a code that could not be sent as a form error.
    path("", include(two_factor_urls)),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("demo.urls")),
]
