"""What the experiments API answers (an experiment with its arms and phases) and, for the schema only, what it
reads: the body itself is checked by campaigns.experiments, whose refusals name the member (`arms[1].weight`)."""

from __future__ import annotations

from rest_framework import serializers

from campaigns.experiments import MAX_ARMS, MAX_CUSTOM_EVENTS
from campaigns.models import Experiment, ExperimentArm, ExperimentPhase


class ArmSerializer(serializers.ModelSerializer):
    variant = serializers.CharField(source="variant.key", read_only=True)
    control = serializers.SerializerMethodField()

    class Meta:
        model = ExperimentArm
        fields = ["variant", "weight", "control"]
        read_only_fields = fields

    def get_control(self, arm: ExperimentArm) -> bool:
        return arm.position == 0


class PhaseSerializer(serializers.ModelSerializer):
    class Meta:
        model = ExperimentPhase
        fields = ["number", "started_at", "ended_at", "coverage", "holdout", "seed", "weights", "reason"]
        read_only_fields = fields


class ExperimentSerializer(serializers.ModelSerializer):
    arms = serializers.SerializerMethodField()
    phases = PhaseSerializer(many=True, read_only=True)

    class Meta:
        model = Experiment
        fields = [
            "key", "name", "hypothesis", "kind", "status", "seed", "coverage", "holdout", "custom_events",
            "sequential", "bandit_cadence_seconds", "bandit_top_two", "bandit_burn_in_per_arm", "arms", "phases",
            "created_at", "started_at", "stopped_at",
        ]
        read_only_fields = fields

    def get_arms(self, experiment: Experiment) -> list[dict]:
        arms = experiment.arms.filter(retired=False).select_related("variant").order_by("position")
        return ArmSerializer(arms, many=True).data


class ArmRequest(serializers.Serializer):
    variant = serializers.CharField(max_length=64, help_text="Key of a variant of the campaign; the first arm is "
                                    "the control.")
    weight = serializers.FloatField(
        min_value=0, max_value=1, required=False,
        help_text="A/B tests: the arms' weights sum to 1. Bandits: leave out (equal at the start, then Thompson "
        "sampling).",
    )


class ExperimentRequest(serializers.Serializer):
    """An experiment to create (key, name and arms at least), or the members of one to change."""

    key = serializers.SlugField(max_length=64, required=False, help_text="Required on create.")
    name = serializers.CharField(max_length=200, required=False, help_text="Required on create.")
    hypothesis = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    kind = serializers.ChoiceField(choices=Experiment.Kind.choices, required=False, help_text="Default ab.")
    seed = serializers.CharField(max_length=64, required=False,
                                 help_text="Hash seed; random by default; 409 `seed_locked` while running.")
    coverage = serializers.FloatField(required=False, help_text="In (0, 1]; default 1.")
    holdout = serializers.FloatField(min_value=0, max_value=0.5, required=False, help_text="Default 0.")
    custom_events = serializers.ListField(child=serializers.CharField(max_length=64), max_length=MAX_CUSTOM_EVENTS,
                                          required=False)
    sequential = serializers.BooleanField(required=False, help_text="Always-valid statistics; default true.")
    bandit_cadence_seconds = serializers.IntegerField(min_value=60, max_value=7 * 86400, required=False)
    bandit_top_two = serializers.BooleanField(required=False)
    bandit_burn_in_per_arm = serializers.IntegerField(min_value=1, max_value=1_000_000, required=False)
    arms = ArmRequest(many=True, required=False, max_length=MAX_ARMS, help_text="2 to 10 arms. Required on create.")
    start_new_phase = serializers.BooleanField(
        required=False,
        help_text="Changing arms, weights, coverage or holdout of a running experiment starts a new phase; without "
        "this the change is refused (409 `new_phase_required`).",
    )
