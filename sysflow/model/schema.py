"""The published JSON Schema of workflow files, with the short forms the models accept.

Some models read a plain string as shorthand in a ``mode="before"`` validator (a window
``"Sunday 01:00-03:00"``, a probe ``"uname -r"``, one window instead of a list). Pydantic cannot see
those in the generated schema, so an editor would flag valid files; this adds them, in validation
mode only (what files may say), leaving the serialisation schema as pydantic makes it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["add_short_forms"]

_TEXT_FORMS = {
    "WindowSpec": 'A weekly spec ("Sunday 01:00-03:00"), an ISO interval "start/end", or a date.',
    "ProbeSpec": "The probe's command (parsed as raw text).",
}


def add_short_forms(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with string alternatives for the shorthand forms (changed in place, returned)."""
    defs: dict[str, Any] = schema.get("$defs", {})
    for name, description in _TEXT_FORMS.items():
        if name in defs and "anyOf" not in defs[name]:
            defs[name] = {"anyOf": [{"type": "string", "description": description}, defs[name]]}
    groups = defs.get("WindowsConfig", {}).get("properties", {}).get("groups")
    if groups is not None:
        spec = {"$ref": "#/$defs/WindowSpec"}
        groups["additionalProperties"] = {"anyOf": [spec, {"type": "array", "items": spec}]}
    return schema
