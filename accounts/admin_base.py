"""The admin base for tenant data: members see and write only their own organization's rows."""

from django.contrib import admin
from django.db import models
from django.http import HttpRequest

from accounts.models import Organization
from accounts.selectors import organization_for_user


def scope_to_organization(queryset: models.QuerySet, organization: Organization | None) -> models.QuerySet:
    """Rows of one organization; none without one. Fails closed."""
    if organization is None:
        return queryset.none()
    return queryset.filter(organization=organization)


def _is_tenant_model(model: type[models.Model]) -> bool:
    try:
        field = model._meta.get_field("organization")
    except Exception:
        return False
    return getattr(field, "related_model", None) is Organization


class TenantAdmin(admin.ModelAdmin):
    """Operators (superusers) see every organization; members see theirs, and the column says whose."""

    def _organization(self, request: HttpRequest) -> Organization | None:
        return organization_for_user(request.user)

    def get_queryset(self, request: HttpRequest) -> models.QuerySet:
        queryset = super().get_queryset(request).select_related("organization")
        if request.user.is_superuser:
            return queryset
        return scope_to_organization(queryset, self._organization(request))

    def get_list_display(self, request: HttpRequest):
        columns = list(super().get_list_display(request))
        return columns if "organization" in columns else [*columns, "organization"]

    def get_list_filter(self, request: HttpRequest):
        filters = list(super().get_list_filter(request))
        if request.user.is_superuser and "organization" not in filters:
            filters.append("organization")
        return filters

    def get_readonly_fields(self, request: HttpRequest, obj: models.Model | None = None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None or not request.user.is_superuser:
            fields.append("organization")
        return fields

    def save_model(self, request: HttpRequest, obj: models.Model, form, change: bool) -> None:
        if not change and not request.user.is_superuser:
            obj.organization = self._organization(request)
        super().save_model(request, obj, form, change)

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs):
        # A choice list of another organization's rows would leak them; limit it to the member's own.
        if not request.user.is_superuser and _is_tenant_model(db_field.related_model):
            kwargs["queryset"] = scope_to_organization(
                db_field.related_model._default_manager.all(), self._organization(request)
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request: HttpRequest, **kwargs):
        if not request.user.is_superuser and _is_tenant_model(db_field.related_model):
            kwargs["queryset"] = scope_to_organization(
                db_field.related_model._default_manager.all(), self._organization(request)
            )
        return super().formfield_for_manytomany(db_field, request, **kwargs)
