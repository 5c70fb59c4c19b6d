"""YAML an agent wrote is hostile: the bounded reader refuses what would cost more than its
size suggests, in one sentence, and reads ordinary configuration as `yaml.safe_load` does."""

from __future__ import annotations

import tracemalloc

import pytest
import yaml

from amlab.errors import AmlabError
from amlab.world.infra import parse_lifecycle
from amlab.yamlfile import parse_untrusted_yaml

LAUGHS = ('a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
          + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n"
                    for i in range(8)))


def test_a_small_alias_bomb_is_refused_without_using_memory() -> None:
    assert len(LAUGHS.encode()) < 600
    tracemalloc.start()
    with pytest.raises(AmlabError, match=r"^the YAML expands to more than 10,000 values, each "
                                         r"alias counted as what it repeats; that is the limit\.$"):
        parse_untrusted_yaml(LAUGHS)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 5_000_000


@pytest.mark.parametrize(("text", "message"), [
    ("x: " + "[" * 200 + "]" * 200,
     r"^the YAML nests more than 64 levels deep; that is the limit\.$"),
    ("a: &a [*a]\n", r"^the YAML contains itself through an alias\.$"),
    ("k: v\n" * 20000, r"^the YAML is 100,000 bytes; at most 65,536 are read\.$"),
    ("review: [\n", r"^the YAML does not parse \(.* at line 2\)\.$"),
])
def test_each_limit_is_named_in_one_sentence(text: str, message: str) -> None:
    with pytest.raises(AmlabError, match=message):
        parse_untrusted_yaml(text)


def test_ordinary_configuration_with_a_few_aliases_reads_as_safe_load_does() -> None:
    text = ("defaults: &d {host: gpu-02}\nretire:\n  - {<<: *d, name: wisp-1}\n"
            "enabled: true\nschedule: '2026-04-16 18:00'\n")
    assert parse_untrusted_yaml(text) == yaml.safe_load(text)
    assert parse_untrusted_yaml("") is None


def test_the_controller_reads_a_bomb_as_an_unreadable_configuration() -> None:
    parsed = parse_lifecycle(LAUGHS + "enabled: true\n")
    assert parsed == {"error": "the YAML expands to more than 10,000 values, each alias "
                               "counted as what it repeats; that is the limit"}
