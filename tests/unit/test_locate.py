"""Finding a name on a source line for a caret: the one in a Jinja tag, on any line length."""

from __future__ import annotations

from compiler.locate import _find_whole


def test_the_name_inside_a_tag_wins_over_the_same_word_in_prose() -> None:
    assert _find_whole("say x then {{ x }}", "x", 0) == 14
    assert _find_whole("{% if x %}", "x", 0) == 6


def test_a_name_that_is_only_prose_is_found_where_it_first_stands() -> None:
    assert _find_whole("max and x and x", "x", 0) == 8
    assert _find_whole("inputs.xy", "xy", 0) == 7  # not whole anywhere: where it appears


def test_a_line_of_a_million_words_is_read_once_not_once_a_word() -> None:
    # Found by the mutation property test: a line of 500,000 copies of a name kept a
    # compile busy for many minutes (every place was tried for a tag, each a read of the
    # line up to it). This returns at once; before, it did not return in CI's patience.
    line = "x " * 500_000 + "{{ x }}"
    assert _find_whole(line, "x", 0) == 0
