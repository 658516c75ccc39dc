"""The admin home's dashboard (campaigns.dashboard), read where templates/admin/index.html asks for it: only that
page pays for its queries, and the admin site itself stays Django's."""

from __future__ import annotations

from django import template

from campaigns.dashboard import Dashboard, dashboard_for

register = template.Library()


@register.simple_tag(takes_context=True)
def visage_dashboard(context: template.Context) -> Dashboard | None:
    """The dashboard of the signed-in staff user; None for anyone else."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_active or not user.is_staff:
        return None
    return dashboard_for(user=user)
