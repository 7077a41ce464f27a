#pragma once
// The bodies of event_loop's sock_* calls (asyncio's selector_events.py): each tries
// its system call first and waits for readiness (aio/net/readiness.hpp) only when the
// kernel says it would block, then tries again. Reading, writing and accepting happen
// in the task, after its wait: a cancellation can only land in a wait, where nothing
// has been taken yet, so a cancelled call never loses data or a connection.

#include <fcntl.h>
#include <signal.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../../os_error.hpp"
#include "../../sleep.hpp"
#include "../../task.hpp"
#include "../readiness.hpp"
#include "../socket.hpp"
#include "../socket_address.hpp"

namespace aio::detail {

inline bool would_block(int err) noexcept { return err == EAGAIN || err == EWOULDBLOCK; }

inline std::string on_fd(const char* call, int fd) { return std::string("aio: ") + call + " on descriptor " + std::to_string(fd); }

// connect(), accept() and sendfile() have no MSG_DONTWAIT: on a blocking socket they
// would block the loop, so they refuse one (asyncio checks the same in debug mode).
inline void require_non_blocking(int fd, const char* what) {
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0) throw_errno(on_fd(what, fd));
    if ((flags & O_NONBLOCK) == 0)
        throw std::invalid_argument(std::string("aio: ") + what + ": the socket must be non-blocking (descriptor " +
                                    std::to_string(fd) + ")");
}

// Reads what is there, up to buffer.size() bytes, waiting until something is; 0 at EOF.
inline task<std::size_t> sock_recv_into(int fd, std::span<std::byte> buffer) {
    for (;;) {
        const ssize_t n = ::recv(fd, buffer.data(), buffer.size(), MSG_DONTWAIT);
        if (n >= 0) co_return static_cast<std::size_t>(n);
        if (errno == EINTR) continue;
        if (!would_block(errno)) throw_errno(on_fd("recv", fd));
        co_await wait_readable(fd);
    }
}

inline task<std::string> sock_recv(int fd, std::size_t n) {
    std::string data(n, '\0');
    const std::size_t got = co_await sock_recv_into(fd, std::as_writable_bytes(std::span(data.data(), data.size())));
    data.resize(got);
    co_return data;
}

// Sends all of `data`, waiting for room as often as it takes.
inline task<> sock_sendall(int fd, std::string_view data) {
    std::size_t sent = 0;
    while (sent < data.size()) {
        const ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n >= 0) {
            sent += static_cast<std::size_t>(n);
            continue;
        }
        if (errno == EINTR) continue;
        if (!would_block(errno)) throw_errno(on_fd("send", fd));
        co_await wait_writable(fd);
    }
}

inline task<> sock_connect(int fd, socket_address address) {
    require_non_blocking(fd, "sock_connect()");
    int backoff_ms = 1;
    for (;;) {
        if (::connect(fd, address.data(), address.size()) == 0) co_return;
        const int err = errno;
        if (err == EISCONN) co_return;  // an interrupted connect that has finished since
        if (err == EAGAIN) {
            // A Unix socket's listener has a full backlog. No readiness says when it has
            // room (the unconnected socket reads as writable at once), so try again
            // after a pause that grows: 1 ms, doubling to 64 ms.
            co_await sleep(std::chrono::milliseconds(backoff_ms));
            backoff_ms = std::min(backoff_ms * 2, 64);
            continue;
        }
        if (err != EINPROGRESS && err != EINTR && err != EALREADY) throw_os_error(err, "aio: connect to " + address.to_string());
        break;  // in progress: it ends with the socket writable
    }
    co_await wait_writable(fd);
    int err = 0;
    socklen_t length = sizeof err;
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &length) < 0) throw_errno(on_fd("getsockopt", fd));
    if (err != 0) throw_os_error(err, "aio: connect to " + address.to_string());
}

inline task<std::pair<socket, socket_address>> sock_accept(int fd) {
    require_non_blocking(fd, "sock_accept()");
    for (;;) {
        socket_address peer;
        socklen_t length = socket_address::capacity();
        const int conn = ::accept4(fd, peer.data(), &length, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (conn >= 0) {
            peer.resize(length);
            socket s = socket::own(conn);
            co_return std::pair<socket, socket_address>(std::move(s), peer);
        }
        // A connection reset before it was accepted is gone: wait for the next one.
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (!would_block(errno)) throw_errno(on_fd("accept", fd));
        co_await wait_readable(fd);
    }
}

// sendfile(2) raises SIGPIPE when the peer has gone (it takes no MSG_NOSIGNAL): the
// signal is blocked around the call, and one it raised is taken back.
inline ssize_t sendfile_quietly(int out, int in, off_t* offset, std::size_t count) noexcept {
    sigset_t pipe, old;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    sigset_t pending;
    sigpending(&pending);
    const bool was_pending = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe, &old);
    ssize_t n = ::sendfile(out, in, offset, count);
    const int err = errno;
    if (n < 0 && err == EPIPE && !was_pending) {
        const timespec zero{};
        ::sigtimedwait(&pipe, nullptr, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    errno = err;
    return n;
}

// Sends `count` bytes of `file` (to its end when nullopt) from `offset`, through
// sendfile(2), or reading and sending when the kernel cannot (asyncio's fallback).
// Leaves the file's position after the last byte sent, as asyncio does.
inline task<std::size_t> sock_sendfile(int fd, int file, std::uint64_t offset, std::optional<std::size_t> count) {
    require_non_blocking(fd, "sock_sendfile()");
    if (count && *count == 0) throw std::invalid_argument("aio: sock_sendfile(): count must be positive (or nullopt: to the end)");
    std::size_t total = 0;
    auto off = static_cast<off_t>(offset);
    bool fallback = false;
    constexpr std::size_t chunk = std::size_t{1} << 30;
    while (!fallback && (!count || total < *count)) {
        const std::size_t want = count ? std::min(chunk, *count - total) : chunk;
        const ssize_t n = sendfile_quietly(fd, file, &off, want);
        if (n > 0) {
            total += static_cast<std::size_t>(n);
            continue;
        }
        if (n == 0) break;  // the end of the file
        if (errno == EINTR) continue;
        if (would_block(errno)) {
            co_await wait_writable(fd);
            continue;
        }
        // Not a file sendfile can read (a pipe, a socket), or a socket it cannot write.
        if (total == 0 && (errno == EINVAL || errno == ENOSYS || errno == ESPIPE)) fallback = true;
        else throw_errno(on_fd("sendfile", fd));
    }
    // A file that cannot seek (a pipe) is read as a stream, from where it is, as
    // asyncio's fallback reads it; an offset makes no sense there.
    const bool seekable = ::lseek(file, 0, SEEK_CUR) >= 0;
    if (fallback) {
        if (!seekable && offset != 0)
            throw std::invalid_argument("aio: sock_sendfile(): an offset on a file that cannot seek (descriptor " +
                                        std::to_string(file) + ")");
        std::vector<char> buffer(std::size_t{256} << 10);
        while (!count || total < *count) {
            const std::size_t want = count ? std::min(buffer.size(), *count - total) : buffer.size();
            const ssize_t n = seekable ? ::pread(file, buffer.data(), want, off) : ::read(file, buffer.data(), want);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && would_block(errno)) {  // a non-blocking pipe with nothing in it yet
                co_await wait_readable(file);
                continue;
            }
            if (n < 0) throw_errno(on_fd(seekable ? "pread" : "read", file));
            if (n == 0) break;
            co_await sock_sendall(fd, std::string_view(buffer.data(), static_cast<std::size_t>(n)));
            off += n;
            total += static_cast<std::size_t>(n);
        }
    }
    if (seekable) ::lseek(file, off, SEEK_SET);
    co_return total;
}

// --- datagrams (asyncio's sock_recvfrom, sock_recvfrom_into, sock_sendto)
//
// One datagram a call: a datagram longer than the room given is cut to it, the rest
// lost (as socket.recvfrom cuts it). The sender's address comes with it (empty for a
// Unix socket that sent unbound).

// Into the first `nbytes` of `buffer` (0: all of it): how many bytes, and from whom.
inline task<std::pair<std::size_t, socket_address>> sock_recvfrom_into(int fd, std::span<std::byte> buffer, std::size_t nbytes) {
    if (nbytes > buffer.size())
        throw std::invalid_argument("aio: sock_recvfrom_into(): nbytes (" + std::to_string(nbytes) +
                                    ") is greater than the length of the buffer (" + std::to_string(buffer.size()) + ")");
    const std::size_t room = nbytes ? nbytes : buffer.size();
    for (;;) {
        socket_address from;
        socklen_t length = socket_address::capacity();
        const ssize_t n = ::recvfrom(fd, buffer.data(), room, MSG_DONTWAIT, from.data(), &length);
        if (n >= 0) {
            from.resize(length);
            co_return std::pair<std::size_t, socket_address>(static_cast<std::size_t>(n), from);
        }
        if (errno == EINTR) continue;
        if (!would_block(errno)) throw_errno(on_fd("recvfrom", fd));
        co_await wait_readable(fd);
    }
}

inline task<std::pair<std::string, socket_address>> sock_recvfrom(int fd, std::size_t bufsize) {
    std::string data(bufsize, '\0');
    auto [got, from] = co_await sock_recvfrom_into(fd, std::as_writable_bytes(std::span(data.data(), data.size())), 0);
    data.resize(got);
    co_return std::pair<std::string, socket_address>(std::move(data), from);
}

// One datagram of `data` to `to`: how many bytes went (all of them, for a datagram).
inline task<std::size_t> sock_sendto(int fd, std::string_view data, socket_address to) {
    for (;;) {
        const ssize_t n = ::sendto(fd, data.data(), data.size(), MSG_DONTWAIT | MSG_NOSIGNAL, to.data(), to.size());
        if (n >= 0) co_return static_cast<std::size_t>(n);
        if (errno == EINTR) continue;
        if (!would_block(errno)) throw_errno("aio: sendto " + to.to_string() + " on descriptor " + std::to_string(fd));
        co_await wait_writable(fd);
    }
}

}  // namespace aio::detail
