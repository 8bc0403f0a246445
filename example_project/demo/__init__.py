"""The example site's own pages: a home page, "verify your phone" and a page that needs
two-factor login; and its look for django-two-factor-auth's pages."""
