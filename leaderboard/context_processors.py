from usage.access import viewer_for


def viewer(request) -> dict:
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    return {"viewer": viewer_for(request.user)}
