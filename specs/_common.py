"""Pieces shared by every kind of spec."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

API_VERSION = "kiln/v1"

_NAME = re.compile(r"^[a-z0-9]([-_a-z0-9]*[a-z0-9])?$")
_INPUT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _check_name(value: str) -> str:
    if len(value) > 63 or not _NAME.match(value):
        raise PydanticCustomError(
            "kiln_name",
            "'{value}' is not a valid name: use lowercase letters, digits, '-' and '_', "
            "starting and ending with a letter or digit, at most 63 characters",
            {"value": value},
        )
    return value


def _check_input_name(value: str) -> str:
    if not _INPUT_NAME.match(value):
        raise PydanticCustomError(
            "kiln_input_name",
            "'{value}' is not a valid input name: templates read it as inputs.<name>, "
            "so use letters, digits and '_'",
            {"value": value},
        )
    return value


#: A spec or task name, DNS-label style.
Name = Annotated[
    str,
    AfterValidator(_check_name),
    Field(json_schema_extra={"pattern": _NAME.pattern, "maxLength": 63}),
]
#: An input's name, usable as ``inputs.<name>`` in templates.
InputName = Annotated[str, AfterValidator(_check_input_name)]
#: A JSON Schema document (checked by the compiler, not by the model).
JsonSchema = dict[str, Any]
#: A Jinja2 template (parsed and scope-checked by the compiler).
Template = Annotated[str, Field(json_schema_extra={"x-kiln-template": True})]


class Model(BaseModel):
    """Base of every spec model: immutable, and unknown keys are errors."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=False, allow_inf_nan=False
    )


class Metadata(Model):
    name: Name
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    description: str | None = None


InputType = Literal["string", "number", "integer", "boolean", "object", "array"]


class InputSpec(Model):
    """A named input a run must (or may) be given."""

    type: InputType = "string"
    description: str = ""
    default: Any = None
    required: bool = True

    @property
    def is_required(self) -> bool:
        return self.required and self.default is None
