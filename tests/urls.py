from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    # Django's set_language view, which the admin's language switch posts to.
    path("i18n/", include("django.conf.urls.i18n")),
]
