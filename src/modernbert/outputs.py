"""Model outputs: attribute and key access like transformers' ModelOutput, and `to_tuple` in its field order.

Each output class is a registered pytree node, so torch.export and torch.compile pass outputs through.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch.utils._pytree as pytree


class ModelOutput(OrderedDict):
    """Output with attribute and key access, like transformers' ModelOutput; `None` fields are left out."""

    _fields: tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        pytree.register_pytree_node(
            cls,
            lambda out: (list(out.values()), list(out.keys())),
            lambda values, keys: cls(**dict(zip(keys, values))),
            serialized_type_name=f"{cls.__module__}.{cls.__qualname__}",
        )

    def __init__(self, **kwargs: Any) -> None:
        unknown = set(kwargs) - set(self._fields)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no fields {sorted(unknown)}")
        super().__init__((k, kwargs[k]) for k in self._fields if kwargs.get(k) is not None)

    def __getattr__(self, name: str) -> Any:
        if name in self:
            return self[name]
        if name in self._fields:
            return None
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def __getitem__(self, key: str | int | slice) -> Any:
        if isinstance(key, (int, slice)):
            return self.to_tuple()[key]
        return super().__getitem__(key)

    def to_tuple(self) -> tuple[Any, ...]:
        return tuple(self.values())


class BaseModelOutput(ModelOutput):
    _fields = ("last_hidden_state", "hidden_states", "attentions")


class MaskedLMOutput(ModelOutput):
    _fields = ("loss", "logits", "hidden_states", "attentions")


class SequenceClassifierOutput(ModelOutput):
    _fields = ("loss", "logits", "hidden_states", "attentions")


class TokenClassifierOutput(ModelOutput):
    _fields = ("loss", "logits", "hidden_states", "attentions")


class QuestionAnsweringModelOutput(ModelOutput):
    _fields = ("loss", "start_logits", "end_logits", "hidden_states", "attentions")


class MultipleChoiceModelOutput(ModelOutput):
    _fields = ("loss", "logits", "hidden_states", "attentions")
