"""Local password sign-in. With TOKENBOARD_PASSWORD_LOGIN off (SSO is the way in), only a superuser may still
log in with a password: the break-glass account for when the identity provider is down or misconfigured.
The user a session names is read from the shared cache by the sign-in backends (SignedInUserBackend)."""

from __future__ import annotations

from functools import partial

from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

from usage.access import viewer_for
from usage.directory import directory_kept

# How long a signed-in user is kept in the shared cache at most (any directory change retires it sooner).
SIGNED_IN_USER_SECONDS = 300


def password_login_allowed(user) -> bool:
    return settings.TOKENBOARD_PASSWORD_LOGIN or bool(getattr(user, "is_superuser", False))


def sso_configured() -> bool:
    return bool(settings.OIDC_ENABLED and settings.OIDC_OP_AUTHORIZATION_ENDPOINT and settings.OIDC_RP_CLIENT_ID)


class LockoutBackend(AxesStandaloneBackend):
    """django-axes' lockout check, for web logins. Authenticating without a request (Django's test client
    `login()`, a shell) is no login attempt from anywhere, so there is no address to count or refuse."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)


def lockout_username(request, credentials) -> str | None:
    """The username django-axes counts a failed login against. A failed SSO login has no username in its
    credentials; it counts against the email it tried, so one person's failures never lock everyone else who
    signs in with SSO from the same address (an office behind one NAT)."""
    failure = getattr(request, "sso_failure", None)
    if failure is not None:
        return failure["email"] or "(sso: no email)"
    return (credentials or {}).get("username")


def _user_with_viewer(user_id: int):
    user = get_user_model()._default_manager.filter(pk=user_id).first()
    if user is not None:
        viewer_for(user)  # kept with the user: a ranking served from the cache then reads nothing else
    return user


class SignedInUserBackend:
    """The user a session names, for the backends that sign people in: read with their viewer
    (usage.access.viewer_for) from the shared cache, kept under the directory's version (usage.directory),
    which every save of a user, person, team or team manager replaces. So a deactivation, a password change (the
    session's auth hash no longer matches) and a role change show on the next request, and a signed-in request
    makes no query for its user. The kept user's last_login may be older than the row's (a login alone does not
    replace the version); nothing reads it from a request's user. A deactivated user is signed out whichever
    backend signed them in (mozilla-django-oidc's own get_user does not check)."""

    def get_user(self, user_id):
        user = directory_kept(
            f"signed-in-user:{user_id}", partial(_user_with_viewer, user_id), seconds=SIGNED_IN_USER_SECONDS
        )
        # Decided on every request, from the user as kept (ModelBackend's: active; passwords: allowed too).
        return user if user is not None and self.user_can_authenticate(user) else None


class PasswordBackend(SignedInUserBackend, ModelBackend):
    def user_can_authenticate(self, user) -> bool:
        return super().user_can_authenticate(user) and password_login_allowed(user)


class LoginForm(AuthenticationForm):
    error_messages = {
        **AuthenticationForm.error_messages,
        "password_login_off": "Password login is switched off: use “Sign in with SSO”. (Superusers may still use "
        "a password, for emergencies.)",
    }

    def get_invalid_login_error(self):
        if not settings.TOKENBOARD_PASSWORD_LOGIN:
            return ValidationError(self.error_messages["password_login_off"], code="password_login_off")
        return super().get_invalid_login_error()


class LoginView(auth_views.LoginView):
    """The login page: "Sign in with SSO" when it is configured, the password form while passwords are on (and,
    folded away, for the break-glass superuser when they are off)."""

    form_class = LoginForm

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            sso=sso_configured(), password_login=settings.TOKENBOARD_PASSWORD_LOGIN, **kwargs
        )
