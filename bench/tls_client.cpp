// The TLS load of bench/tls_compare.py, OpenSSL driven directly: one program used
// against every server, so that only the server differs. TLS 1.3 only; the client
// does not verify the certificate (like wrk), though OpenSSL still checks the
// server's CertificateVerify signature, as every TLS 1.3 client must.
//
//   tls_client PORT CONNECTIONS SECONDS [SIZE]      echo load
//   tls_client --handshake PORT CONNECTIONS SECONDS handshake load
//   tls_client --send PORT MIB                      bulk sender
//   tls_client --sink PORT CERT KEY                 bulk receiver (a server)
//
// echo: CONNECTIONS connections handshake first (not timed); then each sends a
//   SIZE-byte message (64 by default) and waits for all of it to come back before
//   sending the next, for SECONDS; every echo is checked byte for byte. The same
//   command line and JSON line as echo_client.cpp: {"roundtrips": ..., "seconds": ...,
//   "roundtrips_per_s": ..., "errors": ..., "mismatches": ...}.
// handshake: CONNECTIONS connections in flight, each a loop of: connect, full
//   handshake (no session resumption), close_notify, wait for the server to close
//   (so the server has done all its work for it: session tickets, its own
//   close_notify), close. {"handshakes": ..., "seconds": ..., "handshakes_per_s": ...}.
// send: one connection, MIB MiB written in 1 MiB SSL_write calls, then close_notify
//   and the server's close awaited. {"bytes": ..., "seconds": ...}.
// sink: accepts one connection on 127.0.0.1:PORT, reads to close_notify/EOF with
//   read-ahead on, answers close_notify, exits. {"bytes": ..., "seconds": ...}
//   (seconds from the accept to the end).
//
// One thread; non-blocking sockets on a level-triggered epoll for echo and
// handshake, blocking ones for send and sink. Exit status 1 when something failed.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

using steady = std::chrono::steady_clock;

double seconds_since(steady::time_point start) {
    return std::chrono::duration<double>(steady::now() - start).count();
}

[[noreturn]] void die(const char* what) {
    std::fprintf(stderr, "tls_client: %s", what);
    if (errno) std::fprintf(stderr, " (%s)", std::strerror(errno));
    const unsigned long e = ERR_get_error();
    if (e) std::fprintf(stderr, ": %s", ERR_reason_error_string(e));
    std::fprintf(stderr, "\n");
    std::exit(1);
}

sockaddr_in loopback(int port) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return addr;
}

SSL_CTX* client_context() {
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) die("SSL_CTX_new");
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);  // every handshake a full one
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);   // a bare TCP close reads as EOF
    return ctx;
}

// --------------------------------------------------------------------------
// echo and handshake: many non-blocking connections on one epoll
// --------------------------------------------------------------------------

enum class phase { handshake, echo, shutdown, closing };

struct connection {
    int fd = -1;
    SSL* ssl = nullptr;
    phase ph = phase::handshake;
    std::uint32_t interest = 0;
    std::size_t received = 0;
    bool must_write = false;
    bool alive = false;
};

struct load {
    bool handshake_mode = false;
    SSL_CTX* ctx = nullptr;
    int epfd = -1;
    sockaddr_in addr{};
    std::string message;
    bool running = true;   // echo: send further messages; handshake: open further connections
    bool timing = false;   // echo: the timed part has begun
    std::uint64_t handshakes = 0, roundtrips = 0, errors = 0, mismatches = 0, close_errors = 0;
    int live = 0;

    void drop(connection& c) {
        if (!c.alive) return;
        c.alive = false;
        --live;
        SSL_free(c.ssl);
        c.ssl = nullptr;
        ::close(c.fd);
        c.fd = -1;
    }

    void fail(connection& c) {
        ++errors;
        ERR_clear_error();
        drop(c);
    }

    void want(connection& c, std::uint32_t events) {
        if (c.interest == events) return;
        epoll_event ev{};
        ev.events = events;
        ev.data.ptr = &c;
        if (::epoll_ctl(epfd, EPOLL_CTL_MOD, c.fd, &ev) < 0) die("epoll_ctl");
        c.interest = events;
    }

    void open(connection& c) {
        c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (c.fd < 0) die("socket");
        const int one = 1;
        ::setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (::connect(c.fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) < 0 && errno != EINPROGRESS)
            die("connect");
        c.ssl = SSL_new(ctx);
        if (!c.ssl) die("SSL_new");
        SSL_set_fd(c.ssl, c.fd);
        SSL_set_connect_state(c.ssl);
        c.ph = phase::handshake;
        c.received = 0;
        c.must_write = false;
        c.alive = true;
        ++live;
        epoll_event ev{};
        ev.events = EPOLLOUT;  // the connect completing
        ev.data.ptr = &c;
        if (::epoll_ctl(epfd, EPOLL_CTL_ADD, c.fd, &ev) < 0) die("epoll_ctl");
        c.interest = EPOLLOUT;
    }

    // Advances c until OpenSSL would block, then waits for what it wants.
    void step(connection& c) {
        char buffer[16384];
        while (c.alive) {
            int r = 0;
            switch (c.ph) {
            case phase::handshake:
                r = SSL_do_handshake(c.ssl);
                if (r == 1) {
                    if (handshake_mode) {
                        c.ph = phase::shutdown;
                    } else {
                        ++handshakes;
                        c.ph = phase::echo;
                        c.must_write = timing && running;
                    }
                    continue;
                }
                break;
            case phase::echo:
                if (c.must_write) {
                    r = SSL_write(c.ssl, message.data(), static_cast<int>(message.size()));
                    if (r > 0) {
                        c.must_write = false;
                        continue;
                    }
                    break;
                }
                r = SSL_read(c.ssl, buffer, sizeof buffer);
                if (r > 0) {
                    const auto got = static_cast<std::size_t>(r);
                    if (c.received + got > message.size() ||
                        std::memcmp(buffer, message.data() + c.received, got) != 0) {
                        ++mismatches;
                        return fail(c);
                    }
                    c.received += got;
                    if (c.received == message.size()) {
                        ++roundtrips;
                        c.received = 0;
                        c.must_write = running;
                    }
                    continue;
                }
                break;
            case phase::shutdown:
                r = SSL_shutdown(c.ssl);  // 0: our close_notify is out
                if (r >= 0) {
                    c.ph = phase::closing;
                    continue;
                }
                break;
            case phase::closing:
                r = SSL_read(c.ssl, buffer, sizeof buffer);  // session tickets, then the server's close
                if (r > 0) continue;
                {
                    const int e = SSL_get_error(c.ssl, r);
                    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) break;
                    if (e != SSL_ERROR_ZERO_RETURN) ++close_errors;  // a reset after our close_notify
                    ERR_clear_error();
                    ++handshakes;
                    drop(c);
                    if (running) {
                        open(c);
                        continue;
                    }
                    return;
                }
            }
            const int e = SSL_get_error(c.ssl, r);
            if (e == SSL_ERROR_WANT_READ) return want(c, EPOLLIN);
            if (e == SSL_ERROR_WANT_WRITE) return want(c, EPOLLOUT);
            return fail(c);
        }
    }
};

int run_many(bool handshake_mode, int port, int count, double seconds, int size) {
    load l;
    l.handshake_mode = handshake_mode;
    l.ctx = client_context();
    l.epfd = ::epoll_create1(EPOLL_CLOEXEC);
    l.addr = loopback(port);
    l.message.resize(static_cast<std::size_t>(size));
    for (int i = 0; i < size; ++i) l.message[static_cast<std::size_t>(i)] = static_cast<char>('a' + i % 26);
    l.message.back() = '\n';

    std::vector<connection> connections(static_cast<std::size_t>(count));
    std::vector<epoll_event> events(static_cast<std::size_t>(count));
    auto pump = [&](int timeout_ms) {
        const int n = ::epoll_wait(l.epfd, events.data(), count, timeout_ms);
        if (n < 0 && errno != EINTR) die("epoll_wait");
        for (int i = 0; i < n; ++i) l.step(*static_cast<connection*>(events[static_cast<std::size_t>(i)].data.ptr));
    };

    if (!handshake_mode) {  // the echo connections handshake before the clock starts
        for (connection& c : connections) l.open(c);
        const auto limit = steady::now() + std::chrono::seconds(20);
        while (l.handshakes + l.errors < static_cast<std::uint64_t>(count) && steady::now() < limit) pump(100);
        if (l.handshakes < static_cast<std::uint64_t>(count)) {
            std::fprintf(stderr, "tls_client: %llu of %d handshakes completed\n",
                         static_cast<unsigned long long>(l.handshakes), count);
            return 1;
        }
        l.timing = true;
    }
    const auto start = steady::now();
    const auto deadline = start + std::chrono::duration_cast<steady::duration>(std::chrono::duration<double>(seconds));
    if (handshake_mode) {
        for (connection& c : connections) {
            l.open(c);
            l.step(c);
        }
    } else {
        for (connection& c : connections) {
            c.must_write = true;
            l.step(c);
        }
    }
    for (;;) {
        const auto now = steady::now();
        if (now >= deadline) break;
        pump(static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count() + 1));
    }
    const double elapsed = seconds_since(start);
    l.running = false;
    for (connection& c : connections) l.drop(c);
    if (handshake_mode) {
        std::printf("{\"handshakes\": %llu, \"seconds\": %.6f, \"handshakes_per_s\": %.1f, \"connections\": %d, "
                    "\"errors\": %llu, \"close_errors\": %llu}\n",
                    static_cast<unsigned long long>(l.handshakes), elapsed, static_cast<double>(l.handshakes) / elapsed,
                    count, static_cast<unsigned long long>(l.errors), static_cast<unsigned long long>(l.close_errors));
        return l.errors ? 1 : 0;
    }
    std::printf("{\"roundtrips\": %llu, \"seconds\": %.6f, \"roundtrips_per_s\": %.1f, \"connections\": %d, "
                "\"size\": %d, \"errors\": %llu, \"mismatches\": %llu}\n",
                static_cast<unsigned long long>(l.roundtrips), elapsed, static_cast<double>(l.roundtrips) / elapsed,
                count, size, static_cast<unsigned long long>(l.errors), static_cast<unsigned long long>(l.mismatches));
    return l.errors || l.mismatches ? 1 : 0;
}

// --------------------------------------------------------------------------
// send and sink: one blocking connection
// --------------------------------------------------------------------------

void drain_until_close(SSL* ssl) {
    char buffer[16384];
    while (SSL_read(ssl, buffer, sizeof buffer) > 0) {
    }
    ERR_clear_error();
}

int run_send(int port, long mib) {
    SSL_CTX* ctx = client_context();
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const sockaddr_in addr = loopback(port);
    if (fd < 0 || ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) < 0) die("connect");
    SSL* ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    const auto start = steady::now();
    if (SSL_connect(ssl) != 1) die("SSL_connect");
    const std::string chunk(std::size_t{1} << 20, 'x');
    std::uint64_t sent = 0;
    for (long i = 0; i < mib; ++i) {
        if (SSL_write(ssl, chunk.data(), static_cast<int>(chunk.size())) <= 0) die("SSL_write");
        sent += chunk.size();
    }
    SSL_shutdown(ssl);
    drain_until_close(ssl);
    const double elapsed = seconds_since(start);
    SSL_free(ssl);
    ::close(fd);
    std::printf("{\"bytes\": %llu, \"seconds\": %.6f}\n", static_cast<unsigned long long>(sent), elapsed);
    return 0;
}

int run_sink(int port, const char* cert, const char* key) {
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_read_ahead(ctx, 1);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 || SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
        die("loading the certificate");
    const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    const sockaddr_in addr = loopback(port);
    if (::bind(listener, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) < 0 || ::listen(listener, 16) < 0)
        die("listen");
    const int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) die("accept");
    const auto start = steady::now();
    SSL* ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) != 1) die("SSL_accept");
    std::vector<char> buffer(std::size_t{1} << 18);
    std::uint64_t received = 0;
    for (;;) {
        const int n = SSL_read(ssl, buffer.data(), static_cast<int>(buffer.size()));
        if (n <= 0) break;
        received += static_cast<std::uint64_t>(n);
    }
    ERR_clear_error();
    SSL_shutdown(ssl);
    const double elapsed = seconds_since(start);
    SSL_free(ssl);
    ::close(fd);
    ::close(listener);
    std::printf("{\"bytes\": %llu, \"seconds\": %.6f}\n", static_cast<unsigned long long>(received), elapsed);
    return 0;
}

[[noreturn]] void usage() {
    std::fprintf(stderr,
                 "usage: tls_client PORT CONNECTIONS SECONDS [SIZE]\n"
                 "       tls_client --handshake PORT CONNECTIONS SECONDS\n"
                 "       tls_client --send PORT MIB\n"
                 "       tls_client --sink PORT CERT KEY\n");
    std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
    ::signal(SIGPIPE, SIG_IGN);
    const std::string mode = argc > 1 && argv[1][0] == '-' ? argv[1] : "";
    const int first = mode.empty() ? 1 : 2;
    const int port = argc > first ? std::atoi(argv[first]) : 0;
    if (port <= 0 || port > 65535) usage();
    if (mode == "--send") {
        if (argc != 4 || std::atol(argv[3]) <= 0) usage();
        return run_send(port, std::atol(argv[3]));
    }
    if (mode == "--sink") {
        if (argc != 5) usage();
        return run_sink(port, argv[3], argv[4]);
    }
    if (!mode.empty() && mode != "--handshake") usage();
    const int args = argc - first;
    if (args < 3 || args > (mode.empty() ? 4 : 3)) usage();
    const int count = std::atoi(argv[first + 1]);
    const double seconds = std::atof(argv[first + 2]);
    const int size = args == 4 ? std::atoi(argv[first + 3]) : 64;
    if (count <= 0 || seconds <= 0 || size <= 0) usage();
    return run_many(mode == "--handshake", port, count, seconds, size);
}
