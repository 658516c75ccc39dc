from rest_framework import serializers

from accounts.models import ApiKey, Organization


class OrganizationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Organization
        fields = ["name", "slug"]


class ApiKeySerializer(serializers.ModelSerializer):
    active = serializers.BooleanField(source="is_active", read_only=True)
    scopes = serializers.ListField(child=serializers.ChoiceField(choices=ApiKey.Scope.choices), read_only=True)

    class Meta:
        model = ApiKey
        fields = ["prefix", "name", "scopes", "active", "created_at", "last_used_at", "revoked_at"]
        read_only_fields = fields
