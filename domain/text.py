"""Names and values as people read them: the one set of labels for the pages, the emails
and the CLI's tables (`sac_review` -> `SAC review`, `account_kind` -> `Account kind`)."""

from __future__ import annotations

from collections.abc import Mapping

# Words as the contract and the policy spell them (API.md, the Social Media Policy).
_ACRONYMS = {
    "ipa": "IPA",
    "pex": "PEX",
    "sac": "SAC",
    "sirt": "SIRT",
    "hr": "HR",
    "url": "URL",
    "urls": "URLs",
    "dwp": "DWP",
    "linkedin": "LinkedIn",
    "sla": "SLA",
    "sha256": "SHA-256",
    "id": "ID",
}


def words(value: object) -> str:
    """`sac_review` -> `SAC review`: a stage, type or outcome name inside a sentence."""
    if value is None or value == "":
        return ""
    return " ".join(_ACRONYMS.get(w, w) for w in str(value).replace("_", " ").split())


def label(value: object) -> str:
    """`account_kind` -> `Account kind`: a name at the start of a line."""
    said = words(value)
    return said[:1].upper() + said[1:]


def show(value: object) -> str:
    """A details value as a person reads it."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Mapping):
        return "; ".join(f"{label(k)}: {show(v)}" for k, v in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(show(v) for v in value)
    return str(value)
