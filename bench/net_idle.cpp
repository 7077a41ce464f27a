// What an idle connection costs an aio server: 10,000 keep-alive connections held open
// on one loop, each with its handler waiting in reader.read(), as an asyncio server's
// would. The figure is the growth of the process's resident set (VmRSS) from a
// listening server to one holding every connection, per connection: the kernel's
// socket buffers are not part of it (they are kernel memory), aio's transport, stream
// objects, task and coroutine frame are.
//
// The clients are plain blocking sockets in a child process (forked before the loop
// starts), so that nothing of theirs is in the figure and each process needs only one
// descriptor a connection. Everything is on 127.0.0.1.
//
//   net_idle [CONNECTIONS]     10000 by default; prints one JSON object
#include <aio/aio.hpp>

#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "proc_status.hpp"

namespace {

struct state {
    int connected = 0;   // handlers running
    int wanted = 0;
    aio::event all_in;   // every connection is held
    aio::event release;  // the clients may go
};

aio::task<> idle_handler(state& s, aio::stream_reader reader, aio::stream_writer writer) {
    if (++s.connected == s.wanted) s.all_in.set();
    try {
        (void)co_await reader.read(65536);  // nothing comes until the client closes
    } catch (const aio::connection_error&) {
    }
    --s.connected;
    writer.close();
}

void raise_descriptor_limit(rlim_t wanted) {
    rlimit limit{};
    ::getrlimit(RLIMIT_NOFILE, &limit);
    if (limit.rlim_cur >= wanted) return;
    limit.rlim_cur = wanted;
    if (limit.rlim_max < wanted) limit.rlim_max = wanted;  // needs CAP_SYS_RESOURCE
    if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) {
        std::fprintf(stderr, "net_idle: cannot raise RLIMIT_NOFILE to %llu: %s\n",
                     static_cast<unsigned long long>(wanted), std::strerror(errno));
        std::exit(1);
    }
}

// The clients' process: reads the port from `commands`, connects `count` blocking
// sockets, says so on `replies`, and holds them until `commands` ends.
[[noreturn]] void clients(int count, int commands, int replies) {
    std::uint16_t port = 0;
    if (::read(commands, &port, sizeof port) != sizeof port) std::_Exit(1);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    std::vector<int> fds;
    for (int i = 0; i < count; ++i) {
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || ::connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof to) != 0) {
            std::fprintf(stderr, "net_idle: connection %d: %s\n", i, std::strerror(errno));
            std::_Exit(1);
        }
        fds.push_back(fd);
    }
    const char ok = 1;
    if (::write(replies, &ok, 1) != 1) std::_Exit(1);
    char end = 0;
    while (::read(commands, &end, 1) > 0) {
    }
    std::_Exit(0);  // the connections close with the process
}

aio::task<> run(int count, int commands, int replies) {
    state s;
    auto handler = [&s](aio::stream_reader r, aio::stream_writer w) { return idle_handler(s, std::move(r), std::move(w)); };
    aio::server server = co_await aio::start_server(handler, "127.0.0.1", 0, {.backlog = 4096});
    const std::uint16_t port = server.sockets().at(0).port();

    // Warm-up: one connection made and ended, so that the loop's own lazily made
    // parts (the poller's tables, the scratch block) are in the first figure.
    {
        s.wanted = 1;
        aio::socket one(AF_INET, SOCK_STREAM);
        co_await aio::get_running_loop().sock_connect(one.fd(), server.sockets().at(0));
        co_await s.all_in.wait();
        one.close();
        while (s.connected > 0) co_await aio::sleep(std::chrono::milliseconds(1));
        s.all_in.clear();
    }
    s.wanted = count;
    const std::int64_t before = aio_bench::vm_rss_bytes();

    if (::write(commands, &port, sizeof port) != sizeof port) throw std::runtime_error("net_idle: the clients are gone");
    co_await aio::wait_readable(replies);
    char ok = 0;
    if (::read(replies, &ok, 1) != 1) throw std::runtime_error("net_idle: the clients failed");
    co_await s.all_in.wait();
    co_await aio::sleep(std::chrono::milliseconds(50));  // every handler is in read()
    const std::int64_t after = aio_bench::vm_rss_bytes();

    ::close(commands);  // the clients hang up
    while (s.connected > 0) co_await aio::sleep(std::chrono::milliseconds(1));
    server.close();
    co_await server.wait_closed();

    const double per_connection = static_cast<double>(after - before) / count;
    std::printf("{\"connections\": %d, \"rss_before\": %lld, \"rss_after\": %lld, \"bytes_per_connection\": %.0f}\n", count,
                static_cast<long long>(before), static_cast<long long>(after), per_connection);
}

}  // namespace

int main(int argc, char** argv) {
    char* end = nullptr;
    const long count = argc > 1 ? std::strtol(argv[1], &end, 10) : 10000;
    if (argc > 2 || (argc == 2 && *end != '\0') || count < 1 || count > 100000) {
        std::fprintf(stderr, "usage: net_idle [CONNECTIONS]   (1 to 100000)\n");
        return 2;
    }
    raise_descriptor_limit(static_cast<rlim_t>(count + 64));
    int commands[2], replies[2];
    if (::pipe2(commands, O_CLOEXEC) != 0 || ::pipe2(replies, O_CLOEXEC) != 0) {
        std::perror("net_idle: pipe2");
        return 1;
    }
    const pid_t child = ::fork();
    if (child < 0) {
        std::perror("net_idle: fork");
        return 1;
    }
    if (child == 0) {
        ::close(commands[1]);
        ::close(replies[0]);
        clients(static_cast<int>(count), commands[0], replies[1]);
    }
    ::close(commands[0]);
    ::close(replies[1]);
    aio::run(run(static_cast<int>(count), commands[1], replies[0]));
    ::close(replies[0]);
    int status = 0;
    ::waitpid(child, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
