// The Kotlin half of `cargo xtask bench-ffi`: opens a copy of the offline
// phone's store through the generated bindings and times it from open to
// the last of the backlog's messages counted by a Kotlin listener, as
// `ffi-catchup rust` does through the Rust facade. Prints `ms=<milliseconds>`.
//
// usage: CatchUpBench <dir> <relay addr> <fingerprint> <messages>
package org.rankfile.ffi

import java.io.File
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicLong
import kotlin.system.exitProcess
import kotlinx.coroutines.runBlocking
import uniffi.rankfile_ffi.Client
import uniffi.rankfile_ffi.ClientEvent
import uniffi.rankfile_ffi.ClientException
import uniffi.rankfile_ffi.ClientListener
import uniffi.rankfile_ffi.RelayConfig

/** Counts stored messages (1:1 and posts) and opens the latch at `target`. */
class CountingListener(private val target: Long) : ClientListener {
    val stored = AtomicLong()
    val missed = AtomicLong()
    val done = CountDownLatch(1)

    override fun onEvent(event: ClientEvent) {
        val n = when (event) {
            is ClientEvent.MessageReceived, is ClientEvent.PostReceived -> stored.incrementAndGet()
            is ClientEvent.Missed -> {
                missed.addAndGet(event.count.toLong())
                return
            }
            else -> return
        }
        if (n == target) done.countDown()
    }
}

fun main(args: Array<String>) = runBlocking {
    if (args.size != 4) {
        System.err.println("usage: CatchUpBench <dir> <relay addr> <fingerprint> <messages>")
        exitProcess(2)
    }
    val (dir, addr, fp) = args
    val n = args[3].toLong()
    val key = File(dir, "key").readText().trim().chunked(2).map { it.toInt(16).toByte() }.toByteArray()
    val relay = RelayConfig(addr, fp)
    // Load the library and check its contract before the clock starts: an
    // app has done so long before it catches up.
    try {
        Client.open(File(dir, "nothing").path, ByteArray(0), RelayConfig("", ""), CountingListener(0))
    } catch (e: ClientException.InvalidRelay) {
    }
    val listener = CountingListener(n)
    val start = System.nanoTime()
    val client = Client.open(File(dir, "phone").path, key, relay, listener)
    if (!listener.done.await(600, TimeUnit.SECONDS)) {
        System.err.println("only ${listener.stored.get()} of $n messages arrived (${listener.missed.get()} missed)")
        exitProcess(1)
    }
    val ms = (System.nanoTime() - start) / 1_000_000
    client.shutdown()
    println("ms=$ms")
}
