import secrets
from collections.abc import Iterable

from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.utils import timezone

from accounts.models import ApiKey, Membership, Organization
from accounts.tokens import token_hash

KEY_PREFIX = "vsg"

# What each role may do in the admin, by app label. Apps that later issues fill are listed already so
# that their models get permissions as soon as they exist.
TENANT_APPS = ("consent", "faceanalysis", "campaigns", "segments")
ROLE_PERMISSIONS: dict[str, dict[str, tuple[str, ...]]] = {
    Membership.Role.OWNER: {app: ("view", "add", "change", "delete") for app in (*TENANT_APPS, "accounts")},
    Membership.Role.MARKETER: {
        "campaigns": ("view", "add", "change", "delete"),
        "segments": ("view", "add", "change", "delete"),
        "consent": ("view", "add", "change"),
        "faceanalysis": ("view",),
    },
    Membership.Role.ANALYST: {app: ("view",) for app in TENANT_APPS},
    Membership.Role.READ_ONLY: {app: ("view",) for app in TENANT_APPS},
}
# Models no role below owner may touch, whatever their app grants.
OWNER_ONLY_MODELS = {("accounts", "apikey"), ("accounts", "membership"), ("accounts", "organization")}


def role_group_name(role: str) -> str:
    return f"Visage role: {role}"


def role_groups_sync() -> None:
    """Create or refresh one auth group per role with the permissions the role grants."""
    for role, apps in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role_group_name(role))
        wanted: list[Permission] = []
        for app_label, actions in apps.items():
            for permission in Permission.objects.filter(content_type__app_label=app_label).select_related(
                "content_type"
            ):
                action = permission.codename.split("_", 1)[0]
                key = (app_label, permission.content_type.model)
                if action in actions and (role == Membership.Role.OWNER or key not in OWNER_ONLY_MODELS):
                    wanted.append(permission)
        group.permissions.set(wanted)


@transaction.atomic
def organization_create(*, name: str, slug: str) -> Organization:
    """A new tenant."""
    return Organization.objects.create(name=name, slug=slug)


@transaction.atomic
def membership_set(*, user, organization: Organization, role: str) -> Membership:
    """Put a user in an organization with a role; gives admin access through the role's group."""
    if role not in Membership.Role.values:
        raise ValueError(f"Unknown role {role!r}.")
    membership, _ = Membership.objects.update_or_create(
        user=user, defaults={"organization": organization, "role": role}
    )
    role_groups_sync()
    user.groups.remove(*Group.objects.filter(name__startswith=role_group_name("")))
    user.groups.add(Group.objects.get(name=role_group_name(role)))
    if not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    return membership


def api_key_create(
    *, organization: Organization, name: str, scopes: Iterable[str] = ("read", "write"), created_by=None
) -> tuple[ApiKey, str]:
    """Create a key and return it with its plaintext, which is never stored and cannot be shown again."""
    scopes = sorted(set(scopes))
    unknown = set(scopes) - set(ApiKey.Scope.values)
    if unknown:
        raise ValueError(f"Unknown scopes: {', '.join(sorted(unknown))}.")
    prefix = secrets.token_hex(4)
    raw_key = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    api_key = ApiKey.objects.create(
        organization=organization,
        name=name,
        prefix=prefix,
        key_hash=token_hash(raw_key),
        scopes=scopes,
        created_by=created_by,
    )
    return api_key, raw_key


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    """Revoke a key at once; revoking twice keeps the first time."""
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    return api_key


def api_key_touch(*, api_key: ApiKey) -> None:
    """Record use, at most once a minute per key so that reads do not become writes."""
    now = timezone.now()
    if api_key.last_used_at is None or (now - api_key.last_used_at).total_seconds() > 60:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
