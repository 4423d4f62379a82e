"""Admin pages of the write side (uploads, imports, identities, connections). Add routes with small edits."""

from django.urls import path  # noqa: F401

urlpatterns: list = []
