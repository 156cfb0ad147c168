"""SQLAlchemy models of the read model, the directory and the audit trail."""

from models.base import Base
from models.cases import Case, CaseCounter, CaseEscalation, CaseEvent, SentMail
from models.people import ApiToken, Person

__all__ = [
    "ApiToken",
    "Base",
    "Case",
    "CaseCounter",
    "CaseEscalation",
    "CaseEvent",
    "Person",
    "SentMail",
]
