"""URLs of the integration tests: the admin, two-factor (django-smsfly's views and, under
``stock/``, two-factor's own), and django-otp's admin site, whose login asks for a token."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from django_otp.admin import OTPAdminSite
from django_otp.decorators import otp_required
from two_factor import urls as stock_two_factor_urls

from django_smsfly.contrib.two_factor import urls as two_factor_urls

#: django-otp's admin site: its login form has the device, token and challenge fields.
otp_admin = OTPAdminSite(name="otp_admin")


@otp_required(login_url="/otp-admin/login/")  # type: ignore[untyped-decorator]
def private(request: HttpRequest) -> HttpResponse:
    """A page for users verified with a second factor."""
    return HttpResponse(f"verified with {request.user.otp_device.persistent_id}")  # type: ignore[union-attr]


_stock_patterns, _ = stock_two_factor_urls.urlpatterns

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include(two_factor_urls)),
    path("stock/", include((_stock_patterns, "stock_two_factor"))),
    path("otp-admin/", otp_admin.urls),
    path("private/", private, name="private"),
]
