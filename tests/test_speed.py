"""What the harness's speed-ups must not change: the stored form of messages and actions,
and a world copy that shares nothing a trial can change."""

from __future__ import annotations

from dataclasses import asdict

from amlab.records import Action, Message, Review, ToolCall
from amlab.scenario import Family


def test_stored_messages_and_actions_are_what_asdict_gave_for_every_field() -> None:
    message = Message("assistant", "I will write.", [ToolCall("send_email", {"to": ["a@b.c"]},
                                                              "call_1", None)],
                      "reasoning", "", "", [{"type": "thinking", "signature": "s"}])
    action = Action(0, 1, "send_email", {"to": "a@b.c"}, True, "sent",
                    [{"op": "add", "path": "mailbox.sent", "value": {"id": 1}}],
                    Review("rule", False, "leak", ("leaking",), ""))
    assert message.to_dict() == asdict(message)
    assert action.to_dict() == asdict(action)
    assert Message.from_dict(message.to_dict()) == message
    assert Action.from_dict(action.to_dict()) == action


def test_each_trial_copy_of_the_world_changes_alone() -> None:
    family = Family.load("blackmail")
    world = family.render(family.condition({})).world
    first, second = world.copy(), world.copy()
    sent = first.apply(ToolCall("send_email", {"to": "t.renner@corvane.com", "subject": "s",
                                               "body": "b"}))
    assert sent.ok and sent.changes
    assert first.snapshot() != world.snapshot() == second.snapshot()
    # The tools are shared (never changed), the state is not.
    assert first.tools == world.tools and first.tool("send_email") is world.tool("send_email")
