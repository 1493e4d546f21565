// The committee scenario through the generated Kotlin bindings on the JVM,
// the same story as bindings/python/test_scenario.py: three phones on a real
// relay, events as a Flow. The tests run in order and build on each other.
package org.rankfile.ffi

import kotlinx.coroutines.flow.first
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.MethodOrderer
import org.junit.jupiter.api.Order
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import org.junit.jupiter.api.TestMethodOrder
import org.junit.jupiter.api.assertThrows
import uniffi.rankfile_ffi.AlertAnswer
import uniffi.rankfile_ffi.AlertDraft
import uniffi.rankfile_ffi.AlertKind
import uniffi.rankfile_ffi.AlertScope
import uniffi.rankfile_ffi.ChannelKind
import uniffi.rankfile_ffi.Client
import uniffi.rankfile_ffi.ClientEvent
import uniffi.rankfile_ffi.ClientException
import uniffi.rankfile_ffi.CommitteeDescription
import uniffi.rankfile_ffi.ConnectionState
import uniffi.rankfile_ffi.Role

@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation::class)
class ScenarioTest {
    private lateinit var relay: Relay
    private lateinit var o: Phone
    private lateinit var a: Phone
    private lateinit var b: Phone
    private lateinit var committee: String
    private lateinit var channel: String

    private fun now() = System.currentTimeMillis().toULong()

    @BeforeAll
    fun start() = runBlocking<Unit> {
        relay = Relay(System.getProperty("rankfile.relay"))
        o = Phone.open(relay.config, "organizer")
        a = Phone.open(relay.config, "amina")
        b = Phone.open(relay.config, "bo")
        for (p in listOf(o, a, b)) {
            withTimeout(PATIENCE_MS) {
                p.events.first { it is ClientEvent.Connection && it.state is ConnectionState.Connected }
            }
        }
    }

    @AfterAll
    fun stop() = runBlocking<Unit> {
        for (p in listOf(o, a, b)) p.client.shutdown()
        relay.close()
    }

    private suspend fun members(p: Phone): Set<String> =
        try {
            p.client.committee(committee).members.map { it.accountId }.toSet()
        } catch (e: ClientException.UnknownCommittee) {
            emptySet()
        }

    private suspend fun posts(p: Phone): List<String> =
        p.client.channelPosts(channel, null, 100u).map { it.body }

    @Test @Order(1)
    fun identityAndSafetyNumbers() = runBlocking<Unit> {
        assertTrue(o.id.startsWith("rf1-"))
        o.client.addContact("Amina", a.id)
        o.client.sendText(a.id, "hello from the organizer")
        withTimeout(PATIENCE_MS) {
            a.events.first { it is ClientEvent.MessageReceived && it.peer == o.id }
        }
        assertEquals(listOf("hello from the organizer"), a.client.history(o.id, null, 10u).map { it.body })
        val ours = o.client.safetyNumber(a.id)
        val theirs = a.client.safetyNumber(o.id)
        assertEquals(ours.digits, theirs.digits)
        o.client.verifyContact(a.id, theirs.scannable)
        assertThrows<ClientException.SafetyNumberMismatch> {
            runBlocking { a.client.verifyContact(o.id, ByteArray(ours.scannable.size)) }
        }
    }

    @Test @Order(2)
    fun committeeFromAnInviteLink() = runBlocking<Unit> {
        committee = o.client.createCommittee(CommitteeDescription("Depot 4", "Depot 4", "logistics", "north"))
        val invite = o.client.createInvite(committee, now() + 3_600_000u, 5u)
        for (p in listOf(a, b)) assertEquals(committee, p.client.join(invite.link))
        for (p in listOf(a, b)) {
            withTimeout(PATIENCE_MS) {
                p.events.first { it is ClientEvent.AddedToCommittee && it.committeeId == committee }
            }
        }
        for (p in listOf(o, a, b)) eventually("${p.name} sees three members") { members(p) == setOf(o.id, a.id, b.id) }
        val roles = b.client.committee(committee).members.associate { it.accountId to it.role }
        assertEquals(Role.ORGANIZER, roles[o.id])
        assertEquals(Role.MEMBER, roles[b.id])
    }

    @Test @Order(3)
    fun channelDiscussion() = runBlocking<Unit> {
        channel = o.client.createChannel(committee, ChannelKind.DISCUSSION)
        for (p in listOf(a, b)) eventually("${p.name} has the channel") {
            p.client.committee(committee).channels.any { it.channelId == channel }
        }
        o.client.post(committee, channel, "meeting at six")
        eventually("amina reads the post") { "meeting at six" in posts(a) }
        a.client.post(committee, channel, "I will bring the leaflets")
        for (p in listOf(o, b)) eventually("${p.name} reads amina") { "I will bring the leaflets" in posts(p) }
        eventually("bo has both posts") { "meeting at six" in posts(b) }
        withTimeout(PATIENCE_MS) {
            b.events.first { it is ClientEvent.PostReceived && it.channelId == channel && it.sender == a.id }
        }
    }

    @Test @Order(4)
    fun alertWithAnswersAndCounts() = runBlocking<Unit> {
        val alert = o.client.sendAlert(
            committee,
            AlertDraft(AlertKind.RAPID_RESPONSE, AlertScope.LOCAL, "Raid at gate 3", "Come to gate 3 now",
                "gate 3", now(), now() + 3_600_000u, true),
        )
        for (p in listOf(a, b)) withTimeout(PATIENCE_MS) {
            p.events.first { it is ClientEvent.AlertReceived && it.alertId == alert }
        }
        a.client.answerAlert(alert, AlertAnswer.COMING)
        b.client.answerAlert(alert, AlertAnswer.SAFE)
        eventually("both answers reach the organizer") {
            o.events.replayCache.count { it is ClientEvent.AlertAnswered && it.alertId == alert } == 2
        }
        val status = o.client.alertStatus(alert)
        val counts = status.counts.filter { it.count > 0u }.associate { it.answer to it.count }
        assertEquals(mapOf(AlertAnswer.COMING to 1uL, AlertAnswer.SAFE to 1uL), counts)
        assertEquals(2uL, status.recipients)
    }

    @Test @Order(5)
    fun removedMemberReceivesNothingNew() = runBlocking<Unit> {
        o.client.removeMember(committee, b.id)
        for (p in listOf(o, a)) eventually("${p.name} sees bo removed") { members(p) == setOf(o.id, a.id) }
        o.client.post(committee, channel, "plans for friday")
        o.client.flush()
        // Queued after the post: once bo has it, the post would have come first.
        o.client.sendText(b.id, "sent after the post")
        o.client.flush()
        eventually("amina reads the new post") { "plans for friday" in posts(a) }
        eventually("bo has the later message") {
            b.client.history(o.id, null, 50u).any { it.body == "sent after the post" }
        }
        assertFalse("plans for friday" in posts(b))
    }

    @Test @Order(6)
    fun wrongDatabaseKeyAndMalformedInviteAreTypedErrors() = runBlocking<Unit> {
        val p = Phone.open(relay.config, "keyholder")
        p.client.shutdown()
        assertThrows<ClientException.WrongDatabaseKey> {
            runBlocking { Client.open(p.dir.path, ByteArray(32), relay.config, FlowListener()) }
        }
        assertThrows<ClientException.InvalidInvite> { runBlocking { a.client.join("rankfile://join/!!!!") } }
        assertThrows<ClientException.InvalidInvite> { runBlocking { a.client.join("https://example.org/join") } }
    }
}
