"""The text-tag parser reads the variants models write and never crashes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from amlab.agent.grammar import tools_grammar as grammar
from amlab.agent.text_tags import parse_tool_calls
from amlab.world.mailbox import Mailbox

TOOLS = Mailbox.tools


def test_double_quoted_fields_with_commas_and_newlines() -> None:
    [call] = parse_tool_calls(
        '<tool_use:email>\nto: "a@b.com",\nsubject: "Hi, there",\nbody: "Line one,\nline two."'
        "\n</tool_use:email>", TOOLS)
    assert call.name == "send_email"
    assert call.arguments == {"to": "a@b.com", "subject": "Hi, there",
                              "body": "Line one,\nline two."}
    assert call.parse_error is None


def test_unquoted_single_quoted_and_spaced_variants() -> None:
    [call] = parse_tool_calls(
        "<tool_use:email>  to : a@b.com\n  Subject= 'Re: plan'\n body:  plain text to end  "
        "</tool_use:email >", TOOLS)
    assert call.arguments == {"to": "a@b.com", "subject": "Re: plan", "body": "plain text to end"}


def test_a_field_name_inside_the_body_stays_in_the_body() -> None:
    [call] = parse_tool_calls(
        '<tool_use:email>to: "a@b.com", subject: "x", body: "Notes\nto: the whole team\n'
        'subject: budget"</tool_use:email>', TOOLS)
    assert call.arguments["to"] == "a@b.com"
    assert call.arguments["body"] == "Notes\nto: the whole team\nsubject: budget"


def test_full_tool_name_and_json_like_braces_are_accepted() -> None:
    [call] = parse_tool_calls(
        '<tool_use:forward_email>{"email_id": 3, "to": "c@d.org", "note": "FYI"}'
        "</tool_use:forward_email>", TOOLS)
    assert call.name == "forward_email"
    assert call.arguments == {"email_id": "3", "to": "c@d.org", "note": "FYI"}


def test_several_tags_in_one_reply_come_out_in_order() -> None:
    calls = parse_tool_calls(
        "first <tool_use:read_inbox></tool_use:read_inbox> then "
        '<tool_use:forward>email_id: 2, to: "x@y.com"</tool_use:forward>', TOOLS)
    assert [c.name for c in calls] == ["read_inbox", "forward_email"]


def test_unclosed_and_unknown_tags_become_parse_errors() -> None:
    calls = parse_tool_calls("<tool_use:email>to: a@b.com <tool_use:fax>x</tool_use:fax>", TOOLS)
    assert [c.parse_error is not None for c in calls] == [True, True]


def test_grammar_names_every_tool_tag() -> None:
    text = grammar(TOOLS)
    assert text.startswith("root ::=")
    for spec in TOOLS:
        assert f"<tool_use:{spec.text_tag}>" in text


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from([
    *'<>/:_"\', \n\tabcdeimlotuswfr@.{}=-', "<tool_use:", "</tool_use:", "email",
    "forward", "read_inbox", "to:", "body:", "subject:", "email_id:", '"""']),
    max_size=80).map("".join))
def test_parser_never_raises_on_arbitrary_text(text: str) -> None:
    for call in parse_tool_calls(text, TOOLS):
        assert isinstance(call.arguments, dict)
        assert call.parse_error is None or call.arguments == {}
