"""The model catalog (admins): canonical models with their family and vendor, the spellings sources use for
them, and the names no spelling maps yet (usage.services.catalog). Changes recount the rollups at the next
refresh; no usage record changes."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from usage.access import require_admin, viewer_for
from usage.forms import CatalogModelForm, ModelAliasForm
from usage.models import CatalogModel, ModelAlias
from usage.services.catalog import (
    CatalogRefused,
    catalog_model_delete,
    catalog_model_save,
    catalog_models,
    model_alias_delete,
    model_alias_save,
    unmapped_models,
)


def _admin(request) -> None:
    require_admin(viewer_for(request.user))


def _render(request, *, model_form=None, alias_form=None, status=200):
    return render(
        request,
        "usage/model_catalog.html",
        {
            "models": catalog_models(),
            "unmapped": unmapped_models(),
            "model_form": model_form or CatalogModelForm(),
            "alias_form": alias_form or ModelAliasForm(),
            "all_models": CatalogModel.objects.order_by("name"),
        },
        status=status,
    )


@require_GET
def model_catalog_page(request):
    _admin(request)
    return _render(request)


@require_POST
def catalog_model_save_view(request, pk: int | None = None):
    """Create a model (optionally mapping an unknown spelling to it at once) or edit one."""
    _admin(request)
    model = get_object_or_404(CatalogModel, pk=pk) if pk else None
    form = CatalogModelForm(request.POST)
    if not form.is_valid():
        return _render(request, model_form=form, status=400)
    data = form.cleaned_data
    try:
        saved = catalog_model_save(name=data["name"], family=data["family"], vendor=data["vendor"], model=model)
        if data["spelling"]:
            model_alias_save(spelling=data["spelling"], model=saved)
    except CatalogRefused as refused:
        form.add_error(None, str(refused))
        return _render(request, model_form=form, status=400)
    messages.success(request, f"{saved.name} ({saved.family}, {saved.vendor}) saved; the rankings recount it shortly.")
    return redirect("model-catalog")


@require_POST
def model_alias_save_view(request):
    """Map a spelling (an unknown name, or one moved from another model) to a model."""
    _admin(request)
    form = ModelAliasForm(request.POST)
    if not form.is_valid():
        return _render(request, alias_form=form, status=400)
    try:
        alias = model_alias_save(spelling=form.cleaned_data["spelling"], model=form.cleaned_data["model"])
    except CatalogRefused as refused:
        form.add_error(None, str(refused))
        return _render(request, alias_form=form, status=400)
    messages.success(request, f"“{alias.spelling}” now counts as {alias.model.name}.")
    return redirect("model-catalog")


@require_POST
def model_alias_delete_view(request, pk: int):
    _admin(request)
    alias = get_object_or_404(ModelAlias.objects.select_related("model"), pk=pk)
    try:
        model_alias_delete(alias)
    except CatalogRefused as refused:
        messages.error(request, str(refused))
    else:
        messages.success(request, f"“{alias.spelling}” removed from {alias.model.name}.")
    return redirect("model-catalog")


@require_POST
def catalog_model_delete_view(request, pk: int):
    _admin(request)
    model = get_object_or_404(CatalogModel, pk=pk)
    try:
        catalog_model_delete(model)
    except CatalogRefused as refused:
        messages.error(request, str(refused))
    else:
        messages.success(request, f"{model.name} deleted.")
    return redirect("model-catalog")
