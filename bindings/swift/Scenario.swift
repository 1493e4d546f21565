// The committee scenario through the generated Swift bindings, as a small
// program (`cargo xtask test` compiles it with the generated
// rankfile_ffi.swift in the Debian trixie chroot and runs it against a
// relay it started): three phones, the same story as the Python and Kotlin
// tests. Exits non-zero on the first check that fails.
import Foundation

let patience: TimeInterval = 90

struct Failed: Error, CustomStringConvertible {
    let description: String
}

func check(_ ok: Bool, _ what: String) throws {
    if !ok { throw Failed(description: "check failed: \(what)") }
}

/// Keeps every event; called on the bindings' event thread.
final class Recorder: ClientListener, @unchecked Sendable {
    private let lock = NSLock()
    private var events: [ClientEvent] = []

    func onEvent(event: ClientEvent) {
        lock.lock(); defer { lock.unlock() }
        events.append(event)
    }

    func seen(_ pred: (ClientEvent) -> Bool) -> [ClientEvent] {
        lock.lock(); defer { lock.unlock() }
        return events.filter(pred)
    }
}

struct Phone {
    let name: String
    let dir: String
    let key: Data
    let recorder: Recorder
    let client: Client
    let id: String

    static func open(_ relay: RelayConfig, _ name: String) async throws -> Phone {
        let dir = NSTemporaryDirectory() + "rankfile-swift-\(name)-\(UUID().uuidString)"
        var bytes = [UInt8](repeating: 0, count: 32)
        for i in bytes.indices { bytes[i] = UInt8.random(in: 0...255) }
        let key = Data(bytes)
        let recorder = Recorder()
        let client = try await Client.open(dir: dir, databaseKey: key, relay: relay, listener: recorder)
        return Phone(name: name, dir: dir, key: key, recorder: recorder, client: client,
                     id: try await client.accountId())
    }
}

func eventually(_ what: String, _ check: () async throws -> Bool) async throws {
    let deadline = Date().addingTimeInterval(patience)
    while try await !check() {
        if Date() > deadline { throw Failed(description: "timed out waiting for: \(what)") }
        try await Task.sleep(nanoseconds: 50_000_000)
    }
}

func nowMs() -> UInt64 { UInt64(Date().timeIntervalSince1970 * 1000) }

func members(_ p: Phone, _ committee: String) async throws -> Set<String> {
    do {
        return Set(try await p.client.committee(committee: committee).members.map { $0.accountId })
    } catch ClientError.UnknownCommittee {
        return []
    }
}

func posts(_ p: Phone, _ channel: String) async throws -> [String] {
    try await p.client.channelPosts(channel: channel, beforeId: nil, limit: 100).map { $0.body }
}

func scenario(_ relay: RelayConfig) async throws {
    let o = try await Phone.open(relay, "organizer")
    let a = try await Phone.open(relay, "amina")
    let b = try await Phone.open(relay, "bo")
    for p in [o, a, b] {
        try await eventually("\(p.name) connects") {
            if case .connected = try p.client.connectionState() { return true }
            return false
        }
    }

    // Identity and safety numbers.
    try check(o.id.hasPrefix("rf1-") && o.id != a.id, "account IDs")
    try await o.client.addContact(name: "Amina", account: a.id)
    try await o.client.sendText(to: a.id, body: "hello from the organizer")
    try await eventually("amina has the hello") {
        try await a.client.history(peer: o.id, beforeId: nil, limit: 10)
            .contains { $0.body == "hello from the organizer" }
    }
    let ours = try await o.client.safetyNumber(contact: a.id)
    let theirs = try await a.client.safetyNumber(contact: o.id)
    try check(ours.digits == theirs.digits, "both phones show the same safety number")
    try await o.client.verifyContact(contact: a.id, scanned: theirs.scannable)
    do {
        try await a.client.verifyContact(contact: o.id, scanned: Data(count: ours.scannable.count))
        throw Failed(description: "a wrong code was accepted")
    } catch ClientError.SafetyNumberMismatch {}

    // A committee from an invite link.
    let committee = try await o.client.createCommittee(description: CommitteeDescription(
        name: "Depot 4", workplace: "Depot 4", industry: "logistics", region: "north"))
    let invite = try await o.client.createInvite(
        committee: committee, expiresAtMs: nowMs() + 3_600_000, maxUses: 5)
    for p in [a, b] { try check(try await p.client.join(link: invite.link) == committee, "join") }
    for p in [o, a, b] {
        try await eventually("\(p.name) sees three members") {
            try await members(p, committee) == [o.id, a.id, b.id]
        }
    }
    try check(!b.recorder.seen {
        if case .addedToCommittee(let c) = $0 { return c == committee }
        return false
    }.isEmpty, "bo was told of the admission")

    // A channel discussion.
    let channel = try await o.client.createChannel(committee: committee, kind: .discussion)
    for p in [a, b] {
        try await eventually("\(p.name) has the channel") {
            try await p.client.committee(committee: committee).channels.contains { $0.channelId == channel }
        }
    }
    try await o.client.post(committee: committee, channel: channel, text: "meeting at six")
    try await eventually("amina reads the post") { try await posts(a, channel).contains("meeting at six") }
    try await a.client.post(committee: committee, channel: channel, text: "I will bring the leaflets")
    for p in [o, b] {
        try await eventually("\(p.name) reads amina") {
            try await posts(p, channel).contains("I will bring the leaflets")
        }
    }

    // An alert with answers and counts.
    let alert = try await o.client.sendAlert(committee: committee, draft: AlertDraft(
        kind: .rapidResponse, scope: .local, title: "Raid at gate 3", text: "Come to gate 3 now",
        place: "gate 3", startsAtMs: nowMs(), expiresAtMs: nowMs() + 3_600_000, answersWanted: true))
    for p in [a, b] {
        try await eventually("\(p.name) gets the alert") {
            !p.recorder.seen {
                if case .alertReceived(let id, _) = $0 { return id == alert }
                return false
            }.isEmpty
        }
    }
    try await a.client.answerAlert(alert: alert, answer: .coming)
    try await b.client.answerAlert(alert: alert, answer: .safe)
    try await eventually("both answers reach the organizer") {
        o.recorder.seen {
            if case .alertAnswered(let id, _, _) = $0 { return id == alert }
            return false
        }.count == 2
    }
    let status = try await o.client.alertStatus(alert: alert)
    let counts = Dictionary(uniqueKeysWithValues: status.counts.filter { $0.count > 0 }.map { ($0.answer, $0.count) })
    try check(counts == [.coming: 1, .safe: 1], "answer counts \(counts)")

    // A removed member receives nothing new.
    try await o.client.removeMember(committee: committee, account: b.id)
    for p in [o, a] {
        try await eventually("\(p.name) sees bo removed") { try await members(p, committee) == [o.id, a.id] }
    }
    try await o.client.post(committee: committee, channel: channel, text: "plans for friday")
    try await o.client.flush()
    try await o.client.sendText(to: b.id, body: "sent after the post")
    try await o.client.flush()
    try await eventually("amina reads the new post") { try await posts(a, channel).contains("plans for friday") }
    try await eventually("bo has the later message") {
        try await b.client.history(peer: o.id, beforeId: nil, limit: 50).contains { $0.body == "sent after the post" }
    }
    try check(!(try await posts(b, channel)).contains("plans for friday"), "bo did not get the new post")

    // A malformed invite and a wrong database key are typed errors.
    do {
        _ = try await a.client.join(link: "rankfile://join/!!!!")
        throw Failed(description: "a malformed invite was accepted")
    } catch ClientError.InvalidInvite {}
    let k = try await Phone.open(relay, "keyholder")
    try await k.client.shutdown()
    do {
        _ = try await Client.open(dir: k.dir, databaseKey: Data(count: 32), relay: relay, listener: Recorder())
        throw Failed(description: "a wrong database key opened the store")
    } catch ClientError.WrongDatabaseKey {}

    for p in [o, a, b] { try await p.client.shutdown() }
}

let args = CommandLine.arguments
guard args.count == 3 else {
    print("usage: scenario <relay address> <relay fingerprint>")
    exit(2)
}
do {
    try await scenario(RelayConfig(address: args[1], fingerprint: args[2]))
    print("swift scenario: ok")
} catch {
    print("swift scenario: \(error)")
    exit(1)
}
