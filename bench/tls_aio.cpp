// aio's side of the TLS benchmark (bench/tls_compare.py): http_aio.cpp's keep-alive
// "hello world" and echo servers behind TLS — the same handlers, started with
// start_server(..., {.ssl = ctx}) — and the two ends of the bulk transfer, written
// the way an asyncio user would:
//
//     ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain(cert, key)
//     server = await asyncio.start_server(handle, "127.0.0.1", port, ssl=ctx)
//
//   tls_aio PORT https|echo CERT KEY   serve until SIGINT / SIGTERM
//   tls_aio PORT sink CERT KEY         accept one connection, read it to its end in
//                                      read(256 KiB) calls, print {"bytes": N,
//                                      "seconds": S} (from the accept), exit
//   tls_aio send PORT MIB CA           open_connection("127.0.0.1", PORT, {.ssl = ctx,
//                                      .server_hostname = "localhost"}) verifying
//                                      against CA, write MIB MiB in 1 MiB writes with
//                                      drain() after each, close(), wait_closed(),
//                                      print {"bytes": N, "seconds": S}
//
// TLS 1.3 only, as every peer of the benchmark.

#include <aio/aio.hpp>
#include <aio/tls.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "http_support.hpp"

namespace {

using steady = std::chrono::steady_clock;

aio::task<> serve_https(aio::stream_reader reader, aio::stream_writer writer) {
    try {
        for (;;) {
            co_await reader.readuntil("\r\n\r\n");
            writer.write(netbench::http_response);
            co_await writer.drain();
        }
    } catch (const aio::incomplete_read_error&) {  // the client hung up
    } catch (const aio::os_error&) {              // ... reset the connection, or broke TLS (aio::ssl_error)
    }
    writer.close();
}

aio::task<> serve_echo(aio::stream_reader reader, aio::stream_writer writer) {
    try {
        for (;;) {
            std::string data = co_await reader.read(65536);
            if (data.empty()) break;  // EOF (close_notify)
            writer.write(data);
            co_await writer.drain();
        }
    } catch (const aio::os_error&) {
    }
    writer.close();
}

struct sink_state {
    std::uint64_t bytes = 0;
    steady::time_point accepted{};
    double seconds = 0;
    aio::event done;
};

aio::task<> sink(aio::stream_reader reader, aio::stream_writer writer, sink_state* state) {
    state->accepted = steady::now();
    try {
        for (;;) {
            std::string data = co_await reader.read(1 << 18);
            if (data.empty()) break;
            state->bytes += data.size();
        }
    } catch (const aio::os_error& e) {
        std::fprintf(stderr, "tls_aio sink: %s\n", e.what());
    }
    writer.close();
    state->seconds = std::chrono::duration<double>(steady::now() - state->accepted).count();
    state->done.set();
}

aio::ssl_context server_context(const char* cert, const char* key) {
    aio::ssl_context ctx = aio::ssl_context::server();
    ctx.set_minimum_version(aio::tls_version::tls1_3);
    ctx.load_cert_chain(cert, key);
    return ctx;
}

aio::task<> serve(std::uint16_t port, std::string mode, aio::ssl_context ctx) {
    aio::server_options options;
    options.backlog = 1024;
    options.ssl = ctx;
    if (mode == "sink") {
        sink_state state;
        aio::server server = co_await aio::start_server(
            [&state](aio::stream_reader r, aio::stream_writer w) { return sink(std::move(r), std::move(w), &state); },
            "127.0.0.1", port, options);
        co_await state.done.wait();
        server.close();
        std::printf("{\"bytes\": %llu, \"seconds\": %.6f}\n", static_cast<unsigned long long>(state.bytes), state.seconds);
        co_return;
    }
    aio::server server =
        co_await aio::start_server(mode == "echo" ? serve_echo : serve_https, "127.0.0.1", port, options);
    std::printf("tls_aio: %s on 127.0.0.1:%u\n", mode.c_str(), server.sockets().at(0).port());
    std::fflush(stdout);
    co_await server.serve_forever();
}

aio::task<> send(std::uint16_t port, long mib, const char* ca) {
    aio::ssl_context ctx = aio::ssl_context::client();
    ctx.set_minimum_version(aio::tls_version::tls1_3);
    ctx.load_verify_locations(ca);
    aio::connection_options options;
    options.ssl = ctx;
    options.server_hostname = "localhost";
    const auto start = steady::now();
    auto [reader, writer] = co_await aio::open_connection("127.0.0.1", port, options);
    const std::string chunk(std::size_t{1} << 20, 'x');
    std::uint64_t sent = 0;
    for (long i = 0; i < mib; ++i) {
        writer.write(chunk);
        co_await writer.drain();
        sent += chunk.size();
    }
    writer.close();
    co_await writer.wait_closed();
    const double seconds = std::chrono::duration<double>(steady::now() - start).count();
    std::printf("{\"bytes\": %llu, \"seconds\": %.6f}\n", static_cast<unsigned long long>(sent), seconds);
}

[[noreturn]] void usage() {
    std::fprintf(stderr,
                 "usage: tls_aio PORT https|echo|sink CERT KEY\n"
                 "       tls_aio send PORT MIB CA\n");
    std::exit(2);
}

std::uint16_t parse_port(const char* text) {
    char* end = nullptr;
    const long port = std::strtol(text, &end, 10);
    if (*end != '\0' || port <= 0 || port > 65535) usage();
    return static_cast<std::uint16_t>(port);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 5) usage();
    try {
        if (std::strcmp(argv[1], "send") == 0) {
            const long mib = std::atol(argv[3]);
            if (mib <= 0) usage();
            aio::run(send(parse_port(argv[2]), mib, argv[4]));
            return 0;
        }
        const std::string mode = argv[2];
        if (mode != "https" && mode != "echo" && mode != "sink") usage();
        aio::run(serve(parse_port(argv[1]), mode, server_context(argv[3], argv[4])));
    } catch (const aio::keyboard_interrupt&) {
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "tls_aio: %s\n", e.what());
        return 1;
    }
    return 0;
}
