"""Single sign-on with OpenID Connect (mozilla-django-oidc), configured from OIDC_* settings (docs/deployment.md).

On every SSO login: the provider must vouch for the email (email_verified), the user is found or created by it,
linked to the org's person with that email if not yet linked, and made admin or not from the groups claim
(usage.access.sso_admin). Managers are not SSO's business: they come from the org import, as before.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404
from django.shortcuts import redirect
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from usage.access import sso_admin
from usage.login import SignedInUserBackend, sso_configured
from usage.models import Person
from usage.services.audit import audit_record

NOT_IN_ORG = (
    "You are signed in as {email}, but no one in the org has this email address, so you are not on the rankings "
    "and you see no one's detail. Ask an admin to add you to the org import (or to fix your email there)."
)


def _email(claims: dict) -> str:
    return str(claims.get("email") or "").strip().lower()


class SsoBackend(SignedInUserBackend, OIDCAuthenticationBackend):
    def authenticate(self, request, **kwargs):
        if not sso_configured():
            return None
        return super().authenticate(request, **kwargs)

    def _refuse(self, email: str, reason: str):
        # Django turns PermissionDenied into a failed login (user_login_failed: audit trail, lockout count).
        self.request.sso_failure = {"email": email, "reason": reason}
        raise PermissionDenied(reason)

    def get_userinfo(self, access_token, id_token, payload):
        """The userinfo claims, plus the groups and email_verified claims from the (verified) ID token where
        userinfo lacks them: Entra ID, and Okta's ID-token groups claim, put them only there."""
        claims = super().get_userinfo(access_token, id_token, payload)
        for name in (settings.OIDC_GROUPS_CLAIM, "email_verified"):
            if name not in claims and name in payload:
                claims[name] = payload[name]
        return claims

    def verify_claims(self, claims) -> bool:
        email = _email(claims)
        if not email:
            self._refuse(
                "", "The identity provider sent no email address; ask your IT team to release the email claim."
            )
        if settings.OIDC_REQUIRE_VERIFIED_EMAIL and claims.get("email_verified") is not True:
            self._refuse(email, f"The identity provider has not verified {email}, so it cannot be linked to a person.")
        return True

    def filter_users_by_claims(self, claims):
        email = _email(claims)
        linked = Person.objects.filter(email=email, user__isnull=False).values_list("user_id", flat=True).first()
        users = get_user_model().objects
        return users.filter(pk=linked) if linked else users.filter(email__iexact=email)

    @transaction.atomic
    def create_user(self, claims):
        email = _email(claims)
        users = get_user_model().objects
        username = email if not users.filter(username__iexact=email).exists() else self.get_username(claims)
        user = users.create_user(username, email=email)  # no usable password: SSO only
        return self.update_user(user, claims)

    @transaction.atomic
    def update_user(self, user, claims):
        email = _email(claims)
        names = {
            "first_name": str(claims.get("given_name") or "")[:150],
            "last_name": str(claims.get("family_name") or "")[:150],
        }
        changed = [field for field, value in names.items() if value and getattr(user, field) != value]
        admin = sso_admin(claims.get(settings.OIDC_GROUPS_CLAIM))
        if admin is not None and not user.is_superuser and user.is_staff != admin:
            user.is_staff = admin  # recorded by the audit trail as a role change
            changed.append("is_staff")
        for field in changed:
            if field in names:
                setattr(user, field, names[field])
        if changed:
            user.save(update_fields=changed)
        if not Person.objects.filter(user=user).exists():
            person = Person.objects.filter(email=email, user__isnull=True).first()
            if person is not None:
                person.user = user
                person.save(update_fields=["user"])
        self.request.sso_unlinked_email = None if Person.objects.filter(user=user).exists() else email
        return user


@login_not_required
def sso_login(request):
    if not sso_configured():
        raise Http404("Single sign-on is not configured.")
    return OIDCAuthenticationRequestView.as_view()(request)


class SsoCallbackView(OIDCAuthenticationCallbackView):
    def login_failure(self):
        failure = getattr(self.request, "sso_failure", None)
        reason = failure["reason"] if failure else "the identity provider did not confirm who you are; try again."
        user = getattr(self, "user", None)
        if user is not None and not user.is_active:
            reason = "your Tokenboard account is deactivated; ask an admin."
            audit_record("login.failed", summary=user.email, data={"method": "sso", "reason": reason})
        messages.error(self.request, f"SSO sign-in failed: {reason}")
        return redirect("login")

    def login_success(self):
        response = super().login_success()
        unlinked = getattr(self.request, "sso_unlinked_email", None)
        if unlinked:
            messages.warning(self.request, NOT_IN_ORG.format(email=unlinked))
        return response


@login_not_required
def sso_callback(request):
    if not sso_configured():
        raise Http404("Single sign-on is not configured.")
    return SsoCallbackView.as_view()(request)
