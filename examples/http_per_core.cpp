// One loop per core serving HTTP: each loop runs on a thread of its own, and the
// connections are shared among them in one of two ways.
//
//   reuse_port  every loop listens on the same port with SO_REUSEPORT, and the kernel
//               picks a listener for each new connection by a hash of its addresses;
//   hand_off    one loop accepts every connection (loop.sock_accept) and hands each to
//               the next loop in turn, which makes a stream of it with
//               open_connection(socket) (asio's io_context-per-CPU server).
//
// The kernel's hash knows nothing of load, so reuse_port may leave one loop with more
// connections than another (Seastar turns SO_REUSEPORT off for that); hand_off deals
// them out evenly, and costs the accepting loop a hand-off per connection.
//
//   http_per_core [LOOPS]
//       Both ways in turn, each with 40 keep-alive clients making 25 requests; prints
//       how many connections and requests each loop served. LOOPS: one per core.
//   http_per_core serve reuse_port|hand_off PORT [LOOPS]
//       Serves on 127.0.0.1:PORT until Ctrl-C, then prints the same (for a load
//       generator such as wrk: bench/per_core.py).
#include <aio/aio.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

constexpr std::string_view response =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Length: 12\r\n"
    "\r\n"
    "Hello world\n";
constexpr std::string_view request = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

enum class strategy { reuse_port, hand_off };

const char* name_of(strategy s) { return s == strategy::reuse_port ? "reuse_port" : "hand_off"; }

// One loop and what it served. The counts are the loop's own; they are read once its
// thread has ended.
struct shard {
    aio::event_loop loop;
    std::thread thread;
    std::optional<aio::server> server;  // reuse_port: this loop's listener
    std::uint64_t connections = 0;
    std::uint64_t requests = 0;
    int open = 0;                    // connections not yet ended
    aio::event* idle = nullptr;      // set when the last one ends, while someone waits
};

// Reads request heads and answers each with the same page, until the client hangs up.
aio::task<> serve(shard& s, aio::stream_reader reader, aio::stream_writer writer) {
    ++s.connections;
    ++s.open;
    try {
        for (;;) {
            co_await reader.readuntil("\r\n\r\n");
            ++s.requests;
            writer.write(response);
            co_await writer.drain();
        }
    } catch (const aio::incomplete_read_error&) {  // the client hung up
    } catch (const aio::connection_error&) {      // ... or reset the connection
    } catch (const aio::limit_overrun_error&) {   // ... or sent a head over 64 KiB
    }
    writer.close();
    if (--s.open == 0 && s.idle) s.idle->set();
}

// Until every connection of this loop has ended, for at most five seconds (a client
// that never hangs up is then left to the loop's close, which cancels its task).
aio::task<> connections_ended(shard& s) {
    if (s.server) s.server->close();  // reuse_port: accept no more
    aio::event idle;
    s.idle = &idle;
    try {
        if (s.open > 0) co_await aio::wait_for(idle.wait(), std::chrono::seconds(5));
    } catch (const aio::timeout_error&) {
    }
    s.idle = nullptr;
    s.server.reset();
}

// hand_off: a connection accepted by another loop, served on this one.
aio::task<> serve_socket(shard& s, aio::socket connection) {
    std::optional<aio::stream_pair> stream;
    try {
        stream = co_await aio::open_connection(std::move(connection));
    } catch (const aio::os_error&) {  // the client left before its turn came
    }
    if (!stream) co_return;
    co_await serve(s, std::move(stream->first), std::move(stream->second));
}

// reuse_port: this loop's own listener on `port` (0: the kernel picks one, which the
// other loops then share).
aio::task<std::uint16_t> listen(shard& s, std::uint16_t port) {
    auto handler = [&s](aio::stream_reader r, aio::stream_writer w) { return serve(s, std::move(r), std::move(w)); };
    s.server = co_await aio::start_server(handler, "127.0.0.1", port, {.backlog = 1024, .reuse_port = true});
    co_return s.server->sockets().at(0).port();
}

// hand_off: the accepting loop deals each connection to the next loop in turn.
aio::task<> accept_and_hand_off(std::vector<std::unique_ptr<shard>>& shards, aio::socket listener) {
    aio::event_loop& loop = aio::get_running_loop();
    for (std::size_t next = 0;; next = (next + 1) % shards.size()) {
        auto [connection, peer] = co_await loop.sock_accept(listener.fd());
        shard& to = *shards[next];
        to.loop.call_soon_threadsafe(
            [&to, c = std::move(connection)]() mutable { to.loop.create_task(serve_socket(to, std::move(c))); });
    }
}

// The loops, their threads, and the listener of the chosen strategy.
class per_core_server {
public:
    per_core_server(strategy how, int loops) : how_(how) {
        for (int i = 0; i < loops; ++i) {
            shards_.push_back(std::make_unique<shard>());
            shard& s = *shards_.back();
            s.thread = std::thread([&s] { s.loop.run_forever(); });
        }
    }
    per_core_server(const per_core_server&) = delete;
    per_core_server& operator=(const per_core_server&) = delete;
    ~per_core_server() { join(); }

    // Listens on 127.0.0.1:port; gives the port.
    aio::task<std::uint16_t> start(std::uint16_t port) {
        if (how_ == strategy::reuse_port) {
            for (auto& s : shards_) port = co_await aio::run_on(s->loop, listen(*s, port));
            co_return port;
        }
        aio::socket listener(AF_INET, SOCK_STREAM);
        listener.set_option(SOL_SOCKET, SO_REUSEADDR, 1);
        listener.bind(aio::socket_address::ip("127.0.0.1", port));
        listener.listen(1024);
        port = listener.local_address().port();
        accepting_ = aio::run_coroutine_threadsafe(accept_and_hand_off(shards_, std::move(listener)), shards_[0]->loop);
        co_return port;
    }

    // Stops accepting, waits for the connections to end, stops the loops.
    aio::task<> stop() {
        if (accepting_) accepting_->cancel();  // hand_off: the accepting task, and its listener
        for (auto& s : shards_) co_await aio::run_on(s->loop, connections_ended(*s));
        join();
    }

    void print(const char* label) const {
        std::uint64_t connections = 0, requests = 0;
        for (const auto& s : shards_) {
            connections += s->connections;
            requests += s->requests;
        }
        std::printf("%s: %llu connections, %llu requests answered\n", label, static_cast<unsigned long long>(connections),
                    static_cast<unsigned long long>(requests));
        for (std::size_t i = 0; i < shards_.size(); ++i) {
            const double share = requests ? 100.0 * static_cast<double>(shards_[i]->requests) / static_cast<double>(requests) : 0.0;
            std::printf("%s: loop %zu served %llu connections, %llu requests (%.0f%%)\n", label, i,
                        static_cast<unsigned long long>(shards_[i]->connections),
                        static_cast<unsigned long long>(shards_[i]->requests), share);
        }
    }

private:
    void join() {
        for (auto& s : shards_)
            if (s->thread.joinable()) {
                s->loop.call_soon_threadsafe([&loop = s->loop] { loop.stop(); });
                s->thread.join();
            }
    }

    strategy how_;
    std::vector<std::unique_ptr<shard>> shards_;
    std::optional<aio::concurrent_future<void>> accepting_;
};

// --- the demo's client: keep-alive connections on the main loop

aio::task<int> client(std::uint16_t port, int requests) {
    auto [reader, writer] = co_await aio::open_connection("127.0.0.1", port);
    int answered = 0;
    for (int i = 0; i < requests; ++i) {
        writer.write(request);
        co_await writer.drain();
        co_await reader.readuntil("\r\n\r\n");
        co_await reader.readexactly(12);
        ++answered;
    }
    writer.close();
    co_await writer.wait_closed();
    co_return answered;
}

aio::task<> demo(int loops) {
    constexpr int connections = 40;
    constexpr int requests = 25;
    std::printf("%d loops, each on a thread of its own, serving HTTP on 127.0.0.1\n", loops);
    for (strategy how : {strategy::reuse_port, strategy::hand_off}) {
        per_core_server server(how, loops);
        const std::uint16_t port = co_await server.start(0);
        std::vector<aio::task<int>> clients;
        for (int i = 0; i < connections; ++i) clients.push_back(client(port, requests));
        int answered = 0;
        for (int n : co_await aio::gather(std::move(clients))) answered += n;
        co_await server.stop();
        if (answered != connections * requests) std::printf("%s: only %d answers\n", name_of(how), answered);
        server.print(name_of(how));
    }
}

// --- serve mode

aio::task<> serve_until_interrupted(strategy how, std::uint16_t port, int loops) {
    per_core_server server(how, loops);
    port = co_await server.start(port);
    std::printf("http_per_core: %s with %d loops on 127.0.0.1:%u\n", name_of(how), loops, port);
    std::fflush(stdout);
    try {
        for (;;) co_await aio::sleep(std::chrono::hours(1));  // until Ctrl-C cancels it
    } catch (const aio::cancelled_error&) {
    }
    co_await aio::shield(server.stop());
    server.print(name_of(how));
    std::fflush(stdout);
}

int loops_from(const char* arg) {
    char* end = nullptr;
    const long n = std::strtol(arg, &end, 10);
    if (*end != '\0' || n < 1 || n > 256) {
        std::fprintf(stderr, "http_per_core: LOOPS must be 1 to 256, not '%s'\n", arg);
        std::exit(2);
    }
    return static_cast<int>(n);
}

[[noreturn]] void usage() {
    std::fprintf(stderr, "usage: http_per_core [LOOPS]\n       http_per_core serve reuse_port|hand_off PORT [LOOPS]\n");
    std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    if (argc >= 2 && std::strcmp(argv[1], "serve") == 0) {
        if (argc < 4 || argc > 5) usage();
        strategy how = strategy::reuse_port;
        if (std::strcmp(argv[2], "hand_off") == 0) how = strategy::hand_off;
        else if (std::strcmp(argv[2], "reuse_port") != 0) usage();
        char* end = nullptr;
        const long port = std::strtol(argv[3], &end, 10);
        if (*end != '\0' || port < 0 || port > 65535) usage();
        try {
            aio::run(serve_until_interrupted(how, static_cast<std::uint16_t>(port), argc == 5 ? loops_from(argv[4]) : cores));
        } catch (const aio::keyboard_interrupt&) {
        }
        return 0;
    }
    if (argc > 2) usage();
    aio::run(demo(argc == 2 ? loops_from(argv[1]) : cores));
}
