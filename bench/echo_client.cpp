// The echo load of the network benchmark (bench/net_compare.py): N connections to
// 127.0.0.1:PORT, each sending a SIZE-byte message (64 by default) and waiting for all
// of it to come back before sending the next, for SECONDS; counts the round trips.
// One thread, edge-triggered epoll; every echo is checked byte for byte.
//
//   echo_client PORT CONNECTIONS SECONDS [SIZE]
//
// Prints one JSON line: {"roundtrips": ..., "seconds": ..., "roundtrips_per_s": ...,
// "errors": ..., "mismatches": ...}. Exit status 1 when a connection could not be made,
// failed, or an echo differed.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

struct connection {
    int fd = -1;
    std::size_t sent = 0;      // of the current message
    std::size_t received = 0;  // of its echo
    bool alive = true;
};

std::string message;
std::uint64_t roundtrips = 0, errors = 0, mismatches = 0;
bool running = true;

void fail(connection& c) {
    if (!c.alive) return;
    c.alive = false;
    ++errors;
    ::close(c.fd);
}

void send_more(connection& c) {
    while (c.alive && c.sent < message.size()) {
        const ssize_t n = ::send(c.fd, message.data() + c.sent, message.size() - c.sent, MSG_NOSIGNAL);
        if (n > 0) {
            c.sent += static_cast<std::size_t>(n);
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && errno == EAGAIN) {
            return;  // the output edge resumes it
        } else {
            fail(c);
        }
    }
}

void receive(connection& c) {
    char buffer[65536];
    while (c.alive) {
        const ssize_t n = ::recv(c.fd, buffer, sizeof buffer, 0);
        if (n == 0) return fail(c);  // the server hung up
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN) fail(c);
            return;
        }
        const auto got = static_cast<std::size_t>(n);
        if (c.received + got > c.sent || std::memcmp(buffer, message.data() + c.received, got) != 0) {
            ++mismatches;
            return fail(c);
        }
        c.received += got;
        if (c.received == message.size()) {
            ++roundtrips;
            c.sent = c.received = 0;
            if (running) send_more(c);
        }
        if (got < sizeof buffer) return;
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 4 || argc > 5) {
        std::fprintf(stderr, "usage: echo_client PORT CONNECTIONS SECONDS [SIZE]\n");
        return 2;
    }
    const int port = std::atoi(argv[1]);
    const int count = std::atoi(argv[2]);
    const double seconds = std::atof(argv[3]);
    const int size = argc > 4 ? std::atoi(argv[4]) : 64;
    if (port <= 0 || port > 65535 || count <= 0 || seconds <= 0 || size <= 0) {
        std::fprintf(stderr, "echo_client: bad arguments\n");
        return 2;
    }
    ::signal(SIGPIPE, SIG_IGN);
    message.resize(static_cast<std::size_t>(size));
    for (int i = 0; i < size; ++i) message[static_cast<std::size_t>(i)] = static_cast<char>('a' + i % 26);
    message.back() = '\n';

    const int epfd = ::epoll_create1(EPOLL_CLOEXEC);
    std::vector<connection> connections(static_cast<std::size_t>(count));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (connection& c : connections) {
        c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c.fd < 0 || ::connect(c.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) {
            std::perror("echo_client: connect");
            return 1;
        }
        const int one = 1;
        ::setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        ::fcntl(c.fd, F_SETFL, O_NONBLOCK);
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLOUT | EPOLLET;
        ev.data.ptr = &c;
        if (::epoll_ctl(epfd, EPOLL_CTL_ADD, c.fd, &ev) < 0) {
            std::perror("echo_client: epoll_ctl");
            return 1;
        }
    }

    using clock = std::chrono::steady_clock;
    const auto start = clock::now();
    const auto deadline = start + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(seconds));
    for (connection& c : connections) send_more(c);
    std::vector<epoll_event> events(static_cast<std::size_t>(count));
    for (;;) {
        const auto now = clock::now();
        if (now >= deadline) break;
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count() + 1;
        const int n = ::epoll_wait(epfd, events.data(), count, static_cast<int>(left));
        if (n < 0 && errno != EINTR) {
            std::perror("echo_client: epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; ++i) {
            connection& c = *static_cast<connection*>(events[static_cast<std::size_t>(i)].data.ptr);
            if (events[static_cast<std::size_t>(i)].events & EPOLLOUT) send_more(c);
            if (events[static_cast<std::size_t>(i)].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) receive(c);
        }
    }
    const double elapsed = std::chrono::duration<double>(clock::now() - start).count();
    running = false;
    for (connection& c : connections)
        if (c.alive) ::close(c.fd);
    std::printf("{\"roundtrips\": %llu, \"seconds\": %.6f, \"roundtrips_per_s\": %.1f, \"connections\": %d, "
                "\"size\": %d, \"errors\": %llu, \"mismatches\": %llu}\n",
                static_cast<unsigned long long>(roundtrips), elapsed, static_cast<double>(roundtrips) / elapsed, count,
                size, static_cast<unsigned long long>(errors), static_cast<unsigned long long>(mismatches));
    return errors || mismatches ? 1 : 0;
}
