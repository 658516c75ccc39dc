from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest

from accounts.admin_base import TenantAdmin, TenantModelForm
from accounts.models import ApiKey, Membership, Organization
from accounts.selectors import organization_for_user
from accounts.services import api_key_create, api_key_revoke, membership_set


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    """Operators manage every organization; owners edit their own; every other member sees theirs read-only,
    since each tenant page links it (a link that answers 403 is a dead end)."""

    list_display = ["name", "slug", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}

    def has_view_permission(self, request: HttpRequest, obj: Organization | None = None) -> bool:
        if super().has_view_permission(request, obj):
            return True
        organization = organization_for_user(request.user)
        return organization is not None and (obj is None or obj.pk == organization.pk)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def get_queryset(self, request: HttpRequest):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        organization = organization_for_user(request.user)
        return queryset.filter(pk=organization.pk) if organization else queryset.none()

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser


@admin.register(Membership)
class MembershipAdmin(TenantAdmin):
    list_display = ["user", "role", "created_at"]
    list_filter = ["role"]
    autocomplete_fields = ["user"]

    def save_model(self, request: HttpRequest, obj: Membership, form, change: bool) -> None:
        organization = obj.organization if request.user.is_superuser else organization_for_user(request.user)
        membership_set(user=obj.user, organization=organization, role=obj.role)


class ApiKeyCreateForm(TenantModelForm):
    scopes = forms.MultipleChoiceField(
        choices=ApiKey.Scope.choices, widget=forms.CheckboxSelectMultiple, initial=["read", "write"]
    )

    class Meta:
        model = ApiKey
        fields = ["organization", "name", "scopes"]


@admin.register(ApiKey)
class ApiKeyAdmin(TenantAdmin):
    list_display = ["name", "prefix", "scopes", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["name", "prefix"]
    actions = ["revoke_selected"]
    readonly_fields = ["prefix", "created_at", "created_by_name", "last_used_at", "revoked_at"]

    @admin.display(description="Created by")
    def created_by_name(self, obj: ApiKey) -> str | None:
        # Text, not the user admin's link: members other than operators may not open user pages.
        return obj.created_by.get_username() if obj.created_by else None

    def get_form(self, request: HttpRequest, obj: ApiKey | None = None, change: bool = False, **kwargs):
        if obj is None:
            kwargs["form"] = ApiKeyCreateForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: ApiKey | None = None):
        if obj is None:
            return ["organization", "name", "scopes"] if request.user.is_superuser else ["name", "scopes"]
        return ["organization", "name", "scopes", *self.readonly_fields]

    def get_readonly_fields(self, request: HttpRequest, obj: ApiKey | None = None):
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, "scopes"] if obj is not None else fields

    def save_model(self, request: HttpRequest, obj: ApiKey, form, change: bool) -> None:
        if change:
            obj.save(update_fields=["name"])
            return
        organization = obj.organization if request.user.is_superuser else organization_for_user(request.user)
        created, raw_key = api_key_create(
            organization=organization, name=obj.name, scopes=form.cleaned_data["scopes"], created_by=request.user
        )
        obj.pk = created.pk
        obj.prefix = created.prefix
        messages.warning(request, f"Copy this key now; it will not be shown again: {raw_key}")

    @admin.action(description="Revoke selected keys")
    def revoke_selected(self, request: HttpRequest, queryset) -> None:
        for api_key in queryset:
            api_key_revoke(api_key=api_key)
        messages.success(request, f"Revoked {queryset.count()} key(s).")
