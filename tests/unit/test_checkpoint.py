"""The one checkpoint format of the book: weights-only loading, recipe refusal, one-line errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from helpers.errors import DataError
from helpers.models.checkpoint import load_model, recipe_difference, save_model


class Tiny(nn.Module):
    def __init__(self, width: int = 3) -> None:
        super().__init__()
        self.lin = nn.Linear(2, width)


def test_round_trip_keeps_weights_config_and_meta(tmp_path):
    torch.manual_seed(0)
    m = Tiny(5)
    save_model(m, tmp_path / "sub" / "m.pt", {"width": 5}, recipe={"steps": 3}, note="x")
    back, meta = load_model(tmp_path / "sub" / "m.pt", Tiny, what="tiny", recipe={"steps": 3})
    assert torch.equal(back.lin.weight, m.lin.weight) and not back.training
    assert meta == {"recipe": {"steps": 3}, "note": "x"}


def test_another_recipe_is_refused_naming_what_differs(tmp_path):
    save_model(Tiny(), tmp_path / "m.pt", {"width": 3}, recipe={"steps": 3, "lr": 0.1})
    with pytest.raises(DataError, match=r"m\.pt was trained with another recipe \(differs in: lr, seed\)"):
        load_model(tmp_path / "m.pt", Tiny, what="tiny", recipe={"steps": 3, "lr": 0.2, "seed": 0})
    assert recipe_difference(None, {"a": 1}) == ["a"]


@pytest.mark.parametrize("content", [b"", b"garbage", None])
def test_missing_empty_or_foreign_files_are_one_line_errors(tmp_path, content):
    path = tmp_path / "m.pt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError) as info:
        load_model(path, Tiny, what="tiny")
    assert str(info.value).startswith(f"{path}:") and "\n" not in str(info.value)


def test_a_checkpoint_of_another_shape_is_refused(tmp_path):
    save_model(Tiny(3), tmp_path / "m.pt", {"width": 3})
    with pytest.raises(DataError, match="not a tiny checkpoint"):
        load_model(tmp_path / "m.pt", lambda width: Tiny(width + 1), what="tiny")


def test_a_pickled_object_is_not_executed(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("executed",))

    torch.save({"state_dict": {}, "config": {}, "evil": Evil()}, tmp_path / "m.pt")
    with pytest.raises(DataError, match="not a tiny checkpoint"):
        load_model(tmp_path / "m.pt", Tiny, what="tiny")
