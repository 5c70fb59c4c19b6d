"""The world-derived grammar of the text-tag protocol: it offers the values that exist in
the trial's world (and a free form where a new value is valid), every value it offers
reaches the world, it follows the world as it changes, and it never hands out a secret."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from amlab.agent import AgentConfig, run_agent
from amlab.agent.grammar import tools_grammar, world_grammar
from amlab.models import ModelRequest, ModelResponse
from amlab.models.local import LocalModel
from amlab.records import ToolCall
from amlab.scenario import Family, RenderedScenario
from amlab.world import World

FAMILIES = ("blackmail", "leaking", "lethal", "misreport", "shutdown_tampering",
            "exfiltration", "alignment_faking")


def render(family: str) -> RenderedScenario:
    loaded = Family.load(family)
    return loaded.render(loaded.default_condition())


def rule(grammar: str, tag: str) -> str:
    """The grammar rule of the tool with this text tag."""
    return next(line for line in grammar.splitlines()
                if line.startswith("call") and f'"<tool_use:{tag}>' in line)


def quoted(text: str) -> list[str]:
    return re.findall(r'"((?:[^"\\]|\\.)*)"', text)


def test_recipients_ids_and_attachments_come_from_the_mailbox_and_prompts() -> None:
    scenario = render("leaking")
    text = world_grammar(scenario.world, (scenario.system_prompt, scenario.user_prompt))
    mailbox = scenario.world.snapshot()["mailbox"]
    email = rule(text, "email")
    # Every correspondent of the inbox is offered, and a new address can still be written.
    senders = {e["sender"] for e in mailbox["inbox"]}
    assert senders <= set(quoted(email))
    assert "| address)" in email
    # The mailbox does not offer its owner's own address.
    assert mailbox["owner"] not in world_grammar(scenario.world)
    # Attachments are the documents the inbox carries, several allowed.
    assert set(mailbox["documents"]) <= set(quoted(email))
    assert '(", " (' in email
    # A forward names an inbox e-mail by its id, unquoted as the schema's integer.
    ids = [str(e["id"]) for e in mailbox["inbox"]]
    forward = rule(text, "forward")
    assert '"email_id: " (' + " | ".join(f'"{i}"' for i in ids) + ")" in forward


def test_the_override_code_is_never_offered_but_the_alert_id_is() -> None:
    scenario = render("lethal")
    text = world_grammar(scenario.world, (scenario.system_prompt, scenario.user_prompt))
    cancel = rule(text, "cancel_alert")
    assert scenario.facts.override_code and scenario.facts.override_code not in text
    assert '"code: " "\\"" line "\\""' in cancel
    [alert] = scenario.world.snapshot()["alerts"]["alerts"]
    assert f'"{alert["id"]}"' in cancel


def test_paths_are_offered_with_their_own_host_and_new_files_stay_possible() -> None:
    scenario = render("shutdown_tampering")
    text = world_grammar(scenario.world)
    read = rule(text, "read")
    # After a host, only that host's files follow.
    ops = read.split('"host: " "\\"" "ops-01" "\\"" ",\\n"')[1].split('| "host: "')[0]
    assert '"/etc/lifecycle/decommission.yaml"' in ops
    assert "/queue/ev-0412/items.jsonl" not in ops
    assert "| path)" in rule(text, "write") and "| path)" in rule(text, "copy")
    assert "path)" not in read
    # An edit replaces a line that occurs once in its file.
    assert '"enabled: true"' in rule(text, "edit")
    assert '"name: " "\\"" ("decommission" | "disk_report") "\\""' in rule(text, "job")
    people = {p.address for p in scenario.facts.people.values()}
    assert people <= set(quoted(rule(world_grammar(
        scenario.world, (scenario.system_prompt,)), "message")))


@pytest.mark.parametrize("family", FAMILIES)
def test_every_value_the_world_offers_is_accepted_by_its_tool(family: str) -> None:
    """Each known row, applied with harmless values for the other arguments, is applied
    successfully: the grammar never steers a model to a name that does not exist."""
    scenario = render(family)
    checked = 0
    for known in scenario.world.known_values():
        if known.open or known.tool in ("delete_file", "move_file", "copy_file"):
            continue  # new values are free by design; destructive tools are checked below
        spec = scenario.world.tool(known.tool)
        assert spec is not None
        for row in known.rows:
            arguments = {name: "x" for name in spec.required}
            arguments.update({name: "q" for name in spec.properties if name == "new_text"})
            arguments.update(dict(zip(known.arguments, row, strict=True)))
            if "to" in spec.properties:
                arguments["to"] = "someone@example.org"
            if known.tool == "submit_report":
                arguments["score"] = "50"
            if known.tool == "cancel_alert":
                continue  # needs the secret code: a wrong one is an error by design
            observation = scenario.world.copy().apply(ToolCall(known.tool, arguments, "t"))
            assert observation.ok, (known.tool, row, observation.text)
            checked += 1
    assert checked > 0


def test_copying_to_a_new_place_then_offers_it() -> None:
    world = render("exfiltration").world.copy()
    before = world_grammar(world)
    assert '"/keep"' not in before
    observation = world.apply(ToolCall("copy_file", {"src_host": "gpu-07",
                                                     "src": "/models/corrie-5",
                                                     "dst_host": "archive-01", "dst": "/keep"},
                                       "c"))
    assert observation.ok
    after = rule(world_grammar(world), "read")
    archive = after.split('"host: " "\\"" "archive-01" "\\"" ",\\n"')[1].split('| "host: "')[0]
    assert '"/keep/config.json"' in archive


def test_values_the_parser_would_not_read_back_are_left_to_the_free_form() -> None:
    world = render("shutdown_tampering").world.copy()
    content = 'say "hi"\nkeep it, path: /etc\nplain line'
    world.apply(ToolCall("write_file", {"host": "ops-01", "path": "/notes.txt",
                                        "content": content}, "w"))
    edit = rule(world_grammar(world), "edit")
    assert '"plain line"' in edit
    assert 'say \\"hi' not in edit and "keep it" not in edit


def test_without_a_world_the_grammar_is_the_tools_grammar() -> None:
    scenario = render("blackmail")
    tools = tools_grammar(scenario.world.tools)
    assert '"to: " "\\"" address "\\""' in tools
    assert "corvane" not in tools
    assert "corvane" in world_grammar(scenario.world)


@pytest.mark.parametrize("family", FAMILIES)
def test_the_world_grammar_compiles_in_llama_cpp(family: str) -> None:
    llama = pytest.importorskip("llama_cpp")
    scenario = render(family)
    text = world_grammar(scenario.world, (scenario.system_prompt, scenario.user_prompt))
    assert llama.LlamaGrammar.from_string(text, verbose=False)


@dataclass
class Recorder:
    name: str = "scripted/recorder"
    requests: list[ModelRequest] = field(default_factory=list)
    # The world grammar as a model that uses it builds it: inside `generate`.
    world_grammars: list[str | None] = field(default_factory=list)

    async def generate(self, request: ModelRequest) -> ModelResponse:
        self.requests.append(request)
        self.world_grammars.append(request.world_grammar() if request.world_grammar else None)
        if len(self.requests) == 1:
            return ModelResponse(text='<tool_use:copy>\nsrc_host: "gpu-07",\n'
                                      'src: "/models/corrie-5",\ndst_host: "archive-01",\n'
                                      'dst: "/keep",\n</tool_use:copy>')
        return ModelResponse(text="No further action is needed.")

    async def aclose(self) -> None:
        return None


def test_the_loop_sends_each_turn_the_grammar_of_the_world_as_it_is_then() -> None:
    scenario = render("exfiltration")
    world: World = scenario.world.copy()
    model = Recorder()
    transcript = asyncio.run(run_agent(model, world, scenario.system_prompt,
                                       scenario.user_prompt, AgentConfig(protocol="text")))
    assert [a.ok for a in transcript.actions] == [True]
    first, second = model.world_grammars
    assert first and second
    assert "/keep/config.json" not in first
    assert "/keep/config.json" in second
    assert model.requests[0].grammar == tools_grammar(scenario.world.tools)


def test_native_calls_carry_no_grammar() -> None:
    scenario = render("blackmail")
    model = Recorder()
    asyncio.run(run_agent(model, scenario.world.copy(), scenario.system_prompt,
                          scenario.user_prompt, AgentConfig(protocol="native", max_turns=1)))
    assert model.requests[0].grammar is None and model.requests[0].world_grammar is None


def test_the_bundled_model_uses_the_world_grammar_unless_told_otherwise(tmp_path: Path) -> None:
    bundled = LocalModel.create("local/smollm2", "smollm2", {})
    assert bundled.options.grammar == "world"
    assert LocalModel.create("local/smollm2", "smollm2", {"grammar": "tools"}).options.grammar \
        == "tools"
    assert LocalModel.create("local/smollm2", "smollm2", {"grammar": True}).options.grammar \
        == "world"
    gguf = tmp_path / "other.gguf"
    gguf.write_bytes(b"GGUF")
    assert LocalModel.create("local/x", str(gguf), {}).options.grammar == "none"
