"""The demo's pages: ``/``, ``/verify/``, ``/private/`` and ``/logout/``."""

from __future__ import annotations

from django.contrib.auth.views import LogoutView
from django.urls import path

from demo import views

app_name = "demo"

urlpatterns = [
    path("", views.home, name="home"),
    path("verify/", views.verify_phone, name="verify"),
    path("private/", views.PrivateView.as_view(), name="private"),
    path("logout/", LogoutView.as_view(next_page="demo:home"), name="logout"),
]
