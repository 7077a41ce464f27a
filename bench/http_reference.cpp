// The floor of the network benchmark (bench/net_compare.py): what a single-threaded
// server costs with nothing between it and epoll. Plain C++, no aio, no coroutines,
// no per-request allocation.
//
// - One epoll instance; the listening socket level-triggered, each connection
//   registered once, edge-triggered, for input and output.
// - An input edge reads into a fixed buffer until a read comes back short (the socket
//   is drained then: no read is wasted on EAGAIN — the same rule as aio's transport),
//   unless the edge carried EPOLLRDHUP: then on to the EOF, which came with the data.
// - HTTP: counts the "\r\n\r\n" that end request heads (across reads: a four-state
//   matcher) and answers each with the fixed response, all of one read's answers in
//   one write. Echo: writes back what came.
// - A write the kernel does not take whole is queued and finished on the output edge.
//
//   http_reference PORT [http|echo]
//
// Serves until SIGINT or SIGTERM.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "http_support.hpp"

namespace {

constexpr std::size_t read_size = 64 << 10;

struct connection {
    int fd = -1;
    int matched = 0;   // how much of "\r\n\r\n" the input ends with
    std::string out;   // what the kernel has not taken yet
    bool writable = true;
};

int epfd = -1;
bool echo_mode = false;
char input[read_size];
std::string responses;  // scratch: several answers at once

[[noreturn]] void die(const char* what) {
    std::perror(what);
    std::exit(1);
}

void drop(connection* c) {
    ::close(c->fd);  // leaves the epoll set with it
    delete c;
}

// Sends `bytes` after what is queued; false when the connection is gone.
bool send_bytes(connection* c, std::string_view bytes) {
    if (!c->out.empty() || !c->writable) {
        c->out.append(bytes);
        return true;
    }
    while (!bytes.empty()) {
        const ssize_t n = ::send(c->fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n >= 0) {
            bytes.remove_prefix(static_cast<std::size_t>(n));
            continue;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN) {
            c->writable = false;
            c->out.append(bytes);
            return true;
        }
        return false;
    }
    return true;
}

bool flush(connection* c) {
    c->writable = true;
    std::string pending;
    pending.swap(c->out);
    return send_bytes(c, pending);
}

std::size_t count_heads(connection* c, const char* p, std::size_t n) {
    static constexpr char pattern[] = "\r\n\r\n";
    std::size_t heads = 0;
    int m = c->matched;
    for (std::size_t i = 0; i < n; ++i) {
        const char ch = p[i];
        if (ch == pattern[m]) {
            if (++m == 4) {
                ++heads;
                m = 0;
            }
        } else {
            m = ch == '\r' ? 1 : 0;
        }
    }
    c->matched = m;
    return heads;
}

// False when the connection is gone. `peer_closed` (EPOLLRDHUP): the FIN came in the
// same edge as the data, so a short read does not mean drained — read on to the EOF.
bool on_input(connection* c, bool peer_closed) {
    for (;;) {
        const ssize_t n = ::recv(c->fd, input, sizeof input, 0);
        if (n == 0) return false;  // EOF
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno == EAGAIN;
        }
        const auto got = static_cast<std::size_t>(n);
        if (echo_mode) {
            if (!send_bytes(c, {input, got})) return false;
        } else if (const std::size_t heads = count_heads(c, input, got)) {
            if (heads == 1) {
                if (!send_bytes(c, netbench::http_response)) return false;
            } else {
                responses.clear();
                for (std::size_t i = 0; i < heads; ++i) responses += netbench::http_response;
                if (!send_bytes(c, responses)) return false;
            }
        }
        if (got < sizeof input && !peer_closed) return true;  // drained: the next edge says when there is more
    }
}

void on_accept(int listener) {
    for (;;) {
        const int fd = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            return;  // EAGAIN (or out of descriptors: the listener stays readable)
        }
        const int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        auto* c = new connection;
        c->fd = fd;
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
        ev.data.ptr = c;
        if (::epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl");
    }
}

}  // namespace

int main(int argc, char** argv) {
    const netbench::args a = netbench::parse_args(argc, argv, "http_reference");
    echo_mode = a.echo;
    ::signal(SIGPIPE, SIG_IGN);

    const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (listener < 0) die("socket");
    const int one = 1;
    ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(a.port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) die("bind");
    if (::listen(listener, 1024) < 0) die("listen");
    socklen_t len = sizeof addr;
    ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);

    epfd = ::epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) die("epoll_create1");
    epoll_event lev{};
    lev.events = EPOLLIN;
    lev.data.ptr = nullptr;  // the listener
    if (::epoll_ctl(epfd, EPOLL_CTL_ADD, listener, &lev) < 0) die("epoll_ctl");

    std::printf("http_reference: %s on 127.0.0.1:%u\n", a.echo ? "echo" : "http", ntohs(addr.sin_port));
    std::fflush(stdout);

    epoll_event events[256];
    for (;;) {
        const int n = ::epoll_wait(epfd, events, 256, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; ++i) {
            if (!events[i].data.ptr) {
                on_accept(listener);
                continue;
            }
            auto* c = static_cast<connection*>(events[i].data.ptr);
            const std::uint32_t ev = events[i].events;
            bool alive = true;
            if (ev & (EPOLLOUT | EPOLLERR)) alive = flush(c);
            if (alive && (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) alive = on_input(c, (ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0);
            if (!alive) drop(c);
        }
    }
}
