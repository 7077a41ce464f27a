// aio::start_server under load (include/aio/net/server.hpp): ten thousand clients
// connected to one server at once, each echoed; the server is one loop on one thread,
// the clients another process's.
#include <aio/gather.hpp>
#include <aio/net/server.hpp>
#include <aio/net/streams.hpp>
#include <aio/run.hpp>
#include <aio/sleep.hpp>
#include <aio/to_thread.hpp>
#include <aio/task.hpp>
#include <aio/wait_for.hpp>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "support/catch.hpp"
#include "support/descriptors.hpp"

using namespace std::chrono_literals;

using aio_test::open_descriptors;

namespace {

// Raises the descriptor limit for the test (root may raise the hard limit too);
// restores it after.
struct descriptor_limit {
    rlimit old{};
    bool raised = false;
    explicit descriptor_limit(rlim_t wanted) {
        ::getrlimit(RLIMIT_NOFILE, &old);
        rlimit want{wanted, std::max<rlim_t>(wanted, old.rlim_max)};
        raised = ::setrlimit(RLIMIT_NOFILE, &want) == 0;
        if (!raised) {  // not root: as far as the hard limit goes
            want = {old.rlim_max, old.rlim_max};
            ::setrlimit(RLIMIT_NOFILE, &want);
        }
    }
    ~descriptor_limit() { ::setrlimit(RLIMIT_NOFILE, &old); }
};

aio::task<> echo(aio::stream_reader reader, aio::stream_writer writer) {
    std::string line = co_await reader.readline();
    writer.write(line);
    co_await writer.drain();
    // Stay connected until the client has had its answer and goes.
    (void)co_await reader.read();
    writer.close();
}

aio::task<std::size_t> client(std::uint16_t port, int i, int& connected, int total, aio::event& all_connected) {
    auto [reader, writer] = co_await aio::open_connection("127.0.0.1", port);
    if (++connected == total) all_connected.set();
    co_await all_connected.wait();  // every connection open at once
    const std::string line = "client " + std::to_string(i) + "\n";
    writer.write(line);
    co_await writer.drain();
    const std::string answer = co_await reader.readline();
    writer.close();
    co_await writer.wait_closed();
    co_return answer == line ? 1 : 0;
}

constexpr int clients = 10'000;

// A port free now (bound and let go: the server binds it again with SO_REUSEADDR).
std::uint16_t free_port() {
    aio::socket s(AF_INET, SOCK_STREAM);
    s.bind(aio::socket_address::ip("127.0.0.1", 0));
    return s.local_address().port();
}

// The clients, in a child process of their own (each process then needs ten thousand
// descriptors, not twenty): exit status 0 when every one was echoed.
int run_clients(std::uint16_t port) {
    try {
        std::size_t echoed = 0;
        aio::run([](std::uint16_t p, std::size_t& n) -> aio::task<> {
            for (int tries = 0;; ++tries) {  // until the parent's server listens
                try {
                    auto pair = co_await aio::open_connection("127.0.0.1", p);
                    pair.second.write("\n");
                    co_await pair.second.drain();
                    (void)co_await pair.first.readline();
                    break;
                } catch (const aio::os_error&) {
                    if (tries == 500) throw;
                }
                co_await aio::sleep(10ms);
            }
            int connected = 0;
            aio::event all_connected;
            std::vector<aio::task<std::size_t>> all;
            for (int i = 0; i < clients; ++i) all.push_back(client(p, i, connected, clients, all_connected));
            for (std::size_t x : co_await aio::wait_for(aio::gather(std::move(all)), 120s)) n += x;
        }(port, echoed));
        return echoed == clients ? 0 : 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "clients: %s\n", e.what());
        return 2;
    }
}

}  // namespace

TEST_CASE("ten thousand clients connected to one server at once are each echoed") {
    descriptor_limit limit(clients + 1024);
    rlimit now{};
    ::getrlimit(RLIMIT_NOFILE, &now);
    if (now.rlim_cur < clients + 200) {
        WARN("skipped: the descriptor limit is " << now.rlim_cur << " and cannot be raised");
        return;
    }
    const std::size_t before = open_descriptors();
    const std::uint16_t port = free_port();
    std::fflush(nullptr);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) ::_exit(run_clients(port));
    int status = -1;
    aio::run([](std::uint16_t p, pid_t c, int& st) -> aio::task<> {
        aio::server srv = co_await aio::start_server(echo, "127.0.0.1", p, {.backlog = 4096});
        // The clients' process ends when they are done (or after their own time limit).
        st = co_await aio::to_thread([c] {
            int s = -1;
            ::waitpid(c, &s, 0);
            return s;
        });
        srv.close();
        co_await aio::wait_for(srv.wait_closed(), 30s);
    }(port, child, status));
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 0);
    REQUIRE(open_descriptors() == before);
}
