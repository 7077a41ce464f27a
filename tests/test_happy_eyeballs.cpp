// open_connection's address order and its staggered race (include/aio/net/streams.hpp):
// RFC 8305 interleaving, the next attempt starting when the last one fails or the delay
// has passed, the first to connect winning, and one error naming every failed attempt.
// Ports of CPython's test_staggered and test_base_events' multiple-errors case, on
// loopback.
#include <aio/net/server.hpp>
#include <aio/net/streams.hpp>
#include <aio/run.hpp>
#include <aio/sleep.hpp>
#include <aio/task.hpp>
#include <aio/wait_for.hpp>

#include <sys/socket.h>

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include "support/catch.hpp"
#include "support/descriptors.hpp"

using namespace std::chrono_literals;

using aio_test::open_descriptors;

namespace {

aio::address_info tcp(std::uint16_t port, const char* host = "127.0.0.1") {
    const aio::socket_address a = aio::socket_address::ip(host, port);
    return {a.family(), SOCK_STREAM, 0, {}, a};
}

// A port nothing listens on: bound, never listening (connects are refused).
struct refused_port {
    aio::socket s{AF_INET, SOCK_STREAM};
    std::uint16_t port;
    refused_port() : port((s.bind(aio::socket_address::ip("127.0.0.1", 0)), s.local_address().port())) {}
};

// A listener whose accept queue is full: a further connect's SYN is dropped, and the
// connect hangs.
struct full_listener {
    aio::socket listener{AF_INET, SOCK_STREAM};
    std::vector<aio::socket> queued;
    std::uint16_t port;
    full_listener() {
        listener.bind(aio::socket_address::ip("127.0.0.1", 0));
        listener.listen(0);
        port = listener.local_address().port();
        // Fill the queue: connects that complete (the backlog admits one or two).
        for (int i = 0; i < 4; ++i) {
            aio::socket c(AF_INET, SOCK_STREAM);
            const auto a = listener.local_address();
            ::connect(c.fd(), a.data(), a.size());
            queued.push_back(std::move(c));
        }
    }
};

aio::task<> greet(aio::stream_reader, aio::stream_writer writer) {
    writer.write("hello\n");
    co_await writer.drain();
    writer.close();
}

std::vector<std::string> families(const std::vector<aio::address_info>& v) {
    std::vector<std::string> out;
    for (const auto& a : v) out.push_back(a.family == AF_INET ? "4" : "6");
    return out;
}

}  // namespace

TEST_CASE("interleave puts the first family's first addresses first, then alternates, as RFC 8305 says") {
    const std::vector<aio::address_info> v = {tcp(1, "::1"), tcp(2, "::1"), tcp(3, "::1"), tcp(4), tcp(5)};
    REQUIRE(families(aio::detail::interleave(v, 1)) == std::vector<std::string>{"6", "4", "6", "4", "6"});
    REQUIRE(families(aio::detail::interleave(v, 2)) == std::vector<std::string>{"6", "6", "4", "6", "4"});
    const auto ordered = aio::detail::interleave(v, 1);
    REQUIRE(ordered[0].address.port() == 1);
    REQUIRE(ordered[2].address.port() == 2);
    REQUIRE(ordered[4].address.port() == 3);
}

TEST_CASE("the race starts the second address at once when the first fails, and the second wins") {
    const std::size_t before = open_descriptors();
    aio::run([]() -> aio::task<> {
        aio::server srv = co_await aio::start_server(greet, "127.0.0.1", 0);
        refused_port refused;
        std::vector<aio::address_info> order = {tcp(refused.port), tcp(srv.sockets().at(0).port())};  // named: g++ 12
        const auto start = std::chrono::steady_clock::now();
        aio::socket s = co_await aio::wait_for(aio::detail::race(std::move(order), std::nullopt, 10s), 5s);
        REQUIRE(std::chrono::steady_clock::now() - start < 5s);  // did not wait the 10 s delay
        REQUIRE(s.peer_address().port() == srv.sockets().at(0).port());
        srv.close();
        co_await srv.wait_closed();
    }());
    REQUIRE(open_descriptors() == before);
}

TEST_CASE("the race starts the second address once the delay has passed while the first hangs, and cancels the first") {
    const std::size_t before = open_descriptors();
    aio::run([]() -> aio::task<> {
        aio::server srv = co_await aio::start_server(greet, "127.0.0.1", 0);
        full_listener hanging;
        std::vector<aio::address_info> order = {tcp(hanging.port), tcp(srv.sockets().at(0).port())};
        aio::socket s = co_await aio::wait_for(aio::detail::race(std::move(order), std::nullopt, 50ms), 5s);
        REQUIRE(s.peer_address().port() == srv.sockets().at(0).port());
        srv.close();
        co_await srv.wait_closed();
    }());
    REQUIRE(open_descriptors() == before);  // the hanging attempt's socket is closed
}

TEST_CASE("open_connection with happy_eyeballs_delay connects and reads through the stream") {
    aio::run([]() -> aio::task<> {
        aio::server srv = co_await aio::start_server(greet, "127.0.0.1", 0);
        aio::connection_options options{.happy_eyeballs_delay = 250ms};
        auto [reader, writer] = co_await aio::wait_for(aio::open_connection("127.0.0.1", srv.sockets().at(0).port(), options), 5s);
        const std::string line = co_await aio::wait_for(reader.readline(), 5s);
        REQUIRE(line == "hello\n");
        writer.close();
        co_await writer.wait_closed();
        srv.close();
        co_await srv.wait_closed();
    }());
}

TEST_CASE("every address failing gives one os_error naming each attempt, as create_connection's multiple errors") {
    const std::size_t before = open_descriptors();
    aio::run([]() -> aio::task<> {
        refused_port a, b;
        std::string what;
        std::vector<aio::address_info> order = {tcp(a.port), tcp(b.port)};
        try {
            (void)co_await aio::detail::race(std::move(order), std::nullopt, 1s);
        } catch (const aio::os_error& e) {
            what = e.what();
        }
        REQUIRE(what.find("Multiple exceptions: ") == 0);
        REQUIRE(what.find("127.0.0.1:" + std::to_string(a.port)) != std::string::npos);
        REQUIRE(what.find("127.0.0.1:" + std::to_string(b.port)) != std::string::npos);
    }());
    REQUIRE(open_descriptors() == before);
}

TEST_CASE("a single failed address gives its own error: connection_refused_error") {
    aio::run([]() -> aio::task<> {
        refused_port a;
        bool refused = false;
        aio::connection_options options{.happy_eyeballs_delay = 100ms};
        try {
            (void)co_await aio::open_connection("127.0.0.1", a.port, options);
        } catch (const aio::connection_refused_error&) {
            refused = true;
        }
        REQUIRE(refused);
    }());
}

TEST_CASE("cancelling open_connection during the race cancels every attempt and leaks no descriptor") {
    const std::size_t before = open_descriptors();
    aio::run([]() -> aio::task<> {
        full_listener hanging;
        bool timed_out = false;
        std::vector<aio::address_info> order = {tcp(hanging.port), tcp(hanging.port), tcp(hanging.port)};
        try {
            (void)co_await aio::wait_for(aio::detail::race(std::move(order), std::nullopt, 20ms), 200ms);
        } catch (const aio::timeout_error&) {
            timed_out = true;
        }
        REQUIRE(timed_out);
        co_await aio::sleep(10ms);  // the cancelled attempts end
    }());
    REQUIRE(open_descriptors() == before);
}
