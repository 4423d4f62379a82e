"""REST API v1 routes (issue: REST API v1). Add routes here with small edits; several people work on this file."""

from django.urls import path  # noqa: F401

urlpatterns: list = []
