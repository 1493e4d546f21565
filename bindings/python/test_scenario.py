"""The committee scenario through the generated Python bindings: three
phones on a real relay. Identity and safety numbers, a committee joined from
an invite link, a channel discussion, an alert with answers and counts, a
removed member who receives nothing new, and the typed errors of a wrong
database key and a malformed invite. The tests run in file order and build
on each other (one committee, one story), like the Kotlin and Swift ones."""

import time

import pytest

import rankfile_ffi as rf
from conftest import Phone, eventually, run

story = {}


def now_ms():
    return int(time.time() * 1000)


def test_identity_and_safety_numbers(phones):
    o, a = phones["organizer"], phones["amina"]
    assert o.id.startswith("rf1-") and o.id != a.id

    async def go():
        await o.client.add_contact("Amina", a.id)
        await o.client.send_text(a.id, "hello from the organizer")
        await eventually("amina has the hello", lambda: a.recorder.seen(
            lambda e: isinstance(e, rf.ClientEvent.MESSAGE_RECEIVED) and e.peer == o.id))
        page = await a.client.history(o.id, None, 10)
        assert [m.body for m in page] == ["hello from the organizer"]
        assert not page[0].outgoing

        ours = await o.client.safety_number(a.id)
        theirs = await a.client.safety_number(o.id)
        assert ours.digits == theirs.digits
        assert len(ours.digits.replace(" ", "")) == 60
        # Scanning the other phone's code verifies; a wrong code is refused.
        await o.client.verify_contact(a.id, theirs.scannable)
        with pytest.raises(rf.ClientError.SafetyNumberMismatch):
            await a.client.verify_contact(o.id, bytes(len(ours.scannable)))
        with pytest.raises(rf.ClientError.InvalidAccountId):
            await o.client.safety_number("rf1-nobody")
    run(go())


def test_committee_from_an_invite_link(phones):
    o, a, b = phones["organizer"], phones["amina"], phones["bo"]

    async def go():
        committee = await o.client.create_committee(
            rf.CommitteeDescription(name="Depot 4", workplace="Depot 4",
                                    industry="logistics", region="north"))
        invite = await o.client.create_invite(committee, now_ms() + 3_600_000, 5)
        assert invite.link.startswith("rankfile://join/")
        for p in (a, b):
            assert await p.client.join(invite.link) == committee
        for p in (a, b):
            await eventually(f"{p.name} is admitted", lambda p=p: p.recorder.seen(
                lambda e: isinstance(e, rf.ClientEvent.ADDED_TO_COMMITTEE)
                and e.committee_id == committee))
        for p in (o, a, b):
            await eventually(f"{p.name} sees all three members", lambda p=p: _members_are(
                p, committee, {o.id, a.id, b.id}))
        state = await b.client.committee(committee)
        roles = {m.account_id: m.role for m in state.members}
        assert roles[o.id] == rf.Role.ORGANIZER and roles[b.id] == rf.Role.MEMBER
        assert state.description.name == "Depot 4"
        assert committee in await a.client.committees()
        story["committee"] = committee
    run(go())


async def _members(phone, committee):
    try:
        state = await phone.client.committee(committee)
    except rf.ClientError.UnknownCommittee:
        return set()
    return {m.account_id for m in state.members}


async def _members_are(phone, committee, expected):
    return await _members(phone, committee) == expected


async def _posts(phone, channel):
    return [p.body for p in await phone.client.channel_posts(channel, None, 100)]


def test_channel_discussion(phones):
    o, a, b = phones["organizer"], phones["amina"], phones["bo"]
    committee = story["committee"]

    async def go():
        channel = await o.client.create_channel(committee, rf.ChannelKind.DISCUSSION)
        for p in (a, b):
            await eventually(f"{p.name} has the channel", lambda p=p: _has_channel(
                p, committee, channel))
        await o.client.post(committee, channel, "meeting at six")
        await eventually("amina reads the post", lambda: _has(a, channel, "meeting at six"))
        await a.client.post(committee, channel, "I will bring the leaflets")
        for p in (o, b):
            await eventually(f"{p.name} reads amina", lambda p=p: _has(
                p, channel, "I will bring the leaflets"))
        await eventually("bo has both posts", lambda: _has(b, channel, "meeting at six"))
        got = b.recorder.seen(lambda e: isinstance(e, rf.ClientEvent.POST_RECEIVED)
                              and e.channel_id == channel)
        assert {e.sender for e in got} == {o.id, a.id}
        # Amina corrects her post; everyone sees the edit.
        mine = [p for p in await a.client.channel_posts(channel, None, 10) if p.outgoing]
        await a.client.edit_post(mine[0].id, "I will bring the leaflets and the banner")
        await eventually("bo sees the edit", lambda: _has(
            b, channel, "I will bring the leaflets and the banner"))
        story["channel"] = channel
    run(go())


async def _has_channel(phone, committee, channel):
    state = await phone.client.committee(committee)
    return any(c.channel_id == channel for c in state.channels)


async def _has(phone, channel, body):
    return body in await _posts(phone, channel)


def test_alert_with_answers_and_counts(phones):
    o, a, b = phones["organizer"], phones["amina"], phones["bo"]
    committee = story["committee"]

    async def go():
        alert = await o.client.send_alert(committee, rf.AlertDraft(
            kind=rf.AlertKind.RAPID_RESPONSE, scope=rf.AlertScope.LOCAL,
            title="Raid at gate 3", text="Come to gate 3 now", place="gate 3",
            starts_at_ms=now_ms(), expires_at_ms=now_ms() + 3_600_000,
            answers_wanted=True))
        for p in (a, b):
            await eventually(f"{p.name} gets the alert", lambda p=p: p.recorder.seen(
                lambda e: isinstance(e, rf.ClientEvent.ALERT_RECEIVED) and e.alert_id == alert))
            shown = [x for x in await p.client.alerts() if x.alert_id == alert]
            assert shown[0].title == "Raid at gate 3" and shown[0].raiser == o.id
        await a.client.answer_alert(alert, rf.AlertAnswer.COMING)
        await b.client.answer_alert(alert, rf.AlertAnswer.SAFE)
        await eventually("both answers reach the organizer", lambda: len(o.recorder.seen(
            lambda e: isinstance(e, rf.ClientEvent.ALERT_ANSWERED) and e.alert_id == alert)) == 2)
        status = await o.client.alert_status(alert)
        counts = {c.answer: c.count for c in status.counts if c.count}
        assert counts == {rf.AlertAnswer.COMING: 1, rf.AlertAnswer.SAFE: 1}
        assert status.recipients == 2 and status.waiting == []
        with pytest.raises(rf.ClientError.InvalidId):
            await o.client.alert_status("not-an-alert")
    run(go())


def test_removed_member_receives_nothing_new(phones):
    o, a, b = phones["organizer"], phones["amina"], phones["bo"]
    committee, channel = story["committee"], story["channel"]

    async def go():
        await o.client.remove_member(committee, b.id)
        for p in (o, a):
            await eventually(f"{p.name} sees bo removed", lambda p=p: _members_are(
                p, committee, {o.id, a.id}))
        await o.client.post(committee, channel, "plans for friday")
        await o.client.flush()
        # A 1:1 message queued after the post: once bo has it, the post
        # would have come before it, had it been sent to bo.
        await o.client.send_text(b.id, "sent after the post")
        await o.client.flush()
        await eventually("amina reads the new post", lambda: _has(a, channel, "plans for friday"))
        await eventually("bo has the later 1:1 message", lambda: _text_from(
            b, o.id, "sent after the post"))
        assert "plans for friday" not in await _posts(b, channel)
        with pytest.raises(rf.ClientError.NotAMember):
            await b.client.post(committee, channel, "can I still post?")
    run(go())


async def _text_from(phone, peer, body):
    return any(m.body == body for m in await phone.client.history(peer, None, 50))


def test_wrong_database_key_is_a_typed_error(relay):
    p = Phone(relay, "keyholder")
    p.close()
    with pytest.raises(rf.ClientError.WrongDatabaseKey):
        run(rf.Client.open(p.dir, bytes(32), relay.config, p.recorder))
    with pytest.raises(rf.ClientError.InvalidDatabaseKey):
        run(rf.Client.open(p.dir, b"short", relay.config, p.recorder))
    # The right key still opens it, as the same account.
    again = run(rf.Client.open(p.dir, p.key, relay.config, p.recorder))
    assert run(again.account_id()) == p.id
    run(again.shutdown())
    with pytest.raises(rf.ClientError.Closed):
        run(again.account_id())


def test_malformed_invite_is_a_typed_error(phones):
    a = phones["amina"]
    for bad in ["", "rankfile://join/", "rankfile://join/!!!!", "https://example.org/join",
                "rankfile://join/" + "A" * 5000]:
        with pytest.raises(rf.ClientError.InvalidInvite):
            run(a.client.join(bad))
