"""Production settings: the embedded defaults, minus anything unsafe. Refuses to start without secrets."""

from django.core.exceptions import ImproperlyConfigured

from .settings import *  # noqa: F403
from .settings import env

IS_PRODUCTION = True
# Share-safe by default: exports watermarked, cost orders for admins only (issue 14).
TOKENBOARD_SHARE_SAFE = env.bool("TOKENBOARD_SHARE_SAFE", default=True)
DEBUG = False

SECRET_KEY = env.str("SECRET_KEY", default="").strip()
if not SECRET_KEY or SECRET_KEY.startswith("insecure-"):
    raise ImproperlyConfigured("SECRET_KEY must be set to a long random value in production.")
if not PROVIDER_KEY_ENCRYPTION_KEYS:  # noqa: F405
    raise ImproperlyConfigured("PROVIDER_KEY_ENCRYPTION_KEYS must be set in production (Fernet keys).")

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
WHITENOISE_USE_FINDERS = False
