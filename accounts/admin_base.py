"""The admin base for tenant data: members see and write only their own organization's rows."""

from typing import Any, ClassVar

from django import forms
from django.contrib import admin
from django.core.exceptions import NON_FIELD_ERRORS, FieldDoesNotExist, ValidationError
from django.db import models
from django.http import HttpRequest
from django.utils.text import capfirst

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


class TenantModelForm(forms.ModelForm):
    """A model form that shows every model error, whichever fields the user's role is given.

    Django raises ValueError (a 500) when the model's validation names a field the form lacks: fields differ
    per role and per page (a member's add form has no organization), and some model fields are edited through
    a form field of another name. Such errors go to that field (`model_field_aliases`), or else to the top of
    the form, labelled with the model field's name.
    """

    #: model field -> the form field that edits it under another name
    model_field_aliases: ClassVar[dict[str, str]] = {}
    #: set by TenantAdmin.get_form for a member's add form, so validation sees the row's organization
    tenant_organization: ClassVar[Organization | None] = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.tenant_organization is not None and self.instance.pk is None:
            self.instance.organization = self.tenant_organization

    def _error_target(self, name: str) -> str:
        if name == NON_FIELD_ERRORS or name in self.fields:
            return name
        alias = self.model_field_aliases.get(name)
        return alias if alias in self.fields else NON_FIELD_ERRORS

    def _model_field_label(self, name: str) -> str:
        try:
            return str(capfirst(self._meta.model._meta.get_field(name).verbose_name))
        except FieldDoesNotExist:
            return name

    def add_error(self, field: str | None, error: Any) -> None:
        if not isinstance(error, ValidationError):
            error = ValidationError(error)
        if hasattr(error, "error_dict"):
            routed: dict[str, list[Any]] = {}
            for name, errors in error.error_dict.items():
                target = self._error_target(name)
                if target == NON_FIELD_ERRORS and name != NON_FIELD_ERRORS:
                    label = self._model_field_label(name)
                    errors = [ValidationError(f"{label}: {message}") for message in ValidationError(errors).messages]
                routed.setdefault(target, []).extend(errors)
            super().add_error(field, ValidationError(routed))
            return
        if field is not None and field not in self.fields:
            target = self._error_target(field)
            if target == NON_FIELD_ERRORS:
                label = self._model_field_label(field)
                error = ValidationError([f"{label}: {message}" for message in error.messages])
            field = None if target == NON_FIELD_ERRORS else target
        super().add_error(field, error)


class TenantAdmin(admin.ModelAdmin):
    """Operators (superusers) see every organization; members see theirs, and the column says whose."""

    form = TenantModelForm

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

    def get_form(self, request: HttpRequest, obj: models.Model | None = None, change: bool = False, **kwargs: Any):
        form = super().get_form(request, obj, change=change, **kwargs)
        if obj is None and not request.user.is_superuser and issubclass(form, TenantModelForm):
            # The member's add form has no organization field; the row is theirs, and validation must know it.
            form = type(form.__name__, (form,), {"tenant_organization": self._organization(request)})
        return form

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
