// A phone for the JVM tests and the benchmark: a generated `Client` opened
// in its own directory, its events as a Kotlin Flow, and the relay child
// process they connect to.
package org.rankfile.ffi

import java.io.File
import java.nio.file.Files
import java.security.SecureRandom
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.MutableSharedFlow
import kotlinx.coroutines.flow.SharedFlow
import kotlinx.coroutines.channels.BufferOverflow
import uniffi.rankfile_ffi.Client
import uniffi.rankfile_ffi.ClientEvent
import uniffi.rankfile_ffi.ClientListener
import uniffi.rankfile_ffi.RelayConfig

/** Bounded waits: a hang fails the test instead of blocking CI. */
const val PATIENCE_MS = 90_000L

/** A `rankfile-relay` child process on loopback in a temporary directory. */
class Relay(binary: String) : AutoCloseable {
    private val dir: File = Files.createTempDirectory("rankfile-kt-relay-").toFile()
    private val process: Process = ProcessBuilder(
        binary, "--bind", "127.0.0.1:0", "--data-dir", dir.path, "--log", "warn",
    ).redirectError(ProcessBuilder.Redirect.DISCARD).start()
    val config: RelayConfig

    init {
        // rankfile-relay listening on <addr> fingerprint <hex>
        val words = process.inputStream.bufferedReader().readLine().trim().split(Regex("\\s+"))
        check(words.take(3) == listOf("rankfile-relay", "listening", "on")) { words }
        check(words[4] == "fingerprint") { words }
        config = RelayConfig(address = words[3], fingerprint = words[5])
    }

    override fun close() {
        process.destroyForcibly().waitFor()
        dir.deleteRecursively()
    }
}

/** The client's events as a Flow: every event is replayed to each collector. */
class FlowListener : ClientListener {
    private val flow = MutableSharedFlow<ClientEvent>(
        replay = 100_000,
        onBufferOverflow = BufferOverflow.DROP_OLDEST,
    )
    val events: SharedFlow<ClientEvent> = flow

    override fun onEvent(event: ClientEvent) {
        flow.tryEmit(event)
    }
}

/** An account in its own directory, open against a relay. */
class Phone private constructor(
    val name: String,
    val dir: File,
    val key: ByteArray,
    val listener: ClientListener,
    val client: Client,
    val id: String,
) {
    companion object {
        suspend fun open(
            relay: RelayConfig,
            name: String,
            listener: ClientListener = FlowListener(),
            dir: File = Files.createTempDirectory("rankfile-kt-$name-").toFile(),
            key: ByteArray = ByteArray(32).also { SecureRandom().nextBytes(it) },
        ): Phone {
            val client = Client.open(dir.path, key, relay, listener)
            return Phone(name, dir, key, listener, client, client.accountId())
        }
    }

    val events: SharedFlow<ClientEvent> get() = (listener as FlowListener).events
}

/** Waits until `check` is true. */
suspend fun eventually(what: String, check: suspend () -> Boolean) {
    val deadline = System.currentTimeMillis() + PATIENCE_MS
    while (!check()) {
        if (System.currentTimeMillis() > deadline) throw AssertionError("timed out waiting for: $what")
        delay(50)
    }
}
