"""OpenTelemetry spans built from the engine's step records (needs only opentelemetry-api;
export them with the SDK: the ``otel`` extra)."""

from .spans import (
    EOU_DETECTION,
    EOU_WAIT,
    USER_TURN,
    SpanObserver,
    decision_attributes,
    end_of_turn_attributes,
)

__all__ = ["EOU_DETECTION", "EOU_WAIT", "USER_TURN", "SpanObserver", "decision_attributes",
           "end_of_turn_attributes"]
